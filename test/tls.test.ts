/**
 * TLS on the one port: with TLS_CERT_FILE and TLS_KEY_FILE set, ALPN lets
 * HTTP/2 and HTTP/1.1 clients share the port, and every protocol works over
 * it: Connect on both HTTP versions, gRPC-Web on HTTP/1.1, gRPC through
 * connect-es, @grpc/grpc-js and buf curl. The certificate is made at test time
 * with openssl.
 */
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AvailabilityService } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { BookingService } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { bearer, bookingRequest, searchRequest } from "./support/clients.js";
import { makeTestCertificate, opensslProgram, type TestCertificate } from "./support/certificate.js";
import { run } from "./support/commands.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";

let certificate: TestCertificate;
let ca: Buffer;
let h: Harness;
let url: string;

beforeAll(async () => {
  certificate = makeTestCertificate();
  ca = certificate.ca;
  h = await startHarness({ env: { TLS_CERT_FILE: certificate.cert, TLS_KEY_FILE: certificate.key } });
  url = `https://127.0.0.1:${h.port}`;
});
afterAll(async () => {
  // When beforeAll failed (no openssl), there is nothing to close.
  await (h as Harness | undefined)?.close();
  (certificate as TestCertificate | undefined)?.remove();
});

describe.skipIf(opensslProgram.skip)("ALPN on one port", () => {
  it("negotiates h2 for an HTTP/2 client", async () => {
    const session = http2.connect(url, { ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ":path": "/healthz" });
        req.on("response", (headers) => resolve(Number(headers[":status"])));
        req.resume();
        req.on("error", reject);
        req.end();
      });
      expect(session.alpnProtocol).toBe("h2");
      expect(status).toBe(200);
    } finally {
      session.close();
    }
  });

  it.each([["http/1.1"], [undefined]] as const)("serves HTTP/1.1 to a client offering ALPN %s", async (alpn) => {
    const res = await new Promise<{ version: string; alpn: string | false; status: number }>((resolve, reject) => {
      const req = https.request(`${url}/healthz`, { ca, agent: false, ...(alpn ? { ALPNProtocols: [alpn] } : {}) }, (r) => {
        r.resume();
        resolve({ version: r.httpVersion, alpn: (r.socket as import("node:tls").TLSSocket).alpnProtocol ?? false, status: r.statusCode ?? 0 });
      });
      req.on("error", reject);
      req.end();
    });
    expect(res).toEqual({ version: "1.1", alpn: alpn ?? false, status: 200 });
  });

  it("closes a plaintext HTTP connection to the TLS port without answering it, and goes on serving TLS", async () => {
    const outcome = await new Promise<{ answer: string; closedByServer: boolean }>((resolve) => {
      let answer = "";
      let timedOut = false;
      const socket = net.connect(h.port, "127.0.0.1", () => socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
      socket.setTimeout(2000, () => {
        timedOut = true;
        socket.destroy();
      });
      socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
      socket.on("error", () => {});
      socket.on("close", () => resolve({ answer, closedByServer: !timedOut }));
    });
    // No HTTP in the clear from a TLS port: the handshake fails and the server hangs up.
    expect(outcome).toEqual({ answer: "", closedByServer: true });
    const transport = createConnectTransport({ baseUrl: url, httpVersion: "2", nodeOptions: { ca } });
    const res = await createClient(AvailabilityService, transport).searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a));
    expect(res.availabilities.length).toBeGreaterThan(0);
  });
});

describe.skipIf(opensslProgram.skip).each([
  ["connect over h2", () => createConnectTransport({ baseUrl: url, httpVersion: "2", nodeOptions: { ca } })],
  ["connect over HTTP/1.1", () => createConnectTransport({ baseUrl: url, httpVersion: "1.1", nodeOptions: { ca } })],
  ["grpc-web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", nodeOptions: { ca } })],
  ["grpc (connect-es)", () => createGrpcTransport({ baseUrl: url, nodeOptions: { ca } })],
] as const)("%s over TLS", (_name, transport) => {
  it("searches and books", async () => {
    const t = transport();
    const search = await createClient(AvailabilityService, t).searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a));
    expect(search.availabilities.length).toBeGreaterThan(0);
    const booking = await createClient(BookingService, t).createBooking(
      bookingRequest(bookingBody(h.bots.a)),
      bearer(h.keys.a, { "idempotency-key": idempotencyKey() }),
    );
    expect(booking.booking?.status).toBe("accepted");
  });
});

describe.skipIf(opensslProgram.skip)("independent gRPC clients over TLS", () => {
  it("@grpc/grpc-js with the test CA", async () => {
    // By name: a TLS server name may not be an IP address (RFC 6066), and the certificate names localhost too.
    const client = new grpc.Client(`localhost:${h.port}`, grpc.credentials.createSsl(ca));
    const serialize = (v: Uint8Array) => Buffer.from(v);
    const deserialize = (b: Buffer) => b;
    const { toBinary, fromBinary } = await import("@bufbuild/protobuf");
    const { SearchAvailabilityRequestSchema, SearchAvailabilityResponseSchema } = await import("../src/gen/dialstack/partner/v1/availability_pb.js");
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${h.keys.a}`);
    try {
      const bytes = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          "/dialstack.partner.v1.AvailabilityService/SearchAvailability",
          serialize,
          deserialize,
          toBinary(SearchAvailabilityRequestSchema, searchRequest(searchBody(h.bots.a))),
          md,
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
      expect(fromBinary(SearchAvailabilityResponseSchema, bytes).availabilities.length).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });

  it("buf curl --protocol grpc with --cacert", async () => {
    const r = await run("node_modules/.bin/buf", [
      "curl",
      "--schema",
      "proto",
      "--protocol",
      "grpc",
      "--cacert",
      certificate.cert,
      "-H",
      `Authorization: Bearer ${h.keys.a}`,
      "-d",
      JSON.stringify(searchBody(h.bots.a)),
      `${url}/dialstack.partner.v1.AvailabilityService/SearchAvailability`,
    ]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout).availabilities.length).toBeGreaterThan(0);
  });
});
