/**
 * The gateway on a Redis Cluster: a real cluster of six redis-server
 * processes (three masters, one replica each) started once for this file,
 * the directory written with `admin import` through `REDIS_CLUSTER_NODES`,
 * and gateways running as their own processes on it. Bookings stay
 * exactly-once across gateways and slots, the rate limit is shared, change
 * notices reach every gateway, a finished booking waits for its master's
 * replica, and a master SIGKILLed in the middle of a run of bookings costs
 * 503s during the failover, never a 500 and never a second webhook.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReferencePlatform } from "../src/demo/reference-platform.js";
import { downstreamIdempotencyKey } from "../src/gateway/idempotency.js";
import { keySlot } from "../src/store/key-slot.js";
import { directoryKeyPrefix } from "../src/store/redis-directory-store.js";
import { bearer, bookingRequest, clientsFor, reasonOf, searchRequest, type RpcClients, type RpcProtocol } from "./support/clients.js";
import { admin, printedKey, run } from "./support/commands.js";
import { startGatewayProcess, type GatewayProcess } from "./support/gateway-process.js";
import { bookingBody, idempotencyKey, newPartnerKey, searchBody } from "./support/harness.js";
import { send } from "./support/http1.js";
import { RedisCluster } from "./support/redis-cluster.js";

const PREFIX = `test:${randomBytes(6).toString("hex")}:`;
const PARTNER = "ptnr_a";
const BOT = "bot_a";
const ENCRYPTION_KEY = randomBytes(32).toString("base64");
const ACK_TIMEOUT_MS = 400;
const GATEWAY_ENV = {
  REDIS_KEY_PREFIX: PREFIX,
  GATEWAY_ENCRYPTION_KEY: ENCRYPTION_KEY,
  // Only the change notices can make a directory change apply at once.
  DIRECTORY_CACHE_TTL_MS: "60000",
  RATE_LIMIT_PER_SECOND: "0",
  WEBHOOK_TIMEOUT_MS: "2000",
  IDEMPOTENCY_WAIT_MS: "3000",
  IDEMPOTENCY_CLAIM_TTL_MS: "6000",
  REDIS_REPLICA_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
};

let cluster: RedisCluster;
let platform: ReferencePlatform;
let dir: string;
let adminEnv: Record<string, string>;
const keys: { a: string; b: string } = { a: newPartnerKey(), b: newPartnerKey() };
let gateways: GatewayProcess[] = [];
/** Every gateway process started, kept as soon as it runs, so one that fails to start does not leave the others behind. */
const started: GatewayProcess[] = [];
const start = (env: Record<string, string>) => startGatewayProcess(env).then((g) => (started.push(g), g));

beforeAll(async () => {
  cluster = await RedisCluster.start();
  const secret = "whsec_test_" + randomBytes(8).toString("hex");
  platform = await new ReferencePlatform({ secret, record: true }).start();
  dir = mkdtempSync(join(tmpdir(), "gw-cluster-seed-"));
  const seedFile = join(dir, "seed.json");
  writeFileSync(
    seedFile,
    JSON.stringify({
      partners: [
        { id: PARTNER, name: "Partner A", api_key: keys.a },
        { id: "ptnr_b", name: "Partner B", api_key: keys.b },
      ],
      platforms: [{ id: "plat_test", webhook_url: platform.url, webhook_secret: secret }],
      accounts: [
        { id: "acct_a", platform_id: "plat_test" },
        { id: "acct_b", platform_id: "plat_test" },
      ],
      bots: [
        { id: BOT, partner_id: PARTNER, account_id: "acct_a" },
        { id: "bot_b", partner_id: "ptnr_b", account_id: "acct_b" },
      ],
    }),
  );
  adminEnv = { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_KEY_PREFIX: PREFIX, GATEWAY_ENCRYPTION_KEY: ENCRYPTION_KEY };
  const imported = await admin(["import", seedFile], adminEnv);
  expect(imported.stderr).toBe("");
  expect(imported.stdout).toMatch(/^imported 2 partners, 1 platforms, 2 accounts, 2 bots/);
  gateways = await Promise.all([0, 1].map(() => start({ ...GATEWAY_ENV, REDIS_CLUSTER_NODES: cluster.seeds })));
}, 90_000);

