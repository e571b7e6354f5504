/**
 * Bytes on the wire, every protocol: what an RPC library would never send
 * (broken JSON, broken protobuf, truncated envelopes, oversized bodies) is
 * answered with `invalid_request` or `request_too_large` and an ErrorInfo,
 * never a 500; gzip bodies are accepted; the Connect GET form works for the
 * no-side-effect method; `connect-timeout-ms` and `grpc-timeout` bound a call.
 */
import { gzipSync } from "node:zlib";
import { toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SearchAvailabilityRequestSchema } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { CreateBookingRequestSchema } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { covers } from "./support/behaviour-matrix.js";
import { bookingRequest, searchRequest } from "./support/clients.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";
import { envelope, frame, grpcWebTrailer, H2, h1, headersFor, outcomeOf, send, WIRE_PROTOCOLS, type Outcome, type RawRequest, type WireProtocol } from "./support/wire.js";

const SEARCH = "/dialstack.partner.v1.AvailabilityService/SearchAvailability";
const BOOK = "/dialstack.partner.v1.BookingService/CreateBooking";
const LIMIT = 4096;

let h: Harness;
let h2: H2;

beforeAll(async () => {
  h = await startHarness({ env: { MAX_REQUEST_BYTES: String(LIMIT) } });
  h2 = new H2(h.url);
});
afterAll(async () => {
  h2.close();
  await h.close();
});

function encode(p: WireProtocol, json: unknown): Buffer {
  return p.codec === "json" ? Buffer.from(JSON.stringify(json)) : Buffer.from(toBinary(SearchAvailabilityRequestSchema, searchRequest(json)));
}

function encodeBooking(p: WireProtocol, json: unknown): Buffer {
  return p.codec === "json" ? Buffer.from(JSON.stringify(json)) : Buffer.from(toBinary(CreateBookingRequestSchema, bookingRequest(json)));
}

async function call(p: WireProtocol, req: RawRequest, timeoutMs?: number): Promise<Outcome> {
  const res = await send(p, h.url, h2, req, timeoutMs);
  expect(res.status, `${p.name}: HTTP status`).not.toBe(500);
  return outcomeOf(p.framing, res);
}

const auth = () => ({ authorization: `Bearer ${h.keys.a}` });

