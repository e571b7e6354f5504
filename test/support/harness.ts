/**
 * A running gateway for tests: real sockets on a free port, a real reference
 * platform that records what it receives, and a directory with two partners:
 *
 * - partner A (`keys.a`) owns `bots.a` and `bots.noWebhook` (an account whose
 *   platform has no webhook);
 * - partner B (`keys.b`) owns `bots.b`.
 *
 * The directory and the idempotency records live in the test run's Redis,
 * under a key prefix of the harness's own, so test files never see each
 * other's keys, and `close()` deletes them, so a shared Redis (`REDIS_URL`)
 * does not fill up with test data; `store: "memory"` is the embedded default
 * instead, for the tests of that default.
 *
 * The platform checks every webhook's signature against the documented format
 * (test/support/webhook-signature.ts), not with the gateway's code, and
 * answers a badly signed webhook with 401 `invalid_signature` even when a test
 * scripts its answers.
 */
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { inject, onTestFinished } from "vitest";
import { loadConfig, type Config } from "../../src/config.js";
import { ReferencePlatform, type ReferencePlatformOptions } from "../../src/demo/reference-platform.js";
import { createGateway } from "../../src/gateway/create-gateway.js";
import { connectRedis } from "../../src/store/redis-connection.js";
import type { Gateway } from "../../src/gateway/gateway.js";
import { buildServer } from "../../src/server/app.js";
import type { RedisConnection } from "../../src/store/redis-connection.js";
import { importSeed, parseSeed } from "../../src/store/seed.js";
import { servingPathEnv } from "./commands.js";
import { documentedSignatureValid } from "./webhook-signature.js";

export interface HarnessOptions {
  /** Where the directory and the idempotency records live; Redis by default. */
  readonly store?: "memory" | "redis";
  /** Configuration variables, as the environment would give them. */
  readonly env?: Record<string, string>;
  /** Platform answers for the harness's whole life; the reference behaviour otherwise. */
  readonly respond?: PlatformScript;
  /** Redis URL to use instead of the test run's. */
  readonly redisUrl?: string;
  /** Key prefix to share with another harness (two gateways, one Redis). */
  readonly redisKeyPrefix?: string;
  /** Where the gateway logs (with `env.LOG_LEVEL`); nowhere by default. */
  readonly logStream?: NodeJS.WritableStream;
}

/** Answers a webhook instead of the reference platform, when it returns a reply. */
export type PlatformScript = NonNullable<ReferencePlatformOptions["respond"]>;

export interface Harness {
  readonly url: string;
  readonly port: number;
  readonly config: Config;
  readonly gateway: Gateway & { redis: RedisConnection | undefined };
  readonly app: FastifyInstance;
  readonly platform: ReferencePlatform;
  readonly secret: string;
  readonly keys: { readonly a: string; readonly b: string };
  readonly partners: { readonly a: string; readonly b: string };
  readonly bots: { readonly a: string; readonly b: string; readonly noWebhook: string };
  readonly accounts: { readonly a: string; readonly b: string };
  /**
   * Platform answers for the test that sets it: cleared when that test
   * finishes, so tests in a file never see each other's scripts. Takes
   * precedence over the `respond` option.
   */
  script: PlatformScript | undefined;
  /** Writes the directory again (after a Redis without persistence restarted). */
  reseed(): Promise<void>;
  close(): Promise<void>;
}

export function testRedisUrl(): string {
  return inject("redisUrl");
}

