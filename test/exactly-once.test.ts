/**
 * Exactly-once bookings when things fail, with real processes: gateways run
 * as child processes, redis-servers killed with SIGKILL and restarted with or
 * without their data, the admin command misconfiguring and fixing a
 * platform, and a reference platform that books at most once per downstream
 * `idempotency_key` and counts every webhook it reads.
 *
 * Every case counts the webhooks the platform read for the booking's
 * downstream key. (The gateway killed mid-booking, the one case where a key
 * may be sent twice to a de-duplicating platform, is in
 * idempotent-bookings.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReferencePlatform } from "../src/demo/reference-platform.js";
import { downstreamIdempotencyKey } from "../src/gateway/idempotency.js";
import { directoryKeyPrefix } from "../src/store/redis-directory-store.js";
import { covers } from "./support/behaviour-matrix.js";
import { bearer, bookingRequest, clientsFor, expectRpcError, reasonOf, searchRequest, type RpcClients } from "./support/clients.js";
import { admin } from "./support/commands.js";
import { startGatewayProcess, type GatewayProcess } from "./support/gateway-process.js";
import { send } from "./support/http1.js";
import { bookingBody, idempotencyKey, newPartnerKey, searchBody, startHarness, testRedisUrl, type Harness } from "./support/harness.js";
import { RedisServer } from "./support/redis-server.js";
import { restBookingClient } from "./support/rest-booking-client.js";

const GATEWAY_ENV = { WEBHOOK_TIMEOUT_MS: "1500", IDEMPOTENCY_WAIT_MS: "800", IDEMPOTENCY_CLAIM_TTL_MS: "3000" };

/** The webhooks a platform read for a partner's key, and whether it booked for it. */
function platformSide(platform: ReferencePlatform, partnerId: string, key: string): { webhooks: number; bookingId: string | undefined } {
  const downstream = downstreamIdempotencyKey(partnerId, key);
  const webhooks = platform.received.filter((r) => r.path === "/bookings" && r.body?.idempotency_key === downstream).length;
  const booking = platform.bookings.get(downstream)?.booking;
  return { webhooks, bookingId: booking === undefined ? undefined : String(booking.id) };
}

interface Booked {
  readonly id: string;
  readonly replayed: boolean;
}

async function book(c: Pick<RpcClients, "booking">, partnerKey: string, body: object, key: string): Promise<Booked> {
  let replayed = false;
  const res = await c.booking.createBooking(bookingRequest(body), {
    ...bearer(partnerKey, { "idempotency-key": key }),
    onHeader: (headers) => {
      replayed = headers.get("idempotent-replayed") === "true";
    },
  });
  return { id: res.booking!.id, replayed };
}

/** Where seed files go: they hold partner keys and a webhook secret, so the directory is private and removed at the end. */
const seedDir = mkdtempSync(join(tmpdir(), "exactly-once-seeds-"));
afterAll(() => rmSync(seedDir, { recursive: true, force: true }));

