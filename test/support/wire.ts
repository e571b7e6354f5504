/**
 * Raw HTTP for conformance tests: requests built byte by byte with node:http
 * and node:http2 (no RPC library in between), and the outcome of an answer
 * read from each protocol's own framing: the Connect error body, gRPC
 * trailers, the gRPC-Web trailer frame.
 */
import http from "node:http";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";

export type Framing = "connect" | "grpc" | "grpc-web";

export interface WireProtocol {
  readonly name: string;
  readonly framing: Framing;
  readonly codec: "json" | "proto";
  readonly httpVersion: 1 | 2;
  readonly contentType: string;
}

/** Every protocol, codec and HTTP version the gateway serves unary calls on. */
export const WIRE_PROTOCOLS: readonly WireProtocol[] = [
  { name: "connect json h1", framing: "connect", codec: "json", httpVersion: 1, contentType: "application/json" },
  { name: "connect json h2", framing: "connect", codec: "json", httpVersion: 2, contentType: "application/json" },
  { name: "connect proto h1", framing: "connect", codec: "proto", httpVersion: 1, contentType: "application/proto" },
  { name: "connect proto h2", framing: "connect", codec: "proto", httpVersion: 2, contentType: "application/proto" },
  { name: "grpc proto", framing: "grpc", codec: "proto", httpVersion: 2, contentType: "application/grpc" },
  { name: "grpc json", framing: "grpc", codec: "json", httpVersion: 2, contentType: "application/grpc+json" },
  { name: "grpc-web proto h1", framing: "grpc-web", codec: "proto", httpVersion: 1, contentType: "application/grpc-web+proto" },
  { name: "grpc-web proto h2", framing: "grpc-web", codec: "proto", httpVersion: 2, contentType: "application/grpc-web+proto" },
  { name: "grpc-web json h1", framing: "grpc-web", codec: "json", httpVersion: 1, contentType: "application/grpc-web+json" },
];

export interface RawRequest {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly trailers: Record<string, string>;
  readonly body: Buffer;
}

function flatten(h: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined && !k.startsWith(":")) out[k] = Array.isArray(v) ? v.join(", ") : String(v);
  }
  return out;
}

/** One HTTP/1.1 request on a fresh connection. */
export function h1(baseUrl: string, req: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      new URL(req.path, baseUrl),
      { method: req.method ?? "POST", headers: req.headers ?? {}, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: flatten(res.headers), trailers: flatten(res.trailers), body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    r.on("timeout", () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.on("error", reject);
    r.end(req.body);
  });
}

/** HTTP/2 requests over one cleartext (prior knowledge) session per base URL. */
export class H2 {
  private session: http2.ClientHttp2Session | undefined;

  constructor(
    private readonly baseUrl: string,
    private readonly options: http2.SecureClientSessionOptions = {},
  ) {}

  private connect(): http2.ClientHttp2Session {
    if (this.session === undefined || this.session.closed || this.session.destroyed) {
      this.session = http2.connect(this.baseUrl, this.options);
      this.session.on("error", () => {});
    }
    return this.session;
  }

  request(req: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const stream = this.connect().request({ ":method": req.method ?? "POST", ":path": req.path, ...req.headers });
      let status = 0;
      let headers: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        headers = flatten(h);
      });
      stream.on("trailers", (t) => {
        trailers = flatten(t);
      });
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("close", () => {
        clearTimeout(timer);
        if (status === 0) reject(new Error(`stream closed without an answer (rst code ${stream.rstCode})`));
        else resolve({ status, headers, trailers, body: Buffer.concat(chunks) });
      });
      stream.on("error", () => {});
      stream.end(req.body);
    });
  }

  close(): void {
    this.session?.close();
  }
}

/** A gRPC / gRPC-Web length-prefixed message. */
export function envelope(payload: Uint8Array, flags = 0, announcedLength = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(announcedLength, 1);
  return Buffer.concat([head, payload]);
}

/** The request body for a message already encoded in the protocol's codec. */
export function frame(p: WireProtocol, payload: Uint8Array, options: { gzip?: boolean } = {}): Buffer {
  const data = options.gzip ? gzipSync(payload) : Buffer.from(payload);
  return p.framing === "connect" ? data : envelope(data, options.gzip ? 1 : 0);
}

/** Request headers for a protocol; `gzip` announces a compressed body. */
export function headersFor(p: WireProtocol, extra: Record<string, string> = {}, options: { gzip?: boolean } = {}): Record<string, string> {
  const h: Record<string, string> = { "content-type": p.contentType, ...extra };
  if (p.framing === "connect") h["connect-protocol-version"] = "1";
  if (p.framing === "grpc") h.te = "trailers";
  if (options.gzip) h[p.framing === "connect" ? "content-encoding" : "grpc-encoding"] = "gzip";
  return h;
}

export function send(p: WireProtocol, baseUrl: string, h2: H2, req: RawRequest, timeoutMs?: number): Promise<RawResponse> {
  return p.httpVersion === 1 ? h1(baseUrl, req, timeoutMs) : h2.request(req, timeoutMs);
}

/** What a client learns from an answer, whatever the protocol. */
export interface Outcome {
  readonly httpStatus: number;
  /** "ok", or the Connect code name in snake_case. */
  readonly code: string;
  readonly reason: string | undefined;
  readonly message: string | undefined;
}

const snake = (c: Code) => Code[c]!.replace(/[A-Z]/g, (m, i) => (i === 0 ? m.toLowerCase() : `_${m.toLowerCase()}`));

/** Splits a gRPC-Web body into its messages and its trailer frame. */
export function grpcWebTrailer(body: Buffer): Headers | undefined {
  let offset = 0;
  while (offset + 5 <= body.length) {
    const flags = body[offset]!;
    const length = body.readUInt32BE(offset + 1);
    const data = body.subarray(offset + 5, offset + 5 + length);
    offset += 5 + length;
    if ((flags & 0x80) === 0x80) {
      const trailer = new Headers();
      for (const line of data.toString("latin1").split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) trailer.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
      }
      return trailer;
    }
  }
  return undefined;
}

export function outcomeOf(framing: Framing, res: RawResponse): Outcome {
  if (framing === "connect") {
    if (res.status === 200) return { httpStatus: 200, code: "ok", reason: undefined, message: undefined };
    let error: { code?: string; message?: string; details?: { type: string; value: string }[] } = {};
    try {
      error = JSON.parse(res.body.toString("utf8"));
    } catch {
      // An answer without an error body: the HTTP status is all there is.
    }
    const info = error.details?.find((d) => d.type === "google.rpc.ErrorInfo");
    const reason = info && fromBinary(ErrorInfoSchema, Buffer.from(info.value, "base64")).reason;
    return { httpStatus: res.status, code: error.code ?? `http_${res.status}`, reason, message: error.message };
  }
  const source =
    framing === "grpc" || res.headers["grpc-status"] !== undefined
      ? new Headers({ ...res.headers, ...res.trailers })
      : grpcWebTrailer(res.body);
  if (source === undefined || !source.has("grpc-status")) {
    return { httpStatus: res.status, code: `http_${res.status}`, reason: undefined, message: undefined };
  }
  const error = findTrailerError(source);
  if (error === undefined) return { httpStatus: res.status, code: "ok", reason: undefined, message: undefined };
  return { httpStatus: res.status, code: snake(error.code), reason: error.findDetails(ErrorInfoSchema)[0]?.reason, message: error.rawMessage };
}
