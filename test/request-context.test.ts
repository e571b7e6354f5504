/**
 * What travels with a call, on REST and every RPC protocol: the request id
 * (the caller's when it is valid, a new UUID otherwise, never an invalid one
 * echoed), sent to the platform as `X-Request-Id` and put on every log line
 * of the call; and the W3C trace context, continued to the platform with the
 * caller's trace id and a span id of the gateway's. With an OTLP endpoint,
 * the spans are exported: a loopback OTLP/HTTP receiver here records them.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReceivedWebhook } from "../src/demo/reference-platform.js";
import { bearer, bookingRequest, clientsFor, lookupRequest, RPC_PROTOCOLS, searchRequest, type RpcProtocol } from "./support/clients.js";
import { bookingBody, idempotencyKey, lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";
import { openSession, search as sessionSearch, start as sessionStart } from "./support/session-client.js";
import { logLinesInto, type LogLine } from "./support/log-lines.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN = "00f067aa0ba902b7";

type Protocol = "rest" | RpcProtocol;
const PROTOCOLS: readonly Protocol[] = ["rest", ...RPC_PROTOCOLS];

/** One search on `protocol` with `headers`; the response's X-Request-Id and the webhook the platform received. */
async function searchWith(h: Harness, protocol: Protocol, headers: Record<string, string>): Promise<{ responseId: string | null; webhook: ReceivedWebhook }> {
  const marker = `2030-01-${String(7 + Math.floor(Math.random() * 3)).padStart(2, "0")}`;
  const body = searchBody(h.bots.a, marker);
  const seen = h.platform.received.length;
  let responseId: string | null;
  if (protocol === "rest") {
    const res = await fetch(`${h.url}/v1/availability/search`, {
      method: "POST",
      headers: { authorization: `Bearer ${h.keys.a}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    responseId = res.headers.get("x-request-id");
  } else {
    let header: Headers | undefined;
    await clientsFor(protocol, h.url).availability.searchAvailability(searchRequest(body), { ...bearer(h.keys.a, headers), onHeader: (hd) => (header = hd) });
    responseId = header?.get("x-request-id") ?? null;
  }
  const webhooks = h.platform.received.slice(seen);
  expect(webhooks).toHaveLength(1);
  return { responseId, webhook: webhooks[0]! };
}

describe("request ids and trace context", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  describe.each(PROTOCOLS)("%s", (protocol) => {
    it("a valid X-Request-Id is echoed and sent to the platform", async () => {
      const id = `call-42.op:7_${protocol}`;
      const { responseId, webhook } = await searchWith(h, protocol, { "x-request-id": id });
      expect(responseId).toBe(id);
      expect(webhook.headers["x-request-id"]).toBe(id);
    });

    it.each([["has space!"], ['x"y<z>'], ["a".repeat(129)], ["ünïcode"]])("an invalid X-Request-Id (%s) is replaced, everywhere", async (bad) => {
      const { responseId, webhook } = await searchWith(h, protocol, { "x-request-id": bad });
      expect(responseId).toMatch(UUID);
      expect(webhook.headers["x-request-id"]).toBe(responseId);
    });

    it("without one, a new id is the response's and the platform's", async () => {
      const { responseId, webhook } = await searchWith(h, protocol, {});
      expect(responseId).toMatch(UUID);
      expect(webhook.headers["x-request-id"]).toBe(responseId);
    });

    it("the caller's trace continues to the platform: same trace id, the gateway's span id, tracestate kept", async () => {
      const { webhook } = await searchWith(h, protocol, { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`, tracestate: "vendor=abc,other=1" });
      const m = TRACEPARENT.exec(String(webhook.headers.traceparent));
      expect(m, String(webhook.headers.traceparent)).not.toBeNull();
      expect(m![1]).toBe(CALLER_TRACE);
      expect(m![2]).not.toBe(CALLER_SPAN);
      expect(m![3]).toBe("01");
      expect(webhook.headers.tracestate).toBe("vendor=abc,other=1");
    });

    it.each([
      ["none", undefined],
      ["all-zero trace id", `00-${"0".repeat(32)}-${CALLER_SPAN}-01`],
      ["upper case", `00-${CALLER_TRACE.toUpperCase()}-${CALLER_SPAN}-01`],
      ["version ff", `ff-${CALLER_TRACE}-${CALLER_SPAN}-01`],
      ["garbage", "hello"],
    ])("%s traceparent: a new trace starts at the gateway", async (_name, traceparent) => {
      const { webhook } = await searchWith(h, protocol, traceparent === undefined ? {} : { traceparent, tracestate: "vendor=abc" });
      const m = TRACEPARENT.exec(String(webhook.headers.traceparent));
      expect(m, String(webhook.headers.traceparent)).not.toBeNull();
      expect(m![1]).not.toBe(CALLER_TRACE);
      expect(m![1]).not.toBe("0".repeat(32));
      // Without span export nothing is recorded, so the new trace is not sampled.
      expect(m![3]).toBe("00");
      // A tracestate belongs to the caller's trace; a new trace does not carry it.
      expect(webhook.headers.tracestate).toBeUndefined();
    });
  });

  it("a later traceparent version is read as version 00", async () => {
    const { webhook } = await searchWith(h, "rest", { traceparent: `01-${CALLER_TRACE}-${CALLER_SPAN}-01-extra` });
    expect(String(webhook.headers.traceparent)).toMatch(new RegExp(`^00-${CALLER_TRACE}-[0-9a-f]{16}-01$`));
  });

  it.each(["rest", "grpc"] as const)("booking and caller lookup webhooks carry the request id and trace too (%s)", async (protocol) => {
    const traceparent = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;
    const seen = h.platform.received.length;
    const headers = (id: string) => ({ "x-request-id": id, traceparent });
    if (protocol === "rest") {
      const post = (path: string, body: unknown, extra: Record<string, string>) =>
        fetch(`${h.url}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${h.keys.a}`, "content-type": "application/json", ...extra },
          body: JSON.stringify(body),
        });
      expect((await post("/v1/bookings", bookingBody(h.bots.a), { ...headers("book-1"), "idempotency-key": idempotencyKey() })).status).toBe(201);
      expect((await post("/v1/customers/lookup", lookupBody(h.bots.a, "+15551234567"), headers("lookup-1"))).status).toBe(200);
    } else {
      const c = clientsFor(protocol, h.url);
      await c.booking.createBooking(bookingRequest(bookingBody(h.bots.a)), bearer(h.keys.a, { ...headers("book-1"), "idempotency-key": idempotencyKey() }));
      await c.customer.lookupCustomer(lookupRequest(lookupBody(h.bots.a, "+15551234567")), bearer(h.keys.a, headers("lookup-1")));
    }
    const webhooks = h.platform.received.slice(seen);
    expect(webhooks.map((w) => [w.path, w.headers["x-request-id"]])).toEqual([
      ["/bookings", "book-1"],
      ["/customers/lookup", "lookup-1"],
    ]);
    for (const w of webhooks) expect(String(w.headers.traceparent)).toMatch(new RegExp(`^00-${CALLER_TRACE}-[0-9a-f]{16}-01$`));
  });

  it("every webhook of a bot session carries the stream's request id and trace", async () => {
    const seen = h.platform.received.length;
    const session = openSession(clientsFor("grpc", h.url).session, h.keys.a, {
      headers: { "x-request-id": "session-7", traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
    });
    session.send(sessionStart("s0", h.bots.a));
    await session.next();
    session.send(sessionSearch("s1", searchBody(h.bots.a, "2030-01-07")));
    session.send(sessionSearch("s2", searchBody(h.bots.a, "2030-01-08")));
    await session.next();
    await session.next();
    session.close();
    await session.rest();
    const webhooks = h.platform.received.slice(seen);
    expect(webhooks).toHaveLength(2);
    for (const w of webhooks) {
      expect(w.headers["x-request-id"]).toBe("session-7");
      expect(String(w.headers.traceparent)).toMatch(new RegExp(`^00-${CALLER_TRACE}-[0-9a-f]{16}-01$`));
    }
  });
});

