/**
 * The one-port listener: HTTP/1.1 and h2c on one port, and a close that does
 * not wait for clients holding idle keep-alive connections.
 */
import http from "node:http";
import http2 from "node:http2";
import { afterEach, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createOnePortServer } from "../src/server/one-port-server.js";

const servers: import("node:net").Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function start(): Promise<number> {
  const { edge, shutdownGraceMs } = loadConfig({});
  const server = createOnePortServer(
    (req, res) => {
      res.setHeader("content-type", "text/plain");
      res.end(`http ${req.httpVersion}`);
    },
    { limits: edge, graceMs: shutdownGraceMs },
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as import("node:net").AddressInfo).port;
}

it("serves HTTP/1.1 and HTTP/2 with prior knowledge on one port", async () => {
  const port = await start();
  const h1 = await new Promise<string>((resolve, reject) => {
    http.get({ port, host: "127.0.0.1" }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve(text));
    }).on("error", reject);
  });
  expect(h1).toBe("http 1.1");
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const h2 = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ":path": "/" });
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => resolve(text));
    req.on("error", reject);
  });
  session.close();
  expect(h2).toBe("http 2.0");
});

it("closes promptly while clients hold idle keep-alive connections", async () => {
  const port = await start();
  const agent = new http.Agent({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    http.get({ port, host: "127.0.0.1", agent }, (res) => {
      res.resume();
      res.on("end", () => resolve());
    }).on("error", reject);
  });
  const session = http2.connect(`http://127.0.0.1:${port}`);
  await new Promise<void>((resolve) => session.on("connect", () => resolve()));
  const started = Date.now();
  await new Promise<void>((resolve) => servers.pop()!.close(() => resolve()));
  expect(Date.now() - started).toBeLessThan(1000);
  agent.destroy();
  session.destroy();
});
