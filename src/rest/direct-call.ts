/**
 * Serves a unary REST call by invoking the method's implementation directly,
 * instead of transcoding it into a Connect call (transcoder.ts). The call
 * takes the steps a Connect unary JSON call takes, in the same order and with
 * the same errors, but without connect-es's request and response pipeline:
 *
 * 1. the deadline (`X-Server-Timeout`) is checked and armed, as the Connect
 *    handler and its error-details wrapper do with `connect-timeout-ms`;
 * 2. the request gate (overload) runs before the body is looked at;
 * 3. the body, already read and checked by the REST plugin (size, encoding,
 *    UTF-8, byte order mark, JSON), is read into the request message with
 *    protobuf-es and the strict checks of strict-json.ts;
 * 4. the implementation runs behind the same interceptors every RPC protocol
 *    runs (observation, error model, authentication and rate limit), through
 *    connect-es's own `invokeUnaryImplementation`;
 * 5. the answer is the platform's as received (the `PassThrough` slot), or the
 *    REST envelope of the error, with the call's response headers.
 */
import { fromJson, type DescMethod, type JsonReadOptions, type JsonValue, type JsonWriteOptions } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  createMethodImplSpec,
  createServiceImplSpec,
  type ConnectRouter,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
} from "@connectrpc/connect";
import {
  createAsyncIterable,
  createMethodSerializationLookup,
  getJsonOptions,
  invokeUnaryImplementation,
  mergeNonProtocolHeaders,
  readAllBytes,
} from "@connectrpc/connect/protocol";
import { parseTimeout } from "@connectrpc/connect/protocol-connect";
import { CALL_ENDED, callKey, passThroughKey, type PassThrough } from "../rpc/call-context.js";
import { checkDeadline } from "../rpc/error-details-handler.js";
import { lacksErrorInfo, toRpcError } from "../rpc/rpc-error.js";
import { strictJsonCheck } from "../rpc/strict-json.js";
import { restErrorOfConnectError } from "./rest-errors.js";
import { answerBody, directHeaders, requestJson, returnedHeaders, type RestRequest, type RestResult } from "./transcoder.js";

/** What a call needs besides its request: the pieces the Connect plugin is configured with. */
export interface DirectCalls {
  /** The implementation of each method, as registered on the router. */
  readonly implementations: ReadonlyMap<DescMethod, MethodImplSpec>;
  /** The interceptors of the RPC protocols, in the same order. */
  readonly interceptors: readonly Interceptor[];
  /** The JSON options of the RPC protocols: reading the request, and writing an answer that is not passed through. */
  readonly jsonOptions: Partial<JsonReadOptions & JsonWriteOptions>;
  readonly readMaxBytes: number;
  readonly maxTimeoutMs: number;
  /** Runs before the body is read, as connect-es's `requestGate`. */
  readonly requestGate?: ((ctx: HandlerContext) => void | Promise<void>) | undefined;
}

/** A prepared direct call of one method. */
export type DirectCall = (req: RestRequest) => Promise<RestResult>;

const TIMEOUT_HEADER = "connect-timeout-ms";

/** The direct call of `method`, or undefined when it has no implementation here (then the general path serves it). */
export function directCallOf(method: DescMethod, calls: DirectCalls): DirectCall | undefined {
  const spec = calls.implementations.get(method);
  if (spec === undefined || spec.kind !== "unary") return undefined;
  const jsonOptions = getJsonOptions(calls.jsonOptions);
  const strict = strictJsonCheck(method.input);
  const serialization = createMethodSerializationLookup(method, undefined, jsonOptions, {
    readMaxBytes: calls.readMaxBytes,
    writeMaxBytes: 0xffffffff,
  });
  const interceptors = [...calls.interceptors];
  const url = `http://gateway/${method.parent.typeName}/${method.name}`;

  return async (req) => {
    const slot: PassThrough = {};
    req.contextValues.set(passThroughKey, slot);
    const call = req.contextValues.get(callKey);
    const { json, size } = requestJson(req);
    const header = directHeaders(req);
    const timeoutHeader = header.get(TIMEOUT_HEADER);

    if (timeoutHeader !== null) {
      // Recorded on the call's observation where the status is decided here, as the error-details wrapper does.
      const tooLong = checkDeadline(new Headers([[TIMEOUT_HEADER, timeoutHeader]]), calls.maxTimeoutMs);
      if (tooLong !== undefined) {
        call?.settle(tooLong.code);
        return { ok: false, headers: [], error: restErrorOfConnectError(tooLong, undefined) };
      }
    }
    const timeout = parseTimeout(timeoutHeader, calls.maxTimeoutMs);
    const context = createHandlerContext({
      ...spec,
      service: method.parent,
      requestMethod: "POST",
      protocolName: "connect",
      timeoutMs: timeout.timeoutMs,
      requestSignal: req.signal,
      url,
      contextValues: req.contextValues,
    });
    // The headers built above, not a copy: `createHandlerContext` would copy and check every header again.
    // (No Connect content type in the response headers either: a REST answer does not return it.)
    Object.assign(context, { requestHeader: header });
    let output;
    try {
      if (calls.requestGate !== undefined) await calls.requestGate(context);
      if (timeout.error) throw timeout.error;
      if (size > calls.readMaxBytes) await readAllBytes(createAsyncIterable<Uint8Array>([]), calls.readMaxBytes, String(size));
      const input = parse(method, json, jsonOptions, strict);
      output = await invokeUnaryImplementation(spec, context, input, interceptors);
    } catch (e) {
      context.abort(e);
      let error = e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
      if (!error.isWireError) mergeNonProtocolHeaders(context.responseHeader, error.metadata);
      if (lacksErrorInfo(error)) {
        // What connect-es raised before the interceptors ran, mapped as the error-details wrapper maps it.
        error = toRpcError(error, method.input);
        call?.settle(error.code);
        error.metadata.forEach((v, k) => context.responseHeader.set(k, v));
      }
      const headers = returnedHeaders(context.responseHeader);
      return { ok: false, headers, error: restErrorOfConnectError(error, context.responseHeader.get("retry-after") ?? undefined) };
    } finally {
      context.abort(CALL_ENDED);
    }
    const headers = returnedHeaders(context.responseHeader);
    if (slot.answer !== undefined) return { ok: true, status: slot.answer.status, headers, body: answerBody(slot.answer) };
    // A method that relays nothing answers with its response message as proto JSON.
    return { ok: true, status: 200, headers, body: serialization.getO(false).serialize(output) };
  };
}

/** The request message, read as connect-es's JSON serialization reads it, with the strict checks first. */
function parse(method: DescMethod, json: JsonValue, options: Partial<JsonReadOptions>, strict: ((json: unknown) => void) | undefined) {
  try {
    strict?.(json);
    return fromJson(method.input, json, options);
  } catch (e) {
    throw ConnectError.from(e, Code.InvalidArgument);
  }
}

/**
 * A router that registers as `router` does, and also keeps each method's
 * implementation in `into`, for `directCallOf`.
 */
export function recordImplementations(router: ConnectRouter, into: Map<DescMethod, MethodImplSpec>): ConnectRouter {
  const recording: ConnectRouter = {
    handlers: router.handlers,
    service(service, implementation, options) {
      const spec = createServiceImplSpec(service, implementation);
      for (const method of service.methods) into.set(method, spec.methods[method.localName]!);
      router.service(service, implementation, options);
      return recording;
    },
    rpc(method, impl, options) {
      into.set(method, createMethodImplSpec(method, impl) as MethodImplSpec);
      router.rpc(method, impl, options);
      return recording;
    },
  };
  return recording;
}
