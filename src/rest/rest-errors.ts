/**
 * Errors as REST clients see them: `{"error": {"code", "message"}}` with the
 * HTTP status of the error model, `Retry-After` where it applies, and
 * `X-Request-Id`. Three sources end up here: the RPC error a call
 * answered with (its ErrorInfo carries the machine code and the REST status),
 * errors fastify raises itself (unknown path, body too large, a content type
 * it cannot parse), and the gateway's own `GatewayError`s.
 */
import { ConnectError } from "@connectrpc/connect";
import { errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import type { FastifyReply, FastifyRequest } from "fastify";
import { GatewayError, HTTP_STATUS_METADATA } from "../errors.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { gatewayErrorOf } from "../rpc/rpc-error.js";

export interface RestError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly retryAfter?: string | undefined;
}

export function restErrorOf(e: GatewayError): RestError {
  return {
    status: e.httpStatus,
    code: e.code,
    message: e.message,
    retryAfter: e.retryAfterSeconds === undefined ? undefined : String(e.retryAfterSeconds),
  };
}

/**
 * The REST error a Connect unary error response stands for: the ErrorInfo
 * reason is the code, its `http_status` metadata the status. An answer
 * without ErrorInfo (none is expected: every handler is wrapped to add it) is
 * mapped from its Connect code like any other connect-es error.
 */
export function restErrorOfConnect(bytes: Uint8Array, header: Headers | undefined): RestError {
  let error: ConnectError;
  try {
    error = errorFromJsonBytes(bytes, header, new ConnectError("the call failed without an error body", 13));
  } catch (fallback) {
    error = fallback as ConnectError;
  }
  return restErrorOfConnectError(error, header?.get("retry-after") ?? undefined);
}

/** The REST error an RPC error stands for (see `restErrorOfConnect`). */
export function restErrorOfConnectError(error: ConnectError, retryAfter: string | undefined): RestError {
  const info = error.findDetails(ErrorInfoSchema)[0];
  const status = Number(info?.metadata[HTTP_STATUS_METADATA]);
  if (info === undefined || !Number.isInteger(status) || status < 400 || status > 599) {
    return { ...restErrorOf(gatewayErrorOf(error)), retryAfter };
  }
  return { status, code: info.reason, message: error.rawMessage, retryAfter };
}

/** The REST error for what fastify raised while routing or reading a request. */
export function restErrorOfFramework(e: unknown): RestError {
  if (e instanceof GatewayError) return restErrorOf(e);
  const code = (e as { code?: unknown }).code;
  const statusCode = Number((e as { statusCode?: unknown }).statusCode);
  switch (code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return restErrorOf(GatewayError.of("request_too_large", "the request body is larger than the limit"));
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return restErrorOf(GatewayError.of("unsupported_media_type", "the request body must be application/json"));
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return restErrorOf(GatewayError.of("invalid_request", "the request body is not valid JSON"));
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return restErrorOf(GatewayError.of("invalid_request", "the request body does not match its Content-Length"));
    case "FST_ERR_BAD_URL":
      return restErrorOf(GatewayError.of("invalid_request", "the request path is not a valid URL"));
    case "FST_ERR_MAX_PARAM_LENGTH":
      return restErrorOf(GatewayError.of("invalid_request", "a path parameter is too long"));
  }
  if (Number.isInteger(statusCode) && statusCode >= 400 && statusCode < 500) {
    return restErrorOf(GatewayError.of("invalid_request", "the request could not be read"));
  }
  return restErrorOf(GatewayError.of("internal_error", "internal error"));
}

/** Sends `error` in the REST envelope. */
export function sendRestError(request: FastifyRequest, reply: FastifyReply, error: RestError): FastifyReply {
  reply.code(error.status);
  // fastify asks to close the connection after a body it could not read; on
  // HTTP/2 that header does not exist (Node drops it, with a warning), and
  // the stream ends by itself.
  if (request.raw.httpVersionMajor === 2) reply.removeHeader("connection");
  reply.header("x-request-id", request.id);
  reply.header("content-type", "application/json; charset=utf-8");
  if (error.retryAfter !== undefined) reply.header("retry-after", error.retryAfter);
  return reply.send(JSON.stringify({ error: { code: error.code, message: error.message } }));
}
