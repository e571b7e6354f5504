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

/** Awaits a call that must fail with `code` and an ErrorInfo whose reason is `reason`. */
export async function expectRpcError(call: Promise<unknown>, code: Code, reason: string): Promise<ConnectError> {
  let caught: unknown;
  try {
    await call;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${Code[code]}/${reason}`).toBeInstanceOf(ConnectError);
  const error = caught as ConnectError;
  expect({ code: Code[error.code], reason: reasonOf(error) }).toEqual({ code: Code[code], reason });
  return error;
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
