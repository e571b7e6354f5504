/**
 * Strict input on every protocol: timestamps that name no real instant,
 * bytes that are not UTF-8 and values of the wrong shape are refused with
 * `invalid_request` and a message naming the field, and nothing reaches the
 * platform. JSON is checked on REST, Connect (unary, GET and streaming), gRPC
 * and gRPC-Web with the JSON codec; protobuf on Connect, gRPC and gRPC-Web.
 */
import { toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateBookingRequestSchema } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { parseSeed, SeedError } from "../src/store/seed.js";
import { bookingRequest } from "./support/clients.js";
import { send as http1 } from "./support/http1.js";
import { bookingBody, idempotencyKey, newPartnerKey, searchBody, startHarness, type Harness } from "./support/harness.js";
import { envelope, frame, H2, headersFor, outcomeOf, send, WIRE_PROTOCOLS, type Outcome, type WireProtocol } from "./support/wire.js";

const SEARCH = "/dialstack.partner.v1.AvailabilityService/SearchAvailability";
const STREAM = "/dialstack.partner.v1.AvailabilityService/StreamAvailability";
const BOOK = "/dialstack.partner.v1.BookingService/CreateBooking";

let h: Harness;
let h2: H2;
beforeAll(async () => {
  h = await startHarness();
  h2 = new H2(h.url);
});
afterAll(async () => {
  h2.close();
  await h.close();
});

const JSON_PROTOCOLS = WIRE_PROTOCOLS.filter((p) => p.codec === "json");
const PROTO_PROTOCOLS = WIRE_PROTOCOLS.filter((p) => p.codec === "proto");

/** What every route answers: the outcome as an RPC client sees it (REST: its status and code). */
interface Answer {
  readonly status: number;
  readonly reason: string | undefined;
  readonly message: string | undefined;
}

function answerOf(o: Outcome): Answer {
  return { status: o.httpStatus, reason: o.reason, message: o.message };
}

async function viaWire(p: WireProtocol, path: string, payload: Uint8Array, extra: Record<string, string> = {}): Promise<Answer> {
  const res = await send(p, h.url, h2, { path, headers: headersFor(p, { authorization: `Bearer ${h.keys.a}`, ...extra }), body: frame(p, payload) });
  return answerOf(outcomeOf(p.framing, res));
}

async function viaRest(path: "/v1/bookings" | "/v1/availability/search", payload: Uint8Array): Promise<Answer> {
  const res = await http1(h.url + path, {
    headers: { "content-type": "application/json", authorization: `Bearer ${h.keys.a}`, "idempotency-key": idempotencyKey() },
    body: Buffer.from(payload),
  });
  return { status: res.status, reason: res.json?.error?.code, message: res.json?.error?.message };
}

/** Every JSON route a request reaches the gateway by: REST, then each RPC protocol with the JSON codec. */
async function everyJsonRoute(kind: "book" | "search", json: string): Promise<[string, Answer][]> {
  const bytes = Buffer.from(json);
  const out: [string, Answer][] = [[`rest`, await viaRest(kind === "book" ? "/v1/bookings" : "/v1/availability/search", bytes)]];
  for (const p of JSON_PROTOCOLS) out.push([p.name, await viaWire(p, kind === "book" ? BOOK : SEARCH, bytes, { "idempotency-key": idempotencyKey() })]);
  return out;
}

function expectRefusedEverywhere(answers: [string, Answer][], field: string | RegExp): void {
  for (const [route, a] of answers) {
    expect({ route, reason: a.reason }).toEqual({ route, reason: "invalid_request" });
    if (route === "rest") expect(a.status, route).toBe(400);
    expect(a.message, route).toMatch(typeof field === "string" ? new RegExp(`^${field.replace(/[.[\]]/g, "\\$&")}\\b`) : field);
  }
}

function booking(startAt: unknown): string {
  const b = bookingBody(h.bots.a);
  return JSON.stringify({ ...b, booking: { ...b.booking, start_at: startAt } });
}

