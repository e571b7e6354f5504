/**
 * BotSessionService.Converse on every protocol that carries bidirectional
 * streams: answers arrive as operations finish, tagged with their request_id;
 * an operation's failure is an answer and the session goes on; half-close
 * finishes what is in flight; the in-flight bound, the idle limit, shutdown
 * and cancellation behave as documented; over HTTP/1.1 the client gets a
 * clear `http2_required` error.
 */
import http from "node:http";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PlatformReply, ReceivedWebhook } from "../src/demo/reference-platform.js";
import { BotSessionService, ConverseRequestSchema, type ConverseResponse } from "../src/gen/dialstack/partner/v1/session_pb.js";
import { bearer, bookingRequest, clientsFor, expectRpcError, HTTP2_PROTOCOLS, reasonOf, type RpcProtocol } from "./support/clients.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";
import { book, openSession, search, start } from "./support/session-client.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { SESSION_MAX_IN_FLIGHT: "4" } });
});
afterAll(() => h.close());

/** The day a search webhook asks for, e.g. "2030-01-08". */
function searchedDay(req: ReceivedWebhook): string | undefined {
  return (req.body as any)?.query?.filter?.start_at_range?.start_at?.slice(0, 10);
}

/** Searches of 2030-01-08 and bookings noted "slow" take `ms`. */
function slow(ms: number): (req: ReceivedWebhook) => PlatformReply | undefined {
  return (req) => {
    const slowSearch = req.path === "/availability/search" && searchedDay(req) === "2030-01-08";
    const slowBooking = req.path === "/bookings" && (req.body as any)?.booking?.notes === "slow";
    if (slowSearch) return { status: 200, body: { availabilities: [] }, delayMs: ms };
    if (slowBooking) return { status: 201, body: { booking: { id: "bkg_slow", status: "accepted" } }, delayMs: ms };
    return undefined;
  };
}

const searchOf = (day = "2030-01-07") => ({ query: searchBody(h.bots.a, day).query });
const bookingOf = (notes = "first visit") => {
  const b = bookingBody(h.bots.a);
  b.booking.notes = notes;
  return { booking: b.booking, idempotency_key: idempotencyKey() };
};

function summary(answers: ConverseResponse[]): [string, string | undefined][] {
  return answers.map((a) => [a.requestId, a.result.case === "error" ? `error:${a.result.value.code}` : a.result.case]);
}

