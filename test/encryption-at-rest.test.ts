/**
 * Encryption at rest: the cipher itself, then a gateway on the test Redis
 * with `GATEWAY_ENCRYPTION_KEY` set, whose webhook secrets and stored booking
 * answers are read back raw from Redis (nothing in clear), and a key rotation
 * done with the admin command as an operator runs it.
 */
import { createHash, randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { aesGcmCipher, FieldCipherError, isSealed, keyId, NO_ENCRYPTION } from "../src/encryption/field-cipher.js";
import { createGateway } from "../src/gateway/create-gateway.js";
import { RedisIdempotencyStore } from "../src/idempotency/redis-idempotency-keeper.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { directoryKeyPrefix, RedisDirectoryStore } from "../src/store/redis-directory-store.js";
import { admin } from "./support/commands.js";
import { bookingBody, idempotencyKey, startHarness, testRedisUrl, type Harness } from "./support/harness.js";
import { restBookingClient } from "./support/rest-booking-client.js";
import { bearer, bookingRequest, expectRpcError } from "./support/clients.js";

const key = () => randomBytes(32);
/** What `admin reencrypt` runs with after a rotation: the new key, and the one it replaces. */
const rotationEnv = (prefix: string, current: Buffer, previous: Buffer) => ({
  REDIS_URL: testRedisUrl(),
  REDIS_KEY_PREFIX: prefix,
  GATEWAY_ENCRYPTION_KEY: current.toString("base64"),
  GATEWAY_ENCRYPTION_PREVIOUS_KEYS: previous.toString("base64"),
});

describe("the field cipher", () => {
  const k1 = key();
  const k2 = key();

  it("seals to a value that names its key and opens where it was sealed", () => {
    const c = aesGcmCipher(k1);
    const sealed = c.seal("whsec_secret", "platform:p1");
    expect(sealed).toMatch(new RegExp(`^enc:v1:${keyId(k1)}:`));
    expect(sealed).not.toContain("whsec_secret");
    expect(c.seal("whsec_secret", "platform:p1")).not.toBe(sealed);
    expect(c.open(sealed, "platform:p1")).toBe("whsec_secret");
    expect(c.isCurrent(sealed)).toBe(true);
  });

  it("does not open a value moved to another place, altered, or sealed with an unknown key", () => {
    const c = aesGcmCipher(k1);
    const sealed = c.seal("whsec_secret", "platform:p1");
    expect(() => c.open(sealed, "platform:p2")).toThrow(FieldCipherError);
    const parts = sealed.split(":");
    const bytes = Buffer.from(parts[4]!, "base64url");
    bytes[0]! ^= 1;
    const flipped = [...parts.slice(0, 4), bytes.toString("base64url")].join(":");
    expect(() => c.open(flipped, "platform:p1")).toThrow(FieldCipherError);
    expect(() => aesGcmCipher(k2).open(sealed, "platform:p1")).toThrow(/neither GATEWAY_ENCRYPTION_KEY nor/);
  });

  it("rotation: the new key opens values of the previous keys, seals with its own, and reads clear values as they are", () => {
    const old = aesGcmCipher(k1).seal("answer", "idem:1");
    const rotated = aesGcmCipher(k2, [k1]);
    expect(rotated.open(old, "idem:1")).toBe("answer");
    expect(rotated.isCurrent(old)).toBe(false);
    expect(rotated.isCurrent(rotated.seal("answer", "idem:1"))).toBe(true);
    expect(rotated.open("written before any key", "idem:1")).toBe("written before any key");
  });

  it("without a key: values stay in clear, and a sealed value is refused rather than used as if it were clear", () => {
    expect(NO_ENCRYPTION.seal("x", "c")).toBe("x");
    expect(isSealed(NO_ENCRYPTION.seal("x", "c"))).toBe(false);
    expect(() => NO_ENCRYPTION.open(aesGcmCipher(k1).seal("x", "c"), "c")).toThrow(/GATEWAY_ENCRYPTION_KEY is not set/);
  });
});

describe("a gateway on Redis with GATEWAY_ENCRYPTION_KEY", () => {
  const k1 = key();
  const k2 = key();
  let h: Harness;
  let redis: Redis;

  beforeAll(async () => {
    h = await startHarness({ store: "redis", env: { GATEWAY_ENCRYPTION_KEY: k1.toString("base64") } });
    redis = await connectRedis(testRedisUrl());
  });
  afterAll(async () => {
    await h?.close();
    const keys = await redis.keys(`${h.config.redisKeyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  async function rawValues(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const k of await redis.keys(`${h.config.redisKeyPrefix}*`)) {
      const type = await redis.type(k);
      if (type === "string") out.set(k, (await redis.get(k))!);
      if (type === "hash") out.set(k, JSON.stringify(await redis.hgetall(k)));
    }
    return out;
  }

  const book = (body: object, k: string) =>
    restBookingClient(h.url).booking.createBooking(bookingRequest(body), {
      ...bearer(h.keys.a, { "idempotency-key": k }),
    });

  it("keeps no webhook secret and no customer detail in clear, and still books and replays", async () => {
    const body = bookingBody(h.bots.a);
    body.booking.customer = { phone: "+15550009999", name: "Zelda Quartermain", email: "zelda@example.org" };
    const k = idempotencyKey();
    const first = await book(body, k);
    const replay = await book(body, k);
    expect(replay.booking!.id).toBe(first.booking!.id);
    expect(h.platform.received.filter((r) => r.path === "/bookings" && r.rawBody.includes("Zelda"))).toHaveLength(1);

    const values = await rawValues();
    const everything = [...values.entries()].flat().join("\n");
    for (const secret of [h.secret, "Zelda", "+15550009999", "zelda@example.org"]) expect(everything).not.toContain(secret);
    const platform = JSON.parse(values.get(`${directoryKeyPrefix(h.config.redisKeyPrefix)}platform:plat_test`)!) as { webhook_secret: string };
    expect(platform.webhook_secret).toMatch(new RegExp(`^enc:v1:${keyId(k1)}:`));
    const records = [...values.entries()].filter(([name]) => name.includes(":idem:")).map(([, v]) => JSON.parse(v) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(0);
    // What the claim and the Lua scripts read stays in clear; the answer does not.
    for (const r of records) expect(Object.keys(r).sort()).toEqual(["e", "f", "s"]);
  });

  it("rotation: `admin reencrypt` with the new key re-seals everything, which the new key alone then reads", async () => {
    const body = bookingBody(h.bots.a);
    const k = idempotencyKey();
    const booked = await book(body, k);
    const env = rotationEnv(h.config.redisKeyPrefix, k2, k1);
    const run = await admin(["reencrypt"], env);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^re-encrypted [1-9]\d* webhook secrets and [1-9]\d* of [1-9]\d* idempotency records with the current key$/m);
    const again = await admin(["reencrypt"], env);
    expect(again.stdout).toMatch(/re-encrypted 0 webhook secrets and 0 of/);

    const sealedValues = [...(await rawValues()).values()].join("\n").match(/enc:v1:[^:]+:/g) ?? [];
    expect(new Set(sealedValues)).toEqual(new Set([`enc:v1:${keyId(k2)}:`]));
    const onlyNew = aesGcmCipher(k2);
    const directory = new RedisDirectoryStore(redis, directoryKeyPrefix(h.config.redisKeyPrefix), onlyNew);
    expect((await directory.getPlatform("plat_test"))!.webhookSecret).toBe(h.secret);
    const records = new RedisIdempotencyStore(redis, h.config.redisKeyPrefix, onlyNew);
    const found = await records.claim(`${h.partners.a}:${createHash("sha256").update(k).digest("hex")}`, "t", "x", 1000);
    expect(found).toMatchObject({ state: "done", outcome: { kind: "answer", body: { booking: { id: booked.booking!.id } } } });
    // The old key alone no longer opens them.
    await expect(new RedisDirectoryStore(redis, directoryKeyPrefix(h.config.redisKeyPrefix), aesGcmCipher(k1)).getPlatform("plat_test")).rejects.toThrow(
      FieldCipherError,
    );
  });

  it("reencrypt without a key is refused", async () => {
    const run = await admin(["reencrypt"], { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: h.config.redisKeyPrefix });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^admin: reencrypt: GATEWAY_ENCRYPTION_KEY is not set/);
  });
});

describe("reencrypt with values no configured key opens", () => {
  it("skips them, re-seals the rest, reports the count and exits 1", async () => {
    const [k1, k2, lost] = [key(), key(), key()];
    const h = await startHarness({ store: "redis", env: { GATEWAY_ENCRYPTION_KEY: k1.toString("base64") } });
    const redis = await connectRedis(testRedisUrl());
    try {
      const booked = [];
      for (let i = 0; i < 2; i++) {
        const k = idempotencyKey();
        const res = await restBookingClient(h.url).booking.createBooking(bookingRequest(bookingBody(h.bots.a)), bearer(h.keys.a, { "idempotency-key": k }));
        booked.push({ k, id: res.booking!.id });
      }
      // A platform and a stored answer sealed with a key the operator no longer has.
      const directoryPrefix = directoryKeyPrefix(h.config.redisKeyPrefix);
      await new RedisDirectoryStore(redis, directoryPrefix, aesGcmCipher(lost)).putPlatform({
        id: "plat_lost",
        webhookUrl: "http://127.0.0.1:9",
        webhookSecret: "whsec_lost_0123456789abcdef",
      });
      const lostRecords = new RedisIdempotencyStore(redis, h.config.redisKeyPrefix, aesGcmCipher(lost));
      await lostRecords.claim("ptnr_a:lost", "t", "fp", 60_000);
      await lostRecords.finish("ptnr_a:lost", "t", { state: "done", fingerprint: "fp", outcome: { kind: "answer", status: 201, body: {} } }, 60_000);
      const lostValues = async () => [await redis.hget(`${directoryPrefix}platform:plat_lost`, "webhook_secret"), await redis.get(lostRecords.keyOf("ptnr_a:lost"))];
      const before = await lostValues();

      const env = rotationEnv(h.config.redisKeyPrefix, k2, k1);
      const run = await admin(["reencrypt"], env);
      expect(run.code).toBe(1);
      expect(run.stdout.split("\n")).toEqual([
        "re-encrypted 1 webhook secrets and 2 of 3 idempotency records with the current key",
        "skipped 1 webhook secrets and 1 idempotency records that no configured key decrypts",
        "",
      ]);
      expect(run.stderr).toMatch(/^admin: reencrypt: 2 values are encrypted with a key that is neither GATEWAY_ENCRYPTION_KEY nor in GATEWAY_ENCRYPTION_PREVIOUS_KEYS.*run reencrypt again\n$/);
      expect(await lostValues()).toEqual(before);

      // Everything else now opens with the new key alone.
      const onlyNew = aesGcmCipher(k2);
      expect((await new RedisDirectoryStore(redis, directoryPrefix, onlyNew).getPlatform("plat_test"))!.webhookSecret).toBe(h.secret);
      const records = new RedisIdempotencyStore(redis, h.config.redisKeyPrefix, onlyNew);
      for (const { k, id } of booked) {
        const found = await records.claim(`${h.partners.a}:${createHash("sha256").update(k).digest("hex")}`, "t", "x", 1000);
        expect(found).toMatchObject({ state: "done", outcome: { body: { booking: { id } } } });
      }
      const again = await admin(["reencrypt"], env);
      expect([again.code, again.stdout.split("\n")[0]]).toEqual([1, "re-encrypted 0 webhook secrets and 0 of 3 idempotency records with the current key"]);
    } finally {
      await h.close();
      await redis.quit();
    }
  });
});

describe("a gateway without the key that sealed a stored answer", () => {
  it("answers the retry 503 service_unavailable and logs the cause at error once, never the answer", async () => {
    const first = await startHarness({ store: "redis", env: { GATEWAY_ENCRYPTION_KEY: key().toString("base64") } });
    const lines: { level: number; msg: string; condition?: string }[] = [];
    const stream = new PassThrough();
    stream.on("data", (chunk: Buffer) => lines.push(...chunk.toString().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))));
    let second: Harness | undefined;
    try {
      const body = bookingBody(first.bots.a);
      body.booking.customer = { phone: "+15550008888", name: "Yannick Sealwright", email: "yannick@example.org" };
      const k = idempotencyKey();
      await restBookingClient(first.url).booking.createBooking(bookingRequest(body), bearer(first.keys.a, { "idempotency-key": k }));
      // Another key only, on the same Redis and prefix (its own seed gives partner A a new API key).
      second = await startHarness({
        store: "redis",
        redisKeyPrefix: first.config.redisKeyPrefix,
        env: { GATEWAY_ENCRYPTION_KEY: key().toString("base64"), LOG_LEVEL: "warn" },
        logStream: stream,
      });
      for (let i = 0; i < 2; i++) {
        await expectRpcError(
          restBookingClient(second.url).booking.createBooking(bookingRequest(body), bearer(second.keys.a, { "idempotency-key": k })),
          Code.Unavailable,
          "service_unavailable",
          { httpStatus: 503 },
        );
      }
      const errors = lines.filter((l) => l.level >= 50);
      expect(errors.map((l) => [l.condition, l.msg])).toEqual([["idempotency_record_undecryptable", expect.stringMatching(/cannot be decrypted/)]]);
      expect(JSON.stringify(lines)).not.toMatch(/Yannick|5550008888|yannick@/);
      expect(first.platform.received.filter((r) => r.path === "/bookings")).toHaveLength(1);
      expect(second.platform.received.filter((r) => r.path === "/bookings")).toHaveLength(0);
    } finally {
      await second?.close();
      await first.close();
    }
  });
});

describe("start-up in Redis mode", () => {
  /** The gateway's log lines at warn and above, as JSON. */
  function recorder(): { stream: PassThrough; warnings: () => string[] } {
    const stream = new PassThrough();
    let text = "";
    stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
    const warnings = () =>
      text
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as { level: number; msg: string })
        .filter((l) => l.level >= 40)
        .map((l) => l.msg);
    return { stream, warnings };
  }

  it.each([
    ["without a key: one warning that secrets and answers are kept in clear", {}, 1],
    ["with a key: none", { GATEWAY_ENCRYPTION_KEY: key().toString("base64") }, 0],
  ] as const)("%s", async (_name, env, expected) => {
    const log = recorder();
    const prefix = `test:${randomBytes(6).toString("hex")}:`;
    const gateway = await createGateway(loadConfig({ REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix, LOG_LEVEL: "warn", ...env }), { logStream: log.stream });
    await gateway.close();
    expect(log.warnings().filter((w) => w.startsWith("GATEWAY_ENCRYPTION_KEY is not set"))).toHaveLength(expected);
  });
});
