/**
 * A finished booking's record is on a replica before the booking is
 * answered, when the Redis has one; without a replica nothing waits; a
 * replica that does not answer costs one bounded wait and one warning, not
 * one per booking; the caller's deadline bounds the wait. Real redis-servers:
 * a master and a replica started with `--replicaof`, frozen with SIGSTOP.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../src/observability/logger.js";
import { RedisIdempotencyStore } from "../src/idempotency/redis-idempotency-keeper.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { ReplicaAcknowledgement } from "../src/store/replica-acknowledgement.js";
import { RedisServer } from "./support/redis-server.js";

interface Line {
  readonly level: "info" | "warn" | "error";
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

function recorder(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: Line["level"]) => (fields: object, message: string) => void lines.push({ level, message, fields: fields as Record<string, unknown> });
  return { lines, info: at("info"), warn: at("warn"), error: at("error"), debug() {} };
}

const TIMEOUT_MS = 300;

/** Records a claim, then finishes it; returns how long the finish took. */
async function claimAndFinish(store: RedisIdempotencyStore, deadline?: number): Promise<{ id: string; ms: number }> {
  const id = `ptnr_a:${randomBytes(8).toString("hex")}`;
  await store.claim(id, "token", "fp", 60_000);
  const started = performance.now();
  const written = await store.finish(id, "token", { state: "done", fingerprint: "fp", outcome: { kind: "answer", status: 201, body: { ok: true } } }, 60_000, deadline);
  expect(written).toBe(true);
  return { id, ms: performance.now() - started };
}

