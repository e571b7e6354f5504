/**
 * A bad setting stops start-up before anything is served, with one line on
 * stderr that names the variable, and exit code 1. Each way start-up can
 * fail (reading the configuration, the seed file, Redis, listening) is run
 * as `node dist/main.js`; the other bad values are checked on `loadConfig`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ConfigError, fileDescriptorLimit, loadConfig } from "../src/config.js";
import { makeTestCertificate, opensslProgram, type TestCertificate } from "./support/certificate.js";
import { run } from "./support/commands.js";

let dir: string;
let certificate: TestCertificate | undefined;
let busy: net.Server;
let busyPort: number;
const files: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gw-config-"));
  files.notJson = join(dir, "seed-not-json.json");
  writeFileSync(files.notJson, "{ partners: ");
  files.badSeed = join(dir, "seed-bad.json");
  writeFileSync(files.badSeed, JSON.stringify({ partners: [{ id: "p", api_key: "plain-text-key" }] }));
  files.notPem = join(dir, "not.pem");
  writeFileSync(files.notPem, "hello");
  // A key of no certificate here: a PEM key that matches nothing.
  files.otherKey = join(dir, "other-key.pem");
  writeFileSync(files.otherKey, generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ type: "pkcs8", format: "pem" }));
  if (!opensslProgram.skip) {
    certificate = makeTestCertificate();
    files.cert = certificate.cert;
  }
  busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  busyPort = (busy.address() as net.AddressInfo).port;
});
afterAll(() => {
  certificate?.remove();
  busy.close();
  rmSync(dir, { recursive: true, force: true });
});

type Case = readonly [string, () => Record<string, string>, string, RegExp];

/** One case per way start-up can fail, run as the built gateway. */
const STARTS: readonly Case[] = [
  ["PORT not a number", () => ({ PORT: "abc" }), "PORT", /expected a whole number, got "abc"/],
  ["PORT in use", () => ({ PORT: String(busyPort) }), "PORT", /already in use/],
  ["HOST unknown", () => ({ PORT: "0", HOST: "no-such-host.invalid" }), "HOST", /cannot listen on no-such-host\.invalid/],
  ["REDIS_URL unreachable", () => ({ PORT: "0", REDIS_URL: "redis://:secret@127.0.0.1:1" }), "REDIS_URL", /cannot reach Redis at redis:\/\/\*\*\*@127\.0\.0\.1:1/],
  [
    "REDIS_CLUSTER_NODES unreachable",
    () => ({ PORT: "0", REDIS_CLUSTER_NODES: "redis://:secret@127.0.0.1:1,127.0.0.1:2" }),
    "REDIS_CLUSTER_NODES",
    /cannot reach the Redis Cluster at 127\.0\.0\.1:1,127\.0\.0\.1:2: no node accepted a connection$/,
  ],
  [
    "REDIS_CLUSTER_NODES naming a Redis that is not a cluster",
    () => ({ PORT: "0", REDIS_CLUSTER_NODES: new URL(inject("redisUrl")).host }),
    "REDIS_CLUSTER_NODES",
    /cannot reach the Redis Cluster at .*: ERR This instance has cluster support disabled$/,
  ],
  [
    "REDIS_URL and REDIS_CLUSTER_NODES both set",
    () => ({ PORT: "0", REDIS_URL: "redis://127.0.0.1:6379", REDIS_CLUSTER_NODES: "127.0.0.1:7000" }),
    "REDIS_CLUSTER_NODES",
    /REDIS_URL and REDIS_CLUSTER_NODES are alternatives/,
  ],
  ["GATEWAY_SEED with a bad key", () => ({ PORT: "0", GATEWAY_SEED: files.badSeed! }), "GATEWAY_SEED", /api_key" must start with sk_ptnr_/],
  ["DEMO_PLATFORM_PORT in use", () => ({ PORT: "0", DEMO_PLATFORM_PORT: String(busyPort) }), "DEMO_PLATFORM_PORT", /already in use/],
  ["METRICS_PORT in use", () => ({ PORT: "0", METRICS_PORT: String(busyPort) }), "METRICS_PORT", /cannot listen on port \d+: already in use/],
  // The certificate comes from openssl; without it (outside CI) this case is left out.
  ...(opensslProgram.skip
    ? []
    : ([["TLS_KEY_FILE of another certificate", () => ({ TLS_CERT_FILE: files.cert!, TLS_KEY_FILE: files.otherKey! }), "TLS_KEY_FILE", /key values mismatch/]] as const)),
];

/** Values `loadConfig` refuses. */
const VALUES: readonly Case[] = [
  ["PORT out of range", () => ({ PORT: "70000" }), "PORT", /between 0 and 65535/],
  ["REDIS_URL not a Redis URL", () => ({ REDIS_URL: "http://localhost:6379" }), "REDIS_URL", /expected redis:\/\//],
  [
    "REDIS_URL not a Redis URL, its password never echoed",
    () => ({ REDIS_URL: "http://gw:hunter2secret@localhost:6379" }),
    "REDIS_URL",
    /^(?!.*hunter2secret).*got "http:\/\/\*\*\*@localhost:6379"/,
  ],
  [
    "REDIS_CLUSTER_NODES with an empty entry, no password echoed",
    () => ({ REDIS_CLUSTER_NODES: "redis://gw:hunter2secret@10.0.0.1:7000,,redis://gw:hunter2secret@10.0.0.2:7000" }),
    "REDIS_CLUSTER_NODES",
    /^(?!.*hunter2secret).*an empty entry in "redis:\/\/\*\*\*@10\.0\.0\.1:7000,,redis:\/\/\*\*\*@10\.0\.0\.2:7000"/,
  ],
  [
    "REDIS_CLUSTER_NODES with a password holding a comma, no part of it echoed",
    () => ({ REDIS_CLUSTER_NODES: "redis://gw:hunter2,secret@10.0.0.1:7000" }),
    "REDIS_CLUSTER_NODES",
    /^(?!.*hunter2)(?!.*secret).*entry 1 is not a URL/,
  ],
  [
    "REDIS_CLUSTER_NODES entry without a port, its password never echoed",
    () => ({ REDIS_CLUSTER_NODES: "10.0.0.1:7000,gw:hunter2secret@10.0.0.2" }),
    "REDIS_CLUSTER_NODES",
    /^(?!.*hunter2secret).*got "\*\*\*@10\.0\.0\.2"/,
  ],
  ["REDIS_CLUSTER_NODES without a port", () => ({ REDIS_CLUSTER_NODES: "10.0.0.1" }), "REDIS_CLUSTER_NODES", /expected host:port .*got "10\.0\.0\.1"/],
  ["REDIS_CLUSTER_NODES port out of range", () => ({ REDIS_CLUSTER_NODES: "10.0.0.1:7000,10.0.0.2:70000" }), "REDIS_CLUSTER_NODES", /got "10\.0\.0\.2:70000"/],
  ["REDIS_CLUSTER_NODES with an empty entry", () => ({ REDIS_CLUSTER_NODES: "10.0.0.1:7000,,10.0.0.2:7000" }), "REDIS_CLUSTER_NODES", /an empty entry/],
  ["REDIS_CLUSTER_NODES not Redis URLs", () => ({ REDIS_CLUSTER_NODES: "http://10.0.0.1:7000" }), "REDIS_CLUSTER_NODES", /expected host:port, redis:\/\/host:port/],
  [
    "REDIS_CLUSTER_NODES with two passwords",
    () => ({ REDIS_CLUSTER_NODES: "redis://:one@10.0.0.1:7000,redis://:two@10.0.0.2:7000" }),
    "REDIS_CLUSTER_NODES",
    /different users or passwords/,
  ],
  ["REDIS_CLUSTER_NODES mixing TLS", () => ({ REDIS_CLUSTER_NODES: "redis://10.0.0.1:7000,rediss://10.0.0.2:7000" }), "REDIS_CLUSTER_NODES", /mixes redis:\/\/ and rediss:\/\//],
  ["REDIS_CLUSTER_NODES with a database", () => ({ REDIS_CLUSTER_NODES: "redis://10.0.0.1:7000/2" }), "REDIS_CLUSTER_NODES", /only database 0/],
  ["REDIS_KEY_PREFIX with a brace", () => ({ REDIS_KEY_PREFIX: "gw{1}:" }), "REDIS_KEY_PREFIX", /must not contain \{ or \}/],
  ["REDIS_REPLICA_ACK_TIMEOUT_MS too long", () => ({ REDIS_REPLICA_ACK_TIMEOUT_MS: "60000" }), "REDIS_REPLICA_ACK_TIMEOUT_MS", /between 0 and 10000/],
  ["GATEWAY_SEED missing", () => ({ GATEWAY_SEED: join(dir, "nope.json") }), "GATEWAY_SEED", /ENOENT/],
  ["TLS_CERT_FILE without a key", () => ({ TLS_CERT_FILE: files.notPem! }), "TLS_KEY_FILE", /go together/],
  ["TLS_CERT_FILE not PEM", () => ({ TLS_CERT_FILE: files.notPem!, TLS_KEY_FILE: files.otherKey! }), "TLS_CERT_FILE", /not a PEM certificate/],
  ["MAX_REQUEST_BYTES too small", () => ({ MAX_REQUEST_BYTES: "10" }), "MAX_REQUEST_BYTES", /between 1024 and/],
  ["WEBHOOK_TIMEOUT_MS negative", () => ({ WEBHOOK_TIMEOUT_MS: "-5" }), "WEBHOOK_TIMEOUT_MS", /whole number/],
  ["DIRECTORY_CACHE_TTL_MS in exponent form", () => ({ DIRECTORY_CACHE_TTL_MS: "5e3" }), "DIRECTORY_CACHE_TTL_MS", /whole number/],
  ["LOG_LEVEL unknown", () => ({ LOG_LEVEL: "loud" }), "LOG_LEVEL", /expected one of/],
  ["GATEWAY_ENCRYPTION_KEY of 16 bytes", () => ({ GATEWAY_ENCRYPTION_KEY: randomBytes(16).toString("base64") }), "GATEWAY_ENCRYPTION_KEY", /32 random bytes in base64/],
  ["GATEWAY_ENCRYPTION_KEY not base64", () => ({ GATEWAY_ENCRYPTION_KEY: "not a key!" }), "GATEWAY_ENCRYPTION_KEY", /32 random bytes in base64/],
  ["FIRST_REQUEST_TIMEOUT_MS of 0", () => ({ FIRST_REQUEST_TIMEOUT_MS: "0" }), "FIRST_REQUEST_TIMEOUT_MS", /between 100 and/],
  ["HEADERS_TIMEOUT_MS longer than REQUEST_TIMEOUT_MS", () => ({ HEADERS_TIMEOUT_MS: "20000", REQUEST_TIMEOUT_MS: "10000" }), "HEADERS_TIMEOUT_MS", /not be longer than REQUEST_TIMEOUT_MS/],
  ["REQUEST_TIMEOUT_MS not a number", () => ({ REQUEST_TIMEOUT_MS: "30s" }), "REQUEST_TIMEOUT_MS", /whole number/],
  ["KEEP_ALIVE_TIMEOUT_MS too long", () => ({ KEEP_ALIVE_TIMEOUT_MS: "99999999" }), "KEEP_ALIVE_TIMEOUT_MS", /between 100 and/],
  ["HTTP2_IDLE_TIMEOUT_MS of 0", () => ({ HTTP2_IDLE_TIMEOUT_MS: "0" }), "HTTP2_IDLE_TIMEOUT_MS", /between 100 and/],
  ["MAX_CONNECTION_AGE_SECONDS negative", () => ({ MAX_CONNECTION_AGE_SECONDS: "-1" }), "MAX_CONNECTION_AGE_SECONDS", /whole number/],
  ["MAX_CONNECTIONS at the file-descriptor limit", () => ({ MAX_CONNECTIONS: "1024" }), "MAX_CONNECTIONS", /between 1 and 960/],
  ["MAX_CONNECTIONS_PER_CLIENT above MAX_CONNECTIONS", () => ({ MAX_CONNECTIONS: "100", MAX_CONNECTIONS_PER_CLIENT: "101" }), "MAX_CONNECTIONS_PER_CLIENT", /between 1 and 100/],
  ["HTTP2_MAX_CONCURRENT_STREAMS of 0", () => ({ HTTP2_MAX_CONCURRENT_STREAMS: "0" }), "HTTP2_MAX_CONCURRENT_STREAMS", /between 1 and/],
  ["RESET_FLOOD_COOLDOWN_SECONDS too long", () => ({ RESET_FLOOD_COOLDOWN_SECONDS: "7200" }), "RESET_FLOOD_COOLDOWN_SECONDS", /between 0 and 3600/],
  ["HTTP2_MAX_PREMATURE_RESETS of 0", () => ({ HTTP2_MAX_PREMATURE_RESETS: "0" }), "HTTP2_MAX_PREMATURE_RESETS", /between 1 and/],
  ["SESSION_MAX_PER_PARTNER of 0", () => ({ SESSION_MAX_PER_PARTNER: "0" }), "SESSION_MAX_PER_PARTNER", /between 1 and/],
  ["SESSION_MAX_LIFETIME_SECONDS of 0", () => ({ SESSION_MAX_LIFETIME_SECONDS: "0" }), "SESSION_MAX_LIFETIME_SECONDS", /between 1 and/],
  ["PLATFORM_MAX_ANSWER_BYTES too small", () => ({ PLATFORM_MAX_ANSWER_BYTES: "10" }), "PLATFORM_MAX_ANSWER_BYTES", /between 1024 and/],
  ["PLATFORM_IDLE_CONNECTION_MS too short", () => ({ PLATFORM_IDLE_CONNECTION_MS: "10" }), "PLATFORM_IDLE_CONNECTION_MS", /between 100 and 600000/],
  ["OVERLOAD_EVENT_LOOP_DELAY_MS not a number", () => ({ OVERLOAD_EVENT_LOOP_DELAY_MS: "fast" }), "OVERLOAD_EVENT_LOOP_DELAY_MS", /whole number/],
  [
    "GATEWAY_ENCRYPTION_PREVIOUS_KEYS without GATEWAY_ENCRYPTION_KEY",
    () => ({ GATEWAY_ENCRYPTION_PREVIOUS_KEYS: randomBytes(32).toString("base64") }),
    "GATEWAY_ENCRYPTION_PREVIOUS_KEYS",
    /needs GATEWAY_ENCRYPTION_KEY/,
  ],
  [
    "GATEWAY_ENCRYPTION_PREVIOUS_KEYS with a short key",
    () => ({ GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString("base64"), GATEWAY_ENCRYPTION_PREVIOUS_KEYS: `${randomBytes(32).toString("base64")},abc` }),
    "GATEWAY_ENCRYPTION_PREVIOUS_KEYS",
    /32 random bytes/,
  ],
  ["METRICS_PORT not a port", () => ({ METRICS_PORT: "metrics" }), "METRICS_PORT", /expected a whole number, got "metrics"/],
  ["METRICS_PORT out of range", () => ({ METRICS_PORT: "65536" }), "METRICS_PORT", /between 0 and 65535/],
  ["OTEL_EXPORTER_OTLP_ENDPOINT not a URL", () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }), "OTEL_EXPORTER_OTLP_ENDPOINT", /http:\/\/ or https:\/\/ URL/],
  ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT not http", () => ({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "grpc://c:4317" }), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", /http:\/\//],
  ["OTEL_EXPORTER_OTLP_PROTOCOL grpc", () => ({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }), "OTEL_EXPORTER_OTLP_PROTOCOL", /grpc is not supported/],
  ["OTEL_EXPORTER_OTLP_HEADERS without =, the value never echoed", () => ({ OTEL_EXPORTER_OTLP_HEADERS: "api-key=ok,secretvalue123" }), "OTEL_EXPORTER_OTLP_HEADERS", /^(?!.*secretvalue123).*entry 2 is not one/],
  ["OTEL_TRACES_SAMPLER unknown", () => ({ OTEL_TRACES_SAMPLER: "sometimes" }), "OTEL_TRACES_SAMPLER", /expected one of always_on/],
  ["OTEL_TRACES_SAMPLER_ARG over 1", () => ({ OTEL_TRACES_SAMPLER_ARG: "1.5" }), "OTEL_TRACES_SAMPLER_ARG", /from 0 to 1/],
  ["OTEL_SDK_DISABLED not a boolean", () => ({ OTEL_SDK_DISABLED: "yes" }), "OTEL_SDK_DISABLED", /true or false/],
  ["IDEMPOTENCY_CLAIM_TTL_MS too short", () => ({ IDEMPOTENCY_CLAIM_TTL_MS: "500" }), "IDEMPOTENCY_CLAIM_TTL_MS", /between 1000 and 600000/],
  [
    "IDEMPOTENCY_CLAIM_TTL_MS not longer than WEBHOOK_TIMEOUT_MS",
    () => ({ WEBHOOK_TIMEOUT_MS: "20000", IDEMPOTENCY_CLAIM_TTL_MS: "20000" }),
    "IDEMPOTENCY_CLAIM_TTL_MS",
    /must be longer than WEBHOOK_TIMEOUT_MS \(20000\), got 20000/,
  ],
  ["IDEMPOTENCY_CLAIM_TTL_MS below the default webhook timeout", () => ({ IDEMPOTENCY_CLAIM_TTL_MS: "15000" }), "IDEMPOTENCY_CLAIM_TTL_MS", /longer than WEBHOOK_TIMEOUT_MS \(30000\)/],
  ["IDEMPOTENCY_TTL_SECONDS under a minute", () => ({ IDEMPOTENCY_TTL_SECONDS: "59" }), "IDEMPOTENCY_TTL_SECONDS", /between 60 and 2592000/],
  ["IDEMPOTENCY_WAIT_MS over a minute", () => ({ IDEMPOTENCY_WAIT_MS: "60001" }), "IDEMPOTENCY_WAIT_MS", /between 0 and 60000/],
  ["MAX_SEARCH_RANGE_DAYS of 0", () => ({ MAX_SEARCH_RANGE_DAYS: "0" }), "MAX_SEARCH_RANGE_DAYS", /between 1 and 366/],
  ["RATE_LIMIT_PER_SECOND a fraction", () => ({ RATE_LIMIT_PER_SECOND: "2.5" }), "RATE_LIMIT_PER_SECOND", /whole number/],
  ["RATE_LIMIT_BURST of 0", () => ({ RATE_LIMIT_BURST: "0" }), "RATE_LIMIT_BURST", /between 1 and 10000000/],
  ["SESSION_IDLE_SECONDS over a day", () => ({ SESSION_IDLE_SECONDS: "86401" }), "SESSION_IDLE_SECONDS", /between 1 and 86400/],
  ["SESSION_MAX_IN_FLIGHT of 0", () => ({ SESSION_MAX_IN_FLIGHT: "0" }), "SESSION_MAX_IN_FLIGHT", /between 1 and 256/],
  ["STREAM_WINDOW_MINUTES under 15", () => ({ STREAM_WINDOW_MINUTES: "10" }), "STREAM_WINDOW_MINUTES", /between 15 and 10080/],
  ["STREAM_CONCURRENCY over 32", () => ({ STREAM_CONCURRENCY: "33" }), "STREAM_CONCURRENCY", /between 1 and 32/],
  [
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS with a bad value, never echoed",
    () => ({ OTEL_EXPORTER_OTLP_TRACES_HEADERS: "api-key=%zzsecretvalue123" }),
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    /^(?!.*secretvalue123).*the value of "api-key" is not valid percent-encoding/,
  ],
  ["SHUTDOWN_GRACE_MS not longer than WEBHOOK_TIMEOUT_MS", () => ({ WEBHOOK_TIMEOUT_MS: "20000", SHUTDOWN_GRACE_MS: "20000" }), "SHUTDOWN_GRACE_MS", /must be longer than WEBHOOK_TIMEOUT_MS \(20000\)/],
  ["SHUTDOWN_GRACE_MS below the default webhook timeout", () => ({ SHUTDOWN_GRACE_MS: "10000" }), "SHUTDOWN_GRACE_MS", /must be longer than WEBHOOK_TIMEOUT_MS \(30000\)/],
  ["SHUTDOWN_GRACE_MS too long", () => ({ SHUTDOWN_GRACE_MS: "3600000" }), "SHUTDOWN_GRACE_MS", /between 1000 and 600000/],
];

describe.concurrent("the built gateway refuses to start", () => {
  it.each(STARTS)("%s", async (_name, env, variable, detail) => {
    const r = await run(process.execPath, ["dist/main.js"], { env: env(), timeoutMs: 10_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain("Demo partner key");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^configuration error: ${variable}: `));
    expect(lines[0]).toMatch(detail);
    expect(lines[0]).not.toContain("secret");
  });
});

describe("loadConfig names the variable", () => {
  it.each(VALUES)("%s", (_name, env, variable, detail) => {
    let caught: unknown;
    try {
      loadConfig(env(), { fdLimit: 1024 });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe(variable);
    expect((caught as ConfigError).message).toMatch(detail);
    expect((caught as ConfigError).message).not.toContain("\n");
  });

  it("reads encryption keys in base64 and base64url, the previous ones as a list", () => {
    const [k1, k2, k3] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const config = loadConfig({
      GATEWAY_ENCRYPTION_KEY: k1.toString("base64"),
      GATEWAY_ENCRYPTION_PREVIOUS_KEYS: ` ${k2.toString("base64url")} , ${k3.toString("base64")}`,
    });
    expect(config.encryption).toEqual({ key: k1, previousKeys: [k2, k3] });
    expect(loadConfig({}).encryption).toBeUndefined();
  });

  it("reads REDIS_CLUSTER_NODES: host:port and URL entries, one user and password, TLS from rediss://", () => {
    const plain = loadConfig({ REDIS_CLUSTER_NODES: " 10.0.0.1:7000, redis-2.internal:7001 ,[::1]:7002" });
    expect(plain.redisCluster).toEqual({
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "redis-2.internal", port: 7001 },
        { host: "::1", port: 7002 },
      ],
      username: undefined,
      password: undefined,
      tls: false,
    });
    expect(plain.redisUrl).toBeUndefined();
    const secured = loadConfig({ REDIS_CLUSTER_NODES: "rediss://gw:p%40ss@10.0.0.1:7000,rediss://10.0.0.2,rediss://gw:p%40ss@10.0.0.3:7000" });
    expect(secured.redisCluster).toEqual({
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 6379 },
        { host: "10.0.0.3", port: 7000 },
      ],
      username: "gw",
      password: "p@ss",
      tls: true,
    });
    expect(loadConfig({}).redisCluster).toBeUndefined();
  });

  it("derives the connection cap from the file-descriptor limit, and reads that limit from /proc on Linux", () => {
    expect(loadConfig({}, { fdLimit: 1024 }).edge).toMatchObject({ maxConnections: 640, maxConnectionsPerClient: 256, firstRequestTimeoutMs: 10_000 });
    expect(loadConfig({}, { fdLimit: 65536 }).edge.maxConnections).toBe(50_000);
    expect(loadConfig({}, { fdLimit: 200 }).edge).toMatchObject({ maxConnections: 125, maxConnectionsPerClient: 125 });
    expect(loadConfig({}, { fdLimit: undefined }).edge.maxConnections).toBe(3712);
    if (process.platform === "linux") {
      const soft = Number(/^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))![1]);
      expect(fileDescriptorLimit()).toBe(soft);
    }
  });

  it("reads the idempotency, search, stream, session and rate-limit settings in their units", () => {
    const config = loadConfig({
      WEBHOOK_TIMEOUT_MS: "5000",
      IDEMPOTENCY_CLAIM_TTL_MS: "6000",
      IDEMPOTENCY_TTL_SECONDS: "3600",
      IDEMPOTENCY_WAIT_MS: "0",
      MAX_SEARCH_RANGE_DAYS: "7",
      RATE_LIMIT_PER_SECOND: "0",
      RATE_LIMIT_BURST: "10",
      SESSION_IDLE_SECONDS: "60",
      SESSION_MAX_IN_FLIGHT: "2",
      STREAM_WINDOW_MINUTES: "60",
      STREAM_CONCURRENCY: "1",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_EXPORTER_OTLP_HEADERS: "api-key=generic,x-tenant=t1",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "api-key=for%20traces",
    });
    expect(config).toMatchObject({
      idempotencyClaimTtlMs: 6000,
      idempotencyTtlMs: 3_600_000,
      idempotencyWaitMs: 0,
      maxSearchRangeMs: 7 * 24 * 3_600_000,
      rateLimitPerSecond: 0,
      rateLimitBurst: 10,
      sessionIdleMs: 60_000,
      sessionMaxInFlight: 2,
      streamWindowMs: 3_600_000,
      streamConcurrency: 1,
    });
    // The traces-only headers win over the generic ones of the same name.
    expect(config.tracing?.headers).toEqual({ "api-key": "for traces", "x-tenant": "t1" });
    expect(loadConfig({ WEBHOOK_TIMEOUT_MS: "5000" }).idempotencyClaimTtlMs).toBe(15_000);
  });

  it("derives the shutdown grace from the webhook timeout", () => {
    expect(loadConfig({}).shutdownGraceMs).toBe(35_000);
    expect(loadConfig({ WEBHOOK_TIMEOUT_MS: "2000" }).shutdownGraceMs).toBe(7000);
    expect(loadConfig({ WEBHOOK_TIMEOUT_MS: "2000", SHUTDOWN_GRACE_MS: "2500" }).shutdownGraceMs).toBe(2500);
  });

  it("accepts an empty environment: the embedded default", () => {
    expect(loadConfig({})).toMatchObject({ port: 8080, host: "127.0.0.1", redisUrl: undefined, maxRequestBytes: 65536, webhookTimeoutMs: 30_000 });
    expect(loadConfig({})).toMatchObject({ metrics: { serve: "main" }, tracing: undefined });
  });

  it("reads METRICS_PORT and the OpenTelemetry variables", () => {
    expect(loadConfig({ METRICS_PORT: "9464" }).metrics).toEqual({ serve: "port", port: 9464 });
    expect(loadConfig({ METRICS_PORT: "off" }).metrics).toEqual({ serve: "off" });
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
        OTEL_EXPORTER_OTLP_HEADERS: "api-key=a%2Cb, x-tenant = t1",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,service.name=from-attributes",
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0.25",
      }).tracing,
    ).toEqual({
      endpoint: "http://collector:4318/v1/traces",
      protocol: "http/protobuf",
      headers: { "api-key": "a,b", "x-tenant": "t1" },
      serviceName: "from-attributes",
      resourceAttributes: { "deployment.environment": "prod", "service.name": "from-attributes" },
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.25,
    });
    const traces = loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://c/custom", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json", OTEL_SERVICE_NAME: "gw" }).tracing;
    expect(traces).toMatchObject({ endpoint: "https://c/custom", protocol: "http/json", serviceName: "gw" });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }).tracing).toBeUndefined();
  });
});
