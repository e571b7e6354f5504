/**
 * A closed-loop HTTP/2 load generator on `node:http2`, for the loads h2load
 * cannot make: a request body that changes with every call (bookings with
 * fresh idempotency keys) and operations over open bidirectional streams
 * (bot sessions).
 *
 * `connections` HTTP/2 sessions each carry `streamsPerConnection` lanes; every
 * lane keeps exactly one call in flight and starts the next as soon as the
 * previous one answers, until the duration is over. All lanes run at once,
 * so the concurrency is connections × streams, as with h2load's `-c` and `-m`.
 *
 * A gRPC call succeeds when its HTTP status is 200 and its `grpc-status` is 0;
 * other calls succeed on a 2xx.
 */
import http2 from "node:http2";
import type { LoadResult } from "./load-result.js";

export interface H2Call {
  readonly headers: http2.OutgoingHttpHeaders;
  readonly body: Buffer;
}

interface Common {
  readonly url: string;
  readonly connections: number;
  readonly streamsPerConnection: number;
  readonly durationS: number;
}

export interface H2UnaryLoad extends Common {
  /** The next call (`:path` and headers included); called once per request. */
  readonly call: () => H2Call;
}

export interface H2SessionLoad extends Common {
  /** Headers that open a session stream (`:path` included). */
  readonly headers: http2.OutgoingHttpHeaders;
  /** The enveloped first message of a session. */
  readonly start: Buffer;
  /** The enveloped n-th operation of a session. */
  readonly op: (n: number) => Buffer;
  /**
   * Which answer an enveloped response message is: "started", "ok" for a
   * successful operation, or anything else for a failed one.
   */
  readonly classify: (message: Buffer) => string;
}

class Tally {
  ok = 0;
  failed = 0;
  firstFailure: string | undefined;
  readonly latencies: number[] = [];

  success(started: bigint): void {
    this.ok++;
    this.latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
  }

  failure(what: string): void {
    this.failed++;
    this.firstFailure ??= what;
  }
}

async function connect(url: string, n: number): Promise<http2.ClientHttp2Session[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const session = http2.connect(url);
          session.once("connect", () => resolve(session));
          session.once("error", reject);
        }),
    ),
  );
}

async function drive(load: Common, lane: (session: http2.ClientHttp2Session, deadline: number, done: () => void) => void, tally: Tally): Promise<LoadResult> {
  const sessions = await connect(load.url, load.connections);
  for (const s of sessions) s.on("error", (e: Error) => tally.failure(e.message));
  const started = process.hrtime.bigint();
  const deadline = Date.now() + load.durationS * 1000;
  // A call that never answers must not hold the benchmark: past a grace
  // period every session is torn down, which closes its streams.
  const stuck = setTimeout(() => {
    tally.failure("calls still unanswered 10 s after the run");
    for (const s of sessions) s.destroy();
  }, load.durationS * 1000 + 10_000);
  await Promise.all(sessions.flatMap((session) => Array.from({ length: load.streamsPerConnection }, () => new Promise<void>((done) => lane(session, deadline, done)))));
  const durationS = Number(process.hrtime.bigint() - started) / 1e9;
  clearTimeout(stuck);
  for (const s of sessions) s.close();
  return { ok: tally.ok, failed: tally.failed, durationS, latenciesMs: tally.latencies, firstFailure: tally.firstFailure };
}

function grpcOutcome(status: number, contentType: string | undefined, grpcStatus: string | undefined, grpcMessage: string | undefined): string | undefined {
  if (status !== 200 && !(status >= 200 && status < 300 && !contentType?.startsWith("application/grpc"))) return `HTTP ${status}`;
  if (contentType?.startsWith("application/grpc") && !contentType.startsWith("application/grpc-web") && grpcStatus !== "0") {
    return `grpc-status ${grpcStatus ?? "missing"}${grpcMessage ? `: ${decodeURIComponent(grpcMessage)}` : ""}`;
  }
  return undefined;
}

/** Unary calls, one in flight per lane. */
export function runH2Unary(load: H2UnaryLoad): Promise<LoadResult> {
  const tally = new Tally();
  const lane = (session: http2.ClientHttp2Session, deadline: number, done: () => void) => {
    const next = () => {
      if (Date.now() >= deadline || session.destroyed) return done();
      const call = load.call();
      const started = process.hrtime.bigint();
      let status = 0;
      let contentType: string | undefined;
      let grpcStatus: string | undefined;
      let grpcMessage: string | undefined;
      let failed: string | undefined;
      const stream = session.request({ ":method": "POST", ...call.headers });
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        contentType = h["content-type"] as string | undefined;
        grpcStatus = h["grpc-status"] as string | undefined;
        grpcMessage = h["grpc-message"] as string | undefined;
      });
      stream.on("trailers", (t) => {
        grpcStatus = (t["grpc-status"] as string | undefined) ?? grpcStatus;
        grpcMessage = (t["grpc-message"] as string | undefined) ?? grpcMessage;
      });
      stream.on("data", () => {});
      stream.on("error", (e: Error) => (failed ??= e.message));
      stream.on("close", () => {
        const outcome = failed ?? grpcOutcome(status, contentType, grpcStatus, grpcMessage);
        if (outcome === undefined) tally.success(started);
        else tally.failure(outcome);
        next();
      });
      stream.end(call.body);
    };
    next();
  };
  return drive(load, lane, tally);
}

/** Reads enveloped messages out of a byte stream. */
class Envelopes {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, each: (flags: number, message: Buffer) => void): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 5) {
      const size = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + size) return;
      each(this.pending[0]!, this.pending.subarray(5, 5 + size));
      this.pending = this.pending.subarray(5 + size);
    }
  }
}

/**
 * Operations over open session streams: each lane opens one stream, sends the
 * start message, then one operation at a time; when the duration is over it
 * half-closes and waits for the stream to end.
 */
export function runH2Session(load: H2SessionLoad): Promise<LoadResult> {
  const tally = new Tally();
  const lane = (session: http2.ClientHttp2Session, deadline: number, done: () => void) => {
    const stream = session.request({ ":method": "POST", ...load.headers });
    const envelopes = new Envelopes();
    let n = 0;
    let started = 0n;
    let status = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    const send = () => {
      if (Date.now() >= deadline) {
        stream.end();
        return;
      }
      started = process.hrtime.bigint();
      stream.write(load.op(n++));
    };
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      grpcStatus = h["grpc-status"] as string | undefined;
      grpcMessage = h["grpc-message"] as string | undefined;
    });
    stream.on("data", (chunk: Buffer) =>
      envelopes.push(chunk, (_flags, message) => {
        const kind = load.classify(message);
        if (kind === "started") return send();
        if (kind === "ok") tally.success(started);
        else tally.failure(`operation answered ${kind}`);
        send();
      }),
    );
    stream.on("trailers", (t) => {
      grpcStatus = (t["grpc-status"] as string | undefined) ?? grpcStatus;
      grpcMessage = (t["grpc-message"] as string | undefined) ?? grpcMessage;
    });
    stream.on("error", (e: Error) => tally.failure(e.message));
    stream.on("close", () => {
      if (status !== 200 || grpcStatus !== "0") {
        tally.failure(`session ended with HTTP ${status}, grpc-status ${grpcStatus ?? "missing"}${grpcMessage ? `: ${decodeURIComponent(grpcMessage)}` : ""}`);
      }
      done();
    });
    stream.write(load.start);
  };
  return drive(load, lane, tally);
}
