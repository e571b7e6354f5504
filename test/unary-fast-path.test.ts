/**
 * The unary fast path (src/rpc/unary-fast-path.ts) is taken exactly when its
 * rule says so and `UNARY_FAST_PATH` is on, and it answers byte for byte as
 * connect-es's general handler does: the same requests, sent to a gateway
 * with the path on and to one with it off, get the same answers (the raw
 * bytes of HTTP/1.1 answers; status, headers, body and trailers over HTTP/2),
 * successes and every kind of error alike.
 */
import net from "node:net";
import { toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";
import { DEMO_CALLER } from "../src/demo/reference-platform.js";
import { SearchAvailabilityRequestSchema } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { CreateBookingRequestSchema } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { LookupCustomerRequestSchema } from "../src/gen/dialstack/partner/v1/customer_pb.js";
import { unaryFastPathCalls } from "../src/rpc/unary-fast-path.js";
import { bookingRequest, lookupRequest, searchRequest } from "./support/clients.js";
import { bookingBody, lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";
import { startPeerGateway, type PeerGateway } from "./support/peer-gateway.js";
import { envelope, frame, H2, headersFor, send, WIRE_PROTOCOLS, type RawRequest, type RawResponse, type WireProtocol } from "./support/wire.js";

const SEARCH = "/dialstack.partner.v1.AvailabilityService/SearchAvailability";
const LOOKUP = "/dialstack.partner.v1.CustomerService/LookupCustomer";
const BOOK = "/dialstack.partner.v1.BookingService/CreateBooking";
const STREAM = "/dialstack.partner.v1.AvailabilityService/StreamAvailability";
const HEALTH = "/grpc.health.v1.Health/Check";
const LIMIT = 4096;

let h: Harness;
let fast: PeerGateway;
let general: PeerGateway;
const sessions = new Map<string, H2>();

beforeAll(async () => {
  h = await startHarness({ env: { MAX_REQUEST_BYTES: String(LIMIT) } });
  fast = await startPeerGateway(h, { unaryFastPath: true });
  general = await startPeerGateway(h, { unaryFastPath: false });
});
afterAll(async () => {
  for (const s of sessions.values()) s.close();
  await fast?.close();
  await general?.close();
  await h?.close();
});

function h2(url: string): H2 {
  let s = sessions.get(url);
  if (s === undefined) sessions.set(url, (s = new H2(url)));
  return s;
}

type Kind = "search" | "lookup" | "book";

function encode(p: WireProtocol, kind: Kind, json: unknown): Buffer {
  if (p.codec === "json") return Buffer.from(JSON.stringify(json));
  switch (kind) {
    case "search":
      return Buffer.from(toBinary(SearchAvailabilityRequestSchema, searchRequest(json)));
    case "lookup":
      return Buffer.from(toBinary(LookupCustomerRequestSchema, lookupRequest(json)));
    case "book":
      return Buffer.from(toBinary(CreateBookingRequestSchema, bookingRequest(json)));
  }
}

const REQUEST_ID = { "x-request-id": "fast-path-differential" };
const auth = () => ({ authorization: `Bearer ${h.keys.a}`, ...REQUEST_ID });

/** A search answer of many slots: over the 1 KiB from which answers are compressed. */
const MANY_SLOTS = {
  status: 200,
  body: {
    availabilities: Array.from({ length: 60 }, (_, i) => ({
      start_at: new Date(Date.UTC(2030, 0, 7, 9) + i * 15 * 60_000).toISOString().replace(".000Z", "Z"),
      duration_minutes: 15,
    })),
  },
};

interface Case {
  readonly name: string;
  readonly request: (p: WireProtocol) => RawRequest;
  readonly script?: Harness["script"];
  readonly only?: (p: WireProtocol) => boolean;
}

const call = (path: string, kind: Kind, json: unknown, extra: Record<string, string> = {}) => (p: WireProtocol) => ({
  path,
  headers: headersFor(p, { ...auth(), ...extra }),
  body: frame(p, encode(p, kind, json)),
});

const deadline = (p: WireProtocol, ms: number): Record<string, string> => (p.framing === "connect" ? { "connect-timeout-ms": String(ms) } : { "grpc-timeout": `${ms}m` });

const CASES: readonly Case[] = [
  { name: "a search", request: (p) => call(SEARCH, "search", searchBody(h.bots.a))(p) },
  { name: "a caller lookup", request: (p) => call(LOOKUP, "lookup", lookupBody(h.bots.a, DEMO_CALLER.phone))(p) },
  { name: "a health check (no key)", request: (p) => ({ path: HEALTH, headers: headersFor(p, REQUEST_ID), body: frame(p, p.codec === "json" ? Buffer.from("{}") : Buffer.alloc(0)) }) },
  {
    // connect-node cannot make the call's URL from it: whatever the general path answers, the fast path must too.
    name: "a Host that is no URL's authority",
    request: (p) => ({ path: HEALTH, headers: headersFor(p, { ...REQUEST_ID, host: "gateway:99999" }), body: frame(p, p.codec === "json" ? Buffer.from("{}") : Buffer.alloc(0)) }),
    only: (p) => p.httpVersion === 1,
  },
  { name: "no partner key", request: (p) => ({ ...call(SEARCH, "search", searchBody(h.bots.a))(p), headers: headersFor(p, REQUEST_ID) }) },
  { name: "another partner's bot", request: (p) => call(SEARCH, "search", searchBody(h.bots.b))(p) },
  { name: "a bot id that is not ASCII", request: (p) => call(SEARCH, "search", searchBody("bøt_ünknown % 100"))(p) },
  {
    name: "a timestamp that is no instant",
    request: (p) => call(SEARCH, "search", { bot_id: h.bots.a, query: { filter: { start_at_range: { start_at: "2030-01-07T09:00:00Z", end_at: "2030-01-01T09:00:00Z" } } } })(p),
  },
  { name: "a booking without an idempotency key", request: (p) => call(BOOK, "book", bookingBody(h.bots.a))(p) },
  { name: "a body that does not decode", request: (p) => ({ path: SEARCH, headers: headersFor(p, auth()), body: frame(p, p.codec === "json" ? Buffer.from('{"bot_id": ') : Buffer.from([0xff, 0xff, 0xff])) }) },
  { name: "an empty body", request: (p) => ({ path: SEARCH, headers: headersFor(p, auth()), body: Buffer.alloc(0) }) },
  { name: "a body over the limit", request: (p) => ({ path: SEARCH, headers: headersFor(p, auth()), body: frame(p, Buffer.alloc(LIMIT + 10, 0x20)) }) },
  {
    name: "two messages, or a truncated one",
    only: (p) => p.framing !== "connect",
    request: (p) => {
      const payload = encode(p, "search", searchBody(h.bots.a));
      return { path: SEARCH, headers: headersFor(p, auth()), body: Buffer.concat([envelope(payload), envelope(payload, 0, payload.length + 3)]) };
    },
  },
  { name: "a compressed request", request: (p) => ({ path: SEARCH, headers: headersFor(p, auth(), { gzip: true }), body: frame(p, encode(p, "search", searchBody(h.bots.a)), { gzip: true }) }) },
  { name: "a malformed deadline", request: (p) => call(SEARCH, "search", searchBody(h.bots.a), p.framing === "connect" ? { "connect-timeout-ms": "soon" } : { "grpc-timeout": "1x" })(p) },
  {
    name: "a deadline the platform misses",
    script: () => ({ status: 200, body: { availabilities: [] }, delayMs: 400 }),
    request: (p) => call(SEARCH, "search", searchBody(h.bots.a), deadline(p, 60))(p),
  },
  { name: "a deadline that is met", request: (p) => call(SEARCH, "search", searchBody(h.bots.a), deadline(p, 5000))(p) },
  {
    name: "a platform error",
    script: () => ({ status: 409, body: { error: { code: "calendar_locked", message: "the calendar is locked: réessayez" } } }),
    request: (p) => call(SEARCH, "search", searchBody(h.bots.a))(p),
  },
  {
    name: "a large answer to a client that takes gzip",
    script: () => MANY_SLOTS,
    request: (p) => call(SEARCH, "search", searchBody(h.bots.a), p.framing === "connect" ? { "accept-encoding": "gzip" } : { "grpc-accept-encoding": "gzip" })(p),
  },
  {
    name: "a large answer to a client that takes no compression we know",
    script: () => MANY_SLOTS,
    request: (p) => call(SEARCH, "search", searchBody(h.bots.a), p.framing === "connect" ? { "accept-encoding": "zstd" } : { "grpc-accept-encoding": "zstd" })(p),
  },
];

/** One HTTP/1.1 exchange on its own connection: every byte the server sent. */
function rawH1(url: string, req: RawRequest): Promise<Buffer> {
  const { port } = new URL(url);
  const body = Buffer.from(req.body ?? new Uint8Array(0));
  const { host = "gateway", ...headers } = req.headers ?? {};
  const head = [`${req.method ?? "POST"} ${req.path} HTTP/1.1`, `Host: ${host}`, "Connection: close", `Content-Length: ${body.length}`];
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(port), "127.0.0.1", () => socket.end(Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n", "latin1"), body])));
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer within 10 s")));
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks)));
  });
}