describe("timestamps that name no real instant", () => {
  it.each([
    ["2030-02-30T10:00:00Z", /2030-02 has no day 30/],
    ["2031-02-29T10:00:00Z", /2031-02 has no day 29/],
    ["2030-04-31T10:00:00Z", /has no day 31/],
    ["2030-01-07T24:00:00Z", /hour must be 00 to 23/],
    ["2030-01-07T10:60:00Z", /minute/],
    ["2030-01-07T10:00:60Z", /second/],
    ["2030-13-01T10:00:00Z", /no month 13/],
    ["2030-01-00T10:00:00Z", /has no day 00/],
    ["2030-01-07T10:00:00+24:00", /offset/],
    ["0000-12-31T10:00:00Z", /0001-01-01/],
    ["2030-01-07 10:00:00Z", /RFC 3339/],
    [1_900_000_000, /RFC 3339/],
  ])("booking.start_at %j: invalid_request naming the field, on every JSON route, nothing sent", async (value, why) => {
    const before = h.platform.received.length;
    const answers = await everyJsonRoute("book", booking(value));
    expectRefusedEverywhere(answers, "booking.start_at");
    for (const [, a] of answers) expect(a.message).toMatch(why);
    expect(h.platform.received.length).toBe(before);
  });

  it("a search's range end, in its camelCase spelling too", async () => {
    const body = searchBody(h.bots.a);
    const snake = JSON.stringify({ ...body, query: { filter: { start_at_range: { start_at: "2030-01-07T09:00:00Z", end_at: "2030-01-07T24:00:00Z" } } } });
    expectRefusedEverywhere(await everyJsonRoute("search", snake), "query.filter.start_at_range.end_at");
    const camel = JSON.stringify({ botId: h.bots.a, query: { filter: { startAtRange: { startAt: "2030-02-29T09:00:00Z", endAt: "2030-03-01T09:00:00Z" } } } });
    expectRefusedEverywhere(await everyJsonRoute("search", camel), "query.filter.start_at_range.start_at");
  });

  it("real instants at the edges are accepted: 29 February of a leap year, nanoseconds, offsets", async () => {
    for (const value of ["2032-02-29T10:00:00Z", "2030-12-31T23:59:59.123456789Z", "2030-01-07T10:00:00+05:30", "2030-01-07T10:00:00-23:59"]) {
      const res = await viaRest("/v1/bookings", Buffer.from(booking(value)));
      expect({ value, status: res.status }).toEqual({ value, status: 201 });
    }
  });

  it("Connect GET and a Connect JSON stream check the same way", async () => {
    const bad = { bot_id: h.bots.a, query: { filter: { start_at_range: { start_at: "2030-02-30T09:00:00Z", end_at: "2030-03-01T09:00:00Z" } } } };
    const query = new URLSearchParams({ connect: "v1", encoding: "json", message: JSON.stringify(bad) });
    const get = await http1(`${h.url}${SEARCH}?${query}`, { headers: { authorization: `Bearer ${h.keys.a}` } });
    expect({ status: get.status, message: get.json?.message }).toMatchObject({ status: 400, message: expect.stringMatching(/^query\.filter\.start_at_range\.start_at is not a valid timestamp/) });

    const streamed = await http1(h.url + STREAM, {
      headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", authorization: `Bearer ${h.keys.a}` },
      body: envelope(Buffer.from(JSON.stringify(bad))),
    });
    const end = JSON.parse(Buffer.from(streamed.text, "utf8").subarray(5).toString()) as { error?: { code: string; message: string } };
    expect(end.error).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^query\.filter\.start_at_range\.start_at is not a valid timestamp/) });
  });

  it.each(PROTO_PROTOCOLS.map((p) => [p.name, p] as const))("%s: seconds past 9999-12-31 are refused naming the field", async (_name, p) => {
    const req = bookingRequest(bookingBody(h.bots.a));
    req.booking!.startAt = { ...timestampFromMs(0), seconds: 253_402_300_800n };
    const a = await viaWire(p, BOOK, toBinary(CreateBookingRequestSchema, req), { "idempotency-key": idempotencyKey() });
    expect({ reason: a.reason, message: a.message }).toEqual({ reason: "invalid_request", message: "booking.start_at is not a valid timestamp" });
  });
});

