/**
 * REST on the documented partner paths, over plain HTTP/1.1: the partner
 * documentation's request samples work verbatim, the platform's answer is
 * passed through as sent (status and every field), every error a client can
 * cause, the framework's own included, comes back in the REST envelope, and
 * every response carries X-Request-Id.
 */
import { Writable } from "node:stream";
import type { AddressInfo } from "node:net";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOKING_SAMPLE, SEARCH_SAMPLE } from "../src/rest/openapi.js";
import { buildServer } from "../src/server/app.js";
import { corsOptions } from "../src/server/cors.js";
import { covers } from "./support/behaviour-matrix.js";
import { send, type HttpAnswer } from "./support/http1.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { WEBHOOK_TIMEOUT_MS: "1500" } });
  // The bot of the documentation's samples, owned by partner A.
  await h.gateway.directory.store.putBot({ id: SEARCH_SAMPLE.bot_id, partnerId: h.partners.a, accountId: h.accounts.a });
});
afterAll(() => h.close());

const auth = (key: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, ...extra });
const search = (body: unknown, headers: Record<string, string> = auth(h.keys.a)) => send(`${h.url}/v1/availability/search`, { headers, body });
const book = (body: unknown, headers: Record<string, string> = auth(h.keys.a, { "idempotency-key": idempotencyKey() })) =>
  send(`${h.url}/v1/bookings`, { headers, body });

/** Asserts the answer is exactly the REST error envelope with this status and code. */
function expectEnvelope(res: HttpAnswer, status: number, code: string): void {
  expect({ status: res.status, code: res.json?.error?.code }, res.text).toEqual({ status, code });
  expect(Object.keys(res.json)).toEqual(["error"]);
  expect(Object.keys(res.json.error).sort()).toEqual(["code", "message"]);
  expect(typeof res.json.error.message).toBe("string");
  expect(res.json.error.message.length).toBeGreaterThan(0);
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  expect(res.headers["x-request-id"]).toBeTruthy();
  expect(res.text).not.toMatch(/FST_|statusCode|"stack"|\n\s+at /);
}

describe("the documentation's request samples, verbatim", () => {
  it("searches availability", async () => {
    const before = h.platform.received.length;
    const res = await search(SEARCH_SAMPLE);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.json.availabilities.length).toBeGreaterThan(0);
    for (const a of res.json.availabilities) {
      expect(Object.keys(a).sort()).toEqual(["duration_minutes", "start_at"]);
      expect(a.start_at).toMatch(/^2024-01-15T\d\d:\d\d:\d\dZ$/);
    }
    const webhook = h.platform.received.slice(before);
    expect(webhook).toHaveLength(1);
    expect(webhook[0]!.body).toEqual({ account_id: h.accounts.a, query: SEARCH_SAMPLE.query });
  });

  it("creates a booking: 201 with the platform's booking", async () => {
    const key = idempotencyKey();
    const before = h.platform.received.length;
    const res = await book(BOOKING_SAMPLE, auth(h.keys.a, { "Idempotency-Key": key }));
    expect(res.status, res.text).toBe(201);
    expect(res.json.booking).toMatchObject({ status: "accepted", start_at: "2024-01-15T10:00:00Z", end_at: "2024-01-15T10:30:00Z" });
    expect(res.json.booking.customer).toEqual(BOOKING_SAMPLE.booking.customer);
    const webhook = h.platform.received.slice(before)[0]!;
    expect(webhook.body).toEqual({ account_id: h.accounts.a, idempotency_key: expect.stringMatching(/^idk_/), booking: BOOKING_SAMPLE.booking });

    // The same key again books nothing new and returns the same answer, marked as a replay.
    const again = await book(BOOKING_SAMPLE, auth(h.keys.a, { "Idempotency-Key": key }));
    expect({ status: again.status, replayed: again.headers["idempotent-replayed"], text: again.text }).toEqual({ status: 201, replayed: "true", text: res.text });
    expect(res.headers["idempotent-replayed"]).toBeUndefined();
    expect(h.platform.received.slice(before).filter((r) => r.path === "/bookings")).toHaveLength(1);
    covers("replay · booking", "rest");
  });
});

