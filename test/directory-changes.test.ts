/**
 * Directory change notices: a write through the Redis store reaches every
 * watcher of its prefix (and no other), and a watcher that lost its
 * connection forgets its cache when it is back and hears later writes again.
 * A Redis that stops answering fails the subscription, and so the gateway's
 * start, within the command timeout instead of holding it for ever; the
 * start that failed closes what it had opened.
 */
import { Writable } from "node:stream";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createGateway } from "../src/gateway/create-gateway.js";
import { watchDirectoryChanges, type DirectoryWatch } from "../src/store/directory-changes.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { RedisDirectoryStore } from "../src/store/redis-directory-store.js";
import { RedisServer } from "./support/redis-server.js";

let server: RedisServer;
let redis: Redis;
let watch: DirectoryWatch;
let other: DirectoryWatch;
let heard = 0;
let reconnected = 0;
let heardByOther = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  redis = await connectRedis(server.url);
  watch = await watchDirectoryChanges(redis, "a:dir:", (why) => (why === "written" ? heard++ : reconnected++));
  other = await watchDirectoryChanges(redis, "b:dir:", (why) => why === "written" && heardByOther++);
});
afterAll(async () => {
  await watch.close();
  await other.close();
  redis.disconnect();
  await server.stop();
});

it("a write is announced to the watchers of its prefix only", async () => {
  const before = { heard, heardByOther };
  await new RedisDirectoryStore(redis, "a:dir:").putBot({ id: "bot_1", partnerId: "p", accountId: "a" });
  await expect.poll(() => heard).toBe(before.heard + 1);
  expect(heardByOther).toBe(before.heardByOther);
});

it("after Redis comes back, the watcher forgets its cache and hears writes again", async () => {
  await server.kill();
  const before = { heard, reconnected };
  await server.resume();
  // The reconnection itself counts as a change: notices may have been missed.
  await expect.poll(() => reconnected, { timeout: 5000 }).toBeGreaterThan(before.reconnected);
  await expect.poll(() => redis.status, { timeout: 5000 }).toBe("ready");
  // Written until heard: the subscription may be renewed a moment after the connection.
  await expect
    .poll(
      async () => {
        await new RedisDirectoryStore(redis, "a:dir:").putPartner({ id: "p", name: "P", keyHash: "00" });
        return heard;
      },
      { timeout: 5000, interval: 100 },
    )
    .toBeGreaterThan(before.heard);
});

/** Settles with how `promise` ended, or "still waiting" after `ms`. */
function within(promise: Promise<unknown>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(
      () => "resolved",
      (e: unknown) => `rejected: ${(e as Error).message}`,
    ),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve("still waiting"), ms))),
  ]).finally(() => clearTimeout(timer));
}

it("a frozen Redis fails the subscription within the command timeout", async () => {
  const own = await RedisServer.start();
  const connection = await connectRedis(own.url);
  own.pause();
  try {
    expect(await within(watchDirectoryChanges(connection, "frozen:dir:", () => {}), 8000)).toMatch(/^rejected: /);
  } finally {
    own.unpause();
    connection.disconnect();
    await own.stop();
  }
}, 15_000);

it("a Redis that freezes while the gateway starts fails the start instead of holding it", async () => {
  const own = await RedisServer.start();
  // Frozen right after the gateway's first reads (its durability check logs), before it subscribes to change notices.
  const log = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (/bookings are not durable/.test(chunk.toString())) own.pause();
      done();
    },
  });
  try {
    const started = createGateway(loadConfig({ REDIS_URL: own.url, LOG_LEVEL: "warn" }), { logStream: log });
    expect(await within(started, 12_000)).toMatch(/^rejected: /);
    // What it had opened is closed: once Redis answers again, no connection of the gateway's is left (only this one).
    own.unpause();
    const observer = await connectRedis(own.url);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect(((await observer.client("LIST")) as string).trim().split("\n")).toHaveLength(1);
    } finally {
      observer.disconnect();
    }
  } finally {
    own.unpause();
    await own.stop();
  }
}, 20_000);
