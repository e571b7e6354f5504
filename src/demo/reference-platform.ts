/**
 * A scheduling platform that implements the webhooks the gateway calls, as
 * the platform documentation describes them. `npm start` runs it as the demo
 * platform; the tests run it as their platform, recording what it receives and
 * scripting answers through `respond`.
 *
 * It verifies every signature (with the gateway's verifier unless given
 * another), generates plausible availability (weekdays, 09:00 to 17:00 UTC,
 * 30-minute slots, some taken), books a slot at most once per idempotency key
 * (201 on creation, 200 on a replay), and recognises one caller,
 * `DEMO_CALLER`, who has an appointment on the next weekday.
 */
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ACCOUNT_HEADER, SIGNATURE_HEADER, verifySignature } from "../platform/signature.js";

type Json = { [key: string]: unknown };

export interface ReceivedWebhook {
  /** Which connection the request came on, numbered from 1 in order of arrival. */
  readonly connection: number;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawBody: string;
  readonly body: Json | undefined;
  readonly signatureValid: boolean;
}

export interface PlatformReply {
  readonly status: number;
  /** A JSON value, or a string sent as it is. */
  readonly body?: unknown;
  /** Waits this long before answering (aborted if the gateway gives up first). */
  readonly delayMs?: number;
  /** Resets the connection (TCP RST) instead of answering, after reading the whole request. */
  readonly reset?: boolean;
}

export interface ReferencePlatformOptions {
  /** The webhook secret of every account, or a lookup by account id. */
  readonly secret: string | ((accountId: string) => string | undefined);
  /** Keeps every request in `received` (tests). */
  readonly record?: boolean;
  /**
   * Answers a request instead of the reference behaviour, when it returns a
   * reply. `reference()` runs the reference behaviour (a booking is made when
   * it is called), so a script can, say, book and then answer late, or book
   * and then reset the connection so the answer is lost; call it at most once.
   */
  readonly respond?: (req: ReceivedWebhook, reference: () => PlatformReply) => PlatformReply | undefined | Promise<PlatformReply | undefined>;
  /**
   * Checks a request's signature (`X-DialStack-Signature`); the gateway's own
   * verifier by default. Tests give one written from the platform
   * documentation, so the gateway's signing is checked against the documented
   * format and not against its own code.
   */
  readonly verifySignature?: (secret: string, headers: http.IncomingHttpHeaders, rawBody: string) => boolean;
  readonly host?: string;
  readonly port?: number;
}

interface StoredBooking {
  readonly key: string;
  readonly booking: Json;
}

const SLOT_MINUTES = 30;

/** The one caller the platform knows; every other number is answered `found: false`. */
export const DEMO_CALLER = { phone: "+14155550123", name: "Jane Roe" } as const;

export class ReferencePlatform {
  readonly received: ReceivedWebhook[] = [];
  /** Requests whose connection closed before the platform answered. */
  aborted = 0;
  /** Bookings made, by the idempotency key the gateway sent. */
  readonly bookings = new Map<string, StoredBooking>();
  private readonly slotsTaken = new Map<string, string>();
  private readonly connections = new WeakMap<object, number>();
  private connectionCount = 0;
  private server: http.Server | undefined;
  private baseUrl = "";

  constructor(private readonly options: ReferencePlatformOptions) {}

  /** The base URL to configure as `webhook_url`. */
  get url(): string {
    return this.baseUrl;
  }

  /** How many times the platform booked for a downstream idempotency key. */
  bookingsMade(): number {
    return this.bookings.size;
  }

