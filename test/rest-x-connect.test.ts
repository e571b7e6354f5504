/**
 * REST crossed with Connect JSON: the same requests, byte for byte, sent to
 * the REST path and to the Connect procedure, give the same business result
 * (the platform's answer; Connect carries undocumented fields in
 * `platform_fields`) and the same error: REST's code is the ErrorInfo reason,
 * REST's status its `http_status`, and the messages match.
 */
import { ConnectError } from "@connectrpc/connect";
import { errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PlatformReply } from "../src/demo/reference-platform.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { covers, type Behaviour } from "./support/behaviour-matrix.js";
import { send, type HttpAnswer } from "./support/http1.js";
import { bookingBody, idempotencyKey, lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { WEBHOOK_TIMEOUT_MS: "600", IDEMPOTENCY_WAIT_MS: "100" } });
});
afterAll(() => h.close());

type Rpc = "search" | "book" | "lookup";
const REST_PATH: Record<Rpc, string> = { search: "/v1/availability/search", book: "/v1/bookings", lookup: "/v1/customers/lookup" };
const CONNECT_PATH: Record<Rpc, string> = {
  search: "/dialstack.partner.v1.AvailabilityService/SearchAvailability",
  book: "/dialstack.partner.v1.BookingService/CreateBooking",
  lookup: "/dialstack.partner.v1.CustomerService/LookupCustomer",
};

interface Exchange {
  readonly rpc: Rpc;
  readonly body: string;
  readonly headers: Record<string, string>;
}

const viaRest = (x: Exchange) => send(h.url + REST_PATH[x.rpc], { headers: { "content-type": "application/json", ...x.headers }, body: x.body });
const viaConnect = (x: Exchange) =>
  send(h.url + CONNECT_PATH[x.rpc], { headers: { "content-type": "application/json", "connect-protocol-version": "1", ...x.headers }, body: x.body });

interface Outcome {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly retryAfter: string | undefined;
}

function restOutcome(res: HttpAnswer): Outcome {
  expect(Object.keys(res.json ?? {}), res.text).toEqual(["error"]);
  return { status: res.status, code: res.json.error.code, message: res.json.error.message, retryAfter: res.headers["retry-after"] as string | undefined };
}

function connectOutcome(res: HttpAnswer): Outcome {
  expect(res.status, res.text).not.toBe(200);
  const error = errorFromJsonBytes(Buffer.from(res.text), undefined, new ConnectError("not a Connect error"));
  const info = error.findDetails(ErrorInfoSchema)[0];
  expect(info, res.text).toBeDefined();
  return { status: Number(info!.metadata.http_status), code: info!.reason, message: error.rawMessage, retryAfter: res.headers["retry-after"] as string | undefined };
}

/** A Connect JSON response message as the platform's JSON: `platform_fields` merged back where they came from. */
function unflatten(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unflatten);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "platform_fields") Object.assign(out, v);
    else out[k] = unflatten(v);
  }
  return out;
}

const auth = () => ({ authorization: `Bearer ${h.keys.a}` });
const keyed = () => ({ ...auth(), "idempotency-key": idempotencyKey() });
const json = (v: unknown) => JSON.stringify(v);
const withRange = (end: string) => json({ ...searchBody("bot_a"), query: { filter: { start_at_range: { start_at: "2030-01-07T09:00:00Z", end_at: end } } } });

interface ErrorRow {
  readonly name: string;
  readonly exchange: () => Exchange;
  readonly status: number;
  readonly code: string;
  readonly platform?: PlatformReply;
  /** False where REST reads the body itself and words the message its own way. */
  readonly sameMessage?: boolean;
  /** The row of the behaviour table the case checks, if any. */
  readonly behaviour?: Behaviour;
}

