/**
 * Caller recognition on every protocol: REST passes the platform's answer
 * through as sent, Connect (JSON, binary, GET), gRPC and gRPC-Web get the
 * typed answer with every undocumented field in `platform_fields`, and a bot
 * session answers `lookup_customer` operations by request_id. On each: a known
 * and an unknown caller, another partner's bot, an account without webhook, the
 * platform's errors, a platform without the lookup webhook
 * (`customer_lookup_not_supported`) and phone numbers that are not E.164. The
 * platform receives exactly the documented body, headers and signature, every
 * time: nothing is cached.
 */
import { Code, createClient } from "@connectrpc/connect";
import { createNodeHttpClient } from "@connectrpc/connect-node";
import { validateReadWriteMaxBytes, type UniversalClientFn } from "@connectrpc/connect/protocol";
import { createTransport } from "@connectrpc/connect/protocol-connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CALLER, type PlatformReply, type ReceivedWebhook } from "../src/demo/reference-platform.js";
import { CustomerService } from "../src/gen/dialstack/partner/v1/customer_pb.js";
import type { ConverseResponse } from "../src/gen/dialstack/partner/v1/session_pb.js";
import { verifySignature } from "../src/platform/signature.js";
import { covers } from "./support/behaviour-matrix.js";
import { bearer, clientsFor, expectRpcError, HTTP2_PROTOCOLS, lookupRequest, RPC_PROTOCOLS, type RpcClients } from "./support/clients.js";
import { send, type HttpAnswer } from "./support/http1.js";
import { lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";
import { lookup, openSession, search, start } from "./support/session-client.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ store: "redis", env: { WEBHOOK_TIMEOUT_MS: "500" } });
});
afterAll(() => h.close());

const UNKNOWN = "+15550100999";
const LOOKUP = "/v1/customers/lookup";

/** A platform answer for a known caller, with fields the documentation does not list at every level. */
const RICH_ANSWER = {
  found: true,
  customer: {
    name: "Jane Roe",
    phone: DEMO_CALLER.phone,
    customer_id: "cus_42",
    existing_appointment: { start_at: "2030-01-08T10:00:00Z", end_at: "2030-01-08T10:30:00Z", status: "confirmed", provider: "Dr. Rivera" },
  },
  source: "crm",
};

const onLookup = (reply: PlatformReply) => (req: ReceivedWebhook) => (req.path === "/customers/lookup" ? reply : undefined);

/** The lookup webhooks the platform received since `before`. */
function lookupsSince(before: number): ReceivedWebhook[] {
  return h.platform.received.slice(before).filter((w) => w.path === "/customers/lookup");
}

