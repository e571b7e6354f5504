/**
 * connect-es raises some errors before any interceptor runs (decoding the
 * request, enforcing the size limit, negotiating compression), and sends them
 * without details. This wraps a universal handler and rewrites such errors on
 * their way out, in each protocol's own framing, so they carry the same
 * `google.rpc.ErrorInfo` as every other error:
 *
 * - Connect unary: the JSON error body (and its HTTP status);
 * - Connect streaming: the end-stream message;
 * - gRPC: the trailers;
 * - gRPC-Web: the trailer frame.
 *
 * It also answers a Connect GET whose base64 message does not decode, which
 * connect-es would report as internal.
 *
 * Errors that already carry an ErrorInfo pass untouched, so the common path
 * costs one byte check per response chunk.
 *
 * A bidirectional call over HTTP/1.1 is refused by connect-es with a bare HTTP
 * 505, which clients report as `unknown: HTTP 505`. It is answered instead as
 * the protocol's own error, `unimplemented` with reason `http2_required`:
 * a Connect end-stream message, or a gRPC / gRPC-Web trailers-only response.
 * The connection is still closed, so a client waiting to stream is released.
 *
 * connect-es answers a method it does not serve (405) or a content type none
 * of its protocols takes (415) with a bare status; those get the protocol's
 * error body too. And it spells `grpc-message` with `encodeURIComponent`; the
 * trailers it writes are respelled as the gRPC specification says (see
 * grpc-message.ts), so grpc-js and grpc-go show the message as it was.
 *
 * A deadline longer than a Node timer holds (`maxTimeoutMs`) is refused here,
 * before connect-es, which would refuse it too but arm a timer with it first
 * (and have Node print a `TimeoutOverflowWarning` for a client's input).
 */
