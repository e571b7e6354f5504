/**
 * Every error an RPC client receives carries the machine code: errors of the
 * gateway's own model are translated by `GatewayError.toConnectError`, and the
 * errors connect-es raises by itself (a body that does not decode, a body over
 * the size limit, an unsupported compression) are mapped onto the same model
 * here, so no client ever sees an error without a `google.rpc.ErrorInfo`.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { GatewayError, type GatewayErrorCode } from "../errors.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { nameDecodeError } from "./strict-json.js";

function hasErrorInfo(e: ConnectError): boolean {
  return e.findDetails(ErrorInfoSchema).length > 0;
}

const CLIENT_INPUT_REPORTED_AS_INTERNAL =
  /^parse binary:|cannot decode|premature EOF|invalid wire type|illegal tag|^decompression failed|^received compressed envelope|^invalid envelope/i;

/**
 * The gateway error a connect-es protocol error stands for. With the
 * method's `input` type, a decoding error names the field by its path.
 */
export function gatewayErrorOf(e: ConnectError, input?: DescMessage): GatewayError {
  let code: GatewayErrorCode;
  switch (e.code) {
    case Code.InvalidArgument:
      code = "invalid_request";
      break;
    case Code.ResourceExhausted:
      code = "request_too_large";
      break;
    case Code.DeadlineExceeded:
      code = "platform_timeout";
      break;
    case Code.Canceled:
      code = "canceled";
      break;
    case Code.Unauthenticated:
      code = "unauthorized";
      break;
    case Code.Internal:
      // connect-es reports some bodies it cannot read as internal: protobuf
      // that does not decode, gzip that does not inflate, a compressed
      // message without an encoding. They are the client's input, so they are
      // the client's error.
      code = CLIENT_INPUT_REPORTED_AS_INTERNAL.test(e.rawMessage) ? "invalid_request" : "internal_error";
      break;
    case Code.Unimplemented:
      // Also raised for a unary call carrying no message or two messages.
      code = /compression/i.test(e.rawMessage)
        ? "unsupported_encoding"
        : /^protocol error:/.test(e.rawMessage)
          ? "invalid_request"
          : "method_not_allowed";
      break;
    default:
      code = "internal_error";
  }
  const named = code === "invalid_request" && input !== undefined ? nameDecodeError(e.rawMessage, input) : e.rawMessage;
  const message =
    code === "invalid_request"
      ? named !== e.rawMessage
        ? named
        : `the request body could not be decoded: ${e.rawMessage}`
      : code === "request_too_large"
        ? e.rawMessage.replace(/^read/, "request body")
        : code === "internal_error"
          ? "internal error"
          : e.rawMessage;
  return GatewayError.of(code, message, { cause: e });
}

/** Any thrown value as the ConnectError a client receives (`input`: see `gatewayErrorOf`). */
export function toRpcError(e: unknown, input?: DescMessage): ConnectError {
  if (e instanceof GatewayError) return e.toConnectError();
  if (e instanceof ConnectError) return hasErrorInfo(e) ? e : gatewayErrorOf(e, input).toConnectError();
  return GatewayError.from(e).toConnectError();
}

/** True when `e` needs the rewrite of `toRpcError`. */
export function lacksErrorInfo(e: ConnectError): boolean {
  return !hasErrorInfo(e);
}
