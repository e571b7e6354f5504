/**
 * Prometheus metrics at `/metrics`, read the way Prometheus reads them (a
 * strict text-format parser, and `promtool check metrics` where installed):
 * calls by procedure, protocol and code, with REST and RPC calls of one
 * procedure under the same name; latency histograms; webhook calls by path and
 * outcome; idempotency outcomes; rate-limited calls; open sessions; Node
 * process metrics; no key or secret anywhere. `METRICS_PORT` moves the
 * endpoint to a port of its own or turns metrics off.
 */
import { spawn } from "node:child_process";
import perfHooks from "node:perf_hooks";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PrometheusMetrics } from "../src/metrics/metrics.js";
import { bearer, bookingRequest, clientsFor, expectRpcError, searchRequest, type RpcProtocol } from "./support/clients.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";
import { parsePrometheusText, sampleValue, type Family } from "./support/prometheus-text.js";
import { freePort } from "./support/redis-server.js";
import { openSession, search as sessionSearch, start as sessionStart } from "./support/session-client.js";
import { promtool } from "./support/system-programs.js";

const SEARCH = "dialstack.partner.v1.AvailabilityService/SearchAvailability";
const BOOK = "dialstack.partner.v1.BookingService/CreateBooking";

async function scrape(url: string): Promise<{ text: string; families: Map<string, Family> }> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, families: parsePrometheusText(text) };
}

