/**
 * The gateway's business logic, written once for every protocol: check the
 * request, find where the caller's bot sends its requests, relay the request
 * to that platform as a signed webhook, and read its answer. Nothing here knows
 * which protocol the caller speaks.
 */
import { hash } from "node:crypto";
import type { CreateBookingRequest, CreateBookingResponse } from "../gen/dialstack/partner/v1/booking_pb.js";
import { CreateBookingResponseSchema } from "../gen/dialstack/partner/v1/booking_pb.js";
import type { SearchAvailabilityRequest, SearchAvailabilityResponse } from "../gen/dialstack/partner/v1/availability_pb.js";
import { SearchAvailabilityResponseSchema } from "../gen/dialstack/partner/v1/availability_pb.js";
import { GatewayError } from "../errors.js";
import { fromPlatformJson, fromPlatformJsonInSlices, requirePlatformField } from "../platform/platform-json.js";
import type { JsonObject, WebhookClient } from "../platform/webhook-client.js";
import type { Directory, BotRoute } from "../store/directory.js";
import { isoOfMillis } from "./calendar.js";
import { webhookTarget, type Caller, type Relayed } from "./caller.js";
import { checkIdempotencyKey, downstreamIdempotencyKey, type IdempotencyKeeper } from "./idempotency.js";
import { orderedPool } from "./ordered-pool.js";
import { invalid, requirePhone, requireString, requireTimestamp } from "./validation.js";

export interface AppointmentsOptions {
  readonly maxSearchRangeMs: number;
  /** Width of one window of a streamed search. */
  readonly streamWindowMs: number;
  /** Windows of one streamed search relayed at once. */
  readonly streamConcurrency: number;
}

/** One window of a streamed availability search. */
export interface AvailabilityWindow {
  readonly range: SearchRange;
  readonly message: SearchAvailabilityResponse;
}

/** A validated availability range. */
export interface SearchRange {
  readonly startMs: number;
  readonly endMs: number;
}

export class Appointments {
  constructor(
    private readonly directory: Directory,
    private readonly webhooks: WebhookClient,
    private readonly idempotency: IdempotencyKeeper,
    private readonly options: AppointmentsOptions,
  ) {}

  /** The bot a caller names, if it is theirs and its account has a webhook. */
  route(caller: Caller, botId: string): Promise<BotRoute> {
    return this.directory.route(caller.partner, requireString(botId, "bot_id"));
  }

  /** Checks a search request and returns its range. */
  searchRange(req: SearchAvailabilityRequest): SearchRange {
    const range = req.query?.filter?.startAtRange;
    if (req.query === undefined) throw invalid("query is required");
    if (req.query.filter === undefined) throw invalid("query.filter is required");
    if (range === undefined) throw invalid("query.filter.start_at_range is required");
    const start = requireTimestamp(range.startAt, "query.filter.start_at_range.start_at");
    const end = requireTimestamp(range.endAt, "query.filter.start_at_range.end_at");
    if (end.ms <= start.ms) throw invalid("query.filter.start_at_range.end_at must be after start_at");
    if (end.ms - start.ms > this.options.maxSearchRangeMs) {
      const days = this.options.maxSearchRangeMs / 86_400_000;
      throw invalid(`query.filter.start_at_range may span at most ${days} days`);
    }
    return { startMs: start.ms, endMs: end.ms };
  }

  async searchAvailability(caller: Caller, req: SearchAvailabilityRequest): Promise<Relayed<SearchAvailabilityResponse>> {
    const range = this.searchRange(req);
    const route = await this.route(caller, req.botId);
    return this.searchRangeOf(caller, route, range);
  }

  /**
   * Streams an availability search window by window: the range is cut at
   * multiples of the window width (UTC midnights for days), windows are
   * relayed concurrently up to the configured bound, and each is yielded as
   * soon as it and all windows before it are known.
   */
  async *streamAvailability(caller: Caller, req: SearchAvailabilityRequest): AsyncGenerator<AvailabilityWindow> {
    const range = this.searchRange(req);
    const route = await this.route(caller, req.botId);
    const windows = cutWindows(range, this.options.streamWindowMs);
    yield* orderedPool(
      windows.length,
      this.options.streamConcurrency,
      async (i, signal) => {
        const window = windows[i]!;
        const relayed = await this.searchRangeOf({ ...caller, signal }, route, window);
        return { range: window, message: relayed.message };
      },
      caller.signal,
    );
  }

