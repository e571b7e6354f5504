/**
 * The OpenAPI 3.1 description of the REST API, served at `/openapi.json` and
 * rendered at `/docs`. Written by hand to read like the partner
 * documentation; the tests hold it to the server: every REST route is in it,
 * every live answer (successes and every error) validates against its schemas,
 * every error code the gateway can produce is listed under the status it
 * comes with, and `redocly lint` passes.
 */
import { STATUS_CODES } from "node:http";
import type { GatewayErrorCode } from "../errors.js";
import { E164_PATTERN } from "../gateway/phone-number.js";

type Json = { [key: string]: unknown };

/** An error the gateway documents: the code, the status it comes with, when it happens. */
export interface DocumentedError {
  readonly code: GatewayErrorCode;
  readonly status: number;
  readonly when: string;
  readonly retryAfter?: boolean;
}

const ERRORS: readonly DocumentedError[] = [
  { code: "invalid_request", status: 400, when: "The body is not a JSON object or not UTF-8, a required field is missing, a timestamp is not RFC 3339 or names no real instant (`2030-02-30T10:00:00Z`, `T24:00:00Z`), `end_at` is not after `start_at`, the range is longer than the maximum (31 days by default), `duration_minutes` is not positive, or a phone number is not E.164. The message names the field (`booking.start_at ...`)." },
  { code: "idempotency_key_invalid", status: 400, when: "The `Idempotency-Key` header is missing, empty, longer than 255 characters or not printable ASCII." },
  { code: "unauthorized", status: 401, when: "The `Authorization` header is missing or malformed, or the key is unknown." },
  { code: "bot_not_found", status: 404, when: "The bot does not exist or belongs to another partner (the two are not told apart)." },
  { code: "not_found", status: 404, when: "No route has this path." },
  { code: "method_not_allowed", status: 405, when: "The path exists, but not for this HTTP method (the `Allow` header lists the right one)." },
  { code: "idempotency_key_in_use", status: 409, when: "A request with the same key is still in flight; retry after `Retry-After` seconds.", retryAfter: true },
  { code: "request_too_large", status: 413, when: "The body is larger than the limit (64 KiB by default)." },
  { code: "unsupported_media_type", status: 415, when: "The body is not sent as `application/json`." },
  { code: "unsupported_encoding", status: 415, when: "The body is compressed with a `Content-Encoding` other than `gzip`." },
  { code: "idempotency_key_mismatch", status: 422, when: "The key was used before with a different request. Nothing is sent to the platform." },
  { code: "webhook_not_configured", status: 422, when: "The account the bot serves has no scheduling platform webhook configured." },
  { code: "rate_limited", status: 429, when: "The partner is over its rate limit; retry after `Retry-After` seconds.", retryAfter: true },
  { code: "internal_error", status: 500, when: "An unexpected failure in the gateway." },
  { code: "customer_lookup_not_supported", status: 501, when: "The scheduling platform of the bot's account does not implement customer lookup. Go on without recognising the caller; retrying does not help." },
  { code: "platform_rejected", status: 502, when: "The scheduling platform refused DialStack itself (it answered 401 or 403: its webhook URL or secret is misconfigured on DialStack's side, not your key). The platform's status and code are in the message. Nothing is stored for the idempotency key: retry with the same key once it is fixed." },
  { code: "platform_unavailable", status: 502, when: "The scheduling platform could not be reached, reset the connection or failed without an error envelope. A booking may or may not have been made: retry with the same `Idempotency-Key`, the platform receives it under the same key and books at most once." },
  { code: "platform_invalid_response", status: 502, when: "The scheduling platform answered with something that is not JSON or breaks the documented schema." },
  { code: "service_unavailable", status: 503, when: "A store the gateway needs is unreachable, or DialStack's directory of partners and bots is missing from it (your key is not the problem); retry after `Retry-After` seconds.", retryAfter: true },
  { code: "overloaded", status: 503, when: "The gateway is overloaded and refused the call before doing anything for it; retry after `Retry-After` seconds (a booking may be retried with the same `Idempotency-Key`).", retryAfter: true },
  { code: "platform_timeout", status: 504, when: "The scheduling platform did not answer before the deadline (30 seconds, or `X-Server-Timeout` if sooner)." },
];

