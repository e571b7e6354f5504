/**
 * A directory written by an earlier build, in its key layout (`<prefix>dir:`,
 * written here key by key as that build wrote it, its webhook secret sealed
 * for the earlier key), on the test run's Redis: a gateway process logs one
 * error naming `admin upgrade-directory` and answers 503 on every protocol;
 * the real admin command moves the directory, after which the same partner
 * key works and searches reach the platform signed with the same secret;
 * running it again changes nothing. Names the current layout already holds
 * are never overwritten, and a secret the command cannot open stops it before
 * anything moves.
 */
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReferencePlatform } from "../src/demo/reference-platform.js";
import { aesGcmCipher, isSealed } from "../src/encryption/field-cipher.js";
import { hashPartnerKey } from "../src/store/partner-key.js";
import { connectRedis } from "../src/store/redis-connection.js";
import { bearer, clientsFor, reasonOf, searchRequest, type RpcProtocol } from "./support/clients.js";
import { admin } from "./support/commands.js";
import { startGatewayProcess, type GatewayProcess } from "./support/gateway-process.js";
import { deleteKeysUnder, newPartnerKey, searchBody, testRedisUrl } from "./support/harness.js";
import { send } from "./support/http1.js";
import { documentedSignatureValid } from "./support/webhook-signature.js";

const ENCRYPTION_KEY = randomBytes(32);
const prefixes: string[] = [];
let redis: Redis;

beforeAll(async () => {
  redis = await connectRedis(testRedisUrl());
});
afterAll(async () => {
  await redis?.quit();
  for (const prefix of prefixes) await deleteKeysUnder(testRedisUrl(), prefix);
});

function newPrefix(): string {
  const prefix = `test:${randomBytes(6).toString("hex")}:`;
  prefixes.push(prefix);
  return prefix;
}

/** The earlier layout's keys, and the current one's, under a gateway prefix. */
const earlier = (prefix: string) => `${prefix}dir:`;
const current = (prefix: string) => `${prefix}{${prefix}dir}:`;

/** Every key under `prefix`, with its type, value and expiry, as text to compare. */
async function snapshot(prefix: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    for (const key of keys) out[key] = await valueOf(key);
  } while (cursor !== "0");
  return out;
}

async function valueOf(key: string): Promise<unknown> {
  const type = await redis.type(key);
  const expires = await redis.pexpiretime(key);
  if (type === "string") return { type, expires, value: await redis.get(key) };
  if (type === "hash") return { type, expires, value: await redis.hgetall(key) };
  if (type === "set") return { type, expires, value: (await redis.smembers(key)).sort() };
  return { type };
}

type Protocol = RpcProtocol | "rest";
const PROTOCOLS: readonly Protocol[] = ["rest", "connect-json-h1", "connect-binary-h2", "grpc", "grpc-web-h1"];

/** A search's outcome as the protocol carries it: `ok`, or the error's code, reason and Retry-After. */
async function search(protocol: Protocol, url: string, partnerKey: string, bot: string): Promise<string> {
  if (protocol === "rest") {
    const res = await send(`${url}/v1/availability/search`, { headers: { authorization: `Bearer ${partnerKey}` }, body: searchBody(bot) });
    if (res.status === 200) return res.json.availabilities?.length > 0 ? "ok" : `200 without slots: ${res.text}`;
    return `${res.status} ${res.json?.error?.code} retry-after ${res.headers["retry-after"]}`;
  }
  try {
    const answer = await clientsFor(protocol, url).availability.searchAvailability(searchRequest(searchBody(bot)), bearer(partnerKey));
    return answer.availabilities.length > 0 ? "ok" : "answer without slots";
  } catch (e) {
    const error = ConnectError.from(e);
    return `${Code[error.code]} ${reasonOf(error)} retry-after ${error.metadata.get("retry-after")}`;
  }
}

