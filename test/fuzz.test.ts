/**
 * Random input against the built gateway in its own process: random methods,
 * paths, content types, headers and bodies (random bytes, broken envelopes,
 * broken gzip, mangled JSON) over HTTP/1.1 and h2c, and garbage on raw TCP.
 * No answer is a 500 or an `internal` error, nothing is logged as an
 * unexpected error, and the process keeps serving. The run is seeded
 * (`FUZZ_SEED` repeats one) and bounded (`FUZZ_REQUESTS` for a longer run).
 */
import net from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGatewayProcess, type GatewayProcess } from "./support/gateway-process.js";
import { freePort } from "./support/redis-server.js";
import { envelope, H2, h1, type RawRequest, type RawResponse } from "./support/wire.js";

const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 300);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

/** mulberry32: a small seeded PRNG, so a failing run can be repeated. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes `payload` on a fresh TCP connection and half-closes it; reads
 * everything the server sends until it closes the connection, or gives up
 * after `timeoutMs`.
 */
function exchangeRaw(port: number, payload: Buffer, timeoutMs: number): Promise<{ answer: Buffer; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timedOut = false;
    const socket = net.connect(port, "127.0.0.1", () => socket.end(payload));
    socket.setTimeout(timeoutMs, () => {
      timedOut = true;
      socket.destroy();
    });
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => {});
    socket.on("close", () => resolve({ answer: Buffer.concat(chunks), closedByServer: !timedOut }));
  });
}

const GOAWAY = 0x07;

/** The types of the HTTP/2 frames in `bytes`, in order. */
function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= bytes.length; at += 9 + bytes.readUIntBE(at, 3)) types.push(bytes[at + 3]!);
  return types;
}