/** Codes that concern the request's route rather than an operation. */
const ROUTING_CODES: readonly GatewayErrorCode[] = ["not_found", "method_not_allowed"];
/** Codes only one operation produces. */
const ONLY: Readonly<Partial<Record<GatewayErrorCode, Operation>>> = {
  idempotency_key_invalid: "booking",
  idempotency_key_in_use: "booking",
  idempotency_key_mismatch: "booking",
  customer_lookup_not_supported: "lookup",
};

type Operation = "search" | "booking" | "lookup";

/** Every error code the document lists, with its status. */
export const DOCUMENTED_ERRORS = ERRORS;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const dateTime = (description: string, example: string) => ({ type: "string", format: "date-time", description, examples: [example] });

const BOT_ID = "bot_01h2xcejqtf2nbrexx3vqjhp41";
const PRODUCTION_URL = "https://appointments.dialstack.ai";
/** The key the examples show in place of a real one. */
export const EXAMPLE_KEY = "sk_ptnr_YOUR_PARTNER_KEY";

/** A phone number as the gateway accepts it (see `requirePhone`). */
const E164 = { type: "string", pattern: E164_PATTERN, examples: ["+15551234567"] };

/** The request samples of the partner documentation. */
export const SEARCH_SAMPLE = {
  bot_id: BOT_ID,
  query: { filter: { start_at_range: { start_at: "2024-01-15T09:00:00Z", end_at: "2024-01-15T17:00:00Z" } } },
};

export const LOOKUP_SAMPLE = { bot_id: BOT_ID, customer: { phone: "+15551234567" } };

export const BOOKING_SAMPLE = {
  bot_id: BOT_ID,
  booking: {
    start_at: "2024-01-15T10:00:00Z",
    duration_minutes: 30,
    customer: { phone: "+15551234567", name: "John Doe", email: "john@example.com" },
    notes: "First visit",
  },
};

function errorResponses(operation: Operation): Json {
  const byStatus = new Map<number, DocumentedError[]>();
  for (const e of ERRORS) {
    const only = ONLY[e.code];
    if (ROUTING_CODES.includes(e.code) || (only !== undefined && only !== operation)) continue;
    byStatus.set(e.status, [...(byStatus.get(e.status) ?? []), e]);
  }
  const responses: Json = {};
  for (const [status, errors] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers: Json = { "X-Request-Id": { $ref: "#/components/headers/XRequestId" } };
    if (errors.some((e) => e.retryAfter)) headers["Retry-After"] = { $ref: "#/components/headers/RetryAfter" };
    responses[String(status)] = {
      description: errorDescription(status, errors.map((e) => e.code)),
      headers,
      content: {
        "application/json": {
          schema: ref("Error"),
          examples: Object.fromEntries(errors.map((e) => [e.code, { summary: e.when.split(". ")[0]!.replace(/\.$/, ""), value: { error: { code: e.code, message: exampleMessage(e.code) } } }])),
        },
      },
    };
  }
  if (operation === "booking") {
    const conflict = responses["409"] as { description: string; content: { "application/json": { examples: Json } } };
    conflict.description = errorDescription(409, ["idempotency_key_in_use", "slot_unavailable"]);
    conflict.content["application/json"].examples.slot_unavailable = {
      summary: "The platform's own error: the slot was taken meanwhile",
      value: { error: { code: "slot_unavailable", message: "the slot at 2024-01-15T10:00:00Z is no longer available" } },
    };
  }
  responses.default = {
    description:
      "An error envelope the scheduling platform answered with, passed through with the platform's status and code (for example `409 slot_unavailable`).",
    headers: { "X-Request-Id": { $ref: "#/components/headers/XRequestId" } },
    content: { "application/json": { schema: ref("Error") } },
  };
  return responses;
}

/** A status's description: the codes that come with it; what each means is said once, in `ErrorCode`. */
function errorDescription(status: number, codes: readonly string[]): string {
  return `${STATUS_CODES[status]}: ${codes.map((c) => `\`${c}\``).join(", ")}. The codes are explained under \`ErrorCode\`.`;
}