describe("log lines of a call carry its request id", () => {
  it("on REST and gRPC, and an invalid id is never logged", async () => {
    const lines: LogLine[] = [];
    const stream = logLinesInto(lines);
    const h = await startHarness({ env: { LOG_LEVEL: "info" }, logStream: stream });
    try {
      await searchWith(h, "rest", { "x-request-id": "logged-rest-1" });
      await searchWith(h, "grpc", { "x-request-id": "logged-grpc-1" });
      const { responseId } = await searchWith(h, "connect-json-h1", { "x-request-id": "bad id<script>" });
      await expect.poll(() => lines.filter((l) => l.msg === "request").length).toBeGreaterThanOrEqual(3);
      const requests = lines.filter((l) => l.msg === "request");
      expect(requests.map((l) => l.reqId)).toEqual(expect.arrayContaining(["logged-rest-1", "logged-grpc-1", responseId]));
      for (const line of requests) expect(String(line.reqId)).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
      const text = JSON.stringify(lines);
      expect(text).not.toContain("<script>");
      expect(text).not.toContain(h.keys.a);
    } finally {
      await h.close();
    }
  });

  it("a request's query is never logged: a Connect GET lookup carries the caller's phone number in it", async () => {
    const lines: LogLine[] = [];
    const stream = logLinesInto(lines);
    const h = await startHarness({ env: { LOG_LEVEL: "info" }, logStream: stream });
    try {
      const phone = "+15557654321";
      const message = encodeURIComponent(JSON.stringify(lookupBody(h.bots.a, phone)));
      const res = await fetch(`${h.url}/dialstack.partner.v1.CustomerService/LookupCustomer?connect=v1&encoding=json&message=${message}`, {
        headers: { authorization: `Bearer ${h.keys.a}` },
      });
      expect(res.status).toBe(200);
      await expect.poll(() => lines.filter((l) => l.msg === "request").length).toBeGreaterThanOrEqual(1);
      expect(lines.find((l) => l.msg === "request")).toMatchObject({ method: "GET", path: "/dialstack.partner.v1.CustomerService/LookupCustomer", status: 200 });
      const text = JSON.stringify(lines);
      expect(text).not.toContain(phone.slice(1));
      expect(text).not.toContain(encodeURIComponent(phone));
    } finally {
      await h.close();
    }
  });
});

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

