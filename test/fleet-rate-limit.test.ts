/**
 * The fleet-wide rate limit on one Redis: gateways sharing a Redis share each
 * partner's limit, on every protocol and in sessions; when Redis does not
 * answer, searches go on under each gateway's own limit, and the shared
 * limit is back when Redis is. (The same on a Redis Cluster: redis-cluster.test.ts.)
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FleetRateLimiter, leaseSize, type SharedTokenBucket } from "../src/gateway/fleet-rate-limiter.js";
import type { RateLimit } from "../src/gateway/rate-limiter.js";
import { RedisTokenBucket } from "../src/store/redis-token-bucket.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { bearer, clientsFor, reasonOf, RPC_PROTOCOLS, searchRequest, type RpcProtocol } from "./support/clients.js";
import { startGatewayProcess, type GatewayProcess } from "./support/gateway-process.js";
import { searchBody, startHarness, testRedisUrl, type Harness } from "./support/harness.js";
import { send } from "./support/http1.js";
import { startPeerGateway } from "./support/peer-gateway.js";
import { parsePrometheusText, sampleValue } from "./support/prometheus-text.js";
import { RedisServer } from "./support/redis-server.js";
import { openSession, search, start } from "./support/session-client.js";

const LIMIT = { RATE_LIMIT_PER_SECOND: "5", RATE_LIMIT_BURST: "10" };

type Outcome = "ok" | string;

/** One search on `protocol`: "ok", or the machine code of its error. */
async function searchOutcome(protocol: RpcProtocol | "rest", url: string, key: string, botId: string): Promise<Outcome> {
  if (protocol === "rest") {
    const res = await send(`${url}/v1/availability/search`, { headers: { authorization: `Bearer ${key}` }, body: searchBody(botId) });
    if (res.status === 200) return "ok";
    if (res.status === 429) expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    return res.json?.error?.code ?? `HTTP ${res.status}`;
  }
  try {
    await clientsFor(protocol, url).availability.searchAvailability(searchRequest(searchBody(botId)), bearer(key));
    return "ok";
  } catch (e) {
    return reasonOf(e) ?? String(e);
  }
}

function count(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

interface Fleet {
  readonly h: Harness;
  /** The two gateways' URLs. */
  readonly urls: readonly [string, string];
  close(): Promise<void>;
}

/** Two gateways on the test Redis under one key prefix: one fleet. */
async function fleet(env: Record<string, string> = LIMIT): Promise<Fleet> {
  const h = await startHarness({ store: "redis", env });
  const peer = await startPeerGateway(h);
  return {
    h,
    urls: [h.url, peer.url],
    async close() {
      await peer.close();
      await h.close();
    },
  };
}

describe.each(["rest", ...RPC_PROTOCOLS] as const)("%s: 5/s, burst 10, 30 simultaneous calls over two gateways", (protocol) => {
  let f: Fleet;
  beforeAll(async () => {
    f = await fleet();
  });
  afterAll(() => f?.close());

  it("about 10 pass in all, the rest are rate_limited; another partner is not affected", async () => {
    const { h, urls } = f;
    const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => searchOutcome(protocol, urls[i % 2]!, h.keys.a, h.bots.a)));
    const counts = count(outcomes);
    // One gateway's own limit would let 10 through on each: 20.
    expect(counts.ok).toBeGreaterThanOrEqual(10);
    expect(counts.ok).toBeLessThanOrEqual(12);
    expect(counts).toEqual({ ok: counts.ok, rate_limited: 30 - counts.ok! });
    expect(await searchOutcome(protocol, urls[1], h.keys.b, h.bots.b)).toBe("ok");
  });
});

describe("sessions and unary calls on two gateways", () => {
  let f: Fleet;
  beforeAll(async () => {
    f = await fleet({ RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "4" });
  });
  afterAll(() => f?.close());

  it("draw on one bucket: a session's operations on one gateway, unary calls on the other", async () => {
    const { h, urls } = f;
    const [a, b] = urls;
    expect(await searchOutcome("grpc", b, h.keys.a, h.bots.a)).toBe("ok");
    expect(await searchOutcome("grpc", b, h.keys.a, h.bots.a)).toBe("ok");
    const s = openSession(clientsFor("grpc", a).session, h.keys.a);
    s.send(start("s", h.bots.a)); // opening the session takes the third token
    expect((await s.next()).result.case).toBe("started");
    s.send(search("1", searchBody(h.bots.a)));
    s.send(search("2", searchBody(h.bots.a)));
    const answers = [await s.next(), await s.next()];
    s.close();
    await s.rest();
    const byId = Object.fromEntries(answers.map((x) => [x.requestId, x.result]));
    expect(byId["1"]!.case).toBe("searchAvailability");
    expect(byId["2"]).toMatchObject({ case: "error", value: { code: "rate_limited" } });
    expect(await searchOutcome("grpc", b, h.keys.a, h.bots.a)).toBe("rate_limited");
  });
});