function exampleMessage(code: GatewayErrorCode): string {
  switch (code) {
    case "invalid_request":
      return "query.filter.start_at_range.end_at must be after start_at";
    case "customer_lookup_not_supported":
      return `the scheduling platform of bot "${BOT_ID}"'s account does not implement customer lookup; go on without it`;
    case "unauthorized":
      return "missing or malformed Authorization header";
    case "bot_not_found":
      return `bot ${BOT_ID} not found`;
    case "platform_rejected":
      return "the scheduling platform refused the gateway's request (401 invalid_signature): the platform's webhook URL or secret is misconfigured at DialStack; retry with the same key once it is fixed";
    default:
      return code.replaceAll("_", " ");
  }
}

const successHeaders = { "X-Request-Id": { $ref: "#/components/headers/XRequestId" } };

export function openApiDocument(): Json {
  return withCurlSamples({
    openapi: "3.1.0",
    info: {
      title: "DialStack Partner API",
      version: "1.0.0",
      summary: "Recognise callers, search availability and book appointments on behalf of voice AI bots.",
      description: [
        "Partner API for voice AI bots to recognise callers, search availability and book appointments.",
        "",
        "1. The partner sends a request to DialStack with `bot_id`.",
        "2. DialStack looks up the bot and the account it serves.",
        "3. DialStack relays the request to the scheduling platform's webhook.",
        "4. The platform's answer is passed through to the partner: its status (`201` for a new booking) and every field, including fields beyond the ones documented here.",
        "",
        'Every error is `{"error": {"code": "...", "message": "..."}}`; `code` is stable and meant for programs, `message` for people. Every response carries `X-Request-Id`: the one the client sent, or a generated one. Quote it when you contact support.',
      ].join("\n"),
      contact: { name: "DialStack API Support", email: "info@dialstack.ai", url: "https://docs.dialstack.ai" },
      license: { name: "Proprietary", url: "https://docs.dialstack.ai" },
    },
    servers: [
      { url: PRODUCTION_URL, description: "Production" },
      { url: "http://127.0.0.1:8080", description: "A gateway on your own machine (`npm start`)" },
    ],
    security: [{ PartnerAuth: [] }],
    tags: [
      { name: "Customers", description: "Recognise the caller at the start of a phone call." },
      { name: "Appointments", description: "Search for free appointment slots and book them on behalf of end customers." },
    ],
    paths: {
      "/v1/customers/lookup": {
        post: {
          operationId: "lookupCustomer",
          tags: ["Customers"],
          summary: "Look up a customer",
          description: [
            "Looks the caller up by phone number, typically when a phone call starts, so the bot can greet a known caller by name and knows about an upcoming appointment. The request is relayed to the scheduling platform's webhook every time (nothing is cached, and the answer carries `Cache-Control: no-store`); the answer is the platform's, passed through.",
            "",
            "Scheduling platforms may leave customer lookup out: then the answer is `501 customer_lookup_not_supported`, and the bot goes on without recognising the caller.",
          ].join("\n"),
          parameters: [{ $ref: "#/components/parameters/XRequestId" }, { $ref: "#/components/parameters/XServerTimeout" }],
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref("LookupCustomerRequest"), examples: { caller: { summary: "The number of an incoming call", value: LOOKUP_SAMPLE } } } },
          },
          responses: {
            "200": {
              description: "Whether the platform knows the caller, as the platform answered.",
              headers: { ...successHeaders, "Cache-Control": { $ref: "#/components/headers/CacheControlNoStore" } },
              content: {
                "application/json": {
                  schema: ref("LookupCustomerResponse"),
                  examples: {
                    found: { summary: "A known caller with an upcoming appointment", value: LOOKUP_ANSWER },
                    not_found: { summary: "An unknown caller", value: { found: false } },
                  },
                },
              },
            },
            ...errorResponses("lookup"),
          },
        },
      },
      "/v1/availability/search": {
        post: {
          operationId: "searchAvailability",
          tags: ["Appointments"],
          summary: "Search availability",
          description:
            "Searches the free appointment slots of the business the bot serves. The request is relayed to the scheduling platform's webhook; the answer is the platform's, passed through.",
          parameters: [{ $ref: "#/components/parameters/XRequestId" }, { $ref: "#/components/parameters/XServerTimeout" }],
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref("SearchAvailabilityRequest"), examples: { search: { summary: "A working day", value: SEARCH_SAMPLE } } } },
          },
          responses: {
            "200": {
              description: "The free slots, as the platform answered.",
              headers: successHeaders,
              content: {
                "application/json": {
                  schema: ref("SearchAvailabilityResponse"),
                  examples: {
                    slots: {
                      summary: "Two free slots",
                      value: {
                        availabilities: [
                          { start_at: "2024-01-15T09:00:00Z", duration_minutes: 30 },
                          { start_at: "2024-01-15T09:30:00Z", duration_minutes: 30 },
                        ],
                      },
                    },
                  },
                },
              },
            },
            ...errorResponses("search"),
          },
        },
      },
      "/v1/availability/search:stream": {
        post: {
          operationId: "streamAvailability",
          tags: ["Appointments"],
          summary: "Stream availability",
          description: [
            "Takes the same request as **Search availability** and answers with Server-Sent Events. The range is cut into windows (a day by default) that are relayed to the platform concurrently and sent in chronological order, each as soon as it and all windows before it are known, so a voice bot can offer the first slots while later days are still being looked up.",
            "",
            "- `message`: one window; the data is an `AvailabilityWindow`.",
            "- `end`: the stream is complete; the data is `{}`.",
            "- `error`: the stream failed after some windows were sent; the data is the error envelope. Nothing follows.",
            "",
            "An error before the first window is an ordinary error response, with the status and envelope listed below. Closing the connection cancels the outstanding requests to the platform.",
          ].join("\n"),
          parameters: [{ $ref: "#/components/parameters/XRequestId" }, { $ref: "#/components/parameters/XServerTimeout" }],
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref("SearchAvailabilityRequest"), examples: { search: { summary: "A working day", value: SEARCH_SAMPLE } } } },
          },
          responses: {
            "200": {
              description: [
                "The windows, as Server-Sent Events: each event is described by `AvailabilityStreamEvent` (its `data` is written as JSON on one line). On the wire:",
                "",
                "```",
                `event: message\ndata: ${JSON.stringify(STREAM_WINDOW_SAMPLE)}\n\nevent: end\ndata: {}`,
                "```",
              ].join("\n"),
              headers: successHeaders,
              content: {
                "text/event-stream": {
                  schema: ref("AvailabilityStreamEvent"),
                  examples: {
                    window: { summary: "A day's window, the data of a `message` event", value: { event: "message", data: STREAM_WINDOW_SAMPLE } },
                    end: { summary: "The end of the stream", value: { event: "end", data: {} } },
                  },
                },
              },
            },
            ...errorResponses("search"),
          },
        },
      },
      "/v1/bookings": {
        post: {
          operationId: "createBooking",
          tags: ["Appointments"],
          summary: "Create booking",
          description:
            "Books an appointment slot. The `Idempotency-Key` header makes a retry safe: the same key with the same request returns the original result (marked `Idempotent-Replayed: true`) and never books twice; the same key with a different request is refused. Results are kept for 24 hours. Stored as results: the booking, and the platform's errors about the request itself (400, 404, 409 such as `slot_unavailable`, 422). Any other failure (`platform_unavailable`, `platform_rejected`, `platform_timeout`, `service_unavailable`, a platform 408, 429 or 5xx) stores nothing: retry with the same key, and the platform, which receives it under the same key, books at most once.",
          parameters: [
            { $ref: "#/components/parameters/IdempotencyKey" },
            { $ref: "#/components/parameters/XRequestId" },
            { $ref: "#/components/parameters/XServerTimeout" },
          ],
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref("CreateBookingRequest"), examples: { booking: { summary: "A first visit", value: BOOKING_SAMPLE } } } },
          },
          responses: {
            "201": {
              description: "The booking was made. The body is the platform's answer.",
              headers: { ...successHeaders, "Idempotent-Replayed": { $ref: "#/components/headers/IdempotentReplayed" } },
              content: { "application/json": { schema: ref("CreateBookingResponse"), examples: { booking: { summary: "A confirmed booking", value: BOOKING_ANSWER } } } },
            },
            "200": {
              description: "The platform answered 200, for example because it had already made this booking.",
              headers: { ...successHeaders, "Idempotent-Replayed": { $ref: "#/components/headers/IdempotentReplayed" } },
              content: { "application/json": { schema: ref("CreateBookingResponse") } },
            },
            ...errorResponses("booking"),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        PartnerAuth: {
          type: "http",
          scheme: "bearer",
          description: `Your partner API key (it starts with \`sk_ptnr_\`): \`Authorization: Bearer ${EXAMPLE_KEY}\`.`,
        },
      },
      parameters: {
        IdempotencyKey: {
          name: "Idempotency-Key",
          in: "header",
          required: true,
          description:
            "Unique key that makes the booking safe to retry: 1 to 255 printable ASCII characters. Keys are scoped to your partner account.",
          schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x20-\\x7E]+$" },
          example: "booking-req-123456",
        },
        XRequestId: {
          name: "X-Request-Id",
          in: "header",
          required: false,
          description: "Your id for the request (1 to 128 of `A-Z a-z 0-9 . _ : -`), echoed in the response and logged; generated when absent.",
          schema: { type: "string", pattern: "^[A-Za-z0-9._:\\-]{1,128}$" },
          example: "req-7f3a9c",
        },
        XServerTimeout: {
          name: "X-Server-Timeout",
          in: "header",
          required: false,
          description: "How long you will wait, in seconds. The gateway gives up on the platform sooner if you ask it to (it waits 30 seconds at most).",
          schema: { type: "string", pattern: "^\\d{1,9}(\\.\\d+)?$" },
          example: "10",
        },
      },
      headers: {
        XRequestId: { description: "The request's id: the one sent in `X-Request-Id`, or a generated one.", schema: { type: "string" } },
        RetryAfter: { description: "Seconds to wait before retrying.", schema: { type: "integer", minimum: 0 } },
        CacheControlNoStore: {
          description: "`no-store`: the answer is personal and only true for the moment, so no cache may keep it.",
          schema: { type: "string", enum: ["no-store"] },
        },
        IdempotentReplayed: {
          description: "`true` when the answer is the stored result of an earlier request with the same `Idempotency-Key`.",
          schema: { type: "string", enum: ["true"] },
        },
      },
      schemas: {
        TimeRange: {
          type: "object",
          description: "A half-open interval of time, `[start_at, end_at)`.",
          required: ["start_at", "end_at"],
          properties: {
            start_at: dateTime("Start of the range (inclusive).", "2024-01-15T09:00:00Z"),
            end_at: dateTime("End of the range (exclusive); after `start_at`.", "2024-01-15T17:00:00Z"),
          },
        },
        AvailabilityQuery: {
          type: "object",
          required: ["filter"],
          properties: {
            filter: {
              type: "object",
              required: ["start_at_range"],
              properties: {
                start_at_range: { ...ref("TimeRange"), description: "Only slots starting in this range are returned. At most 31 days long by default." },
              },
            },
          },
        },
        SearchAvailabilityRequest: {
          type: "object",
          required: ["bot_id", "query"],
          properties: {
            bot_id: { type: "string", description: "The bot making the request.", examples: [BOT_ID] },
            query: ref("AvailabilityQuery"),
          },
        },
        Availability: {
          type: "object",
          required: ["start_at", "duration_minutes"],
          properties: {
            start_at: dateTime("Available slot start time.", "2024-01-15T09:00:00Z"),
            duration_minutes: { type: "integer", description: "Slot duration in minutes.", examples: [30] },
          },
        },
        SearchAvailabilityResponse: {
          type: "object",
          description: "The platform's answer. Fields beyond the documented ones are passed through.",
          required: ["availabilities"],
          properties: { availabilities: { type: "array", items: ref("Availability") } },
        },
        Customer: {
          type: "object",
          description: "The customer of a booking, as the platform recorded it.",
          properties: {
            phone: { type: "string", description: "Phone number, as the platform has it.", examples: ["+15551234567"] },
            name: { type: "string", description: "Full name.", examples: ["John Doe"] },
            email: { type: "string", description: "E-mail address.", examples: ["john@example.com"] },
          },
        },
        BookingDetails: {
          type: "object",
          required: ["start_at", "duration_minutes", "customer"],
          properties: {
            start_at: dateTime("Start of the slot to book, normally one an availability search returned.", "2024-01-15T10:00:00Z"),
            duration_minutes: { type: "integer", minimum: 1, description: "Length of the appointment in minutes.", examples: [30] },
            customer: {
              type: "object",
              required: ["phone", "name"],
              description: "Who the appointment is for: `phone` and `name` are required.",
              properties: {
                phone: { ...E164, description: "Phone number in E.164 form: `+` and 8 to 15 digits, no spaces." },
                name: { type: "string", description: "Full name.", examples: ["John Doe"] },
                email: { type: "string", description: "E-mail address.", examples: ["john@example.com"] },
              },
            },
            notes: { type: "string", description: "Free-form notes for the business.", examples: ["First visit"] },
          },
        },
        CreateBookingRequest: {
          type: "object",
          required: ["bot_id", "booking"],
          properties: {
            bot_id: { type: "string", description: "The bot making the request.", examples: [BOT_ID] },
            booking: ref("BookingDetails"),
          },
        },
        Location: {
          type: "object",
          properties: { name: { type: "string" }, address: { type: "string" } },
        },
        Booking: {
          type: "object",
          properties: {
            id: { type: "string", description: "Booking id from the platform." },
            status: {
              type: "string",
              description:
                "Booking status. The documented values are `confirmed` and `pending`; platforms may also answer `accepted`, `cancelled`, `declined` or `no_show`, passed through unchanged.",
              examples: ["confirmed", "pending"],
            },
            start_at: dateTime("When the appointment starts.", "2024-01-15T10:00:00Z"),
            end_at: dateTime("When the appointment ends.", "2024-01-15T10:30:00Z"),
            customer: ref("Customer"),
            location: ref("Location"),
            notes: { type: "string", description: "Additional booking information, such as the assigned provider." },
            created_at: dateTime("When the platform created the booking.", "2024-01-10T08:12:00Z"),
          },
        },
        CreateBookingResponse: {
          type: "object",
          description: "The platform's answer. Fields beyond the documented ones are passed through.",
          required: ["booking"],
          properties: { booking: ref("Booking") },
        },
        LookupCustomerRequest: {
          type: "object",
          required: ["bot_id", "customer"],
          properties: {
            bot_id: { type: "string", description: "The bot making the request.", examples: [BOT_ID] },
            customer: {
              type: "object",
              description: "Who to look for.",
              required: ["phone"],
              properties: { phone: { ...E164, description: "The caller's phone number in E.164 form: `+` and 8 to 15 digits, no spaces." } },
            },
          },
        },
        ExistingAppointment: {
          type: "object",
          description: "An appointment the customer already has.",
          properties: {
            start_at: dateTime("When the appointment starts.", "2024-01-16T10:00:00Z"),
            end_at: dateTime("When the appointment ends.", "2024-01-16T10:30:00Z"),
            status: { type: "string", description: "The platform's status for the appointment, passed through unchanged.", examples: ["confirmed"] },
          },
        },
        KnownCustomer: {
          type: "object",
          description: "A customer the scheduling platform knows.",
          properties: {
            name: { type: "string", description: "The customer's name, as the platform has it.", examples: ["John Doe"] },
            phone: { type: "string", description: "The customer's phone number, as the platform has it.", examples: ["+15551234567"] },
            existing_appointment: { ...ref("ExistingAppointment"), description: "The customer's upcoming appointment, when the platform reports one." },
          },
        },
        LookupCustomerResponse: {
          type: "object",
          description: "The platform's answer. Fields beyond the documented ones are passed through.",
          required: ["found"],
          properties: {
            found: { type: "boolean", description: "Whether the platform knows a customer with this phone number." },
            customer: { ...ref("KnownCustomer"), description: "The customer, when `found` is true." },
          },
        },
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: {
                code: ref("ErrorCode"),
                message: { type: "string", description: "Human-readable message; may change, do not parse it." },
              },
            },
          },
        },
        AvailabilityWindow: AVAILABILITY_WINDOW,
        AvailabilityStreamEvent: {
          description:
            "One event of the availability stream (Server-Sent Events): `event` is the SSE event name, `data` the event's data, which is JSON on the wire.",
          oneOf: [ref("AvailabilityWindowEvent"), ref("StreamEndEvent"), ref("StreamErrorEvent")],
          discriminator: {
            propertyName: "event",
            mapping: {
              message: "#/components/schemas/AvailabilityWindowEvent",
              end: "#/components/schemas/StreamEndEvent",
              error: "#/components/schemas/StreamErrorEvent",
            },
          },
        },
        AvailabilityWindowEvent: streamEvent("message", "One window of the range, with its free slots.", ref("AvailabilityWindow")),
        StreamEndEvent: streamEvent("end", "The stream is complete; nothing follows.", { type: "object", maxProperties: 0 }),
        StreamErrorEvent: streamEvent("error", "The stream failed after some windows were sent; the data is the error envelope. Nothing follows.", ref("Error")),
        ErrorCode: {
          type: "string",
          description:
            "Stable machine code, for programs to branch on. The gateway's own codes are listed, each with the HTTP status it comes with (`x-http-status`); an error a scheduling platform answers with keeps the platform's code (for example `slot_unavailable`).",
          anyOf: [
            ...ERRORS.map((e) => ({ const: e.code, description: e.when, "x-http-status": e.status })),
            { type: "string", description: "A scheduling platform's own code, passed through." },
          ],
          examples: ERRORS.map((e) => e.code),
        },
      },
    },
  });
}

