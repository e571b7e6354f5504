/**
 * Per-partner rate limits on every protocol: past the burst a partner gets
 * `rate_limited` with `Retry-After`, other partners are unaffected, and the
 * bucket refills at the sustained rate.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateLimiter } from "../src/gateway/rate-limiter.js";
import { covers } from "./support/behaviour-matrix.js";
import { bearer, bookingRequest, clientsFor, expectRpcError, lookupRequest, RPC_PROTOCOLS, searchRequest } from "./support/clients.js";
import { send, type HttpAnswer } from "./support/http1.js";
import { bookingBody, idempotencyKey, lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";
import { lookup, openSession, search, start } from "./support/session-client.js";

it("refills at the sustained rate and tells how long to wait", () => {
  const limiter = new RateLimiter({ perSecond: 2, burst: 3 });
  for (let i = 0; i < 3; i++) limiter.take("p", 1000);
  expect(() => limiter.take("p", 1000)).toThrowError(/rate limit/);
  expect(() => limiter.take("p", 1000)).toThrowError(expect.objectContaining({ code: "rate_limited", retryAfterSeconds: 1 }));
  limiter.take("p", 1500);
  expect(() => limiter.take("p", 1500)).toThrowError(/rate limit/);
  limiter.take("q", 1500);
  expect(() => new RateLimiter({ perSecond: 0, burst: 1 }).take("p")).not.toThrow();
});

describe.each(RPC_PROTOCOLS)("%s", (protocol) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "3" } });
  });
  afterAll(() => h.close());

  it("answers rate_limited past the burst, for that partner only", async () => {
    const c = clientsFor(protocol, h.url);
    for (let i = 0; i < 3; i++) await c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a));
    const before = h.platform.received.length;
    let headers: Headers | undefined;
    const e = await expectRpcError(
      c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), { ...bearer(h.keys.a), onHeader: (x) => (headers = x) }),
      Code.ResourceExhausted,
      "rate_limited",
    );
    // A caller lookup draws on the same bucket.
    await expectRpcError(c.customer.lookupCustomer(lookupRequest(lookupBody(h.bots.a, "+15551234567")), bearer(h.keys.a)), Code.ResourceExhausted, "rate_limited");
    expect(h.platform.received.length).toBe(before);
    const retryAfter = ConnectError.from(e).metadata.get("retry-after") ?? headers?.get("retry-after");
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    await c.availability.searchAvailability(searchRequest(searchBody(h.bots.b)), bearer(h.keys.b));
    covers("rate limit · search", protocol);
    covers("rate limit · lookup", protocol);
  });

  it("answers rate_limited to bookings past the burst; the refused booking is not sent", async () => {
    const c = clientsFor(protocol, h.url);
    const book = () => c.booking.createBooking(bookingRequest(bookingBody(h.bots.a)), bearer(h.keys.a, { "idempotency-key": idempotencyKey() }));
    const refusal = await untilRefused(h, book);
    const e = await expectRpcError(Promise.reject(refusal), Code.ResourceExhausted, "rate_limited");
    expect(Number(e.metadata.get("retry-after"))).toBeGreaterThanOrEqual(1);
    covers("rate limit · booking", protocol);
  });
});

/**
 * Calls until the call is refused (the burst is at most a few calls), checking
 * that every accepted call reached the platform and the refused one did not;
 * returns the refusal.
 */
async function untilRefused(h: Harness, call: () => Promise<unknown>): Promise<unknown> {
  for (let i = 0; i < 10; i++) {
    const before = h.platform.received.length;
    const outcome = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (outcome !== undefined) {
      expect(h.platform.received.length).toBe(before);
      return outcome;
    }
    expect(h.platform.received.length).toBe(before + 1);
  }
  throw new Error("never refused in 10 calls");
}

describe("REST", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "3" } });
  });
  afterAll(() => h.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    send(`${h.url}${path}`, { headers: { authorization: `Bearer ${h.keys.a}`, ...headers }, body });

  /** A REST answer as an error, for untilRefused. */
  const failing = async (answer: Promise<HttpAnswer>) => {
    const res = await answer;
    if (res.status >= 400) throw res;
    return res;
  };

  function expectRateLimited(res: HttpAnswer): void {
    expect({ status: res.status, code: res.json?.error?.code }).toEqual({ status: 429, code: "rate_limited" });
    expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
  }

  it("answers 429 rate_limited with Retry-After to searches past the burst", async () => {
    const refused = (await untilRefused(h, () => failing(post("/v1/availability/search", searchBody(h.bots.a))))) as HttpAnswer;
    expectRateLimited(refused);
    covers("rate limit · search", "rest");
  });

  it("answers 429 rate_limited with Retry-After to bookings past the burst", async () => {
    const refused = (await untilRefused(h, () => failing(post("/v1/bookings", bookingBody(h.bots.a), { "idempotency-key": idempotencyKey() })))) as HttpAnswer;
    expectRateLimited(refused);
    covers("rate limit · booking", "rest");
  });

  it("answers 429 rate_limited with Retry-After to caller lookups past the burst", async () => {
    const refused = (await untilRefused(h, () => failing(post("/v1/customers/lookup", lookupBody(h.bots.a, "+15551234567"))))) as HttpAnswer;
    expectRateLimited(refused);
    covers("rate limit · lookup", "rest");
  });
});

describe("bot sessions", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "3" } });
  });
  afterAll(() => h.close());

  it("charge each operation: past the burst an operation gets a rate_limited answer", async () => {
    const c = clientsFor("grpc", h.url);
    const s = openSession(c.session, h.keys.a);
    s.send(start("s", h.bots.a));
    expect((await s.next()).result.case).toBe("started");
    for (const id of ["1", "2", "3"]) s.send(search(id, searchBody(h.bots.a)));
    s.send(lookup("4", lookupBody(h.bots.a, "+15551234567")));
    const answers = [await s.next(), await s.next(), await s.next(), await s.next()];
    s.close();
    await s.rest();
    const byId = Object.fromEntries(answers.map((a) => [a.requestId, a.result]));
    // The stream took one token when it opened; two operations fit in the burst.
    expect(byId["1"]!.case).toBe("searchAvailability");
    expect(byId["2"]!.case).toBe("searchAvailability");
    expect(byId["3"]).toMatchObject({ case: "error", value: { code: "rate_limited" } });
    expect(byId["4"]).toMatchObject({ case: "error", value: { code: "rate_limited" } });
  });
});
