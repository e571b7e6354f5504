/**
 * The OpenAPI document cannot drift from the server: it lints clean, lists
 * every annotated REST route and every error code with the status errors.ts
 * gives it, and the live answers of every route (successes and errors)
 * validate against its schemas, each error code under the status the document
 * lists it. The `/docs` page is rendered from it and loads nothing from outside.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError, type GatewayErrorCode } from "../src/errors.js";
import { AvailabilityService } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { BookingService } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { BotSessionService } from "../src/gen/dialstack/partner/v1/session_pb.js";
import { BOOKING_SAMPLE, DOCUMENTED_ERRORS, openApiDocument, SEARCH_SAMPLE } from "../src/rest/openapi.js";
import { restRoutes } from "../src/rest/rest-routes.js";
import { send, type HttpAnswer } from "./support/http1.js";
import { parseEvents } from "./support/server-sent-events.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

let h: Harness;
let doc: any;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

beforeAll(async () => {
  h = await startHarness({ env: { WEBHOOK_TIMEOUT_MS: "500" } });
  const res = await send(`${h.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = res.json;
  ajv.addSchema(doc, "openapi.json");
});
afterAll(() => h.close());

function resolve(node: any): any {
  while (node?.$ref) node = node.$ref.slice(2).split("/").reduce((at: any, k: string) => at[k], doc);
  return node;
}

function validate(schemaRef: string, value: unknown): void {
  const check = ajv.getSchema(`openapi.json${schemaRef.slice(schemaRef.indexOf("#"))}`)!;
  expect(check(value) ? [] : check.errors, JSON.stringify(value)).toEqual([]);
}

/** The codes the README says come with `Retry-After`. */
const RETRY_AFTER_CODES = ["idempotency_key_in_use", "rate_limited", "service_unavailable"];

/** Checks a live answer against the document's description of `path`'s POST operation. */
function expectDocumented(path: string, res: HttpAnswer, { platformCode = false } = {}): void {
  const op = doc.paths[path].post;
  const documented = op.responses[String(res.status)];
  const response = resolve(documented ?? op.responses.default);
  expect(response, `status ${res.status} of ${path}`).toBeDefined();
  const media = response.content["application/json"];
  validate(media.schema.$ref, res.json);
  const headers = Object.keys(response.headers ?? {});
  expect(headers, `X-Request-Id is documented for ${res.status} of ${path}`).toContain("X-Request-Id");
  expect(res.headers["x-request-id"], "X-Request-Id").toBeTruthy();
  // Retry-After: sent with exactly the codes that promise it, and documented wherever it is sent.
  const retryAfter = res.headers["retry-after"];
  expect(retryAfter !== undefined, `Retry-After with ${res.json?.error?.code}`).toBe(RETRY_AFTER_CODES.includes(res.json?.error?.code));
  if (retryAfter !== undefined) {
    expect(headers, `Retry-After is documented for ${res.status} of ${path}`).toContain("Retry-After");
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  }
  if (res.status >= 400 && !platformCode) {
    expect(documented, `${res.status} is documented for ${path}`).toBeDefined();
    expect(Object.keys(media.examples ?? {}), `${res.json.error.code} is listed under ${res.status} for ${path}`).toContain(res.json.error.code);
  }
}

it("is the document the server was built with", () => {
  expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  expect(doc.openapi).toBe("3.1.0");
});

it("passes redocly lint with no problem", () => {
  const dir = mkdtempSync(join(tmpdir(), "openapi-"));
  const file = join(dir, "openapi.json");
  writeFileSync(file, JSON.stringify(doc));
  const run = spawnSync(process.execPath, ["node_modules/@redocly/cli/bin/cli.js", "lint", "--extends", "recommended-strict", file], {
    encoding: "utf8",
    env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" },
    timeout: 60_000,
  });
  rmSync(dir, { recursive: true, force: true });
  expect(run.status, run.stdout + run.stderr).toBe(0);
  expect(run.stdout + run.stderr).toContain("Your API description is valid");
});

it("describes every REST route annotated in the proto", () => {
  const handlers = [AvailabilityService, BookingService, BotSessionService].flatMap((s) => s.methods.map((method) => ({ method }) as unknown as UniversalHandler));
  const routes = restRoutes(handlers);
  expect(routes.map((r) => `${r.httpMethod} ${r.path}`).sort()).toEqual([
    "POST /v1/availability/search",
    "POST /v1/availability/search:stream",
    "POST /v1/bookings",
  ]);
  for (const r of routes) expect(doc.paths[r.path]?.[r.httpMethod.toLowerCase()], r.path).toBeDefined();
});