describe("pass-through of the platform's answer", () => {
  it("keeps fields beyond the schema, byte for byte", async () => {
    const answer = {
      availabilities: [{ start_at: "2030-01-07T09:00:00Z", duration_minutes: 30, provider: { id: "prv_1", name: "Dr. Rivera" }, room: 4 }],
      next_page: "p2",
      meta: { took_ms: 12, flags: [true, null, 1.5] },
    };
    h.script = (req) => (req.path === "/availability/search" ? { status: 200, body: answer } : undefined);
    const res = await search(searchBody(h.bots.a));
    expect(res.status).toBe(200);
    expect(res.text).toBe(JSON.stringify(answer));
  });

  it("replays a booking with the platform's bytes as they came, not as JSON would write them again", async () => {
    // Spacing, a trailing zero, escapes: what a platform may write and JSON.stringify would not.
    const text = `{\n  "booking": {"id": "bkg_bytes", "status": "accepted", "start_at": "2031-01-01T09:00:00Z", "price": 1.50, "note": "caf\\u00e9 \\/ \u00e9"}\n}\n`;
    h.script = (req) => (req.path === "/bookings" ? { status: 201, body: text } : undefined);
    const key = auth(h.keys.a, { "idempotency-key": idempotencyKey() });
    const body = bookingBody(h.bots.a);
    const first = await book(body, key);
    const again = await book(body, key);
    expect({ status: first.status, text: first.text }).toEqual({ status: 201, text });
    expect({ status: again.status, replayed: again.headers["idempotent-replayed"], text: again.text }).toEqual({ status: 201, replayed: "true", text });
  });

  it("answers the platform's 201 with 201 and its 200 with 200", async () => {
    const booking = { id: "bkg_x", status: "pending", start_at: "2031-01-01T09:00:00Z", extra: "kept" };
    h.script = () => ({ status: 201, body: { booking } });
    const created = await book(bookingBody(h.bots.a));
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ booking });
    h.script = () => ({ status: 200, body: { booking } });
    const ok = await book(bookingBody(h.bots.a));
    expect(ok.status).toBe(200);
    h.script = () => ({ status: 203, body: { availabilities: [] } });
    expect((await search(searchBody(h.bots.a))).status).toBe(203);
  });

  it("keeps the platform's error status and code", async () => {
    h.script = () => ({ status: 409, body: { error: { code: "slot_unavailable", message: "taken" } } });
    const res = await book(bookingBody(h.bots.a));
    expectEnvelope(res, 409, "slot_unavailable");
    expect(res.json.error.message).toBe("taken");
    covers("platform error pass-through · booking", "rest");
    h.script = () => ({ status: 422, body: { error: { code: "outside_hours", message: "closed then" } } });
    const searched = await search(searchBody(h.bots.a));
    expectEnvelope(searched, 422, "outside_hours");
    expect(searched.json.error.message).toBe("closed then");
    covers("platform error pass-through · search", "rest");
  });

  it("still validates: non-JSON and schema-breaking answers are platform_invalid_response", async () => {
    h.script = () => ({ status: 200, body: "<html>oops</html>" });
    expectEnvelope(await search(searchBody(h.bots.a)), 502, "platform_invalid_response");
    h.script = () => ({ status: 200, body: { availabilities: [{ start_at: 5, duration_minutes: 30 }] } });
    expectEnvelope(await search(searchBody(h.bots.a)), 502, "platform_invalid_response");
    h.script = () => ({ status: 201, body: { booking: "no" } });
    expectEnvelope(await book(bookingBody(h.bots.a)), 502, "platform_invalid_response");
  });
});

