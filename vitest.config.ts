import { defineConfig } from "vitest/config";

/** What every test file runs with. */
const common = {
  testTimeout: 20_000,
  hookTimeout: 20_000,
  pool: "forks",
} as const;

/**
 * The protocol suite: every test that speaks Connect, gRPC or gRPC-Web to a
 * gateway, or fills a cell of the behaviour × protocol table. It runs twice:
 * with the unary fast path (the default, in the `gateway` project) and again
 * against connect-es's general handler alone (`general-path`), so that the
 * two paths cannot drift apart (src/rpc/unary-fast-path.ts).
 */
const PROTOCOL_SUITE = [
  "test/rpc-protocols.test.ts",
  "test/raw-wire.test.ts",
  "test/fuzz.test.ts",
  "test/idempotent-bookings.test.ts",
  "test/exactly-once.test.ts",
  "test/strict-input.test.ts",
  "test/customer-lookup.test.ts",
  "test/grpc-js-client.test.ts",
  "test/buf-curl.test.ts",
  "test/metrics.test.ts",
  "test/request-context.test.ts",
  "test/overload.test.ts",
  "test/rate-limit.test.ts",
  "test/unary-fast-path.test.ts",
];

export default defineConfig({
  test: {
    // The behaviour × protocol table, printed after the summary (test/support/behaviour-matrix.ts).
    reporters: ["default", "./test/support/behaviour-matrix-reporter.ts"],
    // Test files start servers and Redis instances of their own; two at a time
    // keeps a two-core machine responsive.
    maxWorkers: 2,
    projects: [
      {
        extends: false,
        test: {
          ...common,
          name: "gateway",
          include: ["test/**/*.test.ts"],
          globalSetup: ["test/support/global-redis.ts", "test/support/global-build.ts"],
        },
      },
      {
        extends: false,
        test: {
          ...common,
          name: "general-path",
          include: PROTOCOL_SUITE,
          globalSetup: ["test/support/global-redis.ts"],
          env: { UNARY_FAST_PATH: "off" },
        },
      },
    ],
  },
});