describe.each(HTTP2_PROTOCOLS)("%s", (protocol: RpcProtocol) => {
  it("answers as operations finish, out of order, each with its request_id", async () => {
    h.script = slow(500);
    const s = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    s.send(start("hello", h.bots.a));
    const started = await s.next();
    expect(started.requestId).toBe("hello");
    expect(started.result).toMatchObject({ case: "started", value: { botId: h.bots.a, accountId: h.accounts.a } });

    s.send(search("slow-search", searchOf("2030-01-08")));
    s.send(search("fast-search", searchOf("2030-01-07")));
    s.send(book("fast-booking", bookingOf()));
    s.send(search("fast-search-2", { bot_id: h.bots.a, ...searchOf("2030-01-09") }));
    s.close();
    const answers = await s.rest();

    expect(answers.map((a) => a.requestId).sort()).toEqual(["fast-booking", "fast-search", "fast-search-2", "slow-search"]);
    expect(answers.at(-1)!.requestId).toBe("slow-search");
    const byId = new Map(answers.map((a) => [a.requestId, a.result]));
    const fast = byId.get("fast-search")!;
    expect(fast.case).toBe("searchAvailability");
    if (fast.case === "searchAvailability") {
      expect(fast.value.availabilities.length).toBeGreaterThan(0);
      expect(fast.value.availabilities.every((a) => a.startAt!.seconds >= BigInt(Date.parse("2030-01-07T09:00:00Z") / 1000))).toBe(true);
    }
    const booked = byId.get("fast-booking")!;
    expect(booked.case).toBe("createBooking");
    if (booked.case === "createBooking") expect(booked.value.booking?.status).toBe("accepted");
    expect(byId.get("slow-search")).toMatchObject({ case: "searchAvailability", value: { availabilities: [] } });
  });

  it("answers a failed or invalid operation with an error and goes on", async () => {
    h.script = (req) => ((req.body as any)?.booking?.notes === "taken" ? { status: 409, body: { error: { code: "slot_unavailable", message: "gone" } } } : undefined);
    const before = h.platform.received.length;
    const s = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    s.send(start("s", h.bots.a));
    const badRange = searchOf();
    badRange.query.filter.start_at_range.end_at = "2030-01-07T08:00:00Z";
    s.send(search("bad-range", badRange));
    s.send(search("other-bot", { bot_id: h.bots.b, ...searchOf() }));
    s.send(book("no-key", { booking: bookingBody(h.bots.a).booking }));
    s.send(start("again", h.bots.a));
    s.send({ requestId: "no-op" });
    s.send(search("", searchOf()));
    s.send(book("taken", bookingOf("taken")));
    const badPhone = bookingOf();
    badPhone.booking.customer.phone = "call me maybe";
    s.send(book("bad-phone", badPhone));
    s.send(search("ok", searchOf()));
    s.close();
    const answers = await s.rest();

    expect(new Map(summary(answers))).toEqual(
      new Map([
        ["s", "started"],
        ["bad-range", "error:invalid_request"],
        ["other-bot", "error:invalid_request"],
        ["no-key", "error:idempotency_key_invalid"],
        ["again", "error:invalid_request"],
        ["no-op", "error:invalid_request"],
        ["", "error:invalid_request"],
        ["taken", "error:slot_unavailable"],
        ["bad-phone", "error:invalid_request"],
        ["ok", "searchAvailability"],
      ]),
    );
    const messages = new Map(answers.map((a) => [a.requestId, a.result.case === "error" ? a.result.value.message : ""]));
    expect(messages.get("bad-range")).toContain("after start_at");
    expect(messages.get("other-bot")).toContain("search_availability.bot_id");
    expect(messages.get("no-key")).toContain("create_booking.idempotency_key");
    expect(messages.get("")).toContain("request_id");
    expect(messages.get("taken")).toBe("gone");
    expect(messages.get("bad-phone")).toMatch(/^booking\.customer\.phone /);
    // Only the platform's refusal and the valid search reached the platform.
    expect(h.platform.received.slice(before).map((r) => r.path).sort()).toEqual(["/availability/search", "/bookings"]);
  });

  it("finishes the operations in flight after the client half-closes, then ends OK", async () => {
    h.script = slow(500);
    const s = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    s.send(start("s", h.bots.a));
    s.send(search("slow-search", searchOf("2030-01-08")));
    s.send(book("slow-booking", bookingOf("slow")));
    s.close();
    const answers = await s.rest();
    expect(new Map(summary(answers))).toEqual(
      new Map([
        ["s", "started"],
        ["slow-search", "searchAvailability"],
        ["slow-booking", "createBooking"],
      ]),
    );
  });

  it("ends the stream when the first message is not start, or the bot is not the caller's", async () => {
    const c = clientsFor(protocol, h.url).session;
    const first = openSession(c, h.keys.a);
    first.send(search("1", { bot_id: h.bots.a, ...searchOf() }));
    const e = await expectRpcError(first.rest(), Code.InvalidArgument, "invalid_request");
    expect(e.rawMessage).toContain("first message");

    const foreign = openSession(c, h.keys.a);
    foreign.send(start("s", h.bots.b));
    await expectRpcError(foreign.rest(), Code.NotFound, "bot_not_found");

    const noHook = openSession(c, h.keys.a);
    noHook.send(start("s", h.bots.noWebhook));
    await expectRpcError(noHook.rest(), Code.FailedPrecondition, "webhook_not_configured");

    const anonymous = openSession(c, "sk_ptnr_unknown");
    anonymous.send(start("s", h.bots.a));
    await expectRpcError(anonymous.rest(), Code.Unauthenticated, "unauthorized");
  });

  it("answers too_many_operations beyond the in-flight bound, and duplicate_request_id", async () => {
    h.script = slow(400);
    const before = h.platform.received.length;
    const s = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    s.send(start("s", h.bots.a));
    await s.next();
    for (let i = 1; i <= 4; i++) s.send(search(`slow-${i}`, searchOf("2030-01-08")));
    s.send(search("slow-1", searchOf()));
    s.send(search("fifth", searchOf()));
    const rejected = [await s.next(), await s.next()];
    expect(summary(rejected)).toEqual([
      ["slow-1", "error:duplicate_request_id"],
      ["fifth", "error:too_many_operations"],
    ]);
    const finished = [await s.next()];
    s.send(search("after", searchOf()));
    s.close();
    finished.push(...(await s.rest()));
    expect(new Map(summary(finished))).toEqual(
      new Map([
        ["slow-1", "searchAvailability"],
        ["slow-2", "searchAvailability"],
        ["slow-3", "searchAvailability"],
        ["slow-4", "searchAvailability"],
        ["after", "searchAvailability"],
      ]),
    );
    expect(h.platform.received.length - before).toBe(5);
  });

  it("uses the idempotency machinery of unary bookings", async () => {
    const clients = clientsFor(protocol, h.url);
    const body = bookingOf();
    const s = openSession(clients.session, h.keys.a);
    s.send(start("s", h.bots.a));
    s.send(book("first", body));
    await s.next();
    const first = await s.next();
    s.send(book("retry", body));
    const retry = await s.next();
    s.close();
    await s.rest();
    const unary = await clients.booking.createBooking(bookingRequest({ bot_id: h.bots.a, ...body }), bearer(h.keys.a));
    const id = (r: ConverseResponse) => (r.result.case === "createBooking" ? r.result.value.booking?.id : r.result.case);
    expect(id(first)).toMatch(/^bkg_/);
    expect(id(retry)).toBe(id(first));
    expect(unary.booking?.id).toBe(id(first));
  });
});

