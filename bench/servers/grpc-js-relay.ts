/**
 * Baseline (b): what a team would otherwise pick to serve gRPC from Node, an
 * `@grpc/grpc-js` server with the contract loaded by `@grpc/proto-loader`
 * from proto/, doing the same relay as the gateway: the partner by the
 * SHA-256 of its key, the bot, the signed webhook over a keep-alive
 * connection, and the platform's JSON answer turned into the response
 * message (documented fields only).
 */
import { createHash } from "node:crypto";
import http from "node:http";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ACCOUNT_HEADER, SIGNATURE_HEADER, signatureHeader } from "../../src/platform/signature.js";
import { ACCOUNT_ID, BOT_ID, PARTNER_ID, PARTNER_KEY, WEBHOOK_BASE_PATH, WEBHOOK_SECRET } from "../fixture.js";
import { announce, exitWithParent } from "./child.js";

type Json = { [key: string]: unknown };
interface Timestamp {
  seconds: string | number;
  nanos?: number;
}

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));
const definition = protoLoader.loadSync(["dialstack/partner/v1/availability.proto", "dialstack/partner/v1/booking.proto", "dialstack/partner/v1/customer.proto"], {
  includeDirs: [protoDir],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});
const v1 = (grpc.loadPackageDefinition(definition) as unknown as { dialstack: { partner: { v1: Record<string, { service: grpc.ServiceDefinition }> } } })
  .dialstack.partner.v1;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const platform = new URL(process.env.PLATFORM_URL ?? "");
const partners = new Map([[sha256(PARTNER_KEY), { id: PARTNER_ID }]]);
const bots = new Map([[BOT_ID, { partnerId: PARTNER_ID, accountId: ACCOUNT_ID, secret: WEBHOOK_SECRET }]]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: "lifo" });
const BEARER = /^Bearer (\S+)$/;

const iso = (ts: Timestamp | undefined) =>
  new Date(Number(ts?.seconds ?? 0) * 1000 + Math.floor((ts?.nanos ?? 0) / 1e6)).toISOString().replace(".000Z", "Z");
const timestamp = (s: unknown): Timestamp | undefined => {
  if (typeof s !== "string") return undefined;
  const ms = Date.parse(s);
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
};

class RelayError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function routeOf(call: grpc.ServerUnaryCall<{ bot_id?: string }, unknown>) {
  const key = BEARER.exec(String(call.metadata.get("authorization")[0] ?? ""))?.[1];
  const partner = key === undefined ? undefined : partners.get(sha256(key));
  if (partner === undefined) throw new RelayError(grpc.status.UNAUTHENTICATED, "unknown partner key");
  const bot = bots.get(call.request.bot_id ?? "");
  if (bot === undefined || bot.partnerId !== partner.id) throw new RelayError(grpc.status.NOT_FOUND, "bot not found");
  return { partner, bot };
}

function post(path: string, secret: string, payload: Json): Promise<Json> {
  const body = Buffer.from(JSON.stringify(payload));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: platform.hostname,
        port: platform.port,
        path: WEBHOOK_BASE_PATH + path,
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": body.length,
          [SIGNATURE_HEADER]: signatureHeader(secret, body),
          [ACCOUNT_HEADER]: ACCOUNT_ID,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          if (res.statusCode! >= 300) return reject(new RelayError(grpc.status.UNAVAILABLE, `platform answered ${res.statusCode}`));
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Json);
          } catch {
            reject(new RelayError(grpc.status.UNAVAILABLE, "platform answer is not JSON"));
          }
        });
      },
    );
    req.on("error", () => reject(new RelayError(grpc.status.UNAVAILABLE, "platform unreachable")));
    req.end(body);
  });
}

function unary<Req extends { bot_id?: string }>(handle: (call: grpc.ServerUnaryCall<Req, unknown>) => Promise<unknown>): grpc.handleUnaryCall<Req, unknown> {
  return (call, callback) => {
    handle(call).then(
      (message) => callback(null, message),
      (e: unknown) => callback({ code: e instanceof RelayError ? e.code : grpc.status.INTERNAL, details: (e as Error).message }),
    );
  };
}

const server = new grpc.Server();
server.addService(v1.AvailabilityService!.service, {
  SearchAvailability: unary<{ bot_id?: string; query?: { filter?: { start_at_range?: { start_at?: Timestamp; end_at?: Timestamp } } } }>(
    async (call) => {
      const { bot } = routeOf(call);
      const range = call.request.query?.filter?.start_at_range;
      if (range?.start_at === undefined || range.end_at === undefined) throw new RelayError(grpc.status.INVALID_ARGUMENT, "range required");
      const answer = await post("/availability/search", bot.secret, {
        account_id: bot.accountId,
        query: { filter: { start_at_range: { start_at: iso(range.start_at), end_at: iso(range.end_at) } } },
      });
      const list = Array.isArray(answer.availabilities) ? (answer.availabilities as Json[]) : [];
      return { availabilities: list.map((a) => ({ start_at: timestamp(a.start_at), duration_minutes: a.duration_minutes })) };
    },
  ),
  StreamAvailability: (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit("error", { code: grpc.status.UNIMPLEMENTED }),
});
server.addService(v1.BookingService!.service, {
  CreateBooking: unary<{ bot_id?: string; idempotency_key?: string; booking?: Json & { start_at?: Timestamp } }>(async (call) => {
    const { partner, bot } = routeOf(call);
    const key = String(call.metadata.get("idempotency-key")[0] ?? call.request.idempotency_key ?? "");
    if (key === "") throw new RelayError(grpc.status.INVALID_ARGUMENT, "idempotency key required");
    const b = call.request.booking ?? {};
    const answer = await post("/bookings", bot.secret, {
      account_id: bot.accountId,
      idempotency_key: "idk_" + createHash("sha256").update(partner.id).update("\0").update(key).digest("hex").slice(0, 48),
      booking: { start_at: iso(b.start_at), duration_minutes: b.duration_minutes, customer: b.customer, notes: b.notes },
    });
    const booking = (answer.booking ?? {}) as Json;
    return {
      booking: {
        ...booking,
        start_at: timestamp(booking.start_at),
        end_at: timestamp(booking.end_at),
        created_at: timestamp(booking.created_at),
      },
    };
  }),
});
server.addService(v1.CustomerService!.service, {
  LookupCustomer: unary<{ bot_id?: string; customer?: { phone?: string } }>(async (call) => {
    const { bot } = routeOf(call);
    const answer = await post("/customers/lookup", bot.secret, { account_id: bot.accountId, customer: { phone: call.request.customer?.phone } });
    const customer = answer.customer as (Json & { existing_appointment?: Json }) | undefined;
    const appointment = customer?.existing_appointment;
    return {
      found: answer.found === true,
      customer:
        customer === undefined
          ? undefined
          : {
              name: customer.name,
              phone: customer.phone,
              existing_appointment:
                appointment === undefined ? undefined : { start_at: timestamp(appointment.start_at), end_at: timestamp(appointment.end_at), status: appointment.status },
            },
    };
  }),
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) => {
  if (e) throw e;
  announce(port);
});
exitWithParent();