/** The seed a harness was provisioned with, as a file `admin import` reads. */
function seedFileOf(h: Harness): string {
  const file = join(seedDir, `seed-${randomBytes(4).toString("hex")}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      partners: [
        { id: h.partners.a, name: "Partner A", api_key: h.keys.a },
        { id: h.partners.b, name: "Partner B", api_key: h.keys.b },
      ],
      platforms: [{ id: "plat_test", webhook_url: h.platform.url, webhook_secret: h.secret }, { id: "plat_nohook" }],
      accounts: [
        { id: h.accounts.a, platform_id: "plat_test" },
        { id: h.accounts.b, platform_id: "plat_test" },
        { id: "acct_nohook", platform_id: "plat_nohook" },
      ],
      bots: [
        { id: h.bots.a, partner_id: h.partners.a, account_id: h.accounts.a },
        { id: h.bots.b, partner_id: h.partners.b, account_id: h.accounts.b },
        { id: h.bots.noWebhook, partner_id: h.partners.a, account_id: "acct_nohook" },
      ],
    }),
  );
  return file;
}

/** Every protocol a booking can arrive on, REST read raw so its status is seen as sent. */
const PROTOCOLS = ["rest", "connect-json-h1", "connect-binary-h2", "grpc", "grpc-web-h1"] as const;

interface Refusal {
  readonly status?: number;
  readonly code: string;
  readonly reason: string | undefined;
  readonly message: string;
  readonly retryAfter: string | null;
}

/** A booking that must fail: its error as the protocol carries it. */
async function refusal(protocol: (typeof PROTOCOLS)[number], url: string, partnerKey: string, body: object, key: string): Promise<Refusal> {
  if (protocol === "rest") {
    const res = await send(`${url}/v1/bookings`, { headers: { authorization: `Bearer ${partnerKey}`, "idempotency-key": key }, body });
    const retryAfter = res.headers["retry-after"];
    return { status: res.status, code: res.json?.error?.code, reason: res.json?.error?.code, message: res.json?.error?.message, retryAfter: typeof retryAfter === "string" ? retryAfter : null };
  }
  try {
    await book(clientsFor(protocol, url), partnerKey, body, key);
  } catch (e) {
    const error = ConnectError.from(e);
    return { code: Code[error.code], reason: reasonOf(error), message: error.rawMessage, retryAfter: error.metadata.get("retry-after") };
  }
  throw new Error(`${protocol}: the booking succeeded`);
}

describe("a platform that reads the whole booking, then resets the connection", () => {
  let h: Harness;
  let gw: GatewayProcess;
  beforeAll(async () => {
    h = await startHarness({ store: "redis", env: GATEWAY_ENV });
    gw = await startGatewayProcess({ ...GATEWAY_ENV, REDIS_URL: h.config.redisUrl!, REDIS_KEY_PREFIX: h.config.redisKeyPrefix });
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await h?.close();
  });

  it.each(["rest", "grpc", "connect-json-h1"] as const)(
    "%s: one webhook per call on a reused connection, a retryable error, and the retry gets the one booking",
    async (protocol) => {
      const c = protocol === "rest" ? restBookingClient(gw.url) : clientsFor(protocol, gw.url);
      // A search first, so the booking goes out on a pooled keep-alive connection: the case the client used to re-send.
      await clientsFor("connect-json-h1", gw.url).availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a));
      const searchConnection = h.platform.received.at(-1)!.connection;
      const body = bookingBody(h.bots.a);
      const key = idempotencyKey();
      const downstream = downstreamIdempotencyKey(h.partners.a, key);
      h.script = (req, reference) => {
        if (req.path !== "/bookings" || req.body?.idempotency_key !== downstream) return undefined;
        reference(); // the platform books...
        return { status: 0, reset: true }; // ...and its answer never arrives
      };
      await expectRpcError(book(c, h.keys.a, body, key), Code.Unavailable, "platform_unavailable");
      const made = platformSide(h.platform, h.partners.a, key);
      expect(made.webhooks).toBe(1);
      expect(made.bookingId).toMatch(/^bkg_/);
      expect(h.platform.received.find((r) => r.body?.idempotency_key === downstream)!.connection).toBe(searchConnection);

      h.script = undefined;
      const retry = await book(c, h.keys.a, body, key);
      // Nothing was stored, so the retry is sent again under the same downstream key; the platform answers with its booking.
      expect(retry).toEqual({ id: made.bookingId, replayed: false });
      expect(platformSide(h.platform, h.partners.a, key)).toEqual({ webhooks: 2, bookingId: made.bookingId });
      expect(await book(c, h.keys.a, body, key)).toEqual({ id: made.bookingId, replayed: true });
      expect(platformSide(h.platform, h.partners.a, key).webhooks).toBe(2);
    },
  );
});

describe("Redis with AOF (appendfsync always), SIGKILLed between a booking and its retry", () => {
  let redis: RedisServer;
  let g: Harness;
  beforeAll(async () => {
    redis = await RedisServer.start({ appendfsync: "always" });
    g = await startHarness({ redisUrl: redis.url, env: GATEWAY_ENV });
  });
  afterAll(async () => {
    await g?.close();
    await redis?.stop();
  });

  it("the retry is a replay: one webhook, the directory intact", async () => {
    const c = clientsFor("grpc", g.url);
    const body = bookingBody(g.bots.a);
    const key = idempotencyKey();
    const first = await book(c, g.keys.a, body, key);
    expect(first.replayed).toBe(false);

    await redis.kill();
    await redis.resume();
    await expect.poll(() => g.gateway.redis!.ping().then(() => true, () => false), { timeout: 3000, interval: 50 }).toBe(true);

    for (const client of [c, restBookingClient(g.url), clientsFor("grpc-web-h1", g.url)]) {
      expect(await book(client, g.keys.a, body, key)).toEqual({ id: first.id, replayed: true });
    }
    expect(platformSide(g.platform, g.partners.a, key)).toEqual({ webhooks: 1, bookingId: first.id });
  });
});

describe("Redis restarted empty (no persistence)", () => {
  let redis: RedisServer;
  let g: Harness;
  let gw: GatewayProcess;
  beforeAll(async () => {
    redis = await RedisServer.start();
    g = await startHarness({ redisUrl: redis.url, env: GATEWAY_ENV });
    gw = await startGatewayProcess({ ...GATEWAY_ENV, REDIS_URL: redis.url, REDIS_KEY_PREFIX: g.config.redisKeyPrefix });
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await g?.close();
    await redis?.stop();
  });

  it("503 service_unavailable on every protocol, never 401; one error logged; the import brings it back; the retry reaches the platform's de-duplication", async () => {
    const body = bookingBody(g.bots.a);
    const key = idempotencyKey();
    const first = await book(clientsFor("connect-json-h1", gw.url), g.keys.a, body, key);
    expect(gw.log.filter((l) => l.level >= 50)).toEqual([]);

    await redis.kill();
    await redis.resume();
    // Until the gateway has reconnected its answers are about Redis being down; then about the directory.
    const search = () =>
      clientsFor("grpc", gw.url)
        .availability.searchAvailability(searchRequest(searchBody(g.bots.a)), bearer(g.keys.a))
        .then(() => "ok", (e: unknown) => ConnectError.from(e).rawMessage);
    await expect.poll(search, { timeout: 8000, interval: 50 }).toMatch(/directory is unavailable/);

    const webhooksBefore = g.platform.received.length;
    for (const protocol of PROTOCOLS) {
      const r = await refusal(protocol, gw.url, g.keys.a, bookingBody(g.bots.a), idempotencyKey());
      expect({ protocol, ...r, message: undefined }).toEqual({
        protocol,
        ...(protocol === "rest" ? { status: 503, code: "service_unavailable" } : { code: "Unavailable" }),
        reason: "service_unavailable",
        message: undefined,
        retryAfter: "5",
      });
    }
    expect(g.platform.received.length).toBe(webhooksBefore);
    // One line for the lost directory (the restart itself may add the Redis outage's own line).
    const directoryErrors = () => gw.log.filter((l) => l.level >= 50 && !/^Redis unreachable/.test(l.msg));
    expect(directoryErrors()).toHaveLength(1);
    expect(directoryErrors()[0]!.msg).toMatch(/^the directory is empty: its marker is missing from Redis/);

    const imported = await admin(["import", seedFileOf(g)], { REDIS_URL: redis.url, REDIS_KEY_PREFIX: g.config.redisKeyPrefix });
    expect(imported.code).toBe(0);
    await expect.poll(search, { timeout: 3000, interval: 50 }).toBe("ok");
    await expect.poll(() => gw.log.some((l) => l.level === 40 && l.condition === "directory_empty" && /directory is back/.test(l.msg)), { timeout: 2000, interval: 20 }).toBe(true);
    expect(directoryErrors()).toHaveLength(1);

    // The stored result went with the data: the retry is sent again, and the platform's de-duplication answers it.
    const retry = await book(restBookingClient(gw.url), g.keys.a, body, key);
    expect(retry).toEqual({ id: first.id, replayed: false });
    expect(platformSide(g.platform, g.partners.a, key)).toEqual({ webhooks: 2, bookingId: first.id });
  });
});

describe("a directory imported before the marker existed (the marker deleted after an import)", () => {
  let h: Harness;
  let gw: GatewayProcess;
  beforeAll(async () => {
    h = await startHarness({ store: "redis", env: GATEWAY_ENV });
    expect(await h.gateway.redis!.del(`${directoryKeyPrefix(h.config.redisKeyPrefix)}provisioned`)).toBe(1);
    gw = await startGatewayProcess({ ...GATEWAY_ENV, REDIS_URL: h.config.redisUrl!, REDIS_KEY_PREFIX: h.config.redisKeyPrefix });
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await h?.close();
  });

  it("a gateway starting on it writes the marker and says so at info; an unknown key is 401 on every protocol, a known one books", async () => {
    expect(gw.log.filter((l) => l.level >= 50)).toEqual([]);
    expect(gw.log.filter((l) => /partners but no marker/.test(l.msg)).map((l) => l.level)).toEqual([30]);
    expect(await h.gateway.redis!.exists(`${directoryKeyPrefix(h.config.redisKeyPrefix)}provisioned`)).toBe(1);
    for (const protocol of PROTOCOLS) {
      const r = await refusal(protocol, gw.url, newPartnerKey(), bookingBody(h.bots.a), idempotencyKey());
      expect({ protocol, ...r, message: undefined }).toEqual({
        protocol,
        ...(protocol === "rest" ? { status: 401, code: "unauthorized" } : { code: "Unauthenticated" }),
        reason: "unauthorized",
        message: undefined,
        retryAfter: null,
      });
    }
    const key = idempotencyKey();
    const booked = await book(clientsFor("grpc", gw.url), h.keys.a, bookingBody(h.bots.a), key);
    expect(platformSide(h.platform, h.partners.a, key)).toEqual({ webhooks: 1, bookingId: booked.id });
    expect(gw.log.filter((l) => l.level >= 50)).toEqual([]);
  });
});

describe("a platform that refuses the gateway (wrong secret), then is fixed", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ store: "redis", env: GATEWAY_ENV });
  });
  afterAll(() => h?.close());

  const setSecret = (secret: string) =>
    admin(["set-webhook", "plat_test", h.platform.url, "--secret", secret], { REDIS_URL: testRedisUrl(), REDIS_KEY_PREFIX: h.config.redisKeyPrefix });

  /** What a search answers: "ok" or the error's reason; it shows when the gateway signs with the new secret. */
  const search = () =>
    clientsFor("connect-json-h1", h.url)
      .availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a))
      .then(() => "ok", (e: unknown) => reasonOf(e));

  it("502 platform_rejected on every protocol, nothing stored; after the fix the same keys book, once each", async () => {
    expect((await setSecret("whsec_wrong_0123456789abcdef")).code).toBe(0);
    await expect.poll(search, { timeout: 3000, interval: 50 }).toBe("platform_rejected");
    const attempts = PROTOCOLS.map((protocol) => ({ protocol, body: bookingBody(h.bots.a), key: idempotencyKey() }));
    for (const { protocol, body, key } of attempts) {
      const r = await refusal(protocol, h.url, h.keys.a, body, key);
      expect({ protocol, ...r, message: undefined }).toEqual({
        protocol,
        ...(protocol === "rest" ? { status: 502, code: "platform_rejected" } : { code: "FailedPrecondition" }),
        reason: "platform_rejected",
        message: undefined,
        retryAfter: null,
      });
      expect(r.message).toContain("(401 invalid_signature)");
      // Asked again before the fix: refused again, not replayed.
      expect((await refusal(protocol, h.url, h.keys.a, body, key)).reason).toBe("platform_rejected");
    }

    expect((await setSecret(h.secret)).code).toBe(0);
    await expect.poll(search, { timeout: 3000, interval: 50 }).toBe("ok");
    for (const { protocol, body, key } of attempts) {
      const c = protocol === "rest" ? restBookingClient(h.url) : clientsFor(protocol, h.url);
      const booked = await book(c, h.keys.a, body, key);
      expect({ protocol, replayed: booked.replayed }).toEqual({ protocol, replayed: false });
      const side = platformSide(h.platform, h.partners.a, key);
      // Two refused by the signature check, then the booking.
      expect({ protocol, ...side }).toEqual({ protocol, webhooks: 3, bookingId: booked.id });
      expect(await book(c, h.keys.a, body, key)).toEqual({ id: booked.id, replayed: true });
      covers("platform rejected · booking", protocol);
    }
  });
});
