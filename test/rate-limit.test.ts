/**
 * Per-partner rate limits on every protocol: past the burst a partner gets
 * `rate_limited` with `Retry-After`, other partners are unaffected, and the
 * bucket refills at the sustained rate.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RateLimiter } from "../src/gateway/rate-limiter.js";
import { bearer, clientsFor, expectRpcError, lookupRequest, RPC_PROTOCOLS, searchRequest } from "./support/clients.js";
import { lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";
import { lookup, openSession, search, start } from "./support/session-client.js";

it("refills at the sustained rate and tells how long to wait", () => {
  const limiter = new RateLimiter({ perSecond: 2, burst: 3 });
  for (let i = 0; i < 3; i++) limiter.take("p", 1000);
  expect(() => limiter.take("p", 1000)).toThrowError(/rate limit/);
  try {
    limiter.take("p", 1000);
  } catch (e) {
    expect((e as { retryAfterSeconds: number }).retryAfterSeconds).toBe(1);
  }
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
