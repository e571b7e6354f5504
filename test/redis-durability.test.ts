/**
 * What the gateway says at start about the Redis it stores bookings in, read
 * from real redis-servers started with each persistence setting, and from one
 * that refuses `CONFIG` as managed Redis services do.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { Logger } from "../src/observability/logger.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { checkRedisDurability } from "../src/store/redis-durability.js";
import { RedisServer, type RedisServerOptions } from "./support/redis-server.js";

const servers: RedisServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

interface Line {
  readonly level: "info" | "warn" | "error";
  readonly fields: object;
  readonly message: string;
}

function recorder(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: Line["level"]) => (fields: object, message: string) => void lines.push({ level, fields, message });
  return { lines, info: at("info"), warn: at("warn"), error: at("error"), debug() {} };
}

async function check(options: RedisServerOptions) {
  const server = await RedisServer.start(options);
  servers.push(server);
  const redis = await connectRedis(server.url);
  try {
    const log = recorder();
    return { verdict: await checkRedisDurability(redis, log), lines: log.lines };
  } finally {
    await redis.quit();
  }
}

describe("checkRedisDurability", () => {
  it("no append-only file: one warning that bookings are not durable", async () => {
    const { verdict, lines } = await check({});
    expect(verdict).toEqual({ kind: "not_durable", persistence: { appendonly: "no", appendfsync: "everysec" } });
    expect(lines.map((l) => l.level)).toEqual(["warn"]);
    expect(lines[0]!.message).toMatch(/^bookings are not durable: .*appendonly no/);
  });

  it("appendfsync no: one warning", async () => {
    const { verdict, lines } = await check({ appendfsync: "no" });
    expect(verdict.kind).toBe("not_durable");
    expect(lines.map((l) => l.level)).toEqual(["warn"]);
    expect(lines[0]!.message).toMatch(/appendfsync no/);
  });

  it.each(["always", "everysec"] as const)("appendfsync %s: durable, no warning", async (appendfsync) => {
    const { verdict, lines } = await check({ appendfsync });
    expect(verdict).toEqual({ kind: "durable", persistence: { appendonly: "yes", appendfsync } });
    expect(lines.map((l) => l.level)).toEqual(["info"]);
  });

  it("CONFIG refused (a managed Redis): warns that it could not check, does not fail", async () => {
    const { verdict, lines } = await check({ args: ["--rename-command", "CONFIG", ""] });
    expect(verdict.kind).toBe("unknown");
    expect(lines.map((l) => l.level)).toEqual(["warn"]);
    expect(lines[0]!.message).toMatch(/cannot read the Redis persistence settings/);
  });
});
