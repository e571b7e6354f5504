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
 * The answer is what the general handler sends, byte for byte: the same
 * status, headers, trailers and body chunks, written by the same adapter.
 * `UNARY_FAST_PATH=off` turns the path off; the protocol test suite runs
 * against both (vitest's `general-path` project).
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type MethodImplSpec,
} from "@connectrpc/connect";
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
import { rewriteConnectUnary, rewriteEnvelope, rewriteGrpcTrailer, rewriteGrpcWebTrailer, settlerOf, type Settle } from "./error-details-handler.js";
import { CALL_ENDED } from "./call-context.js";

/** The options given to the Connect plugin that bear on serving a call. */
export type FastPathOptions = Partial<UniversalHandlerOptions>;

type RouterOptions = Parameters<ConnectRouter["rpc"]>[2];

interface Method {
  readonly spec: MethodImplSpec & { kind: "unary" };
  readonly options: UniversalHandlerOptions;
  readonly serialization: MethodSerializationLookup<DescMessage, DescMessage>;
}

let taken = 0;

/** How many calls this process answered on the fast path; for tests and diagnostics. */
export function unaryFastPathCalls(): number {
  return taken;
}

/**
 * The fast path of one Connect plugin: `record` sees the implementations as
 * they are registered, `serve` puts the path in front of each handler of the
 * plugin (when `enabled`; otherwise it returns the handler as it is).
 */
export class UnaryFastPath {
  private readonly methods = new Map<string, Method>();

  constructor(
    private readonly options: FastPathOptions,
    private readonly enabled: boolean,
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

  /** `general` with the fast path in front of it, for the unary methods recorded. */
  serve(general: UniversalHandler): UniversalHandler {
    const method = this.methods.get(general.requestPath);
    if (!this.enabled || method === undefined || method.spec.method !== general.method) return general;
    const lean = (req: UniversalServerRequest) => serveUnary(req, method, general);
    return Object.assign(lean, general) as UniversalHandler;
  }

  private keep(spec: MethodImplSpec, methodOptions: RouterOptions): void {
    if (spec.kind !== "unary") return;
    // As connect-es's router merges them: the method's options over the plugin's.
    const options = validateUniversalHandlerOptions({ ...validateUniversalHandlerOptions(this.options), ...methodOptions });
    const serialization = createMethodSerializationLookup(spec.method, options.binaryOptions, options.jsonOptions, options);
    this.methods.set(`/${spec.method.parent.typeName}/${spec.method.name}`, { spec, options, serialization });
  }
}

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

async function serveUnary(req: UniversalServerRequest, method: Method, general: UniversalHandler): Promise<UniversalServerResponse> {
  if (req.method !== "POST") return general(req);
  const wire = protocolOf(req.header.get(grpc.headerContentType));
  if (wire === undefined) return general(req);
  const { protocol, binary } = wire;
  const { options, spec, serialization } = method;
  if (req.header.has(protocol.foreignTimeoutHeader)) return general(req);
  const timeout = protocol.parseTimeout(req.header.get(protocol.timeoutHeader), options.maxTimeoutMs);
  if (timeout.error !== undefined) return general(req);
  const compression = compressionNegotiate(
    options.acceptCompression,
    req.header.get(protocol.encodingHeader),
    req.header.get(protocol.acceptEncodingHeader),
    protocol.acceptEncodingHeader,
  );
  if (compression.error !== undefined || compression.request !== null) return general(req);
  const body = req.body;
  if (typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) return general(req);
  // How many bytes a well-formed request has at most, and, for Connect, exactly when it says so.
  let limit = options.readMaxBytes + 5;
  let declared: number | undefined;
  if (protocol === CONNECT) {
    declared = lengthHint(req.header.get(connect.headerUnaryContentLength));
    if (declared !== undefined && declared > options.readMaxBytes) return general(req);
    limit = declared ?? options.readMaxBytes;
  }

  const context = createHandlerContext({
    ...spec,
    service: spec.method.parent,
    requestMethod: req.method,
    protocolName: protocol.name,
    timeoutMs: timeout.timeoutMs,
    shutdownSignal: options.shutdownSignal,
    requestSignal: req.signal,
    url: req.url,
    contextValues: req.contextValues,
  });
  // The request's own headers, which connect-node made from the socket's a moment ago, not a copy of them
  // (`createHandlerContext` copies and validates every header again; nothing writes to a request's headers).
  Object.assign(context, { requestHeader: req.header });
  // Set one by one: undici reads a record of headers through WebIDL's conversions first, which costs more.
  context.responseHeader.set(grpc.headerContentType, protocol.contentType(binary));
  if (protocol.trailer !== undefined) context.responseTrailer.set(grpc.headerGrpcStatus, protocol.trailer);
  if (protocol !== CONNECT && compression.response !== null) context.responseHeader.set(protocol.encodingHeader, compression.response.name);
  const answer: Answer = { protocol, context, compression: compression.response, options, input: spec.method.input, settle: settlerOf(req) };

  // As the general handler: the gate runs before the body is read.
  if (options.requestGate !== undefined) {
    try {
      await options.requestGate(context);
    } catch (e) {
      return answerError(answer, e);
    }
  }

  const read = await readBody(body as AsyncIterable<Uint8Array>, limit);
  const message = read.complete ? parseRequest(read.bytes, protocol, declared, serialization.getI(binary), options.readMaxBytes) : undefined;
  if (message === undefined) {
    context.abort(CALL_ENDED);
    return general({ ...req, body: readAgain(read) });
  }

  taken++;
  let data: Uint8Array;
  try {
    const output = await invokeUnaryImplementation(spec, context, message, options.interceptors);
    data = serialization.getO(binary).serialize(output);
  } catch (e) {
    return answerError(answer, e);
  }
  return answerMessage(answer, data);
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

async function answerMessage(answer: Answer, data: Uint8Array): Promise<UniversalServerResponse> {
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
      return { status: 200, header: context.responseHeader, trailer: context.responseTrailer, body: chunks(chunk) };
    }
    const trailer = await grpcWebTrailer(answer);
    context.abort(CALL_ENDED);
    return { status: 200, header: context.responseHeader, body: chunks(chunk, trailer) };
  } catch (e) {
    return answerError(answer, e);
  }
}

