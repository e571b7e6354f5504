/**
 * Interceptors run for every protocol, REST included (REST's direct calls
 * run this same list around the implementation). `observeOutcome` is outermost and records each call's final
 * status for metrics and tracing. `errorModel` is next: whatever fails inside,
 * on a unary call or in the middle of a stream, leaves as an error of the
 * gateway's model. `authenticate` resolves the partner and charges its rate
 * limit once per call (once per stream).
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import type { CallLimiter } from "../gateway/rate-limiter.js";
import type { Logger } from "../observability/logger.js";
import type { Directory } from "../store/directory.js";
import { callKey, partnerKey } from "./call-context.js";
import { toRpcError } from "./rpc-error.js";

/** Records the status a call ends with on its observation (see call-observer.ts). */
export function observeOutcome(): Interceptor {
  return (next) => async (req) => {
    const call = req.contextValues.get(callKey);
    if (call === undefined) return next(req);
    let res;
    try {
      res = await next(req);
    } catch (e) {
      call.settle(ConnectError.from(e).code);
      throw e;
    }
    if (!res.stream) {
      call.settle("ok");
      return res;
    }
    const messages = res.message;
    async function* observed() {
      try {
        yield* messages;
        call!.settle("ok");
      } catch (e) {
        call!.settle(ConnectError.from(e).code);
        throw e;
      }
    }
    return { ...res, message: observed() } as StreamResponse;
  };
}

export interface ErrorReporter {
  (error: unknown, procedure: string, log: Logger | undefined): void;
}

export function errorModel(report: ErrorReporter): Interceptor {
  const fail = (e: unknown, procedure: string, input: DescMessage, log: Logger | undefined): never => {
    const rpcError = toRpcError(e, input);
    if (rpcError.code === 13) report(e, procedure, log);
    throw rpcError;
  };
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    let res;
    try {
      res = await next(req);
    } catch (e) {
      return fail(e, procedure, req.method.input, req.contextValues.get(callKey)?.log);
    }
    if (!res.stream) return res;
    const messages = res.message;
    async function* guarded() {
      try {
        yield* messages;
      } catch (e) {
        fail(e, procedure, req.method.input, req.contextValues.get(callKey)?.log);
      }
    }
    return { ...res, message: guarded() } as StreamResponse;
  };
}

/** Resolves the partner from the `authorization` header and charges its rate limit. */
export function authenticate(directory: Directory, limiter: CallLimiter): Interceptor {
  return (next) => async (req) => {
    const partner = await directory.authenticate(req.header.get("authorization"));
    // A charge within the gateway's own limit or lease is settled at once, without a turn of the microtask queue.
    const charged = limiter.charge(partner.id);
    if (charged !== undefined) await charged;
    req.contextValues.set(partnerKey, partner);
    return next(req);
  };
}