  async start(): Promise<this> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.on("connection", (socket) => this.connections.set(socket, ++this.connectionCount));
    server.keepAliveTimeout = 60_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}/dialstack`;
    return this;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private secretFor(accountId: string): string | undefined {
    const s = this.options.secret;
    return typeof s === "string" ? s : s(accountId);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString("utf8");
    let body: Json | undefined;
    try {
      const parsed: unknown = JSON.parse(rawBody);
      body = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Json) : undefined;
    } catch {
      body = undefined;
    }
    const accountId = String(req.headers[ACCOUNT_HEADER] ?? "");
    const secret = this.secretFor(accountId);
    const verify = this.options.verifySignature ?? gatewayVerifier;
    const signatureValid = secret !== undefined && verify(secret, req.headers, rawBody);
    const path = (req.url ?? "").replace(/^\/dialstack/, "");
    const connection = this.connections.get(req.socket) ?? 0;
    const received: ReceivedWebhook = { connection, path, headers: req.headers, rawBody, body, signatureValid };
    if (this.options.record) this.received.push(received);

    let answered = false;
    res.on("close", () => {
      if (!answered) this.aborted++;
    });
    const reference = () => this.reference(received, accountId);
    const reply = (await this.options.respond?.(received, reference)) ?? reference();
    if (reply.delayMs) {
      await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
      if (res.destroyed) return;
    }
    if (reply.reset) {
      answered = true;
      req.socket.resetAndDestroy();
      return;
    }
    const text = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body ?? {});
    answered = true;
    res.writeHead(reply.status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  /** The documented behaviour of a platform. */
  private reference(req: ReceivedWebhook, accountId: string): PlatformReply {
    if (!req.signatureValid) return error(401, "invalid_signature", "the webhook signature is missing or wrong");
    if (req.body === undefined || req.body.account_id !== accountId) {
      return error(400, "invalid_payload", "the body must be a JSON object whose account_id matches the header");
    }
    if (req.path === "/availability/search") return this.search(req.body);
    if (req.path === "/bookings") return this.book(req.body);
    if (req.path === "/customers/lookup") return this.lookup(req.body);
    return error(404, "not_found", `no webhook at ${req.path}`);
  }

  private search(body: Json): PlatformReply {
    const range = (((body.query as Json | undefined)?.filter as Json | undefined)?.start_at_range ?? {}) as Json;
    const start = Date.parse(String(range.start_at));
    const end = Date.parse(String(range.end_at));
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
      return error(400, "invalid_payload", "query.filter.start_at_range needs start_at before end_at");
    }
    const step = SLOT_MINUTES * 60_000;
    const availabilities: Json[] = [];
    for (let t = Math.ceil(start / step) * step; t < end && availabilities.length < 500; t += step) {
      const d = new Date(t);
      const hour = d.getUTCHours();
      const weekday = d.getUTCDay() >= 1 && d.getUTCDay() <= 5;
      if (!weekday || hour < 9 || hour >= 17) continue;
      const startAt = iso(t);
      // About a third of the slots are already booked, the same ones every time.
      if (createHash("sha256").update(startAt).digest()[0]! < 85 || this.slotsTaken.has(startAt)) continue;
      availabilities.push({ start_at: startAt, duration_minutes: SLOT_MINUTES });
    }
    return { status: 200, body: { availabilities } };
  }

  private lookup(body: Json): PlatformReply {
    const phone = (body.customer as Json | undefined)?.phone;
    if (typeof phone !== "string" || phone === "") return error(400, "invalid_payload", "customer.phone is required");
    if (phone !== DEMO_CALLER.phone) return { status: 200, body: { found: false } };
    // Her appointment: the next weekday, 10:00 to 10:30 UTC.
    const day = new Date();
    do day.setUTCDate(day.getUTCDate() + 1);
    while (day.getUTCDay() === 0 || day.getUTCDay() === 6);
    const start = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), 10, 0);
    return {
      status: 200,
      body: {
        found: true,
        customer: {
          name: DEMO_CALLER.name,
          phone: DEMO_CALLER.phone,
          existing_appointment: { start_at: iso(start), end_at: iso(start + SLOT_MINUTES * 60_000), status: "confirmed" },
        },
      },
    };
  }

  private book(body: Json): PlatformReply {
    const key = body.idempotency_key;
    const b = body.booking as Json | undefined;
    const customer = b?.customer as Json | undefined;
    if (typeof key !== "string" || key === "" || b === undefined || customer === undefined) {
      return error(400, "invalid_payload", "idempotency_key and booking.customer are required");
    }
    const previous = this.bookings.get(key);
    if (previous !== undefined) return { status: 200, body: { booking: previous.booking } };
    const start = Date.parse(String(b.start_at));
    const minutes = Number(b.duration_minutes);
    if (!Number.isFinite(start) || !(minutes > 0) || typeof customer.phone !== "string" || typeof customer.name !== "string") {
      return error(400, "invalid_payload", "booking needs start_at, duration_minutes and customer.phone and name");
    }
    const startAt = iso(start);
    if (this.slotsTaken.has(startAt)) return error(409, "slot_unavailable", `the slot at ${startAt} is no longer available`);
    const booking: Json = {
      id: "bkg_" + randomBytes(8).toString("hex"),
      status: "accepted",
      start_at: startAt,
      end_at: iso(start + minutes * 60_000),
      customer: { phone: customer.phone, name: customer.name, ...(typeof customer.email === "string" ? { email: customer.email } : {}) },
      location: { name: "Harbor Street Dental", address: "12 Harbor Street, Springfield" },
      notes: "Provider: Dr. Rivera" + (typeof b.notes === "string" && b.notes !== "" ? ` | ${b.notes}` : ""),
      created_at: iso(Date.now()),
    };
    this.slotsTaken.set(startAt, key);
    this.bookings.set(key, { key, booking });
    return { status: 201, body: { booking } };
  }
}

function gatewayVerifier(secret: string, headers: http.IncomingHttpHeaders, rawBody: string): boolean {
  return verifySignature(secret, headers[SIGNATURE_HEADER] as string | undefined, rawBody).ok;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function error(status: number, code: string, message: string): PlatformReply {
  return { status, body: { error: { code, message } } };
}
