/**
 * What the idempotency keeper keeps of a finished booking, and which
 * outcomes are final: a booking's answer, or the platform's refusal of the
 * request itself. Everything else leaves the key free for a retry.
 */
import { GatewayError } from "../errors.js";
import type { JsonObject } from "../platform/webhook-client.js";

/**
 * A booking's final outcome, as kept for replays. An answer keeps the
 * platform's text as it came (`text`, when it was UTF-8), which REST passes
 * through, so a replay is byte for byte the first answer; `body` stays beside
 * it, for what the RPC protocols read, and for gateways that predate `text`.
 */
export type StoredOutcome =
  | { readonly kind: "answer"; readonly status: number; readonly body: JsonObject; readonly text?: string | undefined }
  | { readonly kind: "platform_error"; readonly status: number; readonly code: string; readonly message: string };

/**
 * Platform statuses that are a decision about the booking request itself, and
 * so final: the request is malformed (400), names something the platform does
 * not have (404), conflicts with the calendar (409) or is refused as it is
 * (422). Asking again with the same request gets the same answer.
 */
const FINAL_PLATFORM_STATUSES: ReadonlySet<number> = new Set([400, 404, 409, 422]);

/**
 * Whether a failed booking is final, and so stored and replayed: only the
 * platform's error envelopes about the request itself are. Everything else
 * releases the key, and a retry is sent to the platform again with the same
 * downstream key: the gateway's own errors, a platform that refused the
 * gateway (401/403, `platform_rejected`: fixed by an operator, then the retry
 * must book), 408 and 429 (they ask for a retry later, which a stored answer
 * would make impossible for a day), other 4xx, 5xx, an unreachable platform,
 * timeouts, invalid answers.
 */
export function storedOutcomeOf(error: unknown): StoredOutcome | undefined {
  if (!(error instanceof GatewayError) || !error.platformEnvelope) return undefined;
  if (!FINAL_PLATFORM_STATUSES.has(error.httpStatus)) return undefined;
  return { kind: "platform_error", status: error.httpStatus, code: error.code, message: error.message };
}
