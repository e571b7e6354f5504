/**
 * A lean path for the common unary call, beside connect-es's general handler.
 *
 * connect-es serves every call, unary or not, through one pipeline: protocol
 * negotiation, then a chain of async generators that split the body into
 * envelopes, parse them, invoke the implementation, serialize, compress and
 * join the answer, wrapped again by the gateway's error rewrite
 * (error-details-handler.ts). For a unary call that chain costs more CPU than
 * everything else the gateway does for it. This path answers the same call
 * with plain code built from connect-es's own exported pieces:
 * `createHandlerContext` (deadline, cancellation, headers; the request's
 * headers are shared with it rather than copied),
 * `invokeUnaryImplementation` (the same interceptors: observation, error
 * model, authentication and rate limit), the method's own serialization (the
 * same size limit and strict JSON decoding), `compressionNegotiate`,
 * `envelopeCompress`, `setTrailerStatus`, `trailerMux`, `errorToJsonBytes`,
 * and then the gateway's own rewrite of the answer's error.
 *
 * The rule: a unary method, called with `POST`, with a gRPC, gRPC-Web (not
 * `-text`) or Connect unary content type, an uncompressed request (the
 * answer is compressed as negotiated), a deadline header of its own
 * protocol that is valid (or none) and none of another's, takes this path.
 * Everything else goes to the general handler unchanged: GET, streams,
 * compressed requests, malformed deadlines or encodings, CORS preflights.
 *
 * A request whose body turns out not to be exactly one well-formed message
 * within the size limit (too large, extra or missing messages, a message that
 * does not decode, a body cut off) is handed to the general handler too, with
 * the bytes already read put back in front of the rest: connect-es then
 * answers it with its own error, so every client error reads as it always
 * did. (The request gate runs once more then; it admits or refuses the same
 * way.)
 *
 * The path stands in front of the route `@connectrpc/connect-fastify` adds
 * for the method (fastify's `onRoute` hook replaces the route's handler with
 * one that falls through to the plugin's), so it also does the work of
 * connect-node's request and response adapters, more cheaply: it reads the
 * node request's headers directly for the rule, copies them into `Headers`
 * once, reads the body from the request's events rather than through two
 * layers of async iterators, and writes the answer without a promise per
 * chunk. Its request signal is aborted when the response closes, as
 * connect-node's is (with the reset code of an HTTP/2 stream, or the error of
 * an HTTP/1.1 connection), but with one reason made once where connect-node
 * makes a new `DOMException`, with its stack trace, for every call.
 *
 * The answer is what the general handler sends, byte for byte: the same
 * status, headers, trailers and body chunks, in the same writes.
 * `UNARY_FAST_PATH=off` turns the path off; the protocol test suite runs
 * against both (vitest's `general-path` project).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type MethodImplSpec,
} from "@connectrpc/connect";
import { universalResponseToNodeResponse } from "@connectrpc/connect-node";
import {
  compressionNegotiate,
  createMethodSerializationLookup,
  encodeEnvelope,
  envelopeCompress,
  invokeUnaryImplementation,
  mergeNonProtocolHeaders,
  validateUniversalHandlerOptions,
  type Compression,
  type MethodSerializationLookup,
  type UniversalHandler,
  type UniversalHandlerOptions,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import * as connect from "@connectrpc/connect/protocol-connect";
import * as grpc from "@connectrpc/connect/protocol-grpc";
import * as grpcWeb from "@connectrpc/connect/protocol-grpc-web";
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import { rewriteConnectUnary, rewriteEnvelope, rewriteGrpcTrailer, rewriteGrpcWebTrailer, settlerOf, type Settle } from "./error-details-handler.js";
import { CALL_ENDED } from "./call-context.js";
import { urlBaseOf } from "../server/authority.js";

/** The options given to the Connect plugin that bear on serving a call. */
export type FastPathOptions = Partial<UniversalHandlerOptions>;

