/**
 * Browser tools: a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) on a page from another origin calls the gateway with
 * gRPC-Web and Connect (unary and server streaming) and REST through CORS.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { build } from "esbuild";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";
import { chromium as chromiumProgram } from "./support/system-programs.js";

const program = chromiumProgram();

let h: Harness;
let browser: Browser | undefined;
let site: http.Server;
let siteUrl: string;
let opening: Promise<Page> | undefined;

/**
 * The page, opened by the first test that needs it. A browser that is missing
 * or fails to launch then fails each test by name, rather than failing a
 * `beforeAll` whose tests would be reported as skipped.
 */
function page(): Promise<Page> {
  opening ??= (async () => {
    browser = await chromium.launch({
      executablePath: program.require(),
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const p = await browser.newPage();
    await p.goto(siteUrl);
    await p.waitForFunction(() => "gateway" in globalThis);
    return p;
  })();
  return opening;
}

beforeAll(async () => {
  h = await startHarness();
  const bundle = await build({ entryPoints: ["test/browser/client.ts"], bundle: true, format: "iife", platform: "browser", write: false });
  const script = bundle.outputFiles[0]!.text;
  site = http.createServer((req, res) => {
    if (req.url === "/client.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    } else {
      res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>tool</title><script src="/client.js"></script>');
    }
  });
  await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
  // "localhost" is another origin than the gateway's 127.0.0.1: every call is cross-origin.
  siteUrl = `http://localhost:${(site.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await browser?.close();
  site?.close();
  await h?.close();
});

const gatewayUrl = () => `http://127.0.0.1:${h.port}`;

describe.skipIf(program.skip).each(["grpc-web", "connect"])("%s from a browser", (protocol) => {
  it("searches availability", async () => {
    const out = await (await page()).evaluate(([p, url, key, body]) => (globalThis as any).gateway.search(p, url, key, body), [protocol, gatewayUrl(), h.keys.a, searchBody(h.bots.a)] as const);
    expect(out.ok).toBe(true);
    expect((out.value as number[]).length).toBeGreaterThan(0);
  });

  it("streams availability windows", async () => {
    const body = { bot_id: h.bots.a, query: { filter: { start_at_range: { start_at: "2030-01-07T00:00:00Z", end_at: "2030-01-10T00:00:00Z" } } } };
    const out = await (await page()).evaluate(([p, url, key, b]) => (globalThis as any).gateway.stream(p, url, key, b), [protocol, gatewayUrl(), h.keys.a, body] as const);
    expect(out).toEqual({ ok: true, value: [0, 1, 2].map((d) => Date.parse("2030-01-07T00:00:00Z") + d * 86_400_000) });
  });

  it("reads the machine code of an error", async () => {
    const out = await (await page()).evaluate(([p, url, key, body]) => (globalThis as any).gateway.search(p, url, key, body), [protocol, gatewayUrl(), h.keys.a, searchBody(h.bots.b)] as const);
    expect(out).toMatchObject({ ok: false, reason: "bot_not_found" });
  });
});

describe.skipIf(program.skip)("REST from a browser", () => {
  it("books, and reads the exposed replay and request id headers", async () => {
    const key = idempotencyKey();
    const body = bookingBody(h.bots.a);
    const call = () =>
      page().then((p) =>
        p.evaluate(([url, k, b, ik]) => (globalThis as any).gateway.rest(url, "/v1/bookings", k, b, { "idempotency-key": ik }), [gatewayUrl(), h.keys.a, body, key] as const),
      );
    const first = await call();
    expect(first.status).toBe(201);
    expect(first.requestId).toBeTruthy();
    const second = await call();
    expect(second).toMatchObject({ status: 201, replayed: "true", body: first.body });
  });
});