afterAll(async () => {
  await Promise.all(started.map((g) => g.stop()));
  await platform?.close();
  await cluster?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
/** Where a booking key's idempotency record lives. */
const recordKey = (key: string) => `${PREFIX}idem:${PARTNER}:${sha256(key)}`;
const webhooksFor = (key: string) =>
  platform.received.filter((r) => r.path === "/bookings" && r.body?.idempotency_key === downstreamIdempotencyKey(PARTNER, key)).length;

type Protocol = RpcProtocol | "rest";
const PROTOCOLS: readonly Protocol[] = ["rest", "grpc", "connect-json-h1", "connect-binary-h2", "grpc-web-h1"];

const clients = new Map<string, RpcClients>();
function clientsOf(protocol: RpcProtocol, url: string): RpcClients {
  const id = `${protocol} ${url}`;
  let c = clients.get(id);
  if (c === undefined) clients.set(id, (c = clientsFor(protocol, url)));
  return c;
}

type Outcome = { readonly ok: true; readonly id: string; readonly replayed: boolean } | { readonly ok: false; readonly code: string };

/** A booking: its id, or the machine code of its error (with the HTTP status on REST). */
async function book(protocol: Protocol, url: string, body: object, key: string, partnerKey = keys.a): Promise<Outcome> {
  if (protocol === "rest") {
    const res = await send(`${url}/v1/bookings`, { headers: { authorization: `Bearer ${partnerKey}`, "idempotency-key": key }, body });
    if (res.status === 200 || res.status === 201) return { ok: true, id: res.json.booking.id, replayed: res.headers["idempotent-replayed"] === "true" };
    return { ok: false, code: `${res.json?.error?.code ?? "?"} ${res.status}` };
  }
  let replayed = false;
  try {
    const res = await clientsOf(protocol, url).booking.createBooking(bookingRequest(body), {
      ...bearer(partnerKey, { "idempotency-key": key }),
      onHeader: (headers) => (replayed = headers.get("idempotent-replayed") === "true"),
    });
    return { ok: true, id: res.booking!.id, replayed };
  } catch (e) {
    return { ok: false, code: reasonOf(e) ?? String(e) };
  }
}

/** A search: "ok" when slots came back, or the machine code of its error (with the HTTP status on REST). */
async function search(protocol: Protocol, url: string, partnerKey = keys.a, botId = BOT): Promise<string> {
  if (protocol === "rest") {
    const res = await send(`${url}/v1/availability/search`, { headers: { authorization: `Bearer ${partnerKey}` }, body: searchBody(botId) });
    return res.status === 200 && res.json.availabilities.length > 0 ? "ok" : `${res.json?.error?.code ?? "?"} ${res.status}`;
  }
  try {
    const res = await clientsOf(protocol, url).availability.searchAvailability(searchRequest(searchBody(botId)), bearer(partnerKey));
    return res.availabilities.length > 0 ? "ok" : "empty";
  } catch (e) {
    return reasonOf(e) ?? String(e);
  }
}

/** A fresh key whose idempotency record lands in one of `slots`. */
function keyIn(slots: Set<number>): string {
  for (;;) {
    const key = idempotencyKey();
    if (slots.has(keySlot(recordKey(key)))) return key;
  }
}

describe("slots", () => {
  it("the gateway computes every key's slot as the cluster does", async () => {
    const samples = [
      `${directoryKeyPrefix(PREFIX)}partner:ptnr_a`,
      `${directoryKeyPrefix(PREFIX)}changed`,
      recordKey("k1"),
      `${PREFIX}rate:${PARTNER}`,
      "{}x",
      "a{}{b}",
      "{user1}.following",
      "é{ü}",
      ...Array.from({ length: 40 }, () => randomBytes(12).toString("base64")),
    ];
    for (const key of samples) expect(keySlot(key), key).toBe(await cluster.keySlot(key));
  });

  it("the directory is in one slot, and every admin command runs on the cluster", async () => {
    const steps: string[][] = [
      ["create-partner", "ptnr_c", "--name", "C"],
      ["create-platform", "plat_c", "--webhook-url", "http://127.0.0.1:1/c"],
      ["set-webhook", "plat_c", "http://127.0.0.1:2/c"],
      ["create-account", "acct_c", "plat_c"],
      ["create-bot", "bot_c", "ptnr_c", "acct_c"],
      ["rotate-key", "ptnr_c"],
      ["list"],
    ];
    for (const step of steps) {
      const r = await admin(step, adminEnv);
      expect({ step, code: r.code, stderr: r.stderr }).toEqual({ step, code: 0, stderr: "" });
    }
    const directoryKeys: string[] = [];
    for (const port of await cluster.masters()) {
      const found = await cluster.scan(port, `${PREFIX}*`);
      directoryKeys.push(...found.filter((k) => k.startsWith(directoryKeyPrefix(PREFIX))));
    }
    expect(directoryKeys.length).toBeGreaterThanOrEqual(15);
    const slots = new Set(await Promise.all(directoryKeys.map((k) => cluster.keySlot(k))));
    expect(slots.size).toBe(1);
  });

  it("admin upgrade-directory refuses in one line: a cluster never held the earlier directory layout", async () => {
    const r = await admin(["upgrade-directory"], adminEnv);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      "admin: upgrade-directory: a Redis Cluster never held the earlier directory layout (only one Redis did): there is nothing to upgrade\n",
    );
    expect(r.code).toBe(1);
  });
});

describe("two gateways on the cluster", () => {
  it("both serve searches and bookings on every protocol", async () => {
    for (const g of gateways) expect(g.log.find((l) => l.msg === "gateway listening")).toMatchObject({ store: "redis-cluster" });
    for (const g of gateways) {
      for (const protocol of PROTOCOLS) {
        expect(await search(protocol, g.url), protocol).toBe("ok");
        const outcome = await book(protocol, g.url, bookingBody(BOT), idempotencyKey());
        expect(outcome, protocol).toMatchObject({ ok: true, replayed: false });
      }
    }
  });

  it("30 concurrent bookings with one key over both gateways: one platform booking", async () => {
    const body = bookingBody(BOT);
    const key = idempotencyKey();
    const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => book(PROTOCOLS[i % PROTOCOLS.length]!, gateways[i % 2]!.url, body, key)));
    const ids = new Set(outcomes.map((o) => (o.ok ? o.id : o.code)));
    expect([...ids]).toHaveLength(1);
    expect([...ids][0]).toMatch(/^bkg_/);
    expect(outcomes.filter((o) => o.ok && !o.replayed)).toHaveLength(1);
    expect(webhooksFor(key)).toBe(1);
  });

  it("20 keys spread over the masters: 20 bookings; their replays on the other gateway send nothing", async () => {
    const made = platform.bookings.size;
    const bodies = Array.from({ length: 20 }, () => ({ body: bookingBody(BOT), key: idempotencyKey() }));
    const masters = new Set(await Promise.all(bodies.map(({ key }) => cluster.masterOf(recordKey(key)))));
    expect(masters.size).toBeGreaterThanOrEqual(2);
    const first = await Promise.all(bodies.map(({ body, key }, i) => book(PROTOCOLS[i % PROTOCOLS.length]!, gateways[i % 2]!.url, body, key)));
    for (const o of first) expect(o).toMatchObject({ ok: true, replayed: false });
    expect(new Set(first.map((o) => (o.ok ? o.id : ""))).size).toBe(20);
    expect(platform.bookings.size).toBe(made + 20);
    const received = platform.received.length;
    const replays = await Promise.all(bodies.map(({ body, key }, i) => book(PROTOCOLS[(i + 1) % PROTOCOLS.length]!, gateways[(i + 1) % 2]!.url, body, key)));
    replays.forEach((o, i) => expect(o).toEqual({ ok: true, id: (first[i] as { id: string }).id, replayed: true }));
    expect(platform.received.length).toBe(received);
    for (const { key } of bodies) expect(webhooksFor(key)).toBe(1);
  });

  it("admin reencrypt walks the records of every master", async () => {
    const records = new Set<string>();
    for (const port of await cluster.masters()) for (const k of await cluster.scan(port, `${PREFIX}idem:*`)) records.add(k);
    expect(records.size).toBeGreaterThanOrEqual(21);
    const r = await admin(["reencrypt"], adminEnv);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`of ${records.size} idempotency records`);
  });

  it("a finished booking is on its master's replica before the answer; a frozen replica costs one bounded wait and one warning", async () => {
    const [g] = gateways;
    const key = idempotencyKey();
    const master = await cluster.masterOf(recordKey(key));
    const replica = await cluster.replicaOf(master);
    expect(await book("rest", g!.url, bookingBody(BOT), key)).toMatchObject({ ok: true });
    expect(JSON.parse((await cluster.readOnReplica(replica, recordKey(key)))!)).toMatchObject({ s: "done" });

    const slots = await cluster.slotsOf(master);
    cluster.pause(replica);
    let waited: number;
    try {
      const started = performance.now();
      expect(await book("rest", g!.url, bookingBody(BOT), keyIn(slots))).toMatchObject({ ok: true });
      waited = performance.now() - started;
    } finally {
      cluster.unpause(replica);
    }
    expect(waited).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 20);
    // The gateway's log line travels through its stdout pipe, which may trail its HTTP answer.
    const warnings = () => g!.log.filter((l) => l.level === 40 && /no replica acknowledged a stored booking/.test(l.msg));
    await expect.poll(() => warnings().length, { timeout: 2000, interval: 20 }).toBe(1);
    expect(warnings()[0]).toMatchObject({ condition: "replica_acknowledgement", subject: `127.0.0.1:${master}` });
  });

  it("REDIS_URL naming a node of the cluster is refused at start, naming the variable to use", async () => {
    const r = await run(process.execPath, ["dist/main.js"], { env: { PORT: "0", REDIS_URL: `redis://127.0.0.1:${cluster.ports[0]}` }, timeoutMs: 10_000 });
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^configuration error: REDIS_URL: .*a node of a Redis Cluster.*REDIS_CLUSTER_NODES/);
  });
});