/** The context values of a request, as the Connect plugin's `contextValues` option makes them. */
export type ContextValuesOf = (req: FastifyRequest) => ContextValues;

type RouterOptions = Parameters<ConnectRouter["rpc"]>[2];

interface Method {
  readonly spec: MethodImplSpec & { kind: "unary" };
  readonly options: UniversalHandlerOptions;
  readonly serialization: MethodSerializationLookup<DescMessage, DescMessage>;
  /** The handler the plugin serves for this method, for what this path hands back. */
  general?: UniversalHandler;
}

let taken = 0;

/** How many calls this process answered on the fast path; for tests and diagnostics. */
export function unaryFastPathCalls(): number {
  return taken;
}

/**
 * The fast path of one Connect plugin: `record` sees the implementations as
 * they are registered, `serve` sees the handler the plugin will serve for
 * each, and `route` (fastify's `onRoute` hook, in the plugin's scope) puts the
 * path in front of the plugin's route for each unary method (when `enabled`).
 */
export class UnaryFastPath {
  private readonly methods = new Map<string, Method>();

  constructor(
    private readonly options: FastPathOptions,
    private readonly enabled: boolean,
    private readonly contextValues?: ContextValuesOf,
  ) {}

  /** A router that registers through `router` and keeps each unary implementation, with its options, for `serve`. */
  record(router: ConnectRouter): ConnectRouter {
    const recording: ConnectRouter = {
      handlers: router.handlers,
      service: (service, implementation, options) => {
        router.service(service, implementation, options);
        for (const spec of Object.values(createServiceImplSpec(service, implementation).methods)) this.keep(spec, options);
        return recording;
      },
      rpc: (method, impl, options) => {
        router.rpc(method, impl, options);
        this.keep(createMethodImplSpec(method, impl), options);
        return recording;
      },
    };
    return recording;
  }

  /** Notes `general`, the handler the plugin serves, as the one this path hands back to; returns it as it is. */
  serve(general: UniversalHandler): UniversalHandler {
    const method = this.methods.get(general.requestPath);
    if (method !== undefined && method.spec.method === general.method) method.general = general;
    return general;
  }

  /**
   * For fastify's `onRoute` hook: the route the plugin adds for a recorded
   * unary method gets this path in front of its handler. A call the rule
   * does not admit reaches the plugin's handler untouched.
   */
  route(route: RouteOptions): void {
    const method = this.methods.get(route.url);
    const general = method?.general;
    if (!this.enabled || method === undefined || general === undefined) return;
    const plugin = route.handler as RouteHandler;
    const contextValues = this.contextValues;
    route.handler = function unaryFastPath(this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) {
      const admitted = admit(req.raw, method);
      if (admitted === undefined) return plugin.call(this, req, reply);
      return serveUnary(req, reply, method, general, admitted, contextValues?.(req));
    };
  }

  private keep(spec: MethodImplSpec, methodOptions: RouterOptions): void {
    if (spec.kind !== "unary") return;
    // As connect-es's router merges them: the method's options over the plugin's.
    const options = validateUniversalHandlerOptions({ ...validateUniversalHandlerOptions(this.options), ...methodOptions });
    const serialization = createMethodSerializationLookup(spec.method, options.binaryOptions, options.jsonOptions, options);
    this.methods.set(`/${spec.method.parent.typeName}/${spec.method.name}`, { spec, options, serialization });
  }
}

type RouteHandler = (this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) => unknown;
type NodeRequest = IncomingMessage | Http2ServerRequest;
type NodeResponse = ServerResponse | Http2ServerResponse;

