/**
 * Baseline (a), the floor: the least a Node relay can do for a partner
 * request. It reads the body, finds the partner by the SHA-256 of its key in
 * a Map, finds the bot, signs the webhook payload exactly as the gateway does
 * (`signatureHeader` of src/platform/signature.ts), POSTs it over a keep-alive
 * connection and passes the platform's answer through. It serves the REST
 * paths and the Connect JSON paths (whose bodies are the same JSON).
 *
 * It validates nothing else, logs nothing and stores no idempotency keys:
 * the gap between it and the gateway is the price of everything the gateway
 * adds.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ACCOUNT_HEADER, SIGNATURE_HEADER, signatureHeader } from "../../src/platform/signature.js";
import {
  ACCOUNT_ID,
  BOOKING_PATH_REST,
  BOOKING_PATH_RPC,
  BOT_ID,
  LOOKUP_PATH_REST,
  LOOKUP_PATH_RPC,
  PARTNER_ID,
  PARTNER_KEY,
  SEARCH_PATH_REST,
  SEARCH_PATH_RPC,
  WEBHOOK_BASE_PATH,
  WEBHOOK_SECRET,
} from "../fixture.js";
import { announce, exitWithParent } from "./child.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const platform = new URL(process.env.PLATFORM_URL ?? "");

const partners = new Map([[sha256(PARTNER_KEY), { id: PARTNER_ID }]]);
const bots = new Map([[BOT_ID, { partnerId: PARTNER_ID, accountId: ACCOUNT_ID, secret: WEBHOOK_SECRET }]]);
const routes = new Map<string, { webhook: string; connect: boolean }>([
  [SEARCH_PATH_REST, { webhook: "/availability/search", connect: false }],
  [SEARCH_PATH_RPC, { webhook: "/availability/search", connect: true }],
  [BOOKING_PATH_REST, { webhook: "/bookings", connect: false }],
  [BOOKING_PATH_RPC, { webhook: "/bookings", connect: true }],
  [LOOKUP_PATH_REST, { webhook: "/customers/lookup", connect: false }],
  [LOOKUP_PATH_RPC, { webhook: "/customers/lookup", connect: true }],
]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: "lifo" });
const BEARER = /^Bearer (\S+)$/;

function fail(res: http.ServerResponse, status: number, code: string): void {
  const body = JSON.stringify({ error: { code, message: code } });
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function relay(req: http.IncomingMessage, res: http.ServerResponse, raw: Buffer): void {
  const route = routes.get(req.url ?? "");
  if (route === undefined || req.method !== "POST") return fail(res, 404, "not_found");
  const key = BEARER.exec(req.headers.authorization ?? "")?.[1];
  const partner = key === undefined ? undefined : partners.get(sha256(key));
  if (partner === undefined) return fail(res, 401, "unauthorized");
  let json: { bot_id?: string; query?: unknown; booking?: unknown; customer?: { phone?: unknown } };
  try {
    json = JSON.parse(raw.toString("utf8")) as typeof json;
  } catch {
    return fail(res, 400, "invalid_request");
  }
  const bot = bots.get(json.bot_id ?? "");
  if (bot === undefined || bot.partnerId !== partner.id) return fail(res, 404, "bot_not_found");
  let payload: object;
  if (route.webhook === "/bookings") {
    const idempotencyKey = req.headers["idempotency-key"];
    if (typeof idempotencyKey !== "string" || idempotencyKey === "") return fail(res, 400, "idempotency_key_invalid");
    const downstream = "idk_" + createHash("sha256").update(partner.id).update("\0").update(idempotencyKey).digest("hex").slice(0, 48);
    payload = { account_id: bot.accountId, idempotency_key: downstream, booking: json.booking };
  } else if (route.webhook === "/customers/lookup") {
    payload = { account_id: bot.accountId, customer: { phone: json.customer?.phone } };
  } else {
    payload = { account_id: bot.accountId, query: json.query };
  }
  const body = Buffer.from(JSON.stringify(payload));
  const up = http.request(
    {
      host: platform.hostname,
      port: platform.port,
      path: WEBHOOK_BASE_PATH + route.webhook,
      method: "POST",
      agent,
      headers: {
        "content-type": "application/json",
        "content-length": body.length,
        [SIGNATURE_HEADER]: signatureHeader(bot.secret, body),
        [ACCOUNT_HEADER]: bot.accountId,
      },
    },
    (answer) => {
      const chunks: Buffer[] = [];
      answer.on("data", (c: Buffer) => chunks.push(c));
      answer.on("end", () => {
        const out = Buffer.concat(chunks);
        const status = route.connect && answer.statusCode! < 300 ? 200 : answer.statusCode!;
        res.writeHead(status, { "content-type": "application/json", "content-length": out.length });
        res.end(out);
      });
    },
  );
  up.on("error", () => fail(res, 502, "platform_unavailable"));
  up.end(body);
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => relay(req, res, Buffer.concat(chunks)));
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => announce((server.address() as AddressInfo).port));
exitWithParent();