describe("the shared bucket in Redis", () => {
  it("refills at the sustained rate, tells the wait, and expires once it would be full", async () => {
    const redis = await connectRedis(testRedisUrl());
    try {
      const bucket = new RedisTokenBucket(redis, `test:${randomBytes(6).toString("hex")}:`);
      const limit = { perSecond: 10, burst: 3 };
      for (let i = 0; i < 3; i++) expect(await bucket.take("p", limit, 1)).toEqual({ taken: 1, waitMs: 0 });
      const { taken, waitMs: wait } = await bucket.take("p", limit, 1);
      expect(taken).toBe(0);
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(100);
      expect(await bucket.take("q", limit, 1)).toEqual({ taken: 1, waitMs: 0 });
      const ttl = await redis.pttl(bucket.keyOf("p"));
      // Full again after burst / rate = 300 ms; kept a second longer.
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1300);
      await new Promise((r) => setTimeout(r, wait + 20));
      expect((await bucket.take("p", limit, 1)).taken).toBe(1);
    } finally {
      redis.disconnect();
    }
  });

  it("gives a lease of as many tokens as are free, up to the number asked for", async () => {
    const redis = await connectRedis(testRedisUrl());
    try {
      const bucket = new RedisTokenBucket(redis, `test:${randomBytes(6).toString("hex")}:`);
      const limit = { perSecond: 1, burst: 25 };
      expect(await bucket.take("p", limit, 10)).toEqual({ taken: 10, waitMs: 0 });
      expect(await bucket.take("p", limit, 10)).toEqual({ taken: 10, waitMs: 0 });
      expect(await bucket.take("p", limit, 10)).toEqual({ taken: 5, waitMs: 0 });
      const empty = await bucket.take("p", limit, 10);
      expect(empty.taken).toBe(0);
      expect(empty.waitMs).toBeGreaterThan(0);
      expect(empty.waitMs).toBeLessThanOrEqual(1000);
    } finally {
      redis.disconnect();
    }
  });
});