/**
 * Adds a `curl` command to each operation (`x-codeSamples`, the extension
 * Redoc and other renderers show): the operation's first request example,
 * sent to the first server with the headers it requires.
 */
function withCurlSamples(doc: Json): Json {
  const server = ((doc.servers as Json[])[0]!.url as string);
  const components = doc.components as { parameters: Record<string, Json> };
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
    for (const [method, op] of Object.entries(item)) {
      const body = op.requestBody as { content: Record<string, { examples: Record<string, { value: unknown }> }> } | undefined;
      const example = body === undefined ? undefined : Object.values(Object.values(body.content)[0]!.examples)[0]!.value;
      const streams = Object.values(op.responses as Record<string, Json>).some((r) => (r.content as Json | undefined)?.["text/event-stream"] !== undefined);
      const required = ((op.parameters as { $ref: string }[] | undefined) ?? [])
        .map((p) => components.parameters[p.$ref.split("/").pop()!]!)
        .filter((p) => p.required === true && p.in === "header");
      const lines = [
        `curl -sS -i${streams ? " -N" : ""}${method === "post" ? "" : ` -X ${method.toUpperCase()}`} ${server}${path}`,
        `-H 'Authorization: Bearer ${EXAMPLE_KEY}'`,
        ...(example === undefined ? [] : ["-H 'Content-Type: application/json'"]),
        ...required.map((p) => `-H '${p.name as string}: ${p.example as string}'`),
        ...(example === undefined ? [] : [`-d '${spacedJson(example).replaceAll("'", "'\\''")}'`]),
      ];
      op["x-codeSamples"] = [{ lang: "Shell", label: "curl", source: lines.join(" \\\n  ") }];
    }
  }
  return doc;
}