describe.each(WIRE_PROTOCOLS)("$name", (p) => {
  const search = (body: Uint8Array, extra: Record<string, string> = {}, options: { gzip?: boolean } = {}) =>
    call(p, { path: SEARCH, headers: headersFor(p, { ...auth(), ...extra }, options), body });

  it("answers a well-formed request (the raw framing is right)", async () => {
    expect(await search(frame(p, encode(p, searchBody(h.bots.a))))).toMatchObject({ code: "ok" });
  });

  it(`malformed ${p.codec} body: invalid_request`, async () => {
    const broken = p.codec === "json" ? Buffer.from('{"bot_id": "bot_a", "query": {') : Buffer.from([0x0a, 0x05, 0x62]);
    expect(await search(frame(p, broken))).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
    const wrongShape = p.codec === "json" ? Buffer.from('{"bot_id": 12, "query": "soon"}') : Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(await search(frame(p, wrongShape))).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
  });

  it("empty body: an error of the model, not a crash", async () => {
    const outcome = await search(Buffer.alloc(0));
    // An empty body is a valid empty message in Connect, and no message at all in gRPC.
    expect(outcome).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
  });

  if (p.framing !== "connect") {
    it("truncated envelope: invalid_request", async () => {
      const payload = encode(p, searchBody(h.bots.a));
      expect(await search(envelope(payload, 0, payload.length + 100))).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
      expect(await search(Buffer.from([0, 0, 0]))).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
    });

    it("two messages for a unary method, or a compressed flag without an encoding: invalid_request", async () => {
      const payload = encode(p, searchBody(h.bots.a));
      expect(await search(Buffer.concat([envelope(payload), envelope(payload)]))).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
      expect(await search(envelope(payload, 1))).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
    });
  }

  it(`body over MAX_REQUEST_BYTES (${LIMIT}): request_too_large`, async () => {
    const big = { ...searchBody(h.bots.a), bot_id: "b".repeat(LIMIT + 100) };
    expect(await search(frame(p, encode(p, big)))).toMatchObject({ code: "resource_exhausted", reason: "request_too_large" });
    covers("size limit · search", p);
  });

  it(`booking over MAX_REQUEST_BYTES (${LIMIT}): request_too_large, nothing sent`, async () => {
    const before = h.platform.received.length;
    const big = bookingBody(h.bots.a);
    big.booking.notes = "n".repeat(LIMIT + 100);
    const headers = headersFor(p, { ...auth(), "idempotency-key": idempotencyKey() });
    expect(await call(p, { path: BOOK, headers, body: frame(p, encodeBooking(p, big)) })).toMatchObject({
      code: "resource_exhausted",
      reason: "request_too_large",
    });
    expect(h.platform.received.length).toBe(before);
    covers("size limit · booking", p);
  });

  it("gzip-compressed request: accepted", async () => {
    expect(await search(frame(p, encode(p, searchBody(h.bots.a)), { gzip: true }), {}, { gzip: true })).toMatchObject({ code: "ok" });
  });

  it("gzip that inflates past the limit, or is corrupt: request_too_large / invalid_request", async () => {
    const bomb = { ...searchBody(h.bots.a), bot_id: "b".repeat(LIMIT * 50) };
    expect(await search(frame(p, encode(p, bomb), { gzip: true }), {}, { gzip: true })).toMatchObject({
      code: "resource_exhausted",
      reason: "request_too_large",
    });
    const zipped = gzipSync(encode(p, searchBody(h.bots.a)));
    const truncated = zipped.subarray(0, zipped.length - 8);
    const corrupt = p.framing === "connect" ? truncated : envelope(truncated, 1);
    expect(await search(corrupt, {}, { gzip: true })).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
  });

  it("an unknown compression is refused as unimplemented, with ErrorInfo", async () => {
    const header = p.framing === "connect" ? "content-encoding" : "grpc-encoding";
    const body = p.framing === "connect" ? encode(p, searchBody(h.bots.a)) : envelope(encode(p, searchBody(h.bots.a)), 1);
    expect(await search(body, { [header]: "snappy" })).toMatchObject({ code: "unimplemented", reason: "unsupported_encoding" });
  });

  it("honours the client's deadline header: the server answers platform_timeout", async () => {
    h.script = () => ({ status: 200, body: { availabilities: [] }, delayMs: 3000 });
    const header: Record<string, string> = p.framing === "connect" ? { "connect-timeout-ms": "300" } : { "grpc-timeout": "300m" };
    const started = Date.now();
    const outcome = await search(frame(p, encode(p, searchBody(h.bots.a))), header);
    expect(outcome).toMatchObject({ code: "deadline_exceeded", reason: "platform_timeout" });
    expect(Date.now() - started).toBeLessThan(1500);
    covers("server deadline · search", p);
  });

  it("a malformed deadline header: invalid_request", async () => {
    const header: Record<string, string> = p.framing === "connect" ? { "connect-timeout-ms": "soon" } : { "grpc-timeout": "1 fortnight" };
    expect(await search(frame(p, encode(p, searchBody(h.bots.a))), header)).toMatchObject({ code: "invalid_argument", reason: "invalid_request" });
  });

  it("reaches the booking method too: its key is required, then it books", async () => {
    const payload = encodeBooking(p, bookingBody(h.bots.a));
    const withoutKey = await call(p, { path: BOOK, headers: headersFor(p, auth()), body: frame(p, payload) });
    expect(withoutKey).toMatchObject({ code: "invalid_argument", reason: "idempotency_key_invalid" });
    const booked = await call(p, { path: BOOK, headers: headersFor(p, { ...auth(), "idempotency-key": idempotencyKey() }), body: frame(p, payload) });
    expect(booked.code).toBe("ok");
  });
});