describe("limits and lifecycle", () => {
  let g: Harness;
  beforeAll(async () => {
    g = await startHarness({ env: { SESSION_IDLE_SECONDS: "1" } });
  });
  afterAll(() => g.close());

  it("closes an idle session with session_idle", async () => {
    const s = openSession(clientsFor("grpc", g.url).session, g.keys.a);
    s.send(start("s", g.bots.a));
    await s.next();
    s.send(search("1", { query: searchBody(g.bots.a).query }));
    expect((await s.next()).requestId).toBe("1");
    const started = Date.now();
    const e = await expectRpcError(s.rest(), Code.DeadlineExceeded, "session_idle");
    expect(e.rawMessage).toContain("open a new session");
    expect(Date.now() - started).toBeGreaterThan(700);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("is not idle while an operation is in flight", async () => {
    g.script = (req) => (req.path === "/availability/search" ? { status: 200, body: { availabilities: [] }, delayMs: 1600 } : undefined);
    const s = openSession(clientsFor("grpc", g.url).session, g.keys.a);
    s.send(start("s", g.bots.a));
    s.send(search("long", { query: searchBody(g.bots.a).query }));
    await s.next();
    expect(summary([await s.next()])).toEqual([["long", "searchAvailability"]]);
    s.close();
    expect(await s.rest()).toEqual([]);
  });

  it("cancelling the stream aborts the webhooks in flight", async () => {
    g.script = (req) => (req.path === "/availability/search" ? { status: 200, body: { availabilities: [] }, delayMs: 5000 } : undefined);
    const controller = new AbortController();
    const s = openSession(clientsFor("grpc", g.url).session, g.keys.a, { signal: controller.signal });
    s.send(start("s", g.bots.a));
    await s.next();
    const abortedBefore = g.platform.aborted;
    const receivedBefore = g.platform.received.length;
    s.send(search("1", { query: searchBody(g.bots.a, "2030-01-07").query }));
    s.send(search("2", { query: searchBody(g.bots.a, "2030-01-08").query }));
    await expect.poll(() => g.platform.received.length - receivedBefore, { timeout: 2000 }).toBe(2);
    controller.abort();
    await expect(s.rest()).rejects.toMatchObject({ code: Code.Canceled });
    await expect.poll(() => g.platform.aborted - abortedBefore, { timeout: 3000 }).toBe(2);
  });
});

it("a message that does not decode ends the session with invalid_request, after the answers in flight", async () => {
  h.script = slow(300);
  const session = http2.connect(h.url);
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": "/dialstack.partner.v1.BotSessionService/Converse",
      "content-type": "application/grpc+proto",
      te: "trailers",
      authorization: `Bearer ${h.keys.a}`,
    });
    const frame = (bytes: Uint8Array) => {
      const out = Buffer.alloc(5 + bytes.length);
      out.writeUInt32BE(bytes.length, 1);
      out.set(bytes, 5);
      return out;
    };
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.on("trailers", resolve));
    stream.write(frame(toBinary(ConverseRequestSchema, create(ConverseRequestSchema, start("s", h.bots.a)))));
    stream.write(frame(toBinary(ConverseRequestSchema, create(ConverseRequestSchema, search("slow", searchOf("2030-01-08"))))));
    await expect.poll(() => Buffer.concat(chunks).length, { timeout: 2000 }).toBeGreaterThan(0);
    stream.end(frame(new Uint8Array([0xff, 0xff, 0xff])));
    const t = await trailers;
    expect(t["grpc-status"]).toBe(String(Code.InvalidArgument));
    expect(decodeURIComponent(String(t["grpc-message"]))).toContain("could not be decoded");
    // Both answers (started, and the slow search) were sent before the error.
    expect(Buffer.concat(chunks).toString("latin1")).toContain("slow");
  } finally {
    session.close();
  }
});

