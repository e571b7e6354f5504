/**
 * Assembles the gateway's components from a `Config`: the directory store
 * (Redis when `REDIS_URL` or `REDIS_CLUSTER_NODES` is set, memory otherwise),
 * its cache, the webhook client, the idempotency keeper (in Redis too when
 * there is one, with replica acknowledgement of finished bookings), the rate
 * limit (shared by the fleet through Redis when there is one), the encryption
 * of what they keep in Redis, and the business logic (appointments and
 * customers); and what operators watch them with: the logger, metrics, the
 * tracer and the health state. With Redis it also says at start whether
 * bookings are durable and encrypted, and names `admin upgrade-directory`
 * when the directory is still in an earlier build's key layout.
 */
import { ConfigError, type Config } from "../config.js";
import type { Gateway } from "./gateway.js";
import { fieldCipherOf } from "../encryption/field-cipher.js";
import { WebhookClient } from "../platform/webhook-client.js";
import { Directory } from "../store/directory.js";
import type { DirectoryStore } from "../store/directory-store.js";
import { MemoryDirectoryStore } from "../store/memory-directory-store.js";
import { directoryKeyPrefix, RedisDirectoryStore } from "../store/redis-directory-store.js";
import { watchDirectoryChanges } from "../store/directory-changes.js";
import { earlierDirectoryNotice } from "../store/directory-layout.js";
import {
  closeConnection,
  connectTarget,
  describeRedisTarget,
  redisTargetOf,
  redisVariableOf,
  type RedisConnection,
  type RedisTarget,
} from "../store/redis-connection.js";
import { checkRedisDurability } from "../store/redis-durability.js";
import { ReplicaAcknowledgement } from "../store/replica-acknowledgement.js";
import { RedisTokenBucket } from "../store/redis-token-bucket.js";
import { importSeed, readSeedFile } from "../store/seed.js";
import { MemoryIdempotencyKeeper } from "../idempotency/memory-idempotency-keeper.js";
import { RedisIdempotencyKeeper } from "../idempotency/redis-idempotency-keeper.js";
import { Appointments } from "./appointments.js";
import { Customers } from "./customers.js";
import { FleetRateLimiter } from "./fleet-rate-limiter.js";
import type { IdempotencyKeeper } from "./idempotency.js";
import { RateLimiter, type CallLimiter } from "./rate-limiter.js";
import { HealthState } from "../health/health-state.js";
import { NO_METRICS, PrometheusMetrics, type IdempotencyOutcome } from "../metrics/metrics.js";
import { createLogger } from "../observability/logger.js";
import { propagatingTracer } from "../tracing/tracer.js";
import { SessionRegistry } from "./session-registry.js";
import { OverloadMonitor } from "../health/overload-monitor.js";
import { ConditionLog } from "../observability/condition-log.js";
import { OpenResources } from "./open-resources.js";

export interface GatewayParts {
  /** Use this directory store instead of the one the config names. */
  readonly directoryStore?: DirectoryStore;
  /** Where the log goes; stdout by default. */
  readonly logStream?: NodeJS.WritableStream;
}

export async function createGateway(config: Config, parts: GatewayParts = {}): Promise<Gateway & { redis: RedisConnection | undefined }> {
  const opened = new OpenResources();
  try {
    return await assemble(config, parts, opened);
  } catch (e) {
    await opened.close().catch(() => {});
    throw e;
  }
}