const random = prng(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
const printable = (n: number) => String.fromCharCode(...Array.from({ length: n }, () => 0x20 + int(95)));

let gw: GatewayProcess;
let base: string;
let key: string;

beforeAll(async () => {
  const port = await freePort();
  gw = await startGatewayProcess({ PORT: String(port), MAX_REQUEST_BYTES: "4096", LOG_LEVEL: "warn" }, { entry: "dist" });
  key = (await gw.waitFor(/^\s+(sk_ptnr_\S+)$/m))[1]!;
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await gw?.stop();
});

const SEARCH_PATH = "/dialstack.partner.v1.AvailabilityService/SearchAvailability";
const BOOK_PATH = "/dialstack.partner.v1.BookingService/CreateBooking";
const LOOKUP_PATH = "/dialstack.partner.v1.CustomerService/LookupCustomer";
/** The served methods weigh most. */
const PATHS = [
  SEARCH_PATH,
  SEARCH_PATH,
  SEARCH_PATH,
  BOOK_PATH,
  BOOK_PATH,
  BOOK_PATH,
  LOOKUP_PATH,
  LOOKUP_PATH,
  "/dialstack.partner.v1.AvailabilityService/StreamAvailability",
  "/dialstack.partner.v1.BotSessionService/Converse",
  "/dialstack.partner.v1.AvailabilityService/Nope",
  "/v1/availability/search",
  "/v1/availability/search:stream",
  "/v1/bookings",
  "/v1/customers/lookup",
  "/healthz",
  "/",
];
const CONTENT_TYPES = [
  "application/json",
  "application/proto",
  "application/connect+json",
  "application/connect+proto",
  "application/grpc",
  "application/grpc+proto",
  "application/grpc+json",
  "application/grpc-web",
  "application/grpc-web+proto",
  "application/grpc-web+json",
  "application/grpc-web-text",
  "text/plain",
  "application/json; charset=utf-16",
];
const SEARCH = { bot_id: "bot_demo", query: { filter: { start_at_range: { start_at: "2030-01-07T09:00:00Z", end_at: "2030-01-07T12:00:00Z" } } } };
const BOOKING = { bot_id: "bot_demo", booking: { start_at: "2030-01-07T09:00:00Z", duration_minutes: 30, customer: { phone: "+15551234567", name: "J" } } };

function randomHeaders(): Record<string, string> {
  const h: Record<string, string> = {};
  if (random() < 0.9) h["content-type"] = random() < 0.9 ? pick(CONTENT_TYPES) : printable(int(30));
  if (random() < 0.7) h.authorization = pick([`Bearer ${key}`, `Bearer ${key}`, "Bearer sk_ptnr_" + printable(int(300)).replace(/\s/g, "x"), printable(int(40)), "Basic abc"]);
  if (random() < 0.3) h["connect-timeout-ms"] = pick(["0", "1", "50", "-1", "99999999999", printable(int(8))]);
  if (random() < 0.3) h["grpc-timeout"] = pick(["1S", "0m", "50m", "99999999H", "1x", printable(int(8))]);
  if (random() < 0.3) h[pick(["content-encoding", "grpc-encoding", "connect-content-encoding"])] = pick(["gzip", "identity", "br", "deflate", printable(int(10))]);
  if (random() < 0.3) h["connect-protocol-version"] = pick(["1", "2", printable(int(4))]);
  if (random() < 0.3) h["idempotency-key"] = pick(["k" + int(1e9), printable(int(300)), " padded "]);
  if (random() < 0.2) h["grpc-accept-encoding"] = pick(["gzip", printable(int(10))]);
  if (random() < 0.2) h["x-request-id"] = printable(int(200));
  return h;
}

/** A lookup of the demo caller, or of a random phone number (printable junk, or digits of any length). */
function lookupOf(): object {
  const phone = pick(["+14155550123", "+" + "9".repeat(int(20)), printable(int(20))]);
  return { bot_id: "bot_demo", customer: { phone } };
}

function randomBody(): Buffer {
  const json = Buffer.from(JSON.stringify(pick([SEARCH, BOOKING, lookupOf()])));
  switch (int(9)) {
    case 0:
      return bytes(int(6000));
    case 1:
      return json;
    case 2:
      return json.subarray(0, int(json.length));
    case 3:
    case 4:
      return envelope(random() < 0.5 ? json : bytes(int(200)), pick([0, 0, 1, 2, 0x80, 0xff]), random() < 0.5 ? undefined : int(10_000));
    case 5:
      return gzipSync(random() < 0.5 ? json : bytes(int(500)));
    case 6:
      return envelope(gzipSync(json), 1);
    case 7:
      return Buffer.concat([envelope(json), envelope(json)]);
    default:
      return Buffer.alloc(0);
  }
}

function randomRequest(): RawRequest {
  const method = pick(["POST", "POST", "POST", "GET", "PUT", "OPTIONS", "DELETE"]);
  let path = random() < 0.9 ? pick(PATHS) : "/" + encodeURIComponent(printable(int(40)));
  if (method === "GET" && random() < 0.7) {
    path += `?connect=${pick(["v1", "v2", ""])}&encoding=${pick(["json", "proto", "xml"])}&message=${encodeURIComponent(randomBody().toString("latin1"))}`;
    if (random() < 0.3) path += `&base64=1&compression=${pick(["gzip", "identity", "zz"])}`;
  }
  return { method, path, headers: randomHeaders(), body: method === "GET" ? undefined : randomBody() };
}

/** Signs of an `internal` answer in any protocol's framing. */
function internalError(res: RawResponse): string | undefined {
  if (res.status === 500) return "HTTP 500";
  if (res.headers["grpc-status"] === "13" || res.trailers["grpc-status"] === "13") return "grpc-status 13";
  const text = res.body.toString("latin1");
  if (/grpc-status:\s*13\b/.test(text)) return "grpc-web trailer status 13";
  if (/"code"\s*:\s*"internal"/.test(text)) return "Connect code internal";
  return undefined;
}

describe(`fuzzing the running gateway (FUZZ_SEED=${SEED})`, () => {
  it(`${REQUESTS} random requests: no 500, no internal error, the process keeps serving`, async () => {
    const h2 = new H2(base);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < REQUESTS; i++) {
      const req = randomRequest();
      const viaH2 = random() < 0.5;
      let res: RawResponse;
      try {
        res = viaH2 ? await h2.request(req, 5000) : await h1(base, req, 5000);
      } catch {
        // The server may refuse a request at the HTTP layer (a reset stream,
        // a closed connection); that is not an answer to judge.
        continue;
      }
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const internal = internalError(res);
      if (internal !== undefined) {
        failures.push(`#${i} ${viaH2 ? "h2" : "h1"} ${req.method} ${req.path} ${JSON.stringify(req.headers)}: ${internal}`);
      }
    }
    h2.close();
    expect(failures, `seed ${SEED}`).toEqual([]);
    // The loop must have exercised the server, not just failed to connect.
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(REQUESTS * 0.8);
  });

  it("garbage on raw TCP connections: a 400 or a GOAWAY, and the server closes every connection", async () => {
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const badRequest = (answer: Buffer) => /^HTTP\/1\.1 400 /.test(answer.toString("latin1"));
    const cases: [name: string, payload: Buffer, expected: (answer: Buffer) => boolean][] = [
      ["random bytes", bytes(2000), badRequest],
      ["the HTTP/2 preface, then garbage", Buffer.concat([preface, bytes(500)]), (answer) => frameTypes(answer).includes(GOAWAY)],
      ["part of the preface, then the end", preface.subarray(0, 10), (answer) => answer.length === 0],
      ["a negative Content-Length", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"), badRequest],
      ["a broken chunk", Buffer.from("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), badRequest],
      ["blank lines, then the end", Buffer.from("\r\n\r\n\r\n"), (answer) => answer.length === 0],
    ];
    const port = Number(new URL(base).port);
    const outcomes = await Promise.all(cases.map(([, payload]) => exchangeRaw(port, payload, 3000)));
    const unexpected = cases.flatMap(([name, , expected], i) => {
      const { answer, closedByServer } = outcomes[i]!;
      return closedByServer && expected(answer) ? [] : [`${name}: ${closedByServer ? "closed" : "still open after 3 s"}, answered ${JSON.stringify(answer.toString("latin1").slice(0, 80))}`];
    });
    expect(unexpected).toEqual([]);
  });

  it("still serves, and logged no unexpected error", async () => {
    const body = Buffer.from(JSON.stringify(SEARCH));
    const res = await h1(base, {
      path: "/dialstack.partner.v1.AvailabilityService/SearchAvailability",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body,
    });
    expect(res.status).toBe(200);
    expect(gw.child.exitCode).toBeNull();
    const errors = gw
      .stdout()
      .split("\n")
      .filter((line) => /"level":(50|60)/.test(line));
    expect(errors).toEqual([]);
    expect(gw.stderr()).not.toMatch(/Error|uncaught|unhandled/i);
  });
});