describe("leases", () => {
  it("are about 50 ms of the rate, at most a tenth of the burst, at least 1", () => {
    expect(leaseSize({ perSecond: 200, burst: 400 })).toBe(10);
    expect(leaseSize({ perSecond: 1000, burst: 200 })).toBe(20);
    expect(leaseSize({ perSecond: 5, burst: 10 })).toBe(1);
    expect(leaseSize({ perSecond: 1, burst: 3 })).toBe(1);
    expect(leaseSize({ perSecond: 1_000_000, burst: 10_000_000 })).toBe(50_000);
  });

  /** A gateway's limiter that waits for the shared bucket up to 5 s: a busy machine's slow answer does not count as Redis lost. */
  const limiterOn = (shared: SharedTokenBucket, limit: RateLimit) => new FleetRateLimiter(limit, shared, undefined, undefined, undefined, 5000);

  /** Counts the round trips to a real shared bucket. */
  function counting(bucket: SharedTokenBucket): SharedTokenBucket & { trips: number } {
    return {
      trips: 0,
      take(partnerId, limit, count) {
        this.trips++;
        return bucket.take(partnerId, limit, count);
      },
    };
  }

  it("hold four gateways together to the limit within four leases, with one round trip per lease", async () => {
    const redis = await connectRedis(testRedisUrl());
    try {
      const limit = { perSecond: 200, burst: 400 };
      const lease = leaseSize(limit);
      const shared = counting(new RedisTokenBucket(redis, `test:${randomBytes(6).toString("hex")}:`));
      const gateways = Array.from({ length: 4 }, () => limiterOn(shared, limit));
      const started = performance.now();
      // Each gateway's own bucket would let 400 through: 1,600 in all without the shared one.
      const outcomes = await Promise.all(
        Array.from({ length: 1600 }, async (_, i) => {
          try {
            await gateways[i % 4]!.charge("p");
            return "ok";
          } catch (e) {
            return (e as { code?: string }).code ?? String(e);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const counts = count(outcomes);
      expect(counts).toEqual({ ok: counts.ok, rate_limited: 1600 - counts.ok! });
      const allowed = limit.burst + Math.ceil(limit.perSecond * seconds);
      expect(counts.ok).toBeLessThanOrEqual(allowed + 4 * (lease - 1));
      expect(counts.ok).toBeGreaterThanOrEqual(limit.burst - 4 * (lease - 1));
      // One round trip per lease (the last ones may come back short), and one per refusal burst at most per gateway and lease.
      expect(shared.trips).toBeLessThan(counts.ok! / lease + 4 * 4);
    } finally {
      redis.disconnect();
    }
  });

  it("spend tokens without a round trip, and calls that find the lease empty share one", async () => {
    const redis = await connectRedis(testRedisUrl());
    try {
      const limit = { perSecond: 1000, burst: 10_000 };
      const shared = counting(new RedisTokenBucket(redis, `test:${randomBytes(6).toString("hex")}:`));
      const limiter = limiterOn(shared, limit);
      // 50 concurrent calls: one round trip for a lease of 50.
      await Promise.all(Array.from({ length: 50 }, () => limiter.charge("p")));
      expect(shared.trips).toBe(1);
      // The 51st needs a new lease.
      expect(limiter.charge("p")).toBeInstanceOf(Promise);
      await limiter.charge("p");
      expect(shared.trips).toBe(2);
      // Paid from the lease: no promise, no round trip.
      expect(limiter.charge("p")).toBeUndefined();
      expect(shared.trips).toBe(2);
      // Another partner has a lease of its own.
      await limiter.charge("q");
      expect(shared.trips).toBe(3);
    } finally {
      redis.disconnect();
    }
  });

  it("of one token: calls that waited for a round trip take a token each on the next, not one round trip each", async () => {
    const redis = await connectRedis(testRedisUrl());
    try {
      const limit = { perSecond: 10, burst: 12 };
      expect(leaseSize(limit)).toBe(1);
      const shared = counting(new RedisTokenBucket(redis, `test:${randomBytes(6).toString("hex")}:`));
      const limiter = limiterOn(shared, limit);
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, async () => {
          try {
            await limiter.charge("p");
            return "ok";
          } catch (e) {
            return (e as { code?: string }).code ?? String(e);
          }
        }),
      );
      expect(outcomes).toEqual(Array(10).fill("ok"));
      // One token for the first call, then nine for the nine that waited.
      expect(shared.trips).toBe(2);
      // Nothing is held: the shared bucket still has the other 2 of its 12 tokens (and what it refilled meanwhile).
      expect((await shared.take("p", limit, 5)).taken).toBeGreaterThanOrEqual(2);
    } finally {
      redis.disconnect();
    }
  });
});

describe("a frozen Redis", () => {
  it("after each second without the shared bucket one call tries it again, the others do not wait", async () => {
    const own = await RedisServer.start();
    const redis = await connectRedis(own.url);
    try {
      // A lease of one token: every call goes to the shared bucket.
      const limiter = new FleetRateLimiter({ perSecond: 10, burst: 1000 }, new RedisTokenBucket(redis, "test:frozen:"));
      await limiter.charge("p");
      own.pause();
      // The first call finds out, after the wait for the shared bucket.
      await limiter.charge("p");
      await new Promise((r) => setTimeout(r, 1100));
      const timed = async () => {
        const started = performance.now();
        await limiter.charge("p");
        return performance.now() - started;
      };
      const took = await Promise.all(Array.from({ length: 20 }, timed));
      // The probe waits the 250 ms for the frozen bucket; the other 19 go on under the gateway's own limit.
      expect(took.filter((ms) => ms >= 200)).toHaveLength(1);
    } finally {
      own.unpause();
      redis.disconnect();
      await own.stop();
    }
  });
});

describe("Redis unreachable", () => {
  let redis: RedisServer;
  let seeded: Harness;
  let gw: GatewayProcess;
  beforeAll(async () => {
    // With its data kept: the directory is still there when Redis is back.
    redis = await RedisServer.start({ appendfsync: "always" });
    seeded = await startHarness({ redisUrl: redis.url, env: { RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "3" } });
    gw = await startGatewayProcess({
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: seeded.config.redisKeyPrefix,
      RATE_LIMIT_PER_SECOND: "1",
      RATE_LIMIT_BURST: "3",
      // The directory stays cached through the outage, so searches can go on.
      DIRECTORY_CACHE_TTL_MS: "60000",
    });
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await seeded?.close();
    await redis?.stop();
  });

  it("searches go on under the gateway's own limit, with one warning; the shared limit is back with Redis", async () => {
    // Another gateway's calls use up the shared bucket...
    for (let i = 0; i < 3; i++) await seeded.gateway.rateLimiter.charge(seeded.partners.b);
    expect(await searchOutcome("grpc", gw.url, seeded.keys.b, seeded.bots.b)).toBe("rate_limited");
    // ...and partner A's first search caches its route before Redis goes.
    expect(await searchOutcome("grpc", gw.url, seeded.keys.a, seeded.bots.a)).toBe("ok");

    await redis.kill();
    // Partner A: its own gateway's bucket has 2 tokens left of 3; the third call is refused locally.
    const during = [];
    for (let i = 0; i < 3; i++) during.push(await searchOutcome("grpc", gw.url, seeded.keys.a, seeded.bots.a));
    expect(during).toEqual(["ok", "ok", "rate_limited"]);
    const warnings = gw.log.filter((l) => l.level === 40 && /fleet-wide rate limit is unavailable/.test(l.msg));
    expect(warnings).toHaveLength(1);
    const metrics = parsePrometheusText(await (await fetch(`${gw.url}/metrics`)).text());
    expect(sampleValue(metrics, "gateway_redis_errors_total", { source: "rate_limit" })).toBeGreaterThanOrEqual(1);

    await redis.resume();
    // Back: the bucket Redis lost is full again, and the shared limit applies once more.
    expect(gw.log.some((l) => l.msg === "the fleet-wide rate limit is available again")).toBe(false);
    await expect
      .poll(
        async () => {
          await searchOutcome("grpc", gw.url, seeded.keys.a, seeded.bots.a);
          return gw.log.some((l) => l.msg === "the fleet-wide rate limit is available again");
        },
        { timeout: 10_000, interval: 1100 },
      )
      .toBe(true);
  }, 30_000);
});
