/**
 * The gateway's services as the console calls them: gRPC-Web (the protocol
 * browser tools speak) to the origin the page came from, with the partner
 * key as the bearer token. Every call settles into an `Outcome` that carries
 * what a developer needs to see next to the answer: the request id, whether
 * the answer was a replay, and for an error the gateway's machine code.
 */
import { Code, ConnectError, createClient, type CallOptions, type Client } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AvailabilityService, type SearchAvailabilityRequestSchema, type StreamAvailabilityResponse } from "../../gen/dialstack/partner/v1/availability_pb.js";
import { BookingService, type CreateBookingRequestSchema, type CreateBookingResponse } from "../../gen/dialstack/partner/v1/booking_pb.js";
import { CustomerService, type LookupCustomerRequestSchema, type LookupCustomerResponse } from "../../gen/dialstack/partner/v1/customer_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

/** What the response headers (or, for an error, its metadata) said about the call. */
export interface CallFacts {
  readonly requestId: string | undefined;
  readonly replayed: boolean;
}

export interface CallError {
  /** The gateway's machine code (the ErrorInfo reason), or the protocol's code when there is none (a network failure). */
  readonly code: string;
  /** The protocol's status code, e.g. `not_found`. */
  readonly status: string;
  readonly message: string;
}

export type Outcome<T> = ({ readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: CallError }) & CallFacts;

export class GatewayClient {
  private readonly availability: Client<typeof AvailabilityService>;
  private readonly booking: Client<typeof BookingService>;
  private readonly customers: Client<typeof CustomerService>;

  constructor(baseUrl: string) {
    const transport = createGrpcWebTransport({ baseUrl });
    this.availability = createClient(AvailabilityService, transport);
    this.booking = createClient(BookingService, transport);
    this.customers = createClient(CustomerService, transport);
  }

  lookupCustomer(partnerKey: string, request: MessageInitShape<typeof LookupCustomerRequestSchema>): Promise<Outcome<LookupCustomerResponse>> {
    return call(partnerKey, {}, (options) => this.customers.lookupCustomer(request, options));
  }

  createBooking(partnerKey: string, idempotencyKey: string, request: MessageInitShape<typeof CreateBookingRequestSchema>): Promise<Outcome<CreateBookingResponse>> {
    return call(partnerKey, { "idempotency-key": idempotencyKey }, (options) => this.booking.createBooking(request, options));
  }

  /** Calls `onWindow` with each window as it arrives; the outcome is the number of windows. */
  streamAvailability(
    partnerKey: string,
    request: MessageInitShape<typeof SearchAvailabilityRequestSchema>,
    signal: AbortSignal,
    onWindow: (window: StreamAvailabilityResponse) => void,
  ): Promise<Outcome<number>> {
    return call(partnerKey, {}, async (options) => {
      let windows = 0;
      for await (const window of this.availability.streamAvailability(request, { ...options, signal })) {
        windows++;
        onWindow(window);
      }
      return windows;
    });
  }
}

async function call<T>(partnerKey: string, headers: Record<string, string>, run: (options: CallOptions) => Promise<T>): Promise<Outcome<T>> {
  let received: Headers | undefined;
  const options: CallOptions = {
    headers: { ...headers, authorization: `Bearer ${partnerKey}` },
    onHeader: (h) => {
      received = h;
    },
  };
  try {
    const value = await run(options);
    return { ok: true, value, ...facts(received) };
  } catch (e) {
    const error = ConnectError.from(e);
    const reason = error.findDetails(ErrorInfoSchema)[0]?.reason;
    const status = codeName(error.code);
    return {
      ok: false,
      error: { code: reason ?? status, status, message: error.rawMessage },
      ...facts(received ?? error.metadata),
    };
  }
}

function facts(headers: Headers | undefined): CallFacts {
  return {
    requestId: headers?.get("x-request-id") ?? undefined,
    replayed: headers?.get("idempotent-replayed") === "true",
  };
}

/** `Code.NotFound` as the protocols spell it on the wire: `not_found`. */
function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/[a-z](?=[A-Z])/g, "$&_").toLowerCase();
}
