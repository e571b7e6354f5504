/**
 * `CreateBooking` over REST (`POST /v1/bookings`) behind the same interface as
 * the RPC clients, so a behaviour test runs unchanged on REST: a REST error
 * envelope is raised as the ConnectError the RPC protocols would send for the
 * same status and code.
 */
import { toJson } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import { GatewayError, isGatewayErrorCode } from "../../src/errors.js";
import { CreateBookingRequestSchema, CreateBookingResponseSchema, type CreateBookingRequest } from "../../src/gen/dialstack/partner/v1/booking_pb.js";
import { fromJson } from "@bufbuild/protobuf";
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
        const { code, message } = res.json.error as { code: string; message: string };
        const retryAfter = res.headers["retry-after"];
        const error = isGatewayErrorCode(code)
          ? GatewayError.of(code, message, { retryAfterSeconds: retryAfter === undefined ? undefined : Number(retryAfter) })
          : GatewayError.fromPlatform(res.status, code, message);
        const rpcError = error.toConnectError();
        const replayed = res.headers["idempotent-replayed"];
        if (typeof replayed === "string") rpcError.metadata.set("idempotent-replayed", replayed);
        throw rpcError;
      },
    } as Pick<RpcClients, "booking">["booking"],
  };
}
