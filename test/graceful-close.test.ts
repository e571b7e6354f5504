/**
 * Closing the one-port server: idle keep-alive connections do not hold the
 * shutdown for the grace period (HTTP/1.1 in clear and over TLS, HTTP/2),
 * and a request in flight still gets its answer.
 */
import http from "node:http";
import https from "node:https";
import { afterAll, describe, expect, it } from "vitest";
import { makeTestCertificate, opensslProgram, type TestCertificate } from "./support/certificate.js";
import { searchBody, startHarness, type Harness } from "./support/harness.js";
import { H2 } from "./support/wire.js";

const SEARCH = "/dialstack.partner.v1.AvailabilityService/SearchAvailability";

let certificate: TestCertificate | undefined;
/** The certificate, made by the first TLS test (the tests in clear need no openssl). */
const tls = (): TestCertificate => (certificate ??= makeTestCertificate());
afterAll(() => certificate?.remove());

/** A search over HTTP/1.1 on a keep-alive agent that never drops idle sockets by itself. */
function searchH1(h: Harness, agent: http.Agent, secure: boolean): Promise<number> {
  const body = JSON.stringify(searchBody(h.bots.a));
  const request = secure ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      `${secure ? "https" : "http"}://127.0.0.1:${h.port}${SEARCH}`,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", authorization: `Bearer ${h.keys.a}` },
        ...(secure ? { ca: tls().ca } : {}),
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function timedClose(h: Harness): Promise<number> {
  const started = Date.now();
  await h.close();
  return Date.now() - started;
}

describe.each([
  ["in clear", false],
  ["over TLS", true],
] as const)("HTTP/1.1 %s", (_name, secure) => {
  const env = (): Record<string, string> => (secure ? { TLS_CERT_FILE: tls().cert, TLS_KEY_FILE: tls().key } : {});

  it.skipIf(secure && opensslProgram.skip)("close() ends idle keep-alive connections at once", async () => {
    const h = await startHarness({ env: env() });
    const agent = secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    expect(await searchH1(h, agent, secure)).toBe(200);
    expect(await timedClose(h)).toBeLessThan(2000);
    agent.destroy();
  });

  it.skipIf(secure && opensslProgram.skip)("a request in flight at close() still gets its answer", async () => {
    const h = await startHarness({ env: env(), respond: () => ({ status: 200, body: { availabilities: [] }, delayMs: 300 }) });
    const agent = secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    const answer = searchH1(h, agent, secure);
    await new Promise((r) => setTimeout(r, 100));
    const closed = timedClose(h);
    expect(await answer).toBe(200);
    expect(await closed).toBeLessThan(2000);
    agent.destroy();
  });
});

it("h2c: close() sends GOAWAY and does not wait for an idle session", async () => {
  const h = await startHarness();
  const h2 = new H2(h.url);
  const res = await h2.request({
    path: SEARCH,
    headers: { "content-type": "application/json", authorization: `Bearer ${h.keys.a}` },
    body: Buffer.from(JSON.stringify(searchBody(h.bots.a))),
  });
  expect(res.status).toBe(200);
  expect(await timedClose(h)).toBeLessThan(2000);
  h2.close();
});
