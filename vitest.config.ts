import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-redis.ts", "test/support/global-build.ts"],
    // The behaviour × protocol table, printed after the summary (test/support/behaviour-matrix.ts).
    reporters: ["default", "./test/support/behaviour-matrix-reporter.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: "forks",
    // Test files start servers and Redis instances of their own; two at a time
    // keeps a two-core machine responsive.
    maxWorkers: 2,
  },
});
