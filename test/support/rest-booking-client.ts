/**
 * `CreateBooking` over REST (`POST /v1/bookings`) behind the same interface as
 * the RPC clients, so a behaviour test runs unchanged on REST. A REST error
 * envelope is raised as a ConnectError that keeps what the REST answer said:
 * the envelope's code as the ErrorInfo reason, the answer's own HTTP status as
 * the ErrorInfo's `http_status` (which `expectRpcError` checks against the
 * documented status), and the response headers (`Retry-After`,
 * `Idempotent-Replayed`) as the error's metadata. Its Connect code is the one
 * the RPC protocols would send for that code and status.
 *
 * `timeoutMs` is sent as `X-Server-Timeout`: REST has no client-side timer,
 * so a deadline answer is always the server's.
 */
import { create, fromJson, toJson } from "@bufbuild/protobuf";
import { ConnectError, type CallOptions } from "@connectrpc/connect";
import { connectCodeForPlatformStatus, GatewayError, isGatewayErrorCode } from "../../src/errors.js";
import { CreateBookingRequestSchema, CreateBookingResponseSchema, type CreateBookingRequest } from "../../src/gen/dialstack/partner/v1/booking_pb.js";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { send } from "./http1.js";
import type { RpcClients } from "./clients.js";

export function restBookingClient(baseUrl: string): Pick<RpcClients, "booking"> {
  return {
    booking: {
      async createBooking(req: CreateBookingRequest, options: CallOptions = {}) {
        const headers: Record<string, string> = { "content-type": "application/json" };
        new Headers(options.headers).forEach((value, name) => (headers[name] = value));
        if (options.timeoutMs !== undefined) headers["x-server-timeout"] = String(options.timeoutMs / 1000);
        const res = await send(`${baseUrl}/v1/bookings`, {
          headers,
          body: toJson(CreateBookingRequestSchema, req, { useProtoFieldName: true }),
        });
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === "string") responseHeaders.set(name, value);
        options.onHeader?.(responseHeaders);
        if (res.status >= 200 && res.status < 300) return fromJson(CreateBookingResponseSchema, res.json, { ignoreUnknownFields: true });
        const { code, message } = (res.json?.error ?? {}) as { code?: string; message?: string };
        if (typeof code !== "string" || typeof message !== "string") {
          throw new Error(`POST /v1/bookings answered ${res.status} without the REST error envelope: ${res.text}`);
        }
        const connectCode = isGatewayErrorCode(code) ? GatewayError.of(code, message).connectCode : connectCodeForPlatformStatus(res.status);
        const info = create(ErrorInfoSchema, { reason: code, metadata: { http_status: String(res.status) } });
        throw new ConnectError(message, connectCode, responseHeaders, [{ desc: ErrorInfoSchema, value: info }]);
      },
    } as Pick<RpcClients, "booking">["booking"],
  };
}