describe("errors the framework would answer by itself come in the envelope", () => {
  const paths = ["/v1/availability/search", "/v1/bookings"];

  it.each([["GET"], ["POST"], ["DELETE"]])("404 not_found: unknown path (%s)", async (method) => {
    for (const path of ["/nope", "/v1", "/v1/bookings/", "/v1/availability/search/extra", "/dialstack.partner.v1.AvailabilityService/Nope"]) {
      const res = await send(h.url + path, { method, headers: { "content-type": "application/json" }, body: method === "POST" ? "{bad" : undefined });
      expectEnvelope(res, 404, "not_found");
    }
  });

  it.each(paths)("405 method_not_allowed with Allow: %s", async (path) => {
    for (const method of ["GET", "PUT", "PATCH", "DELETE", "HEAD"]) {
      const res = await send(h.url + path, { method, headers: auth(h.keys.a) });
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe("POST");
      if (method !== "HEAD") expectEnvelope(res, 405, "method_not_allowed");
    }
  });

  it.each(paths)("415 unsupported_media_type: wrong or missing content type (%s)", async (path) => {
    const body = JSON.stringify(path.includes("search") ? searchBody(h.bots.a) : bookingBody(h.bots.a));
    for (const contentType of ["text/plain", "application/xml", "application/x-www-form-urlencoded", "application/jsonx", "application/grpc"]) {
      expectEnvelope(await send(h.url + path, { headers: auth(h.keys.a, { "content-type": contentType }), body }), 415, "unsupported_media_type");
    }
    // No content type, with a body and without one.
    expectEnvelope(await send(h.url + path, { method: "POST", headers: auth(h.keys.a), body }), 415, "unsupported_media_type");
    expectEnvelope(await send(h.url + path, { method: "POST", headers: auth(h.keys.a) }), 415, "unsupported_media_type");
  });

  it.each(paths)("400 invalid_request: malformed JSON (%s)", async (path) => {
    const before = h.platform.received.length;
    for (const body of ["{bad", "", "{\"bot_id\": ", "[1,2]", "42", "null", "\"text\""]) {
      expectEnvelope(await send(h.url + path, { headers: auth(h.keys.a, { "content-type": "application/json" }), body }), 400, "invalid_request");
    }
    expect(h.platform.received.length).toBe(before);
  });

  it.each(paths)("413 request_too_large (%s)", async (path) => {
    const before = h.platform.received.length;
    const big = JSON.stringify({ bot_id: h.bots.a, padding: "x".repeat(h.config.maxRequestBytes) });
    const headers = auth(h.keys.a, { "content-type": "application/json", "idempotency-key": idempotencyKey() });
    expectEnvelope(await send(h.url + path, { headers, body: big }), 413, "request_too_large");
    expect(h.platform.received.length).toBe(before);
    covers(path.includes("search") ? "size limit · search" : "size limit · booking", "rest");
  });

  it("accepts a gzip body; refuses other encodings, bad gzip and gzip that expands past the limit", async () => {
    const json = (headers: Record<string, string>) => auth(h.keys.a, { "content-type": "application/json", ...headers });
    const ok = await send(`${h.url}/v1/availability/search`, { headers: json({ "content-encoding": "gzip" }), body: gzipSync(JSON.stringify(searchBody(h.bots.a))) });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json.availabilities.length).toBeGreaterThan(0);
    const body = JSON.stringify(searchBody(h.bots.a));
    expectEnvelope(await send(`${h.url}/v1/availability/search`, { headers: json({ "content-encoding": "br" }), body }), 415, "unsupported_encoding");
    expectEnvelope(await send(`${h.url}/v1/availability/search`, { headers: json({ "content-encoding": "gzip" }), body }), 400, "invalid_request");
    const bomb = gzipSync(JSON.stringify({ bot_id: h.bots.a, padding: "x".repeat(h.config.maxRequestBytes * 4) }));
    expect(bomb.length).toBeLessThan(h.config.maxRequestBytes);
    expectEnvelope(await send(`${h.url}/v1/availability/search`, { headers: json({ "content-encoding": "gzip" }), body: bomb }), 413, "request_too_large");
  });

  it("400 invalid_request: a path that is not a valid URL", async () => {
    expectEnvelope(await send(`${h.url}/v1/%zz`), 400, "invalid_request");
  });

  it("Connect paths keep the Connect protocol's errors", async () => {
    const res = await send(`${h.url}/dialstack.partner.v1.AvailabilityService/SearchAvailability`, {
      headers: { "content-type": "application/json" },
      body: "{bad",
    });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe("invalid_argument");
    expect(res.json.details[0].debug.reason).toBe("invalid_request");
  });

  it("a content type no protocol accepts, on an RPC path, is 415 in the envelope, not the framework's shape", async () => {
    const res = await send(`${h.url}/dialstack.partner.v1.AvailabilityService/SearchAvailability`, {
      headers: { "content-type": "application/xml" },
      body: "<search/>",
    });
    expectEnvelope(res, 415, "unsupported_media_type");
  });
});

