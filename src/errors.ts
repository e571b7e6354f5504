/**
 * The gateway's error model: every failure has a stable snake_case machine
 * code, a human message, an HTTP status for REST, and a Connect code for
 * Connect, gRPC and gRPC-Web. Business logic throws `GatewayError`; the
 * protocol layers translate it, so a client sees the same code whatever
 * protocol it speaks.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** The codes the gateway itself produces. Platform error codes pass through as they are. */
export type GatewayErrorCode =
  | "unauthorized"
  | "bot_not_found"
  | "invalid_request"
  | "request_too_large"
  | "idempotency_key_invalid"
  | "idempotency_key_mismatch"
  | "idempotency_key_in_use"
  | "webhook_not_configured"
  | "customer_lookup_not_supported"
  | "platform_rejected"
  | "platform_unavailable"
  | "platform_invalid_response"
  | "platform_timeout"
  | "rate_limited"
  | "service_unavailable"
  | "overloaded"
  | "not_found"
  | "method_not_allowed"
  | "unsupported_media_type"
  | "unsupported_encoding"
  | "canceled"
  | "too_many_operations"
  | "duplicate_request_id"
  | "session_idle"
  | "session_expired"
  | "too_many_sessions"
  | "shutting_down"
  | "http2_required"
  | "internal_error";

interface CodeSpec {
  readonly httpStatus: number;
  readonly connectCode: Code;
}

const SPECS: Readonly<Record<GatewayErrorCode, CodeSpec>> = {
  unauthorized: { httpStatus: 401, connectCode: Code.Unauthenticated },
  bot_not_found: { httpStatus: 404, connectCode: Code.NotFound },
  invalid_request: { httpStatus: 400, connectCode: Code.InvalidArgument },
  request_too_large: { httpStatus: 413, connectCode: Code.ResourceExhausted },
  idempotency_key_invalid: { httpStatus: 400, connectCode: Code.InvalidArgument },
  idempotency_key_mismatch: { httpStatus: 422, connectCode: Code.FailedPrecondition },
  idempotency_key_in_use: { httpStatus: 409, connectCode: Code.Aborted },
  webhook_not_configured: { httpStatus: 422, connectCode: Code.FailedPrecondition },
  // The account's platform lacks the webhook. Like a server that "does not
  // support the functionality required" (HTTP 501, gRPC unimplemented), and
  // like it, not worth retrying: the bot goes on without it.
  customer_lookup_not_supported: { httpStatus: 501, connectCode: Code.Unimplemented },
  // The platform refused the gateway itself (401/403: wrong secret, wrong
  // URL). Not the partner's fault, and no retry helps until an operator fixes
  // the platform's configuration: a 502 for REST, failed_precondition for RPC.
  platform_rejected: { httpStatus: 502, connectCode: Code.FailedPrecondition },
  platform_unavailable: { httpStatus: 502, connectCode: Code.Unavailable },
  platform_invalid_response: { httpStatus: 502, connectCode: Code.Unavailable },
  platform_timeout: { httpStatus: 504, connectCode: Code.DeadlineExceeded },
  rate_limited: { httpStatus: 429, connectCode: Code.ResourceExhausted },
  service_unavailable: { httpStatus: 503, connectCode: Code.Unavailable },
  overloaded: { httpStatus: 503, connectCode: Code.Unavailable },
  not_found: { httpStatus: 404, connectCode: Code.NotFound },
  method_not_allowed: { httpStatus: 405, connectCode: Code.Unimplemented },
  unsupported_media_type: { httpStatus: 415, connectCode: Code.InvalidArgument },
  // Connect and gRPC answer an unknown compression with unimplemented.
  unsupported_encoding: { httpStatus: 415, connectCode: Code.Unimplemented },
  canceled: { httpStatus: 499, connectCode: Code.Canceled },
  too_many_operations: { httpStatus: 429, connectCode: Code.ResourceExhausted },
  duplicate_request_id: { httpStatus: 400, connectCode: Code.InvalidArgument },
  session_idle: { httpStatus: 408, connectCode: Code.DeadlineExceeded },
  session_expired: { httpStatus: 408, connectCode: Code.DeadlineExceeded },
  too_many_sessions: { httpStatus: 429, connectCode: Code.ResourceExhausted },
  shutting_down: { httpStatus: 503, connectCode: Code.Unavailable },
  http2_required: { httpStatus: 505, connectCode: Code.Unimplemented },
  internal_error: { httpStatus: 500, connectCode: Code.Internal },
};

