/**
 * `npm run admin` against the test Redis and a running gateway that shares
 * its key prefix: provisioning end to end, keys never stored or listed in
 * clear, changes that reach the running gateway within the cache TTL (at
 * once, through the change notices), and one-line errors with exit codes.
 */
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedis } from "../src/store/redis-connection.js";
import { hashPartnerKey } from "../src/store/partner-key.js";
import { bearer, clientsFor, expectRpcError, searchRequest, type RpcClients } from "./support/clients.js";
import { admin, printedKey, run } from "./support/commands.js";
import { newPartnerKey, searchBody, startHarness, testRedisUrl, type Harness } from "./support/harness.js";

let h: Harness;
let c: RpcClients;
let env: Record<string, string>;
let redis: Redis;

beforeAll(async () => {
  // A long cache TTL: changes that show up quickly prove the change notices.
  h = await startHarness({ env: { DIRECTORY_CACHE_TTL_MS: "60000" } });
  env = { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: h.config.redisKeyPrefix };
  c = clientsFor("connect-json-h1", h.url);
  redis = await connectRedis(testRedisUrl());
});
afterAll(async () => {
  await h.close();
  const keys = await redis.keys(`${h.config.redisKeyPrefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const search = (key: string, bot: string) => c.availability.searchAvailability(searchRequest(searchBody(bot)), bearer(key));

async function ok(args: string[]): Promise<string> {
  const r = await admin(args, env);
  expect(r.stderr, `admin ${args.join(" ")}`).toBe("");
  expect(r.code).toBe(0);
  return r.stdout;
}

/** Every key name and value under the gateway's prefix, as text. */
async function everythingStored(): Promise<string> {
  const parts: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${h.config.redisKeyPrefix}*`, "COUNT", 500);
    cursor = next;
    for (const key of keys) {
      parts.push(key);
      const type = await redis.type(key);
      if (type === "string") parts.push((await redis.get(key)) ?? "");
      else if (type === "hash") parts.push(...Object.entries(await redis.hgetall(key)).flat());
      else if (type === "set") parts.push(...(await redis.smembers(key)));
      else parts.push(`<${type}>`);
    }
  } while (cursor !== "0");
  return parts.join("\n");
}