/** What differs between the three protocols on this path. */
interface Protocol {
  readonly name: "grpc" | "grpc-web" | "connect";
  readonly timeoutHeader: string;
  /** The deadline header of the other protocols; a call carrying it takes the general path. */
  readonly foreignTimeoutHeader: string;
  readonly parseTimeout: (value: string | null, maxTimeoutMs: number) => { timeoutMs?: number; error?: ConnectError };
  readonly encodingHeader: string;
  readonly acceptEncodingHeader: string;
  readonly contentType: (binary: boolean) => string;
  /** The `grpc-status` trailer of a successful call, where the protocol has trailers. */
  readonly trailer: string | undefined;
  /** The request headers read here, spelled as node holds them (in lower case). */
  readonly nodeNames: { readonly timeout: string; readonly foreignTimeout: string; readonly encoding: string; readonly acceptEncoding: string };
}

function nodeNamesOf(p: Pick<Protocol, "timeoutHeader" | "foreignTimeoutHeader" | "encodingHeader" | "acceptEncodingHeader">): Protocol["nodeNames"] {
  return {
    timeout: p.timeoutHeader.toLowerCase(),
    foreignTimeout: p.foreignTimeoutHeader.toLowerCase(),
    encoding: p.encodingHeader.toLowerCase(),
    acceptEncoding: p.acceptEncodingHeader.toLowerCase(),
  };
}

const GRPC: Protocol = {
  name: "grpc",
  timeoutHeader: grpc.headerTimeout,
  foreignTimeoutHeader: connect.headerTimeout,
  parseTimeout: grpc.parseTimeout,
  encodingHeader: grpc.headerEncoding,
  acceptEncodingHeader: grpc.headerAcceptEncoding,
  contentType: (binary) => (binary ? grpc.contentTypeProto : grpc.contentTypeJson),
  trailer: grpc.grpcStatusOk,
  nodeNames: nodeNamesOf({
    timeoutHeader: grpc.headerTimeout,
    foreignTimeoutHeader: connect.headerTimeout,
    encodingHeader: grpc.headerEncoding,
    acceptEncodingHeader: grpc.headerAcceptEncoding,
  }),
};

const GRPC_WEB: Protocol = {
  ...GRPC,
  name: "grpc-web",
  contentType: (binary) => (binary ? grpcWeb.contentTypeProto : grpcWeb.contentTypeJson),
};

const CONNECT: Protocol = {
  name: "connect",
  timeoutHeader: connect.headerTimeout,
  foreignTimeoutHeader: grpc.headerTimeout,
  parseTimeout: connect.parseTimeout,
  encodingHeader: connect.headerUnaryEncoding,
  acceptEncodingHeader: connect.headerUnaryAcceptEncoding,
  contentType: (binary) => (binary ? connect.contentTypeUnaryProto : connect.contentTypeUnaryJson),
  trailer: undefined,
  nodeNames: nodeNamesOf({
    timeoutHeader: connect.headerTimeout,
    foreignTimeoutHeader: grpc.headerTimeout,
    encodingHeader: connect.headerUnaryEncoding,
    acceptEncodingHeader: connect.headerUnaryAcceptEncoding,
  }),
};

/** The protocol of a content type, as connect-es negotiates it, when it is one this path serves. */
function protocolOf(contentType: string | null): { protocol: Protocol; binary: boolean } | undefined {
  if (contentType === null) return undefined;
  const g = grpc.parseContentType(contentType);
  if (g !== undefined) return { protocol: GRPC, binary: g.binary };
  const w = grpcWeb.parseContentType(contentType);
  if (w !== undefined) return w.text ? undefined : { protocol: GRPC_WEB, binary: w.binary };
  const c = connect.parseContentType(contentType);
  if (c !== undefined && !c.stream) return { protocol: CONNECT, binary: c.binary };
  return undefined;
}

/** What the rule found in a call it admits. */
interface Admitted {
  readonly protocol: Protocol;
  readonly binary: boolean;
  readonly timeoutMs: number | undefined;
  readonly compression: Compression | null;
  /** How many bytes a well-formed request has at most. */
  readonly limit: number;
  /** A Connect request's `Content-Length`, when it counts. */
  readonly declared: number | undefined;
  /** The scheme and authority of the request's URL. */
  readonly base: string;
}

