/**
 * The webhook client against real platforms on loopback sockets: when it
 * sends a request again by itself and when it never does. A booking that
 * may have reached the platform is never re-sent by the client; a search on
 * a pooled connection the platform had closed is.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../src/errors.js";
import { IDLE_SOCKET_TIMEOUT_MS, WebhookClient, type WebhookCall } from "../src/platform/webhook-client.js";

interface Delivery {
  readonly connection: number;
  readonly path: string;
  readonly body: string;
}

/** A platform on a loopback port, closed after the test. */
interface TestPlatform {
  /** Its webhook base URL (`/hook`). */
  readonly url: string;
  readonly server: http.Server;
  /** Its connections, in the order they were accepted: connection n is `sockets[n - 1]`. */
  readonly sockets: Socket[];
  /** Connections whose end the platform did not start: the client closed them. */
  closedByClient(): number;
}

/** Starts a platform that hands `serve` each request with its body read whole and the number of its connection (from 1). */
async function testPlatform(serve: (req: http.IncomingMessage, res: http.ServerResponse, body: string, connection: number) => void): Promise<TestPlatform> {
  const sockets: Socket[] = [];
  let closedByClient = 0;
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    serve(req, res, Buffer.concat(chunks).toString(), sockets.indexOf(req.socket) + 1);
  });
  server.on("connection", (socket) => {
    sockets.push(socket);
    socket.on("end", () => closedByClient++);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closeAfter.push(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, server, sockets, closedByClient: () => closedByClient };
}

/**
 * A platform that reads every request whole and then either answers or
 * resets the connection (TCP RST), as `reply` decides. It records every
 * request it read, with the connection it came on.
 */
async function platform(reply: (d: Delivery, index: number) => "answer" | "reset"): Promise<TestPlatform & { deliveries: Delivery[] }> {
  const deliveries: Delivery[] = [];
  const p = await testPlatform((req, res, body, connection) => {
    const d = { connection, path: req.url!, body };
    deliveries.push(d);
    if (reply(d, deliveries.length - 1) === "reset") {
      req.socket.resetAndDestroy();
      return;
    }
    const answer = d.path.endsWith("/bookings") ? { booking: { id: "bkg_1" } } : { availabilities: [] };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  });
  return { ...p, deliveries };
}

const closeAfter: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closeAfter.splice(0).map((close) => close()));
});

function client(idleSocketTimeoutMs?: number): WebhookClient {
  const c = new WebhookClient({ timeoutMs: 2000, idleSocketTimeoutMs });
  closeAfter.push(async () => c.close());
  return c;
}

const call = (url: string, path: string, idempotent: boolean): WebhookCall => ({
  target: { webhookUrl: url, webhookSecret: "whsec_test_0123456789" },
  accountId: "acct_a",
  path,
  payload: { account_id: "acct_a", idempotency_key: "idk_1" },
  idempotent,
});

describe("a booking the platform read whole, then reset the connection", () => {
  it("on a reused keep-alive connection: delivered once, the caller gets platform_unavailable", async () => {
    const p = await platform((d) => (d.path.endsWith("/bookings") ? "reset" : "answer"));
    const c = client();
    await c.post(call(p.url, "/availability/search", true));
    const e = await c.post(call(p.url, "/bookings", false)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GatewayError);
    expect((e as GatewayError).code).toBe("platform_unavailable");
    const bookings = p.deliveries.filter((d) => d.path.endsWith("/bookings"));
    expect(bookings).toHaveLength(1);
    // It went on the search's connection: exactly the case a stale-socket retry would have re-sent.
    expect(bookings[0]!.connection).toBe(p.deliveries[0]!.connection);
  });

  it("on a new connection: delivered once too", async () => {
    const p = await platform(() => "reset");
    const e = await client().post(call(p.url, "/bookings", false)).catch((x: unknown) => x);
    expect((e as GatewayError).code).toBe("platform_unavailable");
    expect(p.deliveries).toHaveLength(1);
  });
});

describe("a search on a keep-alive connection the platform reset", () => {
  it("is sent once more, on a new connection, and answers", async () => {
    // The second request (the first on a reused connection) is reset.
    const p = await platform((_d, i) => (i === 1 ? "reset" : "answer"));
    const c = client();
    await c.post(call(p.url, "/availability/search", true));
    const answer = await c.post(call(p.url, "/availability/search", true));
    expect(answer.status).toBe(200);
    expect(p.deliveries.map((d) => d.connection)).toEqual([1, 1, 2]);
  });

  it("a reset on a new connection is not retried: the platform is failing, not the pool", async () => {
    const p = await platform(() => "reset");
    const e = await client().post(call(p.url, "/availability/search", true)).catch((x: unknown) => x);
    expect((e as GatewayError).code).toBe("platform_unavailable");
    expect(p.deliveries).toHaveLength(1);
  });
});

