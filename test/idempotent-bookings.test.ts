/**
 * Idempotent bookings end to end: real Redis, the reference platform (which
 * books at most once per downstream key and counts its bookings), gateways in
 * this process and in real child processes sharing one Redis, and a private
 * redis-server that is frozen, killed and restarted.
 */
import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { PlatformReply, ReceivedWebhook } from "../src/demo/reference-platform.js";
import { downstreamIdempotencyKey } from "../src/gateway/idempotency.js";
import { covers } from "./support/behaviour-matrix.js";
import {
  bearer,
  bookingRequest,
  clientsFor,
  deadlineHeaders,
  expectRpcError,
  reasonOf,
  RPC_PROTOCOLS,
  type Protocol,
  type RpcClients,
} from "./support/clients.js";
import { startGatewayProcess, type GatewayProcess } from "./support/gateway-process.js";
import { restBookingClient } from "./support/rest-booking-client.js";
import { bookingBody, idempotencyKey, startHarness, type Harness } from "./support/harness.js";
import { RedisServer } from "./support/redis-server.js";

type Script = (req: ReceivedWebhook, reference: () => PlatformReply) => PlatformReply | undefined | Promise<PlatformReply | undefined>;

/**
 * Answers of the gateways in this file: duplicates wait 0.8 s; the webhook
 * times out after 10 s, far beyond any answer a test holds back.
 */
const GATEWAY_ENV = { WEBHOOK_TIMEOUT_MS: "10000", IDEMPOTENCY_WAIT_MS: "800", IDEMPOTENCY_CLAIM_TTL_MS: "15000" };
/** The gateway of the webhook timeout case: the webhook times out after 1.5 s. */
const TIMEOUT_ENV = { ...GATEWAY_ENV, WEBHOOK_TIMEOUT_MS: "1500", IDEMPOTENCY_CLAIM_TTL_MS: "3000" };
/** Gateways that get killed: claims lapse after 1.5 s. */
const VICTIM_ENV = { WEBHOOK_TIMEOUT_MS: "1000", IDEMPOTENCY_CLAIM_TTL_MS: "1500" };

let h: Harness;
/** A second gateway process beside the harness's, sharing its Redis and prefix. */
let other: GatewayProcess;
/** Gateway processes for the SIGKILL cases, one per case. */
let victims: GatewayProcess[] = [];
/** Every gateway process started, to stop. */
const started: GatewayProcess[] = [];

beforeAll(async () => {
  h = await startHarness({ env: GATEWAY_ENV });
  const shared = { REDIS_URL: h.config.redisUrl!, REDIS_KEY_PREFIX: h.config.redisKeyPrefix };
  // Each is kept as soon as it runs, so one that fails to start does not leave the others behind.
  const start = (env: Record<string, string>) => startGatewayProcess(env).then((g) => (started.push(g), g));
  [other, ...victims] = await Promise.all([
    start({ ...GATEWAY_ENV, ...shared }),
    start({ ...VICTIM_ENV, ...shared }),
    start({ ...VICTIM_ENV, ...shared }),
  ]);
}, 30_000);
afterAll(async () => {
  await Promise.all(started.map((p) => p.stop()));
  await h?.close();
});

interface Booked {
  readonly id: string;
  readonly replayed: boolean;
}

interface BookOptions {
  readonly partnerKey?: string;
  /** More request headers (a deadline, say). */
  readonly headers?: Record<string, string>;
}

/** Books through `c` with `key` in the `Idempotency-Key` header; tells whether the answer was a replay. */
async function book(c: Pick<RpcClients, "booking">, body: object, key: string, options: BookOptions = {}): Promise<Booked> {
  let replayed = false;
  const res = await c.booking.createBooking(bookingRequest(body), {
    ...bearer(options.partnerKey ?? h.keys.a, { "idempotency-key": key, ...options.headers }),
    onHeader: (headers) => {
      replayed = headers.get("idempotent-replayed") === "true";
    },
  });
  return { id: res.booking!.id, replayed };
}