describe("HTTP/1.1", () => {
  it.each(["connect-json-h1", "connect-binary-h1", "grpc-web-h1"] as const)("%s gets http2_required", async (protocol) => {
    const s = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    s.send(start("s", h.bots.a));
    const e = await expectRpcError(s.rest(), Code.Unimplemented, "http2_required");
    expect(e.rawMessage).toContain("HTTP/2");
  });

  it("a plain HTTP/1.1 client gets 505 and a JSON error", async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${h.url}/dialstack.partner.v1.BotSessionService/Converse`, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      req.end("{}");
    });
    expect(status).toBe(505);
    expect(JSON.parse(body)).toMatchObject({ code: "unimplemented", message: expect.stringContaining("HTTP/2") });
  });
});

it("200 concurrent sessions on one gateway each complete a search and a booking", async () => {
  const transports = [createGrpcTransport({ baseUrl: h.url }), createGrpcTransport({ baseUrl: h.url })];
  const bookingsBefore = h.platform.bookingsMade();
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const s = openSession(createClient(BotSessionService, transports[i % 2]!), h.keys.a);
      s.send(start("s", h.bots.a));
      s.send(search("search", searchOf()));
      s.send(book("booking", bookingOf()));
      s.close();
      return summary(await s.rest());
    }),
  );
  const elapsed = Date.now() - started;
  for (const r of results) {
    expect(new Map(r)).toEqual(
      new Map([
        ["s", "started"],
        ["search", "searchAvailability"],
        ["booking", "createBooking"],
      ]),
    );
  }
  expect(h.platform.bookingsMade() - bookingsBefore).toBe(200);
  expect(elapsed).toBeLessThan(15_000);
});

it("on shutdown, answers what is in flight and ends open sessions with shutting_down", async () => {
  const g = await startHarness({
    respond: (req) => (req.path === "/availability/search" ? { status: 200, body: { availabilities: [] }, delayMs: 600 } : undefined),
  });
  try {
    const s = openSession(clientsFor("grpc", g.url).session, g.keys.a);
    s.send(start("s", g.bots.a));
    await s.next();
    s.send(search("in-flight", { query: searchBody(g.bots.a).query }));
    await expect.poll(() => g.platform.received.length, { timeout: 2000 }).toBe(1);
    const closed = g.app.close();
    const answers: ConverseResponse[] = [];
    let error: unknown;
    try {
      answers.push(await s.next());
      answers.push(...(await s.rest()));
    } catch (e) {
      error = e;
    }
    expect(summary(answers)).toEqual([["in-flight", "searchAvailability"]]);
    expect(ConnectError.from(error).code).toBe(Code.Unavailable);
    expect(reasonOf(error)).toBe("shutting_down");
    await closed;
  } finally {
    await g.gateway.close();
    await g.platform.close();
  }
});
