/**
 * The listener's bounds on connections, on a real gateway, in clear and over
 * TLS: a connection that sends nothing, half a preface or its headers too
 * slowly is closed; HTTP/1.1 header, request and keep-alive timeouts hold;
 * an idle HTTP/2 session gets a GOAWAY; connections age out; the caps in
 * total and per client address refuse new connections while the connections
 * already serving a partner keep working; a session that resets its streams
 * before they are answered is ended with ENHANCE_YOUR_CALM, while one whose
 * calls expire at their deadline (a gRPC client resets each one) keeps its
 * connection and its address. Timeouts are
 * configured short so the bounds show within a test.
 */
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestCertificate, opensslProgram, type TestCertificate } from "./support/certificate.js";
import { searchBody, startHarness, type Harness } from "./support/harness.js";
import { parsePrometheusText, sampleValue } from "./support/prometheus-text.js";

/** How many connections or sessions the gateway refused or ended for `reason` (`gateway_edge_refusals_total`). */
async function edgeRefusals(h: Harness, reason: string): Promise<number> {
  return sampleValue(parsePrometheusText(await (await fetch(`${h.url}/metrics`)).text()), "gateway_edge_refusals_total", { reason });
}

const SHORT = {
  FIRST_REQUEST_TIMEOUT_MS: "600",
  HEADERS_TIMEOUT_MS: "600",
  REQUEST_TIMEOUT_MS: "900",
  KEEP_ALIVE_TIMEOUT_MS: "600",
  HTTP2_IDLE_TIMEOUT_MS: "600",
};

interface Raw {
  readonly socket: net.Socket;
  /** Everything received so far. */
  received(): string;
  /** Milliseconds from connect to close, once closed. */
  readonly closed: Promise<number>;
}

async function openRaw(port: number, options: { localAddress?: string; tls?: { ca: Buffer; alpn: string } } = {}): Promise<Raw> {
  const started = performance.now();
  const socket = options.tls
    ? tls.connect({ host: "127.0.0.1", port, ca: options.tls.ca, ALPNProtocols: [options.tls.alpn], servername: "localhost" })
    : net.connect({ host: "127.0.0.1", port, localAddress: options.localAddress });
  let text = "";
  socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
  socket.on("error", () => {});
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(performance.now() - started)));
  await new Promise<void>((resolve, reject) => {
    socket.once(options.tls ? "secureConnect" : "connect", () => resolve());
    socket.once("close", () => reject(new Error("closed before connecting")));
  });
  return { socket, received: () => text, closed };
}

function request(key: string, path = "/healthz"): string {
  return `GET ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${key}\r\n\r\n`;
}

/** Resolves with the HTTP status once a whole answer to a GET arrived on `raw`. */
async function answerOn(raw: Raw, from = 0): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const text = raw.received().slice(from);
    const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
    if (m && text.includes("\r\n\r\n")) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no answer");
}

/** On a connection that is served, a later request whose headers come one line every 100 ms is answered 408. */
async function expectSlowHeadersTimedOut(raw: Raw, key: string): Promise<void> {
  raw.socket.write(request(key));
  expect(await answerOn(raw)).toBe(200);
  const seen = raw.received().length;
  raw.socket.write("GET /healthz HTTP/1.1\r\nHost: gw\r\n");
  const drip = setInterval(() => raw.socket.write("X-A: b\r\n"), 100);
  try {
    expect(await answerOn(raw, seen)).toBe(408);
  } finally {
    clearInterval(drip);
  }
}

async function h2Search(session: http2.ClientHttp2Session, h: Harness): Promise<number> {
  const req = session.request({
    ":method": "POST",
    ":path": "/v1/availability/search",
    authorization: `Bearer ${h.keys.a}`,
    "content-type": "application/json",
  });
  req.end(JSON.stringify(searchBody(h.bots.a)));
  return new Promise<number>((resolve, reject) => {
    req.on("response", (headers) => {
      req.resume();
      req.on("end", () => resolve(Number(headers[":status"])));
    });
    req.on("error", reject);
  });
}

function goaway(session: http2.ClientHttp2Session): Promise<number> {
  return new Promise((resolve) => session.once("goaway", (code: number) => resolve(code)));
}