describe("the rate limit on the cluster", () => {
  let limited: GatewayProcess[] = [];
  beforeAll(async () => {
    const env = { ...GATEWAY_ENV, REDIS_CLUSTER_NODES: cluster.seeds, RATE_LIMIT_PER_SECOND: "5", RATE_LIMIT_BURST: "10" };
    limited = await Promise.all([0, 1].map(() => start(env)));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(limited.map((g) => g.stop()));
  });

  it("5/s, burst 10: of 30 simultaneous calls over both gateways about 10 pass", async () => {
    const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => search(i % 3 === 0 ? "rest" : "grpc", limited[i % 2]!.url, keys.b, "bot_b")));
    const passed = outcomes.filter((o) => o === "ok").length;
    expect(passed).toBeGreaterThanOrEqual(10);
    expect(passed).toBeLessThanOrEqual(12);
    for (const o of outcomes) expect(["ok", "rate_limited", "rate_limited 429"]).toContain(o);
  });
});

/** Rotates partner B's key with the admin command; the old key must stop working on every gateway at once. */
async function rotationAppliesAtOnce(): Promise<void> {
  const old = keys.b;
  const r = await admin(["rotate-key", "ptnr_b"], adminEnv);
  expect(r.code).toBe(0);
  keys.b = printedKey(r.stdout);
  for (const g of gateways) {
    await expect.poll(() => search("grpc", g.url, old, "bot_b"), { timeout: 3000, interval: 100 }).toBe("unauthorized");
    expect(await search("grpc", g.url, keys.b, "bot_b")).toBe("ok");
  }
}

