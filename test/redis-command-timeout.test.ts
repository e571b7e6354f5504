/**
 * The Redis command timeout trips when Redis does not answer, not when the
 * gateway's own event loop was busy past it while Redis's answer waited in
 * the socket. Plain ioredis (its `commandTimeout` timer) is run the same way
 * for contrast: it fails the command Redis answered in time.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectRedis } from "../src/store/redis-connection.js";
import { RedisServer } from "./support/redis-server.js";

let server: RedisServer;
beforeAll(async () => {
  server = await RedisServer.start();
});
afterAll(() => server.stop());

/** Sends GET, lets it be written, then blocks the event loop for `ms`. */
async function getThenBlock(redis: Redis, ms: number): Promise<unknown> {
  await redis.ping();
  const answer = redis.get("lag-test").then(
    (v) => ({ ok: v }),
    (e: Error) => ({ error: e.message }),
  );
  await new Promise((r) => setImmediate(r));
  const until = performance.now() + ms;
  while (performance.now() < until);
  return answer;
}

it("reads an answer that arrived in time, however late the loop runs", async () => {
  const redis = await connectRedis(server.url, { commandTimeoutMs: 100 });
  try {
    for (let i = 0; i < 5; i++) expect(await getThenBlock(redis, 300)).toEqual({ ok: null });
  } finally {
    redis.disconnect();
  }
});

it("plain ioredis fails that command: its timer runs before the answer is read", async () => {
  const redis = new Redis(server.url, { commandTimeout: 100, enableAutoPipelining: true });
  try {
    expect(await getThenBlock(redis, 300)).toEqual({ error: "Command timed out" });
  } finally {
    redis.disconnect();
  }
});

it("still times out a Redis that does not answer", async () => {
  const redis = await connectRedis(server.url, { commandTimeoutMs: 200 });
  server.pause();
  try {
    const started = performance.now();
    await expect(redis.get("lag-test")).rejects.toThrow("Command timed out");
    const took = performance.now() - started;
    expect(took).toBeGreaterThan(190);
    expect(took).toBeLessThan(2000);
  } finally {
    server.unpause();
    redis.disconnect();
  }
});