/**
 * An HTTP/2 client written frame by frame, as a rapid-reset attacker writes
 * it: HEADERS without END_STREAM, then RST_STREAM CANCEL at once. (Node's own
 * client ends a request before resetting it, which the gateway may answer
 * first.) It can also send complete GET requests and wait for their answers.
 */
class RawH2 {
  private nextId = 1;
  private buffered = Buffer.alloc(0);
  private readonly ended = new Map<number, () => void>();
  /** The error code of the first GOAWAY received, if any. */
  goawayCode: number | undefined;
  readonly closed: Promise<void>;

  private constructor(
    private readonly socket: net.Socket,
    private readonly key: string,
  ) {
    socket.on("data", (d: Buffer) => this.read(d));
    socket.on("error", () => {});
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), RawH2.frame(0x4, 0, 0, Buffer.alloc(0))]));
  }

  static async connect(port: number, localAddress: string, key: string): Promise<RawH2> {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    return new RawH2(socket, key);
  }

  get open(): boolean {
    return !this.socket.destroyed && this.goawayCode === undefined;
  }

  /** Opens `n` search streams and resets each at once, all in one write. */
  resetStreams(n: number): void {
    const frames: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.takeId();
      frames.push(RawH2.frame(0x1, 0x4, id, this.headerBlock("POST", "/v1/availability/search")));
      frames.push(RawH2.frame(0x3, 0, id, Buffer.from([0, 0, 0, http2.constants.NGHTTP2_CANCEL])));
    }
    this.socket.write(Buffer.concat(frames));
  }

  /** Sends `n` GETs of /healthz and resolves once each was answered. */
  async answered(n: number): Promise<void> {
    const done: Promise<void>[] = [];
    const frames: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.takeId();
      done.push(new Promise((resolve) => this.ended.set(id, resolve)));
      frames.push(RawH2.frame(0x1, 0x4 | 0x1, id, this.headerBlock("GET", "/healthz")));
    }
    this.socket.write(Buffer.concat(frames));
    await Promise.all(done);
  }

  close(): void {
    this.socket.destroy();
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId += 2;
    return id;
  }

  /** HPACK literals without indexing, so no table is needed. */
  private headerBlock(method: string, path: string): Buffer {
    const fields: [string, string][] = [
      [":method", method],
      [":scheme", "http"],
      [":authority", "127.0.0.1"],
      [":path", path],
      ["authorization", `Bearer ${this.key}`],
      ["content-type", "application/json"],
    ];
    return Buffer.concat(fields.map(([n, v]) => Buffer.concat([Buffer.from([0, n.length]), Buffer.from(n), Buffer.from([v.length]), Buffer.from(v)])));
  }

  private read(data: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, data]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) return;
      const type = this.buffered[3]!;
      const flags = this.buffered[4]!;
      const id = this.buffered.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buffered.subarray(9, 9 + length);
      this.buffered = this.buffered.subarray(9 + length);
      if (type === 0x4 && (flags & 0x1) === 0) this.socket.write(RawH2.frame(0x4, 0x1, 0, Buffer.alloc(0)));
      if (type === 0x7) this.goawayCode ??= payload.readUInt32BE(4);
      if (((type === 0x0 || type === 0x1) && (flags & 0x1) !== 0) || type === 0x3) this.ended.get(id)?.();
    }
  }

  private static frame(type: number, flags: number, id: number, payload: Buffer): Buffer {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(id, 5);
    return Buffer.concat([header, payload]);
  }
}

