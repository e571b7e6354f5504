/**
 * StreamAvailability: the range is cut into day windows relayed concurrently
 * (at most STREAM_CONCURRENCY at once) and sent in order as soon as each
 * prefix is complete; a platform error ends the stream after the windows
 * already sent; cancelling aborts the webhooks.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReceivedWebhook } from "../src/demo/reference-platform.js";
import { cutWindows } from "../src/gateway/appointments.js";
import { bearer, clientsFor, reasonOf, RPC_PROTOCOLS, searchRequest } from "./support/clients.js";
import { startHarness, type Harness } from "./support/harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { STREAM_CONCURRENCY: "7" } });
});
afterAll(() => h.close());

const DAY = 86_400_000;
const week = (botId: string) =>
  searchRequest({ bot_id: botId, query: { filter: { start_at_range: { start_at: "2030-01-07T00:00:00Z", end_at: "2030-01-14T00:00:00Z" } } } });

/** The day (0-6) of the week of 2030-01-07 a webhook asks for. */
function dayOf(req: ReceivedWebhook): number {
  const start = (req.body as any).query.filter.start_at_range.start_at as string;
  return Math.round((Date.parse(start) - Date.parse("2030-01-07T00:00:00Z")) / DAY);
}

it("cuts ranges at window boundaries", () => {
  expect(cutWindows({ startMs: 9 * 3600_000, endMs: 2 * DAY + 3600_000 }, DAY)).toEqual([
    { startMs: 9 * 3600_000, endMs: DAY },
    { startMs: DAY, endMs: 2 * DAY },
    { startMs: 2 * DAY, endMs: 2 * DAY + 3600_000 },
  ]);
});

describe.each(RPC_PROTOCOLS)("%s", (protocol) => {
  it("streams 7 day windows in order", async () => {
    const c = clientsFor(protocol, h.url);
    const windows: number[] = [];
    let slots = 0;
    for await (const m of c.availability.streamAvailability(week(h.bots.a), bearer(h.keys.a))) {
      windows.push(timestampMs(m.window!.startAt!));
      expect(timestampMs(m.window!.endAt!) - timestampMs(m.window!.startAt!)).toBe(DAY);
      for (const a of m.availabilities) {
        expect(timestampMs(a.startAt!)).toBeGreaterThanOrEqual(timestampMs(m.window!.startAt!));
        expect(timestampMs(a.startAt!)).toBeLessThan(timestampMs(m.window!.endAt!));
      }
      slots += m.availabilities.length;
    }
    expect(windows).toEqual([0, 1, 2, 3, 4, 5, 6].map((d) => Date.parse("2030-01-07T00:00:00Z") + d * DAY));
    expect(slots).toBeGreaterThan(0);
  });

  it("sends the first window before the slowest day completes", async () => {
    const c = clientsFor(protocol, h.url);
    h.script = (req) => (dayOf(req) === 5 ? { status: 200, body: { availabilities: [] }, delayMs: 1500 } : undefined);
    const started = Date.now();
    const arrivals: number[] = [];
    for await (const _ of c.availability.streamAvailability(week(h.bots.a), bearer(h.keys.a))) arrivals.push(Date.now() - started);
    expect(arrivals).toHaveLength(7);
    expect(arrivals[0]!).toBeLessThan(1000);
    expect(arrivals[6]!).toBeGreaterThanOrEqual(1400);
  });

  it("ends with the platform's error after the windows before it", async () => {
    const c = clientsFor(protocol, h.url);
    h.script = (req) => (dayOf(req) === 2 ? { status: 409, body: { error: { code: "calendar_locked", message: "locked" } } } : undefined);
    const got: number[] = [];
    let error: unknown;
    try {
      for await (const m of c.availability.streamAvailability(week(h.bots.a), bearer(h.keys.a))) got.push(timestampMs(m.window!.startAt!));
    } catch (e) {
      error = e;
    }
    expect(got).toHaveLength(2);
    expect(ConnectError.from(error).code).toBe(Code.AlreadyExists);
    expect(reasonOf(error)).toBe("calendar_locked");
  });

  it("rejects an invalid range before relaying anything", async () => {
    const c = clientsFor(protocol, h.url);
    const before = h.platform.received.length;
    const bad = searchRequest({ bot_id: h.bots.a, query: { filter: { start_at_range: { start_at: "2030-01-07T00:00:00Z", end_at: "2030-01-06T00:00:00Z" } } } });
    let error: unknown;
    try {
      for await (const _ of c.availability.streamAvailability(bad, bearer(h.keys.a)));
    } catch (e) {
      error = e;
    }
    expect(reasonOf(error)).toBe("invalid_request");
    expect(h.platform.received.length).toBe(before);
  });
});

it("relays at most STREAM_CONCURRENCY windows at once, and still sends them all in order", async () => {
  const g = await startHarness({ env: { STREAM_CONCURRENCY: "3" } });
  try {
    let inFlight = 0;
    let most = 0;
    g.script = async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 150));
      inFlight--;
      return { status: 200, body: { availabilities: [] } };
    };
    const windows: number[] = [];
    for await (const m of clientsFor("grpc", g.url).availability.streamAvailability(week(g.bots.a), bearer(g.keys.a))) {
      windows.push(timestampMs(m.window!.startAt!));
    }
    expect(windows).toEqual([0, 1, 2, 3, 4, 5, 6].map((d) => Date.parse("2030-01-07T00:00:00Z") + d * DAY));
    expect(most).toBe(3);
  } finally {
    await g.close();
  }
});

it("cancelling the stream aborts the outstanding webhook requests", async () => {
  const c = clientsFor("grpc", h.url);
  h.script = (req) => (dayOf(req) >= 1 ? { status: 200, body: { availabilities: [] }, delayMs: 5000 } : undefined);
  const abortedBefore = h.platform.aborted;
  const controller = new AbortController();
  const it = c.availability.streamAvailability(week(h.bots.a), { ...bearer(h.keys.a), signal: controller.signal });
  for await (const _ of it) {
    controller.abort();
    break;
  }
  await expect.poll(() => h.platform.aborted - abortedBefore, { timeout: 3000 }).toBe(6);
});