const ERROR_ROWS: readonly ErrorRow[] = [
  { name: "no Authorization", exchange: () => ({ rpc: "search", body: json(searchBody("bot_a")), headers: {} }), status: 401, code: "unauthorized" },
  { name: "malformed Authorization", exchange: () => ({ rpc: "search", body: json(searchBody("bot_a")), headers: { authorization: "Basic abc" } }), status: 401, code: "unauthorized" },
  { name: "unknown key", exchange: () => ({ rpc: "book", body: json(bookingBody("bot_a")), headers: { authorization: "Bearer sk_ptnr_nope", "idempotency-key": "k" } }), status: 401, code: "unauthorized", behaviour: "auth failure · booking" },
  { name: "unknown bot", exchange: () => ({ rpc: "search", body: json(searchBody("bot_nope")), headers: auth() }), status: 404, code: "bot_not_found" },
  { name: "another partner's bot", exchange: () => ({ rpc: "book", body: json(bookingBody(h.bots.b)), headers: keyed() }), status: 404, code: "bot_not_found", behaviour: "bot ownership · booking" },
  { name: "bot_id missing", exchange: () => ({ rpc: "search", body: json({ ...searchBody("x"), bot_id: "" }), headers: auth() }), status: 400, code: "invalid_request" },
  { name: "query missing", exchange: () => ({ rpc: "search", body: json({ bot_id: "bot_a" }), headers: auth() }), status: 400, code: "invalid_request" },
  { name: "range missing", exchange: () => ({ rpc: "search", body: json({ bot_id: "bot_a", query: { filter: {} } }), headers: auth() }), status: 400, code: "invalid_request", behaviour: "validation · search" },
  { name: "end before start", exchange: () => ({ rpc: "search", body: withRange("2030-01-07T08:00:00Z"), headers: auth() }), status: 400, code: "invalid_request" },
  { name: "range too long", exchange: () => ({ rpc: "search", body: withRange("2030-03-07T08:00:00Z"), headers: auth() }), status: 400, code: "invalid_request" },
  { name: "bad timestamp", exchange: () => ({ rpc: "search", body: withRange("tomorrow"), headers: auth() }), status: 400, code: "invalid_request" },
  { name: "wrong JSON type", exchange: () => ({ rpc: "search", body: json({ bot_id: 5 }), headers: auth() }), status: 400, code: "invalid_request" },
  {
    name: "duration_minutes 0",
    exchange: () => {
      const b = bookingBody("bot_a");
      b.booking.duration_minutes = 0;
      return { rpc: "book", body: json(b), headers: keyed() };
    },
    status: 400,
    code: "invalid_request",
    behaviour: "validation · booking",
  },
  { name: "customer missing", exchange: () => ({ rpc: "book", body: json({ bot_id: "bot_a", booking: { start_at: "2031-01-01T09:00:00Z", duration_minutes: 30 } }), headers: keyed() }), status: 400, code: "invalid_request" },
  { name: "body not JSON", exchange: () => ({ rpc: "search", body: "{bad", headers: auth() }), status: 400, code: "invalid_request", sameMessage: false },
  {
    name: "body too large",
    exchange: () => ({ rpc: "search", body: json({ ...searchBody("bot_a"), pad: "x".repeat(h.config.maxRequestBytes) }), headers: auth() }),
    status: 413,
    code: "request_too_large",
    sameMessage: false,
    behaviour: "size limit · search",
  },
  { name: "Idempotency-Key missing", exchange: () => ({ rpc: "book", body: json(bookingBody("bot_a")), headers: auth() }), status: 400, code: "idempotency_key_invalid" },
  { name: "Idempotency-Key too long", exchange: () => ({ rpc: "book", body: json(bookingBody("bot_a")), headers: { ...auth(), "idempotency-key": "k".repeat(256) } }), status: 400, code: "idempotency_key_invalid" },
  { name: "Idempotency-Key not printable", exchange: () => ({ rpc: "book", body: json(bookingBody("bot_a")), headers: { ...auth(), "idempotency-key": "a\tb" } }), status: 400, code: "idempotency_key_invalid" },
  { name: "no webhook configured", exchange: () => ({ rpc: "search", body: json(searchBody("bot_nohook")), headers: auth() }), status: 422, code: "webhook_not_configured" },
  { name: "lookup: phone not E.164", exchange: () => ({ rpc: "lookup", body: json(lookupBody("bot_a", "call me maybe")), headers: auth() }), status: 400, code: "invalid_request" },
  { name: "lookup: customer missing", exchange: () => ({ rpc: "lookup", body: json({ bot_id: "bot_a" }), headers: auth() }), status: 400, code: "invalid_request" },
  { name: "lookup: another partner's bot", exchange: () => ({ rpc: "lookup", body: json(lookupBody(h.bots.b, "+15551234567")), headers: auth() }), status: 404, code: "bot_not_found" },
  { name: "lookup: no webhook configured", exchange: () => ({ rpc: "lookup", body: json(lookupBody("bot_nohook", "+15551234567")), headers: auth() }), status: 422, code: "webhook_not_configured" },
  {
    name: "lookup: platform without the lookup webhook",
    exchange: () => ({ rpc: "lookup", body: json(lookupBody("bot_a", "+15551234567")), headers: auth() }),
    platform: { status: 404, body: "Cannot POST /dialstack/customers/lookup" },
    status: 501,
    code: "customer_lookup_not_supported",
  },
  {
    name: "lookup: platform envelope 404 account_not_found",
    exchange: () => ({ rpc: "lookup", body: json(lookupBody("bot_a", "+15551234567")), headers: auth() }),
    platform: { status: 404, body: { error: { code: "account_not_found", message: "platform says account_not_found" } } },
    status: 404,
    code: "account_not_found",
  },
  ...([
    [409, "slot_unavailable"],
    [400, "invalid_payload"],
    [404, "account_not_found"],
    [422, "unprocessable"],
    [429, "too_many"],
    [500, "configuration_error"],
  ] as const).map(
    ([status, code]): ErrorRow => ({
      name: `platform envelope ${status} ${code}`,
      exchange: () => ({ rpc: "book", body: json(bookingBody("bot_a")), headers: keyed() }),
      platform: { status, body: { error: { code, message: `platform says ${code}` } } },
      status,
      code,
      behaviour: "platform error pass-through · booking",
    }),
  ),
  ...([
    [401, "invalid_signature"],
    [403, "forbidden"],
  ] as const).map(
    ([status, code]): ErrorRow => ({
      name: `platform refuses the gateway ${status} ${code}`,
      exchange: () => ({ rpc: "book", body: json(bookingBody("bot_a")), headers: keyed() }),
      platform: { status, body: { error: { code, message: `platform says ${code}` } } },
      status: 502,
      code: "platform_rejected",
    }),
  ),
  { name: "platform answers HTML", exchange: () => ({ rpc: "search", body: json(searchBody("bot_a")), headers: auth() }), platform: { status: 200, body: "<html>" }, status: 502, code: "platform_invalid_response" },
  {
    name: "platform breaks the schema",
    exchange: () => ({ rpc: "search", body: json(searchBody("bot_a")), headers: auth() }),
    platform: { status: 200, body: { availabilities: [{ start_at: "soon", duration_minutes: 30 }] } },
    status: 502,
    code: "platform_invalid_response",
  },
  { name: "platform 502 without envelope", exchange: () => ({ rpc: "search", body: json(searchBody("bot_a")), headers: auth() }), platform: { status: 502, body: "bad gateway" }, status: 502, code: "platform_unavailable" },
  { name: "platform resets", exchange: () => ({ rpc: "book", body: json(bookingBody("bot_a")), headers: keyed() }), platform: { status: 0, reset: true }, status: 502, code: "platform_unavailable" },
  {
    name: "platform too slow",
    exchange: () => ({ rpc: "search", body: json(searchBody("bot_a")), headers: auth() }),
    platform: { status: 200, body: { availabilities: [] }, delayMs: 2000 },
    status: 504,
    code: "platform_timeout",
  },
];