it("lists every error code of the gateway with the status errors.ts gives it", () => {
  // Adding a code to GatewayErrorCode fails to compile here until it is
  // documented, or named here as one REST never answers with: `canceled` (the
  // client is gone) and the errors of bidirectional bot sessions.
  type NotOnRest =
    | "canceled"
    | "too_many_operations"
    | "duplicate_request_id"
    | "session_idle"
    | "shutting_down"
    | "http2_required";
  const listed: Record<Exclude<GatewayErrorCode, NotOnRest>, true> = {
    unauthorized: true,
    bot_not_found: true,
    invalid_request: true,
    request_too_large: true,
    idempotency_key_invalid: true,
    idempotency_key_mismatch: true,
    idempotency_key_in_use: true,
    webhook_not_configured: true,
    platform_unavailable: true,
    platform_invalid_response: true,
    platform_timeout: true,
    rate_limited: true,
    unsupported_encoding: true,
    service_unavailable: true,
    not_found: true,
    method_not_allowed: true,
    unsupported_media_type: true,
    internal_error: true,
  };
  expect(DOCUMENTED_ERRORS.map((e) => e.code).sort()).toEqual(Object.keys(listed).sort());
  for (const e of DOCUMENTED_ERRORS) expect({ code: e.code, status: GatewayError.of(e.code, "").httpStatus }).toEqual({ code: e.code, status: e.status });
  expect(doc.components.schemas.ErrorCode.examples.sort()).toEqual(Object.keys(listed).sort());
});

it("has request examples that its own schemas accept", () => {
  validate("#/components/schemas/SearchAvailabilityRequest", SEARCH_SAMPLE);
  validate("#/components/schemas/CreateBookingRequest", BOOKING_SAMPLE);
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    const media = item.post.requestBody.content["application/json"];
    for (const example of Object.values<any>(media.examples)) validate(media.schema.$ref, example.value);
    for (const [status, r] of Object.entries<any>(item.post.responses)) {
      const m = resolve(r).content["application/json"];
      if (m === undefined) continue;
      for (const example of Object.values<any>(m.examples ?? {})) {
        validate(m.schema.$ref, example.value);
        if (Number(status) >= 400 && example.value.error.code !== "slot_unavailable") {
          expect(GatewayError.of(example.value.error.code, "").httpStatus, `${path} ${status}`).toBe(Number(status));
        }
      }
    }
  }
});

