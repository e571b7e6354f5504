/**
 * The gateway's configuration, read from the environment once at start-up and
 * validated into one typed object. Nothing else in the gateway reads
 * `process.env`; components receive the parts of `Config` they need.
 */
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { defaultMaxConnections } from "./server/connection-guard.js";
import type { EdgeLimits } from "./server/one-port-server.js";

export interface TlsConfig {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface Config {
  /** TCP port every protocol answers on. */
  readonly port: number;
  /** Interface to bind. */
  readonly host: string;
  /** Redis URL; when absent the gateway keeps everything in process memory. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key the gateway writes, so gateways can share a Redis. */
  readonly redisKeyPrefix: string;
  /** Seed file loaded into the in-memory store at start-up. */
  readonly seedFile: string | undefined;
  /** Certificate and key; when present the port speaks TLS with ALPN h2 and http/1.1. */
  readonly tls: TlsConfig | undefined;
  /** Largest request body accepted, in bytes, on every protocol. */
  readonly maxRequestBytes: number;
  /** Upper bound for a webhook call; the caller's own deadline may shorten it. */
  readonly webhookTimeoutMs: number;
  /** Longest availability range a single search may ask for. */
  readonly maxSearchRangeMs: number;
  /** How long bot, account, platform and partner lookups are cached in process. */
  readonly directoryCacheTtlMs: number;
  /** How long a finished booking result is kept for replays. */
  readonly idempotencyTtlMs: number;
  /** How long a duplicate waits for an in-flight booking with the same key. */
  readonly idempotencyWaitMs: number;
  /**
   * Lifetime of the claim a booking holds while it is in flight
   * (`IDEMPOTENCY_CLAIM_TTL_MS`, default the webhook timeout plus 10 s). It must
   * exceed the webhook timeout, so that only a crashed gateway's claim lapses;
   * it is also how long a key stays blocked after a gateway crashed mid-booking.
   */
  readonly idempotencyClaimTtlMs: number;
  /** Width of one window of a streamed availability search. */
  readonly streamWindowMs: number;
  /** How many windows of one streamed search are relayed at once. */
  readonly streamConcurrency: number;
  /** How many operations one bot session may have in flight. */
  readonly sessionMaxInFlight: number;
  /** A bot session with no message for this long is closed. */
  readonly sessionIdleMs: number;
  /** Sustained calls per second per partner and gateway instance; 0 disables the limit. */
  readonly rateLimitPerSecond: number;
  /** Calls per partner allowed in a burst above the sustained rate. */
  readonly rateLimitBurst: number;
  /** Port of the built-in demo platform (0 picks a free one). */
  readonly demoPlatformPort: number;
  /** pino log level. */
  readonly logLevel: string;
  /**
   * Keys encrypting webhook secrets and stored booking answers in Redis
   * (`GATEWAY_ENCRYPTION_KEY`, 32 bytes), and earlier keys still accepted for
   * reading while values are re-encrypted (`GATEWAY_ENCRYPTION_PREVIOUS_KEYS`).
   * Unset: those values are stored in clear.
   */
  readonly encryption: EncryptionKeys | undefined;
  /** Bounds on client connections and HTTP/2 sessions (see src/server/one-port-server.ts). */
  readonly edge: EdgeLimits;
  /** Open bot sessions one partner may hold on one gateway process. */
  readonly sessionMaxPerPartner: number;
  /** A bot session is ended after this long, whatever it does. */
  readonly sessionMaxLifetimeMs: number;
  /** Largest platform answer read; a larger one is `platform_invalid_response`. */
  readonly platformMaxAnswerBytes: number;
  /** New calls are refused as `overloaded` while the event loop lags more than this; 0 disables. */
  readonly overloadEventLoopDelayMs: number;
}


export interface EncryptionKeys {
  readonly key: Buffer;
  readonly previousKeys: readonly Buffer[];
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function optional(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === "" ? undefined : raw.trim();
}

function readFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(name, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** A certificate and key that TLS can use, checked now rather than when the server starts. */
function checkTls(tls: TlsConfig): TlsConfig {
  try {
    createSecureContext({ cert: tls.cert });
  } catch (e) {
    throw new ConfigError("TLS_CERT_FILE", `not a PEM certificate (${(e as Error).message})`);
  }
  try {
    createSecureContext({ cert: tls.cert, key: tls.key });
  } catch (e) {
    throw new ConfigError("TLS_KEY_FILE", `not the PEM private key of TLS_CERT_FILE (${(e as Error).message})`);
  }
  return tls;
}

const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+)$/;

/** A 32-byte key written in base64 (`openssl rand -base64 32`). */
function encryptionKey(name: string, raw: string): Buffer {
  const key = BASE64.test(raw) ? Buffer.from(raw, raw.includes("-") || raw.includes("_") ? "base64url" : "base64") : undefined;
  if (key === undefined || key.length !== 32) {
    throw new ConfigError(name, "expected 32 random bytes in base64, such as the output of `openssl rand -base64 32`");
  }
  return key;
}

function encryptionKeys(env: Env): EncryptionKeys | undefined {
  const current = optional(env, "GATEWAY_ENCRYPTION_KEY");
  const previous = optional(env, "GATEWAY_ENCRYPTION_PREVIOUS_KEYS");
  if (current === undefined) {
    if (previous !== undefined) {
      throw new ConfigError("GATEWAY_ENCRYPTION_PREVIOUS_KEYS", "needs GATEWAY_ENCRYPTION_KEY: previous keys only decrypt, the current one encrypts");
    }
    return undefined;
  }
  const key = encryptionKey("GATEWAY_ENCRYPTION_KEY", current);
  const previousKeys = (previous ?? "")
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k !== "")
    .map((k) => encryptionKey("GATEWAY_ENCRYPTION_PREVIOUS_KEYS", k));
  return { key, previousKeys };
}

/**
 * The process's soft limit on open files, from /proc/self/limits (Linux);
 * undefined where it cannot be read. Node has no API for it.
 */
export function fileDescriptorLimit(): number | undefined {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
    return soft === undefined || !/^\d+$/.test(soft) ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

function edgeConfig(env: Env, fdLimit: number | undefined): EdgeLimits {
  const maxConnectionsCeiling = fdLimit === undefined ? 1_000_000 : Math.max(1, fdLimit - 64);
  const maxConnections = int(env, "MAX_CONNECTIONS", Math.min(defaultMaxConnections(fdLimit), maxConnectionsCeiling), 1, maxConnectionsCeiling);
  const headersTimeoutMs = int(env, "HEADERS_TIMEOUT_MS", 10_000, 100, 10 * MINUTE);
  const requestTimeoutMs = int(env, "REQUEST_TIMEOUT_MS", 30_000, 100, 60 * MINUTE);
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError("HEADERS_TIMEOUT_MS", `must not be longer than REQUEST_TIMEOUT_MS (${requestTimeoutMs}), got ${headersTimeoutMs}`);
  }
  return {
    maxConnections,
    maxConnectionsPerClient: int(env, "MAX_CONNECTIONS_PER_CLIENT", Math.min(256, maxConnections), 1, maxConnections),
    firstRequestTimeoutMs: int(env, "FIRST_REQUEST_TIMEOUT_MS", 10_000, 100, 10 * MINUTE),
    maxConnectionAgeMs: int(env, "MAX_CONNECTION_AGE_SECONDS", 0, 0, 30 * 24 * 3600) * 1000,
    cooldownMs: int(env, "RESET_FLOOD_COOLDOWN_SECONDS", 10, 0, 3600) * 1000,
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: int(env, "KEEP_ALIVE_TIMEOUT_MS", 65_000, 100, 60 * MINUTE),
    maxConcurrentStreams: int(env, "HTTP2_MAX_CONCURRENT_STREAMS", 100, 1, 10_000),
    maxPrematureResets: int(env, "HTTP2_MAX_PREMATURE_RESETS", 100, 1, 1_000_000),
    idleTimeoutMs: int(env, "HTTP2_IDLE_TIMEOUT_MS", 60_000, 100, 24 * 60 * MINUTE),
  };
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function loadConfig(env: Env = process.env, machine: { readonly fdLimit: number | undefined } = { fdLimit: fileDescriptorLimit() }): Config {
  const { fdLimit } = machine;
  const redisUrl = optional(env, "REDIS_URL");
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError("REDIS_URL", `expected redis://host:port or rediss://..., got "${redisUrl}"`);
  }
  const certPath = optional(env, "TLS_CERT_FILE");
  const keyPath = optional(env, "TLS_KEY_FILE");
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new ConfigError(certPath === undefined ? "TLS_CERT_FILE" : "TLS_KEY_FILE", "TLS_CERT_FILE and TLS_KEY_FILE go together");
  }
  const tls =
    certPath !== undefined && keyPath !== undefined
      ? checkTls({ cert: readFile("TLS_CERT_FILE", certPath), key: readFile("TLS_KEY_FILE", keyPath) })
      : undefined;
  const seedFile = optional(env, "GATEWAY_SEED");
  if (seedFile !== undefined) readFile("GATEWAY_SEED", seedFile);
  const logLevel = optional(env, "LOG_LEVEL") ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError("LOG_LEVEL", `expected one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }
  const webhookTimeoutMs = int(env, "WEBHOOK_TIMEOUT_MS", 30_000, 100, 120_000);
  const idempotencyClaimTtlMs = int(env, "IDEMPOTENCY_CLAIM_TTL_MS", webhookTimeoutMs + 10_000, 1000, 10 * MINUTE);
  if (idempotencyClaimTtlMs <= webhookTimeoutMs) {
    throw new ConfigError("IDEMPOTENCY_CLAIM_TTL_MS", `must be longer than WEBHOOK_TIMEOUT_MS (${webhookTimeoutMs}), got ${idempotencyClaimTtlMs}`);
  }
  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: optional(env, "HOST") ?? "127.0.0.1",
    redisUrl,
    redisKeyPrefix: optional(env, "REDIS_KEY_PREFIX") ?? "dsgw:",
    seedFile,
    tls,
    maxRequestBytes: int(env, "MAX_REQUEST_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
    webhookTimeoutMs,
    maxSearchRangeMs: int(env, "MAX_SEARCH_RANGE_DAYS", 31, 1, 366) * DAY,
    directoryCacheTtlMs: int(env, "DIRECTORY_CACHE_TTL_MS", 5_000, 0, 10 * MINUTE),
    idempotencyTtlMs: int(env, "IDEMPOTENCY_TTL_SECONDS", 24 * 3600, 60, 30 * 24 * 3600) * 1000,
    idempotencyWaitMs: int(env, "IDEMPOTENCY_WAIT_MS", 5_000, 0, 60_000),
    idempotencyClaimTtlMs,
    streamWindowMs: int(env, "STREAM_WINDOW_MINUTES", 24 * 60, 15, 7 * 24 * 60) * MINUTE,
    streamConcurrency: int(env, "STREAM_CONCURRENCY", 4, 1, 32),
    sessionMaxInFlight: int(env, "SESSION_MAX_IN_FLIGHT", 8, 1, 256),
    sessionIdleMs: int(env, "SESSION_IDLE_SECONDS", 300, 1, 24 * 3600) * 1000,
    rateLimitPerSecond: int(env, "RATE_LIMIT_PER_SECOND", 200, 0, 1_000_000),
    rateLimitBurst: int(env, "RATE_LIMIT_BURST", 400, 1, 10_000_000),
    demoPlatformPort: int(env, "DEMO_PLATFORM_PORT", 0, 0, 65535),
    logLevel,
    encryption: encryptionKeys(env),
    edge: edgeConfig(env, fdLimit),
    sessionMaxPerPartner: int(env, "SESSION_MAX_PER_PARTNER", 1000, 1, 1_000_000),
    sessionMaxLifetimeMs: int(env, "SESSION_MAX_LIFETIME_SECONDS", 3600, 1, 7 * 24 * 3600) * 1000,
    platformMaxAnswerBytes: int(env, "PLATFORM_MAX_ANSWER_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
    overloadEventLoopDelayMs: int(env, "OVERLOAD_EVENT_LOOP_DELAY_MS", 1000, 0, 60_000),
  };
}
