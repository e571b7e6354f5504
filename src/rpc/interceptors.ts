/**
 * Interceptors run for every protocol, REST included (REST calls reach the
 * same handlers). `errorModel` is outermost: whatever fails inside, on a unary
 * call or in the middle of a stream, leaves as an error of the gateway's model.
 * `authenticate` resolves the partner and charges its rate limit once per
 * call (once per stream).
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type { Interceptor, StreamResponse } from "@connectrpc/connect";
import type { CallLimiter } from "../gateway/rate-limiter.js";
import type { Directory } from "../store/directory.js";
import { partnerKey } from "./call-context.js";
import { toRpcError } from "./rpc-error.js";

export interface ErrorReporter {
  (error: unknown, procedure: string): void;
}

export function errorModel(report: ErrorReporter): Interceptor {
  const fail = (e: unknown, procedure: string, input: DescMessage): never => {
    const rpcError = toRpcError(e, input);
    if (rpcError.code === 13) report(e, procedure);
    throw rpcError;
  };
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    let res;
    try {
      res = await next(req);
    } catch (e) {
      return fail(e, procedure, req.method.input);
    }
    if (!res.stream) return res;
    const messages = res.message;
    async function* guarded() {
      try {
        yield* messages;
      } catch (e) {
        fail(e, procedure, req.method.input);
      }
    }
    return { ...res, message: guarded() } as StreamResponse;
  };
}

/** Resolves the partner from the `authorization` header and charges its rate limit. */
export function authenticate(directory: Directory, limiter: CallLimiter): Interceptor {
  return (next) => async (req) => {
    const partner = await directory.authenticate(req.header.get("authorization"));
    await limiter.charge(partner.id);
    req.contextValues.set(partnerKey, partner);
    return next(req);
  };
}
