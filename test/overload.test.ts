/**
 * An overloaded gateway (its event loop lagging past the threshold) refuses
 * new calls at once with `overloaded` (503, unavailable) and a Retry-After, on
 * every protocol, sends nothing to the platform for them, and serves again
 * once the lag is gone. The lag is real: the test blocks the gateway's event
 * loop (it runs in this process) for 400 ms out of every 420.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OverloadMonitor } from "../src/health/overload-monitor.js";
import { covers } from "./support/behaviour-matrix.js";
import { bearer, bookingRequest, clientsFor, expectRpcError, RPC_PROTOCOLS, searchRequest } from "./support/clients.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";
import { send } from "./support/http1.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { OVERLOAD_EVENT_LOOP_DELAY_MS: "250" } });
});
afterAll(() => h.close());

let blocker: NodeJS.Timeout | undefined;
afterEach(() => clearInterval(blocker));

/** Blocks the event loop 400 ms out of every 420 until stopped, and waits until the gateway says it is overloaded. */
async function overload(): Promise<void> {
  blocker = setInterval(() => {
    const until = performance.now() + 400;
    while (performance.now() < until);
  }, 20);
  for (let i = 0; i < 100 && !h.gateway.overload.state().overloaded; i++) await new Promise((r) => setTimeout(r, 20));
  expect(h.gateway.overload.state().overloaded).toBe(true);
}

/**
 * A call that must succeed once the gateway is not overloaded. The machine is
 * shared: a passing stall of this process may refuse one call, so it is tried
 * a few times, each after the gateway says it is not overloaded.
 */
async function served<T>(call: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    await recover();
    try {
      return await call();
    } catch (e) {
      if (i >= 4) throw e;
    }
  }
}

async function recover(): Promise<void> {
  clearInterval(blocker);
  for (let i = 0; i < 100 && h.gateway.overload.state().overloaded; i++) await new Promise((r) => setTimeout(r, 20));
  expect(h.gateway.overload.state().overloaded).toBe(false);
}

it("the monitor says nothing is overloaded while the loop keeps time, and a disabled one never refuses", async () => {
  const monitor = new OverloadMonitor(50);
  await new Promise((r) => setTimeout(r, 250));
  expect(() => monitor.admit()).not.toThrow();
  const until = performance.now() + 120;
  while (performance.now() < until);
  expect(() => monitor.admit()).toThrowError(expect.objectContaining({ code: "overloaded", retryAfterSeconds: 1 }));
  expect(monitor.state()).toMatchObject({ overloaded: true, refused: 1 });
  monitor.close();
  const off = new OverloadMonitor(0);
  const until2 = performance.now() + 120;
  while (performance.now() < until2);
  expect(() => off.admit()).not.toThrow();
});

describe.each(RPC_PROTOCOLS)("%s", (protocol) => {
  it("refuses searches and bookings with overloaded while the loop lags, and serves them after", async () => {
    const c = clientsFor(protocol, h.url);
    await served(() => c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a)));
    const before = h.platform.received.length;
    await overload();
    const e = await expectRpcError(c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a)), Code.Unavailable, "overloaded");
    expect(Number(ConnectError.from(e).metadata.get("retry-after"))).toBe(1);
    covers("overload · search", protocol);
    const b = await expectRpcError(
      c.booking.createBooking(bookingRequest(bookingBody(h.bots.a)), bearer(h.keys.a, { "idempotency-key": idempotencyKey() })),
      Code.Unavailable,
      "overloaded",
    );
    expect(Number(b.metadata.get("retry-after"))).toBe(1);
    expect(h.platform.received.length).toBe(before);
    await served(() => c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a)));
    covers("overload · booking", protocol);
  });
});

describe("REST", () => {
  it("answers 503 overloaded with Retry-After to searches and bookings while the loop lags", async () => {
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      send(`${h.url}${path}`, { headers: { authorization: `Bearer ${h.keys.a}`, ...headers }, body });
    await recover();
    const before = h.platform.received.length;
    await overload();
    const search = await post("/v1/availability/search", searchBody(h.bots.a));
    expect({ status: search.status, code: search.json?.error?.code, retryAfter: search.headers["retry-after"] }).toEqual({ status: 503, code: "overloaded", retryAfter: "1" });
    covers("overload · search", "rest");
    const booking = await post("/v1/bookings", bookingBody(h.bots.a), { "idempotency-key": idempotencyKey() });
    expect({ status: booking.status, code: booking.json?.error?.code, retryAfter: booking.headers["retry-after"] }).toEqual({ status: 503, code: "overloaded", retryAfter: "1" });
    expect(h.platform.received.length).toBe(before);
    const after = await served(async () => {
      const res = await post("/v1/availability/search", searchBody(h.bots.a));
      if (res.status !== 200) throw new Error(`answered ${res.status}`);
      return res;
    });
    expect(after.status).toBe(200);
    covers("overload · booking", "rest");
  });
});
