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
  readonly area: "auth" | "ownership" | "idempotency" | "signing" | "deadlines" | "error mapping" | "limits" | "streams" | "stores" | "transport";
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
    find: `if (status < 400 || status >= 500 || status === 408 || status === 429) return undefined;`,
    replace: `if (status < 400 || status >= 500 || status === 408) return undefined;`,
    tests: ["test/idempotency-keeper.test.ts"],
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
    find: `deadline: remaining === undefined ? undefined : Date.now() + remaining };`,
    replace: `deadline: remaining === undefined ? undefined : Date.now() + remaining * 1000 };`,
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
    find: `      readMaxBytes: config.maxRequestBytes,`,
    replace: `      readMaxBytes: config.maxRequestBytes * 1000,`,
    tests: ["test/raw-wire.test.ts"],
  },
  {
    name: "the rate limiter is never charged",
    area: "limits",
    file: "src/rpc/interceptors.ts",
    find: `    limiter.take(partner.id);`,
    replace: `    void limiter;`,
    tests: ["test/rate-limit.test.ts"],
  },
  {
    name: "Retry-After multiplies by the rate instead of dividing (the limiter's unit test)",
    area: "limits",
    file: "src/gateway/rate-limiter.ts",
    find: `const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));`,
    replace: `const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) * perSecond));`,
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
    find: `const value = JSON.stringify({ s: "done", f: record.fingerprint, o: record.outcome });`,
    replace: `const value = JSON.stringify({ s: "done", f: record.fingerprint, o: {} });`,
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
    find: `      tls: config.tls,
      keepAliveMs: 30_000,`,
    replace: `      keepAliveMs: 30_000,`,
    tests: ["test/tls.test.ts"],
    testName: "plaintext",
  },
  {
    name: "the inner HTTP/1.1 server's header and request timeouts are never started",
    area: "limits",
    file: "src/server/one-port-server.ts",
    find: `    h1.emit("listening");`,
    replace: `    h1.emit("ready");`,
    tests: ["test/edge-connections.test.ts"],
    testName: "408",
  },
  {
    name: "at the connection cap, a new connection is refused instead of closing a silent one",
    area: "limits",
    file: "src/server/connection-guard.ts",
    find: `      if (oldest === undefined) {`,
    replace: `      if (oldest === undefined || oldest !== undefined) {`,
    tests: ["test/edge-connections.test.ts"],
    testName: "total cap",
  },
  {
    name: "premature stream resets are not counted",
    area: "limits",
    file: "src/server/http2-abuse.ts",
    find: `    if (++resets <= limits.maxPrematureResets || session.destroyed) return;`,
    replace: `    if (++resets <= limits.maxPrematureResets * 1000 || session.destroyed) return;`,
    tests: ["test/edge-connections.test.ts"],
    testName: "resets",
  },
  {
    name: "an empty session message resets the idle clock",
    area: "streams",
    file: "src/gateway/bot-session.ts",
    find: `      // A refused message does not count as activity: the idle clock goes on.
      this.answerError(id, rejection);`,
    replace: `      this.answerError(id, rejection);
      this.armIdleTimer();`,
    tests: ["test/session-bounds.test.ts"],
    testName: "empty messages",
  },
  {
    name: "a revoked partner key leaves its sessions open",
    area: "auth",
    file: "src/gateway/session-registry.ts",
    find: `        if (valid) continue;`,
    replace: `        if (valid || !valid) continue;`,
    tests: ["test/session-bounds.test.ts"],
    testName: "unauthorized",
  },
  {
    name: "joiners of a failed folded lookup take its failure",
    area: "stores",
    file: "src/store/ttl-cache.ts",
    find: `        return this.lookup(key, load, false);`,
    replace: `        return pending;`,
    tests: ["test/ttl-cache.test.ts"],
  },
  {
    name: "the Redis command timeout rules before the answer in the socket is read",
    area: "stores",
    file: "src/store/lag-tolerant-timeout.ts",
    find: `      setImmediate(() => {`,
    replace: `      ((f: () => void) => f())(() => {`,
    tests: ["test/redis-command-timeout.test.ts"],
  },
  {
    name: "an overloaded gateway accepts new calls",
    area: "limits",
    file: "src/server/overload.ts",
    find: `    if (!this.overloaded) return;`,
    replace: `    if (!this.overloaded || this.overloaded) return;`,
    tests: ["test/overload.test.ts"],
  },
];