describe("the gateway's own errors", () => {
  it("401 unauthorized", async () => {
    const before = h.platform.received.length;
    expectEnvelope(await search(searchBody(h.bots.a), {}), 401, "unauthorized");
    expectEnvelope(await search(searchBody(h.bots.a), { authorization: "Basic abc" }), 401, "unauthorized");
    expectEnvelope(await search(searchBody(h.bots.a), auth("sk_ptnr_unknown")), 401, "unauthorized");
    covers("auth failure · search", "rest");
    const key = { "idempotency-key": idempotencyKey() };
    expectEnvelope(await book(bookingBody(h.bots.a), key), 401, "unauthorized");
    expectEnvelope(await book(bookingBody(h.bots.a), { authorization: "Basic abc", ...key }), 401, "unauthorized");
    expectEnvelope(await book(bookingBody(h.bots.a), auth("sk_ptnr_unknown", key)), 401, "unauthorized");
    expect(h.platform.received.length).toBe(before);
    covers("auth failure · booking", "rest");
  });

  it("404 bot_not_found", async () => {
    const before = h.platform.received.length;
    expectEnvelope(await search(searchBody("bot_nope")), 404, "bot_not_found");
    const foreign = await search(searchBody(h.bots.b));
    expectEnvelope(foreign, 404, "bot_not_found");
    expect((await search(searchBody(h.bots.b), auth(h.keys.b))).status).toBe(200);
    covers("bot ownership · search", "rest");
    const unknownBooking = await book(bookingBody("bot_nope"));
    const foreignBooking = await book(bookingBody(h.bots.b));
    expectEnvelope(foreignBooking, 404, "bot_not_found");
    expect(foreignBooking.json.error.message.replace(h.bots.b, "X")).toBe(unknownBooking.json.error.message.replace("bot_nope", "X"));
    expect(h.platform.received.length).toBe(before + 1);
    covers("bot ownership · booking", "rest");
  });

  it("400 invalid_request names the field", async () => {
    const res = await search({ bot_id: h.bots.a, query: { filter: {} } });
    expectEnvelope(res, 400, "invalid_request");
    expect(res.json.error.message).toContain("start_at_range");
    covers("validation · search", "rest");
    const b = bookingBody(h.bots.a);
    b.booking.duration_minutes = 0;
    const booking = await book(b);
    expectEnvelope(booking, 400, "invalid_request");
    expect(booking.json.error.message).toContain("booking.duration_minutes");
    covers("validation · booking", "rest");
  });

  it("400 invalid_request: a booking's customer.phone that is not E.164, and nothing is booked", async () => {
    const before = h.platform.received.length;
    for (const phone of ["call me maybe", "555-1234", "+1 (555) 123-4567"]) {
      const body = bookingBody(h.bots.a);
      body.booking.customer.phone = phone;
      const res = await book(body);
      expectEnvelope(res, 400, "invalid_request");
      expect(res.json.error.message).toContain("booking.customer.phone");
    }
    expect(h.platform.received.length).toBe(before);
  });

  it("400 idempotency_key_invalid: missing or too long", async () => {
    expectEnvelope(await book(bookingBody(h.bots.a), auth(h.keys.a)), 400, "idempotency_key_invalid");
    expectEnvelope(await book(bookingBody(h.bots.a), auth(h.keys.a, { "idempotency-key": "k".repeat(256) })), 400, "idempotency_key_invalid");
  });

  it("422 webhook_not_configured", async () => {
    expectEnvelope(await search(searchBody(h.bots.noWebhook)), 422, "webhook_not_configured");
  });

  it("504 platform_timeout, sooner with X-Server-Timeout", async () => {
    h.script = () => ({ status: 200, body: { availabilities: [] }, delayMs: 4000 });
    const started = Date.now();
    expectEnvelope(await search(searchBody(h.bots.a), auth(h.keys.a, { "x-server-timeout": "0.3" })), 504, "platform_timeout");
    expect(Date.now() - started).toBeLessThan(1200);
    expectEnvelope(await search(searchBody(h.bots.a), auth(h.keys.a, { "x-server-timeout": "soon" })), 400, "invalid_request");
    covers("server deadline · search", "rest");
  });

  it("504 platform_timeout for a booking past X-Server-Timeout", async () => {
    h.script = (req) => (req.path === "/bookings" ? { status: 201, body: { booking: { id: "bkg_late", status: "accepted" } }, delayMs: 3000 } : undefined);
    const started = Date.now();
    expectEnvelope(await book(bookingBody(h.bots.a), auth(h.keys.a, { "idempotency-key": idempotencyKey(), "x-server-timeout": "0.3" })), 504, "platform_timeout");
    expect(Date.now() - started).toBeLessThan(1200);
    covers("server deadline · booking", "rest");
  });
});