describe("idle pooled connections", () => {
  it("are closed by the client before common servers would close them", () => {
    // Node's own server default (5 s) is the shortest common keep-alive timeout; Apache's is 5 s too.
    expect(IDLE_SOCKET_TIMEOUT_MS).toBeLessThan(http.createServer().keepAliveTimeout);
  });

  it("the client closes a connection idle for its idle timeout, and the next booking opens a new one", async () => {
    const p = await platform(() => "answer");
    p.server.keepAliveTimeout = 60_000;
    const c = client(200);
    await c.post(call(p.url, "/bookings", false));
    await expect.poll(() => p.closedByClient(), { timeout: 2000, interval: 20 }).toBe(1);
    await c.post(call(p.url, "/bookings", false));
    expect(p.deliveries.map((d) => d.connection)).toEqual([1, 2]);
  });
});

describe("the request a platform receives", () => {
  /** A platform that records the head of every request as it came over the wire. */
  async function recordingPlatform(): Promise<{ port: number; heads: { rawHeaders: string[]; method: string; url: string; body: string }[] }> {
    const heads: { rawHeaders: string[]; method: string; url: string; body: string }[] = [];
    const p = await testPlatform((req, res, body) => {
      heads.push({ rawHeaders: req.rawHeaders, method: req.method!, url: req.url!, body });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    return { port: (p.server.address() as AddressInfo).port, heads };
  }

  const pairs = (raw: string[]) => Array.from({ length: raw.length / 2 }, (_, i) => [raw[2 * i]!.toLowerCase(), raw[2 * i + 1]!] as const);

  it("carries Host, the body's type and length, the signature, the account, the request id and the trace, each once", async () => {
    const p = await recordingPlatform();
    const c = client();
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    await c.post({
      ...call(`http://127.0.0.1:${p.port}/base/`, "/availability/search", true),
      requestId: "req-1",
      trace: { webhook: () => ({ headers: { traceparent, tracestate: "k=v" }, end() {} }) } as unknown as WebhookCall["trace"],
    });
    const head = p.heads[0]!;
    expect(head.method).toBe("POST");
    expect(head.url).toBe("/base/availability/search");
    const headers = pairs(head.rawHeaders);
    const names = headers.map(([n]) => n);
    expect(new Set(names).size).toBe(names.length);
    const byName = new Map(headers);
    expect(byName.get("host")).toBe(`127.0.0.1:${p.port}`);
    expect(byName.get("content-type")).toBe("application/json");
    expect(byName.get("content-length")).toBe(String(Buffer.byteLength(head.body)));
    expect(byName.get("x-dialstack-account-id")).toBe("acct_a");
    expect(byName.get("x-dialstack-signature")).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(byName.get("x-request-id")).toBe("req-1");
    expect(byName.get("traceparent")).toBe(traceparent);
    expect(byName.get("tracestate")).toBe("k=v");
    expect(byName.get("connection")).toBe("keep-alive");
    expect(byName.has("authorization")).toBe(false);
    expect(JSON.parse(head.body)).toEqual({ account_id: "acct_a", idempotency_key: "idk_1" });
  });

  it("sends the credentials of a webhook URL that carries them as Basic authorization, decoded as Node decodes them", async () => {
    const p = await recordingPlatform();
    await client().post(call(`http://hook%40user:p%3Ass@127.0.0.1:${p.port}/hook`, "/availability/search", true));
    const byName = new Map(pairs(p.heads[0]!.rawHeaders));
    expect(byName.get("authorization")).toBe(`Basic ${Buffer.from("hook@user:p:ss").toString("base64")}`);
    expect(byName.get("host")).toBe(`127.0.0.1:${p.port}`);
  });
});

describe("the connections of one platform", () => {
  /**
   * A platform that holds every request until the test lets it answer; it
   * records each request's connection, and any `Keep-Alive` it should announce.
   */
  async function holdingPlatform(keepAlive?: string): Promise<{
    url: string;
    held: { connection: number; body: string; answer: () => void }[];
    closedByClient: () => number;
  }> {
    const held: { connection: number; body: string; answer: () => void }[] = [];
    const p = await testPlatform((_req, res, body, connection) => {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (keepAlive !== undefined) headers["keep-alive"] = keepAlive;
      held.push({ connection, body, answer: () => res.writeHead(200, headers).end("{}") });
    });
    p.server.keepAliveTimeout = 60_000;
    return { url: p.url, held, closedByClient: p.closedByClient };
  }

  const search = (url: string, n: number, signal?: AbortSignal): WebhookCall => ({
    ...call(url, "/availability/search", true),
    payload: { n },
    signal,
  });

  function limited(max: number): WebhookClient {
    const c = new WebhookClient({ timeoutMs: 5000, maxSocketsPerPlatform: max });
    closeAfter.push(async () => c.close());
    return c;
  }

  it("beyond the limit, requests wait and go out in order on the connections that come free", async () => {
    const p = await holdingPlatform();
    const c = limited(2);
    const answers = [1, 2, 3, 4].map((n) => c.post(search(p.url, n)));
    await expect.poll(() => p.held.length).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(p.held).toHaveLength(2);
    p.held[1]!.answer();
    await expect.poll(() => p.held.length).toBe(3);
    expect(p.held[2]!.connection).toBe(p.held[1]!.connection);
    p.held[0]!.answer();
    await expect.poll(() => p.held.length).toBe(4);
    expect(p.held[3]!.connection).toBe(p.held[0]!.connection);
    p.held[2]!.answer();
    p.held[3]!.answer();
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(p.held.map((h) => JSON.parse(h.body).n)).toEqual([1, 2, 3, 4]);
  });

  it("a request cancelled or timed out while it waits for a connection is never sent", async () => {
    const p = await holdingPlatform();
    const c = limited(1);
    const first = c.post(search(p.url, 1));
    await expect.poll(() => p.held.length).toBe(1);
    const caller = new AbortController();
    const cancelled = c.post(search(p.url, 2, caller.signal)).catch((e: unknown) => e);
    const late = c.post({ ...search(p.url, 3), deadline: Date.now() + 100 }).catch((e: unknown) => e);
    caller.abort();
    expect(((await cancelled) as GatewayError).code).toBe("canceled");
    expect(((await late) as GatewayError).code).toBe("platform_timeout");
    p.held[0]!.answer();
    await first;
    const next = c.post(search(p.url, 4));
    await expect.poll(() => p.held.length).toBe(2);
    p.held[1]!.answer();
    await next;
    // Neither waiting request reached the platform, and the connection was not closed for them.
    expect(p.held.map((h) => [JSON.parse(h.body).n, h.connection])).toEqual([
      [1, 1],
      [4, 1],
    ]);
  });

  it("the most recently used idle connection is reused first", async () => {
    const p = await holdingPlatform();
    const c = limited(3);
    const three = [1, 2, 3].map((n) => c.post(search(p.url, n)));
    await expect.poll(() => p.held.length).toBe(3);
    for (const i of [2, 0, 1]) {
      p.held[i]!.answer();
      await three[i];
    }
    const next = c.post(search(p.url, 4));
    await expect.poll(() => p.held.length).toBe(4);
    expect(p.held[3]!.connection).toBe(p.held[1]!.connection);
    p.held[3]!.answer();
    await next;
  });

  it("an idle connection is closed a second before the platform's announced Keep-Alive timeout", async () => {
    const p = await holdingPlatform("timeout=2");
    const c = limited(4);
    const answer = c.post(search(p.url, 1));
    await expect.poll(() => p.held.length).toBe(1);
    const answeredAt = performance.now();
    p.held[0]!.answer();
    await answer;
    await expect.poll(() => p.closedByClient(), { timeout: 3000, interval: 20 }).toBe(1);
    // 2 s less a second; the client's own idle timeout (4 s) would be far later.
    expect(performance.now() - answeredAt).toBeGreaterThan(800);
    expect(performance.now() - answeredAt).toBeLessThan(IDLE_SOCKET_TIMEOUT_MS - 1000);
  });

  it("an answer streamed past the size limit without a Content-Length is refused, and its connection closed", async () => {
    let closed = 0;
    const p = await testPlatform((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(`{"availabilities":[${"0,".repeat(5000)}`);
      res.socket?.on("close", () => closed++);
    });
    const c = new WebhookClient({ timeoutMs: 5000, maxResponseBytes: 4096 });
    closeAfter.push(async () => c.close());
    const e = await c.post(search(p.url, 1)).catch((x: unknown) => x);
    expect((e as GatewayError).code).toBe("platform_invalid_response");
    expect((e as GatewayError).message).toContain("larger than 4096 bytes");
    await expect.poll(() => closed).toBe(1);
  });
});

describe("a pooled connection the platform resets while it is idle", () => {
  it("a search waiting to be written on it is sent on a new connection, and the platform receives it once", async () => {
    const received: number[] = [];
    const p = await testPlatform((_req, res, _body, connection) => {
      received.push(connection);
      res.writeHead(200, { "content-type": "application/json" }).end('{"availabilities":[]}');
    });
    p.server.keepAliveTimeout = 60_000;
    const { url, sockets } = p;
    const c = client();
    await c.post(call(url, "/availability/search", true));
    // From a timer, so that the event loop polls the sockets (and reads the reset) before undici's check of the
    // idle connection, which waits for the same turn's immediates: the request fails before it is written.
    const answer = await new Promise<Promise<unknown>>((resolve) =>
      setTimeout(() => {
        const pending = c.post(call(url, "/availability/search", true));
        sockets[0]!.resetAndDestroy();
        resolve(pending);
      }, 20),
    );
    expect((answer as { status: number }).status).toBe(200);
    expect(received).toEqual([1, 2]);
  });
});

describe("a request undici refuses to make", () => {
  it("fails by itself and leaves the pooled connection it would have used in the pool", async () => {
    const p = await platform(() => "answer");
    const c = client();
    await c.post(call(p.url, "/availability/search", true));
    const e = await c.post({ ...call(p.url, "/availability/search", true), requestId: "bad\nid" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(GatewayError);
    await c.post(call(p.url, "/availability/search", true));
    expect(p.deliveries.map((d) => d.connection)).toEqual([1, 1]);
  });
});
