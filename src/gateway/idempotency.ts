/**
 * Idempotency keys for bookings: how a key is checked, the key the platform
 * receives, and the seam through which a keeper makes sure one key produces
 * at most one booking.
 */
import { hash } from "node:crypto";
import { GatewayError } from "../errors.js";
import type { PlatformAnswer } from "../platform/webhook-client.js";

const PRINTABLE_ASCII = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** The key of a booking request, from the header or the field; both given and different is an error. */
export function checkIdempotencyKey(headerKey: string | undefined, fieldKey: string): string {
  const header = headerKey ?? "";
  if (header !== "" && fieldKey !== "" && header !== fieldKey) {
    throw GatewayError.of("idempotency_key_invalid", "the Idempotency-Key header and the idempotency_key field differ");
  }
  const key = header !== "" ? header : fieldKey;
  if (key === "") {
    throw GatewayError.of("idempotency_key_invalid", "an Idempotency-Key header (or the idempotency_key field) is required");
  }
  if (key.length > 255) {
    throw GatewayError.of("idempotency_key_invalid", "the idempotency key is longer than 255 characters");
  }
  if (!PRINTABLE_ASCII.test(key)) {
    throw GatewayError.of("idempotency_key_invalid", "the idempotency key must be printable ASCII without surrounding spaces");
  }
  return key;
}

/**
 * The key the platform receives: deterministic per (partner, key), so the
 * platform's own de-duplication holds across retries and gateway instances,
 * and two partners' keys never collide.
 */
export function downstreamIdempotencyKey(partnerId: string, key: string): string {
  return "idk_" + hash("sha256", partnerId + "\0" + key, "hex").slice(0, 48);
}

export interface IdempotentRequest {
  /** The partner: a key is scoped to it. */
  readonly scope: string;
  readonly key: string;
  /** Hash of the canonical request; the same key with another fingerprint is rejected. */
  readonly fingerprint: string;
  /** Aborts when the caller goes away; it stops the caller's wait, never a booking already sent. */
  readonly signal?: AbortSignal | undefined;
  /** The caller's deadline (epoch milliseconds), to tell a deadline from a caller that left. */
  readonly deadline?: number | undefined;
}

export interface IdempotentResult {
  readonly answer: PlatformAnswer;
  readonly replayed: boolean;
}

/**
 * Runs a booking at most once per (scope, key) and replays its outcome.
 *
 * `perform` sends the booking; it must not be tied to the caller's signal:
 * once sent, a booking runs to its end (bounded by the webhook timeout) even
 * if the caller leaves, so its outcome is stored and the retry gets it. A
 * stored platform error is replayed by throwing it again, marked `replayed`.
 */
export interface IdempotencyKeeper {
  execute(request: IdempotentRequest, perform: () => Promise<PlatformAnswer>): Promise<IdempotentResult>;
  /** Waits for bookings still running after their caller left, so their outcome is stored. */
  close(): Promise<void>;
}
