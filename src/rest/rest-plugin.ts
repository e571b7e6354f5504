/**
 * Serves REST on the fastify application: one route per `google.api.http`
 * binding of a unary or server-streaming method (see rest-routes.ts; server
 * streams are sent as Server-Sent Events), the OpenAPI document at
 * `/openapi.json` and its reference page at `/docs`.
 *
 * It also makes every error fastify would answer by itself (unknown path,
 * wrong method, a body that is not JSON, too large or of another type) an
 * error of the REST envelope, except an unknown path asked for with a gRPC
 * content type, which is an unknown method (`unimplemented`) in gRPC's terms. The Connect, gRPC and gRPC-Web routes keep
 * their protocol's own errors: connect-es answers them before fastify could.
 */
import { isUtf8 } from "node:buffer";
import { gunzipSync } from "node:zlib";
import { Readable } from "node:stream";
import type { JsonValue } from "@bufbuild/protobuf";
import type { ContextValues } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GatewayError } from "../errors.js";
import { isGrpcRequest, sendUnknownProcedure } from "../rpc/unknown-procedure.js";
import { DOCS_CONTENT_SECURITY_POLICY, renderDocsPage } from "./docs-page.js";
import { openApiDocument } from "./openapi.js";
import { restErrorOf, restErrorOfFramework, sendRestError } from "./rest-errors.js";
import { restRoutes, type RestRoute } from "./rest-routes.js";
import { EVENT_STREAM_CONTENT_TYPE, serverSentEvents } from "./server-sent-events.js";
import { directCallOf, type DirectCalls } from "./direct-call.js";
import { transcode, transcodeServerStream, type RestRequest, type RestResult } from "./transcoder.js";

export interface RestOptions {
  /** The RPC handlers, wrapped as the Connect plugin serves them. */
  readonly handlers: readonly UniversalHandler[];
  /** The context values of a call, as the Connect plugin creates them. */
  readonly contextValues: (req: FastifyRequest) => ContextValues;
  /**
   * What unary calls need to be served by invoking the method's
   * implementation directly (direct-call.ts); without it, or for a method it
   * has no implementation of, and for server streams, a call is transcoded
   * into a Connect call on the method's handler (transcoder.ts).
   */
  readonly direct?: DirectCalls | undefined;
}

interface JsonBody {
  readonly raw: Buffer;
  readonly json: JsonValue;
}

const JSON_CONTENT_TYPE = "application/json; charset=utf-8";
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Registers the REST routes and returns them. */
export async function registerRest(app: FastifyInstance, options: RestOptions): Promise<readonly RestRoute[]> {
  // Client and bidirectional streams have no REST form.
  const routes = restRoutes(options.handlers).filter((r) => r.method.methodKind === "unary" || r.method.methodKind === "server_streaming");
  const matchers = routes.map((r) => ({ route: r, pattern: pathPattern(r) }));

  const notFound = (request: FastifyRequest, reply: FastifyReply) => {
    if (isGrpcRequest(request)) return sendUnknownProcedure(request, reply);
    const path = request.url.split("?")[0]!;
    const allowed = [...new Set(matchers.filter((m) => m.pattern.test(path)).map((m) => m.route.httpMethod))];
    if (allowed.length > 0) {
      reply.header("allow", allowed.join(", "));
      return sendRestError(
        request,
        reply,
        restErrorOf(GatewayError.of("method_not_allowed", `${request.method} is not allowed on ${path}; use ${allowed.join(" or ")}`)),
      );
    }
    return sendRestError(request, reply, restErrorOf(GatewayError.of("not_found", `no route for ${request.method} ${path}`)));
  };
  app.setNotFoundHandler(notFound);
  app.setErrorHandler((error, request, reply) => {
    if (request.is404) return notFound(request, reply);
    const rest = restErrorOfFramework(error);
    if (rest.status >= 500) request.log.error({ err: error }, "unexpected error");
    return sendRestError(request, reply, rest);
  });

  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, raw, done) => {
      let bytes: Buffer;
      try {
        bytes = decodeContent(req.headers["content-encoding"], raw as Buffer, req.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit);
      } catch (e) {
        done(GatewayError.from(e), undefined);
        return;
      }
      if (!isUtf8(bytes)) {
        // Decoding would turn the bad bytes into U+FFFD, and a name or note would be booked garbled.
        done(GatewayError.of("invalid_request", "the request body is not valid UTF-8"), undefined);
        return;
      }
      // A byte order mark may lead the body (RFC 8259 lets a parser ignore it), as the Connect routes accept.
      if (bytes.subarray(0, UTF8_BOM.length).equals(UTF8_BOM)) bytes = bytes.subarray(UTF8_BOM.length);
      try {
        done(null, { raw: bytes, json: JSON.parse(bytes.toString("utf8")) as JsonValue } satisfies JsonBody);
      } catch {
        done(GatewayError.of("invalid_request", "the request body is not valid JSON"), undefined);
      }
    });
    for (const route of routes) {
      scope.route({
        method: route.httpMethod,
        url: route.routePath,
        exposeHeadRoute: false,
        handler:
          route.method.methodKind === "unary"
            ? serveWith(route, options, (options.direct === undefined ? undefined : directCallOf(route.method, options.direct)) ?? transcode)
            : (request, reply) => serveStream(route, options, request, reply),
      });
    }
  });

  const document = JSON.stringify(openApiDocument(), null, 2);
  const page = renderDocsPage(openApiDocument());
  app.get("/openapi.json", (_request, reply) => reply.header("content-type", JSON_CONTENT_TYPE).send(document));
  app.get("/docs", (_request, reply) =>
    reply
      .header("content-type", "text/html; charset=utf-8")
      // The page is self-contained: it may load nothing, from anywhere.
      .header("content-security-policy", DOCS_CONTENT_SECURITY_POLICY)
      .header("x-content-type-options", "nosniff")
      // For browsers that predate frame-ancestors, as the console sends it.
      .header("x-frame-options", "DENY")
      .header("referrer-policy", "no-referrer")
      .send(page),
  );
  return routes;
}

