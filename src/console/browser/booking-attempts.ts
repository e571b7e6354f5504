/**
 * Which `Idempotency-Key` a booking click sends. Each click books anew, so it
 * gets a fresh key; but after an error that leaves the outcome unknown (the
 * answer may have been lost on the way back, or the booking is still in
 * flight) the page cannot know whether the booking was made, so the next
 * click for the same request resends that attempt's key: the gateway then
 * answers with the stored result instead of booking twice. After a final
 * answer (a booking, or a refusal such as `slot_unavailable`) the next click
 * takes a fresh key: resending the key would only replay that refusal.
 *
 * "The same request" is the same bot, slot and customer: a changed field is a
 * different booking, which must not reuse a key (the gateway would refuse it
 * as `idempotency_key_mismatch`).
 */
export interface BookingRequestFields {
  readonly botId: string;
  readonly startAt: string;
  readonly durationMinutes: number;
  readonly customerName: string;
  readonly customerPhone: string;
}

export interface Attempt {
  readonly idempotencyKey: string;
  /** True when the key is a failed attempt's, resent. */
  readonly retry: boolean;
}

/**
 * The statuses after which a booking under the key may or may not have been
 * made: the call failed on the way (`unavailable`, `deadline_exceeded`,
 * `canceled`, `internal`, and `unknown`, what a network failure gives), or the
 * booking is still in flight (`aborted`: `idempotency_key_in_use`). A call
 * refused before it was run (`resource_exhausted`: rate limited) says nothing
 * about an earlier attempt with the same key, so it keeps the key too.
 */
const OUTCOME_UNKNOWN: ReadonlySet<string> = new Set(["unavailable", "deadline_exceeded", "canceled", "internal", "unknown", "aborted", "resource_exhausted"]);

export class BookingAttempts {
  /** The key of each request whose last attempt ended with its outcome unknown. */
  private readonly unsettled = new Map<string, string>();

  constructor(private readonly newKey: () => string = randomKey) {}

  /** The key for a click that books `request`. */
  next(request: BookingRequestFields): Attempt {
    const key = this.unsettled.get(fingerprint(request));
    return key === undefined ? { idempotencyKey: this.newKey(), retry: false } : { idempotencyKey: key, retry: true };
  }

  /**
   * Records how the attempt ended, by the call's status (`ok`, or the
   * protocol's code such as `unavailable`). True when the key is kept for the
   * next click, because the outcome is unknown.
   */
  settle(request: BookingRequestFields, attempt: Attempt, status: string): boolean {
    const unknown = OUTCOME_UNKNOWN.has(status);
    if (unknown) this.unsettled.set(fingerprint(request), attempt.idempotencyKey);
    else this.unsettled.delete(fingerprint(request));
    return unknown;
  }
}

function fingerprint(r: BookingRequestFields): string {
  return JSON.stringify([r.botId, r.startAt, r.durationMinutes, r.customerName, r.customerPhone]);
}

/**
 * 128 random bits. `crypto.getRandomValues`, not `randomUUID`: the latter
 * exists only in secure contexts, and a gateway reached over plain HTTP at
 * another host than localhost is not one.
 */
export function randomKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