/** What the platform (of `on`) saw for a partner's key: webhooks received, and the booking it made. */
function platformSide(key: string, partnerId = h.partners.a, on = h): { webhooks: number; bookingId: string | undefined } {
  const downstream = downstreamIdempotencyKey(partnerId, key);
  const webhooks = on.platform.received.filter((r) => r.path === "/bookings" && r.body?.idempotency_key === downstream).length;
  const booking = on.platform.bookings.get(downstream)?.booking;
  return { webhooks, bookingId: booking === undefined ? undefined : String(booking.id) };
}

/** Scripts the booking webhook of one partner key (on the platform of `on`); other requests get the reference behaviour. */
function onBooking(key: string, reply: Script, partnerId = h.partners.a, on = h): void {
  const downstream = downstreamIdempotencyKey(partnerId, key);
  on.script = (req, reference) => (req.path === "/bookings" && req.body?.idempotency_key === downstream ? reply(req, reference) : undefined);
}

/**
 * Holds the platform's answer to one partner key's booking (the booking is
 * made when released) until the test calls `release`, so a test sees what
 * happens while a booking is in flight however fast the machine is. Released
 * when the test ends in any case.
 */
function holdAnswer(key: string): { release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  onTestFinished(release);
  onBooking(key, async (_req, reference) => {
    await released;
    return reference();
  });
  return { release };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client for `protocol`: REST through restBookingClient, the others through connect-es. */
const clientOf = (protocol: Protocol, url = h.url): Pick<RpcClients, "booking"> => (protocol === "rest" ? restBookingClient(url) : clientsFor(protocol, url));

/** Every protocol a booking can be made on. */
const BOOKING_PROTOCOLS: readonly Protocol[] = ["rest", ...RPC_PROTOCOLS];

describe("two gateway processes sharing Redis", () => {
  it("50 concurrent requests, one key and one body, over REST, gRPC and Connect on both processes: one booking, every caller gets it", async () => {
    const kinds = ["grpc", "connect-json-h1", "rest"] as const;
    const clients = [h.url, other.url].flatMap((url) => kinds.map((kind) => ({ kind, url, client: clientOf(kind, url) })));
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    // The platform holds its answer until every other caller has waited out
    // the bound (800 ms) and been refused, on every protocol.
    const answer = holdAnswer(key);
    const callers = Array.from({ length: 50 }, (_, i) => clients[i % clients.length]!);
    let refused = 0;
    const calls = callers.map(({ client }) =>
      book(client, body, key).catch((e: unknown) => {
        if (++refused === callers.length - 1) answer.release();
        throw e;
      }),
    );
    const results = await Promise.allSettled(calls);

    const { webhooks, bookingId } = platformSide(key);
    expect(webhooks).toBe(1);
    expect(bookingId).toMatch(/^bkg_/);
    const booked = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    expect(booked.every((b) => b.id === bookingId)).toBe(true);
    expect(booked.filter((b) => !b.replayed)).toHaveLength(1);
    // Callers still waiting past the bound are told to retry, nothing else.
    const refusedBy = new Map<string, string[]>();
    results.forEach((r, i) => {
      if (r.status === "fulfilled") return;
      const { kind, url } = callers[i]!;
      const e = ConnectError.from(r.reason);
      const name = `${kind}@${url === h.url ? "harness" : "process"}`;
      refusedBy.set(name, [...(refusedBy.get(name) ?? []), `${Code[e.code]}/${reasonOf(e)}/${e.metadata.get("retry-after")}`]);
    });
    expect([...refusedBy.keys()].sort()).toEqual(clients.map(({ kind, url }) => `${kind}@${url === h.url ? "harness" : "process"}`).sort());
    for (const outcomes of refusedBy.values()) expect(new Set(outcomes)).toEqual(new Set(["Aborted/idempotency_key_in_use/1"]));
    // Each refused caller's retry gets the booking, as a replay.
    const retried = await Promise.all(results.flatMap((r, i) => (r.status === "rejected" ? [book(callers[i]!.client, body, key)] : [])));
    expect(retried.length + booked.length).toBe(50);
    expect(retried.every((b) => b.id === bookingId && b.replayed)).toBe(true);
    expect(platformSide(key).webhooks).toBe(1);
  });

  it("the same key with another body on the other process: 422 while in flight and after, never sent", async () => {
    const first = bookingBody(h.bots.a);
    const key = idempotencyKey();
    onBooking(key, (_req, reference) => ({ ...reference(), delayMs: 400 }));
    const inFlight = book(clientsFor("grpc", other.url), first, key);
    await sleep(100);
    const changed = { ...first, booking: { ...first.booking, notes: "second thoughts" } };
    await expectRpcError(book(clientsFor("connect-json-h1", h.url), changed, key), Code.FailedPrecondition, "idempotency_key_mismatch");
    await expectRpcError(book(restBookingClient(h.url), changed, key), Code.FailedPrecondition, "idempotency_key_mismatch");
    await inFlight;
    await expectRpcError(book(clientsFor("grpc", h.url), changed, key), Code.FailedPrecondition, "idempotency_key_mismatch");
    expect(platformSide(key).webhooks).toBe(1);
  });
});

describe.each(BOOKING_PROTOCOLS)("%s", (protocol) => {
  let c: Pick<RpcClients, "booking">;
  beforeAll(() => {
    c = clientOf(protocol);
  });

  it("another body with the same key: idempotency_key_mismatch while in flight and after; the platform never sees it", async () => {
    const first = bookingBody(h.bots.a);
    const key = idempotencyKey();
    onBooking(key, (_req, reference) => ({ ...reference(), delayMs: 300 }));
    const inFlight = book(c, first, key);
    await sleep(80);
    const otherSlot = bookingBody(h.bots.a);
    const during = await expectRpcError(book(c, otherSlot, key), Code.FailedPrecondition, "idempotency_key_mismatch");
    expect(await inFlight).toMatchObject({ replayed: false });
    await expectRpcError(book(c, otherSlot, key), Code.FailedPrecondition, "idempotency_key_mismatch");
    expect(during.rawMessage).toContain("different request");
    expect(platformSide(key).webhooks).toBe(1);
    covers("422 mismatch · booking", protocol);
  });

  it("field order and spelling do not change the fingerprint", async () => {
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    const first = await book(c, body, key);
    const respelled = {
      booking: {
        notes: body.booking.notes,
        customer: { email: body.booking.customer.email, name: body.booking.customer.name, phone: body.booking.customer.phone },
        durationMinutes: 30,
        startAt: body.booking.start_at.replace("Z", ".000+00:00"),
      },
      botId: body.bot_id,
    };
    expect(await book(c, respelled, key)).toEqual({ id: first.id, replayed: true });
  });

  it("the same key from two partners: two bookings", async () => {
    const key = idempotencyKey();
    const a = await book(c, bookingBody(h.bots.a), key, { partnerKey: h.keys.a });
    const b = await book(c, bookingBody(h.bots.b), key, { partnerKey: h.keys.b });
    expect([a.replayed, b.replayed]).toEqual([false, false]);
    expect(a.id).not.toBe(b.id);
    expect(platformSide(key, h.partners.a)).toEqual({ webhooks: 1, bookingId: a.id });
    expect(platformSide(key, h.partners.b)).toEqual({ webhooks: 1, bookingId: b.id });
  });

  it("platform 409 slot_unavailable is stored and replayed identically", async () => {
    const taken = bookingBody(h.bots.a);
    await book(c, taken, idempotencyKey());
    const body = { ...taken, booking: { ...taken.booking, notes: "again" } };
    const key = idempotencyKey();
    const first = await expectRpcError(book(c, body, key), Code.AlreadyExists, "slot_unavailable", { httpStatus: 409 });
    const replay = await expectRpcError(book(c, body, key), Code.AlreadyExists, "slot_unavailable", { httpStatus: 409 });
    expect(replay.rawMessage).toBe(first.rawMessage);
    expect(replay.details).toEqual(first.details);
    expect(first.metadata.get("idempotent-replayed")).toBeNull();
    expect(replay.metadata.get("idempotent-replayed")).toBe("true");
    expect(platformSide(key).webhooks).toBe(1);
  });

  it("platform 503, then success: the first caller gets the error, the retry books, one booking", async () => {
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    onBooking(key, () => ({ status: 503, body: { error: { code: "maintenance", message: "back in a minute" } } }));
    await expectRpcError(book(c, body, key), Code.Unavailable, "maintenance", { httpStatus: 503 });
    h.script = undefined;
    const retry = await book(c, body, key);
    expect(retry.replayed).toBe(false);
    expect(platformSide(key)).toEqual({ webhooks: 2, bookingId: retry.id });
    expect(await book(c, body, key)).toEqual({ id: retry.id, replayed: true });
    covers("platform error pass-through · booking", protocol);
  });

  describe("key edge cases", () => {
    const invalid = (call: Promise<unknown>) => expectRpcError(call, Code.InvalidArgument, "idempotency_key_invalid");

    it("255 characters are a key, 256 are not", async () => {
      const body = bookingBody(h.bots.a);
      const key = "k".repeat(250) + idempotencyKey().slice(-5);
      expect(key).toHaveLength(255);
      const first = await book(c, body, key);
      expect(await book(c, body, key)).toEqual({ id: first.id, replayed: true });
      const before = h.platform.received.length;
      const e = await invalid(book(c, bookingBody(h.bots.a), key + "k"));
      expect(e.rawMessage).toContain("255");
      expect(h.platform.received.length).toBe(before);
    });

    it("empty, missing, non-ASCII, or header and field different: idempotency_key_invalid, nothing sent", async () => {
      const before = h.platform.received.length;
      const body = bookingBody(h.bots.a);
      await invalid(book(c, body, ""));
      await invalid(c.booking.createBooking(bookingRequest(body), bearer(h.keys.a)));
      for (const key of ["cl\u00e9-1", "Termin-\u6708", " padded", "tab\tinside", "x".repeat(256)]) {
        await invalid(c.booking.createBooking(bookingRequest({ ...body, idempotency_key: key }), bearer(h.keys.a)));
      }
      // Latin-1 bytes are the only non-ASCII an HTTP header can carry.
      await invalid(book(c, body, "cl\u00e9-" + idempotencyKey()));
      const mismatch = await invalid(
        c.booking.createBooking(bookingRequest({ ...body, idempotency_key: "key-field" }), bearer(h.keys.a, { "idempotency-key": "key-header" })),
      );
      expect(mismatch.rawMessage).toContain("differ");
      expect(h.platform.received.length).toBe(before);
    });

    it("header and field both set and equal: one key", async () => {
      const body = bookingBody(h.bots.a);
      const key = idempotencyKey();
      const first = await c.booking.createBooking(bookingRequest({ ...body, idempotency_key: key }), bearer(h.keys.a, { "idempotency-key": key }));
      expect(await book(c, body, key)).toEqual({ id: first.booking!.id, replayed: true });
    });
  });
});

describe.each(BOOKING_PROTOCOLS)("in flight past the wait bound (%s)", (protocol) => {
  it("idempotency_key_in_use with Retry-After, then the replay", async () => {
    const c = clientOf(protocol);
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    // The platform answers only once the duplicate has waited out the bound (800 ms) and been refused.
    const answer = holdAnswer(key);
    const first = book(c, body, key);
    await expect.poll(() => platformSide(key).webhooks).toBe(1);
    const e = await expectRpcError(book(c, body, key), Code.Aborted, "idempotency_key_in_use");
    answer.release();
    expect(e.metadata.get("retry-after")).toBe("1");
    const booked = await first;
    expect(booked.replayed).toBe(false);
    expect(await book(c, body, key)).toEqual({ id: booked.id, replayed: true });
    expect(platformSide(key).webhooks).toBe(1);
    covers("409 in flight · booking", protocol);
  });
});

describe.each(["rest", "connect-json-h1"] as const)("timing-bound cases (%s)", (protocol) => {
  let c: Pick<RpcClients, "booking">;
  /** A gateway of its own, whose webhook times out after 1.5 s. */
  let t: Harness;
  beforeAll(async () => {
    c = clientOf(protocol);
    t = await startHarness({ env: TIMEOUT_ENV });
  });
  afterAll(() => t?.close());

  it("platform timeout, then retry: the booking the platform made comes back, one booking", async () => {
    const body = bookingBody(t.bots.a);
    const key = idempotencyKey();
    const onT = { partnerKey: t.keys.a };
    onBooking(key, (_req, reference) => ({ ...reference(), delayMs: 2500 }), t.partners.a, t);
    await expectRpcError(book(clientOf(protocol, t.url), body, key, onT), Code.DeadlineExceeded, "platform_timeout");
    t.script = undefined;
    const retry = await book(clientOf(protocol, t.url), body, key, onT);
    expect(platformSide(key, t.partners.a, t)).toEqual({ webhooks: 2, bookingId: retry.id });
  });

  it("a caller whose deadline passes mid-booking gets platform_timeout; the booking goes on and its retry gets it", async () => {
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    const abortedBefore = h.platform.aborted;
    onBooking(key, (_req, reference) => ({ ...reference(), delayMs: 500 }));
    // The deadline travels as a header, without a client-side timer: the answer is the server's.
    await expectRpcError(book(c, body, key, { headers: deadlineHeaders(protocol, 150) }), Code.DeadlineExceeded, "platform_timeout");
    const retry = await book(c, body, key);
    expect(retry.replayed).toBe(true);
    expect(h.platform.aborted).toBe(abortedBefore);
    expect(platformSide(key)).toEqual({ webhooks: 1, bookingId: retry.id });
    covers("server deadline · booking", protocol);
  });
});

describe.each(BOOKING_PROTOCOLS)("replay over %s", (protocol) => {
  it("returns the original booking, marked Idempotent-Replayed, without a second webhook", async () => {
    const c = clientOf(protocol);
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    const first = await book(c, body, key);
    expect(first.replayed).toBe(false);
    expect(await book(c, body, key)).toEqual({ id: first.id, replayed: true });
    expect(platformSide(key)).toEqual({ webhooks: 1, bookingId: first.id });
    covers("replay · booking", protocol);
  });
});

describe("a gateway process killed mid-booking", () => {
  /** Retries on the surviving gateway until it books; every refusal on the way must be `idempotency_key_in_use`. */
  async function retryUntilBooked(body: object, key: string): Promise<{ booked: Booked; refusals: number; ms: number }> {
    const c = restBookingClient(h.url);
    const started = Date.now();
    let refusals = 0;
    for (;;) {
      try {
        return { booked: await book(c, body, key), refusals, ms: Date.now() - started };
      } catch (e) {
        expect(Code[ConnectError.from(e).code]).toBe("Aborted");
        refusals++;
        expect(Date.now() - started).toBeLessThan(5000);
      }
    }
  }

  it("after claiming, before the platform booked: the key frees itself after the claim TTL and the retry books", async () => {
    const victim = victims[0]!;
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    onBooking(key, async () => {
      await victim.kill();
      return { status: 0, reset: true };
    });
    await expect(book(clientsFor("grpc", victim.url), body, key)).rejects.toBeInstanceOf(ConnectError);
    h.script = undefined;
    const ttl = await h.gateway.redis!.pttl(`${h.config.redisKeyPrefix}idem:${h.partners.a}:${sha256(key)}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1500);
    const { booked, refusals } = await retryUntilBooked(body, key);
    expect(refusals).toBeGreaterThan(0);
    expect(booked.replayed).toBe(false);
    expect(platformSide(key)).toEqual({ webhooks: 2, bookingId: booked.id });
  });

  it("after the platform booked, before the result was stored: the retry returns the same booking, one booking", async () => {
    const victim = victims[1]!;
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    let markBooked!: () => void;
    const platformBooked = new Promise<void>((resolve) => (markBooked = resolve));
    onBooking(key, async (_req, reference) => {
      await victim.kill();
      const reply = reference();
      markBooked();
      return reply;
    });
    await expect(book(clientsFor("connect-json-h1", victim.url), body, key)).rejects.toBeInstanceOf(ConnectError);
    await platformBooked;
    h.script = undefined;
    const madeBefore = platformSide(key).bookingId;
    expect(madeBefore).toMatch(/^bkg_/);
    const { booked } = await retryUntilBooked(body, key);
    expect(booked.id).toBe(madeBefore);
    expect(platformSide(key)).toEqual({ webhooks: 2, bookingId: madeBefore });
  });
});

describe("Redis outage", () => {
  let redis: RedisServer;
  let g: Harness;
  let c: RpcClients;

  beforeAll(async () => {
    redis = await RedisServer.start();
    g = await startHarness({ redisUrl: redis.url, env: GATEWAY_ENV });
    c = clientsFor("connect-json-h2", g.url);
  });
  afterAll(async () => {
    await g?.close();
    await redis?.stop();
  });

  const bookOn = (body: object, key: string) =>
    c.booking.createBooking(bookingRequest(body), bearer(g.keys.a, { "idempotency-key": key })).then((r) => r.booking!.id);

  async function unavailableWithin(ms: number, call: () => Promise<unknown>): Promise<number> {
    const webhooksBefore = g.platform.received.length;
    const started = Date.now();
    const e = await expectRpcError(call(), Code.Unavailable, "service_unavailable");
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(ms);
    expect(e.metadata.get("retry-after")).toBe("1");
    expect(g.platform.received.length).toBe(webhooksBefore);
    return elapsed;
  }

  it("a frozen Redis: service_unavailable in about a second, no webhook; the key is usable once Redis answers", async () => {
    await bookOn(bookingBody(g.bots.a), idempotencyKey());
    const body = bookingBody(g.bots.a);
    const key = idempotencyKey();
    redis.pause();
    try {
      const elapsed = await unavailableWithin(1800, () => bookOn(body, key));
      expect(elapsed).toBeGreaterThanOrEqual(900);
    } finally {
      redis.unpause();
    }
    // The claim that reached the frozen Redis was taken back: the retry books at once.
    await expect(bookOn(body, key)).resolves.toMatch(/^bkg_/);
  });

  it("a stopped Redis: service_unavailable at once on every protocol, no webhook; a restarted Redis serves again, same gateway", async () => {
    await redis.kill();
    for (const protocol of ["rest", "connect-json-h2", "grpc", "grpc-web-h2"] as const) {
      const rpc = protocol === "rest" ? restBookingClient(g.url) : clientsFor(protocol, g.url);
      await unavailableWithin(1000, () => rpc.booking.createBooking(bookingRequest(bookingBody(g.bots.a)), bearer(g.keys.a, { "idempotency-key": idempotencyKey() })));
    }
    await redis.resume();
    // The gateway reconnects by itself; the private Redis keeps no data, so the directory is written again.
    await expect.poll(() => g.gateway.redis!.ping().then(() => true, () => false), { timeout: 3000, interval: 50 }).toBe(true);
    await g.reseed();
    const made = g.platform.bookingsMade();
    const body = bookingBody(g.bots.a);
    const key = idempotencyKey();
    const id = await bookOn(body, key);
    await expect(bookOn(body, key)).resolves.toBe(id);
    expect(g.platform.bookingsMade()).toBe(made + 1);
  });
});

describe("the embedded default (memory)", () => {
  let m: Harness;
  beforeAll(async () => {
    m = await startHarness({ store: "memory", env: GATEWAY_ENV });
  });
  afterAll(() => m?.close());

  it("books once, replays, and rejects another body", async () => {
    const c = clientsFor("connect-binary-h1", m.url);
    const body = bookingBody(m.bots.a);
    const key = idempotencyKey();
    const call = (b: object) => c.booking.createBooking(bookingRequest(b), bearer(m.keys.a, { "idempotency-key": key }));
    const [first, second] = await Promise.all([call(body), call(body)]);
    expect(second.booking!.id).toBe(first.booking!.id);
    await expectRpcError(call(bookingBody(m.bots.a)), Code.FailedPrecondition, "idempotency_key_mismatch");
    expect(m.platform.bookingsMade()).toBe(1);
    expect(m.platform.received.filter((r) => r.path === "/bookings")).toHaveLength(1);
  });
});

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}