describe("matches the live answers", () => {
  const auth = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${h.keys.a}`, ...extra });
  const SEARCH = "/v1/availability/search";
  const BOOK = "/v1/bookings";
  const search = (body: unknown, headers: Record<string, string> = auth()) => send(h.url + SEARCH, { headers, body });
  const book = (body: unknown, headers: Record<string, string> = auth({ "idempotency-key": idempotencyKey() })) => send(h.url + BOOK, { headers, body });

  it("successes", async () => {
    const found = await search(searchBody(h.bots.a));
    expect(found.status).toBe(200);
    expectDocumented(SEARCH, found);
    const key = idempotencyKey();
    const body = bookingBody(h.bots.a);
    const created = await book(body, auth({ "idempotency-key": key }));
    expect(created.status).toBe(201);
    expectDocumented(BOOK, created);
    const again = await book(body, auth({ "idempotency-key": key }));
    expect(again.status).toBeLessThan(300);
    expectDocumented(BOOK, again);
    h.script = () => ({ status: 200, body: { availabilities: [{ start_at: "2030-01-07T09:00:00Z", duration_minutes: 30, room: 4 }], cursor: "c" } });
    expectDocumented(SEARCH, await search(searchBody(h.bots.a)));
  });

  it("the gateway's errors on both paths", async () => {
    for (const [path, send_] of [
      [SEARCH, (b: unknown, hd?: Record<string, string>) => search(b, hd)],
      [BOOK, (b: unknown, hd?: Record<string, string>) => book(b, hd)],
    ] as const) {
      const body = path === SEARCH ? searchBody(h.bots.a) : bookingBody(h.bots.a);
      const keyed = auth({ "idempotency-key": idempotencyKey() });
      const answers = [
        await send_(body, {}),
        await send_({ ...body, bot_id: "bot_nope" }, keyed),
        await send_({ bot_id: h.bots.a }, keyed),
        await send_({ ...body, bot_id: h.bots.noWebhook }, keyed),
        await send(h.url + path, { headers: { ...keyed, "content-type": "text/plain" }, body: "{}" }),
        await send(h.url + path, { headers: { ...keyed, "content-type": "application/json" }, body: "{bad" }),
        await send(h.url + path, { headers: { ...keyed, "content-type": "application/json" }, body: JSON.stringify({ pad: "x".repeat(h.config.maxRequestBytes) }) }),
      ];
      if (path === BOOK) answers.push(await send_(body, auth()));
      h.script = () => ({ status: 200, body: "<html>" });
      answers.push(await send_(body, auth({ "idempotency-key": idempotencyKey() })));
      h.script = () => ({ status: 0, reset: true });
      answers.push(await send_(body, auth({ "idempotency-key": idempotencyKey() })));
      h.script = () => ({ status: 200, body: {}, delayMs: 1500 });
      answers.push(await send_(body, auth({ "idempotency-key": idempotencyKey() })));
      h.script = undefined;
      const codes = answers.map((a) => a.json.error.code);
      expect(codes).toEqual([
        "unauthorized",
        "bot_not_found",
        "invalid_request",
        "webhook_not_configured",
        "unsupported_media_type",
        "invalid_request",
        "request_too_large",
        ...(path === BOOK ? ["idempotency_key_invalid"] : []),
        "platform_invalid_response",
        "platform_unavailable",
        "platform_timeout",
      ]);
      for (const a of answers) expectDocumented(path, a);
    }
  });

  it("errors that ask for a retry send the Retry-After the document promises", async () => {
    const g = await startHarness({ env: { IDEMPOTENCY_WAIT_MS: "100", RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "3" } });
    try {
      const headers = { authorization: `Bearer ${g.keys.a}`, "idempotency-key": idempotencyKey() };
      const body = bookingBody(g.bots.a);
      g.script = () => ({ status: 201, body: { booking: { id: "bkg_slow", status: "accepted" } }, delayMs: 600 });
      const first = send(g.url + BOOK, { headers, body });
      await expect.poll(() => g.platform.received.length).toBe(1);
      const inUse = await send(g.url + BOOK, { headers, body });
      expect({ status: inUse.status, code: inUse.json.error.code }).toEqual({ status: 409, code: "idempotency_key_in_use" });
      expectDocumented(BOOK, inUse);
      expect((await first).status).toBe(201);
      g.script = undefined;
      let limited: HttpAnswer | undefined;
      for (let i = 0; i < 10 && limited === undefined; i++) {
        const res = await send(g.url + SEARCH, { headers: { authorization: headers.authorization }, body: searchBody(g.bots.a) });
        if (res.status !== 200) limited = res;
      }
      expect({ status: limited?.status, code: limited?.json.error.code }).toEqual({ status: 429, code: "rate_limited" });
      expectDocumented(SEARCH, limited!);
    } finally {
      await g.close();
    }
  });

  it("a platform's own error, passed through", async () => {
    h.script = () => ({ status: 409, body: { error: { code: "slot_unavailable", message: "taken" } } });
    const taken = await book(bookingBody(h.bots.a));
    expect(taken.status).toBe(409);
    expectDocumented(BOOK, taken);
    h.script = () => ({ status: 418, body: { error: { code: "teapot", message: "short and stout" } } });
    const odd = await search(searchBody(h.bots.a));
    expect(odd.status).toBe(418);
    expectDocumented(SEARCH, odd, { platformCode: true });
  });

  it("the availability stream: its events, and its errors before the first window", async () => {
    const STREAM = "/v1/availability/search:stream";
    const events = `#/paths/${STREAM.replaceAll("/", "~1")}/post/responses/200/content/text~1event-stream/x-event-data`;
    const week = { bot_id: h.bots.a, query: { filter: { start_at_range: { start_at: "2030-01-07T00:00:00Z", end_at: "2030-01-10T00:00:00Z" } } } };
    const ok = await send(h.url + STREAM, { headers: auth(), body: week });
    expect(ok.status).toBe(200);
    expect(Object.keys(doc.paths[STREAM].post.responses["200"].content)).toEqual([String(ok.headers["content-type"]).split(";")[0]]);
    const got = parseEvents(ok.text);
    expect(got.map((e) => e.event)).toEqual(["message", "message", "message", "end"]);
    for (const e of got) validate(`${events}/${e.event}`, JSON.parse(e.data));
    h.script = (req) => ((req.body as any).query.filter.start_at_range.start_at.startsWith("2030-01-08") ? { status: 409, body: { error: { code: "calendar_locked", message: "locked" } }, delayMs: 100 } : undefined);
    const failed = parseEvents((await send(h.url + STREAM, { headers: auth(), body: week })).text);
    expect(failed.map((e) => e.event)).toEqual(["message", "error"]);
    validate(`${events}/error`, JSON.parse(failed[1]!.data));
    h.script = undefined;
    for (const res of [await send(h.url + STREAM, { headers: {}, body: week }), await send(h.url + STREAM, { headers: auth(), body: { bot_id: h.bots.a } })]) {
      expectDocumented(STREAM, res);
    }
  });

  it("routing errors: the Error schema, with a documented code", async () => {
    for (const res of [await send(`${h.url}/v1/nothing`), await send(h.url + BOOK)]) {
      validate("#/components/schemas/Error", res.json);
      expect(doc.components.schemas.ErrorCode.examples).toContain(res.json.error.code);
    }
  });
});

describe("/docs", () => {
  it("renders the document as one self-contained page", async () => {
    const res = await send(`${h.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["content-security-policy"]).toContain("default-src 'none'");
    const page = res.text;
    expect(page).toContain("<title>DialStack Partner API 1.0.0</title>");
    for (const text of ["/v1/availability/search", "/v1/availability/search:stream", "event <code>message</code>", "/v1/bookings", "Idempotency-Key", "Bearer sk_ptnr_", "booking.customer.phone", "query.filter.start_at_range.start_at"]) {
      expect(page).toContain(text);
    }
    for (const e of DOCUMENTED_ERRORS) expect(page, e.code).toContain(`<code>${e.code}</code>`);
    // Nothing is loaded: no script, no stylesheet or image from elsewhere, links stay on the page.
    expect(page).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    for (const m of page.matchAll(/(?:href|src)="([^"]*)"/g)) expect(m[1]).toMatch(/^#/);
  });
});
