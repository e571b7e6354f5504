/**
 * One-line bugs the test suite must catch (`npm run mutate` applies them one
 * at a time; see mutate.ts). Each stands for a mistake someone could make in
 * `src/`: the exact text to find (it must occur once in the file), what it
 * becomes, and the test files that must fail with it. Where `testName` is
 * given (a vitest `-t` pattern, matched against names joined with " > "),
 * only the tests it matches run, and one of them must fail: that pins the
 * bug to the test meant to catch it.
 *
 * A mutation must still compile (the runner refuses one that does not), so a
 * caught mutation is caught by a test, not by the type checker.
 */
export interface Mutation {
  /** The bug, in a few words. */
  readonly name: string;
  readonly area: "auth" | "ownership" | "idempotency" | "signing" | "deadlines" | "error mapping" | "limits" | "streams" | "stores" | "transport" | "privacy";
  /** Relative to the repository root. */
  readonly file: string;
  readonly find: string;
  readonly replace: string;
  /** Test files run against the mutated source; at least one test must fail. */
  readonly tests: readonly string[];
  /** A vitest `-t` pattern: only the tests it matches are run. */
  readonly testName?: string;
}

export const MUTATIONS: readonly Mutation[] = [
  {
    name: "an unknown partner key is let in as partner A",
    area: "auth",
    file: "src/store/directory.ts",
    find: `      throw GatewayError.of("unauthorized", "unknown partner key");`,
    replace: `      return { id: "ptnr_a", name: "anyone", keyHash };`,
    tests: ["test/rpc-protocols.test.ts", "test/rest.test.ts"],
  },
  {
    name: "another partner's bot is served",
    area: "ownership",
    file: "src/store/directory.ts",
    find: `    if (route === undefined || route.bot.partnerId !== partner.id) {`,
    replace: `    if (route === undefined || partner.id === "") {`,
    tests: ["test/rpc-protocols.test.ts", "test/rest.test.ts"],
  },
  {
    name: "the fingerprint hashes the slot only, not the whole booking",
    area: "idempotency",
    file: "src/gateway/appointments.ts",
    find: `createHash("sha256").update(JSON.stringify([route.bot.id, booking])).digest("hex")`,
    replace: `createHash("sha256").update(JSON.stringify([route.bot.id, booking.start_at])).digest("hex")`,
    tests: ["test/idempotent-bookings.test.ts"],
  },
  {
    name: "the downstream key is not scoped to the partner",
    area: "idempotency",
    file: "src/gateway/appointments.ts",
    find: `idempotency_key: downstreamIdempotencyKey(caller.partner.id, key),`,
    replace: `idempotency_key: downstreamIdempotencyKey("", key),`,
    tests: ["test/idempotent-bookings.test.ts"],
  },
  {
    name: "a platform 429 is stored as final, so the retry can never book",
    area: "idempotency",
    file: "src/gateway/idempotency.ts",
    find: `const FINAL_PLATFORM_STATUSES: ReadonlySet<number> = new Set([400, 404, 409, 422]);`,
    replace: `const FINAL_PLATFORM_STATUSES: ReadonlySet<number> = new Set([400, 404, 409, 422, 429]);`,
    tests: ["test/idempotency-keeper.test.ts"],
  },
  {
    name: "the booking webhook is sent as idempotent, so a reset keep-alive connection sends it twice",
    area: "idempotency",
    file: "src/gateway/appointments.ts",
    find: `          idempotent: false,`,
    replace: `          idempotent: true,`,
    tests: ["test/exactly-once.test.ts"],
    testName: "reads the whole booking, then resets the connection",
  },
  {
    name: "a platform 401 is stored as final, so the booking is refused after the platform is fixed",
    area: "idempotency",
    file: "src/gateway/idempotency.ts",
    find: `const FINAL_PLATFORM_STATUSES: ReadonlySet<number> = new Set([400, 404, 409, 422]);`,
    replace: `const FINAL_PLATFORM_STATUSES: ReadonlySet<number> = new Set([400, 401, 404, 409, 422]);`,
    // The webhook client turns a 401 into platform_rejected before the keeper sees it: the keeper's own test pins its policy.
    tests: ["test/idempotency-keeper.test.ts"],
    testName: "platform 401 envelope",
  },
  {
    name: "the directory marker is not checked, so a Redis that lost its data answers 401 (the lost directory)",
    area: "stores",
    file: "src/store/directory.ts",
    find: `      await this.requireProvisioned();`,
    replace: ``,
    tests: ["test/directory-store.test.ts", "test/exactly-once.test.ts"],
  },
  {
    name: "the field cipher's seal returns the plain value (encryption at rest)",
    area: "privacy",
    file: "src/encryption/field-cipher.ts",
    find: `    seal(plain, context) {`,
    replace: `    seal(plain, context) { if (plain !== "") return plain;`,
    tests: ["test/encryption-at-rest.test.ts"],
  },
  {
    name: "the directory upgrade copies a sealed webhook secret as it is (it no longer opens under its new key)",
    area: "stores",
    file: "src/store/directory-layout.ts",
    find: `if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'webhook_secret', ARGV[3]) end`,
    replace: ``,
    tests: ["test/directory-upgrade.test.ts"],
    testName: "moves it",
  },
  {
    name: "the directory upgrade overwrites a key the current layout already holds",
    area: "stores",
    file: "src/store/directory-layout.ts",
    find: `if redis.call('EXISTS', KEYS[2]) == 1 then`,
    replace: `if false then`,
    tests: ["test/directory-upgrade.test.ts"],
    testName: "never overwritten",
  },
  {
    name: "the directory upgrade announces nothing, so running gateways keep a cached unknown key (401 after the upgrade)",
    area: "stores",
    file: "src/store/directory-layout.ts",
    find: `.spublish(directoryChangesChannel(to), "upgrade")`,
    replace: `.spublish(directoryChangesChannel(from), "upgrade")`,
    tests: ["test/directory-upgrade.test.ts"],
    testName: "moves it",
  },
  {
    name: "the request log line carries the full URL again, query included (the logged query)",
    area: "privacy",
    file: "src/server/app.ts",
    find: `path: pathOf(req.url), status: reply.statusCode`,
    replace: `path: pathOf(req.url), url: req.url, status: reply.statusCode`,
    tests: ["test/request-context.test.ts"],
    testName: "query is never logged",
  },
  {
    name: "in use is sent as unavailable (the 50-caller test over gRPC)",
    area: "error mapping",
    file: "src/errors.ts",
    find: `idempotency_key_in_use: { httpStatus: 409, connectCode: Code.Aborted },`,
    replace: `idempotency_key_in_use: { httpStatus: 409, connectCode: Code.Unavailable },`,
    tests: ["test/idempotent-bookings.test.ts"],
    testName: "50 concurrent requests",
  },
  {
    name: "mismatch is answered 400 instead of 422 (the REST rows)",
    area: "error mapping",
    file: "src/errors.ts",
    find: `idempotency_key_mismatch: { httpStatus: 422, connectCode: Code.FailedPrecondition },`,
    replace: `idempotency_key_mismatch: { httpStatus: 400, connectCode: Code.FailedPrecondition },`,
    tests: ["test/idempotent-bookings.test.ts"],
    testName: "^rest > another body with the same key",
  },
  {
    name: "a platform 409 is mapped to aborted (the keeper's replayed-code test)",
    area: "error mapping",
    file: "src/errors.ts",
    find: `  if (status === 409) return Code.AlreadyExists;`,
    replace: `  if (status === 409) return Code.Aborted;`,
    tests: ["test/idempotency-keeper.test.ts"],
    testName: "stores a platform 4xx error envelope",
  },
  {
    name: "a platform 5xx is mapped to internal",
    area: "error mapping",
    file: "src/errors.ts",
    find: `  if (status >= 500) return Code.Unavailable;`,
    replace: `  if (status >= 500) return Code.Internal;`,
    tests: ["test/rpc-protocols.test.ts"],
  },
  {
    name: "errors lose their Retry-After (the OpenAPI check of REST answers)",
    area: "error mapping",
    file: "src/errors.ts",
    find: `      metadata.set("retry-after", String(this.retryAfterSeconds));`,
    replace: ``,
    tests: ["test/openapi.test.ts"],
    testName: "Retry-After",
  },
  {
    name: "the caller's deadline is read as seconds, not milliseconds (the server's deadline answer)",
    area: "deadlines",
    file: "src/rpc/call-context.ts",
    find: `deadline: remaining === undefined ? undefined : Date.now() + remaining,`,
    replace: `deadline: remaining === undefined ? undefined : Date.now() + remaining * 1000,`,
    tests: ["test/rpc-protocols.test.ts"],
    testName: "the caller's own, shorter deadline",
  },
  {
    name: "the booking's deadline is not passed to the idempotency keeper (the Connect row)",
    area: "deadlines",
    file: "src/gateway/appointments.ts",
    find: `{ scope: caller.partner.id, key, fingerprint, signal: caller.signal, deadline: caller.deadline },`,
    replace: `{ scope: caller.partner.id, key, fingerprint, signal: caller.signal },`,
    tests: ["test/idempotent-bookings.test.ts"],
    testName: "connect-json-h1.*deadline passes mid-booking",
  },
  {
    name: "the signature header is renamed (checked by the tests' own verifier)",
    area: "signing",
    file: "src/platform/signature.ts",
    find: `export const SIGNATURE_HEADER = "x-dialstack-signature";`,
    replace: `export const SIGNATURE_HEADER = "x-dialstack-sig";`,
    tests: ["test/rpc-protocols.test.ts"],
    testName: "searches availability through the signed webhook",
  },
  {
    name: "the request size limit is a thousand times too large",
    area: "limits",
    file: "src/server/app.ts",
    find: `    readMaxBytes: config.maxRequestBytes,`,
    replace: `    readMaxBytes: config.maxRequestBytes * 1000,`,
    tests: ["test/raw-wire.test.ts"],
  },
  {
    name: "the rate limiter is never charged",
    area: "limits",
    file: "src/rpc/interceptors.ts",
    find: `    await limiter.charge(partner.id);`,
    replace: `    void limiter;`,
    tests: ["test/rate-limit.test.ts"],
  },
  {
    name: "Retry-After multiplies by the rate instead of dividing (the limiter's unit test)",
    area: "limits",
    file: "src/gateway/rate-limiter.ts",
    find: `    throw rateLimited(this.limit, Math.ceil((1 - bucket.tokens) / perSecond));`,
    replace: `    throw rateLimited(this.limit, Math.ceil((1 - bucket.tokens) * perSecond));`,
    tests: ["test/rate-limit.test.ts"],
    testName: "refills at the sustained rate",
  },
  {
    name: "one operation too many may be in flight in a session",
    area: "limits",
    file: "src/gateway/bot-session.ts",
    find: `    if (this.inFlight.size >= this.options.maxInFlight) {`,
    replace: `    if (this.inFlight.size > this.options.maxInFlight) {`,
    tests: ["test/bot-session.test.ts"],
  },
  {
    name: "a half-closed session ends before its operations in flight are answered",
    area: "streams",
    file: "src/gateway/bot-session.ts",
    find: `        if (!this.reading && this.inFlight.size === 0) {`,
    replace: `        if (!this.reading) {`,
    tests: ["test/bot-session.test.ts"],
  },
  {
    name: "a streamed search relays one window more than the bound at once",
    area: "streams",
    file: "src/gateway/ordered-pool.ts",
    find: `    while (next < count && next - finished < concurrency) {`,
    replace: `    while (next < count && next - finished <= concurrency) {`,
    tests: ["test/availability-stream.test.ts"],
  },
  {
    name: "finished bookings are stored in Redis without their outcome (bot sessions on Redis)",
    area: "stores",
    file: "src/idempotency/redis-idempotency-keeper.ts",
    find: `if (!this.cipher.enabled) return JSON.stringify({ s: "done", f: record.fingerprint, o: record.outcome });`,
    replace: `if (!this.cipher.enabled) return JSON.stringify({ s: "done", f: record.fingerprint, o: {} });`,
    tests: ["test/bot-session.test.ts"],
    testName: "uses the idempotency machinery of unary bookings",
  },
  {
    name: "a half-closed connection is never closed (raw TCP garbage)",
    area: "transport",
    file: "src/server/one-port-server.ts",
    find: `    server = net.createServer((socket) => {`,
    replace: `    server = net.createServer({ allowHalfOpen: true }, (socket) => {`,
    tests: ["test/fuzz.test.ts"],
    testName: "garbage on raw TCP",
  },
  {
    name: "the TLS configuration is not given to the listener (plaintext on the TLS port)",
    area: "transport",
    file: "src/server/app.ts",
    find: `{ tls: config.tls, keepAliveMs: 30_000 }`,
    replace: `{ keepAliveMs: 30_000 }`,
    tests: ["test/tls.test.ts"],
    testName: "plaintext",
  },
];