import { ConnectError } from "@connectrpc/connect";
import { encodeEnvelope, type UniversalHandler, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  createEndStreamSerialization,
  endStreamFlag,
  errorFromJsonBytes,
  errorToJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import type { DescMessage } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { GatewayError } from "../errors.js";
import { callKey } from "./call-context.js";
import { respellGrpcMessage } from "./grpc-message.js";
import { lacksErrorInfo, toRpcError } from "./rpc-error.js";

const COMPRESSED_FLAG = 0b00000001;
const endStream = createEndStreamSerialization({});

/** The protocol of a request, as connect-es negotiates it: by content type. */
function protocolOf(contentType: string | null): "grpc" | "grpc-web" | "connect" {
  if (contentType === null) return "connect";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
}

export function withErrorDetails(handler: UniversalHandler, maxTimeoutMs: number): UniversalHandler {
  const isStream = handler.method.methodKind !== "unary";
  const input = handler.method.input;
  const wrapped = async (req: Parameters<UniversalHandler>[0]): Promise<UniversalServerResponse> => {
    const settled = settlerOf(req);
    if (req.method === "GET") {
      const undecodable = checkGetMessage(req.url);
      if (undecodable !== undefined) return connectUnaryError(settled(undecodable));
    }
    const tooLong = checkDeadline(req.header, maxTimeoutMs);
    if (tooLong !== undefined) return errorResponse(req.header.get("content-type"), settled(tooLong), new Headers());
    const res = await handler(req);
    if (res.status === 505) return http2Required(req.header.get("content-type"), res, settled);
    if (res.status === 405 || res.status === 415) return refused(handler, req.header.get("content-type"), res, settled);
    switch (protocolOf(req.header.get("content-type"))) {
      case "connect":
        return isStream
          ? mapChunks(res, endStreamFlag, (data) => rewriteEndStream(data, input, settled))
          : rewriteConnectUnary(res, input, settled);
      case "grpc":
        return rewriteGrpc(res, input, settled);
      case "grpc-web":
        return mapChunks(res, trailerFlag, (data) => rewriteGrpcWebTrailer(data, input, settled));
    }
  };
  return Object.assign(wrapped, handler) as UniversalHandler;
}

/**
 * connect-es decodes the base64 `message` of a Connect GET with a function
 * that throws a plain Error, which it reports as internal; the message is
 * the client's input, so it is checked here first.
 */
function checkGetMessage(url: string): ConnectError | undefined {
  const query = new URL(url, "http://gateway").searchParams;
  if (query.get("base64") !== "1") return undefined;
  try {
    base64Decode(query.get("message") ?? "");
    return undefined;
  } catch {
    return GatewayError.of("invalid_request", "the message query parameter is not valid base64").toConnectError();
  }
}

function connectUnaryError(error: ConnectError): UniversalServerResponse {
  const body = errorToJsonBytes(error, {});
  const header = new Headers({ "content-type": "application/json", "content-length": String(body.byteLength) });
  return { status: codeToHttpStatus(error.code), header, body: single(body) };
}

const HTTP2_REQUIRED = GatewayError.of(
  "http2_required",
  "bidirectional streams need HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2); this request came over HTTP/1.1",
).toConnectError();

/** Records a status the wrapper decides (on the call's observation) and returns the error. */
export type Settle = (error: ConnectError) => ConnectError;

/** The `Settle` of a request: the call's status, for metrics and tracing, where it is decided here. */
export function settlerOf(req: Pick<Parameters<UniversalHandler>[0], "contextValues">): Settle {
  const call = req.contextValues?.get(callKey);
  return (error) => {
    call?.settle(error.code);
    return error;
  };
}

function http2Required(contentType: string | null, res: UniversalServerResponse, settle: Settle): UniversalServerResponse {
  return errorResponse(contentType, settle(HTTP2_REQUIRED), new Headers(res.header), 505);
}

/**
 * connect-es answers a method it does not serve (a GET of a method with side
 * effects, a PUT) with a bare 405, and a content type no protocol of the
 * method accepts with a bare 415: clients then see only `HTTP 405`. Both are
 * answered in the protocol's error shape instead, with the same status.
 */
function refused(handler: UniversalHandler, contentType: string | null, res: UniversalServerResponse, settle: Settle): UniversalServerResponse {
  const header = new Headers(res.header);
  if (res.status === 405) {
    header.set("allow", handler.allowedMethods.join(", "));
    const error = GatewayError.of("method_not_allowed", `${handler.requestPath} accepts ${handler.allowedMethods.join(" or ")}`);
    return errorResponse(contentType, settle(error.toConnectError()), header, 405);
  }
  const error = GatewayError.of(
    "unsupported_media_type",
    `content type ${JSON.stringify(contentType ?? "")} is not supported; use one of Connect, gRPC or gRPC-Web's content types`,
  );
  return errorResponse(contentType, settle(error.toConnectError()), header, 415);
}

/**
 * The deadline a request asks for (`connect-timeout-ms`, `grpc-timeout`), as
 * an error when it is longer than `maxTimeoutMs`. Malformed values are left
 * to connect-es, which refuses them without a timer.
 */
export function checkDeadline(header: Headers, maxTimeoutMs: number): ConnectError | undefined {
  let ms: number | undefined;
  const connect = header.get("connect-timeout-ms");
  if (connect !== null && /^\d{1,10}$/.test(connect)) ms = Number(connect);
  const grpc = /^(\d{1,8})([HMSmun])$/.exec(header.get("grpc-timeout") ?? "");
  if (grpc !== null) ms = Number(grpc[1]) * GRPC_TIMEOUT_UNIT_MS[grpc[2]!]!;
  if (ms === undefined || ms <= maxTimeoutMs) return undefined;
  return GatewayError.of("invalid_request", `the deadline of ${ms} ms is longer than the ${maxTimeoutMs} ms allowed`).toConnectError();
}

const GRPC_TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * `error` as the protocol of `contentType` sends an error that ends a call
 * before any message: a Connect end-stream message, a gRPC / gRPC-Web
 * trailers-only response, or a Connect unary error body (with `unaryStatus`,
 * or the status of its code).
 */
function errorResponse(contentType: string | null, error: ConnectError, header: Headers, unaryStatus?: number): UniversalServerResponse {
  const type = contentType ?? "";
  if (/^application\/connect\+/.test(type)) {
    header.set("content-type", type);
    const body = encodeEnvelope(endStreamFlag, endStream.serialize({ metadata: new Headers(), error }));
    return { status: 200, header, body: single(body) };
  }
  if (/^application\/grpc/.test(type)) {
    header.set("content-type", type);
    setTrailerStatus(header, error);
    respellGrpcMessage(header);
    return { status: 200, header };
  }
  header.set("content-type", "application/json");
  return { status: unaryStatus ?? codeToHttpStatus(error.code), header, body: single(errorToJsonBytes(error, {})) };
}

async function* single(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  yield chunk;
}

async function readAll(body: UniversalServerResponse["body"]): Promise<Uint8Array> {
  if (body === undefined) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  const parts: Uint8Array[] = [];
  for await (const chunk of body) parts.push(chunk);
  return Buffer.concat(parts);
}

/** A Connect unary response with its error (if any) in the gateway's model. */
export async function rewriteConnectUnary(res: UniversalServerResponse, input: DescMessage, settle: Settle): Promise<UniversalServerResponse> {
  if (res.status === 200 || res.header?.has("content-encoding") || res.body === undefined) return res;
  const bytes = await readAll(res.body);
  let error: ConnectError;
  try {
    error = errorFromJsonBytes(bytes, undefined, new ConnectError("", 2));
  } catch {
    return { ...res, body: single(bytes) };
  }
  if (!lacksErrorInfo(error)) return { ...res, body: single(bytes) };
  const fixed = settle(toRpcError(error, input));
  const body = errorToJsonBytes(fixed, {});
  const header = new Headers(res.header);
  header.set("content-length", String(body.byteLength));
  fixed.metadata.forEach((v, k) => header.set(k, v));
  return { ...res, status: codeToHttpStatus(fixed.code), header, body: single(body) };
}

function rewriteGrpc(res: UniversalServerResponse, input: DescMessage, settle: Settle): UniversalServerResponse {
  const trailer = res.trailer;
  const body = res.body;
  if (trailer === undefined || body === undefined || body instanceof Uint8Array) return res;
  const watchedTrailer: Headers = trailer;
  async function* watched(): AsyncIterable<Uint8Array> {
    try {
      yield* body as AsyncIterable<Uint8Array>;
    } finally {
      rewriteGrpcTrailer(watchedTrailer, input, settle);
    }
  }
  return { ...res, body: watched() };
}

/** gRPC trailers (in place) with their error (if any) in the gateway's model and `grpc-message` spelled as the specification says. */
export function rewriteGrpcTrailer(trailer: Headers, input: DescMessage, settle: Settle): void {
  if (!trailer.has("grpc-message")) return;
  const error = findTrailerError(trailer);
  if (error !== undefined && lacksErrorInfo(error)) {
    const fixed = settle(toRpcError(error, input));
    for (const k of [...trailer.keys()]) trailer.delete(k);
    setTrailerStatus(trailer, fixed);
  }
  respellGrpcMessage(trailer);
}

/** Rewrites the chunk whose envelope flags include `flag` (one envelope per chunk). */
function mapChunks(
  res: UniversalServerResponse,
  flag: number,
  rewrite: (data: Uint8Array) => Uint8Array | undefined,
): UniversalServerResponse {
  const body = res.body;
  if (body === undefined || body instanceof Uint8Array) return res;
  async function* mapped(): AsyncIterable<Uint8Array> {
    for await (const chunk of body as AsyncIterable<Uint8Array>) yield rewriteEnvelope(chunk, flag, rewrite);
  }
  return { ...res, body: mapped() };
}

/** `chunk`, one envelope, with its data rewritten when its flags include `flag` and it is not compressed. */
export function rewriteEnvelope(chunk: Uint8Array, flag: number, rewrite: (data: Uint8Array) => Uint8Array | undefined): Uint8Array {
  if (chunk.length < 5 || (chunk[0]! & flag) !== flag || (chunk[0]! & COMPRESSED_FLAG) !== 0) return chunk;
  const data = rewrite(chunk.subarray(5));
  if (data === undefined) return chunk;
  const out = new Uint8Array(5 + data.length);
  out[0] = chunk[0]!;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

function rewriteEndStream(data: Uint8Array, input: DescMessage, settle: Settle): Uint8Array | undefined {
  const end = endStream.parse(data);
  if (end.error === undefined || !lacksErrorInfo(end.error)) return undefined;
  return endStream.serialize({ metadata: end.metadata, error: settle(toRpcError(end.error, input)) });
}

/** A gRPC-Web trailer frame's data with its error in the gateway's model; undefined when it stays as it is. */
export function rewriteGrpcWebTrailer(data: Uint8Array, input: DescMessage, settle: Settle): Uint8Array | undefined {
  const trailer = trailerParse(data);
  const error = findTrailerError(trailer);
  if (error === undefined) return undefined;
  if (lacksErrorInfo(error)) {
    const fixed = setTrailerStatus(new Headers(), settle(toRpcError(error, input)));
    respellGrpcMessage(fixed);
    return trailerSerialize(fixed);
  }
  return respellGrpcMessage(trailer) ? trailerSerialize(trailer) : undefined;
}