describe("errors: same status, code and message on REST and Connect JSON", () => {
  it.each(ERROR_ROWS.map((r) => [r.name, r] as const))("%s", async (_name, row) => {
    h.script = row.platform === undefined ? undefined : () => row.platform;
    const exchange = row.exchange();
    const rest = restOutcome(await viaRest(exchange));
    const connect = connectOutcome(await viaConnect({ ...exchange, headers: { ...exchange.headers } }));
    expect({ status: rest.status, code: rest.code }).toEqual({ status: row.status, code: row.code });
    expect({ status: connect.status, code: connect.code }).toEqual({ status: row.status, code: row.code });
    expect(rest.retryAfter).toBe(connect.retryAfter);
    if (row.sameMessage !== false) expect(rest.message).toBe(connect.message);
    if (row.behaviour !== undefined) {
      covers(row.behaviour, "rest");
      covers(row.behaviour, "connect-json-h1");
    }
  });
});

describe("idempotency errors: the same on REST and Connect JSON", () => {
  it("idempotency_key_mismatch: the same key with another booking", async () => {
    const headers = keyed();
    const first = await viaRest({ rpc: "book", body: json(bookingBody(h.bots.a)), headers });
    expect(first.status).toBe(201);
    const other = { rpc: "book", body: json(bookingBody(h.bots.a)), headers } as const;
    const rest = restOutcome(await viaRest(other));
    const connect = connectOutcome(await viaConnect(other));
    expect(rest).toEqual(connect);
    expect({ status: rest.status, code: rest.code }).toEqual({ status: 422, code: "idempotency_key_mismatch" });
    covers("422 mismatch · booking", "rest");
    covers("422 mismatch · booking", "connect-json-h1");
  });

  it("idempotency_key_in_use: the same key while the first booking is in flight, with Retry-After", async () => {
    h.script = () => ({ status: 201, body: { booking: { id: "bkg_slow", status: "pending" } }, delayMs: 400 });
    const exchange = { rpc: "book", body: json(bookingBody(h.bots.a)), headers: keyed() } as const;
    const before = h.platform.received.length;
    const inFlight = viaRest(exchange);
    await expect.poll(() => h.platform.received.slice(before).some((r) => r.path === "/bookings")).toBe(true);
    const rest = restOutcome(await viaRest(exchange));
    const connect = connectOutcome(await viaConnect(exchange));
    expect(rest).toEqual(connect);
    expect({ status: rest.status, code: rest.code }).toEqual({ status: 409, code: "idempotency_key_in_use" });
    expect(Number(rest.retryAfter)).toBeGreaterThan(0);
    expect((await inFlight).status).toBe(201);
    covers("409 in flight · booking", "rest");
    covers("409 in flight · booking", "connect-json-h1");
  });

  it("rate_limited, with Retry-After", async () => {
    const limited = await startHarness({ env: { RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "1" } });
    try {
      const exchange = { rpc: "search", body: json(searchBody(limited.bots.a)), headers: { authorization: `Bearer ${limited.keys.a}` } } as const;
      const at = (base: string, x: Exchange, path: string, extra: Record<string, string>) =>
        send(base + path, { headers: { "content-type": "application/json", ...extra, ...x.headers }, body: x.body });
      expect((await at(limited.url, exchange, REST_PATH.search, {})).status).toBe(200);
      const rest = restOutcome(await at(limited.url, exchange, REST_PATH.search, {}));
      const connect = connectOutcome(await at(limited.url, exchange, CONNECT_PATH.search, { "connect-protocol-version": "1" }));
      expect({ status: rest.status, code: rest.code }).toEqual({ status: 429, code: "rate_limited" });
      expect(rest).toEqual(connect);
      expect(Number(rest.retryAfter)).toBeGreaterThan(0);
      covers("rate limit · search", "rest");
      covers("rate limit · search", "connect-json-h1");
    } finally {
      await limited.close();
    }
  });

  it("a replay is marked Idempotent-Replayed on both", async () => {
    const exchange = { rpc: "book", body: json(bookingBody(h.bots.a)), headers: keyed() } as const;
    const first = await viaRest(exchange);
    expect(first.status).toBe(201);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    const rest = await viaRest(exchange);
    const connect = await viaConnect(exchange);
    expect({ status: rest.status, replayed: rest.headers["idempotent-replayed"], body: rest.json }).toEqual({ status: 201, replayed: "true", body: first.json });
    expect(connect.headers["idempotent-replayed"]).toBe("true");
    expect(unflatten(connect.json)).toEqual(first.json);
    covers("replay · booking", "rest");
    covers("replay · booking", "connect-json-h1");
  });
});