/** An answer without what differs between any two answers (the date). */
function comparable(p: WireProtocol, raw: Buffer | RawResponse): unknown {
  if (Buffer.isBuffer(raw)) return raw.toString("latin1").replace(/^Date: .*\r\n/im, "");
  const { date: _date, ...headers } = raw.headers;
  return { status: raw.status, headers, trailers: raw.trailers, body: raw.body.toString(p.codec === "json" ? "utf8" : "base64") };
}

async function answer(p: WireProtocol, url: string, req: RawRequest): Promise<unknown> {
  return comparable(p, p.httpVersion === 1 ? await rawH1(url, req) : await send(p, url, h2(url), req));
}

describe("the fast path answers as the general handler", () => {
  describe.each(WIRE_PROTOCOLS)("$name", (p) => {
    for (const c of CASES.filter((c) => c.only?.(p) ?? true)) {
      it(c.name, async () => {
        h.script = c.script;
        const req = c.request(p);
        const before = unaryFastPathCalls();
        const viaGeneral = await answer(p, general.url, req);
        expect(unaryFastPathCalls(), "the general gateway took the fast path").toBe(before);
        const viaFast = await answer(p, fast.url, req);
        expect(viaFast).toEqual(viaGeneral);
      });
    }
  });
});

describe("the rule", () => {
  /** How many calls `request` made the fast path answer, on the harness's own gateway. */
  async function taken(p: WireProtocol, req: RawRequest): Promise<number> {
    const before = unaryFastPathCalls();
    await send(p, h.url, h2(h.url), req);
    return unaryFastPathCalls() - before;
  }
  const expected = (n: number) => (h.config.unaryFastPath ? n : 0);

  it.each(WIRE_PROTOCOLS)("a well-formed unary call on $name takes the fast path when it is on, and only then", async (p) => {
    expect(await taken(p, call(SEARCH, "search", searchBody(h.bots.a))(p))).toBe(expected(1));
    expect(await taken(p, call(LOOKUP, "lookup", lookupBody(h.bots.a, DEMO_CALLER.phone))(p))).toBe(expected(1));
    // An error of the call itself is still answered by the fast path.
    expect(await taken(p, call(SEARCH, "search", searchBody(h.bots.b))(p))).toBe(expected(1));
  });

  it.each(WIRE_PROTOCOLS)("on $name, a compressed request, a body that does not decode and a streaming call take the general path", async (p) => {
    const compressed = { path: SEARCH, headers: headersFor(p, auth(), { gzip: true }), body: frame(p, encode(p, "search", searchBody(h.bots.a)), { gzip: true }) };
    expect(await taken(p, compressed)).toBe(0);
    expect(await taken(p, { path: SEARCH, headers: headersFor(p, auth()), body: frame(p, Buffer.from([0xff, 0xff, 0xff])) })).toBe(0);
    const streaming: WireProtocol = p.framing === "connect" ? { ...p, contentType: `application/connect+${p.codec}` } : p;
    const body = encode(p, "search", searchBody(h.bots.a));
    expect(await taken(p, { path: STREAM, headers: headersFor(streaming, auth()), body: p.framing === "connect" ? envelope(body) : frame(p, body) })).toBe(0);
  });

  it("a Connect GET takes the general path", async () => {
    const p = WIRE_PROTOCOLS[0]!;
    const message = encodeURIComponent(JSON.stringify(searchBody(h.bots.a)));
    expect(await taken(p, { method: "GET", path: `${SEARCH}?encoding=json&message=${message}`, headers: auth() })).toBe(0);
  });
});