describe("in clear", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: SHORT });
  });
  afterAll(() => h.close());

  it("closes a connection that sends nothing, or half a preface, after the first-request timeout", async () => {
    const silent = await openRaw(h.port);
    const partial = await openRaw(h.port);
    partial.socket.write("PRI * HTTP/2.0\r\n");
    const slowHeaders = await openRaw(h.port);
    slowHeaders.socket.write("GET /healthz HTTP/1.1\r\nHost: gw\r\n");
    const drip = setInterval(() => slowHeaders.socket.write("X-A: b\r\n"), 100);
    const times = await Promise.all([silent.closed, partial.closed, slowHeaders.closed]);
    clearInterval(drip);
    for (const t of times) {
      expect(t).toBeGreaterThan(500);
      expect(t).toBeLessThan(5000);
    }
  });

  it("answers 408 to a later request whose headers come too slowly, and to a body that comes too slowly", async () => {
    const raw = await openRaw(h.port);
    await expectSlowHeadersTimedOut(raw, h.keys.a);
    await raw.closed;

    const body = await openRaw(h.port);
    body.socket.write(`POST /v1/availability/search HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nAuthorization: Bearer ${h.keys.a}\r\nContent-Length: 500\r\n\r\n{`);
    const drip2 = setInterval(() => body.socket.write(" "), 100);
    expect(await answerOn(body)).toBe(408);
    clearInterval(drip2);
    expect(await body.closed).toBeLessThan(5000);
  });

  it("closes an idle keep-alive connection after the keep-alive timeout", async () => {
    const raw = await openRaw(h.port);
    raw.socket.write(request(h.keys.a));
    expect(await answerOn(raw)).toBe(200);
    const answered = performance.now();
    await raw.closed;
    const idle = performance.now() - answered;
    expect(idle).toBeGreaterThan(500);
    expect(idle).toBeLessThan(5000);
  });

  it("sends GOAWAY to an HTTP/2 session with no open stream after the idle timeout, not while a stream is open", async () => {
    const session = http2.connect(h.url);
    session.on("error", () => {});
    const away = goaway(session);
    h.script = async () => {
      await new Promise((r) => setTimeout(r, 1200));
      return undefined;
    };
    // A request longer than the idle timeout keeps the session.
    expect(await h2Search(session, h)).toBe(200);
    const answered = performance.now();
    expect(await away).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(performance.now() - answered).toBeGreaterThan(500);
    await new Promise<void>((resolve) => (session.closed ? resolve() : session.once("close", () => resolve())));
  });

  it("ends a session that resets its streams before they are answered, and only that one", async () => {
    const good = http2.connect(h.url);
    expect(await h2Search(good, h)).toBe(200);
    const bad = await RawH2.connect(h.port, "127.0.0.6", h.keys.a);
    for (let i = 0; i < 30 && bad.open; i++) {
      bad.resetStreams(20);
      await new Promise((r) => setTimeout(r, 5));
    }
    await bad.closed;
    expect(bad.goawayCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(await h2Search(good, h)).toBe(200);
    good.close();
    // Its address is cooling down: a new connection from it is refused at once, another address is served.
    const again = await openRaw(h.port, { localAddress: "127.0.0.6" }).then((r) => r.closed, () => 0);
    expect(again).toBeLessThan(1000);
    const other = await openRaw(h.port, { localAddress: "127.0.0.7" });
    other.socket.write(request(h.keys.a));
    expect(await answerOn(other)).toBe(200);
    other.socket.destroy();
    expect(await edgeRefusals(h, "http2_reset_flood")).toBe(1);
    expect(await edgeRefusals(h, "cooling_down")).toBeGreaterThanOrEqual(1);
  });

  it("counts a flood of whole requests that the client resets at once, which the gateway answers at once", async () => {
    // Node's client sends each request whole (END_STREAM) before its RST_STREAM: the gateway answers
    // 400 at once, and the reset arrives while that answer is still on its way.
    const before = await edgeRefusals(h, "http2_reset_flood");
    const flood = http2.connect(h.url, { localAddress: "127.0.0.10" } as http2.SecureClientSessionOptions);
    flood.on("error", () => {});
    const closed = new Promise<void>((resolve) => flood.once("close", () => resolve()));
    for (let i = 0; i < 40 && !flood.closed && !flood.destroyed; i++) {
      for (let j = 0; j < 50; j++) {
        try {
          const stream = flood.request({ ":method": "POST", ":path": "/v1/availability/search", authorization: `Bearer ${h.keys.a}`, "content-type": "application/json" });
          stream.on("error", () => {});
          stream.close(http2.constants.NGHTTP2_CANCEL);
        } catch {
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await closed;
    // Judged a reset flood (whichever bound ended the session), so its address cools down.
    expect(await edgeRefusals(h, "http2_reset_flood")).toBe(before + 1);
    const again = await openRaw(h.port, { localAddress: "127.0.0.10" }).then((r) => r.closed, () => 0);
    expect(again).toBeLessThan(1000);
  });

  it("advertises at most HTTP2_MAX_CONCURRENT_STREAMS streams per session", async () => {
    const session = http2.connect(h.url);
    const settings = await new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve));
    expect(settings.maxConcurrentStreams).toBe(100);
    session.close();
  });
});