describe("successes: the same business result", () => {
  it("search: the same slots", async () => {
    const body = json(searchBody(h.bots.a));
    const rest = await viaRest({ rpc: "search", body, headers: auth() });
    const connect = await viaConnect({ rpc: "search", body, headers: auth() });
    expect(rest.status).toBe(200);
    expect(connect.status).toBe(200);
    expect(rest.json.availabilities.length).toBeGreaterThan(0);
    expect(unflatten(connect.json)).toEqual(rest.json);
  });

  it("search: platform fields beyond the schema, inline on REST and in platform_fields on Connect", async () => {
    const answer = { availabilities: [{ start_at: "2030-01-07T09:00:00Z", duration_minutes: 30, provider: "Dr. Rivera" }], next_page: "p2" };
    h.script = () => ({ status: 200, body: answer });
    const body = json(searchBody(h.bots.a));
    const rest = await viaRest({ rpc: "search", body, headers: auth() });
    const connect = await viaConnect({ rpc: "search", body, headers: auth() });
    expect(rest.json).toEqual(answer);
    expect(connect.json.platform_fields).toEqual({ next_page: "p2" });
    expect(unflatten(connect.json)).toEqual(rest.json);
  });

  it("lookup: the same caller, platform fields inline on REST and in platform_fields on Connect", async () => {
    const answer = {
      found: true,
      customer: { name: "Jane Roe", phone: "+14155550123", tier: "gold", existing_appointment: { start_at: "2030-01-08T10:00:00Z", end_at: "2030-01-08T10:30:00Z", status: "confirmed", room: 4 } },
      source: "crm",
    };
    h.script = () => ({ status: 200, body: answer });
    const body = json(lookupBody(h.bots.a, "+14155550123"));
    const rest = await viaRest({ rpc: "lookup", body, headers: auth() });
    const connect = await viaConnect({ rpc: "lookup", body, headers: auth() });
    expect(rest.json).toEqual(answer);
    expect(connect.json.platform_fields).toEqual({ source: "crm" });
    expect(unflatten(connect.json)).toEqual(rest.json);
  });

  it.each([
    ["REST first, then Connect", viaRest, viaConnect],
    ["Connect first, then REST", viaConnect, viaRest],
  ] as const)("booking with one Idempotency-Key: %s book once and see the same booking", async (_name, first, second) => {
    const body = json(bookingBody(h.bots.a));
    const headers = keyed();
    const before = h.platform.bookingsMade();
    const a = await first({ rpc: "book", body, headers });
    const b = await second({ rpc: "book", body, headers });
    expect([a.status, b.status].every((s) => s >= 200 && s < 300), a.text + b.text).toBe(true);
    const bookingA = first === viaRest ? a.json : unflatten(a.json);
    const bookingB = second === viaRest ? b.json : unflatten(b.json);
    expect(bookingB).toEqual(bookingA);
    expect(h.platform.bookingsMade()).toBe(before + 1);
  });
});