  /** Relays one availability search for an already checked range and route. */
  async searchRangeOf(caller: Caller, route: BotRoute, range: SearchRange): Promise<Relayed<SearchAvailabilityResponse>> {
    const { answer, value } = await this.webhooks.postAndRead({
      target: webhookTarget(route),
      accountId: route.account.id,
      path: "/availability/search",
      payload: {
        account_id: route.account.id,
        query: { filter: { start_at_range: { start_at: isoOfMillis(range.startMs), end_at: isoOfMillis(range.endMs) } } },
      },
      signal: caller.signal,
      deadline: caller.deadline,
      idempotent: true,
      requestId: caller.requestId,
      trace: caller.trace,
      read: readAvailabilities,
    });
    return { message: value, answer, replayed: false };
  }

  /**
   * Books a slot, at most once per idempotency key. `headerKey` is the key the
   * protocol carried outside the message (the `Idempotency-Key` header).
   *
   * Once sent, the booking webhook is not cut short when the caller leaves or
   * its deadline passes (only the webhook timeout bounds it): the platform may
   * be booking right then, and its answer is stored so the retry gets it. The
   * caller itself stops waiting at its deadline.
   */
  async createBooking(caller: Caller, req: CreateBookingRequest, headerKey: string | undefined): Promise<Relayed<CreateBookingResponse>> {
    const key = checkIdempotencyKey(headerKey, req.idempotencyKey);
    const booking = bookingPayload(req);
    const route = await this.route(caller, req.botId);
    const fingerprint = hash("sha256", JSON.stringify([route.bot.id, booking]), "hex");
    // The message read from this call's own answer, so it is not read twice; a replay reads the stored answer.
    let sent: CreateBookingResponse | undefined;
    const result = await this.idempotency.execute(
      { scope: caller.partner.id, key, fingerprint, signal: caller.signal, deadline: caller.deadline },
      async () => {
        const answer = await this.webhooks.post({
          target: webhookTarget(route),
          accountId: route.account.id,
          path: "/bookings",
          payload: {
            account_id: route.account.id,
            idempotency_key: downstreamIdempotencyKey(caller.partner.id, key),
            booking,
          },
          // Never re-sent by the client: the partner's retry re-sends it, under the same downstream key.
          idempotent: false,
          requestId: caller.requestId,
          trace: caller.trace,
        });
        // An answer that is not a booking is not stored: the retry asks again.
        sent = readBooking(answer.body);
        return answer;
      },
    );
    const message = !result.replayed && sent !== undefined ? sent : readBooking(result.answer.body);
    return { message, answer: result.answer, replayed: result.replayed };
  }
}

/** Cuts a range at multiples of `widthMs` since the epoch. */
export function cutWindows(range: SearchRange, widthMs: number): SearchRange[] {
  const windows: SearchRange[] = [];
  let start = range.startMs;
  while (start < range.endMs) {
    const end = Math.min(range.endMs, (Math.floor(start / widthMs) + 1) * widthMs);
    windows.push({ startMs: start, endMs: end });
    start = end;
  }
  return windows;
}

/** The booking as the platform receives it, in a fixed key order (it is also what the fingerprint hashes). */
function bookingPayload(req: CreateBookingRequest): JsonObject {
  const b = req.booking;
  if (b === undefined) throw invalid("booking is required");
  const start = requireTimestamp(b.startAt, "booking.start_at");
  if (b.durationMinutes <= 0) throw invalid("booking.duration_minutes must be greater than 0");
  const c = b.customer;
  if (c === undefined) throw invalid("booking.customer is required");
  const customer: JsonObject = {
    phone: requirePhone(c.phone, "booking.customer.phone"),
    name: requireString(c.name, "booking.customer.name"),
  };
  if (c.email !== "") customer.email = c.email;
  const payload: JsonObject = { start_at: start.iso, duration_minutes: b.durationMinutes, customer };
  if (b.notes !== "") payload.notes = b.notes;
  return payload;
}

function isRecord(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readAvailabilities(body: JsonObject): Promise<SearchAvailabilityResponse> {
  const list = body.availabilities;
  requirePlatformField(Array.isArray(list), "availabilities");
  (list as unknown[]).forEach((a, i) => {
    requirePlatformField(isRecord(a), `availabilities[${i}]`);
    const slot = a as JsonObject;
    requirePlatformField(typeof slot.start_at === "string", `availabilities[${i}].start_at`);
    requirePlatformField(typeof slot.duration_minutes === "number", `availabilities[${i}].duration_minutes`);
  });
  // A search may answer thousands of slots: converted in slices, so other calls are not held up.
  return fromPlatformJsonInSlices(SearchAvailabilityResponseSchema, body, "availabilities");
}

function readBooking(body: JsonObject): CreateBookingResponse {
  requirePlatformField(isRecord(body.booking), "booking");
  return fromPlatformJson(CreateBookingResponseSchema, body);
}

export { GatewayError };
