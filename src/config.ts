/**
 * The gateway's configuration, read from the environment once at start-up and
 * validated into one typed object. Nothing else in the gateway reads
 * `process.env`; components receive the parts of `Config` they need.
 */
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";

export interface TlsConfig {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface Config {
  /** TCP port every protocol answers on. */
  readonly port: number;
  /** Interface to bind. */
  readonly host: string;
  /** Redis URL of one Redis (`REDIS_URL`); the alternative to `redisCluster`. */
  readonly redisUrl: string | undefined;
  /**
   * A Redis Cluster (`REDIS_CLUSTER_NODES`); the alternative to `redisUrl`.
   * With neither, the gateway keeps everything in process memory.
   */
  readonly redisCluster: RedisClusterConfig | undefined;
  /**
   * Longest wait for a replica to acknowledge a stored booking before it is
   * answered (`REDIS_REPLICA_ACK_TIMEOUT_MS`); 0 never waits.
   */
  readonly replicaAckTimeoutMs: number;
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
  /**
   * How long a shutdown lets the calls in flight finish (`SHUTDOWN_GRACE_MS`,
   * default the webhook timeout plus 5 s): longer than the webhook timeout, so
   * a booking sent just before the signal is answered and its outcome stored.
   * Connections still open then are destroyed; the process exits at the
   * latest `SHUTDOWN_EXIT_MARGIN_MS` later.
   */
  readonly shutdownGraceMs: number;
  /** Width of one window of a streamed availability search. */
  readonly streamWindowMs: number;
  /** How many windows of one streamed search are relayed at once. */
  readonly streamConcurrency: number;
  /** How many operations one bot session may have in flight. */
  readonly sessionMaxInFlight: number;
  /** A bot session with no message for this long is closed. */
  readonly sessionIdleMs: number;
  /**
   * Sustained calls per second per partner; 0 disables the limit. With Redis
   * the limit is shared by every gateway on it, in memory it is per process.
   */
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
  /** Where Prometheus metrics are served (`METRICS_PORT`). */
  readonly metrics: MetricsConfig;
  /** Span export through OpenTelemetry; absent, trace context is only propagated. */
  readonly tracing: TracingConfig | undefined;
  /** Bounds on client connections and HTTP/2 sessions (see src/server/one-port-server.ts). */
  readonly edge: EdgeLimits;
  /** Open bot sessions one partner may hold on one gateway process. */
  readonly sessionMaxPerPartner: number;
  /** A bot session is ended after this long, whatever it does. */
  readonly sessionMaxLifetimeMs: number;
  /** Largest platform answer read; a larger one is `platform_invalid_response`. */
  readonly platformMaxAnswerBytes: number;
  /** How long an idle pooled connection to a platform is kept for the next webhook. */
  readonly platformIdleConnectionMs: number;
  /** New calls are refused as `overloaded` while the event loop lags more than this; 0 disables. */
  readonly overloadEventLoopDelayMs: number;
  /**
   * Unary gRPC, gRPC-Web and Connect calls that fit the lean path's rule are
   * served by it (src/rpc/unary-fast-path.ts); off, every call takes
   * connect-es's general handler (`UNARY_FAST_PATH`).
   */
  readonly unaryFastPath: boolean;
}

/**
 * Every bound the listener holds client connections to (see
 * src/server/connection-guard.ts and src/server/http2-abuse.ts).
 */
export interface EdgeLimits {
  /** Open connections at most, all clients together. */
  readonly maxConnections: number;
  /** Open connections at most from one client address. */
  readonly maxConnectionsPerClient: number;
  /** A connection must send its first request headers within this. */
  readonly firstRequestTimeoutMs: number;
  /** Connections older than this are asked to go away; 0 disables. */
  readonly maxConnectionAgeMs: number;
  /** How long an address caught attacking has its new connections refused; 0 disables. */
  readonly cooldownMs: number;
  /** HTTP/1.1: the headers of each request must arrive within this. */
  readonly headersTimeoutMs: number;
  /** HTTP/1.1: each whole request, body included, must arrive within this. */
  readonly requestTimeoutMs: number;
  /** HTTP/1.1: an idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** HTTP/2: streams one session may have open at once. */
  readonly maxConcurrentStreams: number;
  /**
   * HTTP/2: streams a client may reset before they are answered within the
   * window before its session is ended, provided they are also most of the
   * streams it closed there.
   */
  readonly maxPrematureResets: number;
  /** HTTP/2: a session with no open stream for this long is closed; 0 disables. */
  readonly idleTimeoutMs: number;
}

/** A Redis Cluster, given by some of its nodes; the client finds the others. */
export interface RedisClusterConfig {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  /** ACL user, the same on every node; the default user when absent. */
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** Every node speaks TLS (`rediss://` entries). */
  readonly tls: boolean;
}


export interface EncryptionKeys {
  readonly key: Buffer;
  readonly previousKeys: readonly Buffer[];
}

/**
 * `main`: `/metrics` on the gateway's own port; `port`: on a listener of its
 * own (on `HOST`), so the partner-facing port need not expose it; `off`: no
 * metrics are collected at all.
 */
export type MetricsConfig = { readonly serve: "main" } | { readonly serve: "port"; readonly port: number } | { readonly serve: "off" };

/** The standard `OTEL_*` settings the gateway honours, validated. */
export interface TracingConfig {
  /** The full URL spans are posted to (OTLP over HTTP). */
  readonly endpoint: string;
  readonly protocol: "http/protobuf" | "http/json";
  /** Sent with every export (often an API key: never logged). */
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: TraceSampler;
  /** The ratio of the `traceidratio` samplers, 0 to 1. */
  readonly samplerRatio: number;
}

export const TRACE_SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

export type TraceSampler = (typeof TRACE_SAMPLERS)[number];

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

/**
 * What closing the gateway's own resources (the last write of a booking
 * outcome, Redis, the span exporter) may take after the shutdown grace,
 * before the process exits regardless.
 */
export const SHUTDOWN_EXIT_MARGIN_MS = 5000;
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
 * A Redis URL, or a comma-separated list of Redis URLs and host:port
 * entries, fit for an error message or a log: in each entry, the user and
 * password (everything up to the last `@`) are masked.
 */
export function maskRedisCredentials(value: string): string {
  return value
    .split(",")
    .map((entry) => entry.replace(/^(\s*[a-z][a-z0-9+.-]*:\/\/)?[^/]*@/i, "$1***@"))
    .join(",");
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;

/**
 * `REDIS_CLUSTER_NODES`: comma-separated seed nodes, each `host:port` or a
 * Redis URL (`redis://[user:password@]host:port`, `rediss://` for TLS). A
 * cluster has one user, password and TLS setting: they may be written on one
 * entry or on several, but never differently.
 */
function redisCluster(env: Env): RedisClusterConfig | undefined {
  const NAME = "REDIS_CLUSTER_NODES";
  const raw = optional(env, NAME);
  if (raw === undefined) return undefined;
  const nodes: { host: string; port: number }[] = [];
  let credentials: { username: string | undefined; password: string | undefined } | undefined;
  let scheme: string | undefined;
  for (const [i, entry] of raw.split(",").map((e) => e.trim()).entries()) {
    if (entry === "") throw new ConfigError(NAME, `an empty entry in "${maskRedisCredentials(raw)}": expected host:port,host:port,...`);
    let hostPort = entry;
    if (/^[a-z]+:\/\//i.test(entry)) {
      let url: URL;
      try {
        url = new URL(entry);
      } catch {
        // Named by position: a password with an unencoded comma is split across entries, so this one may hold part of it.
        throw new ConfigError(NAME, `entry ${i + 1} is not a URL (percent-encode a , @ or / in a user or password)`);
      }
      if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
        throw new ConfigError(NAME, `expected host:port, redis://host:port or rediss://host:port, got "${url.protocol}//..."`);
      }
      if (url.pathname !== "" && url.pathname !== "/" && url.pathname !== "/0") {
        throw new ConfigError(NAME, "a Redis Cluster has only database 0: leave the database out of the URLs");
      }
      if (scheme !== undefined && scheme !== url.protocol) throw new ConfigError(NAME, "mixes redis:// and rediss:// entries: every node of a cluster speaks TLS or none does");
      scheme = url.protocol;
      if (url.username !== "" || url.password !== "") {
        const given = { username: url.username === "" ? undefined : decodeURIComponent(url.username), password: url.password === "" ? undefined : decodeURIComponent(url.password) };
        if (credentials !== undefined && (credentials.username !== given.username || credentials.password !== given.password)) {
          throw new ConfigError(NAME, "entries give different users or passwords: a cluster has one");
        }
        credentials = given;
      }
      hostPort = `${url.hostname}:${url.port === "" ? "6379" : url.port}`;
    }
    const m = HOST_PORT.exec(hostPort);
    const port = m === null ? NaN : Number(m[2]);
    if (m === null || !(port >= 1 && port <= 65535)) {
      throw new ConfigError(NAME, `expected host:port (or a redis:// URL), got "${maskRedisCredentials(entry)}"`);
    }
    nodes.push({ host: m[1]!.replace(/^\[(.*)\]$/, "$1"), port });
  }
  return { nodes, username: credentials?.username, password: credentials?.password, tls: scheme === "rediss:" };
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

/**
 * The default total cap: below the process's file-descriptor limit (on
 * Linux, the soft "Max open files" of /proc/self/limits), leaving room for
 * the connections to platforms (up to 256 per platform), Redis and files:
 * 384 descriptors, or three eighths of a small limit, and at most 50,000
 * connections.
 * Node has no API for the limit; where it cannot be read, 4096 is assumed.
 */
export function defaultMaxConnections(fdLimit: number | undefined): number {
  const limit = fdLimit ?? 4096;
  const reserve = Math.min(384, Math.floor(limit * 0.375));
  return Math.max(1, Math.min(50_000, limit - reserve));
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
    maxPrematureResets: int(env, "HTTP2_MAX_PREMATURE_RESETS", 250, 1, 1_000_000),
    idleTimeoutMs: int(env, "HTTP2_IDLE_TIMEOUT_MS", 60_000, 100, 24 * 60 * MINUTE),
  };
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function metricsConfig(env: Env): MetricsConfig {
  const raw = optional(env, "METRICS_PORT");
  if (raw === undefined) return { serve: "main" };
  if (raw === "off") return { serve: "off" };
  return { serve: "port", port: int(env, "METRICS_PORT", 0, 0, 65535) };
}

/** `k1=v1,k2=v2` with percent-encoded values, as the OpenTelemetry specification writes headers and resource attributes. */
function keyValues(env: Env, name: string): Record<string, string> {
  const raw = optional(env, name);
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const [n, pair] of raw.split(",").entries()) {
    const i = pair.indexOf("=");
    const key = i > 0 ? pair.slice(0, i).trim() : "";
    if (key === "" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) {
      // The value may be a credential: name the entry by its position, never echo it.
      throw new ConfigError(name, `expected key=value pairs separated by commas; entry ${n + 1} is not one`);
    }
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(i + 1).trim());
    } catch {
      throw new ConfigError(name, `the value of "${key}" is not valid percent-encoding`);
    }
    out[key] = value;
  }
  return out;
}