describe("a Redis with a replica", () => {
  let master: RedisServer;
  let replica: RedisServer;
  let redis: Redis;
  let replicaReader: Redis;
  let acks: ReplicaAcknowledgement;
  let store: RedisIdempotencyStore;
  const log = recorder();
  /** What each finished write reported (the gateway counts it in gateway_replica_acknowledgements_total). */
  const results: string[] = [];

  beforeAll(async () => {
    master = await RedisServer.start();
    replica = await RedisServer.start();
    // Point the replica at the master now that both ports are known.
    const r = await connectRedis(replica.url);
    await r.call("REPLICAOF", "127.0.0.1", String(master.port));
    r.disconnect();
    redis = await connectRedis(master.url);
    const linkedBy = Date.now() + 10_000;
    while (!/slave0:.*state=online/.test(await redis.info("replication"))) {
      if (Date.now() > linkedBy) throw new Error("the replica did not link to the master");
      await new Promise((r) => setTimeout(r, 50));
    }
    acks = await ReplicaAcknowledgement.start(redis, TIMEOUT_MS, log, (result) => results.push(result));
    store = new RedisIdempotencyStore(redis, "test:ack:", undefined, acks);
    replicaReader = await connectRedis(replica.url);
  }, 30_000);
  afterAll(async () => {
    replica?.unpause();
    await acks?.close();
    redis?.disconnect();
    replicaReader?.disconnect();
    await replica?.stop();
    await master?.stop();
  });

  it("the replica has the finished record as soon as finish returns", async () => {
    for (let i = 0; i < 20; i++) {
      const { id } = await claimAndFinish(store);
      // Read from the replica at once: WAIT returned only after it acknowledged.
      const onReplica = await replicaReader.get(store.keyOf(id));
      expect(JSON.parse(onReplica!)).toMatchObject({ s: "done", f: "fp" });
    }
    expect(log.lines.filter((l) => l.level === "warn")).toEqual([]);
    expect(results.splice(0)).toEqual(Array(20).fill("acknowledged"));
  });

  it("a frozen replica: one bounded wait and one warning, then no waiting; a line when it acknowledges again", async () => {
    replica.pause();
    try {
      const first = await claimAndFinish(store);
      expect(first.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
      expect(first.ms).toBeLessThan(TIMEOUT_MS + 1000);
      const later = [];
      for (let i = 0; i < 5; i++) later.push((await claimAndFinish(store)).ms);
      // Written without waiting: far below the timeout each.
      for (const ms of later) expect(ms).toBeLessThan(TIMEOUT_MS / 2);
      expect(results.splice(0)).toEqual(["not_acknowledged", ...Array(5).fill("not_waited")]);
      expect(log.lines.filter((l) => l.level === "warn")).toHaveLength(1);
      expect(log.lines.find((l) => l.level === "warn")).toMatchObject({
        message: expect.stringMatching(/no replica acknowledged a stored booking within 300 ms/),
        fields: { condition: "replica_acknowledgement", subject: "redis", timeoutMs: 300 },
      });
    } finally {
      replica.unpause();
    }
    // After the quiet period the next booking waits again, and is acknowledged.
    await new Promise((r) => setTimeout(r, 5200));
    const { id } = await claimAndFinish(store);
    expect(await replicaReader.get(store.keyOf(id))).not.toBeNull();
    expect(log.lines.at(-1)).toMatchObject({
      level: "warn",
      message: "a replica acknowledges stored bookings again",
      fields: { condition: "replica_acknowledgement", subject: "redis" },
    });
    expect(log.lines.filter((l) => /no replica acknowledged/.test(l.message))).toHaveLength(1);
  }, 20_000);

  it("bookings finishing together share one WAIT: all acknowledged, every record on the replica", async () => {
    results.splice(0);
    const finished = await Promise.all(Array.from({ length: 30 }, () => claimAndFinish(store)));
    for (const { id } of finished) expect(await replicaReader.get(store.keyOf(id))).not.toBeNull();
    expect(results.splice(0)).toEqual(Array(30).fill("acknowledged"));
  });

  it("a frozen replica holds 30 bookings finishing together for about one timeout, not one each", async () => {
    const fresh = recorder();
    const seen: string[] = [];
    const own = await ReplicaAcknowledgement.start(redis, TIMEOUT_MS, fresh, (result) => seen.push(result));
    const s = new RedisIdempotencyStore(redis, "test:ack:", undefined, own);
    replica.pause();
    try {
      const finished = await Promise.all(Array.from({ length: 30 }, () => claimAndFinish(s)));
      // Queued one WAIT behind another they would take 30 × 300 ms for the last; batched, the slowest waits a timeout or two.
      expect(Math.max(...finished.map((f) => f.ms))).toBeLessThan(3 * TIMEOUT_MS + 1000);
      expect(seen).toHaveLength(30);
      expect(seen).toContain("not_acknowledged");
      expect(seen.every((r) => r === "not_acknowledged" || r === "not_waited")).toBe(true);
      expect(fresh.lines.filter((l) => l.level === "warn")).toHaveLength(1);
    } finally {
      replica.unpause();
      await own.close();
    }
  });

  it("never waits past the caller's deadline", async () => {
    const fresh = recorder();
    const quick = await ReplicaAcknowledgement.start(redis, 5000, fresh);
    const s = new RedisIdempotencyStore(redis, "test:ack:", undefined, quick);
    replica.pause();
    try {
      const { ms } = await claimAndFinish(s, Date.now() + 150);
      expect(ms).toBeLessThan(1000);
    } finally {
      replica.unpause();
      await quick.close();
    }
  });
});

describe("a Redis without replicas", () => {
  let server: RedisServer;
  let redis: Redis;
  let acks: ReplicaAcknowledgement;

  beforeAll(async () => {
    server = await RedisServer.start();
    redis = await connectRedis(server.url);
  });
  afterAll(async () => {
    await acks?.close();
    redis?.disconnect();
    await server?.stop();
  });

  it("writes without waiting and without a warning", async () => {
    const log = recorder();
    acks = await ReplicaAcknowledgement.start(redis, 1000, log);
    const store = new RedisIdempotencyStore(redis, "test:noack:", undefined, acks);
    for (let i = 0; i < 5; i++) {
      const { ms } = await claimAndFinish(store);
      expect(ms).toBeLessThan(500);
    }
    const result = await acks.write("test:noack:x", (c) => c.set("test:noack:x", "1"));
    expect(result.acknowledgement).toBe("not_waited");
    expect(log.lines).toEqual([]);
  });
});
