/**
 * Which `Idempotency-Key` a booking click sends. Each click books anew, so it
 * gets a fresh key; but after an error the page cannot know whether the
 * booking was made (the answer may have been lost on the way back), so the
 * next click for the same request resends the failed attempt's key: the
 * gateway then answers with the stored result instead of booking twice.
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

export class BookingAttempts {
  /** The key of each request whose last attempt failed. */
  private readonly failed = new Map<string, string>();

  constructor(private readonly newKey: () => string = randomKey) {}

  /** The key for a click that books `request`. */
  next(request: BookingRequestFields): Attempt {
    const key = this.failed.get(fingerprint(request));
    return key === undefined ? { idempotencyKey: this.newKey(), retry: false } : { idempotencyKey: key, retry: true };
  }

  /** Records how the attempt ended: a failure keeps its key for the next click. */
  settle(request: BookingRequestFields, attempt: Attempt, succeeded: boolean): void {
    if (succeeded) this.failed.delete(fingerprint(request));
    else this.failed.set(fingerprint(request), attempt.idempotencyKey);
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
