/**
 * The partner-facing REST guide (the README's REST section) is tested as written: each
 * `curl` example runs against a gateway, once as the same request sent with
 * plain `node:http` and once with `curl` itself, and must answer with the
 * status, headers and JSON shape the guide shows beneath it.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SEARCH_SAMPLE } from "../src/rest/openapi.js";
import { send } from "./support/http1.js";
import { parseEvents } from "./support/server-sent-events.js";
import { startHarness, type Harness } from "./support/harness.js";
import { curl } from "./support/system-programs.js";

const DOCUMENTED_BASE_URL = "https://appointments.dialstack.ai";
const DOCUMENTED_KEY = "sk_ptnr_YOUR_PARTNER_KEY";

interface Example {
  readonly command: string;
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: unknown;
}

/** Each ```sh block with a curl command, and the ```http answer that follows it. */
function examples(markdown: string): Example[] {
  const blocks = [...markdown.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, text: m[2]! }));
  const out: Example[] = [];
  blocks.forEach((block, i) => {
    if (block.lang !== "sh" || !block.text.trimStart().startsWith("curl")) return;
    const answer = blocks[i + 1];
    // Examples shown with their answer; "has the examples this test expects" pins the list.
    if (answer?.lang !== "http") return;
    const split = answer!.text.indexOf("\n\n");
    const [head, body] = [answer!.text.slice(0, split), answer!.text.slice(split + 2)];
    const [statusLine, ...headerLines] = head.split("\n");
    out.push({
      command: block.text.replace(/\\\n/g, " ").trim(),
      status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine!)![1]),
      headers: headerLines.map((l) => l.split(":")[0]!.toLowerCase()),
      body: bodyOf(body),
    });
  });
  return out;
}

/** A JSON body, or a Server-Sent Events body as its events with their JSON data. */
function bodyOf(text: string): unknown {
  if (!text.startsWith("event:")) return JSON.parse(text);
  return parseEvents(text).map((e) => ({ event: e.event, data: JSON.parse(e.data) }));
}

/** Splits a command line the way a POSIX shell does for single-quoted words. */
function words(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/** The HTTP request a curl command line sends (the options the guide uses). */
function requestOf(command: string): { url: string; method: string; headers: Record<string, string>; body: string | undefined } {
  const argv = words(command);
  expect(argv[0]).toBe("curl");
  let url = "";
  let method: string | undefined;
  let body: string | undefined;
  const headers: Record<string, string> = {};
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-H") {
      const [name, ...value] = argv[++i]!.split(":");
      headers[name!.trim()] = value.join(":").trim();
    } else if (arg === "-d" || arg === "--data") body = argv[++i];
    else if (arg === "-X") method = argv[++i];
    else if (arg.startsWith("-")) expect(["-s", "-S", "-sS", "-i", "-N"], `curl option ${arg}`).toContain(arg);
    else url = arg;
  }
  return { url, method: method ?? (body === undefined ? "GET" : "POST"), headers, body };
}

/** The structure of a JSON value: keys and value types, arrays by their first element. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? [] : [shape(v[0])];
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]).sort(([a], [b]) => String(a).localeCompare(String(b))));
  return typeof v;
}

function expectLikeDocumented(example: Example, status: number, headers: Record<string, unknown>, body: unknown): void {
  expect(status, JSON.stringify(body)).toBe(example.status);
  for (const name of example.headers) expect(headers[name], name).toBeDefined();
  expect(shape(body)).toEqual(shape(example.body));
  if (Array.isArray(example.body)) expect((body as { event: string }[]).map((e) => e.event)).toEqual(example.body.map((e: { event: string }) => e.event));
  const code = (example.body as { error?: { code?: string } }).error?.code;
  if (code !== undefined) expect((body as { error: { code: string } }).error.code).toBe(code);
}

const guide = examples(readFileSync(new URL("../README.md", import.meta.url), "utf8"));
const curlProgram = curl("the README examples run with curl");

let h: Harness;
beforeEach(async () => {
  // A fresh platform for each run, so the guide's booking is a new booking every time.
  h = await startHarness();
  await h.gateway.directory.store.putBot({ id: SEARCH_SAMPLE.bot_id, partnerId: h.partners.a, accountId: h.accounts.a });
});
afterEach(() => h.close());

const localize = (text: string) => text.replaceAll(DOCUMENTED_BASE_URL, h.url).replaceAll(DOCUMENTED_KEY, h.keys.a);

it("has the examples this test expects", () => {
  expect(guide.map((e) => `${requestOf(e.command).url} ${e.status}`)).toEqual([
    `${DOCUMENTED_BASE_URL}/v1/customers/lookup 200`,
    `${DOCUMENTED_BASE_URL}/v1/availability/search 200`,
    `${DOCUMENTED_BASE_URL}/v1/availability/search:stream 200`,
    `${DOCUMENTED_BASE_URL}/v1/bookings 201`,
    `${DOCUMENTED_BASE_URL}/v1/bookings 400`,
  ]);
});

describe("README REST examples", () => {
  it("answer as documented when sent with node:http over HTTP/1.1", async () => {
    for (const example of guide) {
      const req = requestOf(localize(example.command));
      const res = await send(req.url, { method: req.method, headers: req.headers, body: req.body });
      expectLikeDocumented(example, res.status, res.headers, bodyOf(res.text));
    }
  });

  it.skipIf(curlProgram.skip)("answer as documented when run with curl", async () => {
    for (const example of guide) {
      // Asynchronously: the gateway answering curl runs in this process.
      const { stdout: output } = await promisify(execFile)("bash", ["-c", localize(example.command)], { encoding: "utf8", timeout: 15_000 });
      const [head, body] = output.split(/\r\n\r\n/, 2) as [string, string];
      const [statusLine, ...lines] = head.split("\r\n");
      const headers = Object.fromEntries(lines.map((l) => [l.split(":")[0]!.toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      expectLikeDocumented(example, Number(statusLine!.split(" ")[1]), headers, bodyOf(body));
    }
  });
});