export function newPartnerKey(): string {
  return "sk_ptnr_test_" + randomBytes(16).toString("hex");
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const secret = "whsec_test_" + randomBytes(8).toString("hex");
  let script: PlatformScript | undefined;
  const platform = await new ReferencePlatform({
    secret,
    record: true,
    verifySignature: (key, headers, rawBody) => documentedSignatureValid(key, headers["x-dialstack-signature"], rawBody),
    // A script answers only properly signed webhooks; the reference answers the others with invalid_signature.
    respond: async (req, reference) =>
      req.signatureValid ? ((await script?.(req, reference)) ?? options.respond?.(req, reference)) : undefined,
  }).start();
  const keys = { a: newPartnerKey(), b: newPartnerKey() };
  const useRedis = options.store !== "memory";
  const config = loadConfig({
    PORT: "0",
    LOG_LEVEL: "silent",
    // Rate limits are tested on their own (test/rate-limit.test.ts); load tests here would trip them.
    RATE_LIMIT_PER_SECOND: "0",
    ...servingPathEnv(),
    ...(useRedis
      ? {
          REDIS_URL: options.redisUrl ?? testRedisUrl(),
          REDIS_KEY_PREFIX: options.redisKeyPrefix ?? `test:${randomBytes(6).toString("hex")}:`,
        }
      : {}),
    ...options.env,
  });
  const gateway = await createGateway(config, options.logStream === undefined ? {} : { logStream: options.logStream });
  const seed = parseSeed({
    partners: [
      { id: "ptnr_a", name: "Partner A", api_key: keys.a },
      { id: "ptnr_b", name: "Partner B", api_key: keys.b },
    ],
    platforms: [
      { id: "plat_test", webhook_url: platform.url, webhook_secret: secret },
      { id: "plat_nohook" },
    ],
    accounts: [
      { id: "acct_a", platform_id: "plat_test" },
      { id: "acct_b", platform_id: "plat_test" },
      { id: "acct_nohook", platform_id: "plat_nohook" },
    ],
    bots: [
      { id: "bot_a", partner_id: "ptnr_a", account_id: "acct_a" },
      { id: "bot_b", partner_id: "ptnr_b", account_id: "acct_b" },
      { id: "bot_nohook", partner_id: "ptnr_a", account_id: "acct_nohook" },
    ],
  });
  await importSeed(gateway.directory.store, seed);
  const app = await buildServer(gateway, options.logStream === undefined ? { logger: false } : {});
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    config,
    gateway,
    app,
    platform,
    secret,
    keys,
    partners: { a: "ptnr_a", b: "ptnr_b" },
    bots: { a: "bot_a", b: "bot_b", noWebhook: "bot_nohook" },
    accounts: { a: "acct_a", b: "acct_b" },
    get script() {
      return script;
    },
    set script(next) {
      script = next;
      if (next !== undefined) {
        onTestFinished(() => {
          if (script === next) script = undefined;
        });
      }
    },
    reseed: () => importSeed(gateway.directory.store, seed),
    async close() {
      await app.close();
      await gateway.close();
      await platform.close();
      // Only a prefix the harness chose is its to delete; one shared with another harness belongs to that one.
      if (useRedis && options.redisKeyPrefix === undefined) await deleteKeysUnder(config.redisUrl!, config.redisKeyPrefix).catch(() => {});
    },
  };
}

/** SCAN steps (of up to 1000 keys looked at each) a clean-up takes at most. */
const MAX_CLEANUP_STEPS = 1000;

/** Deletes every key under `prefix`, with SCAN and DEL in bounded steps (never `KEYS`, which blocks a shared Redis). */
export async function deleteKeysUnder(redisUrl: string, prefix: string): Promise<void> {
  const redis = await connectRedis(redisUrl, { commandTimeoutMs: 5000 });
  try {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
    let cursor = "0";
    for (let step = 0; step < MAX_CLEANUP_STEPS; step++) {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
      if (cursor === "0") return;
    }
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

/** A search body the reference platform answers with slots: a weekday, 09:00 to 12:00 UTC. */
export function searchBody(botId: string, day = "2030-01-07"): { bot_id: string; query: { filter: { start_at_range: { start_at: string; end_at: string } } } } {
  return { bot_id: botId, query: { filter: { start_at_range: { start_at: `${day}T09:00:00Z`, end_at: `${day}T12:00:00Z` } } } };
}

let slot = 0;
/** A booking body for a fresh slot, so tests never collide on the reference platform. */
export function bookingBody(botId: string): {
  bot_id: string;
  booking: { start_at: string; duration_minutes: number; customer: { phone: string; name: string; email: string }; notes: string };
} {
  slot++;
  const start = new Date(Date.UTC(2031, 0, 1, 9, 0) + slot * 30 * 60_000 + Math.floor(Math.random() * 1e6) * 86_400_000);
  return {
    bot_id: botId,
    booking: {
      start_at: start.toISOString().replace(".000Z", "Z"),
      duration_minutes: 30,
      customer: { phone: "+15551234567", name: "John Doe", email: "john@example.com" },
      notes: "first visit",
    },
  };
}

/** A lookup body for `phone`; the reference platform knows only `DEMO_CALLER`. */
export function lookupBody(botId: string, phone: string): { bot_id: string; customer: { phone: string } } {
  return { bot_id: botId, customer: { phone } };
}

export function idempotencyKey(): string {
  return "key-" + randomBytes(8).toString("hex");
}