describe("bytes that are not UTF-8", () => {
  /** A booking whose customer name is `João` with its `ã` cut to one byte of two. */
  function broken(json: boolean): Uint8Array {
    const body = bookingBody(h.bots.a);
    body.booking.customer.name = "Jo\u00e3o";
    const bytes = json ? Buffer.from(JSON.stringify(body)) : Buffer.from(toBinary(CreateBookingRequestSchema, bookingRequest(body)));
    const at = bytes.indexOf(Buffer.from("Jo\u00e3o"));
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] = 0x28; // 0xC3 0x28: a lead byte followed by ASCII
    return bytes;
  }

  it("JSON on every route: invalid_request, nothing booked", async () => {
    const before = h.platform.received.length;
    const answers: [string, Answer][] = [["rest", await viaRest("/v1/bookings", broken(true))]];
    for (const p of JSON_PROTOCOLS) answers.push([p.name, await viaWire(p, BOOK, broken(true), { "idempotency-key": idempotencyKey() })]);
    expectRefusedEverywhere(answers, /not valid UTF-8/);
    expect(h.platform.received.length).toBe(before);
  });

  it.each(PROTO_PROTOCOLS.map((p) => [p.name, p] as const))("protobuf over %s: invalid_request, nothing booked", async (_name, p) => {
    const before = h.platform.received.length;
    const a = await viaWire(p, BOOK, broken(false), { "idempotency-key": idempotencyKey() });
    expect(a.reason).toBe("invalid_request");
    expect(h.platform.received.length).toBe(before);
  });
});

describe("a UTF-8 byte order mark before a JSON body", () => {
  const withBom = (value: object) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(value))]);

  it("is ignored on every JSON route, as RFC 8259 allows: the search and the booking go through", async () => {
    const booked = h.platform.bookingsMade();
    const answers: [string, Answer][] = [
      ["rest search", await viaRest("/v1/availability/search", withBom(searchBody(h.bots.a)))],
      ["rest booking", await viaRest("/v1/bookings", withBom(bookingBody(h.bots.a)))],
    ];
    for (const p of JSON_PROTOCOLS) {
      answers.push([`${p.name} search`, await viaWire(p, SEARCH, withBom(searchBody(h.bots.a)))]);
      answers.push([`${p.name} booking`, await viaWire(p, BOOK, withBom(bookingBody(h.bots.a)), { "idempotency-key": idempotencyKey() })]);
    }
    for (const [route, a] of answers) {
      expect({ route, ...a }).toEqual({ route, status: route === "rest booking" ? 201 : 200, reason: undefined, message: undefined });
    }
    expect(h.platform.bookingsMade()).toBe(booked + 1 + JSON_PROTOCOLS.length);
  });
});

describe("values of the wrong shape name the field", () => {
  it.each([
    [{ start_at: "soon" }, /^booking\.start_at is not a valid timestamp/],
    [{ duration_minutes: "thirty" }, /^booking\.duration_minutes: expected number/],
    [{ customer: 5 }, /^booking\.customer must be an object/],
    [{ customer: { phone: 15551234567, name: "x" } }, /^booking\.customer\.phone: expected string/],
  ])("%j", async (change, message) => {
    const b = bookingBody(h.bots.a);
    const answers = await everyJsonRoute("book", JSON.stringify({ ...b, booking: { ...b.booking, ...change } }));
    expectRefusedEverywhere(answers, message);
    for (const [, a] of answers) expect(a.message).not.toMatch(/dialstack\.partner|google\.protobuf/);
  });
});

describe("partner keys on import", () => {
  const seed = (api_key: string) => ({ partners: [{ id: "p", name: "P", api_key }] });

  it.each(["sk_ptnr_1", "sk_ptnr_" + "a".repeat(31), "sk_ptnr_" + "a".repeat(31) + "+", "sk_ptnr_" + "é".repeat(32)])("refuses %j", (key) => {
    expect(() => parseSeed(seed(key))).toThrow(SeedError);
    expect(() => parseSeed(seed(key))).toThrow(/at least 32 random URL-safe characters/);
  });

  it("accepts sk_ptnr_ and 32 URL-safe characters or more, as the tests' and the admin command's keys are", () => {
    for (const key of [newPartnerKey(), "sk_ptnr_" + "a".repeat(32), "sk_ptnr_bench_0123456789abcdef0123456789abcdef", "sk_ptnr_" + "A-_9".repeat(10)]) {
      expect(parseSeed(seed(key)).partners[0]!.api_key).toBe(key);
    }
  });
});