/** The call, when the rule admits it to this path (see the top of this file); undefined sends it to the plugin's route. */
function admit(raw: NodeRequest, method: Method): Admitted | undefined {
  if (raw.method !== "POST") return undefined;
  const headers = raw.headers;
  const wire = protocolOf(headerOf(headers, "content-type"));
  if (wire === undefined) return undefined;
  const { protocol, binary } = wire;
  const { options } = method;
  if (headers[protocol.nodeNames.foreignTimeout] !== undefined) return undefined;
  const timeout = protocol.parseTimeout(headerOf(headers, protocol.nodeNames.timeout), options.maxTimeoutMs);
  if (timeout.error !== undefined) return undefined;
  const compression = compressionNegotiate(
    options.acceptCompression,
    headerOf(headers, protocol.nodeNames.encoding),
    headerOf(headers, protocol.nodeNames.acceptEncoding),
    protocol.acceptEncodingHeader,
  );
  if (compression.error !== undefined || compression.request !== null) return undefined;
  // The scheme and authority connect-node builds the call's URL from; a request without a valid one goes to
  // the plugin's route (in the gateway, the RPC routes refuse it before: src/server/authority.ts).
  const base = urlBaseOf(raw);
  if (base === undefined) return undefined;
  let limit = options.readMaxBytes + 5;
  let declared: number | undefined;
  if (protocol === CONNECT) {
    declared = lengthHint(headerOf(headers, "content-length"));
    if (declared !== undefined && declared > options.readMaxBytes) return undefined;
    limit = declared ?? options.readMaxBytes;
  }
  return { protocol, binary, timeoutMs: timeout.timeoutMs, compression: compression.response, limit, declared, base };
}

/** As the plugin's route: what fails unexpectedly is reported, and fastify answers what was not answered. */
function serveUnary(...call: Parameters<typeof serveAdmitted>): Promise<void> {
  return serveAdmitted(...call).catch((e: unknown) => reportFailure(call[0], e));
}

async function serveAdmitted(
  req: FastifyRequest,
  reply: FastifyReply,
  method: Method,
  general: UniversalHandler,
  admitted: Admitted,
  contextValues: ContextValues | undefined,
): Promise<void> {
  const raw = req.raw;
  const { protocol, binary, compression } = admitted;
  const { options, spec, serialization } = method;
  const signal = requestSignal(raw, reply.raw);
  const header = webHeaders(raw.headers);
  // The string connect-node makes with `new URL` (which nothing here reads), without parsing it again.
  const url = `${admitted.base}${raw.url ?? ""}`;

  const context = createHandlerContext({
    ...spec,
    service: spec.method.parent,
    requestMethod: "POST",
    protocolName: protocol.name,
    timeoutMs: admitted.timeoutMs,
    shutdownSignal: options.shutdownSignal,
    requestSignal: signal,
    url,
    contextValues,
  });
  // The request's headers as made here (`createHandlerContext` would copy and check every header again; nothing writes to a request's headers).
  Object.assign(context, { requestHeader: header });
  // Set one by one: undici reads a record of headers through WebIDL's conversions first, which costs more.
  context.responseHeader.set(grpc.headerContentType, protocol.contentType(binary));
  if (protocol.trailer !== undefined) context.responseTrailer.set(grpc.headerGrpcStatus, protocol.trailer);
  if (protocol !== CONNECT && compression !== null) context.responseHeader.set(protocol.encodingHeader, compression.name);
  const answer: Answer = { protocol, context, compression, options, input: spec.method.input, settle: settlerOf({ contextValues }) };

  // As the general handler: the gate runs before the body is read.
  if (options.requestGate !== undefined) {
    try {
      await options.requestGate(context);
    } catch (e) {
      return send(req, reply, await answerError(answer, e));
    }
  }

  const read = await readBody(raw, admitted.limit);
  const message = read.complete ? parseRequest(read.bytes, protocol, admitted.declared, serialization.getI(binary), options.readMaxBytes) : undefined;
  if (message === undefined) {
    context.abort(CALL_ENDED);
    const request: UniversalServerRequest = { httpVersion: raw.httpVersion, method: "POST", url, header, body: readAgain(raw, read), signal, contextValues };
    return handBack(req, reply, general, request);
  }

  taken++;
  let data: Uint8Array;
  try {
    const output = await invokeUnaryImplementation(spec, context, message, options.interceptors);
    data = serialization.getO(binary).serialize(output);
  } catch (e) {
    return send(req, reply, await answerError(answer, e));
  }
  return send(req, reply, await answerMessage(answer, data));
}