function restPost(h: Harness, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${h.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${h.keys.a}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("on the main port", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("counts REST and RPC calls of one procedure under one name, each protocol once", async () => {
    const before = (await scrape(h.url)).families;
    const calls = (protocol: string, code = "ok") => ({ procedure: SEARCH, protocol, code });
    for (let i = 0; i < 2; i++) expect((await restPost(h, "/v1/availability/search", searchBody(h.bots.a))).status).toBe(200);
    const byProtocol: [RpcProtocol, string][] = [
      ["grpc", "grpc"],
      ["grpc", "grpc"],
      ["grpc", "grpc"],
      ["connect-json-h1", "connect"],
      ["connect-binary-h2", "connect"],
      ["grpc-web-h1", "grpc_web"],
    ];
    for (const [protocol] of byProtocol) await clientsFor(protocol, h.url).availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a));
    expect((await restPost(h, "/v1/availability/search", searchBody("bot_nope"))).status).toBe(404);
    await expectRpcError(clientsFor("grpc", h.url).availability.searchAvailability(searchRequest(searchBody("bot_nope")), bearer(h.keys.a)), Code.NotFound, "bot_not_found");
    // A body that never reaches the handler is still a call of the procedure.
    expect((await fetch(`${h.url}/v1/availability/search`, { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" })).status).toBe(400);

    const after = (await scrape(h.url)).families;
    const delta = (labels: Record<string, string>, name = "gateway_calls_total") => sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect({
      rest: delta(calls("rest")),
      grpc: delta(calls("grpc")),
      connect: delta(calls("connect")),
      grpc_web: delta(calls("grpc_web")),
      restNotFound: delta(calls("rest", "not_found")),
      grpcNotFound: delta(calls("grpc", "not_found")),
      restInvalid: delta(calls("rest", "invalid_argument")),
    }).toEqual({ rest: 2, grpc: 3, connect: 2, grpc_web: 1, restNotFound: 1, grpcNotFound: 1, restInvalid: 1 });
    // REST calls transcoded into Connect calls are not counted again as Connect.
    expect(delta({ procedure: SEARCH })).toBe(2 + 6 + 1 + 1 + 1);
    expect(delta({ procedure: SEARCH, protocol: "rest" }, "gateway_call_duration_seconds_count")).toBe(4);
    expect(delta({ procedure: SEARCH, protocol: "grpc" }, "gateway_call_duration_seconds_count")).toBe(4);
    expect(after.get("gateway_call_duration_seconds")?.type).toBe("histogram");
    // Eight searches reached the platform; the two unknown bots and the bad body did not.
    expect(delta({ path: "/availability/search", outcome: "ok" }, "gateway_webhook_calls_total")).toBe(8);
    expect(delta({ path: "/availability/search", outcome: "ok" }, "gateway_webhook_duration_seconds_count")).toBe(8);
  });

  it("webhook outcomes: a platform error answer is error_4xx", async () => {
    const before = (await scrape(h.url)).families;
    h.script = () => ({ status: 409, body: { error: { code: "slot_unavailable", message: "taken" } } });
    expect((await restPost(h, "/v1/availability/search", searchBody(h.bots.a))).status).toBe(409);
    const after = (await scrape(h.url)).families;
    const labels = { path: "/availability/search", outcome: "error_4xx" };
    expect(sampleValue(after, "gateway_webhook_calls_total", labels) - sampleValue(before, "gateway_webhook_calls_total", labels)).toBe(1);
    expect(sampleValue(after, "gateway_calls_total", { procedure: SEARCH, protocol: "rest", code: "already_exists" })).toBe(1);
  });

  it("idempotency outcomes: claimed, replayed, mismatch", async () => {
    const before = (await scrape(h.url)).families;
    const key = idempotencyKey();
    const body = bookingBody(h.bots.a);
    expect((await restPost(h, "/v1/bookings", body, { "idempotency-key": key })).status).toBe(201);
    expect((await restPost(h, "/v1/bookings", body, { "idempotency-key": key })).headers.get("idempotent-replayed")).toBe("true");
    await clientsFor("grpc", h.url).booking.createBooking(bookingRequest(body), bearer(h.keys.a, { "idempotency-key": key }));
    expect((await restPost(h, "/v1/bookings", bookingBody(h.bots.a), { "idempotency-key": key })).status).toBe(422);
    const after = (await scrape(h.url)).families;
    const delta = (outcome: string) =>
      sampleValue(after, "gateway_idempotency_outcomes_total", { outcome }) - sampleValue(before, "gateway_idempotency_outcomes_total", { outcome });
    expect({ claimed: delta("claimed"), replayed: delta("replayed"), mismatch: delta("mismatch") }).toEqual({ claimed: 1, replayed: 2, mismatch: 1 });
    expect(sampleValue(after, "gateway_calls_total", { procedure: BOOK, protocol: "grpc", code: "ok" })).toBe(1);
    expect(sampleValue(after, "gateway_webhook_calls_total", { path: "/bookings", outcome: "ok" })).toBe(1);
  });

  it("counts open bot sessions", async () => {
    const session = openSession(clientsFor("grpc", h.url).session, h.keys.a);
    session.send(sessionStart("s0", h.bots.a));
    expect((await session.next()).result.case).toBe("started");
    session.send(sessionSearch("s1", searchBody(h.bots.a)));
    expect((await session.next()).result.case).toBe("searchAvailability");
    expect(sampleValue((await scrape(h.url)).families, "gateway_open_sessions")).toBe(1);
    session.close();
    expect(await session.rest()).toEqual([]);
    await expect.poll(async () => sampleValue((await scrape(h.url)).families, "gateway_open_sessions")).toBe(0);
    expect(sampleValue((await scrape(h.url)).families, "gateway_calls_total", { procedure: "dialstack.partner.v1.BotSessionService/Converse", protocol: "grpc", code: "ok" })).toBe(1);
  });

  it("has Node process metrics, help for every family, and no key or secret", async () => {
    const { text, families } = await scrape(h.url);
    for (const name of ["process_cpu_user_seconds_total", "process_resident_memory_bytes", "nodejs_eventloop_lag_seconds", "nodejs_heap_size_used_bytes"]) {
      expect(families.has(name), name).toBe(true);
    }
    for (const family of families.values()) expect(family.help, family.name).not.toBe("");
    for (const secret of [h.keys.a, h.keys.b, h.secret, "sk_ptnr_", "whsec_"]) expect(text).not.toContain(secret);
    const labelNames = new Set([...families.values()].filter((f) => f.name.startsWith("gateway_")).flatMap((f) => f.samples.flatMap((s) => Object.keys(s.labels))));
    expect([...labelNames].sort()).toEqual(["code", "le", "outcome", "path", "procedure", "protocol", "result"]);
  });

  it("histograms are cumulative, end at +Inf with the count, and sum what they observed", async () => {
    h.script = () => ({ status: 200, body: { availabilities: [] }, delayMs: 120 });
    expect((await restPost(h, "/v1/availability/search", searchBody(h.bots.b), { authorization: `Bearer ${h.keys.b}` })).status).toBe(200);
    const { families } = await scrape(h.url);
    for (const family of [...families.values()].filter((f) => f.type === "histogram" && f.name.startsWith("gateway_"))) {
      const series = new Map<string, { le: number; value: number }[]>();
      for (const s of family.samples.filter((x) => x.name.endsWith("_bucket"))) {
        const { le, ...rest } = s.labels;
        const key = JSON.stringify(rest);
        series.set(key, [...(series.get(key) ?? []), { le: le === "+Inf" ? Infinity : Number(le), value: s.value }]);
      }
      expect(series.size, family.name).toBeGreaterThan(0);
      for (const [key, buckets] of series) {
        const labels = JSON.parse(key) as Record<string, string>;
        expect(buckets.map((b) => b.le)).toEqual([...buckets.map((b) => b.le)].sort((a, b) => a - b));
        buckets.forEach((b, i) => expect(b.value).toBeGreaterThanOrEqual(buckets[i - 1]?.value ?? 0));
        expect(buckets.at(-1)).toEqual({ le: Infinity, value: sampleValue(families, `${family.name}_count`, labels) });
      }
    }
    // The slow webhook (120 ms) is above the 0.1 s bound and within 0.25 s.
    const slow = { path: "/availability/search", outcome: "ok" };
    const le = (bound: string) => sampleValue(families, "gateway_webhook_duration_seconds_bucket", { ...slow, le: bound });
    expect(le("0.25") - le("0.1")).toBeGreaterThanOrEqual(1);
    expect(sampleValue(families, "gateway_webhook_duration_seconds_sum", slow)).toBeGreaterThanOrEqual(0.12);
  });

  it.skipIf(promtool().skip)("passes promtool check metrics", async () => {
    const { text } = await scrape(h.url);
    const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(promtool().require(), ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.once("error", reject);
      child.once("close", (code) => resolve({ code, output }));
      child.stdin.end(text);
    });
    // Exit 1 is a parse error. promtool also lints (exit 3): its only remarks
    // may be on prom-client's own Node gauges named `*_total`, never on the
    // gateway's metrics.
    const remarks = result.output.split("\n").filter((l) => l.trim() !== "");
    expect(remarks.filter((l) => !/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/.test(l))).toEqual([]);
    expect(result.code === 0 || (result.code === 3 && remarks.length > 0)).toBe(true);
  });
});

describe("rate limits", () => {
  it("counts refused calls by partner", async () => {
    const h = await startHarness({ env: { RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "1" } });
    try {
      expect((await restPost(h, "/v1/availability/search", searchBody(h.bots.a))).status).toBe(200);
      expect((await restPost(h, "/v1/availability/search", searchBody(h.bots.a))).status).toBe(429);
      await expectRpcError(clientsFor("grpc", h.url).availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a)), Code.ResourceExhausted, "rate_limited");
      const { families } = await scrape(h.url);
      expect(sampleValue(families, "gateway_rate_limited_total", { partner: h.partners.a })).toBe(2);
      expect(sampleValue(families, "gateway_calls_total", { procedure: SEARCH, protocol: "rest", code: "resource_exhausted" })).toBe(1);
    } finally {
      await h.close();
    }
  });
});

