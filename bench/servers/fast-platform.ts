/**
 * The test platform of the benchmark: a `node:http` server that answers the
 * three webhooks (search, booking, customer lookup) with fixed small bodies and no delay, so the time measured is
 * the relay's, not the platform's.
 *
 * It still checks what a relay sends: a signed request must carry a valid
 * signature and the account header, and `GET /__stats` counts requests,
 * signed ones and bad ones, so the benchmark can tell that every relayed
 * request really reached the platform correctly signed. Unsigned requests
 * are the direct calls of the "platform direct" ceiling and are answered too.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ACCOUNT_HEADER, SIGNATURE_HEADER, verifySignature } from "../../src/platform/signature.js";
import { ACCOUNT_ID, PLATFORM_BOOKING_ANSWER, PLATFORM_LOOKUP_ANSWER, PLATFORM_SEARCH_ANSWER, WEBHOOK_BASE_PATH, WEBHOOK_SECRET } from "../fixture.js";
import { announce, exitWithParent } from "./child.js";

export interface PlatformStats {
  requests: number;
  /** Connections accepted: a relay that keeps its connections alive opens few. */
  connections: number;
  signed: number;
  badSignatures: number;
}

const stats: PlatformStats = { connections: 0, requests: 0, signed: 0, badSignatures: 0 };

const answers = new Map<string, { status: number; body: Buffer }>([
  [`${WEBHOOK_BASE_PATH}/availability/search`, { status: 200, body: Buffer.from(PLATFORM_SEARCH_ANSWER) }],
  [`${WEBHOOK_BASE_PATH}/bookings`, { status: 201, body: Buffer.from(PLATFORM_BOOKING_ANSWER) }],
  [`${WEBHOOK_BASE_PATH}/customers/lookup`, { status: 200, body: Buffer.from(PLATFORM_LOOKUP_ANSWER) }],
]);
const notFound = Buffer.from(JSON.stringify({ error: { code: "not_found", message: "no such webhook" } }));
const badSignature = Buffer.from(JSON.stringify({ error: { code: "invalid_signature", message: "bad signature" } }));

function send(res: http.ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/__stats") {
    send(res, 200, Buffer.from(JSON.stringify(stats)));
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    stats.requests++;
    const signature = req.headers[SIGNATURE_HEADER];
    if (signature !== undefined) {
      stats.signed++;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const ok = typeof signature === "string" && verifySignature(WEBHOOK_SECRET, signature, body).ok && req.headers[ACCOUNT_HEADER] === ACCOUNT_ID;
      if (!ok) {
        stats.badSignatures++;
        send(res, 401, badSignature);
        return;
      }
    }
    const answer = answers.get(req.url ?? "");
    if (answer === undefined) send(res, 404, notFound);
    else send(res, answer.status, answer.body);
  });
});
server.on("connection", () => stats.connections++);
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => announce((server.address() as AddressInfo).port));
exitWithParent();