describe("resets of honest clients", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("keeps the connection and the address of a gRPC client whose calls expire at their deadline", async () => {
    const definition = protoLoader.loadSync("dialstack/partner/v1/availability.proto", {
      includeDirs: [fileURLToPath(new URL("../proto", import.meta.url))],
      keepCase: true,
      longs: String,
    });
    const v1 = (grpc.loadPackageDefinition(definition) as any).dialstack.partner.v1;
    const client = new v1.AvailabilityService(`127.0.0.1:${h.port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
    const body = searchBody(h.bots.a);
    const range = body.query.filter.start_at_range;
    const ts = (iso: string) => ({ seconds: String(Date.parse(iso) / 1000), nanos: 0 });
    const request = { bot_id: h.bots.a, query: { filter: { start_at_range: { start_at: ts(range.start_at), end_at: ts(range.end_at) } } } };
    const search = (deadlineMs: number) =>
      new Promise<number>((resolve) => {
        const md = new grpc.Metadata();
        md.set("authorization", `Bearer ${h.keys.a}`);
        client.SearchAvailability!(request, md, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null) => resolve(err?.code ?? grpc.status.OK));
      });
    try {
      expect(await search(5000)).toBe(grpc.status.OK);
      let connections = 0;
      const onConnection = () => connections++;
      h.app.server.on("connection", onConnection);
      // A platform slower than every deadline: the client resets each call (RST_STREAM CANCEL) before it is answered.
      h.script = async () => {
        await new Promise((r) => setTimeout(r, 400));
        return undefined;
      };
      const codes: number[] = [];
      for (let batch = 0; batch < 4; batch++) codes.push(...(await Promise.all(Array.from({ length: 50 }, () => search(50)))));
      expect(codes.filter((c) => c === grpc.status.DEADLINE_EXCEEDED)).toHaveLength(200);
      h.script = undefined;
      expect(await search(5000)).toBe(grpc.status.OK);
      h.app.server.off("connection", onConnection);
      // Served on the connection it had: no GOAWAY made the client open another (which its address's cool-down would refuse).
      expect(connections).toBe(0);
      expect(await edgeRefusals(h, "http2_reset_flood")).toBe(0);
    } finally {
      client.close();
    }
  });

  it("keeps a connection whose resets are a minority of its calls, and ends one whose resets are the majority", async () => {
    const client = await RawH2.connect(h.port, "127.0.0.8", h.keys.a);
    // 300 answered calls and 280 resets: more resets than HTTP2_MAX_PREMATURE_RESETS (250), but not most of the streams.
    for (let i = 0; i < 20; i++) {
      await client.answered(15);
      client.resetStreams(14);
    }
    await client.answered(1);
    expect(client.goawayCode).toBeUndefined();
    // Resets alone from here on soon make the majority.
    for (let i = 0; i < 50 && client.open; i++) {
      client.resetStreams(20);
      await new Promise((r) => setTimeout(r, 5));
    }
    await client.closed;
    expect(client.goawayCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  });
});

describe("connection caps", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { MAX_CONNECTIONS: "12", MAX_CONNECTIONS_PER_CLIENT: "8", FIRST_REQUEST_TIMEOUT_MS: "5000" } });
  });
  afterAll(() => h.close());

  it("refuses an address's connections past its cap; other addresses are served", async () => {
    const held = await Promise.all(Array.from({ length: 8 }, () => openRaw(h.port, { localAddress: "127.0.0.2" })));
    const refused = await openRaw(h.port, { localAddress: "127.0.0.2" }).then((r) => r.closed, () => 0);
    expect(refused).toBeLessThan(1000);
    const other = await openRaw(h.port, { localAddress: "127.0.0.3" });
    other.socket.write(request(h.keys.a));
    expect(await answerOn(other)).toBe(200);
    for (const r of [...held, other]) r.socket.destroy();
  });

  it("at the total cap, a new connection closes the oldest that sent no request; connections serving a partner are kept", async () => {
    const partner = http2.connect(h.url);
    expect(await h2Search(partner, h)).toBe(200);
    const silent: Raw[] = [];
    for (let i = 0; i < 11; i++) silent.push(await openRaw(h.port, { localAddress: `127.0.0.${4 + (i % 3)}` }));
    // Twelve open: the partner and eleven silent. A new client is served, and the oldest silent one goes.
    const newcomer = await openRaw(h.port, { localAddress: "127.0.0.9" });
    newcomer.socket.write(request(h.keys.a));
    expect(await answerOn(newcomer)).toBe(200);
    expect(await silent[0]!.closed).toBeLessThan(5000);
    expect(await h2Search(partner, h)).toBe(200);
    for (const r of [...silent, newcomer]) r.socket.destroy();
    partner.close();
  });

  it("when every open connection has sent a request, refuses the new one and keeps serving the others", async () => {
    const busy: Raw[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await openRaw(h.port, { localAddress: `127.0.1.${1 + (i % 4)}` });
      r.socket.write(request(h.keys.a));
      expect(await answerOn(r)).toBe(200);
      busy.push(r);
    }
    const refused = await openRaw(h.port, { localAddress: "127.0.1.9" }).then((r) => r.closed, () => 0);
    expect(refused).toBeLessThan(1000);
    const seen = busy[0]!.received().length;
    busy[0]!.socket.write(request(h.keys.a));
    expect(await answerOn(busy[0]!, seen)).toBe(200);
    for (const r of busy) r.socket.destroy();
  });
});

describe("maximum connection age", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { MAX_CONNECTION_AGE_SECONDS: "1" } });
  });
  afterAll(() => h.close());

  it("sends GOAWAY to an HTTP/2 session and closes an HTTP/1.1 connection once they are older", async () => {
    const session = http2.connect(h.url);
    session.on("error", () => {});
    const away = goaway(session);
    expect(await h2Search(session, h)).toBe(200);
    const raw = await openRaw(h.port);
    raw.socket.write(request(h.keys.a));
    expect(await answerOn(raw)).toBe(200);
    expect(await away).toBe(http2.constants.NGHTTP2_NO_ERROR);
    const age = await raw.closed;
    expect(age).toBeGreaterThan(900);
    expect(age).toBeLessThan(5000);
  });
});

describe.skipIf(opensslProgram.skip)("over TLS", () => {
  let certificate: TestCertificate;
  let h: Harness;
  beforeAll(async () => {
    certificate = makeTestCertificate();
    h = await startHarness({ env: { ...SHORT, TLS_CERT_FILE: certificate.cert, TLS_KEY_FILE: certificate.key } });
  });
  afterAll(async () => {
    await h.close();
    certificate.remove();
  });

  it("closes a TCP connection that never starts its TLS handshake", async () => {
    const silent = await openRaw(h.port);
    const t = await silent.closed;
    expect(t).toBeGreaterThan(500);
    expect(t).toBeLessThan(5000);
  });

  it("closes an HTTP/1.1 connection that sends no request, and answers 408 to slow headers later on", async () => {
    const idle = await openRaw(h.port, { tls: { ca: certificate.ca, alpn: "http/1.1" } });
    expect(await idle.closed).toBeLessThan(5000);
    const raw = await openRaw(h.port, { tls: { ca: certificate.ca, alpn: "http/1.1" } });
    await expectSlowHeadersTimedOut(raw, h.keys.a);
  });

  it("closes an idle HTTP/1.1 keep-alive connection after the keep-alive timeout", async () => {
    const raw = await openRaw(h.port, { tls: { ca: certificate.ca, alpn: "http/1.1" } });
    raw.socket.write(request(h.keys.a));
    expect(await answerOn(raw)).toBe(200);
    const answered = performance.now();
    await raw.closed;
    expect(performance.now() - answered).toBeLessThan(5000);
  });

  it("sends GOAWAY to an idle HTTP/2 session", async () => {
    const session = http2.connect(`https://127.0.0.1:${h.port}`, { ca: certificate.ca, servername: "localhost" });
    session.on("error", () => {});
    const away = goaway(session);
    expect(await h2Search(session, h)).toBe(200);
    expect(await away).toBe(http2.constants.NGHTTP2_NO_ERROR);
  });
});
