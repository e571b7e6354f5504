/**
 * Assembles the gateway's components from a `Config`: the directory store
 * (Redis when `REDIS_URL` is set, memory otherwise), its cache, the webhook
 * client, the idempotency keeper (in Redis too when there is one), the
 * encryption of what they keep in Redis, and the business logic
 * (appointments and customers). With Redis it also says at start whether
 * bookings are durable and encrypted.
 */
import type { Redis } from "ioredis";
import { ConfigError, type Config } from "../config.js";
import type { Gateway } from "../server/app.js";
import { fieldCipherOf } from "../encryption/field-cipher.js";
import { silentLog, type Log } from "../log.js";
import { WebhookClient } from "../platform/webhook-client.js";
import { Directory } from "../store/directory.js";
import type { DirectoryStore } from "../store/directory-store.js";
import { MemoryDirectoryStore } from "../store/memory-directory-store.js";
import { directoryKeyPrefix, RedisDirectoryStore } from "../store/redis-directory-store.js";
import { watchDirectoryChanges } from "../store/directory-changes.js";
import { connectRedis, displayRedisUrl } from "../store/redis-connection.js";
import { checkRedisDurability } from "../store/redis-durability.js";
import { importSeed, readSeedFile } from "../store/seed.js";
import { MemoryIdempotencyKeeper } from "../idempotency/memory-idempotency-keeper.js";
import { RedisIdempotencyKeeper } from "../idempotency/redis-idempotency-keeper.js";
import { Appointments } from "./appointments.js";
import { Customers } from "./customers.js";
import type { IdempotencyKeeper } from "./idempotency.js";
import { RateLimiter } from "./rate-limiter.js";
import { SessionRegistry } from "./session-registry.js";
import { OverloadMonitor } from "../server/overload.js";

export interface GatewayParts {
  /** Use this directory store instead of the one the config names. */
  readonly directoryStore?: DirectoryStore;
  /** Where the components log (the server's logger); nothing by default. */
  readonly log?: Log;
}

export async function createGateway(config: Config, parts: GatewayParts = {}): Promise<Gateway & { redis: Redis | undefined }> {
  const log = parts.log ?? silentLog;
  const redis = config.redisUrl !== undefined ? await connectOrName(config.redisUrl) : undefined;
  if (redis !== undefined) await checkRedisDurability(redis, log);
  const cipher = fieldCipherOf(config.encryption);
  if (redis !== undefined && !cipher.enabled) {
    log.warn(
      {},
      "GATEWAY_ENCRYPTION_KEY is not set: webhook secrets and stored booking answers (customer names, phone numbers, emails) are kept in Redis in clear",
    );
  }
  const directoryPrefix = directoryKeyPrefix(config.redisKeyPrefix);
  const store =
    parts.directoryStore ?? (redis !== undefined ? new RedisDirectoryStore(redis, directoryPrefix, cipher) : new MemoryDirectoryStore());
  if (config.seedFile !== undefined) await importSeed(store, await readSeedFile(config.seedFile));
  const directory = new Directory(store, config.directoryCacheTtlMs, log);
  // An empty directory is reported at start, not only at the first call.
  await directory.requireProvisioned().catch(() => {});
  const watch =
    redis !== undefined && store instanceof RedisDirectoryStore
      ? await watchDirectoryChanges(redis, directoryPrefix, () => directory.invalidate())
      : undefined;
  const webhooks = new WebhookClient({ timeoutMs: config.webhookTimeoutMs, maxResponseBytes: config.platformMaxAnswerBytes });
  const keeping = { claimTtlMs: config.idempotencyClaimTtlMs, resultTtlMs: config.idempotencyTtlMs, waitMs: config.idempotencyWaitMs };
  const keeper: IdempotencyKeeper =
    redis !== undefined ? new RedisIdempotencyKeeper(redis, config.redisKeyPrefix, keeping, cipher) : new MemoryIdempotencyKeeper(keeping);
  const appointments = new Appointments(directory, webhooks, keeper, {
    maxSearchRangeMs: config.maxSearchRangeMs,
    streamWindowMs: config.streamWindowMs,
    streamConcurrency: config.streamConcurrency,
  });
  const sessions = new SessionRegistry({
    maxPerPartner: config.sessionMaxPerPartner,
    // Half the cache TTL: a revoked key ends its sessions within about the time it takes to stop opening new calls.
    recheckMs: Math.max(250, Math.floor(config.directoryCacheTtlMs / 2)),
    stillValid: (partner) => directory.partnerStillValid(partner),
  });
  directory.onInvalidate(() => sessions.recheck());
  const overload = new OverloadMonitor(config.overloadEventLoopDelayMs);
  overload.on("change", (state) => {
    if (state.overloaded) {
      log.warn(
        { eventLoopDelayMs: state.eventLoopDelayMs, thresholdMs: config.overloadEventLoopDelayMs },
        "overloaded: the event loop lags past OVERLOAD_EVENT_LOOP_DELAY_MS; new calls are refused with 503 overloaded until it recovers",
      );
    } else {
      log.info({ eventLoopDelayMs: state.eventLoopDelayMs, refused: state.refused }, "no longer overloaded: new calls are accepted again");
    }
  });
  return {
    config,
    directory,
    overload,
    sessions,
    appointments,
    customers: new Customers(directory, webhooks),
    rateLimiter: new RateLimiter({ perSecond: config.rateLimitPerSecond, burst: config.rateLimitBurst }),
    redis,
    async close() {
      overload.close();
      sessions.close();
      await keeper.close();
      webhooks.close();
      await watch?.close();
      if (redis !== undefined) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** Connects to Redis; a failure names the setting to fix. */
async function connectOrName(url: string): Promise<Redis> {
  try {
    return await connectRedis(url);
  } catch (e) {
    throw new ConfigError("REDIS_URL", `cannot reach Redis at ${displayRedisUrl(url)}: ${(e as Error).message}`);
  }
}