describe("X-Request-Id", () => {
  it("is echoed when sent and generated otherwise, on successes and errors", async () => {
    const ok = await search(searchBody(h.bots.a), auth(h.keys.a, { "x-request-id": "req-ok-1" }));
    expect(ok.headers["x-request-id"]).toBe("req-ok-1");
    const err = await search(searchBody("bot_nope"), auth(h.keys.a, { "x-request-id": "req-err-1" }));
    expect(err.headers["x-request-id"]).toBe("req-err-1");
    const missing = await send(`${h.url}/nope`, { headers: { "x-request-id": "req-404" } });
    expect(missing.headers["x-request-id"]).toBe("req-404");
    const generated = await search(searchBody(h.bots.a));
    expect(generated.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const badUrl = await send(`${h.url}/v1/%zz`, { headers: { "x-request-id": "req-bad-url" } });
    expect(badUrl.headers["x-request-id"]).toBe("req-bad-url");
  });

  it("is logged with the request", async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const app = await buildServer(h.gateway, { logger: { level: "info", stream } });
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      await send(`${url}/v1/availability/search`, { headers: { ...auth(h.keys.a), "x-request-id": "req-logged-1" }, body: searchBody("bot_nope") });
      await expect.poll(() => lines.map((l) => JSON.parse(l)).find((l) => l.reqId === "req-logged-1" && l.status === 404)).toBeTruthy();
      expect(lines.join("")).not.toContain(h.keys.a);
    } finally {
      await app.close();
    }
  });
});