describe("a directory written by an earlier build", () => {
  const prefix = newPrefix();
  const from = earlier(prefix);
  const to = current(prefix);
  const partnerKey = newPartnerKey();
  const keyHash = hashPartnerKey(partnerKey);
  const secret = "whsec_earlier_" + randomBytes(12).toString("hex");
  let platform: ReferencePlatform;
  let gw: GatewayProcess;
  let written: Record<string, unknown>;
  const errors = () => gw.log.filter((l) => l.level >= 50);

  beforeAll(async () => {
    platform = await new ReferencePlatform({
      secret,
      record: true,
      verifySignature: (key, headers, rawBody) => documentedSignatureValid(key, headers["x-dialstack-signature"], rawBody),
    }).start();
    // As the earlier build's RedisDirectoryStore wrote them: the secret sealed for the key it lived under.
    const sealed = aesGcmCipher(ENCRYPTION_KEY).seal(secret, `${from}platform:plat_old:webhook_secret`);
    await redis
      .multi()
      .hset(`${from}partner:ptnr_old`, { name: "Earlier Partner", key_hash: keyHash })
      .set(`${from}partner-key:${keyHash}`, "ptnr_old")
      .pexpire(`${from}partner-key:${keyHash}`, 3_600_000)
      .hset(`${from}platform:plat_old`, { id: "plat_old", webhook_url: platform.url, webhook_secret: sealed })
      .hset(`${from}account:acct_old`, { platform_id: "plat_old" })
      .hset(`${from}bot:bot_old`, { partner_id: "ptnr_old", account_id: "acct_old" })
      .sadd(`${from}index:partner`, "ptnr_old")
      .sadd(`${from}index:platform`, "plat_old")
      .sadd(`${from}index:account`, "acct_old")
      .sadd(`${from}index:bot`, "bot_old")
      .set(`${from}provisioned`, new Date().toISOString())
      .exec();
    written = await snapshot(from);
    expect(Object.keys(written)).toHaveLength(10);
    gw = await startGatewayProcess({
      REDIS_URL: testRedisUrl(),
      REDIS_KEY_PREFIX: prefix,
      GATEWAY_ENCRYPTION_KEY: ENCRYPTION_KEY.toString("base64"),
      // Only the change notice can make the moved directory apply at once.
      DIRECTORY_CACHE_TTL_MS: "60000",
      RATE_LIMIT_PER_SECOND: "0",
    });
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await platform?.close();
  });

  it("the gateway logs one error naming upgrade-directory at start, and answers 503 on every protocol", async () => {
    expect(errors().map((l) => l.msg)).toEqual([
      `the directory is empty, but Redis holds the directory of an earlier build under ${from} (this build reads it under ${to}). ` +
        "Every call is answered 503 service_unavailable until it is moved: run npm run admin -- upgrade-directory",
    ]);
    for (const protocol of PROTOCOLS) {
      for (let i = 0; i < 2; i++) {
        const expected = protocol === "rest" ? "503 service_unavailable retry-after 5" : "Unavailable service_unavailable retry-after 5";
        expect({ protocol, outcome: await search(protocol, gw.url, partnerKey, "bot_old") }).toEqual({ protocol, outcome: expected });
      }
    }
    expect(platform.received).toHaveLength(0);
    expect(errors()).toHaveLength(1);
    expect(await snapshot(from)).toEqual(written);
  });

  it("admin upgrade-directory moves it: the same key works at once and searches reach the platform, signed with the same secret", async () => {
    const r = await admin(["upgrade-directory"], { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix, GATEWAY_ENCRYPTION_KEY: ENCRYPTION_KEY.toString("base64") });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(
      `moved 9 keys from ${from} to ${to} (partner 1, partner-key 1, platform 1, account 1, bot 1, index 4)\n` +
        "re-encrypted 1 webhook secrets for their new keys\n",
    );
    expect(r.code).toBe(0);

    // Nothing is left under the earlier prefix; every value is as it was, its expiry too, and the secret is sealed for its new key.
    expect(await snapshot(from)).toEqual({});
    const moved = await snapshot(to);
    for (const [key, value] of Object.entries(written)) {
      const name = key.slice(from.length);
      if (name === "provisioned" || name === "platform:plat_old") continue;
      expect({ name, value: moved[to + name] }).toEqual({ name, value });
    }
    expect(moved[`${to}partner-key:${keyHash}`]).toMatchObject({ expires: expect.any(Number) });
    expect((moved[`${to}partner-key:${keyHash}`] as { expires: number }).expires).toBeGreaterThan(Date.now() + 3_000_000);
    expect(moved[`${to}provisioned`]).toMatchObject({ type: "string", expires: -1 });
    const before = (written[`${from}platform:plat_old`] as { value: Record<string, string> }).value;
    const after = (moved[`${to}platform:plat_old`] as { value: Record<string, string> }).value;
    expect({ ...after, webhook_secret: undefined }).toEqual({ ...before, webhook_secret: undefined });
    expect(isSealed(after.webhook_secret!)).toBe(true);
    expect(after.webhook_secret).not.toBe(before.webhook_secret);
    expect(Object.keys(moved)).toHaveLength(10);
    expect(JSON.stringify(moved)).not.toContain(secret);

    // The gateway cached the key as unknown; the change notice makes it look again at once (the cache TTL is a minute).
    await expect.poll(() => search("connect-json-h1", gw.url, partnerKey, "bot_old"), { timeout: 2000, interval: 50 }).toBe("ok");
    for (const protocol of PROTOCOLS) {
      expect({ protocol, outcome: await search(protocol, gw.url, partnerKey, "bot_old") }).toEqual({ protocol, outcome: "ok" });
    }
    expect(platform.received.length).toBeGreaterThanOrEqual(PROTOCOLS.length + 1);
    expect(platform.received.every((w) => w.signatureValid)).toBe(true);
    expect(gw.log.some((l) => l.level === 40 && l.condition === "directory_empty" && /directory is back/.test(l.msg))).toBe(true);
    expect(errors()).toHaveLength(1);
  });

  it("running it again changes nothing", async () => {
    const before = await snapshot(prefix);
    const r = await admin(["upgrade-directory"], { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix, GATEWAY_ENCRYPTION_KEY: ENCRYPTION_KEY.toString("base64") });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(`nothing to upgrade: no directory keys under ${from}\n`);
    expect(r.code).toBe(0);
    expect(await snapshot(prefix)).toEqual(before);
  });
});

