/**
 * Redis lost between the booking and its record: the caller still gets the
 * booking, the gateway writes the record once Redis is back, and the
 * partner's retry is a replay, not a second webhook. A real redis-server
 * with an append-only file, SIGKILLed while the platform answers, restarted.
 * A keeper closing meanwhile waits for that write's last attempt, and then
 * stops trying.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { downstreamIdempotencyKey } from "../src/gateway/idempotency.js";
import { ClaimingKeeper } from "../src/idempotency/claiming-keeper.js";
import type { IdempotencyStore } from "../src/idempotency/idempotency-store.js";
import { RedisIdempotencyStore } from "../src/idempotency/redis-idempotency-keeper.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { bearer, bookingRequest, clientsFor } from "./support/clients.js";
import { bookingBody, idempotencyKey, startHarness, type Harness } from "./support/harness.js";
import { RedisServer } from "./support/redis-server.js";

let redis: RedisServer;
let h: Harness;

beforeAll(async () => {
  redis = await RedisServer.start({ appendfsync: "always" });
  h = await startHarness({ redisUrl: redis.url, env: { WEBHOOK_TIMEOUT_MS: "3000", IDEMPOTENCY_CLAIM_TTL_MS: "8000", IDEMPOTENCY_WAIT_MS: "500" } });
});
afterAll(async () => {
  await h?.close();
  await redis?.stop();
});

it("the booking is answered, its record written when Redis is back, and the retry replays it", async () => {
  const c = clientsFor("grpc", h.url);
  const body = bookingBody(h.bots.a);
  const key = idempotencyKey();
  const downstream = downstreamIdempotencyKey(h.partners.a, key);
  h.script = async (req, reference) => {
    if (req.path !== "/bookings" || req.body?.idempotency_key !== downstream) return undefined;
    // Redis goes away after the claim and before the record.
    await redis.kill();
    return reference();
  };
  const first = await c.booking.createBooking(bookingRequest(body), bearer(h.keys.a, { "idempotency-key": key }));
  expect(first.booking!.id).toMatch(/^bkg_/);
  h.script = undefined;

  await redis.resume();
  let replayed = false;
  await expect
    .poll(
      async () => {
        try {
          const again = await c.booking.createBooking(bookingRequest(body), {
            ...bearer(h.keys.a, { "idempotency-key": key }),
            onHeader: (headers) => (replayed = headers.get("idempotent-replayed") === "true"),
          });
          return again.booking!.id;
        } catch {
          return undefined; // Redis still coming back, or the record not written yet
        }
      },
      { timeout: 6000, interval: 200 },
    )
    .toBe(first.booking!.id);
  expect(replayed).toBe(true);
  expect(h.platform.received.filter((r) => r.path === "/bookings" && r.body?.idempotency_key === downstream)).toHaveLength(1);
});

it("a keeper closed while a booking is in flight waits for its outcome's write, tries it once more, and then no more", async () => {
  const own = await RedisServer.start();
  const connection = await connectRedis(own.url);
  const redisStore = new RedisIdempotencyStore(connection, "test:closing:");
  /** Each attempt to write the outcome, and whether it has settled. */
  const attempts: { settled: boolean }[] = [];
  const store: IdempotencyStore = {
    claim: (...args) => redisStore.claim(...args),
    release: (...args) => redisStore.release(...args),
    finish: (...args) => {
      const attempt = { settled: false };
      attempts.push(attempt);
      return redisStore.finish(...args).finally(() => (attempt.settled = true));
    },
  };
  const keeper = new ClaimingKeeper(store, { claimTtlMs: 8000, resultTtlMs: 60_000, waitMs: 100 });
  let closed: Promise<void> | undefined;
  try {
    const result = await keeper.execute({ scope: "ptnr_a", key: randomBytes(8).toString("hex"), fingerprint: "fp" }, async () => {
      // Redis goes away before the outcome is written, and the gateway begins to shut down while the platform answers.
      await own.kill();
      closed = keeper.close();
      return { status: 201, body: { booking: { id: "bkg_1" } } };
    });
    expect(result.answer.status).toBe(201);
    await closed;
    // The first write failed; its retry was made at once, not after a pause, and close waited for it.
    expect(attempts).toHaveLength(2);
    expect(attempts.every((a) => a.settled)).toBe(true);
    await own.resume();
    await new Promise((r) => setTimeout(r, 1500));
    expect(attempts).toHaveLength(2);
  } finally {
    connection.disconnect();
    await own.stop();
  }
});