/** Asserts the webhook is exactly the documented lookup: path, headers, a valid signature, and the body. */
function expectLookupWebhook(w: ReceivedWebhook, phone: string, account = h.accounts.a): void {
  expect(w.path).toBe("/customers/lookup");
  expect(w.headers["content-type"]).toBe("application/json");
  expect(w.headers["x-dialstack-account-id"]).toBe(account);
  expect(w.headers["x-dialstack-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  expect(verifySignature(h.secret, w.headers["x-dialstack-signature"] as string, w.rawBody)).toEqual({ ok: true });
  expect(w.rawBody).toBe(JSON.stringify({ account_id: account, customer: { phone } }));
}

/** Phone numbers that are not E.164, and an absent customer. */
const BAD_PHONES: readonly [string, unknown][] = [
  ["customer missing", { bot_id: "bot_a" }],
  ["phone missing", { bot_id: "bot_a", customer: {} }],
  ["phone empty", lookupBody("bot_a", "")],
  ["words", lookupBody("bot_a", "call me maybe")],
  ["no plus", lookupBody("bot_a", "15551234567")],
  ["spaces", lookupBody("bot_a", "+1 555 123 4567")],
  ["dashes", lookupBody("bot_a", "+1-555-123-4567")],
  ["too short", lookupBody("bot_a", "+1555123")],
  ["too long", lookupBody("bot_a", "+1555123456789012")],
  ["country code 0", lookupBody("bot_a", "+05551234567")],
  ["non-ASCII digits", lookupBody("bot_a", "+１５５５１２３４５６７")],
  ["trailing newline", lookupBody("bot_a", "+15551234567\n")],
];

/** Ways a platform says it has no lookup webhook. */
const NOT_IMPLEMENTED: readonly [string, PlatformReply][] = [
  ["404 with a framework's HTML page", { status: 404, body: "<html><body>Cannot POST /dialstack/customers/lookup</body></html>" }],
  ["404 with an empty body", { status: 404, body: "" }],
  ["404 with a framework's JSON", { status: 404, body: { message: "Route POST:/dialstack/customers/lookup not found", statusCode: 404 } }],
  ["404 envelope not_found", { status: 404, body: { error: { code: "not_found", message: "no webhook at /customers/lookup" } } }],
  ["501", { status: 501, body: { error: { code: "not_implemented", message: "customer lookup is not implemented" } } }],
];

describe("REST: POST /v1/customers/lookup", () => {
  const auth = (key = h.keys.a) => ({ authorization: `Bearer ${key}` });
  const post = (body: unknown, headers: Record<string, string> = auth()) => send(h.url + LOOKUP, { headers, body });

  function expectEnvelope(res: HttpAnswer, status: number, code: string): void {
    expect({ status: res.status, code: res.json?.error?.code }, res.text).toEqual({ status, code });
    expect(Object.keys(res.json.error).sort()).toEqual(["code", "message"]);
    expect(res.headers["x-request-id"]).toBeTruthy();
  }

  it("recognises the platform's known caller, and sends exactly the documented webhook", async () => {
    const before = h.platform.received.length;
    const res = await post(lookupBody(h.bots.a, DEMO_CALLER.phone));
    expect(res.status, res.text).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.json).toEqual({
      found: true,
      customer: {
        name: DEMO_CALLER.name,
        phone: DEMO_CALLER.phone,
        existing_appointment: { start_at: expect.stringMatching(/T10:00:00Z$/), end_at: expect.stringMatching(/T10:30:00Z$/), status: "confirmed" },
      },
    });
    const sent = h.platform.received.slice(before);
    expect(sent).toHaveLength(1);
    expectLookupWebhook(sent[0]!, DEMO_CALLER.phone);
  });

  it("answers an unknown caller with the platform's found: false", async () => {
    const res = await post(lookupBody(h.bots.a, UNKNOWN));
    expect(res.status).toBe(200);
    expect(res.text).toBe('{"found":false}');
  });

  it("passes the platform's answer through as sent: every field, and its status", async () => {
    h.script = onLookup({ status: 200, body: RICH_ANSWER });
    const res = await post(lookupBody(h.bots.a, DEMO_CALLER.phone));
    expect(res.status).toBe(200);
    expect(res.text).toBe(JSON.stringify(RICH_ANSWER));
    h.script = onLookup({ status: 203, body: { found: false, hint: "try email" } });
    const other = await post(lookupBody(h.bots.a, UNKNOWN));
    expect({ status: other.status, text: other.text }).toEqual({ status: 203, text: '{"found":false,"hint":"try email"}' });
  });

  it("asks the platform every time: nothing is cached", async () => {
    const before = h.platform.received.length;
    h.script = onLookup({ status: 200, body: { found: false } });
    expect((await post(lookupBody(h.bots.a, DEMO_CALLER.phone))).json).toEqual({ found: false });
    h.script = onLookup({ status: 200, body: RICH_ANSWER });
    expect((await post(lookupBody(h.bots.a, DEMO_CALLER.phone))).json).toEqual(RICH_ANSWER);
    const sent = lookupsSince(before);
    expect(sent).toHaveLength(2);
    for (const w of sent) expectLookupWebhook(w, DEMO_CALLER.phone);
  });

  it("relays for the bot's own account: partner B's bot, partner B's account", async () => {
    const before = h.platform.received.length;
    const res = await post(lookupBody(h.bots.b, UNKNOWN), auth(h.keys.b));
    expect(res.status).toBe(200);
    expectLookupWebhook(lookupsSince(before)[0]!, UNKNOWN, h.accounts.b);
  });

  it("401 unauthorized, 404 bot_not_found for another partner's bot, 422 webhook_not_configured; nothing reaches the platform", async () => {
    const before = h.platform.received.length;
    expectEnvelope(await post(lookupBody(h.bots.a, DEMO_CALLER.phone), {}), 401, "unauthorized");
    const foreign = await post(lookupBody(h.bots.b, DEMO_CALLER.phone));
    const unknown = await post(lookupBody("bot_nope", DEMO_CALLER.phone));
    expectEnvelope(foreign, 404, "bot_not_found");
    expectEnvelope(unknown, 404, "bot_not_found");
    expect(foreign.json.error.message.replace(h.bots.b, "X")).toBe(unknown.json.error.message.replace("bot_nope", "X"));
    expectEnvelope(await post(lookupBody(h.bots.noWebhook, DEMO_CALLER.phone)), 422, "webhook_not_configured");
    expectEnvelope(await post({ customer: { phone: DEMO_CALLER.phone } }), 400, "invalid_request");
    expect(h.platform.received.length).toBe(before);
    covers("auth failure · lookup", "rest");
    covers("bot ownership · lookup", "rest");
  });

  it.each(BAD_PHONES)("400 invalid_request naming customer.phone: %s", async (_name, body) => {
    const before = h.platform.received.length;
    const res = await post({ ...(body as object), bot_id: h.bots.a });
    expectEnvelope(res, 400, "invalid_request");
    expect(res.json.error.message).toMatch(/^customer(\.phone)? /);
    expect(h.platform.received.length).toBe(before);
    covers("validation · lookup", "rest");
  });

  it.each(NOT_IMPLEMENTED)("501 customer_lookup_not_supported: the platform answers %s", async (_name, reply) => {
    h.script = onLookup(reply);
    const res = await post(lookupBody(h.bots.a, DEMO_CALLER.phone));
    expectEnvelope(res, 501, "customer_lookup_not_supported");
    expect(res.json.error.message).toContain("does not implement customer lookup");
  });

  it.each([
    [404, "account_not_found"],
    [400, "invalid_payload"],
    [409, "customer_locked"],
    [429, "too_many"],
    [500, "configuration_error"],
  ] as const)("passes the platform's own error envelope through: %i %s", async (status, code) => {
    h.script = onLookup({ status, body: { error: { code, message: `platform says ${code}` } } });
    const res = await post(lookupBody(h.bots.a, DEMO_CALLER.phone));
    expectEnvelope(res, status, code);
    expect(res.json.error.message).toBe(`platform says ${code}`);
    covers("platform error pass-through · lookup", "rest");
  });

  it("502 platform_rejected when the platform refuses the gateway (401/403)", async () => {
    for (const status of [401, 403]) {
      h.script = onLookup({ status, body: { error: { code: "invalid_signature", message: "bad signature" } } });
      const res = await post(lookupBody(h.bots.a, DEMO_CALLER.phone));
      expectEnvelope(res, 502, "platform_rejected");
      expect(res.json.error.message).toContain(`(${status} invalid_signature)`);
    }
    covers("platform rejected · lookup", "rest");
  });

  it("502 platform_invalid_response, 502 platform_unavailable, 504 platform_timeout", async () => {
    for (const body of ["<html>oops</html>", { customer: { name: "Jane" } }, { found: "yes" }, { found: true, customer: { existing_appointment: { start_at: "tomorrow" } } }]) {
      h.script = onLookup({ status: 200, body });
      expectEnvelope(await post(lookupBody(h.bots.a, DEMO_CALLER.phone)), 502, "platform_invalid_response");
    }
    h.script = onLookup({ status: 0, reset: true });
    expectEnvelope(await post(lookupBody(h.bots.a, DEMO_CALLER.phone)), 502, "platform_unavailable");
    h.script = onLookup({ status: 200, body: { found: false }, delayMs: 1500 });
    expectEnvelope(await post(lookupBody(h.bots.a, DEMO_CALLER.phone)), 504, "platform_timeout");
  });

  it("405 on other methods", async () => {
    const res = await send(h.url + LOOKUP, { method: "GET", headers: auth() });
    expectEnvelope(res, 405, "method_not_allowed");
    expect(res.headers.allow).toBe("POST");
  });
});

describe.each(RPC_PROTOCOLS)("%s", (protocol) => {
  let c: RpcClients;
  beforeAll(() => {
    c = clientsFor(protocol, h.url);
  });
  const call = (body: unknown, key = h.keys.a) => c.customer.lookupCustomer(lookupRequest(body), bearer(key));

  it("recognises a known caller through the signed webhook", async () => {
    const before = h.platform.received.length;
    const res = await call(lookupBody(h.bots.a, DEMO_CALLER.phone));
    expect(res.found).toBe(true);
    expect(res.customer?.name).toBe(DEMO_CALLER.name);
    expect(res.customer?.phone).toBe(DEMO_CALLER.phone);
    expect(res.customer?.existingAppointment?.status).toBe("confirmed");
    const sent = h.platform.received.slice(before);
    expect(sent).toHaveLength(1);
    expectLookupWebhook(sent[0]!, DEMO_CALLER.phone);
  });

  it("answers found: false for an unknown caller", async () => {
    const res = await call(lookupBody(h.bots.a, UNKNOWN));
    expect(res.found).toBe(false);
    expect(res.customer).toBeUndefined();
  });

  it("types the documented fields and keeps the others in platform_fields, at every level", async () => {
    h.script = onLookup({ status: 200, body: RICH_ANSWER });
    let headers: Headers | undefined;
    const res = await c.customer.lookupCustomer(lookupRequest(lookupBody(h.bots.a, DEMO_CALLER.phone)), { ...bearer(h.keys.a), onHeader: (x) => (headers = x) });
    expect(res.found).toBe(true);
    expect(res.platformFields).toEqual({ source: "crm" });
    expect(res.customer?.platformFields).toEqual({ customer_id: "cus_42" });
    const appointment = res.customer?.existingAppointment;
    expect(appointment?.startAt).toEqual(timestampFromMs(Date.parse("2030-01-08T10:00:00Z")));
    expect(appointment?.endAt).toEqual(timestampFromMs(Date.parse("2030-01-08T10:30:00Z")));
    expect(appointment?.platformFields).toEqual({ provider: "Dr. Rivera" });
    expect(headers?.get("cache-control")).toBe("no-store");
  });

  it("asks the platform on every call", async () => {
    const before = h.platform.received.length;
    await call(lookupBody(h.bots.a, UNKNOWN));
    await call(lookupBody(h.bots.a, UNKNOWN));
    expect(lookupsSince(before)).toHaveLength(2);
  });

  it("bot_not_found for another partner's bot, like an unknown one; webhook_not_configured; unauthorized", async () => {
    const before = h.platform.received.length;
    const foreign = await expectRpcError(call(lookupBody(h.bots.b, DEMO_CALLER.phone)), Code.NotFound, "bot_not_found");
    const unknown = await expectRpcError(call(lookupBody("bot_nope", DEMO_CALLER.phone)), Code.NotFound, "bot_not_found");
    expect(foreign.rawMessage.replace(h.bots.b, "X")).toBe(unknown.rawMessage.replace("bot_nope", "X"));
    await expectRpcError(call(lookupBody(h.bots.noWebhook, DEMO_CALLER.phone)), Code.FailedPrecondition, "webhook_not_configured");
    await expectRpcError(c.customer.lookupCustomer(lookupRequest(lookupBody(h.bots.a, DEMO_CALLER.phone))), Code.Unauthenticated, "unauthorized");
    expect(h.platform.received.length).toBe(before);
    covers("auth failure · lookup", protocol);
    covers("bot ownership · lookup", protocol);
  });

  it.each(BAD_PHONES)("invalid_request naming the field: %s", async (_name, body) => {
    const before = h.platform.received.length;
    const e = await expectRpcError(call({ ...(body as object), bot_id: h.bots.a }), Code.InvalidArgument, "invalid_request");
    expect(e.rawMessage).toMatch(/^customer(\.phone)? /);
    expect(h.platform.received.length).toBe(before);
    covers("validation · lookup", protocol);
  });

  it.each(NOT_IMPLEMENTED)("customer_lookup_not_supported (unimplemented): the platform answers %s", async (_name, reply) => {
    h.script = onLookup(reply);
    await expectRpcError(call(lookupBody(h.bots.a, DEMO_CALLER.phone)), Code.Unimplemented, "customer_lookup_not_supported");
  });

  it.each([
    [404, "account_not_found", Code.NotFound],
    [400, "invalid_payload", Code.InvalidArgument],
    [429, "too_many", Code.ResourceExhausted],
    [500, "configuration_error", Code.Unavailable],
  ] as const)("the platform's error envelope %i %s", async (status, code, connectCode) => {
    h.script = onLookup({ status, body: { error: { code, message: `platform says ${code}` } } });
    const e = await expectRpcError(call(lookupBody(h.bots.a, DEMO_CALLER.phone)), connectCode, code);
    expect(e.rawMessage).toBe(`platform says ${code}`);
    covers("platform error pass-through · lookup", protocol);
  });

  it("platform_rejected when the platform refuses the gateway (401/403); the partner's key is not blamed", async () => {
    for (const status of [401, 403]) {
      h.script = onLookup({ status, body: { error: { code: "invalid_signature", message: "bad signature" } } });
      const e = await expectRpcError(call(lookupBody(h.bots.a, DEMO_CALLER.phone)), Code.FailedPrecondition, "platform_rejected");
      expect(e.rawMessage).toContain(`(${status} invalid_signature)`);
    }
    covers("platform rejected · lookup", protocol);
  });

  it("platform_invalid_response, platform_unavailable, platform_timeout", async () => {
    h.script = onLookup({ status: 200, body: { customer: {} } });
    await expectRpcError(call(lookupBody(h.bots.a, DEMO_CALLER.phone)), Code.Unavailable, "platform_invalid_response");
    h.script = onLookup({ status: 0, reset: true });
    await expectRpcError(call(lookupBody(h.bots.a, DEMO_CALLER.phone)), Code.Unavailable, "platform_unavailable");
    h.script = onLookup({ status: 200, body: { found: false }, delayMs: 1500 });
    await expectRpcError(call(lookupBody(h.bots.a, DEMO_CALLER.phone)), Code.DeadlineExceeded, "platform_timeout");
  });
});

describe("Connect GET (the method has no side effects)", () => {
  const PATH = "/dialstack.partner.v1.CustomerService/LookupCustomer";

  it.each([
    ["JSON", false],
    ["binary", true],
  ] as const)("a connect-es client with useHttpGet sends a GET and gets the answer (%s)", async (_name, useBinaryFormat) => {
    // The Connect transport of connect-node, with the HTTP method of each request on the wire recorded.
    const methods: string[] = [];
    const node = createNodeHttpClient({ httpVersion: "1.1" });
    const httpClient: UniversalClientFn = (req) => {
      methods.push(req.method);
      return node(req);
    };
    const transport = createTransport({
      baseUrl: h.url,
      httpClient,
      useHttpGet: true,
      useBinaryFormat,
      interceptors: [],
      acceptCompression: [],
      sendCompression: null,
      ...validateReadWriteMaxBytes(undefined, undefined, undefined),
    });
    const before = h.platform.received.length;
    const res = await createClient(CustomerService, transport).lookupCustomer(lookupRequest(lookupBody(h.bots.a, DEMO_CALLER.phone)), bearer(h.keys.a));
    expect(methods).toEqual(["GET"]);
    expect(res.customer?.name).toBe(DEMO_CALLER.name);
    expectLookupWebhook(h.platform.received.slice(before)[0]!, DEMO_CALLER.phone);
  });

  it("answers a plain GET with no-store, so no browser or proxy cache keeps it", async () => {
    const message = encodeURIComponent(JSON.stringify(lookupBody(h.bots.a, DEMO_CALLER.phone)));
    const url = `${h.url}${PATH}?connect=v1&encoding=json&message=${message}`;
    const before = h.platform.received.length;
    const first = await send(url, { headers: { authorization: `Bearer ${h.keys.a}` } });
    const second = await send(url, { headers: { authorization: `Bearer ${h.keys.a}` } });
    for (const res of [first, second]) {
      expect(res.status, res.text).toBe(200);
      expect(res.headers["cache-control"]).toBe("no-store");
      expect(res.json).toMatchObject({ found: true, customer: { name: DEMO_CALLER.name } });
    }
    expect(lookupsSince(before)).toHaveLength(2);
    const bad = await send(`${h.url}${PATH}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(lookupBody(h.bots.a, "555")))}`, {
      headers: { authorization: `Bearer ${h.keys.a}` },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.details[0].debug.reason).toBe("invalid_request");
  });
});

describe.each(HTTP2_PROTOCOLS)("bot session, %s", (protocol) => {
  const summary = (answers: ConverseResponse[]) =>
    Object.fromEntries(answers.map((a) => [a.requestId, a.result.case === "error" ? `error:${a.result.value.code}` : a.result.case]));

  it("answers lookup_customer operations by request_id, out of order, with exactly the documented webhook", async () => {
    const SLOW = "+15550100777";
    h.script = (req) => (req.path === "/customers/lookup" && (req.body as any)?.customer?.phone === SLOW ? { status: 200, body: { found: false }, delayMs: 300 } : undefined);
    const s = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    s.send(start("start", h.bots.a));
    expect((await s.next()).result.case).toBe("started");
    const before = h.platform.received.length;
    s.send(lookup("slow", { customer: { phone: SLOW } }));
    s.send(lookup("known", { customer: { phone: DEMO_CALLER.phone } }));
    s.send(lookup("same-bot", { bot_id: h.bots.a, customer: { phone: UNKNOWN } }));
    s.send(search("search", { query: searchBody(h.bots.a).query }));
    s.close();
    const answers = await s.rest();
    expect(summary(answers)).toEqual({ slow: "lookupCustomer", known: "lookupCustomer", "same-bot": "lookupCustomer", search: "searchAvailability" });
    expect(answers.at(-1)!.requestId).toBe("slow");
    const byId = new Map(answers.map((a) => [a.requestId, a.result]));
    const known = byId.get("known")!;
    expect(known.case === "lookupCustomer" && known.value.found && known.value.customer?.name).toBe(DEMO_CALLER.name);
    const unknown = byId.get("same-bot")!;
    expect(unknown.case === "lookupCustomer" && unknown.value.found).toBe(false);
    const sent = lookupsSince(before);
    expect(sent.map((w) => (w.body as any).customer.phone).sort()).toEqual([SLOW, DEMO_CALLER.phone, UNKNOWN].sort());
    for (const w of sent) expectLookupWebhook(w, (w.body as any).customer.phone);
  });

  it("a failed lookup is an error answer and the session goes on", async () => {
    h.script = (req) => {
      if (req.path !== "/customers/lookup") return undefined;
      const phone = (req.body as any)?.customer?.phone;
      if (phone === "+15550100404") return { status: 404, body: "Not Found" };
      if (phone === "+15550100409") return { status: 404, body: { error: { code: "account_not_found", message: "gone" } } };
      if (phone === "+15550100502") return { status: 200, body: { found: "maybe" } };
      if (phone === "+15550100504") return { status: 200, body: { found: false }, delayMs: 1500 };
      return undefined;
    };
    const s = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    s.send(start("start", h.bots.a));
    expect((await s.next()).result.case).toBe("started");
    const before = h.platform.received.length;
    s.send(lookup("bad-phone", { customer: { phone: "call me maybe" } }));
    s.send(lookup("no-customer", {}));
    s.send(lookup("other-bot", { bot_id: h.bots.b, customer: { phone: DEMO_CALLER.phone } }));
    s.send(lookup("not-supported", { customer: { phone: "+15550100404" } }));
    s.send(lookup("platform-error", { customer: { phone: "+15550100409" } }));
    s.send(lookup("invalid-answer", { customer: { phone: "+15550100502" } }));
    s.send(lookup("timeout", { customer: { phone: "+15550100504" } }));
    s.send(lookup("after", { customer: { phone: DEMO_CALLER.phone } }));
    s.close();
    const answers = await s.rest();
    expect(summary(answers)).toEqual({
      "bad-phone": "error:invalid_request",
      "no-customer": "error:invalid_request",
      "other-bot": "error:invalid_request",
      "not-supported": "error:customer_lookup_not_supported",
      "platform-error": "error:account_not_found",
      "invalid-answer": "error:platform_invalid_response",
      timeout: "error:platform_timeout",
      after: "lookupCustomer",
    });
    const messages = Object.fromEntries(answers.map((a) => [a.requestId, a.result.case === "error" ? a.result.value.message : ""]));
    expect(messages["bad-phone"]).toMatch(/^customer\.phone /);
    expect(messages["no-customer"]).toMatch(/^customer /);
    expect(messages["other-bot"]).toContain("lookup_customer.bot_id");
    // Only the operations that passed their checks reached the platform.
    expect(lookupsSince(before)).toHaveLength(5);
  });

  it("the request_id discipline: required, and not reused while in flight", async () => {
    h.script = onLookup({ status: 200, body: { found: false }, delayMs: 300 });
    const s = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    s.send(start("start", h.bots.a));
    expect((await s.next()).result.case).toBe("started");
    s.send(lookup("", { customer: { phone: UNKNOWN } }));
    s.send(lookup("twice", { customer: { phone: UNKNOWN } }));
    s.send(lookup("twice", { customer: { phone: UNKNOWN } }));
    s.close();
    const answers = (await s.rest()).map((a) => [a.requestId, a.result.case === "error" ? `error:${a.result.value.code}` : a.result.case]);
    expect(answers).toEqual([
      ["", "error:invalid_request"],
      ["twice", "error:duplicate_request_id"],
      ["twice", "lookupCustomer"],
    ]);
  });
});

it("without a platform script, the reference platform recognises only its demo caller", async () => {
  const c = clientsFor("grpc", h.url);
  expect((await c.customer.lookupCustomer(lookupRequest(lookupBody(h.bots.a, DEMO_CALLER.phone)), bearer(h.keys.a))).found).toBe(true);
  expect((await c.customer.lookupCustomer(lookupRequest(lookupBody(h.bots.a, "+14155550124")), bearer(h.keys.a))).found).toBe(false);
});