describe("METRICS_PORT", () => {
  it("a port of its own: /metrics there, not on the partner port", async () => {
    const port = await freePort();
    const h = await startHarness({ env: { METRICS_PORT: String(port) } });
    try {
      expect(h.app.metricsServer?.port).toBe(port);
      expect((await restPost(h, "/v1/availability/search", searchBody(h.bots.a))).status).toBe(200);
      const main = await fetch(`${h.url}/metrics`);
      expect(main.status).toBe(404);
      expect(await main.json()).toMatchObject({ error: { code: "not_found" } });
      const { families } = await scrape(`http://127.0.0.1:${port}`);
      expect(sampleValue(families, "gateway_calls_total", { procedure: SEARCH, protocol: "rest", code: "ok" })).toBe(1);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      await h.close();
    }
    // Closing the gateway closes the metrics listener.
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it("off: no /metrics anywhere, and calls still work", async () => {
    const h = await startHarness({ env: { METRICS_PORT: "off" } });
    try {
      expect(h.app.metricsServer).toBeUndefined();
      expect((await restPost(h, "/v1/availability/search", searchBody(h.bots.a))).status).toBe(200);
      expect((await fetch(`${h.url}/metrics`)).status).toBe(404);
    } finally {
      await h.close();
    }
  });
});

it("collects the process's own metrics once, however many gateways the process runs, and shows them on each", async () => {
  // The collectors start an event-loop delay monitor (never stopped) each time they are set up.
  const monitors = vi.spyOn(perfHooks, "monitorEventLoopDelay");
  try {
    const gateways = [new PrometheusMetrics(), new PrometheusMetrics(), new PrometheusMetrics()];
    expect(monitors.mock.calls.length).toBeLessThanOrEqual(1);
    for (const m of gateways) {
      const { body } = await m.scrape();
      expect(body.match(/^# TYPE nodejs_eventloop_lag_seconds gauge$/gm)).toHaveLength(1);
      expect(body).toMatch(/^# TYPE gateway_calls_total counter$/m);
    }
  } finally {
    monitors.mockRestore();
  }
});