/**
 * The body with its `Content-Encoding` undone: identity or gzip, as the RPC
 * protocols accept. The limit applies to the decompressed size too, so a
 * small compressed body cannot expand past it.
 */
function decodeContent(encoding: string | undefined, raw: Buffer, limit: number): Buffer {
  const name = (encoding ?? "identity").trim().toLowerCase();
  if (name === "identity" || name === "") return raw;
  if (name !== "gzip") {
    throw GatewayError.of("unsupported_encoding", `Content-Encoding ${JSON.stringify(name)} is not supported; use gzip or none`);
  }
  try {
    return gunzipSync(raw, { maxOutputLength: limit });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw GatewayError.of("request_too_large", `the decompressed request body is larger than ${limit} bytes`);
    }
    throw GatewayError.of("invalid_request", "the request body is not valid gzip");
  }
}

/** The request as the transcoder takes it, once its body is checked. */
function restRequestOf(route: RestRoute, options: RestOptions, request: FastifyRequest, reply: FastifyReply): RestRequest {
  const body = request.body as JsonBody | undefined;
  if (route.body !== undefined && body === undefined && request.headers["content-type"] === undefined) {
    throw GatewayError.of("unsupported_media_type", "the request body must be application/json");
  }
  if (route.body === "*" && body !== undefined && (typeof body.json !== "object" || body.json === null || Array.isArray(body.json))) {
    throw GatewayError.of("invalid_request", "the request body must be a JSON object");
  }
  const abort = new AbortController();
  // A response closes when it has been sent too; only one closed before its end means the client went away.
  reply.raw.once("close", () => {
    if (!reply.raw.writableEnded) abort.abort();
  });
  return {
    route,
    params: request.params as Record<string, string>,
    query: request.query as Record<string, string | string[] | undefined>,
    rawBody: body?.raw,
    body: body?.json,
    headers: request.headers,
    httpVersion: request.raw.httpVersion,
    requestId: request.id,
    signal: abort.signal,
    contextValues: options.contextValues(request),
  };
}

/** The handler of a unary route, whose calls `call` serves. */
function serveWith(route: RestRoute, options: RestOptions, call: (req: RestRequest) => Promise<RestResult>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const result = await call(restRequestOf(route, options, request, reply));
    for (const [name, value] of result.headers) reply.header(name, value);
    if (!result.ok) return sendRestError(request, reply, result.error);
    return reply.code(result.status).header("content-type", JSON_CONTENT_TYPE).send(result.body);
  };
}

async function serveStream(route: RestRoute, options: RestOptions, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const result = await transcodeServerStream(restRequestOf(route, options, request, reply));
  for (const [name, value] of result.headers) reply.header(name, value);
  if (!result.ok) return sendRestError(request, reply, result.error);
  return reply
    .code(200)
    .header("content-type", EVENT_STREAM_CONTENT_TYPE)
    .header("cache-control", "no-cache")
    .header("x-accel-buffering", "no")
    .send(Readable.from(serverSentEvents(result.items)));
}

/** Matches the concrete paths of a route, to tell a wrong method from an unknown path. */
function pathPattern(route: RestRoute): RegExp {
  const source = route.path.replace(/\{[^}]*\}|[^{]+/g, (part) => (part.startsWith("{") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  return new RegExp(`^${source}$`);
}