describe("a request whose authority makes no URL", () => {
  // connect-node builds each call's URL from the authority and throws on one like this; the RPC routes refuse
  // it first, as a bad request in the REST envelope (src/server/authority.ts), on every wire protocol and path.
  it.each(WIRE_PROTOCOLS)("on $name is a 400 invalid_request", async (p) => {
    const authority: Record<string, string> = p.httpVersion === 1 ? { host: "gateway:99999" } : { ":authority": "gateway:99999" };
    const res = await send(p, h.url, h2(h.url), {
      path: HEALTH,
      headers: headersFor(p, { ...REQUEST_ID, ...authority }),
      body: frame(p, p.codec === "json" ? Buffer.from("{}") : Buffer.alloc(0)),
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString("utf8"))).toMatchObject({ error: { code: "invalid_request" } });
  });
});

describe("a caller that hangs up mid-call", () => {
  // The platform holds its answer for 5 s; the caller gives up after 1 s.
  // The webhook must be cancelled then (the platform sees its request closed
  // before it answered), not left to finish: HTTP/1.1 callers close the
  // connection, HTTP/2 callers reset the stream with CANCEL.
  it.each(WIRE_PROTOCOLS)("on $name cancels the webhook in flight", async (p) => {
    let arrived!: () => void;
    const webhookArrived = new Promise<void>((resolve) => (arrived = resolve));
    h.script = () => {
      arrived();
      return { status: 200, body: { availabilities: [] }, delayMs: 5000 };
    };
    const abortedBefore = h.platform.aborted;
    const session = new H2(h.url);
    try {
      const outcome = send(p, h.url, session, call(SEARCH, "search", searchBody(h.bots.a))(p), 1000).then(
        () => "answered",
        () => "hung up",
      );
      await webhookArrived;
      expect(await outcome).toBe("hung up");
      await expect.poll(() => h.platform.aborted - abortedBefore, { timeout: 3000, interval: 50 }).toBe(1);
    } finally {
      session.close();
    }
  });
});

describe("UNARY_FAST_PATH", () => {
  it("is on by default, off with off, and refuses anything else", () => {
    expect(loadConfig({}, { fdLimit: 1024 }).unaryFastPath).toBe(true);
    expect(loadConfig({ UNARY_FAST_PATH: "on" }, { fdLimit: 1024 }).unaryFastPath).toBe(true);
    expect(loadConfig({ UNARY_FAST_PATH: "off" }, { fdLimit: 1024 }).unaryFastPath).toBe(false);
    expect(() => loadConfig({ UNARY_FAST_PATH: "no" }, { fdLimit: 1024 })).toThrow(ConfigError);
  });
});