/** JSON on one line with a space after each `:` and `,`, as the partner documentation writes it (and where a long line can wrap). */
function spacedJson(value: unknown): string {
  return JSON.stringify(value, null, 1)
    .replace(/\n */g, " ")
    .replace(/([{[]) /g, "$1")
    .replace(/ ([}\]])/g, "$1");
}

/** An event of a Server-Sent Events stream: its name, and the schema of its data. */
function streamEvent(name: string, description: string, data: Json): Json {
  return {
    type: "object",
    description,
    required: ["event", "data"],
    properties: { event: { type: "string", const: name }, data },
  };
}

/** The data of a `message` event of the availability stream. */
const AVAILABILITY_WINDOW = {
  type: "object",
  description: "One window of a streamed search: the part of the range it covers, and the free slots in it.",
  required: ["window", "availabilities"],
  properties: { window: ref("TimeRange"), availabilities: { type: "array", items: ref("Availability") } },
};

const STREAM_WINDOW_SAMPLE = {
  window: { start_at: "2024-01-15T00:00:00Z", end_at: "2024-01-16T00:00:00Z" },
  availabilities: [{ start_at: "2024-01-15T09:00:00Z", duration_minutes: 30 }],
};

const LOOKUP_ANSWER = {
  found: true,
  customer: {
    name: "John Doe",
    phone: "+15551234567",
    existing_appointment: { start_at: "2024-01-16T10:00:00Z", end_at: "2024-01-16T10:30:00Z", status: "confirmed" },
  },
};

const BOOKING_ANSWER = {
  booking: {
    id: "bkg_8f2c1a9e",
    status: "confirmed",
    start_at: "2024-01-15T10:00:00Z",
    end_at: "2024-01-15T10:30:00Z",
    customer: { phone: "+15551234567", name: "John Doe", email: "john@example.com" },
    location: { name: "Harbor Street Dental", address: "12 Harbor Street, Springfield" },
    notes: "Provider: Dr. Rivera | First visit",
    created_at: "2024-01-10T08:12:00Z",
  },
};
