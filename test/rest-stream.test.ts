/**
 * StreamAvailability over REST, `POST /v1/availability/search:stream`, sent
 * as Server-Sent Events: one `message` event per window with the same JSON a
 * Connect client receives, then `end`; an error before the first window is an
 * ordinary REST error, an error after it is an `error` event with the
 * envelope; a client that goes away cancels the outstanding webhooks.
 */
import http from "node:http";
import { toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReceivedWebhook } from "../src/demo/reference-platform.js";
import { StreamAvailabilityResponseSchema } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { bearer, clientsFor, searchRequest } from "./support/clients.js";
import { send } from "./support/http1.js";
import { startHarness, type Harness } from "./support/harness.js";
import { parseEvents } from "./support/server-sent-events.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ env: { STREAM_CONCURRENCY: "7" } });
});
afterAll(() => h.close());

const DAY = 86_400_000;
const WEEK = { bot_id: "bot_a", query: { filter: { start_at_range: { start_at: "2030-01-07T00:00:00Z", end_at: "2030-01-14T00:00:00Z" } } } };
const dayOf = (req: ReceivedWebhook) => Math.round((Date.parse((req.body as any).query.filter.start_at_range.start_at) - Date.parse("2030-01-07T00:00:00Z")) / DAY);
const stream = (body: unknown, headers: Record<string, string> = { authorization: `Bearer ${h.keys.a}` }) =>
  send(`${h.url}/v1/availability/search:stream`, { headers: { accept: "text/event-stream", ...headers }, body });

it("sends each window as a message event, in order, then end", async () => {
  const res = await stream(WEEK);
  expect(res.status).toBe(200);
  expect(res.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
  expect(res.headers["x-request-id"]).toBeTruthy();
  const events = parseEvents(res.text);
  expect(events.map((e) => e.event)).toEqual([...Array(7).fill("message"), "end"]);
  const starts = events.slice(0, 7).map((e) => JSON.parse(e.data).window.start_at);
  expect(starts).toEqual([7, 8, 9, 10, 11, 12, 13].map((d) => `2030-01-${String(d).padStart(2, "0")}T00:00:00Z`));
});

it("carries the same messages a Connect client receives", async () => {
  const rest = parseEvents((await stream(WEEK)).text)
    .filter((e) => e.event === "message")
    .map((e) => JSON.parse(e.data));
  const connect = [];
  for await (const m of clientsFor("connect-json-h2", h.url).availability.streamAvailability(searchRequest(WEEK), bearer(h.keys.a))) {
    connect.push(toJson(StreamAvailabilityResponseSchema, m, { useProtoFieldName: true }));
  }
  expect(rest).toEqual(connect);
});

describe("errors", () => {
  it("before the first window: the REST envelope and status", async () => {
    const before = h.platform.received.length;
    for (const [body, headers, status, code] of [
      [WEEK, {}, 401, "unauthorized"],
      [{ ...WEEK, bot_id: "bot_nope" }, undefined, 404, "bot_not_found"],
      [{ bot_id: "bot_a" }, undefined, 400, "invalid_request"],
      ["{bad", { authorization: `Bearer ${h.keys.a}`, "content-type": "application/json" }, 400, "invalid_request"],
      ["{}", { authorization: `Bearer ${h.keys.a}`, "content-type": "text/plain" }, 415, "unsupported_media_type"],
    ] as const) {
      const res = await stream(body, headers);
      expect({ status: res.status, json: res.json }).toEqual({ status, json: { error: { code, message: expect.any(String) } } });
    }
    expect(h.platform.received.length).toBe(before);
    const wrongMethod = await send(`${h.url}/v1/availability/search:stream`);
    expect({ status: wrongMethod.status, code: wrongMethod.json.error.code, allow: wrongMethod.headers.allow }).toEqual({
      status: 405,
      code: "method_not_allowed",
      allow: "POST",
    });
  });

  it("after windows were sent: an error event with the envelope, and no end", async () => {
    h.script = (req) => (dayOf(req) === 2 ? { status: 409, body: { error: { code: "calendar_locked", message: "locked" } }, delayMs: 200 } : undefined);
    const res = await stream(WEEK);
    expect(res.status).toBe(200);
    const events = parseEvents(res.text);
    expect(events.map((e) => e.event)).toEqual(["message", "message", "error"]);
    expect(JSON.parse(events[2]!.data)).toEqual({ error: { code: "calendar_locked", message: "locked" } });
  });

  it("a platform failure on the first window: the REST error", async () => {
    h.script = () => ({ status: 200, body: "<html>" });
    const res = await stream(WEEK);
    expect({ status: res.status, code: res.json?.error?.code }).toEqual({ status: 502, code: "platform_invalid_response" });
  });
});

it("a client that goes away cancels the outstanding webhooks", async () => {
  h.script = (req) => (dayOf(req) >= 1 ? { status: 200, body: { availabilities: [] }, delayMs: 5000 } : undefined);
  const abortedBefore = h.platform.aborted;
  await new Promise<void>((resolve, reject) => {
    const req = http.request(`${h.url}/v1/availability/search:stream`, {
      method: "POST",
      agent: false,
      headers: { authorization: `Bearer ${h.keys.a}`, "content-type": "application/json" },
    });
    req.on("response", (res) => {
      res.once("data", () => {
        req.destroy();
        resolve();
      });
    });
    req.on("error", (e) => (req.destroyed ? resolve() : reject(e)));
    req.end(JSON.stringify(WEEK));
  });
  await expect.poll(() => h.platform.aborted - abortedBefore, { timeout: 3000 }).toBe(6);
});
