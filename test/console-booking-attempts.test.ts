/**
 * The console's choice of `Idempotency-Key` for a booking click: fresh for
 * each booking, the key of an attempt whose outcome is unknown again for a
 * retry of the same request (so a booking whose answer was lost is replayed,
 * not made twice), a fresh one after a final refusal (which a resent key
 * would only replay), and never a used key for a request that differs in any
 * field (the gateway would refuse it as a mismatch). The browser test
 * exercises it end to end.
 */
import { describe, expect, it } from "vitest";
import { BookingAttempts, randomKey, type BookingRequestFields } from "../src/console/browser/booking-attempts.js";

const slot: BookingRequestFields = { botId: "bot_a", startAt: "2030-01-07T09:00:00Z", durationMinutes: 30, customerName: "Ada", customerPhone: "+15550100123" };

describe("BookingAttempts", () => {
  it("gives each booking a fresh key", () => {
    const attempts = new BookingAttempts();
    const first = attempts.next(slot);
    expect(attempts.settle(slot, first, "ok")).toBe(false);
    const second = attempts.next(slot);
    expect(second.retry).toBe(false);
    expect(second.idempotencyKey).not.toBe(first.idempotencyKey);
  });

  it.each(["unavailable", "deadline_exceeded", "canceled", "internal", "unknown", "aborted", "resource_exhausted"])(
    "resends the key after %s (the outcome is unknown) for the same request, until an answer is final",
    (status) => {
      const attempts = new BookingAttempts();
      const first = attempts.next(slot);
      expect(attempts.settle(slot, first, status)).toBe(true);
      const retry = attempts.next({ ...slot });
      expect(retry).toEqual({ idempotencyKey: first.idempotencyKey, retry: true });
      expect(attempts.settle(slot, retry, "unavailable")).toBe(true);
      expect(attempts.next(slot).idempotencyKey).toBe(first.idempotencyKey);
      attempts.settle(slot, retry, "ok");
      expect(attempts.next(slot).retry).toBe(false);
    },
  );

  it.each(["already_exists", "invalid_argument", "not_found", "failed_precondition", "unauthenticated", "unimplemented"])(
    "takes a fresh key after %s (a final answer: resending the key would replay it)",
    (status) => {
      const attempts = new BookingAttempts();
      const first = attempts.next(slot);
      expect(attempts.settle(slot, first, status)).toBe(false);
      const next = attempts.next(slot);
      expect(next.retry).toBe(false);
      expect(next.idempotencyKey).not.toBe(first.idempotencyKey);
      // A final answer to a resent key settles it too.
      attempts.settle(slot, next, "unavailable");
      const retry = attempts.next(slot);
      expect(retry).toEqual({ idempotencyKey: next.idempotencyKey, retry: true });
      attempts.settle(slot, retry, status);
      expect(attempts.next(slot).idempotencyKey).not.toBe(next.idempotencyKey);
    },
  );

  it.each(Object.keys(slot))("does not reuse a failed key when %s differs", (field) => {
    const attempts = new BookingAttempts();
    const first = attempts.next(slot);
    attempts.settle(slot, first, "unavailable");
    const changed = { ...slot, [field]: field === "durationMinutes" ? 45 : "other" };
    expect(attempts.next(changed).idempotencyKey).not.toBe(first.idempotencyKey);
    expect(attempts.next(slot).idempotencyKey).toBe(first.idempotencyKey);
  });

  it("makes keys the gateway accepts: 128 random bits, printable ASCII", () => {
    const keys = new Set(Array.from({ length: 1000 }, randomKey));
    expect(keys.size).toBe(1000);
    for (const key of keys) expect(key).toMatch(/^console-[0-9a-f]{32}$/);
  });
});