function otlpProtocol(env: Env, name: string): TracingConfig["protocol"] | undefined {
  const raw = optional(env, name);
  if (raw === undefined || raw === "http/protobuf" || raw === "http/json") return raw;
  throw new ConfigError(name, `expected http/protobuf or http/json (grpc is not supported), got "${raw}"`);
}

function httpUrl(name: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, "expected an http:// or https:// URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConfigError(name, "expected an http:// or https:// URL");
  return url;
}

/**
 * Tracing from the standard OpenTelemetry variables: export is on when an
 * OTLP endpoint is set and `OTEL_SDK_DISABLED` is not `true`.
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is the full URL; the generic
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL that `/v1/traces` is appended to.
 */
function tracingConfig(env: Env): TracingConfig | undefined {
  const disabled = optional(env, "OTEL_SDK_DISABLED");
  if (disabled !== undefined && disabled !== "true" && disabled !== "false") {
    throw new ConfigError("OTEL_SDK_DISABLED", `expected true or false, got "${disabled}"`);
  }
  const tracesEndpoint = optional(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const baseEndpoint = optional(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
  let endpoint: string | undefined;
  if (tracesEndpoint !== undefined) {
    endpoint = httpUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tracesEndpoint).toString();
  } else if (baseEndpoint !== undefined) {
    const base = httpUrl("OTEL_EXPORTER_OTLP_ENDPOINT", baseEndpoint);
    endpoint = base.toString().replace(/\/+$/, "") + "/v1/traces";
  }
  const protocol = otlpProtocol(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? otlpProtocol(env, "OTEL_EXPORTER_OTLP_PROTOCOL") ?? "http/protobuf";
  const headers = { ...keyValues(env, "OTEL_EXPORTER_OTLP_HEADERS"), ...keyValues(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS") };
  const resourceAttributes = keyValues(env, "OTEL_RESOURCE_ATTRIBUTES");
  const sampler = (optional(env, "OTEL_TRACES_SAMPLER") ?? "parentbased_always_on") as TraceSampler;
  if (!TRACE_SAMPLERS.includes(sampler)) {
    throw new ConfigError("OTEL_TRACES_SAMPLER", `expected one of ${TRACE_SAMPLERS.join(", ")}, got "${sampler}"`);
  }
  const ratioRaw = optional(env, "OTEL_TRACES_SAMPLER_ARG");
  const samplerRatio = ratioRaw === undefined ? 1 : Number(ratioRaw);
  if (!/^\d*\.?\d+$/.test(ratioRaw ?? "1") || !(samplerRatio >= 0 && samplerRatio <= 1)) {
    throw new ConfigError("OTEL_TRACES_SAMPLER_ARG", `expected a number from 0 to 1, got "${ratioRaw}"`);
  }
  if (endpoint === undefined || disabled === "true") return undefined;
  const serviceName = optional(env, "OTEL_SERVICE_NAME") ?? resourceAttributes["service.name"] ?? "dialstack-gateway";
  return { endpoint, protocol, headers, serviceName, resourceAttributes, sampler, samplerRatio };
}

export function loadConfig(env: Env = process.env, machine: { readonly fdLimit: number | undefined } = { fdLimit: fileDescriptorLimit() }): Config {
  const { fdLimit } = machine;
  const redisUrl = optional(env, "REDIS_URL");
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError("REDIS_URL", `expected redis://host:port or rediss://..., got "${maskRedisCredentials(redisUrl)}"`);
  }
  const cluster = redisCluster(env);
  if (cluster !== undefined && redisUrl !== undefined) {
    throw new ConfigError("REDIS_CLUSTER_NODES", "REDIS_URL and REDIS_CLUSTER_NODES are alternatives: set REDIS_URL for one Redis or REDIS_CLUSTER_NODES for a Redis Cluster, not both");
  }
  const redisKeyPrefix = optional(env, "REDIS_KEY_PREFIX") ?? "dsgw:";
  if (/[{}]/.test(redisKeyPrefix)) {
    throw new ConfigError("REDIS_KEY_PREFIX", `must not contain { or }: the gateway writes its own hash tags into keys, got "${redisKeyPrefix}"`);
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
  const shutdownGraceMs = int(env, "SHUTDOWN_GRACE_MS", webhookTimeoutMs + 5000, 1000, 10 * MINUTE);
  if (shutdownGraceMs <= webhookTimeoutMs) {
    throw new ConfigError("SHUTDOWN_GRACE_MS", `must be longer than WEBHOOK_TIMEOUT_MS (${webhookTimeoutMs}), so a booking in flight at shutdown can finish, got ${shutdownGraceMs}`);
  }
  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: optional(env, "HOST") ?? "127.0.0.1",
    redisUrl,
    redisCluster: cluster,
    replicaAckTimeoutMs: int(env, "REDIS_REPLICA_ACK_TIMEOUT_MS", 100, 0, 10_000),
    redisKeyPrefix,
    seedFile,
    tls,
    maxRequestBytes: int(env, "MAX_REQUEST_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
    webhookTimeoutMs,
    maxSearchRangeMs: int(env, "MAX_SEARCH_RANGE_DAYS", 31, 1, 366) * DAY,
    directoryCacheTtlMs: int(env, "DIRECTORY_CACHE_TTL_MS", 5_000, 0, 10 * MINUTE),
    idempotencyTtlMs: int(env, "IDEMPOTENCY_TTL_SECONDS", 24 * 3600, 60, 30 * 24 * 3600) * 1000,
    idempotencyWaitMs: int(env, "IDEMPOTENCY_WAIT_MS", 5_000, 0, 60_000),
    idempotencyClaimTtlMs,
    shutdownGraceMs,
    streamWindowMs: int(env, "STREAM_WINDOW_MINUTES", 24 * 60, 15, 7 * 24 * 60) * MINUTE,
    streamConcurrency: int(env, "STREAM_CONCURRENCY", 4, 1, 32),
    sessionMaxInFlight: int(env, "SESSION_MAX_IN_FLIGHT", 8, 1, 256),
    sessionIdleMs: int(env, "SESSION_IDLE_SECONDS", 300, 1, 24 * 3600) * 1000,
    rateLimitPerSecond: int(env, "RATE_LIMIT_PER_SECOND", 200, 0, 1_000_000),
    rateLimitBurst: int(env, "RATE_LIMIT_BURST", 400, 1, 10_000_000),
    demoPlatformPort: int(env, "DEMO_PLATFORM_PORT", 0, 0, 65535),
    logLevel,
    encryption: encryptionKeys(env),
    metrics: metricsConfig(env),
    tracing: tracingConfig(env),
    edge: edgeConfig(env, fdLimit),
    sessionMaxPerPartner: int(env, "SESSION_MAX_PER_PARTNER", 1000, 1, 1_000_000),
    sessionMaxLifetimeMs: int(env, "SESSION_MAX_LIFETIME_SECONDS", 3600, 1, 7 * 24 * 3600) * 1000,
    platformMaxAnswerBytes: int(env, "PLATFORM_MAX_ANSWER_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
    // The webhook client's IDLE_SOCKET_TIMEOUT_MS, under the 5 s keep-alive timeout of common servers.
    platformIdleConnectionMs: int(env, "PLATFORM_IDLE_CONNECTION_MS", 4000, 100, 600_000),
    overloadEventLoopDelayMs: int(env, "OVERLOAD_EVENT_LOOP_DELAY_MS", 1000, 0, 60_000),
    unaryFastPath: onOff(env, "UNARY_FAST_PATH", true),
  };
}

/** A switch: `on` or `off`. */
function onOff(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (raw === "on" || raw === "off") return raw === "on";
  throw new ConfigError(name, `expected on or off, got "${raw}"`);
}
