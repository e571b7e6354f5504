/**
 * One contract, two stores: the in-memory directory and the Redis directory
 * pass the same suite, and so does the cached `Directory` built on each.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { NO_ENCRYPTION } from "../src/encryption/field-cipher.js";
import { GatewayError } from "../src/errors.js";
import { Directory } from "../src/store/directory.js";
import type { DirectoryStore } from "../src/store/directory-store.js";
import { MemoryDirectoryStore } from "../src/store/memory-directory-store.js";
import { hashPartnerKey } from "../src/store/partner-key.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { directoryKeyPrefix, RedisDirectoryStore } from "../src/store/redis-directory-store.js";
import { importSeed, parseSeed } from "../src/store/seed.js";
import { newPartnerKey, testRedisUrl } from "./support/harness.js";

const connections: Redis[] = [];

async function redisStore(): Promise<DirectoryStore> {
  const redis = await connectRedis(testRedisUrl());
  connections.push(redis);
  return new RedisDirectoryStore(redis, directoryKeyPrefix(`test:store:${randomBytes(6).toString("hex")}:`));
}

afterAll(async () => {
  for (const redis of connections) {
    const keys = await redis.keys("test:store:*");
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
});

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: unknown) => (e instanceof GatewayError ? e.code : `unexpected ${String(e)}`),
  );

const byId = <T extends { id: string }>(xs: T[]): T[] => [...xs].sort((a, b) => a.id.localeCompare(b.id));

describe("a Redis directory imported before the marker existed", () => {
  it("counts as provisioned: an unknown key is unauthorized, and the marker is written once, said at info", async () => {
    const redis = await connectRedis(testRedisUrl());
    connections.push(redis);
    const prefix = directoryKeyPrefix(`test:store:${randomBytes(6).toString("hex")}:`);
    const key = newPartnerKey();
    await importSeed(new RedisDirectoryStore(redis, prefix), parseSeed({ partners: [{ id: "ptnr_1", name: "P", api_key: key }] }));
    expect(await redis.del(`${prefix}provisioned`)).toBe(1);

    const lines: { level: string; message: string }[] = [];
    const record = (level: string) => (_fields: object, message: string) => void lines.push({ level, message });
    const log = { info: record("info"), warn: record("warn"), error: record("error"), debug() {} };
    const directory = new Directory(new RedisDirectoryStore(redis, prefix, NO_ENCRYPTION, log), 60_000, log);
    expect(await codeOf(directory.authenticate(`Bearer ${newPartnerKey()}`))).toBe("unauthorized");
    expect(await redis.exists(`${prefix}provisioned`)).toBe(1);
    expect(lines).toEqual([{ level: "info", message: expect.stringMatching(/partners but no marker/) }]);

    // Another gateway finds the marker: nothing more is written or said.
    const other = new Directory(new RedisDirectoryStore(redis, prefix, NO_ENCRYPTION, log), 60_000, log);
    expect(await codeOf(other.authenticate(`Bearer ${newPartnerKey()}`))).toBe("unauthorized");
    expect((await other.authenticate(`Bearer ${key}`)).id).toBe("ptnr_1");
    expect(lines).toHaveLength(1);
  });

  it("without partners (lost data, or platforms alone) stays unprovisioned, and no marker is written", async () => {
    const redis = await connectRedis(testRedisUrl());
    connections.push(redis);
    const prefix = directoryKeyPrefix(`test:store:${randomBytes(6).toString("hex")}:`);
    const store = new RedisDirectoryStore(redis, prefix);
    await store.putPlatform({ id: "plat_1", webhookUrl: undefined, webhookSecret: undefined });
    await redis.del(`${prefix}provisioned`);
    expect(await codeOf(new Directory(store, 60_000).authenticate(`Bearer ${newPartnerKey()}`))).toBe("service_unavailable");
    expect(await redis.exists(`${prefix}provisioned`)).toBe(0);
  });
});

describe.each([
  ["memory", async () => new MemoryDirectoryStore() as DirectoryStore],
  ["redis", redisStore],
] as const)("%s directory store", (_name, makeStore) => {
  let store: DirectoryStore;
  beforeEach(async () => {
    store = await makeStore();
  });

  it("answers undefined for ids and key hashes it does not hold", async () => {
    expect(await store.getPartner("nope")).toBeUndefined();
    expect(await store.findPartnerByKeyHash(hashPartnerKey("sk_ptnr_nope"))).toBeUndefined();
    expect(await store.getPlatform("nope")).toBeUndefined();
    expect(await store.getAccount("nope")).toBeUndefined();
    expect(await store.getBot("nope")).toBeUndefined();
    expect(await store.listPartners()).toEqual([]);
    expect(await store.listBots()).toEqual([]);
  });

  it("reads back every kind of record as written", async () => {
    const partner = { id: "ptnr_1", name: "Acme Voice", keyHash: hashPartnerKey(newPartnerKey()) };
    const platform = { id: "plat_1", webhookUrl: "https://platform.example/hooks", webhookSecret: "whsec_0123456789abcdef" };
    const bare = { id: "plat_2", webhookUrl: undefined, webhookSecret: undefined };
    const account = { id: "acct_1", platformId: "plat_1" };
    const bot = { id: "bot_1", partnerId: "ptnr_1", accountId: "acct_1" };
    await store.putPartner(partner);
    await store.putPlatform(platform);
    await store.putPlatform(bare);
    await store.putAccount(account);
    await store.putBot(bot);
    expect(await store.getPartner("ptnr_1")).toEqual(partner);
    expect(await store.findPartnerByKeyHash(partner.keyHash)).toEqual(partner);
    expect(await store.getPlatform("plat_1")).toEqual(platform);
    expect(await store.getPlatform("plat_2")).toEqual(bare);
    expect(await store.getAccount("acct_1")).toEqual(account);
    expect(await store.getBot("bot_1")).toEqual(bot);
  });

  it("replacing a partner's key makes the old key hash unknown", async () => {
    const oldHash = hashPartnerKey(newPartnerKey());
    const newHash = hashPartnerKey(newPartnerKey());
    await store.putPartner({ id: "ptnr_1", name: "A", keyHash: oldHash });
    await store.putPartner({ id: "ptnr_1", name: "A", keyHash: newHash });
    expect(await store.findPartnerByKeyHash(oldHash)).toBeUndefined();
    expect((await store.findPartnerByKeyHash(newHash))?.id).toBe("ptnr_1");
    expect(await store.listPartners()).toHaveLength(1);
  });

  it("replacing a platform can remove its webhook", async () => {
    await store.putPlatform({ id: "plat_1", webhookUrl: "https://platform.example", webhookSecret: "whsec_0123456789abcdef" });
    await store.putPlatform({ id: "plat_1", webhookUrl: undefined, webhookSecret: undefined });
    expect(await store.getPlatform("plat_1")).toEqual({ id: "plat_1", webhookUrl: undefined, webhookSecret: undefined });
    expect(await store.listPlatforms()).toHaveLength(1);
  });

  it("lists each kind once per id", async () => {
    for (const id of ["b", "a", "c"]) {
      await store.putPlatform({ id: `plat_${id}`, webhookUrl: undefined, webhookSecret: undefined });
      await store.putAccount({ id: `acct_${id}`, platformId: `plat_${id}` });
      await store.putPartner({ id: `ptnr_${id}`, name: id, keyHash: hashPartnerKey(newPartnerKey()) });
      await store.putBot({ id: `bot_${id}`, partnerId: `ptnr_${id}`, accountId: `acct_${id}` });
    }
    await store.putBot({ id: "bot_a", partnerId: "ptnr_b", accountId: "acct_b" });
    expect(byId(await store.listPlatforms()).map((p) => p.id)).toEqual(["plat_a", "plat_b", "plat_c"]);
    expect(byId(await store.listAccounts()).map((a) => a.id)).toEqual(["acct_a", "acct_b", "acct_c"]);
    expect(byId(await store.listPartners()).map((p) => p.name)).toEqual(["a", "b", "c"]);
    expect(byId(await store.listBots())).toEqual([
      { id: "bot_a", partnerId: "ptnr_b", accountId: "acct_b" },
      { id: "bot_b", partnerId: "ptnr_b", accountId: "acct_b" },
      { id: "bot_c", partnerId: "ptnr_c", accountId: "acct_c" },
    ]);
  });

  it("carries its marker once anything is written (the in-memory store always does)", async () => {
    const memory = _name === "memory";
    expect(await store.isProvisioned()).toBe(memory);
    await store.putAccount({ id: "acct_1", platformId: "plat_1" });
    expect(await store.isProvisioned()).toBe(true);
  });

  it("an empty directory answers service_unavailable, not unauthorized or bot_not_found, and logs an error once per change", async () => {
    const lines: { level: string; message: string }[] = [];
    const record = (level: string) => (_fields: object, message: string) => void lines.push({ level, message });
    const directory = new Directory(store, 60_000, { info: record("info"), warn: record("warn"), error: record("error"), debug() {} });
    const codes = async () => [await codeOf(directory.authenticate(`Bearer ${newPartnerKey()}`)), await codeOf(directory.authenticate(`Bearer ${newPartnerKey()}`))];
    if (_name === "memory") {
      expect(await codes()).toEqual(["unauthorized", "unauthorized"]);
      expect(lines).toEqual([]);
      return;
    }
    const e = (await directory.authenticate(`Bearer ${newPartnerKey()}`).catch((x: unknown) => x)) as GatewayError;
    expect([e.code, e.httpStatus, e.retryAfterSeconds]).toEqual(["service_unavailable", 503, 5]);
    expect(await codes()).toEqual(["service_unavailable", "service_unavailable"]);
    expect(lines.map((l) => l.level)).toEqual(["error"]);
    expect(lines[0]!.message).toMatch(/marker is missing/);
    // Written again (as the admin command does): the next miss is an ordinary miss, no invalidation needed.
    const key = newPartnerKey();
    await store.putPartner({ id: "ptnr_1", name: "P", keyHash: hashPartnerKey(key) });
    expect((await directory.authenticate(`Bearer ${key}`)).id).toBe("ptnr_1");
    expect(await codes()).toEqual(["unauthorized", "unauthorized"]);
    expect(await codeOf(directory.route({ id: "ptnr_1", name: "P", keyHash: "" }, "bot_unknown"))).toBe("bot_not_found");
    expect(lines.map((l) => l.level)).toEqual(["error", "warn"]);
  });

  describe("the cached directory on top", () => {
    const keys = { a: newPartnerKey(), b: newPartnerKey() };
    beforeEach(async () => {
      await importSeed(
        store,
        parseSeed({
          partners: [
            { id: "ptnr_a", name: "A", api_key: keys.a },
            { id: "ptnr_b", name: "B", api_key: keys.b },
          ],
          platforms: [{ id: "plat", webhook_url: "http://127.0.0.1:9", webhook_secret: "whsec_0123456789abcdef" }, { id: "plat_nohook" }],
          accounts: [
            { id: "acct", platform_id: "plat" },
            { id: "acct_nohook", platform_id: "plat_nohook" },
          ],
          bots: [
            { id: "bot_a", partner_id: "ptnr_a", account_id: "acct" },
            { id: "bot_b", partner_id: "ptnr_b", account_id: "acct" },
            { id: "bot_nohook", partner_id: "ptnr_a", account_id: "acct_nohook" },
          ],
        }),
      );
    });

    it("authenticates by key and routes a partner's own bots only", async () => {
      const directory = new Directory(store, 60_000);
      const a = await directory.authenticate(`Bearer ${keys.a}`);
      expect(a.id).toBe("ptnr_a");
      expect(await codeOf(directory.authenticate(`Bearer ${newPartnerKey()}`))).toBe("unauthorized");
      expect(await codeOf(directory.authenticate(undefined))).toBe("unauthorized");
      const route = await directory.route(a, "bot_a");
      expect(route.account.id).toBe("acct");
      expect(route.platform.webhookUrl).toBe("http://127.0.0.1:9");
      expect(await codeOf(directory.route(a, "bot_b"))).toBe("bot_not_found");
      expect(await codeOf(directory.route(a, "bot_unknown"))).toBe("bot_not_found");
      expect(await codeOf(directory.route(a, "bot_nohook"))).toBe("webhook_not_configured");
    });

    it("serves lookups from its cache until the TTL passes or it is invalidated", async () => {
      const directory = new Directory(store, 60_000);
      const a = await directory.authenticate(`Bearer ${keys.a}`);
      expect(await codeOf(directory.route(a, "bot_new"))).toBe("bot_not_found");
      await store.putBot({ id: "bot_new", partnerId: "ptnr_a", accountId: "acct" });
      expect(await codeOf(directory.route(a, "bot_new"))).toBe("bot_not_found");
      directory.invalidate();
      expect(await codeOf(directory.route(a, "bot_new"))).toBe("ok");

      const short = new Directory(store, 200);
      expect(await codeOf(short.route(a, "bot_later"))).toBe("bot_not_found");
      await store.putBot({ id: "bot_later", partnerId: "ptnr_a", accountId: "acct" });
      await expect.poll(() => codeOf(short.route(a, "bot_later")), { timeout: 2000, interval: 50 }).toBe("ok");
    });

    it("a replaced key stops authenticating once the cache forgets it", async () => {
      const directory = new Directory(store, 60_000);
      await directory.authenticate(`Bearer ${keys.b}`);
      const rotated = newPartnerKey();
      await store.putPartner({ id: "ptnr_b", name: "B", keyHash: hashPartnerKey(rotated) });
      directory.invalidate();
      expect(await codeOf(directory.authenticate(`Bearer ${keys.b}`))).toBe("unauthorized");
      expect((await directory.authenticate(`Bearer ${rotated}`)).id).toBe("ptnr_b");
    });
  });
});