async function assemble(config: Config, parts: GatewayParts, opened: OpenResources): Promise<Gateway & { redis: RedisConnection | undefined }> {
  const log = createLogger({ level: config.logLevel, stream: parts.logStream });
  const metrics = config.metrics.serve === "off" ? NO_METRICS : new PrometheusMetrics();
  // The OpenTelemetry SDK is loaded only when spans are exported.
  const tracer = config.tracing !== undefined ? await (await import("../tracing/otlp-tracer.js")).startOtlpTracer(config.tracing, log) : propagatingTracer;
  opened.add(() => tracer.close());
  const target = redisTargetOf(config);
  const redis = target !== undefined ? await connectOrName(target) : undefined;
  if (redis !== undefined) opened.add(() => closeConnection(redis));
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
    parts.directoryStore ?? (redis !== undefined ? new RedisDirectoryStore(redis, directoryPrefix, cipher, log) : new MemoryDirectoryStore());
  if (config.seedFile !== undefined) await importSeed(store, await readSeedFile(config.seedFile));
  const directory = new Directory(store, config.directoryCacheTtlMs, log, () => metrics.redisError("directory"));
  // An empty directory is reported at start, not only at the first call, and
  // one that an earlier build left in its own key layout is named as such.
  const whyEmpty = redis !== undefined && store instanceof RedisDirectoryStore ? () => earlierDirectoryNotice(redis, config.redisKeyPrefix) : undefined;
  await directory.requireProvisioned(whyEmpty).catch(() => {});
  const watch =
    redis !== undefined && store instanceof RedisDirectoryStore
      ? await watchDirectoryChanges(redis, directoryPrefix, () => directory.invalidate())
      : undefined;
  if (watch !== undefined) opened.add(() => watch.close());
  const webhooks = new WebhookClient({
    timeoutMs: config.webhookTimeoutMs,
    maxResponseBytes: config.platformMaxAnswerBytes,
    idleSocketTimeoutMs: config.platformIdleConnectionMs,
    metrics,
    log,
  });
  opened.add(() => webhooks.close());
  const keeping = {
    claimTtlMs: config.idempotencyClaimTtlMs,
    resultTtlMs: config.idempotencyTtlMs,
    waitMs: config.idempotencyWaitMs,
    log,
    onOutcome: (outcome: IdempotencyOutcome) => {
      metrics.idempotency(outcome);
      if (outcome === "store_unavailable" && redis !== undefined) metrics.redisError("idempotency");
    },
  };
  const acknowledgement =
    redis !== undefined && config.replicaAckTimeoutMs > 0
      ? await ReplicaAcknowledgement.start(redis, config.replicaAckTimeoutMs, log, (result) => metrics.replicaAcknowledgement(result))
      : undefined;
  if (acknowledgement !== undefined) opened.add(() => acknowledgement.close());
  const keeper: IdempotencyKeeper =
    redis !== undefined
      ? new RedisIdempotencyKeeper(redis, config.redisKeyPrefix, keeping, cipher, acknowledgement)
      : new MemoryIdempotencyKeeper(keeping);
  opened.add(() => keeper.close());
  const limit = { perSecond: config.rateLimitPerSecond, burst: config.rateLimitBurst };
  const onLimited = (partner: string) => metrics.rateLimited(partner);
  const rateLimiter: CallLimiter =
    redis !== undefined
      ? new FleetRateLimiter(limit, new RedisTokenBucket(redis, config.redisKeyPrefix), log, onLimited, () => metrics.redisError("rate_limit"))
      : new RateLimiter(limit, onLimited);
  const appointments = new Appointments(directory, webhooks, keeper, {
    maxSearchRangeMs: config.maxSearchRangeMs,
    streamWindowMs: config.streamWindowMs,
    streamConcurrency: config.streamConcurrency,
  });
  const health = new HealthState(redis, log, metrics);
  opened.add(() => health.close());
  const sessions = new SessionRegistry({
    maxPerPartner: config.sessionMaxPerPartner,
    // Half the cache TTL: a revoked key ends its sessions within about the time it takes to stop opening new calls.
    recheckMs: Math.max(250, Math.floor(config.directoryCacheTtlMs / 2)),
    stillValid: (partner) => directory.partnerStillValid(partner),
  });
  opened.add(() => sessions.close());
  directory.onInvalidate(() => sessions.recheck());
  const overload = new OverloadMonitor(config.overloadEventLoopDelayMs);
  opened.add(() => overload.close());
  const overloadLog = new ConditionLog(log, "overload", {
    bad: "overloaded: the event loop lags past OVERLOAD_EVENT_LOOP_DELAY_MS; new calls are refused with 503 overloaded until it recovers",
    good: "no longer overloaded: new calls are accepted again",
    level: "warn",
  });
  overload.on("change", (state) => {
    const fields = { eventLoopDelayMs: state.eventLoopDelayMs, thresholdMs: config.overloadEventLoopDelayMs, refused: state.refused };
    overloadLog.report(state.overloaded, "", fields);
  });
  return {
    config,
    directory,
    overload,
    sessions,
    appointments,
    customers: new Customers(directory, webhooks),
    rateLimiter,
    log,
    metrics,
    tracer,
    health,
    redis,
    // Last opened first; every step runs even when one fails.
    close: () => opened.close(),
  };
}

/** Connects to Redis; a failure names the setting to fix. */
async function connectOrName(target: RedisTarget): Promise<RedisConnection> {
  try {
    return await connectTarget(target);
  } catch (e) {
    throw new ConfigError(redisVariableOf(target), `cannot reach ${describeRedisTarget(target)}: ${(e as Error).message}`);
  }
}