interface OtlpReceiver {
  readonly url: string;
  readonly bodies: { contentType: string; body: Buffer }[];
  /** When set, exports are refused with this status (400: not retried). */
  refuse: number | undefined;
  close(): Promise<void>;
}

/** An OTLP/HTTP receiver on loopback that keeps what it is sent. */
async function otlpReceiver(): Promise<OtlpReceiver> {
  const bodies: { contentType: string; body: Buffer }[] = [];
  const receiver = { refuse: undefined as number | undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (receiver.refuse !== undefined) {
        res.writeHead(receiver.refuse, { "content-type": "text/plain" }).end("refused");
        return;
      }
      if (req.url === "/v1/traces") bodies.push({ contentType: String(req.headers["content-type"]), body: Buffer.concat(chunks) });
      res.writeHead(200, { "content-type": String(req.headers["content-type"] ?? "application/json") }).end(req.headers["content-type"] === "application/json" ? "{}" : "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

describe("span export over OTLP/HTTP", () => {
  it("http/json: the call's SERVER span continues the caller's trace, its webhook's CLIENT span is the platform's parent", async () => {
    const receiver = await otlpReceiver();
    const h = await startHarness({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_SERVICE_NAME: "gateway-under-test" },
    });
    try {
      const { webhook } = await searchWith(h, "grpc", { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`, "x-request-id": "traced-1" });
      const platformParent = TRACEPARENT.exec(String(webhook.headers.traceparent))![2];
      const spans = async (): Promise<ExportedSpan[]> =>
        receiver.bodies.flatMap((b) => JSON.parse(b.body.toString()).resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans)));
      await expect.poll(async () => (await spans()).length, { timeout: 8000 }).toBeGreaterThanOrEqual(2);
      const all = await spans();
      const server = all.find((s) => s.kind === 2)!;
      const client = all.find((s) => s.kind === 3)!;
      expect(server).toMatchObject({ traceId: CALLER_TRACE, parentSpanId: CALLER_SPAN, name: "dialstack.partner.v1.AvailabilityService/SearchAvailability" });
      expect(server.attributes).toEqual(
        expect.arrayContaining([
          { key: "dialstack.request_id", value: { stringValue: "traced-1" } },
          { key: "rpc.response.status_code", value: { stringValue: "ok" } },
        ]),
      );
      expect(client).toMatchObject({ traceId: CALLER_TRACE, parentSpanId: server.spanId, spanId: platformParent, name: "POST /availability/search" });
      const resource = JSON.parse(receiver.bodies[0]!.body.toString()).resourceSpans[0].resource.attributes;
      expect(resource).toEqual(expect.arrayContaining([{ key: "service.name", value: { stringValue: "gateway-under-test" } }]));
    } finally {
      await h.close();
      await receiver.close();
    }
  });

  it("an export the collector refuses is logged once, and once more when exports work again", async () => {
    const receiver = await otlpReceiver();
    receiver.refuse = 400;
    const lines: LogLine[] = [];
    const stream = logLinesInto(lines);
    const h = await startHarness({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_EXPORTER_OTLP_HEADERS: "api-key=otlp-secret-1", LOG_LEVEL: "warn" },
      logStream: stream,
    });
    const exportLines = () => lines.filter((l) => l.condition === "otlp_export").map((l) => l.msg);
    try {
      await searchWith(h, "rest", {});
      await searchWith(h, "grpc", {});
      await expect.poll(exportLines, { timeout: 8000 }).toEqual(["span export failing: spans are dropped until the collector accepts them"]);
      receiver.refuse = undefined;
      await searchWith(h, "rest", {});
      await expect.poll(exportLines, { timeout: 8000 }).toEqual([
        "span export failing: spans are dropped until the collector accepts them",
        "span export working again",
      ]);
      expect(receiver.bodies.length).toBeGreaterThanOrEqual(1);
      expect(JSON.stringify(lines)).not.toContain("otlp-secret-1");
    } finally {
      await h.close();
      await receiver.close();
    }
  });

  it("http/protobuf (the default): spans arrive as protobuf with the trace id", async () => {
    const receiver = await otlpReceiver();
    const h = await startHarness({ env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces` } });
    try {
      await searchWith(h, "rest", { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` });
      await expect.poll(() => receiver.bodies.length, { timeout: 8000 }).toBeGreaterThanOrEqual(1);
      const { contentType, body } = receiver.bodies[0]!;
      expect(contentType).toBe("application/x-protobuf");
      expect(body.includes(Buffer.from(CALLER_TRACE, "hex"))).toBe(true);
      expect(body.includes(Buffer.from("dialstack.partner.v1.AvailabilityService/SearchAvailability"))).toBe(true);
    } finally {
      await h.close();
      await receiver.close();
    }
  });
});