/** What an answer is built from. */
interface Answer {
  readonly protocol: Protocol;
  readonly context: ReturnType<typeof createHandlerContext>;
  readonly compression: Compression | null;
  readonly options: UniversalHandlerOptions;
  readonly input: DescMessage;
  readonly settle: Settle;
}

/** An answer as written: status, headers, the body's chunks one by one, and trailers where the protocol has them. */
interface Out {
  readonly status: number;
  readonly header: Headers;
  readonly chunks: readonly Uint8Array[];
  readonly trailer?: Headers | undefined;
}

async function answerMessage(answer: Answer, data: Uint8Array): Promise<Out> {
  const { protocol, context, compression, options } = answer;
  try {
    if (protocol === CONNECT) {
      let body = data;
      if (compression !== null && body.byteLength >= options.compressMinBytes) {
        body = await compression.compress(body);
        context.responseHeader.set(connect.headerUnaryEncoding, compression.name);
      }
      context.abort(CALL_ENDED);
      return connectResponse(200, context, body);
    }
    const envelope = await envelopeCompress({ flags: 0, data }, compression, options.compressMinBytes);
    const chunk = encodeEnvelope(envelope.flags, envelope.data);
    if (protocol === GRPC) {
      context.abort(CALL_ENDED);
      rewriteGrpcTrailer(context.responseTrailer, answer.input, answer.settle);
      return { status: 200, header: context.responseHeader, trailer: context.responseTrailer, chunks: [chunk] };
    }
    const trailer = await grpcWebTrailer(answer);
    context.abort(CALL_ENDED);
    return { status: 200, header: context.responseHeader, chunks: [chunk, trailer] };
  } catch (e) {
    return answerError(answer, e);
  }
}

/** The answer to a call that failed, as the general handler sends it (see the rewrites in error-details-handler.ts). */
async function answerError(answer: Answer, e: unknown): Promise<Out> {
  const { protocol, context, compression, options } = answer;
  context.abort(e);
  const error = e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
  if (protocol === CONNECT) {
    context.responseHeader.set(connect.headerContentType, connect.contentTypeUnaryJson);
    if (!error.isWireError) mergeNonProtocolHeaders(context.responseHeader, error.metadata);
    let body = connect.errorToJsonBytes(error, options.jsonOptions ?? {});
    context.abort(CALL_ENDED);
    if (compression !== null && body.byteLength >= options.compressMinBytes) {
      body = await compression.compress(body);
      context.responseHeader.set(connect.headerUnaryEncoding, compression.name);
    }
    const out = connectResponse(connect.codeToHttpStatus(error.code), context, body);
    const res = await rewriteConnectUnary({ status: out.status, header: out.header, body: chunks(...out.chunks) }, answer.input, answer.settle);
    return { status: res.status, header: res.header ?? new Headers(), chunks: await collect(res.body) };
  }
  grpc.setTrailerStatus(context.responseTrailer, error);
  if (protocol === GRPC) {
    rewriteGrpcTrailer(context.responseTrailer, answer.input, answer.settle);
    return { status: 200, header: context.responseHeader, trailer: context.responseTrailer, chunks: [] };
  }
  return { status: 200, header: context.responseHeader, chunks: [await grpcWebTrailer(answer)] };
}

