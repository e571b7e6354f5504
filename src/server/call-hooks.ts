/**
 * Where the fastify application starts and ends each call's observation
 * (call-observer.ts): one hook for every route that serves a procedure,
 * Connect, gRPC, gRPC-Web and REST alike. A REST call is observed once, as
 * `rest`, under the procedure it maps to; the implementation it reaches (or
 * the Connect call a server stream is transcoded into) reuses that
 * observation instead of starting its own.
 *
 * The call ends when its response is closed: sent in full, or cut off by the
 * caller (then it is `canceled` unless a status was already known).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { CallProtocol } from "../metrics/metrics.js";
import { codeOfHttpStatus, type CallObservation, type CallObserver } from "../observability/call-observer.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The observation of the call this request carries, on routes that serve a procedure. */
    call: CallObservation | undefined;
  }
}

export interface ObservedRoutes {
  /** RPC request paths (`/package.Service/Method`) to procedure names. */
  readonly rpc: ReadonlyMap<string, string>;
  /** REST routes (`METHOD /route/:param`) to the procedure they map to. */
  readonly rest: ReadonlyMap<string, string>;
}

/** The RPC protocol of a request, from its content type. */
function rpcProtocolOf(request: FastifyRequest): CallProtocol {
  const type = request.headers["content-type"];
  if (type === undefined || !type.startsWith("application/grpc")) return "connect";
  return type.startsWith("application/grpc-web") ? "grpc_web" : "grpc";
}

export function observeCalls(app: FastifyInstance, observer: CallObserver, routes: ObservedRoutes): void {
  app.decorateRequest("call", undefined);
  app.addHook("onRequest", (request, reply, done) => {
    const url = request.routeOptions.url;
    if (url === undefined) return done();
    let procedure = routes.rpc.get(url);
    let protocol: CallProtocol;
    if (procedure !== undefined) {
      protocol = rpcProtocolOf(request);
    } else {
      procedure = routes.rest.get(`${request.method} ${url}`);
      if (procedure === undefined) return done();
      protocol = "rest";
    }
    const call = observer.start({
      procedure,
      protocol,
      requestId: request.id,
      traceparent: request.headers.traceparent,
      tracestate: request.headers.tracestate,
      log: request.log,
    });
    request.call = call;
    const raw = reply.raw;
    raw.once("close", () => call.end(codeOfHttpStatus(raw.statusCode, raw.writableEnded)));
    done();
  });
}