describe("CORS", () => {
  it("answers a browser preflight for the REST headers", async () => {
    const res = await send(`${h.url}/v1/bookings`, {
      method: "OPTIONS",
      headers: { origin: "https://tool.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,idempotency-key,x-request-id,content-type" },
    });
    expect(res.status).toBe(204);
    const allowed = String(res.headers["access-control-allow-headers"]).toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(["authorization", "idempotency-key", "x-request-id", "content-type", "connect-protocol-version"]));
    expect(res.headers["access-control-allow-methods"]).toContain("POST");
  });

  it("puts the same CORS headers on every answer, and the preflight's on preflights only, over HTTP/1.1 and HTTP/2", async () => {
    const simple = { "access-control-allow-origin": "*", "access-control-expose-headers": (corsOptions.exposedHeaders as string[]).join(", ") };
    const preflight = {
      ...simple,
      "access-control-allow-methods": (corsOptions.methods as string[]).join(", "),
      "access-control-allow-headers": (corsOptions.allowedHeaders as string[]).join(", "),
      "access-control-max-age": "7200",
    };
    const rpc = `${h.url}/dialstack.partner.v1.AvailabilityService/SearchAvailability`;
    const origin = { origin: "https://tool.example" };
    const cases: [string, Promise<HttpAnswer>, number, Record<string, string>][] = [
      ["REST search", search(searchBody(h.bots.a)), 200, simple],
      ["REST search from a page", search(searchBody(h.bots.a), auth(h.keys.a, origin)), 200, simple],
      ["REST without a key", search(searchBody(h.bots.a), {}), 401, simple],
      ["Connect JSON", send(rpc, { headers: { ...auth(h.keys.a), "content-type": "application/json" }, body: searchBody(h.bots.a) }), 200, simple],
      ["unknown path", send(`${h.url}/nope`, { method: "GET" }), 404, simple],
      ["probe", send(`${h.url}/healthz`, { method: "GET" }), 200, simple],
      ["REST preflight", send(`${h.url}/v1/bookings`, { method: "OPTIONS", headers: { ...origin, "access-control-request-method": "POST" } }), 204, preflight],
      ["RPC preflight", send(rpc, { method: "OPTIONS", headers: { ...origin, "access-control-request-method": "POST" } }), 204, preflight],
      ["bare OPTIONS", send(`${h.url}/v1/bookings`, { method: "OPTIONS" }), 204, preflight],
    ];
    for (const [name, answer, status, expected] of cases) {
      const res = await answer;
      expect(res.status, name).toBe(status);
      const cors = Object.fromEntries(Object.entries(res.headers).filter(([k]) => k.startsWith("access-control-")));
      expect(cors, name).toEqual(expected);
      expect(res.headers.vary, name).toBeUndefined();
    }
    const session = http2.connect(h.url);
    try {
      for (const [method, status, expected] of [["POST", 401, simple], ["OPTIONS", 204, preflight]] as const) {
        const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const req = session.request({ ":method": method, ":path": "/v1/availability/search", "content-type": "application/json", ...origin, "access-control-request-method": "POST" });
          req.on("response", resolve).on("error", reject);
          req.end(method === "POST" ? "{}" : undefined);
          req.resume();
        });
        expect(headers[":status"], method).toBe(status);
        expect(Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith("access-control-"))), method).toEqual(expected);
      }
    } finally {
      session.close();
    }
  });

  it("exposes the gateway's response headers", async () => {
    const res = await search(searchBody(h.bots.a), auth(h.keys.a, { origin: "https://tool.example" }));
    expect(res.headers["access-control-allow-origin"]).toBe("*");
    const exposed = String(res.headers["access-control-expose-headers"]).toLowerCase().split(/,\s*/);
    expect(exposed).toEqual(expect.arrayContaining(["idempotent-replayed", "retry-after", "x-request-id", "grpc-status"]));
  });
});

it("answers a body it cannot read over HTTP/2 without a connection header (Node would warn and drop it)", async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on("warning", onWarning);
  const session = http2.connect(h.url);
  try {
    for (const body of ["{not json", "x".repeat(h.config.maxRequestBytes + 1)]) {
      const answer = await new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": "/v1/availability/search", "content-type": "application/json", authorization: `Bearer ${h.keys.a}` });
        let headers: http2.IncomingHttpHeaders = {};
        let text = "";
        req.on("response", (hd) => (headers = hd));
        req.on("data", (c: Buffer) => (text += c.toString()));
        req.on("end", () => resolve({ status: Number(headers[":status"]), headers, body: text }));
        req.on("error", reject);
        req.end(body);
      });
      expect([400, 413]).toContain(answer.status);
      expect(JSON.parse(answer.body).error.code).toMatch(/^(invalid_request|request_too_large)$/);
      expect(answer.headers.connection).toBeUndefined();
    }
    await new Promise((r) => setImmediate(r));
    expect(warnings.filter((w) => /connection header/i.test(w))).toEqual([]);
  } finally {
    process.off("warning", onWarning);
    session.close();
  }
});

it("serves REST over HTTP/2 on the same port", async () => {
  const session = http2.connect(h.url);
  try {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": "/v1/availability/search", "content-type": "application/json", authorization: `Bearer ${h.keys.a}` });
      let status = 0;
      let body = "";
      req.on("response", (headers) => (status = Number(headers[":status"])));
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => resolve({ status, body }));
      req.on("error", reject);
      req.end(JSON.stringify(searchBody(h.bots.a)));
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).availabilities.length).toBeGreaterThan(0);
  } finally {
    session.close();
  }
});