/** The ErrorInfo domain of every error the gateway sends. */
export const ERROR_DOMAIN = "dialstack.ai";

/** ErrorInfo metadata key carrying the REST status, so REST can be rebuilt from any RPC error. */
export const HTTP_STATUS_METADATA = "http_status";

/** True for the codes the gateway itself produces (as opposed to a platform's codes). */
export function isGatewayErrorCode(code: string): code is GatewayErrorCode {
  return Object.hasOwn(SPECS, code);
}

/**
 * Connect code for an error answered by a scheduling platform, from its HTTP
 * status. (401 and 403 never get here: they are `platform_rejected`.)
 */
export function connectCodeForPlatformStatus(status: number): Code {
  if (status === 400) return Code.InvalidArgument;
  if (status === 404) return Code.NotFound;
  if (status === 409) return Code.AlreadyExists;
  if (status === 422) return Code.FailedPrecondition;
  if (status === 429) return Code.ResourceExhausted;
  if (status >= 500) return Code.Unavailable;
  return Code.FailedPrecondition;
}

export interface GatewayErrorOptions {
  /** Seconds after which a retry may succeed; sent as `Retry-After`. */
  readonly retryAfterSeconds?: number;
  /** Kept on the server for logs; never sent to a client. */
  readonly cause?: unknown;
}

export class GatewayError extends Error {
  readonly retryAfterSeconds: number | undefined;

  private constructor(
    readonly code: string,
    message: string,
    readonly httpStatus: number,
    readonly connectCode: Code,
    options: GatewayErrorOptions,
    /** True for an error envelope a scheduling platform answered with (see `fromPlatform`). */
    readonly platformEnvelope = false,
    /** True when this is the stored outcome of an earlier booking with the same idempotency key. */
    readonly replayed = false,
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** An error the gateway produces itself. */
  static of(code: GatewayErrorCode, message: string, options: GatewayErrorOptions = {}): GatewayError {
    const spec = SPECS[code];
    return new GatewayError(code, message, spec.httpStatus, spec.connectCode, options);
  }

  /** An error envelope a scheduling platform answered with, passed through. */
  static fromPlatform(status: number, code: string, message: string): GatewayError {
    return new GatewayError(code, message, status, connectCodeForPlatformStatus(status), {}, true);
  }

  /** The same error, marked as replayed from an earlier booking with the same idempotency key. */
  asReplay(): GatewayError {
    const { retryAfterSeconds, cause } = this;
    return new GatewayError(this.code, this.message, this.httpStatus, this.connectCode, { retryAfterSeconds, cause }, this.platformEnvelope, true);
  }

  /** Any thrown value as a GatewayError; unknown failures become `internal_error` without detail. */
  static from(e: unknown): GatewayError {
    if (e instanceof GatewayError) return e;
    return GatewayError.of("internal_error", "internal error", { cause: e });
  }

  /** The REST body of this error. */
  toJSON(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }

  /**
   * The error as Connect, gRPC and gRPC-Web clients see it: the Connect code,
   * the message, a `google.rpc.ErrorInfo` whose reason is the machine code,
   * and `Retry-After` where it applies.
   */
  toConnectError(): ConnectError {
    const metadata = new Headers();
    if (this.retryAfterSeconds !== undefined) {
      metadata.set("retry-after", String(this.retryAfterSeconds));
    }
    return new ConnectError(this.message, this.connectCode, metadata, [
      {
        desc: ErrorInfoSchema,
        value: create(ErrorInfoSchema, {
          reason: this.code,
          domain: ERROR_DOMAIN,
          metadata: { [HTTP_STATUS_METADATA]: String(this.httpStatus) },
        }),
      },
    ]);
  }
}
