/**
 * The gateway spine on every RPC protocol: search and booking succeed, the
 * platform receives exactly the documented webhook, and every error of the
 * error model reaches the client with its Connect code and ErrorInfo reason.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { covers } from "./support/behaviour-matrix.js";
import { bearer, bookingRequest, clientsFor, deadlineHeaders, expectRpcError, RPC_PROTOCOLS, searchRequest, type RpcClients } from "./support/clients.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";
import { documentedSignatureValid } from "./support/webhook-signature.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { WEBHOOK_TIMEOUT_MS: "1000" } });
});
afterAll(() => h.close());

describe.each(RPC_PROTOCOLS)("%s", (protocol) => {
  let c: RpcClients;
  beforeAll(() => {
    c = clientsFor(protocol, h.url);
  });

  it("searches availability through the signed webhook", async () => {
    const before = h.platform.received.length;
    const res = await c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a));
    expect(res.availabilities.length).toBeGreaterThan(0);
    expect(res.availabilities[0]!.durationMinutes).toBe(30);
    const sent = h.platform.received.slice(before);
    expect(sent).toHaveLength(1);
    const webhook = sent[0]!;
    expect(webhook.path).toBe("/availability/search");
    expect(webhook.headers["content-type"]).toBe("application/json");
    expect(webhook.headers["x-dialstack-account-id"]).toBe(h.accounts.a);
    expect(documentedSignatureValid(h.secret, webhook.headers["x-dialstack-signature"], webhook.rawBody)).toBe(true);
    expect(JSON.parse(webhook.rawBody)).toEqual({
      account_id: h.accounts.a,
      query: { filter: { start_at_range: { start_at: "2030-01-07T09:00:00Z", end_at: "2030-01-07T12:00:00Z" } } },
    });
  });

  it("books a slot, forwarding a per-partner idempotency key", async () => {
    const body = bookingBody(h.bots.a);
    const key = idempotencyKey();
    const before = h.platform.received.length;
    const res = await c.booking.createBooking(bookingRequest(body), bearer(h.keys.a, { "idempotency-key": key }));
    expect(res.booking?.status).toBe("accepted");
    expect(res.booking?.id).toMatch(/^bkg_/);
    expect(res.booking?.customer?.name).toBe("John Doe");
    expect(res.booking?.location?.name).toBe("Harbor Street Dental");
    const webhook = h.platform.received.slice(before)[0]!;
    expect(webhook.path).toBe("/bookings");
    expect(webhook.signatureValid).toBe(true);
    const sent = JSON.parse(webhook.rawBody);
    expect(sent).toEqual({
      account_id: h.accounts.a,
      idempotency_key: expect.stringMatching(/^idk_[0-9a-f]{48}$/),
      booking: body.booking,
    });
    expect(sent.idempotency_key).not.toContain(key);
  });

  it("accepts the key in the idempotency_key field", async () => {
    const res = await c.booking.createBooking(bookingRequest({ ...bookingBody(h.bots.a), idempotency_key: idempotencyKey() }), bearer(h.keys.a));
    expect(res.booking?.status).toBe("accepted");
  });

  it("keeps platform fields beyond the documented ones", async () => {
    h.script = (req) =>
      req.path === "/availability/search"
        ? { status: 200, body: { availabilities: [{ start_at: "2030-01-07T09:00:00Z", duration_minutes: 30, provider: "Dr. Rivera" }], next_page: "p2" } }
        : undefined;
    const res = await c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a));
    expect(res.platformFields).toEqual({ next_page: "p2" });
    expect(res.availabilities[0]!.platformFields).toEqual({ provider: "Dr. Rivera" });
  });

  describe("errors", () => {
    const search = () => searchBody(h.bots.a);
    const book = (body: object, key = idempotencyKey(), options: { headers?: Record<string, string> } = bearer(h.keys.a)) =>
      c.booking.createBooking(bookingRequest(body), { ...options, headers: { ...options.headers, "idempotency-key": key } });

    it("unauthorized: no, malformed or unknown key", async () => {
      await expectRpcError(c.availability.searchAvailability(searchRequest(search())), Code.Unauthenticated, "unauthorized");
      await expectRpcError(
        c.availability.searchAvailability(searchRequest(search()), { headers: { authorization: "Basic abc" } }),
        Code.Unauthenticated,
        "unauthorized",
      );
      await expectRpcError(c.availability.searchAvailability(searchRequest(search()), bearer("sk_ptnr_unknown")), Code.Unauthenticated, "unauthorized");
      covers("auth failure · search", protocol);
    });

    it("unauthorized bookings: no, malformed or unknown key; nothing reaches the platform", async () => {
      const before = h.platform.received.length;
      await expectRpcError(book(bookingBody(h.bots.a), idempotencyKey(), {}), Code.Unauthenticated, "unauthorized");
      await expectRpcError(book(bookingBody(h.bots.a), idempotencyKey(), { headers: { authorization: "Basic abc" } }), Code.Unauthenticated, "unauthorized");
      await expectRpcError(book(bookingBody(h.bots.a), idempotencyKey(), bearer("sk_ptnr_unknown")), Code.Unauthenticated, "unauthorized");
      expect(h.platform.received.length).toBe(before);
      covers("auth failure · booking", protocol);
    });

    it("bot_not_found: unknown bot, and another partner's bot, alike", async () => {
      const unknown = await expectRpcError(
        c.availability.searchAvailability(searchRequest(searchBody("bot_nope")), bearer(h.keys.a)),
        Code.NotFound,
        "bot_not_found",
      );
      const foreign = await expectRpcError(
        c.availability.searchAvailability(searchRequest(searchBody(h.bots.b)), bearer(h.keys.a)),
        Code.NotFound,
        "bot_not_found",
      );
      expect(foreign.rawMessage.replace(h.bots.b, "X")).toBe(unknown.rawMessage.replace("bot_nope", "X"));
      covers("bot ownership · search", protocol);
    });

    it("bot_not_found: a booking for another partner's bot, answered like an unknown bot, nothing sent", async () => {
      const before = h.platform.received.length;
      const unknown = await expectRpcError(book(bookingBody("bot_nope")), Code.NotFound, "bot_not_found");
      const foreign = await expectRpcError(book(bookingBody(h.bots.b)), Code.NotFound, "bot_not_found");
      expect(foreign.rawMessage.replace(h.bots.b, "X")).toBe(unknown.rawMessage.replace("bot_nope", "X"));
      expect(h.platform.received.length).toBe(before);
      // The owner books the same bot.
      const own = await c.booking.createBooking(bookingRequest(bookingBody(h.bots.b)), bearer(h.keys.b, { "idempotency-key": idempotencyKey() }));
      expect(own.booking?.status).toBe("accepted");
      covers("bot ownership · booking", protocol);
    });

    it.each([
      ["bot_id missing", { ...searchBody("x"), bot_id: "" }, "bot_id"],
      ["query missing", { bot_id: "bot_a" }, "query"],
      ["range missing", { bot_id: "bot_a", query: { filter: {} } }, "start_at_range"],
      ["end before start", searchBody("bot_a", "2030-01-07"), "after start_at", (b: any): void => void (b.query.filter.start_at_range.end_at = "2030-01-07T08:00:00Z")],
      ["range too long", searchBody("bot_a"), "at most", (b: any): void => void (b.query.filter.start_at_range.end_at = "2030-03-07T08:00:00Z")],
    ] as const)("invalid_request: %s", async (_name, body, fieldHint, mutate?: (b: unknown) => void) => {
      const b = structuredClone(body);
      mutate?.(b);
      const before = h.platform.received.length;
      const e = await expectRpcError(c.availability.searchAvailability(searchRequest(b), bearer(h.keys.a)), Code.InvalidArgument, "invalid_request");
      expect(e.rawMessage).toContain(fieldHint);
      expect(h.platform.received.length).toBe(before);
      covers("validation · search", protocol);
    });

    it("invalid_request: booking duration_minutes <= 0", async () => {
      const b = bookingBody(h.bots.a);
      b.booking.duration_minutes = 0;
      const e = await expectRpcError(
        c.booking.createBooking(bookingRequest(b), bearer(h.keys.a, { "idempotency-key": idempotencyKey() })),
        Code.InvalidArgument,
        "invalid_request",
      );
      expect(e.rawMessage).toContain("booking.duration_minutes");
      covers("validation · booking", protocol);
    });

    it.each(["call me maybe", "", "15551234567", "+1 555 123 4567", "+1555"])("invalid_request: booking customer.phone %j is not E.164", async (phone) => {
      const b = bookingBody(h.bots.a);
      b.booking.customer.phone = phone;
      const before = h.platform.received.length;
      const e = await expectRpcError(
        c.booking.createBooking(bookingRequest(b), bearer(h.keys.a, { "idempotency-key": idempotencyKey() })),
        Code.InvalidArgument,
        "invalid_request",
      );
      expect(e.rawMessage).toMatch(/^booking\.customer\.phone /);
      expect(h.platform.received.length).toBe(before);
    });

    it("idempotency_key_invalid: missing key", async () => {
      await expectRpcError(c.booking.createBooking(bookingRequest(bookingBody(h.bots.a)), bearer(h.keys.a)), Code.InvalidArgument, "idempotency_key_invalid");
    });

    it("webhook_not_configured", async () => {
      await expectRpcError(
        c.availability.searchAvailability(searchRequest(searchBody(h.bots.noWebhook)), bearer(h.keys.a)),
        Code.FailedPrecondition,
        "webhook_not_configured",
      );
    });

    it.each([
      [409, "slot_unavailable", Code.AlreadyExists],
      [400, "invalid_payload", Code.InvalidArgument],
      [404, "account_not_found", Code.NotFound],
      [422, "unprocessable", Code.FailedPrecondition],
      [429, "too_many", Code.ResourceExhausted],
      [500, "configuration_error", Code.Unavailable],
    ] as const)("platform error envelope %i %s", async (status, code, connectCode) => {
      h.script = () => ({ status, body: { error: { code, message: `platform says ${code}` } } });
      const e = await expectRpcError(c.availability.searchAvailability(searchRequest(search()), bearer(h.keys.a)), connectCode, code, { httpStatus: status });
      expect(e.rawMessage).toBe(`platform says ${code}`);
      covers("platform error pass-through · search", protocol);
    });

    it.each([
      [409, "slot_unavailable", Code.AlreadyExists],
      [422, "customer_blocked", Code.FailedPrecondition],
      [503, "maintenance", Code.Unavailable],
    ] as const)("platform error envelope %i %s on a booking", async (status, code, connectCode) => {
      h.script = (req) => (req.path === "/bookings" ? { status, body: { error: { code, message: `platform says ${code}` } } } : undefined);
      const e = await expectRpcError(book(bookingBody(h.bots.a)), connectCode, code, { httpStatus: status });
      expect(e.rawMessage).toBe(`platform says ${code}`);
      covers("platform error pass-through · booking", protocol);
    });

    it.each([
      [401, { error: { code: "invalid_signature", message: "bad signature" } }, "401 invalid_signature"],
      [403, { error: { code: "forbidden", message: "no" } }, "403 forbidden"],
      [401, "Unauthorized", "401"],
    ] as const)("platform_rejected: the platform answered %i (%j)", async (status, body, named) => {
      h.script = () => ({ status, body });
      const e = await expectRpcError(c.availability.searchAvailability(searchRequest(search()), bearer(h.keys.a)), Code.FailedPrecondition, "platform_rejected");
      expect(e.rawMessage).toContain(`(${named})`);
    });

    it("platform_invalid_response: non-JSON and schema-violating answers", async () => {
      h.script = () => ({ status: 200, body: "<html>oops</html>" });
      await expectRpcError(c.availability.searchAvailability(searchRequest(search()), bearer(h.keys.a)), Code.Unavailable, "platform_invalid_response");
      h.script = () => ({ status: 200, body: { availabilities: [{ start_at: "not a time", duration_minutes: 30 }] } });
      await expectRpcError(c.availability.searchAvailability(searchRequest(search()), bearer(h.keys.a)), Code.Unavailable, "platform_invalid_response");
      h.script = () => ({ status: 200, body: { slots: [] } });
      await expectRpcError(c.availability.searchAvailability(searchRequest(search()), bearer(h.keys.a)), Code.Unavailable, "platform_invalid_response");
    });

    it("platform_unavailable: connection reset", async () => {
      h.script = () => ({ status: 0, reset: true });
      await expectRpcError(c.availability.searchAvailability(searchRequest(search()), bearer(h.keys.a)), Code.Unavailable, "platform_unavailable");
    });

    it("platform_timeout: the configured webhook timeout", async () => {
      h.script = () => ({ status: 200, body: { availabilities: [] }, delayMs: 3000 });
      const started = Date.now();
      await expectRpcError(c.availability.searchAvailability(searchRequest(search()), bearer(h.keys.a)), Code.DeadlineExceeded, "platform_timeout");
      expect(Date.now() - started).toBeLessThan(2500);
    });

    // The deadline travels as the protocol's header, with no client-side timer: the answer is the server's.
    it("platform_timeout: the caller's own, shorter deadline; the webhook is cut short", async () => {
      h.script = () => ({ status: 200, body: { availabilities: [] }, delayMs: 3000 });
      const started = Date.now();
      const abortedBefore = h.platform.aborted;
      await expectRpcError(
        c.availability.searchAvailability(searchRequest(search()), bearer(h.keys.a, deadlineHeaders(protocol, 300))),
        Code.DeadlineExceeded,
        "platform_timeout",
      );
      expect(Date.now() - started).toBeLessThan(900);
      await expect.poll(() => h.platform.aborted, { timeout: 2000 }).toBeGreaterThan(abortedBefore);
      covers("server deadline · search", protocol);
    });

    it("platform_timeout: a booking past the caller's own deadline", async () => {
      h.script = (req) => (req.path === "/bookings" ? { status: 201, body: { booking: { id: "bkg_late", status: "accepted" } }, delayMs: 3000 } : undefined);
      const started = Date.now();
      await expectRpcError(
        c.booking.createBooking(bookingRequest(bookingBody(h.bots.a)), bearer(h.keys.a, { "idempotency-key": idempotencyKey(), ...deadlineHeaders(protocol, 300) })),
        Code.DeadlineExceeded,
        "platform_timeout",
      );
      expect(Date.now() - started).toBeLessThan(900);
      covers("server deadline · booking", protocol);
    });
  });
});

it("a client deadline longer than a timer can hold is refused, not cut to 1 ms", async () => {
  for (const [header, value] of [
    ["connect-timeout-ms", "9999999999"],
    ["grpc-timeout", "99999999H"],
  ] as const) {
    const grpc = header === "grpc-timeout";
    const c = clientsFor(grpc ? "grpc" : "connect-json-h1", h.url);
    await expectRpcError(
      c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a, { [header]: value })),
      Code.InvalidArgument,
      "invalid_request",
    );
  }
  // The longest deadline that fits is honoured.
  const c = clientsFor("connect-json-h1", h.url);
  const res = await c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a, { "connect-timeout-ms": "2147483647" }));
  expect(res.availabilities.length).toBeGreaterThan(0);
});
