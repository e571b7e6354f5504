/**
 * The RPC services: thin adapters from a call's context to the business
 * logic. Every protocol, REST included, reaches the gateway through these.
 */
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AvailabilityService, SearchAvailabilityResponseSchema, StreamAvailabilityResponseSchema } from "../gen/dialstack/partner/v1/availability_pb.js";
import { BookingService, CreateBookingResponseSchema } from "../gen/dialstack/partner/v1/booking_pb.js";
import { CustomerService, LookupCustomerResponseSchema } from "../gen/dialstack/partner/v1/customer_pb.js";
import { BotSessionService } from "../gen/dialstack/partner/v1/session_pb.js";
import type { Appointments } from "../gateway/appointments.js";
import type { Customers } from "../gateway/customers.js";
import { BotSession, type BotSessionOptions } from "../gateway/bot-session.js";
import { GatewayError } from "../errors.js";
import type { Metrics } from "../metrics/metrics.js";
import { callerOf, callKey, passThrough } from "./call-context.js";

export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";

/**
 * What a call that came through REST returns: REST answers with the
 * platform's answer as sent, so the typed message (already built, which
 * validated the answer) would only be serialized by connect-es to be thrown
 * away.
 */
const NOT_SENT = {
  search: () => create(SearchAvailabilityResponseSchema),
  booking: () => create(CreateBookingResponseSchema),
  lookup: () => create(LookupCustomerResponseSchema),
};
export const REPLAYED_HEADER = "idempotent-replayed";

/**
 * A lookup answer is personal data and only true for the moment: no cache
 * (a browser's, a proxy's, for a Connect GET above all) may keep it.
 */
const NO_STORE = ["cache-control", "no-store"] as const;

const CONVERSE = "dialstack.partner.v1.BotSessionService/Converse";

export interface Services {
  readonly appointments: Appointments;
  readonly customers: Customers;
  /** Limits and the shutdown signal of bot sessions. */
  readonly sessions: BotSessionOptions;
  /** Counts open sessions. */
  readonly metrics: Metrics;
}

export function registerServices(router: ConnectRouter, { appointments, customers, sessions, metrics }: Services): void {
  router.service(AvailabilityService, {
    async searchAvailability(req, ctx) {
      const result = await appointments.searchAvailability(callerOf(ctx), req);
      return passThrough(ctx, result.answer) ? NOT_SENT.search() : result.message;
    },
    async *streamAvailability(req, ctx) {
      for await (const w of appointments.streamAvailability(callerOf(ctx), req)) {
        yield create(StreamAvailabilityResponseSchema, {
          window: { startAt: timestampFromMs(w.range.startMs), endAt: timestampFromMs(w.range.endMs) },
          availabilities: w.message.availabilities,
        });
      }
    },
  });
  router.service(BookingService, {
    async createBooking(req, ctx: HandlerContext) {
      const headerKey = ctx.requestHeader.get(IDEMPOTENCY_KEY_HEADER) ?? undefined;
      const result = await appointments.createBooking(callerOf(ctx), req, headerKey).catch((e: unknown) => {
        if (e instanceof GatewayError && e.replayed) ctx.responseHeader.set(REPLAYED_HEADER, "true");
        throw e;
      });
      if (result.replayed) ctx.responseHeader.set(REPLAYED_HEADER, "true");
      return passThrough(ctx, result.answer) ? NOT_SENT.booking() : result.message;
    },
  });
  router.service(CustomerService, {
    async lookupCustomer(req, ctx) {
      ctx.responseHeader.set(...NO_STORE);
      const result = await customers.lookupCustomer(callerOf(ctx), req);
      return passThrough(ctx, result.answer) ? NOT_SENT.lookup() : result.message;
    },
  });
  router.service(BotSessionService, {
    // Authentication ran once for the whole stream, in the interceptor.
    async *converse(requests, ctx) {
      // Failures inside the session are logged with the stream's request id.
      const log = ctx.values.get(callKey)?.log;
      const options = log === undefined ? sessions : { ...sessions, reportError: (e: unknown) => log.error({ err: e, procedure: CONVERSE }, "unexpected error") };
      const session = new BotSession(appointments, customers, callerOf(ctx), options);
      metrics.sessionOpened();
      try {
        yield* session.converse(requests);
      } finally {
        metrics.sessionClosed();
      }
    },
  });
}
