/**
 * What every benchmark target shares: one partner, one bot on one account of
 * one platform, the requests the load generators send (as JSON and as
 * protobuf) and the fixed answers of the test platform. The gateway gets them
 * as a seed file; the baselines read them from here, so every target does the
 * same lookups with the same data.
 */
import { create, fromBinary, fromJson, toBinary, type JsonValue } from "@bufbuild/protobuf";
import { SearchAvailabilityRequestSchema } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { CreateBookingRequestSchema } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { LookupCustomerRequestSchema } from "../src/gen/dialstack/partner/v1/customer_pb.js";
import { ConverseRequestSchema, ConverseResponseSchema } from "../src/gen/dialstack/partner/v1/session_pb.js";

export const PARTNER_ID = "ptnr_bench";
/** A loopback-only benchmark identity, not a secret of any deployment. */
export const PARTNER_KEY = "sk_ptnr_bench_0123456789abcdef0123456789abcdef";
export const PLATFORM_ID = "plat_bench";
export const ACCOUNT_ID = "acct_bench";
export const BOT_ID = "bot_bench";
export const WEBHOOK_SECRET = "whsec_bench_0123456789abcdef";

export const AUTHORIZATION = `Bearer ${PARTNER_KEY}`;

export const SEARCH_PATH_REST = "/v1/availability/search";
export const BOOKING_PATH_REST = "/v1/bookings";
export const LOOKUP_PATH_REST = "/v1/customers/lookup";
export const SEARCH_PATH_RPC = "/dialstack.partner.v1.AvailabilityService/SearchAvailability";
export const BOOKING_PATH_RPC = "/dialstack.partner.v1.BookingService/CreateBooking";
export const LOOKUP_PATH_RPC = "/dialstack.partner.v1.CustomerService/LookupCustomer";
export const CONVERSE_PATH_RPC = "/dialstack.partner.v1.BotSessionService/Converse";

/** The path under a platform's `webhook_url` the test platform serves. */
export const WEBHOOK_BASE_PATH = "/dialstack";

const RANGE = { start_at: "2030-01-07T09:00:00Z", end_at: "2030-01-07T12:00:00Z" };

/** The partner's search, as REST and Connect JSON send it. */
export const SEARCH_JSON = { bot_id: BOT_ID, query: { filter: { start_at_range: RANGE } } };

/** The partner's booking, as REST and Connect JSON send it (the key travels in a header). */
export const BOOKING_JSON = {
  bot_id: BOT_ID,
  booking: {
    start_at: "2030-01-07T10:00:00Z",
    duration_minutes: 30,
    customer: { phone: "+15551234567", name: "John Doe", email: "john@example.com" },
    notes: "first visit",
  },
};

/** The partner's caller lookup, as REST and Connect JSON send it. */
export const LOOKUP_JSON = { bot_id: BOT_ID, customer: { phone: "+15551234567" } };

/** The webhook payloads the relays produce, for calling the platform directly. */
export const PLATFORM_SEARCH_JSON = { account_id: ACCOUNT_ID, query: { filter: { start_at_range: RANGE } } };
export const PLATFORM_LOOKUP_JSON = { account_id: ACCOUNT_ID, customer: LOOKUP_JSON.customer };
export const PLATFORM_BOOKING_JSON = {
  account_id: ACCOUNT_ID,
  idempotency_key: "idk_direct",
  booking: BOOKING_JSON.booking,
};

/** The test platform's fixed answers. */
export const PLATFORM_SEARCH_ANSWER = JSON.stringify({
  availabilities: [
    { start_at: "2030-01-07T09:00:00Z", duration_minutes: 30 },
    { start_at: "2030-01-07T09:30:00Z", duration_minutes: 30 },
    { start_at: "2030-01-07T10:30:00Z", duration_minutes: 30 },
    { start_at: "2030-01-07T11:00:00Z", duration_minutes: 30 },
  ],
});
export const PLATFORM_BOOKING_ANSWER = JSON.stringify({
  booking: {
    id: "bkg_bench",
    status: "accepted",
    start_at: "2030-01-07T10:00:00Z",
    end_at: "2030-01-07T10:30:00Z",
    customer: { phone: "+15551234567", name: "John Doe" },
    location: { name: "Harbor Street Dental", address: "12 Harbor Street, Springfield" },
    notes: "Provider: Dr. Rivera",
    created_at: "2030-01-01T00:00:00Z",
  },
});