/** A Connect unary answer: trailers as `trailer-` headers, and the length of the body. */
function connectResponse(status: number, context: Answer["context"], body: Uint8Array): Out {
  // connect-es's `trailerMux`, in place: the call has ended, and a copy of its headers costs more than the rest of the answer's.
  const header = context.responseHeader;
  context.responseTrailer.forEach((value, key) => header.append(`trailer-${key}`, value));
  header.set(connect.headerUnaryContentLength, body.byteLength.toString(10));
  return { status, header, chunks: [body] };
}

/** The trailer frame of a gRPC-Web answer, compressed as the general handler would, then rewritten as error-details-handler.ts does. */
async function grpcWebTrailer(answer: Answer): Promise<Uint8Array> {
  const data = grpcWeb.trailerSerialize(answer.context.responseTrailer);
  const envelope = await envelopeCompress({ flags: grpcWeb.trailerFlag, data }, answer.compression, answer.options.compressMinBytes);
  const chunk = encodeEnvelope(envelope.flags, envelope.data);
  return rewriteEnvelope(chunk, grpcWeb.trailerFlag, (trailer) => rewriteGrpcWebTrailer(trailer, answer.input, answer.settle));
}

/**
 * Writes an answer as the plugin's route and connect-node's
 * `universalResponseToNodeResponse` write it: the headers fastify holds for
 * the reply (request id, CORS), the status and headers, each chunk in its own
 * write, the trailers, the end. Nothing is written to a response that is
 * already gone (the caller hung up); fastify then sends nothing either.
 */
function send(req: FastifyRequest, reply: FastifyReply, out: Out): void {
  const res = reply.raw;
  try {
    copyReplyHeaders(reply);
    if (gone(res)) return;
    res.writeHead(out.status, nodeHeaders(out.header));
    for (const chunk of out.chunks) res.write(chunk);
    if (out.trailer !== undefined) res.addTrailers(nodeHeaders(out.trailer));
    res.end();
  } catch (e) {
    reportFailure(req, e);
  }
}

/**
 * A call this path admitted but whose body is not one well-formed message:
 * answered by the general handler, as the plugin's route would have, with
 * the bytes already read put back in front of the rest of the body.
 */
async function handBack(req: FastifyRequest, reply: FastifyReply, general: UniversalHandler, request: UniversalServerRequest): Promise<void> {
  try {
    const res = await general(request);
    copyReplyHeaders(reply);
    await universalResponseToNodeResponse(res, reply.raw);
  } catch (e) {
    reportFailure(req, e);
  }
}

/** The headers fastify holds for the reply (request id, CORS), moved to the node response as the plugin's route moves them. */
function copyReplyHeaders(reply: FastifyReply): void {
  const held = reply.getHeaders();
  for (const key in held) {
    const value = held[key];
    if (value !== undefined) reply.raw.setHeader(key, value);
  }
}

/** As the plugin's route: an aborted call is the caller's doing and not reported. */
function reportFailure(req: FastifyRequest, e: unknown): void {
  if (ConnectError.from(e).code === Code.Aborted) return;
  req.log.error({ err: e }, "the unary fast path could not answer a call");
}

function gone(res: NodeResponse): boolean {
  return "stream" in res ? res.stream.destroyed : res.destroyed;
}

