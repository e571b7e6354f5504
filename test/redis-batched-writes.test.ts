/**
 * The gateway's Redis connection writes the commands of one turn of the event
 * loop together (store/tick-batched-writes.ts): counted here at the socket,
 * against a real Redis. Each command is still answered on its own, in order,
 * and a connection that breaks while commands wait corked fails them rather
 * than leaving them hanging.
 */
import type { Redis } from "ioredis";
import { afterEach, expect, inject, it } from "vitest";
import { connectRedis } from "../src/store/redis-connection.js";

const prefix = `batched-writes:${process.pid}:${Date.now()}:`;
const open: Redis[] = [];
afterEach(async () => {
  for (const redis of open.splice(0)) {
    if (redis.status === "ready") await redis.del(...(await redis.keys(`${prefix}*`)), `${prefix}none`);
    redis.disconnect();
  }
});

async function connect(): Promise<Redis> {
  const redis = await connectRedis(inject("redisUrl"));
  open.push(redis);
  return redis;
}

/** Counts the socket's writes to the kernel (`_write` for one chunk, `_writev` for several) and the chunks they carry. */
function countWrites(redis: Redis): { writes: number; chunks: number } {
  const counted = { writes: 0, chunks: 0 };
  const socket = redis.stream as unknown as {
    _write: (chunk: unknown, encoding: string, cb: () => void) => void;
    _writev: (chunks: unknown[], cb: () => void) => void;
  };
  const write = socket._write.bind(socket);
  const writev = socket._writev.bind(socket);
  socket._write = (chunk, encoding, cb) => {
    counted.writes++;
    counted.chunks++;
    write(chunk, encoding, cb);
  };
  socket._writev = (chunks, cb) => {
    counted.writes++;
    counted.chunks += chunks.length;
    writev(chunks, cb);
  };
  return counted;
}

it("sends the commands of one turn in one write, and answers each in order", async () => {
  const redis = await connect();
  await redis.ping();
  const counted = countWrites(redis);
  const answers = await Promise.all(
    Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? redis.set(`${prefix}${i}`, `v${i}`, "PX", 60_000, "GET") : redis.get(`${prefix}${i - 1}`))),
  );
  expect(answers).toEqual(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? null : `v${i - 1}`)));
  expect(counted).toEqual({ writes: 1, chunks: 100 });
});

it("sends together the commands of several callbacks of one turn, as requests read in one poll send theirs", async () => {
  const redis = await connect();
  await redis.ping();
  const counted = countWrites(redis);
  const replies = await Promise.all(
    Array.from({ length: 8 }, (_, i) => new Promise((resolve) => setImmediate(() => resolve(redis.set(`${prefix}cb${i}`, "x", "PX", 60_000))))),
  );
  expect(replies).toEqual(Array.from({ length: 8 }, () => "OK"));
  expect(counted).toEqual({ writes: 1, chunks: 8 });
});

it("writes a lone command in the same turn of the event loop, not after a timer", async () => {
  const redis = await connect();
  await redis.ping();
  const counted = countWrites(redis);
  for (let i = 0; i < 20; i++) {
    const reply = redis.get(`${prefix}none`);
    await new Promise((resolve) => setImmediate(resolve));
    expect(counted.writes).toBe(i + 1);
    expect(await reply).toBeNull();
  }
});

it("commands of separate turns go in separate writes", async () => {
  const redis = await connect();
  await redis.ping();
  const counted = countWrites(redis);
  for (let i = 0; i < 5; i++) await Promise.all([redis.get(`${prefix}none`), redis.get(`${prefix}none`)]);
  expect(counted).toEqual({ writes: 5, chunks: 10 });
});

it("a transaction sent in the same turn as plain commands goes in the same write, answered in order", async () => {
  const redis = await connect();
  await redis.ping();
  const counted = countWrites(redis);
  const [before, transaction, after] = await Promise.all([
    redis.set(`${prefix}tx`, "a"),
    redis.multi().append(`${prefix}tx`, "b").get(`${prefix}tx`).exec(),
    redis.get(`${prefix}tx`),
  ]);
  expect([before, transaction, after]).toEqual(["OK", [[null, 2], [null, "ab"]], "ab"]);
  expect(counted.writes).toBe(1);
});

it("after a reconnect, the new connection batches a turn's commands too", async () => {
  const redis = await connect();
  await redis.ping();
  const ready = new Promise((resolve) => redis.once("ready", resolve));
  redis.stream.destroy();
  await ready;
  const counted = countWrites(redis);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => redis.set(`${prefix}re${i}`, `v${i}`, "GET")));
  expect(answers).toEqual(Array.from({ length: 20 }, () => null));
  expect(counted).toEqual({ writes: 1, chunks: 20 });
});

it("fails the commands it holds when the connection breaks in the same turn", async () => {
  const redis = await connect();
  await redis.ping();
  const replies = Array.from({ length: 10 }, () => redis.get(`${prefix}none`).then(() => "answered", (e: Error) => e.message));
  redis.stream.destroy();
  const settled = await Promise.race([Promise.all(replies), new Promise((resolve) => setTimeout(() => resolve("hung"), 3000))]);
  // ioredis fails commands in flight on a broken connection (maxRetriesPerRequest 0): none is left waiting.
  expect(settled).toHaveLength(10);
  for (const outcome of settled as string[]) expect(outcome).toMatch(/max retries per request|Connection is closed/);
});
