/**
 * What the protocol layers pass to the service implementations besides the
 * message: the authenticated partner, the call's observation (request id,
 * trace, logger), and, for calls that arrive over REST,
 * a place for the platform's answer as it was sent (REST passes it through
 * verbatim, RPC protocols send the typed message).
 */
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import { GatewayError } from "../errors.js";
import type { Caller } from "../gateway/caller.js";
import type { CallObservation } from "../observability/call-observer.js";
import type { PlatformAnswer } from "../platform/webhook-client.js";
import type { Partner } from "../store/directory-store.js";

export const partnerKey = createContextKey<Partner | undefined>(undefined, { description: "authenticated partner" });

/** Filled by the service implementation for the REST layer. */
export interface PassThrough {
  answer?: PlatformAnswer;
}

export const passThroughKey = createContextKey<PassThrough | undefined>(undefined, { description: "REST pass-through" });

/** The call's observation: request id, span, logger; set by the serving path. */
export const callKey = createContextKey<CallObservation | undefined>(undefined, { description: "call observation" });

/** The caller of an RPC, as the business logic sees it. */
export function callerOf(ctx: HandlerContext): Caller {
  const partner = ctx.values.get(partnerKey);
  if (partner === undefined) throw GatewayError.of("unauthorized", "not authenticated");
  const remaining = ctx.timeoutMs();
  const call = ctx.values.get(callKey);
  return {
    partner,
    signal: ctx.signal,
    deadline: remaining === undefined ? undefined : Date.now() + remaining,
    requestId: call?.requestId,
    trace: call?.span,
  };
}

/**
 * Hands the platform's answer to the REST layer, when the call came through
 * it; true then, and the response message will not be sent to anyone.
 */
export function passThrough(ctx: HandlerContext, answer: PlatformAnswer): boolean {
  const slot = ctx.values.get(passThroughKey);
  if (slot === undefined) return false;
  slot.answer = answer;
  return true;
}

/**
 * What a call's context signal is aborted with once the call has ended and
 * its answer is built. connect-es aborts it with no reason, which makes a new
 * `DOMException` (with its stack trace) per call; by then nothing listens,
 * so one shared reason does.
 */
export const CALL_ENDED = new ConnectError("the call has ended", Code.Canceled);