/** A known caller with an upcoming appointment: the lookup answer with the most to read. */
export const PLATFORM_LOOKUP_ANSWER = JSON.stringify({
  found: true,
  customer: {
    name: "John Doe",
    phone: "+15551234567",
    existing_appointment: { start_at: "2030-01-07T10:00:00Z", end_at: "2030-01-07T10:30:00Z", status: "confirmed" },
  },
});

/**
 * The environment every benchmarked gateway runs with: production settings, logging at info, metrics, request ids
 * and trace propagation on. Without `redisUrl` it runs on its embedded in-memory store (`--store=memory`).
 */
export function gatewayEnvironment(at: { port: number; redisUrl: string | undefined; keyPrefix: string; seedFile: string }): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(at.port),
    ...(at.redisUrl !== undefined ? { REDIS_URL: at.redisUrl, REDIS_KEY_PREFIX: at.keyPrefix } : {}),
    GATEWAY_SEED: at.seedFile,
    LOG_LEVEL: "info",
    IDEMPOTENCY_TTL_SECONDS: "600",
    // One partner sends all the load: the limiter stays on the path but never refuses.
    RATE_LIMIT_PER_SECOND: "1000000",
    RATE_LIMIT_BURST: "10000000",
  };
}

/** The seed the gateway starts with, pointing at the test platform. */
export function gatewaySeed(platformUrl: string): object {
  return {
    partners: [{ id: PARTNER_ID, name: "Benchmark partner", api_key: PARTNER_KEY }],
    platforms: [{ id: PLATFORM_ID, webhook_url: platformUrl + WEBHOOK_BASE_PATH, webhook_secret: WEBHOOK_SECRET }],
    accounts: [{ id: ACCOUNT_ID, platform_id: PLATFORM_ID }],
    bots: [{ id: BOT_ID, partner_id: PARTNER_ID, account_id: ACCOUNT_ID }],
  };
}

/** One message in the gRPC / gRPC-Web / Connect-streaming envelope: flags, length, bytes. */
export function envelope(message: Uint8Array, flags = 0): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = flags;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

export const SEARCH_BINARY = toBinary(SearchAvailabilityRequestSchema, fromJson(SearchAvailabilityRequestSchema, SEARCH_JSON as JsonValue));
export const BOOKING_BINARY = toBinary(CreateBookingRequestSchema, fromJson(CreateBookingRequestSchema, BOOKING_JSON as JsonValue));
export const LOOKUP_BINARY = toBinary(LookupCustomerRequestSchema, fromJson(LookupCustomerRequestSchema, LOOKUP_JSON as JsonValue));

/** The first message of a bot session. */
export function converseStart(): Buffer {
  return envelope(toBinary(ConverseRequestSchema, create(ConverseRequestSchema, { requestId: "start", op: { case: "start", value: { botId: BOT_ID } } })));
}

/** A search over an open session (the session already bound the bot). */
export function converseSearch(requestId: string): Buffer {
  const search = fromJson(SearchAvailabilityRequestSchema, { query: SEARCH_JSON.query } as JsonValue);
  return envelope(toBinary(ConverseRequestSchema, create(ConverseRequestSchema, { requestId, op: { case: "searchAvailability", value: search } })));
}

/**
 * What a `ConverseResponse` is, read from its wire bytes without decoding it
 * (the load generator reads thousands per second): "started", "ok" for a
 * search, booking or lookup answer, "error: <code>" for an operation error.
 */
export function converseAnswerKind(message: Uint8Array): string {
  let i = 0;
  const varint = () => {
    let v = 0;
    for (let shift = 0; i < message.length; shift += 7) {
      const b = message[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    return v;
  };
  while (i < message.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 2) return "started";
    if (field === 3 || field === 4 || field === 6) return "ok";
    if (field === 5) {
      const result = fromBinary(ConverseResponseSchema, message).result;
      return `error: ${result.case === "error" ? result.value.code : "?"}`;
    }
    if (wire === 0) varint();
    else if (wire === 2) {
      const length = varint();
      i += length;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return "unreadable";
  }
  return "empty";
}
