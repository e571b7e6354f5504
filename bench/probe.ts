/**
 * Single requests, made with Node's own clients before a workload runs: they
 * tell whether the endpoint exists on this build (a 404 or `unimplemented`
 * means the workload is reported as not available) and whether a target
 * answers correctly, which the load tools cannot fully see.
 */
import http from "node:http";
import http2 from "node:http2";

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly trailers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

const TIMEOUT_MS = 10_000;

export function postH1(url: string, headers: Record<string, string>, body: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer from ${url} within ${TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

export function getJson<T>(url: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as T);
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer from ${url}`)));
    req.on("error", reject);
  });
}

function withSession<T>(origin: string, use: (session: http2.ClientHttp2Session, settle: (v: T | Error) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin);
    const timer = setTimeout(() => settle(new Error(`no answer from ${origin} within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    let settled = false;
    function settle(v: T | Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.close();
      if (v instanceof Error) reject(v);
      else resolve(v);
    }
    session.on("error", (e: Error) => settle(e));
    use(session, settle);
  });
}

export function postH2(origin: string, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<Answer> {
  return withSession<Answer>(origin, (session, settle) => {
    const stream = session.request({ ":method": "POST", ...headers });
    let status = 0;
    let responseHeaders: Answer["headers"] = {};
    let trailers: Answer["trailers"] = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = h as Answer["headers"];
    });
    stream.on("trailers", (t) => (trailers = t as Answer["trailers"]));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (e: Error) => settle(e));
    stream.on("close", () => settle({ status, headers: responseHeaders, trailers, body: Buffer.concat(chunks) }));
    stream.end(body);
  });
}

export interface SessionAnswer {
  readonly status: number;
  readonly grpcStatus: string | undefined;
  readonly grpcMessage: string | undefined;
  /** The kind of each answer received, in order. */
  readonly answers: string[];
}

/** Opens a session stream, sends `messages` one after another as answers arrive, half-closes, and reports. */
export function session(
  origin: string,
  headers: http2.OutgoingHttpHeaders,
  messages: Buffer[],
  classify: (message: Buffer) => string,
): Promise<SessionAnswer> {
  return withSession<SessionAnswer>(origin, (s, settle) => {
    const stream = s.request({ ":method": "POST", ...headers });
    const answers: string[] = [];
    let status = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    let pending = Buffer.alloc(0);
    let next = 0;
    const sendNext = () => {
      if (next < messages.length) stream.write(messages[next++]);
      else stream.end();
    };
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      grpcStatus = h["grpc-status"] as string | undefined;
      grpcMessage = h["grpc-message"] as string | undefined;
    });
    stream.on("trailers", (t) => {
      grpcStatus = (t["grpc-status"] as string | undefined) ?? grpcStatus;
      grpcMessage = (t["grpc-message"] as string | undefined) ?? grpcMessage;
    });
    stream.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const size = pending.readUInt32BE(1);
        answers.push(classify(pending.subarray(5, 5 + size)));
        pending = pending.subarray(5 + size);
        sendNext();
      }
    });
    stream.on("error", (e: Error) => settle(e));
    stream.on("close", () => settle({ status, grpcStatus, grpcMessage, answers }));
    sendNext();
  });
}

/** The gRPC status of an answer: from the trailers, the headers (trailers-only) or a gRPC-Web trailer frame. */
export function grpcStatusOf(answer: Answer): string | undefined {
  const direct = answer.trailers["grpc-status"] ?? answer.headers["grpc-status"];
  if (typeof direct === "string") return direct;
  let body = answer.body;
  while (body.length >= 5) {
    const size = body.readUInt32BE(1);
    if ((body[0]! & 0x80) !== 0) {
      return /grpc-status:\s*(\d+)/i.exec(body.subarray(5, 5 + size).toString("latin1"))?.[1];
    }
    body = body.subarray(5 + size);
  }
  return undefined;
}

/** The messages of an enveloped body (gRPC, gRPC-Web), trailer frames left out. */
export function messagesOf(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  while (body.length >= 5) {
    const size = body.readUInt32BE(1);
    if ((body[0]! & 0x80) === 0) out.push(body.subarray(5, 5 + size));
    body = body.subarray(5 + size);
  }
  return out;
}