describe("provisioning", () => {
  it("creates a partner, platform, account and bot that work in the running gateway at once", async () => {
    const out = await ok(["create-partner", "ptnr_new", "--name", "New Voice Co"]);
    const key = printedKey(out);
    expect(out.split(key)).toHaveLength(2);
    await ok(["create-platform", "plat_new", "--webhook-url", h.platform.url, "--webhook-secret", h.secret]);
    await ok(["create-account", "acct_new", "plat_new"]);
    // The gateway has just looked this bot up and cached its absence.
    await expectRpcError(search(key, "bot_new"), Code.NotFound, "bot_not_found");
    await ok(["create-bot", "bot_new", "ptnr_new", "acct_new"]);
    await expect.poll(() => search(key, "bot_new").then(() => "ok", String), { timeout: 2000, interval: 50 }).toBe("ok");
    // Another partner still cannot use it.
    await expectRpcError(search(h.keys.a, "bot_new"), Code.NotFound, "bot_not_found");
  });

  it("set-webhook reaches the running gateway within the TTL, and prints a generated secret once", async () => {
    await search(h.keys.a, h.bots.noWebhook).catch(() => undefined);
    const generated = await ok(["set-webhook", "plat_nohook", h.platform.url]);
    const secret = /^\s+(whsec_\S+)$/m.exec(generated)?.[1];
    expect(secret).toBeDefined();
    // The gateway now signs with the generated secret, which the test platform does not know.
    await expect
      .poll(() => search(h.keys.a, h.bots.noWebhook).then(() => "ok", (e: { code: Code }) => Code[e.code]), { timeout: 2000, interval: 50 })
      .toBe(Code[Code.FailedPrecondition]);
    await ok(["set-webhook", "plat_nohook", h.platform.url, "--secret", h.secret]);
    await expect.poll(() => search(h.keys.a, h.bots.noWebhook).then(() => "ok", String), { timeout: 2000, interval: 50 }).toBe("ok");
  });

  it("rotate-key stops the old key at once", async () => {
    const key = printedKey(await ok(["create-partner", "ptnr_rot"]));
    await ok(["create-bot", "bot_rot", "ptnr_rot", "acct_a"]);
    await search(key, "bot_rot");
    const rotated = printedKey(await ok(["rotate-key", "ptnr_rot"]));
    expect(rotated).not.toBe(key);
    await expect
      .poll(() => search(key, "bot_rot").then(() => "ok", (e: { code: Code }) => Code[e.code]), { timeout: 2000, interval: 50 })
      .toBe(Code[Code.Unauthenticated]);
    await search(rotated, "bot_rot");
  });

  it("imports a seed file; no partner key is stored, listed or printed in clear", async () => {
    const seedKey = newPartnerKey();
    const file = join(tmpdir(), `seed-${randomBytes(4).toString("hex")}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        partners: [{ id: "ptnr_seed", name: "Seeded", api_key: seedKey }],
        platforms: [{ id: "plat_seed", webhook_url: h.platform.url, webhook_secret: h.secret }],
        accounts: [{ id: "acct_seed", platform_id: "plat_seed" }],
        bots: [{ id: "bot_seed", partner_id: "ptnr_seed", account_id: "acct_seed" }],
      }),
    );
    const imported = await ok(["import", file]).finally(() => rmSync(file, { force: true }));
    expect(imported).toContain("imported 1 partners, 1 platforms, 1 accounts, 1 bots");
    expect(imported).not.toContain(seedKey);
    await search(seedKey, "bot_seed");
    const created = printedKey(await ok(["create-partner", "ptnr_clear"]));

    const stored = await everythingStored();
    expect(stored).toContain(hashPartnerKey(seedKey));
    expect(stored).toContain(hashPartnerKey(created));
    for (const key of [seedKey, created, h.keys.a, h.keys.b]) {
      expect(stored).not.toContain(key);
      expect(stored).not.toContain(key.slice("sk_ptnr_".length));
    }

    const listed = await ok(["list"]);
    expect(listed).toMatch(/^partners \(\d+\)$/m);
    expect(listed).toMatch(/^\s+bot_seed\s+ptnr_seed\s+acct_seed$/m);
    expect(listed).toMatch(/^\s+plat_seed\s+\S+\s+set$/m);
    expect(listed).toMatch(/^\s+plat_seed/m);
    for (const secret of [seedKey, created, h.secret, hashPartnerKey(seedKey), hashPartnerKey(created)]) {
      expect(listed).not.toContain(secret);
    }
    expect(await ok(["list", "bots"])).toMatch(/^bots \(\d+\)$/m);
  });

  it("runs through npm run admin", async () => {
    const r = await run("npm", ["run", "-s", "admin", "--", "list", "accounts"], { env, timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\s+acct_a\s+plat_test$/m);
  });
});

describe.concurrent("errors: one line, non-zero exit", () => {
  it.each([
    [["create-partner", "ptnr_a"], 1, /^admin: create-partner: partner ptnr_a already exists/],
    [["create-bot", "bot_x", "ptnr_nope", "acct_a"], 1, /^admin: create-bot: unknown partner ptnr_nope$/],
    [["create-bot", "bot_x", "ptnr_a", "acct_nope"], 1, /^admin: create-bot: unknown account acct_nope$/],
    [["create-account", "acct_x", "plat_nope"], 1, /^admin: create-account: unknown platform plat_nope$/],
    [["set-webhook", "plat_nope", "https://example.com"], 1, /^admin: set-webhook: unknown platform plat_nope$/],
    [["set-webhook", "plat_test", "ftp://example.com"], 1, /must be http or https/],
    [["create-partner", "bad id"], 1, /partner id "bad id" is invalid/],
    [["import", "/nonexistent/seed.json"], 1, /^admin: import: ENOENT/],
    [["create-bot", "bot_x"], 2, /^admin: create-bot: expected <id> <partner-id> <account-id>$/],
    [["create-partner", "p", "--colour", "red"], 2, /^admin: create-partner: Unknown option '--colour'/],
    [["list", "secrets"], 2, /^admin: list: cannot list "secrets"/],
    [["frobnicate"], 2, /^admin: unknown command "frobnicate"/],
  ] as const)("%j exits %i", async (args, code, message) => {
    const r = await admin(args, env);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr.trimEnd()).toMatch(message);
    expect(r.code).toBe(code);
  });

  it("names the variable when the configuration is wrong or Redis is missing", async () => {
    const noRedis = await admin(["list"], {});
    expect(noRedis.stderr).toMatch(/^admin: REDIS_URL is not set/);
    expect(noRedis.code).toBe(1);
    const badVar = await admin(["list"], { ...env, DIRECTORY_CACHE_TTL_MS: "soon" });
    expect(badVar.stderr).toBe('admin: configuration error: DIRECTORY_CACHE_TTL_MS: expected a whole number, got "soon"\n');
    expect(badVar.code).toBe(1);
    const started = Date.now();
    const down = await admin(["list"], { REDIS_URL: "redis://:hunter2@127.0.0.1:1" });
    expect(down.stderr).toBe("admin: cannot reach Redis at redis://***@127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1\n");
    expect(down.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("with REDIS_CLUSTER_NODES: one line naming the variable when the cluster cannot be reached or REDIS_URL is set too", async () => {
    const started = Date.now();
    const down = await admin(["list"], { REDIS_CLUSTER_NODES: "redis://:hunter2@127.0.0.1:1,127.0.0.1:2" });
    expect(down.stderr).toBe("admin: REDIS_CLUSTER_NODES: cannot reach the Redis Cluster at 127.0.0.1:1,127.0.0.1:2: no node accepted a connection\n");
    expect(down.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
    const both = await admin(["list"], { REDIS_URL: "redis://127.0.0.1:1", REDIS_CLUSTER_NODES: "127.0.0.1:2" });
    expect(both.stderr).toMatch(/^admin: configuration error: REDIS_CLUSTER_NODES: REDIS_URL and REDIS_CLUSTER_NODES are alternatives/);
    expect(both.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(both.code).toBe(1);
  });

  it("help exits 0; no command prints the help and exits 2", async () => {
    const help = await admin(["help"], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("create-partner <id> [--name NAME]");
    const none = await admin([], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("Usage: npm run admin");
  });
});
