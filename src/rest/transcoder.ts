/**
 * Turns a REST request into a Connect JSON call on the method's own handler,
 * and the handler's answer back into a REST response: server streams always,
 * unary calls when the REST plugin has no direct call of the method
 * (direct-call.ts, which shares the request and answer helpers here).
 * Because the call goes through the same handler as every RPC protocol, REST
 * gets the same interceptors (authentication, error model), validation and
 * business logic.
 *
 * What REST adds on top: a successful call answers with the platform's
 * answer as the platform sent it (its status, 201 included, and every field,
 * documented or not), read from the `PassThrough` slot the service fills; an
 * error answers with the REST envelope rebuilt from the RPC error's ErrorInfo.
 */
import type { IncomingHttpHeaders } from "node:http";
import { ScalarType, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import type { ContextValues } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import { encodeEnvelope, pipe, transformSplitEnvelope, type EnvelopedMessage, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { endStreamFlag, endStreamFromJson } from "@connectrpc/connect/protocol-connect";
import { GatewayError } from "../errors.js";
import { isUtf8 } from "node:buffer";
import type { PlatformAnswer } from "../platform/webhook-client.js";
import { passThroughKey, type PassThrough } from "../rpc/call-context.js";
import type { RestRoute } from "./rest-routes.js";
import { restErrorOf, restErrorOfConnect, restErrorOfConnectError, type RestError } from "./rest-errors.js";

/** A REST request as the transcoder needs it; the framework has read and checked the body. */
export interface RestRequest {
  readonly route: RestRoute;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string | string[] | undefined>>;
  /** The body as received, when there was one; it is valid JSON. */
  readonly rawBody: Buffer | undefined;
  readonly body: JsonValue | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersion: string;
  readonly requestId: string;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
  readonly contextValues: ContextValues;
}

export type RestResult =
  | { readonly ok: true; readonly status: number; readonly headers: ReturnedHeaders; readonly body: string | Uint8Array }
  | { readonly ok: false; readonly headers: ReturnedHeaders; readonly error: RestError };

/** The response headers a REST answer carries, as name and value pairs (names in lower case). */
export type ReturnedHeaders = readonly (readonly [name: string, value: string])[];

/** One item of a server stream, as REST sends it: a message (proto JSON), the end, or the error that ended it. */
export type StreamItem =
  | { readonly kind: "message"; readonly json: string }
  | { readonly kind: "end" }
  | { readonly kind: "error"; readonly error: RestError };

export type RestStreamResult =
  | { readonly ok: true; readonly headers: ReturnedHeaders; readonly items: AsyncIterable<StreamItem> }
  | { readonly ok: false; readonly headers: ReturnedHeaders; readonly error: RestError };

/** Request headers that belong to one hop or to the protocol, and are not forwarded to the handler. */
const NOT_FORWARDED = new Set([
  "host",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "te",
  "upgrade",
  "content-type",
  "content-length",
  "content-encoding",
  "accept-encoding",
  "x-server-timeout",
  // Set to the call's own request id.
  "x-request-id",
]);

/** Response headers of the Connect protocol, which REST answers do not carry. */
const NOT_RETURNED = new Set(["content-type", "content-length", "content-encoding", "accept-encoding", "vary"]);

const TIMEOUT_HEADER = "x-server-timeout";

export async function transcode(req: RestRequest): Promise<RestResult> {
  const { route } = req;
  const slot: PassThrough = {};
  req.contextValues.set(passThroughKey, slot);
  const payload = requestBytes(req);
  const header = forwardedHeaders(req, "application/json", payload.byteLength);
  const res = await route.handler({
    httpVersion: req.httpVersion,
    method: "POST",
    url: `http://gateway${route.handler.requestPath}`,
    header,
    body: once(payload),
    signal: req.signal,
    contextValues: req.contextValues,
  });
  const bytes = await readAll(res);
  const headers = returnedHeaders(res.header);
  if (res.status !== 200) return { ok: false, headers, error: restErrorOfConnect(bytes, res.header) };
  if (slot.answer !== undefined) return { ok: true, status: slot.answer.status, headers, body: answerBody(slot.answer) };
  // A method that relays nothing answers with its response message as proto JSON.
  return { ok: true, status: 200, headers, body: bytes };
}

/**
 * Calls a server-streaming method as a Connect streaming JSON call. An error
 * before the first message is an ordinary REST error (the status is not sent
 * yet); after it, the error is the last item of the stream.
 */
export async function transcodeServerStream(req: RestRequest): Promise<RestStreamResult> {
  const { route } = req;
  const payload = encodeEnvelope(0, requestBytes(req));
  const res = await route.handler({
    httpVersion: req.httpVersion,
    method: "POST",
    url: `http://gateway${route.handler.requestPath}`,
    header: forwardedHeaders(req, "application/connect+json", payload.byteLength),
    body: once(payload),
    signal: req.signal,
    contextValues: req.contextValues,
  });
  const headers = returnedHeaders(res.header);
  if (res.status !== 200 || res.body === undefined) return { ok: false, headers, error: restErrorOfConnect(await readAll(res), res.header) };
  const envelopes = pipe(res.body, transformSplitEnvelope(0xffffffff))[Symbol.asyncIterator]();
  const first = await envelopes.next();
  const firstItem = first.done ? CUT_OFF : itemOf(first.value);
  if (firstItem.kind === "error") return { ok: false, headers, error: firstItem.error };
  async function* items(): AsyncGenerator<StreamItem> {
    try {
      yield firstItem;
      if (firstItem.kind === "end") return;
      for (let next = await envelopes.next(); !next.done; next = await envelopes.next()) {
        const item = itemOf(next.value);
        yield item;
        if (item.kind !== "message") return;
      }
      // A Connect stream always ends with an end-stream message; without one, it was cut off.
      yield CUT_OFF;
    } finally {
      await envelopes.return?.();
    }
  }
  return { ok: true, headers, items: items() };
}

const CUT_OFF: StreamItem = { kind: "error", error: restErrorOf(GatewayError.of("internal_error", "the stream ended unexpectedly")) };

function itemOf(envelope: EnvelopedMessage): StreamItem {
  if ((envelope.flags & endStreamFlag) !== endStreamFlag) return { kind: "message", json: new TextDecoder().decode(envelope.data) };
  let end;
  try {
    end = endStreamFromJson(envelope.data);
  } catch (e) {
    return { kind: "error", error: restErrorOfConnectError(ConnectError.from(e), undefined) };
  }
  if (end.error === undefined) return { kind: "end" };
  return { kind: "error", error: restErrorOfConnectError(end.error, end.metadata.get("retry-after") ?? undefined) };
}

/** The body of a successful REST answer: the bytes the platform sent, when they are there and valid UTF-8 (a large answer is not serialized again). */
export function answerBody(answer: PlatformAnswer): string | Uint8Array {
  const raw = answer.raw;
  return raw !== undefined && isUtf8(raw) ? raw : JSON.stringify(answer.body);
}

/**
 * The Connect JSON request body. A `body: "*"` binding without path variables
 * or query parameters forwards the client's bytes unchanged; otherwise the
 * request is assembled from the body, the path and the query.
 */
function requestBytes(req: RestRequest): Uint8Array {
  if (isWholeBody(req)) return req.rawBody!;
  return Buffer.from(JSON.stringify(assembled(req)));
}

/**
 * The request as JSON, and the size of its JSON text (what the size limit
 * applies to): the client's body as parsed, or the request assembled as
 * `requestBytes` assembles it.
 */
export function requestJson(req: RestRequest): { readonly json: JsonValue; readonly size: number } {
  if (isWholeBody(req)) return { json: req.body!, size: req.rawBody!.byteLength };
  // Read back from its text, as the Connect call reads the bytes `requestBytes` makes.
  const text = JSON.stringify(assembled(req));
  return { json: JSON.parse(text) as JsonValue, size: Buffer.byteLength(text) };
}

function isWholeBody(req: RestRequest): boolean {
  return req.route.body === "*" && req.route.variables.length === 0 && req.rawBody !== undefined && req.body !== undefined;
}

function assembled(req: RestRequest): JsonObject {
  const { route } = req;
  const hasQuery = route.body !== "*" && Object.keys(req.query).length > 0;
  let message: JsonObject = {};
  if (route.body === "*") {
    if (req.body !== undefined) message = req.body as JsonObject;
  } else if (route.body !== undefined && req.body !== undefined) {
    message[route.body] = req.body;
  }
  for (const v of route.variables) {
    setField(route.method.input, message, v.fieldPath, req.params[v.param] ?? "");
  }
  if (hasQuery) {
    for (const [name, value] of Object.entries(req.query)) {
      if (value === undefined || name === route.body) continue;
      setField(route.method.input, message, name.split("."), value);
    }
  }
  return message;
}

/**
 * Sets a field named by a path of proto field names (or their JSON names) to a
 * value from the URL. Strings are what proto JSON accepts for every scalar
 * but `bool`, which is converted; names that match no field are ignored, as
 * unknown JSON fields are.
 */
function setField(desc: DescMessage, message: JsonObject, path: readonly string[], value: string | string[]): void {
  let target = message;
  let type: DescMessage = desc;
  for (let i = 0; i < path.length; i++) {
    const field = type.fields.find((f) => f.name === path[i] || f.jsonName === path[i]);
    if (field === undefined) return;
    if (i < path.length - 1) {
      if (field.fieldKind !== "message") return;
      const next = target[field.name];
      const child: JsonObject = typeof next === "object" && next !== null && !Array.isArray(next) ? (next as JsonObject) : {};
      target[field.name] = child;
      target = child;
      type = field.message;
      continue;
    }
    const isBool = (field.fieldKind === "scalar" || field.fieldKind === "list") && field.scalar === ScalarType.BOOL;
    const convert = (s: string): JsonValue => (isBool && (s === "true" || s === "false") ? s === "true" : s);
    if (field.fieldKind === "list") target[field.name] = (Array.isArray(value) ? value : [value]).map(convert);
    else target[field.name] = convert(Array.isArray(value) ? value[value.length - 1]! : value);
  }
}

function forwardedHeaders(req: RestRequest, contentType: string, length: number): Headers {
  return new Headers(forwardedHeaderList(req, contentType, length));
}

/**
 * The request headers the handler sees, as a list: the client's, less those
 * of one hop or of the protocol, and the call's content type, length,
 * request id and deadline (`X-Server-Timeout`, which is checked here).
 */
function forwardedHeaderList(req: RestRequest, contentType: string, length: number): [string, string][] {
  const list = clientHeaderList(req);
  list.push(["content-type", contentType], ["content-length", String(length)], ["connect-protocol-version", "1"], ["x-request-id", req.requestId]);
  const timeout = req.headers[TIMEOUT_HEADER];
  if (typeof timeout === "string") list.push(["connect-timeout-ms", String(timeoutMs(timeout))]);
  return list;
}

/**
 * The request headers an implementation called directly sees (direct-call.ts):
 * the client's, as `forwardedHeaderList` forwards them, with the call's request
 * id and deadline, but not the Connect protocol's content type, length and
 * version, which only connect-es's handler reads.
 */
export function directHeaders(req: RestRequest): Headers {
  // Built with `set`, which checks a header as `append` and a list do but costs undici less than half as
  // much; every name is new here except the repeats of a header Node gives as a list (`set-cookie`).
  const header = new Headers();
  for (const name in req.headers) {
    const value = req.headers[name];
    if (value === undefined || name.startsWith(":") || NOT_FORWARDED.has(name)) continue;
    if (name.startsWith("connect-") || name.startsWith("grpc-")) continue;
    if (typeof value === "string") header.set(name, value);
    else for (let i = 0; i < value.length; i++) i === 0 ? header.set(name, value[i]!) : header.append(name, value[i]!);
  }
  header.set("x-request-id", req.requestId);
  const timeout = req.headers[TIMEOUT_HEADER];
  if (typeof timeout === "string") header.set("connect-timeout-ms", String(timeoutMs(timeout)));
  return header;
}

function clientHeaderList(req: RestRequest): [string, string][] {
  const list: [string, string][] = [];
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.startsWith(":") || NOT_FORWARDED.has(name)) continue;
    if (name.startsWith("connect-") || name.startsWith("grpc-")) continue;
    if (typeof value === "string") list.push([name, value]);
    else for (const v of value) list.push([name, v]);
  }
  return list;
}

/** `X-Server-Timeout`, in seconds as Vanguard and grpc-gateway clients send it, as Connect milliseconds. */
function timeoutMs(value: string): number {
  const seconds = /^\s*\d{1,9}(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
  if (!(seconds > 0)) throw GatewayError.of("invalid_request", "X-Server-Timeout must be a positive number of seconds");
  return Math.max(1, Math.ceil(seconds * 1000));
}

/** The call's response headers a REST answer carries: not those of the Connect protocol or of the body's encoding. */
export function returnedHeaders(header: Headers | undefined): ReturnedHeaders {
  const out: [string, string][] = [];
  header?.forEach((value, name) => {
    if (NOT_RETURNED.has(name) || name.startsWith("connect-") || name.startsWith("trailer-")) return;
    out.push([name, value]);
  });
  return out;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

async function readAll(res: UniversalServerResponse): Promise<Uint8Array> {
  if (res.body === undefined) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  for await (const chunk of res.body) parts.push(chunk);
  return Buffer.concat(parts);
}
