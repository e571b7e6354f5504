/**
 * The OpenAPI document cannot drift from the server: it lints clean, lists
 * every annotated REST route and every error code with the status errors.ts
 * gives it, and the live answers of every route (successes and errors)
 * validate against its schemas, each error code under the status the document
 * lists it; its curl samples run as written. The `/docs` page is rendered
 * from it, loads nothing from outside, has a navigation list, a curl example
 * per operation, and explains each error code once.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError, type GatewayErrorCode } from "../src/errors.js";
import { AvailabilityService } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { BookingService } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { CustomerService } from "../src/gen/dialstack/partner/v1/customer_pb.js";
import { BotSessionService } from "../src/gen/dialstack/partner/v1/session_pb.js";
import { BOOKING_SAMPLE, DOCUMENTED_ERRORS, EXAMPLE_KEY, LOOKUP_SAMPLE, openApiDocument, SEARCH_SAMPLE } from "../src/rest/openapi.js";
import { restRoutes } from "../src/rest/rest-routes.js";
import { send, type HttpAnswer } from "./support/http1.js";
import { parseEvents } from "./support/server-sent-events.js";
import { DEMO_CALLER } from "../src/demo/reference-platform.js";
import { bookingBody, idempotencyKey, lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";
import { curl } from "./support/system-programs.js";

const curlProgram = curl("the OpenAPI document's curl samples");

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
  for (const name of headers) {
    const values = resolve(response.headers[name]).schema?.enum;
    if (name === "Cache-Control") expect(values).toContain(res.headers["cache-control"]);
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

it("passes redocly lint with no problem", async () => {
  // Run without blocking this worker's event loop: the gateway under test in
  // the same worker would otherwise see the wait as overload and refuse calls.
  const dir = mkdtempSync(join(tmpdir(), "openapi-"));
  const file = join(dir, "openapi.json");
  writeFileSync(file, JSON.stringify(doc));
  const run = await new Promise<{ status: number | null; output: string }>((resolve) => {
    execFile(
      process.execPath,
      ["node_modules/@redocly/cli/bin/cli.js", "lint", "--extends", "recommended-strict", file],
      { encoding: "utf8", env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ status: error === null ? 0 : typeof error.code === "number" ? error.code : null, output: stdout + stderr }),
    );
  });
  rmSync(dir, { recursive: true, force: true });
  expect(run.status, run.output).toBe(0);
  expect(run.output).toContain("Your API description is valid");
}, 70_000);

it("describes every REST route annotated in the proto", () => {
  const handlers = [AvailabilityService, BookingService, CustomerService, BotSessionService].flatMap((s) => s.methods.map((method) => ({ method }) as unknown as UniversalHandler));
  const routes = restRoutes(handlers);
  expect(routes.map((r) => `${r.httpMethod} ${r.path}`).sort()).toEqual([
    "POST /v1/availability/search",
    "POST /v1/availability/search:stream",
    "POST /v1/bookings",
    "POST /v1/customers/lookup",
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
    | "session_expired"
    | "too_many_sessions"
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
    customer_lookup_not_supported: true,
    platform_rejected: true,
    platform_unavailable: true,
    platform_invalid_response: true,
    platform_timeout: true,
    rate_limited: true,
    unsupported_encoding: true,
    service_unavailable: true,
    overloaded: true,
    not_found: true,
    method_not_allowed: true,
    unsupported_media_type: true,
    internal_error: true,
  };
  expect(DOCUMENTED_ERRORS.map((e) => e.code).sort()).toEqual(Object.keys(listed).sort());
  for (const e of DOCUMENTED_ERRORS) expect({ code: e.code, status: GatewayError.of(e.code, "").httpStatus }).toEqual({ code: e.code, status: e.status });
  expect(doc.components.schemas.ErrorCode.examples.sort()).toEqual(Object.keys(listed).sort());
  // Each code is explained once, in ErrorCode, with its status; a platform's own code is any other string.
  const explained = doc.components.schemas.ErrorCode.anyOf.filter((c: any) => c.const !== undefined);
  expect(explained.map((c: any) => c.const).sort()).toEqual(Object.keys(listed).sort());
  for (const c of explained) {
    expect(c["x-http-status"], c.const).toBe(GatewayError.of(c.const, "").httpStatus);
    expect(c.description, c.const).toBe(DOCUMENTED_ERRORS.find((e) => e.code === c.const)!.when);
  }
  validate("#/components/schemas/ErrorCode", "slot_unavailable");
});

it("has request examples that its own schemas accept", () => {
  validate("#/components/schemas/SearchAvailabilityRequest", SEARCH_SAMPLE);
  validate("#/components/schemas/CreateBookingRequest", BOOKING_SAMPLE);
  validate("#/components/schemas/LookupCustomerRequest", LOOKUP_SAMPLE);
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    const media = item.post.requestBody.content["application/json"];
    for (const example of Object.values<any>(media.examples)) validate(media.schema.$ref, example.value);
    for (const [status, r] of Object.entries<any>(item.post.responses)) {
      const events = resolve(r).content["text/event-stream"];
      for (const example of Object.values<any>(events?.examples ?? {})) validate(events.schema.$ref, example.value);
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
  const LOOKUP = "/v1/customers/lookup";
  const lookup = (body: unknown, headers: Record<string, string> = auth()) => send(h.url + LOOKUP, { headers, body });
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
    h.script = undefined;
    const known = await lookup(lookupBody(h.bots.a, DEMO_CALLER.phone));
    expect(known.json.found).toBe(true);
    expectDocumented(LOOKUP, known);
    const unknown = await lookup(lookupBody(h.bots.a, "+15550100999"));
    expect(unknown.json).toEqual({ found: false });
    expectDocumented(LOOKUP, unknown);
    h.script = () => ({ status: 200, body: { found: true, customer: { name: "J", phone: "+15551234567", vip: true, existing_appointment: { start_at: "2030-01-07T09:00:00Z", room: 4 } }, source: "crm" } });
    expectDocumented(LOOKUP, await lookup(lookupBody(h.bots.a, DEMO_CALLER.phone)));
  });

  it("the gateway's errors on every path", async () => {
    for (const [path, send_] of [
      [SEARCH, (b: unknown, hd?: Record<string, string>) => search(b, hd)],
      [BOOK, (b: unknown, hd?: Record<string, string>) => book(b, hd)],
      [LOOKUP, (b: unknown, hd?: Record<string, string>) => lookup(b, hd)],
    ] as const) {
      const body = path === SEARCH ? searchBody(h.bots.a) : path === BOOK ? bookingBody(h.bots.a) : lookupBody(h.bots.a, DEMO_CALLER.phone);
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
      if (path === LOOKUP) {
        h.script = () => ({ status: 404, body: "Not Found" });
        answers.push(await send_(body, auth()));
      }
      h.script = () => ({ status: 200, body: "<html>" });
      answers.push(await send_(body, auth({ "idempotency-key": idempotencyKey() })));
      h.script = () => ({ status: 0, reset: true });
      answers.push(await send_(body, auth({ "idempotency-key": idempotencyKey() })));
      h.script = () => ({ status: 401, body: { error: { code: "invalid_signature", message: "bad signature" } } });
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
        ...(path === LOOKUP ? ["customer_lookup_not_supported"] : []),
        "platform_invalid_response",
        "platform_unavailable",
        "platform_rejected",
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
    h.script = () => ({ status: 404, body: { error: { code: "account_not_found", message: "no such account" } } });
    const gone = await lookup(lookupBody(h.bots.a, DEMO_CALLER.phone));
    expect(gone.status).toBe(404);
    expectDocumented(LOOKUP, gone, { platformCode: true });
  });

  it("the availability stream: its events, and its errors before the first window", async () => {
    const STREAM = "/v1/availability/search:stream";
    const events = doc.paths[STREAM].post.responses["200"].content["text/event-stream"].schema.$ref;
    expect(events).toBe("#/components/schemas/AvailabilityStreamEvent");
    const week = { bot_id: h.bots.a, query: { filter: { start_at_range: { start_at: "2030-01-07T00:00:00Z", end_at: "2030-01-10T00:00:00Z" } } } };
    const ok = await send(h.url + STREAM, { headers: auth(), body: week });
    expect(ok.status).toBe(200);
    expect(Object.keys(doc.paths[STREAM].post.responses["200"].content)).toEqual([String(ok.headers["content-type"]).split(";")[0]]);
    const got = parseEvents(ok.text);
    expect(got.map((e) => e.event)).toEqual(["message", "message", "message", "end"]);
    for (const e of got) validate(events, { event: e.event, data: JSON.parse(e.data) });
    // The schema tells the events apart: a window is not a valid `end`, nor an `end` a valid `error`.
    const check = ajv.getSchema(`openapi.json${events}`)!;
    expect(check({ event: "end", data: JSON.parse(got[0]!.data) })).toBe(false);
    expect(check({ event: "error", data: {} })).toBe(false);
    h.script = (req) => ((req.body as any).query.filter.start_at_range.start_at.startsWith("2030-01-08") ? { status: 409, body: { error: { code: "calendar_locked", message: "locked" } }, delayMs: 100 } : undefined);
    const failed = parseEvents((await send(h.url + STREAM, { headers: auth(), body: week })).text);
    expect(failed.map((e) => e.event)).toEqual(["message", "error"]);
    validate(events, { event: "error", data: JSON.parse(failed[1]!.data) });
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
  let page: string;
  beforeAll(async () => {
    const res = await send(`${h.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    // The one inline stylesheet is allowed by its hash; nothing else may load, and no page may frame it.
    const style = /<style>([\s\S]*?)<\/style>/.exec(res.text)![1]!;
    expect(res.headers["content-security-policy"]).toBe(
      `default-src 'none'; style-src 'sha256-${createHash("sha256").update(style).digest("base64")}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["x-frame-options"]).toBe("DENY");
    page = res.text;
  });

  it("renders the document as one self-contained page", () => {
    expect(page).toContain("<title>DialStack Partner API 1.0.0</title>");
    const text = page.replaceAll("<wbr>", "");
    for (const t of [
      "/v1/availability/search",
      "/v1/availability/search:stream",
      "event <code>message</code>",
      "event <code>end</code>",
      "event <code>error</code>",
      "/v1/bookings",
      "/v1/customers/lookup",
      "Idempotency-Key",
      "Bearer sk_ptnr_",
      "booking.customer.phone",
      "customer.existing_appointment.start_at",
      "query.filter.start_at_range.start_at",
      "<th>Required</th>",
      "http://127.0.0.1:8080",
    ]) {
      expect(text).toContain(t);
    }
    // Nothing is loaded: no script, no stylesheet or image from elsewhere; links stay on this page or this server.
    expect(page.replace('<link rel="icon" href="data:,">', "")).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    for (const m of page.matchAll(/(?:href|src)="([^"]*)"/g)) expect(m[1]).toMatch(/^(#[\w-]+|\/openapi\.json|\/console|data:,)$/);
    for (const m of page.matchAll(/href="#([\w-]+)"/g)) expect(page, m[1]).toContain(`id="${m[1]}"`);
  });

  it("has a navigation list of every operation", () => {
    const nav = /<nav aria-label="Contents">([\s\S]*?)<\/nav>/.exec(page)![1]!;
    for (const item of Object.values<any>(doc.paths)) expect(nav).toContain(`<a href="#${item.post.operationId}">${item.post.summary}</a>`);
    for (const section of ["servers", "authentication", "headers", "errors"]) expect(nav).toContain(`href="#${section}"`);
  });

  it("explains each error code once, and each operation links its codes there", () => {
    for (const e of DOCUMENTED_ERRORS) {
      const row = new RegExp(`<tr id="error-${e.code}"><td><code>${e.code}</code></td><td>${e.status}</td>`);
      expect(page, e.code).toMatch(row);
      const when = /<td>(.*?)<\/td><\/tr>/.exec(page.slice(page.search(row)))![1]!;
      expect(page.split(when).length - 1, `${e.code} explained once`).toBe(1);
    }
    for (const item of Object.values<any>(doc.paths)) {
      const op = item.post;
      const section = new RegExp(`<section class="operation" id="${op.operationId}"[\\s\\S]*?</section>`).exec(page)![0];
      for (const [status, r] of Object.entries<any>(op.responses)) {
        if (!(Number(status) >= 400)) continue;
        for (const code of Object.keys(r.content["application/json"].examples)) {
          if (code === "slot_unavailable") expect(section).toContain(`<code>${code}</code>`);
          else expect(section, `${op.operationId} ${code}`).toContain(`<a href="#error-${code}"><code>${code}</code></a>`);
        }
      }
    }
  });

  it("shows a curl example per operation", () => {
    for (const item of Object.values<any>(doc.paths)) {
      const [sample] = item.post["x-codeSamples"];
      expect(sample).toMatchObject({ lang: "Shell", label: "curl" });
      const escaped = sample.source.replace(/[&<>"']/g, (c: string) => `&#${c.charCodeAt(0)};`);
      expect(page).toContain(`<pre>${escaped}</pre>`);
    }
  });
});

describe("the document's curl samples", () => {
  it.skipIf(curlProgram.skip)("work as written against a gateway, and answer as documented", async () => {
    expect(doc.servers).toEqual([
      { url: "https://appointments.dialstack.ai", description: "Production" },
      { url: "http://127.0.0.1:8080", description: expect.stringContaining("npm start") },
    ]);
    await h.gateway.directory.store.putBot({ id: SEARCH_SAMPLE.bot_id, partnerId: h.partners.a, accountId: h.accounts.a });
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      const command = item.post["x-codeSamples"][0].source.replaceAll(doc.servers[0].url, h.url).replaceAll(EXAMPLE_KEY, h.keys.a);
      const { stdout } = await promisify(execFile)("bash", ["-c", command], { encoding: "utf8", timeout: 15_000 });
      const [head, body] = stdout.split("\r\n\r\n", 2) as [string, string];
      const status = head.split(" ")[1]!;
      expect(Object.keys(item.post.responses).filter((s) => s.startsWith("2")), `${path}: ${stdout}`).toContain(status);
      const media = resolve(item.post.responses[status]).content;
      if (media["application/json"]) validate(media["application/json"].schema.$ref, JSON.parse(body));
      else for (const e of parseEvents(body)) validate(media["text/event-stream"].schema.$ref, { event: e.event, data: JSON.parse(e.data) });
    }
  });
});