describe("Connect GET for SearchAvailability (NO_SIDE_EFFECTS)", () => {
  const get = (query: string, headers: Record<string, string> = auth()) => ({ method: "GET", path: `${SEARCH}?${query}`, headers });

  it.each([1, 2] as const)("JSON in the query string over HTTP/%i", async (version) => {
    const message = encodeURIComponent(JSON.stringify(searchBody(h.bots.a)));
    const res = version === 1 ? await h1(h.url, get(`connect=v1&encoding=json&message=${message}`)) : await h2.request(get(`connect=v1&encoding=json&message=${message}`));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString()).availabilities.length).toBeGreaterThan(0);
  });

  it("base64 protobuf, and gzip-compressed", async () => {
    const binary = toBinary(SearchAvailabilityRequestSchema, searchRequest(searchBody(h.bots.a)));
    const plain = await h1(h.url, get(`connect=v1&encoding=proto&base64=1&message=${Buffer.from(binary).toString("base64url")}`));
    expect(plain.status).toBe(200);
    const zipped = gzipSync(Buffer.from(JSON.stringify(searchBody(h.bots.a)))).toString("base64url");
    const compressed = await h1(h.url, get(`connect=v1&encoding=json&base64=1&compression=gzip&message=${zipped}`));
    expect(compressed.status).toBe(200);
  });

  it("errors keep the model: no key, broken message, broken base64", async () => {
    const message = encodeURIComponent(JSON.stringify(searchBody(h.bots.a)));
    expect(outcomeOf("connect", await h1(h.url, get(`connect=v1&encoding=json&message=${message}`, {})))).toMatchObject({
      code: "unauthenticated",
      reason: "unauthorized",
    });
    expect(outcomeOf("connect", await h1(h.url, get(`connect=v1&encoding=json&message=%7Bnot`)))).toMatchObject({
      code: "invalid_argument",
      reason: "invalid_request",
    });
    expect(outcomeOf("connect", await h1(h.url, get(`connect=v1&encoding=proto&base64=1&message=%C3%A5%00`)))).toMatchObject({
      code: "invalid_argument",
      reason: "invalid_request",
    });
  });

  it("is not offered for CreateBooking: 405 with Allow and the Connect error body", async () => {
    const message = encodeURIComponent(JSON.stringify(bookingBody(h.bots.a)));
    const res = await h1(h.url, { method: "GET", path: `${BOOK}?connect=v1&encoding=json&message=${message}`, headers: auth() });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("POST");
    expect(outcomeOf("connect", res)).toMatchObject({ httpStatus: 405, code: "unimplemented", reason: "method_not_allowed" });
  });
});

describe("refusals connect-es answers without a body carry the error body", () => {
  it("405: a method no protocol serves (PUT), over HTTP/1.1 and HTTP/2", async () => {
    for (const res of [
      await h1(h.url, { method: "PUT", path: SEARCH, headers: { ...auth(), "content-type": "application/json" }, body: Buffer.from("{}") }),
      await h2.request({ method: "PUT", path: SEARCH, headers: { ...auth(), "content-type": "application/json" }, body: Buffer.from("{}") }),
    ]) {
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe("POST, GET");
      expect(outcomeOf("connect", res)).toMatchObject({ code: "unimplemented", reason: "method_not_allowed" });
    }
  });

  it("415: a content type the method's protocols do not accept", async () => {
    const res = await h1(h.url, { path: SEARCH, headers: { ...auth(), "content-type": "application/json; charset=latin1" }, body: Buffer.from("{}") });
    expect(res.status).toBe(415);
    expect(outcomeOf("connect", res)).toMatchObject({ code: "invalid_argument", reason: "unsupported_media_type" });
  });
});

describe("gRPC and gRPC-Web specifics", () => {
  const grpcFramings = WIRE_PROTOCOLS.filter((p) => p.framing !== "connect");

  it.each(grpcFramings)("$name: grpc-message is percent-encoded as the gRPC spec says (only non-printable bytes and %)", async (p) => {
    h.script = () => ({ status: 409, body: { error: { code: "slot_unavailable", message: "slot 10:00 taken: 100% booked, déjà" } } });
    const res = await send(p, h.url, h2, { path: SEARCH, headers: headersFor(p, auth()), body: frame(p, encode(p, searchBody(h.bots.a))) });
    const trailer = p.framing === "grpc" ? { ...res.headers, ...res.trailers } : Object.fromEntries(grpcWebTrailer(res.body)!);
    expect(trailer["grpc-message"]).toBe("slot 10:00 taken: 100%25 booked, d%C3%A9j%C3%A0");
    expect(outcomeOf(p.framing, res)).toMatchObject({ code: "already_exists", reason: "slot_unavailable", message: "slot 10:00 taken: 100% booked, déjà" });
  });

  it.each(grpcFramings)("$name: an unknown method is unimplemented (grpc-status 12), not an HTTP 404", async (p) => {
    const res = await send(p, h.url, h2, { path: "/dialstack.partner.v1.NoSuchService/Nothing", headers: headersFor(p, auth()), body: frame(p, Buffer.alloc(0)) });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe(p.contentType);
    // gRPC reads the status from the trailers, gRPC-Web (no trailers in browsers) from the headers.
    const status = p.framing === "grpc" ? res.trailers : res.headers;
    expect(status["grpc-status"]).toBe("12");
    expect(status["grpc-message"]).toBe("unknown method: /dialstack.partner.v1.NoSuchService/Nothing");
  });
});