/** The answer to a call that failed, as the general handler sends it (see the rewrites in error-details-handler.ts). */
async function answerError(answer: Answer, e: unknown): Promise<UniversalServerResponse> {
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
    return rewriteConnectUnary(connectResponse(connect.codeToHttpStatus(error.code), context, body), answer.input, answer.settle);
  }
  grpc.setTrailerStatus(context.responseTrailer, error);
  if (protocol === GRPC) {
    rewriteGrpcTrailer(context.responseTrailer, answer.input, answer.settle);
    return { status: 200, header: context.responseHeader, trailer: context.responseTrailer, body: chunks() };
  }
  return { status: 200, header: context.responseHeader, body: chunks(await grpcWebTrailer(answer)) };
}

/** A Connect unary answer: trailers as `trailer-` headers, and the length of the body. */
function connectResponse(status: number, context: Answer["context"], body: Uint8Array): UniversalServerResponse {
  const header = connect.trailerMux(context.responseHeader, context.responseTrailer);
  header.set(connect.headerUnaryContentLength, body.byteLength.toString(10));
  return { status, header, body: chunks(body) };
}

/** The trailer frame of a gRPC-Web answer, compressed as the general handler would, then rewritten as error-details-handler.ts does. */
async function grpcWebTrailer(answer: Answer): Promise<Uint8Array> {
  const data = grpcWeb.trailerSerialize(answer.context.responseTrailer);
  const envelope = await envelopeCompress({ flags: grpcWeb.trailerFlag, data }, answer.compression, answer.options.compressMinBytes);
  const chunk = encodeEnvelope(envelope.flags, envelope.data);
  return rewriteEnvelope(chunk, grpcWeb.trailerFlag, (trailer) => rewriteGrpcWebTrailer(trailer, answer.input, answer.settle));
}

/** A request body as read: complete, or cut short at the limit (or by an error) with the rest still to read. */
interface Read {
  readonly bytes: Uint8Array;
  readonly received: readonly Uint8Array[];
  readonly complete: boolean;
  readonly error?: { readonly reason: unknown };
  readonly rest: AsyncIterator<Uint8Array>;
}

async function readBody(body: AsyncIterable<Uint8Array>, limit: number): Promise<Read> {
  const rest = body[Symbol.asyncIterator]();
  const received: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await rest.next();
    } catch (reason) {
      return { bytes: new Uint8Array(0), received, complete: false, error: { reason }, rest };
    }
    if (next.done === true) break;
    received.push(next.value);
    length += next.value.byteLength;
    if (length > limit) return { bytes: new Uint8Array(0), received, complete: false, rest };
  }
  const bytes = received.length === 1 ? received[0]! : concat(received, length);
  return { bytes, received, complete: true, rest };
}

/** The body again, for the general handler: what was read, then the rest of the stream (or the error that ended it). */
async function* readAgain(read: Read): AsyncGenerator<Uint8Array> {
  try {
    yield* read.received;
    if (read.error !== undefined) throw read.error.reason;
    if (read.complete) return;
    for (;;) {
      const next = await read.rest.next();
      if (next.done === true) return;
      yield next.value;
    }
  } finally {
    // As when the general handler stops reading the request early itself.
    await read.rest.return?.();
  }
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

/** A response body of these chunks, written one by one as the general handler's are. */
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
