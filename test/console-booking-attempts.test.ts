/**
 * The console's choice of `Idempotency-Key` for a booking click: fresh for
 * each booking, the failed attempt's key again for a retry of the same
 * request (so a booking whose answer was lost is replayed, not made twice),
 * and never a used key for a request that differs in any field (the gateway
 * would refuse it as a mismatch). The browser test exercises it end to end.
 */
import { describe, expect, it } from "vitest";
import { BookingAttempts, randomKey, type BookingRequestFields } from "../src/console/browser/booking-attempts.js";

const slot: BookingRequestFields = { botId: "bot_a", startAt: "2030-01-07T09:00:00Z", durationMinutes: 30, customerName: "Ada", customerPhone: "+15550100123" };

describe("BookingAttempts", () => {
  it("gives each booking a fresh key", () => {
    const attempts = new BookingAttempts();
    const first = attempts.next(slot);
    attempts.settle(slot, first, true);
    const second = attempts.next(slot);
    expect(second.retry).toBe(false);
    expect(second.idempotencyKey).not.toBe(first.idempotencyKey);
  });

  it("resends a failed attempt's key for the same request, until it succeeds", () => {
    const attempts = new BookingAttempts();
    const first = attempts.next(slot);
    attempts.settle(slot, first, false);
    const retry = attempts.next({ ...slot });
    expect(retry).toEqual({ idempotencyKey: first.idempotencyKey, retry: true });
    attempts.settle(slot, retry, false);
    expect(attempts.next(slot).idempotencyKey).toBe(first.idempotencyKey);
    attempts.settle(slot, retry, true);
    expect(attempts.next(slot).retry).toBe(false);
  });

  it.each(Object.keys(slot))("does not reuse a failed key when %s differs", (field) => {
    const attempts = new BookingAttempts();
    const first = attempts.next(slot);
    attempts.settle(slot, first, false);
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
