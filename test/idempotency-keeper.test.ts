/**
 * The idempotency keeper's protocol, run against both implementations: Redis
 * (the test Redis, under a prefix of this file's own) and process memory.
 * `perform` stands for the booking webhook.
 */
import { createHash, randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aesGcmCipher, keyId } from "../src/encryption/field-cipher.js";
import { GatewayError } from "../src/errors.js";
import type { IdempotencyKeeper, IdempotentRequest } from "../src/gateway/idempotency.js";
import type { KeeperOptions } from "../src/idempotency/claiming-keeper.js";
import { MemoryIdempotencyKeeper } from "../src/idempotency/memory-idempotency-keeper.js";
import { RedisIdempotencyKeeper } from "../src/idempotency/redis-idempotency-keeper.js";
import type { PlatformAnswer } from "../src/platform/webhook-client.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { testRedisUrl } from "./support/harness.js";

const DEFAULTS: KeeperOptions = { claimTtlMs: 2000, resultTtlMs: 60_000, waitMs: 1000 };

let redis: Redis;
const prefix = `test:${randomBytes(6).toString("hex")}:`;

beforeAll(async () => {
  redis = await connectRedis(testRedisUrl());
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const implementations: ReadonlyArray<[string, (options: KeeperOptions) => IdempotencyKeeper]> = [
  ["memory", (options) => new MemoryIdempotencyKeeper(options)],
  ["redis", (options) => new RedisIdempotencyKeeper(redis, prefix, options)],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function request(overrides: Partial<IdempotentRequest> = {}): IdempotentRequest {
  return { scope: "ptnr_a", key: "key-" + randomBytes(6).toString("hex"), fingerprint: "fp-1", ...overrides };
}

/** A booking webhook that counts its calls and answers after `delayMs`. */
function platform(delayMs = 0, answer: () => PlatformAnswer | Promise<PlatformAnswer> = () => ({ status: 201, body: { booking: { id: "bkg_" + randomBytes(4).toString("hex") } } })) {
  const p = {
    calls: 0,
    perform: async (): Promise<PlatformAnswer> => {
      p.calls++;
      if (delayMs > 0) await sleep(delayMs);
      return answer();
    },
  };
  return p;
}

async function failure(promise: Promise<unknown>): Promise<GatewayError> {
  const e = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GatewayError);
  return e as GatewayError;
}

describe.each(implementations)("%s keeper", (_name, make) => {
  let keeper: IdempotencyKeeper;
  beforeAll(() => {
    keeper = make(DEFAULTS);
  });
  afterAll(() => keeper.close());

  it("performs once and replays the stored answer", async () => {
    const p = platform();
    const req = request();
    const first = await keeper.execute(req, p.perform);
    const second = await keeper.execute(req, p.perform);
    expect(first.replayed).toBe(false);
    expect(second).toEqual({ answer: first.answer, replayed: true });
    expect(p.calls).toBe(1);
  });

  it("runs concurrent duplicates once: the waiters get the answer as replays", async () => {
    const p = platform(150);
    const req = request();
    const results = await Promise.all(Array.from({ length: 20 }, () => keeper.execute(req, p.perform)));
    expect(p.calls).toBe(1);
    expect(new Set(results.map((r) => JSON.stringify(r.answer))).size).toBe(1);
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
  });

  it("scopes keys: the same key in two scopes is two bookings", async () => {
    const p = platform();
    const req = request();
    const a = await keeper.execute(req, p.perform);
    const b = await keeper.execute({ ...req, scope: "ptnr_b" }, p.perform);
    expect([a.replayed, b.replayed]).toEqual([false, false]);
    expect(a.answer).not.toEqual(b.answer);
    expect(p.calls).toBe(2);
  });

  it("rejects another fingerprint while in flight and after, never performing it", async () => {
    const p = platform(200);
    const other = platform();
    const req = request();
    const first = keeper.execute(req, p.perform);
    await sleep(50);
    const during = await failure(keeper.execute({ ...req, fingerprint: "fp-2" }, other.perform));
    expect([during.code, during.httpStatus]).toEqual(["idempotency_key_mismatch", 422]);
    await first;
    const after = await failure(keeper.execute({ ...req, fingerprint: "fp-2" }, other.perform));
    expect(after.code).toBe("idempotency_key_mismatch");
    expect(other.calls).toBe(0);
  });

  it("answers idempotency_key_in_use with Retry-After past the wait bound", async () => {
    const short = make({ ...DEFAULTS, waitMs: 100 });
    const p = platform(400);
    const req = request();
    const first = short.execute(req, p.perform);
    await sleep(30);
    const started = Date.now();
    const e = await failure(short.execute(req, p.perform));
    expect([e.code, e.httpStatus, e.retryAfterSeconds]).toEqual(["idempotency_key_in_use", 409, 1]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect((await first).replayed).toBe(false);
    expect(p.calls).toBe(1);
  });

  it("stores a platform 4xx error envelope and replays it as the same error, marked replayed", async () => {
    const p = platform(0, () => {
      throw GatewayError.fromPlatform(409, "slot_unavailable", "the slot at 10:00 is no longer available");
    });
    const req = request();
    const first = await failure(keeper.execute(req, p.perform));
    const second = await failure(keeper.execute(req, p.perform));
    expect(p.calls).toBe(1);
    expect(first.replayed).toBe(false);
    expect(second.replayed).toBe(true);
    for (const e of [first, second]) {
      expect([e.code, e.httpStatus, e.message, Code[e.connectCode]]).toEqual([
        "slot_unavailable",
        409,
        "the slot at 10:00 is no longer available",
        Code[Code.AlreadyExists],
      ]);
    }
  });

  it.each([400, 404, 409, 422])("stores the platform's %i envelope: a decision about the request itself", async (status) => {
    const p = platform(0, () => {
      throw GatewayError.fromPlatform(status, "refused", "no");
    });
    const req = request();
    await failure(keeper.execute(req, p.perform));
    expect((await failure(keeper.execute(req, p.perform))).replayed).toBe(true);
    expect(p.calls).toBe(1);
  });

  it.each([
    ["platform refused the gateway (401/403)", () => GatewayError.of("platform_rejected", "the platform answered 401 invalid_signature")],
    // The webhook client turns these into platform_rejected; the keeper does not store them either way.
    ["platform 401 envelope", () => GatewayError.fromPlatform(401, "invalid_signature", "bad signature")],
    ["platform 403 envelope", () => GatewayError.fromPlatform(403, "forbidden", "not for you")],
    ["platform 410 envelope", () => GatewayError.fromPlatform(410, "gone", "moved")],
    ["platform 413 envelope", () => GatewayError.fromPlatform(413, "too_large", "big")],
    ["platform 5xx envelope", () => GatewayError.fromPlatform(503, "unavailable", "try later")],
    ["platform 429 envelope", () => GatewayError.fromPlatform(429, "too_many", "slow down")],
    ["platform 408 envelope", () => GatewayError.fromPlatform(408, "timeout", "slow")],
    ["platform unreachable", () => GatewayError.of("platform_unavailable", "ECONNREFUSED")],
    ["platform timeout", () => GatewayError.of("platform_timeout", "late")],
    ["invalid platform answer", () => GatewayError.of("platform_invalid_response", "not JSON")],
    ["unexpected failure", () => new Error("bug")],
  ])("releases the key after %s: the retry is performed", async (_case, makeError) => {
    const error = makeError();
    let calls = 0;
    const perform = async (): Promise<PlatformAnswer> => {
      calls++;
      if (calls === 1) throw error;
      return { status: 201, body: { booking: { id: "bkg_retry" } } };
    };
    const req = request();
    await expect(keeper.execute(req, perform)).rejects.toBe(error);
    const retry = await keeper.execute(req, perform);
    expect(retry).toEqual({ answer: { status: 201, body: { booking: { id: "bkg_retry" } } }, replayed: false });
    expect(calls).toBe(2);
  });

  it("hands the key to a waiter when the holder's attempt is released", async () => {
    let calls = 0;
    const perform = async (): Promise<PlatformAnswer> => {
      calls++;
      await sleep(100);
      if (calls === 1) throw GatewayError.fromPlatform(503, "unavailable", "try later");
      return { status: 201, body: { booking: { id: "bkg_2" } } };
    };
    const req = request();
    const first = keeper.execute(req, perform);
    await sleep(20);
    const second = keeper.execute(req, perform);
    expect((await failure(first)).code).toBe("unavailable");
    expect(await second).toEqual({ answer: { status: 201, body: { booking: { id: "bkg_2" } } }, replayed: false });
    expect(calls).toBe(2);
  });

  it("a waiter stops waiting when its caller goes away", async () => {
    const p = platform(300);
    const req = request();
    const first = keeper.execute(req, p.perform);
    await sleep(20);
    const gone = new AbortController();
    setTimeout(() => gone.abort(), 50);
    const started = Date.now();
    const e = await failure(keeper.execute({ ...req, signal: gone.signal }, p.perform));
    expect(e.code).toBe("canceled");
    expect(Date.now() - started).toBeLessThan(250);
    await first;
  });

  it("a waiter past its deadline gets platform_timeout", async () => {
    const p = platform(300);
    const req = request();
    const first = keeper.execute(req, p.perform);
    await sleep(20);
    const deadline = Date.now() + 80;
    const e = await failure(keeper.execute({ ...req, signal: AbortSignal.timeout(80), deadline }, p.perform));
    expect(e.code).toBe("platform_timeout");
    await first;
  });

  it("when the holder's caller goes away the booking goes on, and its outcome is stored for the retry", async () => {
    const p = platform(200);
    const req = request();
    const gone = new AbortController();
    setTimeout(() => gone.abort(), 50);
    const e = await failure(keeper.execute({ ...req, signal: gone.signal }, p.perform));
    expect(e.code).toBe("canceled");
    const retry = await keeper.execute(req, p.perform);
    expect(retry.replayed).toBe(true);
    expect(p.calls).toBe(1);
  });

  it("a lapsed claim can be taken over, and its late former holder does not overwrite the new outcome", async () => {
    const lapsing = make({ ...DEFAULTS, claimTtlMs: 300 });
    const req = request();
    const late = lapsing.execute(req, async () => {
      await sleep(500);
      return { status: 201, body: { booking: { id: "bkg_late" } } };
    });
    await sleep(350);
    const taken = await lapsing.execute(req, async () => ({ status: 201, body: { booking: { id: "bkg_new" } } }));
    expect(taken).toEqual({ answer: { status: 201, body: { booking: { id: "bkg_new" } } }, replayed: false });
    expect((await late).answer.body).toEqual({ booking: { id: "bkg_late" } });
    const replay = await lapsing.execute(req, async () => ({ status: 500, body: {} }));
    expect(replay).toEqual({ answer: { status: 201, body: { booking: { id: "bkg_new" } } }, replayed: true });
  });

  it("forgets a stored outcome after the result lifetime", async () => {
    const brief = make({ ...DEFAULTS, resultTtlMs: 150 });
    const p = platform();
    const req = request();
    await brief.execute(req, p.perform);
    expect((await brief.execute(req, p.perform)).replayed).toBe(true);
    await sleep(250);
    expect((await brief.execute(req, p.perform)).replayed).toBe(false);
    expect(p.calls).toBe(2);
  });

  it("close waits for bookings whose callers left", async () => {
    const own = make(DEFAULTS);
    const p = platform(200);
    const req = request();
    const started = Date.now();
    const e = await failure(own.execute({ ...req, signal: AbortSignal.timeout(20) }, p.perform));
    expect(e.code).toBe("canceled");
    await own.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect((await own.execute(req, p.perform)).replayed).toBe(true);
    expect(p.calls).toBe(1);
  });
});

describe("redis keeper records", () => {
  it("live at <prefix>idem:<partner>:<sha256(key)>, a claim for the claim TTL, an outcome for the result TTL", async () => {
    const keeper = new RedisIdempotencyKeeper(redis, prefix, { claimTtlMs: 2000, resultTtlMs: 3_600_000, waitMs: 100 });
    const req = request();
    const redisKey = `${prefix}idem:ptnr_a:${createHash("sha256").update(req.key).digest("hex")}`;
    let claimTtl = -1;
    let claimed = "";
    await keeper.execute(req, async () => {
      claimTtl = await redis.pttl(redisKey);
      claimed = (await redis.get(redisKey)) ?? "";
      return { status: 201, body: { booking: { id: "bkg_1" } } };
    });
    expect(claimTtl).toBeGreaterThan(1500);
    expect(claimTtl).toBeLessThanOrEqual(2000);
    expect(JSON.parse(claimed)).toEqual({ s: "pending", t: expect.stringMatching(/^[0-9a-f]{32}$/), f: "fp-1" });
    expect(await redis.pttl(redisKey)).toBeGreaterThan(3_500_000);
    expect(JSON.parse((await redis.get(redisKey))!)).toEqual({
      s: "done",
      f: "fp-1",
      o: { kind: "answer", status: 201, body: { booking: { id: "bkg_1" } } },
    });
    await keeper.close();
  });
});

describe("a stored outcome no configured key decrypts", () => {
  it("is answered service_unavailable, and logged at error once per key id, never the value", async () => {
    const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
    const record = (level: string) => (fields: object, message: string) => void lines.push({ level, fields: fields as Record<string, unknown>, message });
    const log = { info: record("info"), warn: record("warn"), error: record("error"), debug() {} };
    const [k1, k2, k3] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const answer = { status: 201, body: { booking: { id: "bkg_sealed", customer: { name: "Zelda Quartermain" } } } };
    const sealedWith = async (key: Buffer) => {
      const req = request();
      await new RedisIdempotencyKeeper(redis, prefix, DEFAULTS, aesGcmCipher(key)).execute(req, async () => answer);
      return req;
    };
    const [a, b, c] = [await sealedWith(k1), await sealedWith(k1), await sealedWith(k2)];
    const p = platform();
    const keeper = new RedisIdempotencyKeeper(redis, prefix, { ...DEFAULTS, log }, aesGcmCipher(k3));
    for (const req of [a, b, a]) {
      const e = await failure(keeper.execute(req, p.perform));
      expect([e.code, e.retryAfterSeconds]).toEqual(["service_unavailable", 1]);
    }
    expect(lines).toEqual([
      {
        level: "error",
        fields: { condition: "idempotency_record_undecryptable", subject: keyId(k1), reason: expect.stringContaining(`key id ${keyId(k1)}`) },
        message: expect.stringMatching(/^a stored booking outcome cannot be decrypted/),
      },
    ]);
    await failure(keeper.execute(c, p.perform));
    expect(lines.map((l) => l.fields.subject)).toEqual([keyId(k1), keyId(k2)]);
    expect(JSON.stringify(lines)).not.toMatch(/Zelda|bkg_sealed/);
    expect(p.calls).toBe(0);
    // With the sealing key among the previous keys, the same records replay.
    const fixed = new RedisIdempotencyKeeper(redis, prefix, { ...DEFAULTS, log }, aesGcmCipher(k3, [k1, k2]));
    expect(await fixed.execute(a, p.perform)).toEqual({ answer, replayed: true });
    expect(lines).toHaveLength(2);
  });
});