/** Web headers as node takes them for `writeHead` and `addTrailers`, as connect-node converts them. */
function nodeHeaders(header: Headers): Record<string, string | string[]> {
  const o: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  header.forEach((value, key) => {
    const existing = o[key];
    if (existing === undefined) o[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else o[key] = [existing, value];
  });
  return o;
}

/** A request's headers as Web headers (HTTP/2's pseudo-headers left out), as connect-node makes them, with `set` where a name has one value. */
function webHeaders(headers: NodeRequest["headers"]): Headers {
  const header = new Headers();
  for (const key in headers) {
    if (key.charCodeAt(0) === 58 /* : */) continue;
    const value = headers[key];
    if (value === undefined) continue;
    if (typeof value === "string") header.set(key, value);
    else for (const v of value) header.append(key, v);
  }
  return header;
}

/** One header's value as Web headers read it: repeated values joined, surrounding whitespace removed. */
function headerOf(headers: NodeRequest["headers"], name: string): string | null {
  const value = headers[name];
  if (value === undefined) return null;
  const joined = typeof value === "string" ? value : value.map(trimHttp).join(", ");
  return trimHttp(joined);
}

function trimHttp(value: string): string {
  const n = value.length;
  if (n === 0 || (value.charCodeAt(0) > 32 && value.charCodeAt(n - 1) > 32)) return value;
  return value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
}

/**
 * The request's signal, aborted when the call's response closes, as
 * connect-node's adapter aborts it; but where connect-node aborts with no
 * reason (which makes a new `DOMException`, stack trace and all, for every
 * call), this aborts with one made once.
 */
function requestSignal(raw: NodeRequest, res: NodeResponse): AbortSignal {
  const controller = new AbortController();
  if ("stream" in raw) {
    // HTTP/2 has error codes to honour.
    raw.once("close", () => controller.abort(h2ResetReason(raw.stream.rstCode) ?? CLOSED));
  } else {
    // HTTP/1.1 has none, but Node reports ECONNRESET; and the request closes as soon as its body is read, so the response is watched.
    const onError = (e: unknown) => {
      raw.off("error", onError);
      res.off("close", onClose);
      controller.abort(nodeReason(e));
    };
    const onClose = () => {
      raw.off("error", onError);
      res.off("close", onClose);
      controller.abort(raw.errored ? nodeReason(raw.errored) : CLOSED);
    };
    raw.once("error", onError);
    res.once("close", onClose);
  }
  return controller.signal;
}

/** What `AbortController.abort()` would make for each call, made once. */
const CLOSED = new DOMException("This operation was aborted", "AbortError");

/** connect-node's reading of an HTTP/2 stream's reset code. */
function h2ResetReason(rstCode: number): ConnectError | undefined {
  const code = H2_RESET_CODES[rstCode];
  if (code === undefined) return undefined;
  return new ConnectError(`http/2 stream closed with error code ${H2_RESET_NAMES[rstCode]} (0x${rstCode.toString(16)})`, code);
}

const H2_RESET_NAMES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/** As connect-node maps them (STREAM_CLOSED deliberately not, as gRPC's HTTP/2 mapping says). */
const H2_RESET_CODES: Partial<Record<number, Code>> = {
  1: Code.Internal,
  2: Code.Internal,
  3: Code.Internal,
  4: Code.Internal,
  6: Code.Internal,
  7: Code.Unavailable,
  8: Code.Canceled,
  9: Code.Internal,
  10: Code.Internal,
  11: Code.ResourceExhausted,
  12: Code.PermissionDenied,
  13: Code.PermissionDenied,
};

/** connect-node's reading of a Node error on a request: a caller that hung up is `aborted`. */
function nodeReason(reason: unknown): ConnectError {
  const codes: string[] = [];
  for (let e = reason, depth = 0; e instanceof Error && depth < 16; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    if (!("cause" in e)) break;
  }
  let code = Code.Internal;
  if (codes.some((c) => c === "ERR_STREAM_WRITE_AFTER_END" || c === "ERR_STREAM_DESTROYED" || c === "ERR_HTTP2_INVALID_STREAM" || c === "ECONNRESET")) {
    code = Code.Aborted;
  } else if (codes.some((c) => c === "ETIMEDOUT" || c === "ENOTFOUND" || c === "EAI_AGAIN" || c === "ECONNREFUSED")) {
    code = Code.Unavailable;
  }
  const error = ConnectError.from(reason, code);
  if (error !== reason) error.cause = reason;
  return error;
}

/** A request body as read: complete, or cut short at the limit (or by an error) with the rest still to read. */
interface Read {
  readonly bytes: Uint8Array;
  readonly received: readonly Uint8Array[];
  readonly complete: boolean;
  readonly error?: { readonly reason: unknown };
}

/** Reads the body from the request's events, up to `limit` bytes; past that, the request is paused with the rest unread. */
function readBody(raw: NodeRequest, limit: number): Promise<Read> {
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    let length = 0;
    const finish = (read: Read) => {
      raw.off("data", onData);
      raw.off("end", onEnd);
      raw.off("error", onError);
      raw.off("close", onClose);
      resolve(read);
    };
    const onData = (chunk: Buffer) => {
      received.push(chunk);
      length += chunk.byteLength;
      if (length > limit) {
        raw.pause();
        finish({ bytes: new Uint8Array(0), received, complete: false });
      }
    };
    const onEnd = () => finish({ bytes: received.length === 1 ? received[0]! : concat(received, length), received, complete: true });
    const onError = (reason: unknown) => finish({ bytes: new Uint8Array(0), received, complete: false, error: { reason } });
    // Closed before its end: the caller went away while sending.
    const onClose = () => {
      if (!raw.readableEnded) onError(raw.errored ?? new ConnectError("the request body was cut off", Code.Aborted));
    };
    // A request already ended, failed or gone (something before this path read or lost it) settles at once,
    // as reading it through its async iterator would: empty, or with the error.
    if (raw.readableEnded) return resolve({ bytes: new Uint8Array(0), received, complete: true });
    if (raw.destroyed || raw.errored) {
      return resolve({ bytes: new Uint8Array(0), received, complete: false, error: { reason: raw.errored ?? new ConnectError("the request body was cut off", Code.Aborted) } });
    }
    raw.on("data", onData);
    raw.on("end", onEnd);
    raw.on("error", onError);
    raw.on("close", onClose);
    // A 'data' listener starts a request that was never paused, not one that was.
    if (raw.readableFlowing === false) raw.resume();
  });
}