describe("change notices", () => {
  it("a rotated key stops working on both gateways at once (the cache TTL is a minute)", rotationAppliesAtOnce);
});

describe("a master SIGKILLed during a run of bookings", () => {
  const ALLOWED_FAILURES = new Set(["service_unavailable", "service_unavailable 503", "idempotency_key_in_use", "idempotency_key_in_use 409"]);

  it("503 during the failover, never a 500; bookings resume after the promotion; no key reaches the platform twice; notices follow the directory's new master", async () => {
    // The master of the directory's slot: its failover also moves the change notices.
    const dead = await cluster.masterOf(`${directoryKeyPrefix(PREFIX)}changed`);
    const deadSlots = await cluster.slotsOf(dead);
    const failures: string[] = [];
    const booked = new Map<string, string>();
    let stopAt = Infinity;
    const runUntil = Date.now() + 60_000;

    const worker = async (w: number) => {
      for (let n = 0; Date.now() < stopAt; n++) {
        const key = idempotencyKey();
        const body = bookingBody(BOT);
        // A partner retries with the same key until it gets the booking (here on every protocol in turn).
        for (let attempt = 0; ; attempt++) {
          const protocol = PROTOCOLS[(w + n + attempt) % PROTOCOLS.length]!;
          const outcome = await book(protocol, gateways[(w + attempt) % 2]!.url, body, key);
          if (outcome.ok) {
            booked.set(key, outcome.id);
            break;
          }
          failures.push(outcome.code);
          if (Date.now() > runUntil) throw new Error(`key ${key} not booked in time: ${outcome.code}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    const workers = Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));

    await new Promise((r) => setTimeout(r, 1000));
    await cluster.kill(dead);
    const killedAt = Date.now();
    await cluster.waitForFailover(dead);
    const promotedAt = Date.now();

    // Bookings on the failed master's slots work again within seconds of the promotion.
    const resumedKey = keyIn(deadSlots);
    const resumedBody = bookingBody(BOT);
    await expect
      .poll(async () => (await book("grpc", gateways[0]!.url, resumedBody, resumedKey)).ok, { timeout: 5000, interval: 200 })
      .toBe(true);
    const resumedAfterMs = Date.now() - promotedAt;

    await new Promise((r) => setTimeout(r, 1000));
    stopAt = Date.now();
    await workers;

    expect(failures.length, "no call failed during the failover: the kill was not exercised").toBeGreaterThan(0);
    expect(failures.filter((f) => !ALLOWED_FAILURES.has(f))).toEqual([]);
    // REST says 503 itself; the RPC protocols carry service_unavailable as `unavailable`.
    expect(failures).toContain("service_unavailable 503");
    expect(failures).toContain("service_unavailable");
    expect(booked.size).toBeGreaterThan(6);
    for (const key of [...booked.keys(), resumedKey]) expect({ key, webhooks: webhooksFor(key) }).toEqual({ key, webhooks: 1 });
    expect(resumedAfterMs).toBeLessThan(5000);
    expect(promotedAt - killedAt).toBeLessThan(20_000);

    await rotationAppliesAtOnce();
  }, 120_000);
});
