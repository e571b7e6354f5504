/**
 * Clients for every RPC protocol the gateway speaks, over each HTTP version
 * the protocol allows, so a behaviour is checked on all of them with
 * `describe.each(RPC_PROTOCOLS)`.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { expect } from "vitest";
import { AvailabilityService } from "../../src/gen/dialstack/partner/v1/availability_pb.js";
import { BookingService } from "../../src/gen/dialstack/partner/v1/booking_pb.js";
import { CustomerService } from "../../src/gen/dialstack/partner/v1/customer_pb.js";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { BotSessionService } from "../../src/gen/dialstack/partner/v1/session_pb.js";

export type RpcProtocol =
  | "connect-json-h1"
  | "connect-binary-h1"
  | "connect-json-h2"
  | "connect-binary-h2"
  | "grpc"
  | "grpc-web-h1"
  | "grpc-web-h2";

export const RPC_PROTOCOLS: readonly RpcProtocol[] = [
  "connect-json-h1",
  "connect-binary-h1",
  "connect-json-h2",
  "connect-binary-h2",
  "grpc",
  "grpc-web-h1",
  "grpc-web-h2",
];

/** Protocols over HTTP/2, the only ones that carry bidirectional streams. */
export const HTTP2_PROTOCOLS: readonly RpcProtocol[] = ["connect-json-h2", "connect-binary-h2", "grpc", "grpc-web-h2"];

export function transportFor(protocol: RpcProtocol, baseUrl: string): Transport {
  const jsonOptions = { useProtoFieldName: true } as const;
  switch (protocol) {
    case "connect-json-h1":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", jsonOptions });
    case "connect-binary-h1":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true });
    case "connect-json-h2":
      return createConnectTransport({ baseUrl, httpVersion: "2", jsonOptions });
    case "connect-binary-h2":
      return createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true });
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "grpc-web-h1":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
    case "grpc-web-h2":
      return createGrpcWebTransport({ baseUrl, httpVersion: "2" });
  }
}

export interface RpcClients {
  readonly availability: Client<typeof AvailabilityService>;
  readonly booking: Client<typeof BookingService>;
  readonly customer: Client<typeof CustomerService>;
  readonly session: Client<typeof BotSessionService>;
}

export function clientsFor(protocol: RpcProtocol, baseUrl: string): RpcClients {
  const transport = transportFor(protocol, baseUrl);
  return {
    availability: createClient(AvailabilityService, transport),
    booking: createClient(BookingService, transport),
    customer: createClient(CustomerService, transport),
    session: createClient(BotSessionService, transport),
  };
}

export function bearer(key: string, extra: Record<string, string> = {}): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${key}`, ...extra } };
}

/** The machine code of an RPC error: the reason of its ErrorInfo detail. */
export function reasonOf(e: unknown): string | undefined {
  const error = ConnectError.from(e);
  return error.findDetails(ErrorInfoSchema)[0]?.reason;
}

/**
 * The REST status of each machine code of the gateway's own, as the README's
 * error table documents it. Every protocol carries it: REST as the HTTP
 * status, the RPC protocols as the ErrorInfo's `http_status` metadata.
 */
export const DOCUMENTED_STATUS: Readonly<Record<string, number>> = {
  unauthorized: 401,
  bot_not_found: 404,
  invalid_request: 400,
  request_too_large: 413,
  idempotency_key_invalid: 400,
  idempotency_key_mismatch: 422,
  idempotency_key_in_use: 409,
  webhook_not_configured: 422,
  customer_lookup_not_supported: 501,
  not_found: 404,
  method_not_allowed: 405,
  unsupported_media_type: 415,
  unsupported_encoding: 415,
  platform_rejected: 502,
  platform_unavailable: 502,
  platform_invalid_response: 502,
  platform_timeout: 504,
  rate_limited: 429,
  service_unavailable: 503,
  overloaded: 503,
  internal_error: 500,
};

/**
 * Awaits a call that must fail with `code` and an ErrorInfo whose reason is
 * `reason`, and whose `http_status` is `httpStatus` (by default the status
 * `DOCUMENTED_STATUS` gives the reason; a platform's own codes have none, so
 * pass-through checks name the platform's status).
 */
export async function expectRpcError(call: Promise<unknown>, code: Code, reason: string, options: { httpStatus?: number } = {}): Promise<ConnectError> {
  let caught: unknown;
  try {
    await call;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${Code[code]}/${reason}`).toBeInstanceOf(ConnectError);
  const error = caught as ConnectError;
  const status = options.httpStatus ?? DOCUMENTED_STATUS[reason];
  const seen = { code: Code[error.code], reason: reasonOf(error), httpStatus: httpStatusOf(error) };
  expect(seen).toEqual({ code: Code[code], reason, httpStatus: status === undefined ? seen.httpStatus : status });
  return error;
}

/** The REST status an RPC error carries in its ErrorInfo (a REST answer's own status, through restBookingClient). */
export function httpStatusOf(e: unknown): number | undefined {
  const status = ConnectError.from(e).findDetails(ErrorInfoSchema)[0]?.metadata.http_status;
  return status === undefined ? undefined : Number(status);
}

/** Protocols a test may speak: the RPC ones, and REST. */
export type Protocol = RpcProtocol | "rest";

/**
 * Request headers that give the call a deadline of `ms` the way `protocol`
 * carries it. No client-side timer is armed, so the answer that comes back is
 * the server's own.
 */
export function deadlineHeaders(protocol: Protocol, ms: number): Record<string, string> {
  if (protocol === "rest") return { "x-server-timeout": String(ms / 1000) };
  if (protocol.startsWith("connect-")) return { "connect-timeout-ms": String(ms) };
  return { "grpc-timeout": `${ms}m` };
}

export { create, type MessageInitShape };

import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { SearchAvailabilityRequestSchema } from "../../src/gen/dialstack/partner/v1/availability_pb.js";
import { CreateBookingRequestSchema } from "../../src/gen/dialstack/partner/v1/booking_pb.js";
import { LookupCustomerRequestSchema } from "../../src/gen/dialstack/partner/v1/customer_pb.js";

/** A search request message from its JSON (REST) body. */
export function searchRequest(json: unknown) {
  return fromJson(SearchAvailabilityRequestSchema, json as JsonValue);
}

/** A booking request message from its JSON (REST) body. */
export function bookingRequest(json: unknown) {
  return fromJson(CreateBookingRequestSchema, json as JsonValue);
}

/** A customer lookup request message from its JSON (REST) body. */
export function lookupRequest(json: unknown) {
  return fromJson(LookupCustomerRequestSchema, json as JsonValue);
}
