/**
 * The test harness leaves nothing in the Redis it was given: a run against a
 * shared Redis (`REDIS_URL`) must not fill it with test data. Its keys go
 * when it closes, and only its own: a harness that shares another's prefix
 * leaves them to that one.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedis } from "../src/store/redis-connection.js";
import { directoryKeyPrefix } from "../src/store/redis-directory-store.js";
import { bearer, bookingRequest, clientsFor } from "./support/clients.js";
import { bookingBody, deleteKeysUnder, idempotencyKey, startHarness, testRedisUrl } from "./support/harness.js";

let redis: Redis;
beforeAll(async () => {
  redis = await connectRedis(testRedisUrl());
});
afterAll(() => redis.quit());

const keysUnder = (prefix: string) => redis.keys(`${prefix}*`);

describe("closing a harness", () => {
  it("deletes the keys under its prefix (directory and idempotency records), and a sharing harness deletes none", async () => {
    const h = await startHarness();
    const prefix = h.config.redisKeyPrefix;
    await clientsFor("connect-json-h1", h.url).booking.createBooking(bookingRequest(bookingBody(h.bots.a)), bearer(h.keys.a, { "idempotency-key": idempotencyKey() }));
    const sharing = await startHarness({ redisKeyPrefix: prefix });
    const written = await keysUnder(prefix);
    expect(written.some((k) => k.startsWith(directoryKeyPrefix(prefix)))).toBe(true);
    expect(written.some((k) => k.startsWith(`${prefix}idem:`))).toBe(true);

    await sharing.close();
    expect((await keysUnder(prefix)).sort()).toEqual(written.sort());
    await h.close();
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it("leaves keys outside its prefix alone, even ones its prefix's pattern characters would match", async () => {
    const base = `test:${randomBytes(6).toString("hex")}:`;
    await redis.mset(`${base}a[1]:x`, "1", `${base}a1:x`, "2", `${base}b:x`, "3");
    await deleteKeysUnder(testRedisUrl(), `${base}a[1]:`);
    expect((await keysUnder(base)).sort()).toEqual([`${base}a1:x`, `${base}b:x`]);
    await deleteKeysUnder(testRedisUrl(), base);
    expect(await keysUnder(base)).toEqual([]);
  });
});