/** The body again, for the general handler: what was read, then the rest of the request (or the error that ended it). */
async function* readAgain(raw: NodeRequest, read: Read): AsyncGenerator<Uint8Array> {
  yield* read.received;
  if (read.error !== undefined) throw read.error.reason;
  if (read.complete) return;
  for await (const chunk of raw as AsyncIterable<Uint8Array>) yield chunk;
}

/**
 * The request message, when the body is exactly one well-formed message
 * within the limit (a gRPC or gRPC-Web body: one uncompressed envelope);
 * undefined otherwise, for the general handler to answer.
 */
function parseRequest(
  bytes: Uint8Array,
  protocol: Protocol,
  declared: number | undefined,
  serialization: ReturnType<MethodSerializationLookup<DescMessage, DescMessage>["getI"]>,
  readMaxBytes: number,
): MessageShape<DescMessage> | undefined {
  let data = bytes;
  if (protocol === CONNECT) {
    if (declared !== undefined && bytes.byteLength !== declared) return undefined;
  } else {
    if (bytes.byteLength < 5 || bytes[0] !== 0) return undefined;
    const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
    if (length > readMaxBytes || bytes.byteLength !== 5 + length) return undefined;
    data = bytes.subarray(5);
  }
  try {
    return serialization.parse(data);
  } catch {
    return undefined;
  }
}

/** `Content-Length` as connect-es reads it for a Connect unary body; undefined when it does not count. */
function lengthHint(value: string | null): number | undefined {
  if (value === null) return undefined;
  const n = parseInt(value, 10);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  const all = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.byteLength;
  }
  return all;
}

/** A response body of these chunks, for the rewrite of a Connect error. */
function chunks(...items: Uint8Array[]): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        next: () => Promise.resolve(i < items.length ? { done: false, value: items[i++]! } : { done: true, value: undefined }),
      };
    },
  };
}

async function collect(body: UniversalServerResponse["body"]): Promise<Uint8Array[]> {
  if (body === undefined) return [];
  if (body instanceof Uint8Array) return [body];
  const all: Uint8Array[] = [];
  for await (const chunk of body) all.push(chunk);
  return all;
}