describe("names the current layout already holds", () => {
  it("are never overwritten: the earlier key stays and is reported, index sets are merged, the rest moves; again, nothing more moves", async () => {
    const prefix = newPrefix();
    const from = earlier(prefix);
    const to = current(prefix);
    await redis
      .multi()
      .hset(`${from}account:acct_x`, { platform_id: "plat_earlier" })
      .hset(`${from}account:acct_y`, { platform_id: "plat_earlier" })
      .sadd(`${from}index:account`, "acct_x", "acct_y")
      // Written by this build's admin command since the upgrade of the gateways.
      .hset(`${to}account:acct_x`, { platform_id: "plat_newer" })
      .sadd(`${to}index:account`, "acct_x")
      .set(`${to}provisioned`, new Date().toISOString())
      .exec();
    const env = { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix };
    const keptReport =
      `kept 1 keys under ${from}: the current layout already has a key of the same name\n` +
      `  ${from}account:acct_x\n`;
    const stderr =
      `admin: upgrade-directory: 1 keys were not moved because the current layout already has them: compare each with its ` +
      `namesake under ${to}, delete the one to drop (redis-cli DEL), and run upgrade-directory again\n`;

    const first = await admin(["upgrade-directory"], env);
    expect(first.stdout).toBe(`moved 1 keys from ${from} to ${to} (account 1)\nmerged 1 index sets into the ones the current layout already had\n` + keptReport);
    expect(first.stderr).toBe(stderr);
    expect(first.code).toBe(1);
    expect(await redis.hgetall(`${to}account:acct_x`)).toEqual({ platform_id: "plat_newer" });
    expect(await redis.hgetall(`${from}account:acct_x`)).toEqual({ platform_id: "plat_earlier" });
    expect(await redis.hgetall(`${to}account:acct_y`)).toEqual({ platform_id: "plat_earlier" });
    expect((await redis.smembers(`${to}index:account`)).sort()).toEqual(["acct_x", "acct_y"]);
    expect(Object.keys(await snapshot(from))).toEqual([`${from}account:acct_x`]);

    const state = await snapshot(prefix);
    const again = await admin(["upgrade-directory"], env);
    expect(again.stdout).toBe(`moved 0 keys from ${from} to ${to}\n` + keptReport);
    expect(again.stderr).toBe(stderr);
    expect(again.code).toBe(1);
    expect(await snapshot(prefix)).toEqual(state);
  });
});

describe("a sealed webhook secret the command cannot open", () => {
  it("stops the upgrade in one line before anything moves", async () => {
    const prefix = newPrefix();
    const from = earlier(prefix);
    const sealed = aesGcmCipher(ENCRYPTION_KEY).seal("whsec_" + randomBytes(12).toString("hex"), `${from}platform:plat_x:webhook_secret`);
    await redis
      .multi()
      .hset(`${from}platform:plat_x`, { id: "plat_x", webhook_url: "http://127.0.0.1:1/x", webhook_secret: sealed })
      .sadd(`${from}index:platform`, "plat_x")
      .exec();
    const before = await snapshot(prefix);
    for (const env of [{}, { GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString("base64") }] as Record<string, string>[]) {
      const r = await admin(["upgrade-directory"], { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: prefix, ...env });
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(
        new RegExp(`^admin: upgrade-directory: 1 webhook secrets under ${from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} are encrypted with a key .* Nothing was moved\\n$`),
      );
      expect(r.code).toBe(1);
      expect(await snapshot(prefix)).toEqual(before);
    }
  });
});
