/**
 * Calls a scheduling platform's webhooks: signs the body, keeps connections
 * alive per platform origin, bounds the call by the sooner of the configured
 * timeout and the caller's deadline, aborts when the caller goes away, and
 * turns every way a platform can fail into a `GatewayError` of the error model.
 *
 * The HTTP/1.1 client is undici's (`Client`, one per connection, pooled by
 * `PlatformConnections`): it spends less than half the CPU per webhook of
 * Node's `http.request` and agent.
 *
 * Re-sending. A pooled keep-alive connection may have been closed by the
 * platform just as a request is written on it; the request then fails with
 * `ECONNRESET`/`EPIPE` on a reused connection. For a call without side effects
 * (`idempotent`: searches) the client sends it once more on a new connection.
 * A call with side effects (a booking) is never re-sent by the client: once
 * its bytes are handed to the socket they may sit in the kernel's send
 * buffer and reach the platform, which may read the whole booking and act on
 * it before the connection fails, and nothing the socket reports
 * (`bytesWritten` counts bytes handed to libuv, not bytes the peer did not
 * receive) proves otherwise. Such a failure is `platform_unavailable`,
 * which releases the idempotency key: the partner's retry sends the booking
 * again under the same downstream key, which the platform de-duplicates.
 *
 * To keep that failure rare without giving up pooling, an idle connection is
 * closed by the client before common servers close it (see
 * `IDLE_SOCKET_TIMEOUT_MS`), and sooner still when the platform announces its
 * own keep-alive timeout (`Keep-Alive: timeout=N`, honoured less a second);
 * before it writes on an idle connection, undici lets a close the platform
 * already sent arrive first. The most recently used connection is reused first.
 *
 * Each call carries the caller's request id (`X-Request-Id`) and trace
 * context (`traceparent`, `tracestate`), so a platform's logs and traces meet
 * the gateway's; it is counted and timed by path and outcome, and a platform
 * that stops accepting connections is logged once, and once more when it
 * answers again.
 */
import { urlToHttpOptions } from "node:url";
import type { Dispatcher } from "undici";
import { GatewayError } from "../errors.js";
import { NO_METRICS, type Metrics, type WebhookOutcome } from "../metrics/metrics.js";
import { ConditionLog } from "../observability/condition-log.js";
import type { Logger } from "../observability/logger.js";
import type { CallSpan } from "../tracing/tracer.js";
import { PlatformConnections, type PlatformExchange } from "./platform-connections.js";
import { oneLargeAnswerAtATime } from "./platform-json.js";
import { ACCOUNT_HEADER, SIGNATURE_HEADER, signatureHeader } from "./signature.js";

export type JsonObject = { [key: string]: unknown };

export interface WebhookTarget {
  readonly webhookUrl: string;
  readonly webhookSecret: string;
}

export interface WebhookCall {
  readonly target: WebhookTarget;
  readonly accountId: string;
  /** Appended to the platform's base URL, e.g. `/bookings`. */
  readonly path: string;
  readonly payload: JsonObject;
  /** Aborts the call when the caller goes away. */
  readonly signal?: AbortSignal | undefined;
  /** The caller's own deadline (epoch milliseconds), if it has one. */
  readonly deadline?: number | undefined;
  /**
   * For a webhook platforms may leave out: the error to answer when the
   * platform does not serve the path (see `isMissingWebhook`). Unset, such
   * an answer is read like any other.
   */
  readonly whenMissing?: (() => GatewayError) | undefined;
  /**
   * True when the call has no side effect on the platform, so sending it
   * twice is harmless (searches, lookups): it is sent again once when a
   * reused connection turns out to be closed. False by default: a call that
   * may change something (a booking) is never re-sent by the client.
   */
  readonly idempotent?: boolean | undefined;
  /** The request id of the call this webhook serves, sent as `X-Request-Id`. */
  readonly requestId?: string | undefined;
  /** The span of the call this webhook serves; the platform joins its trace. */
  readonly trace?: CallSpan | undefined;
}

/** A call whose answer is read into `T` by `read` (for a large answer, in its turn: see `oneLargeAnswerAtATime`). */
export interface ReadWebhookCall<T> extends WebhookCall {
  readonly read: (body: JsonObject) => T | Promise<T>;
}

/** Answers at least this large are read one at a time. */
export const LARGE_ANSWER_BYTES = 256 * 1024;

/** A 2xx answer of a platform. */
export interface PlatformAnswer {
  readonly status: number;
  readonly body: JsonObject;
  /** The body as the platform sent it (for a replay, as the idempotency store kept it; absent from a record that did not keep it). */
  readonly raw?: Buffer;
}

export interface WebhookClientOptions {
  readonly timeoutMs: number;
  /** Largest platform answer read (1 MiB by default); a larger one is `platform_invalid_response`. */
  readonly maxResponseBytes?: number;
  /** Connections kept per platform origin. */
  readonly maxSocketsPerPlatform?: number;
  /** How long an idle connection is kept; `IDLE_SOCKET_TIMEOUT_MS` by default. */
  readonly idleSocketTimeoutMs?: number;
  readonly metrics?: Metrics;
  /** Where a platform becoming unreachable, and reachable again, is logged. */
  readonly log?: Logger | undefined;
}

/** An answer as it arrived, before it is interpreted. */
interface RawAnswer {
  readonly status: number;
  readonly body: Buffer;
}

/** Where one webhook of one platform is posted, parsed once. */
interface Endpoint {
  /** The connections to the platform's origin. */
  readonly pool: PlatformConnections;
  /** The request target: the URL's path and query. */
  readonly path: string;
  /**
   * The headers every webhook to this endpoint starts with (the credentials
   * of a URL that carries them), in undici's flat list form. undici writes
   * `Host`, `Content-Length` and `Connection` itself.
   */
  readonly headers: readonly string[];
  readonly url: URL;
}

/** Endpoints remembered; a gateway talks to few platforms, so this bound is only a safety net. */
const MAX_ENDPOINTS = 1000;

/**
 * How long an idle pooled connection is kept when the platform does not
 * announce a keep-alive timeout. Shorter than the idle timeouts of common
 * servers (Node.js and Apache close after 5 s, nginx after 75 s, cloud load
 * balancers after 60 s or more), so the client, not the platform, closes an
 * idle connection, and a request is rarely written on one the platform is
 * closing at that moment.
 */
export const IDLE_SOCKET_TIMEOUT_MS = 4000;

export class WebhookClient {
  private readonly pools = new Map<string, PlatformConnections>();
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly maxResponseBytes: number;
  private readonly metrics: Metrics;
  private readonly unreachable: ConditionLog | undefined;

  constructor(private readonly options: WebhookClientOptions) {
    this.maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
    this.metrics = options.metrics ?? NO_METRICS;
    this.unreachable =
      options.log &&
      new ConditionLog(options.log, "platform_unreachable", {
        bad: "scheduling platform unreachable: its calls fail with platform_unavailable",
        good: "scheduling platform reachable again",
        level: "warn",
      });
  }

  async post(call: WebhookCall): Promise<PlatformAnswer> {
    return (await this.postAndRead({ ...call, read: () => undefined })).answer;
  }

  /**
   * Posts a webhook and reads its answer with `call.read`; an answer of
   * `LARGE_ANSWER_BYTES` or more waits for its turn, so big answers do not
   * stall every other call at once.
   */
  async postAndRead<T>(call: ReadWebhookCall<T>): Promise<{ answer: PlatformAnswer; value: T }> {
    const endpoint = this.endpointFor(call.target.webhookUrl, call.path);
    const body = Buffer.from(JSON.stringify(call.payload));
    const now = Date.now();
    const started = performance.now();
    const span = call.trace?.webhook(call.path, endpoint.url);
    const trace = span?.headers;
    let outcome: WebhookOutcome = "ok";
    let status: number | undefined;
    let error: unknown;
    try {
      const budget = Math.min(this.options.timeoutMs, call.deadline === undefined ? Infinity : call.deadline - now);
      if (budget <= 0) throw timeoutError();
      let raw: RawAnswer;
      try {
        raw = await this.send(endpoint, call, body, budget, trace);
      } catch (e) {
        if (!(call.idempotent === true && isStaleKeepAlive(e))) throw e;
        raw = await this.send(endpoint, call, body, budget - (Date.now() - now), trace);
      }
      status = raw.status;
      const read = async () => {
        const answer = interpret(raw.status, raw.body, call.whenMissing);
        return { answer, value: await call.read(answer.body) };
      };
      return await (raw.body.length >= LARGE_ANSWER_BYTES ? oneLargeAnswerAtATime(read) : read());
    } catch (e) {
      error = e;
      outcome = outcomeOf(e);
      if (e instanceof GatewayError && e.platformEnvelope) status = e.httpStatus;
      throw e;
    } finally {
      this.metrics.webhookFinished(call.path, outcome, (performance.now() - started) / 1000);
      span?.end(status, error instanceof GatewayError ? error.code : error === undefined ? undefined : "internal_error");
      if (outcome === "unreachable") {
        this.unreachable?.report(true, endpoint.url.host, { error: (error as { errno?: string }).errno ?? "connection error" });
      } else if (outcome !== "timeout" && outcome !== "canceled") {
        this.unreachable?.report(false, endpoint.url.host);
      }
    }
  }

  /** Closes every pooled connection. */
  close(): void {
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
    this.endpoints.clear();
  }

  /** The parsed URL of a webhook, with its connection pool: parsing a URL costs more than the rest of a call's set-up. */
  private endpointFor(webhookUrl: string, path: string): Endpoint {
    const key = `${webhookUrl}\n${path}`;
    let endpoint = this.endpoints.get(key);
    if (endpoint === undefined) {
      const url = new URL(webhookUrl.replace(/\/+$/, "") + path);
      const { path: requestPath, auth } = urlToHttpOptions(url);
      // The URL's credentials, decoded as Node decodes them, become Basic authorization.
      const headers = auth ? ["Authorization", `Basic ${Buffer.from(auth).toString("base64")}`] : [];
      endpoint = { pool: this.poolFor(url), path: requestPath ?? "/", headers, url };
      if (this.endpoints.size >= MAX_ENDPOINTS) this.endpoints.clear();
      this.endpoints.set(key, endpoint);
    }
    return endpoint;
  }

  private poolFor(url: URL): PlatformConnections {
    let pool = this.pools.get(url.origin);
    if (pool === undefined) {
      const idle = this.options.idleSocketTimeoutMs ?? IDLE_SOCKET_TIMEOUT_MS;
      pool = new PlatformConnections(url.origin, {
        max: this.options.maxSocketsPerPlatform ?? 256,
        client: {
          pipelining: 1,
          // An idle connection is closed after `idle`, or a second before the
          // platform's own `Keep-Alive: timeout=N` if that is sooner.
          keepAliveTimeout: idle,
          keepAliveMaxTimeout: idle,
          keepAliveTimeoutThreshold: 1000,
          // A call is bounded by its own timer (the budget), not by undici's: connecting included.
          connectTimeout: this.options.timeoutMs,
          headersTimeout: 0,
          bodyTimeout: 0,
        },
      });
      this.pools.set(url.origin, pool);
    }
    return pool;
  }

  private send(
    endpoint: Endpoint,
    call: WebhookCall,
    body: Buffer,
    budgetMs: number,
    trace: { traceparent: string; tracestate?: string | undefined } | undefined,
  ): Promise<RawAnswer> {
    return new Promise<RawAnswer>((resolve, reject) => {
      const signal = call.signal;
      if (signal?.aborted) {
        reject(cancelError(call));
        return;
      }
      const max = this.maxResponseBytes;
      const headers = [
        ...endpoint.headers,
        "Content-Type",
        "application/json",
        SIGNATURE_HEADER,
        signatureHeader(call.target.webhookSecret, body),
        ACCOUNT_HEADER,
        call.accountId,
      ];
      if (call.requestId !== undefined) headers.push("X-Request-Id", call.requestId);
      if (trace !== undefined) {
        headers.push("traceparent", trace.traceparent);
        if (trace.tracestate !== undefined) headers.push("tracestate", trace.tracestate);
      }
      let controller: Dispatcher.DispatchController | undefined;
      let stopped: Error | undefined;
      let status = 0;
      let size = 0;
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (error: Error | undefined, answer?: RawAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve(answer!);
        else reject(error);
      };
      // Ends the call with `error`, and the request on the wire: its
      // connection is closed, so the platform sees the caller go; a request
      // not yet written is never written.
      const stop = (error: Error) => {
        finish(error);
        stopped ??= error;
        controller?.abort(error);
      };
      const timer = setTimeout(() => stop(timeoutError()), budgetMs);
      const onAbort = () => stop(cancelError(call));
      signal?.addEventListener("abort", onAbort, { once: true });
      const exchange: PlatformExchange = {
        request: { path: endpoint.path, method: "POST", headers, body },
        cancelled: () => stopped !== undefined,
        started: (c) => {
          controller = c;
          if (stopped !== undefined) c.abort(stopped);
        },
        answerStarted: (_c, statusCode, answerHeaders) => {
          status = statusCode;
          if (Number(answerHeaders["content-length"]) > max) stop(tooLarge(max));
        },
        answerData: (_c, chunk) => {
          size += chunk.length;
          if (size > max) return stop(tooLarge(max));
          chunks.push(chunk);
        },
        answerEnded: () => finish(undefined, { status, body: Buffer.concat(chunks, size) }),
        failed: (e, reused) => finish(status === 0 ? notReached(e, reused) : cutOff()),
      };
      endpoint.pool.send(exchange);
    });
  }
}

/**
 * A request that failed before its answer began: the platform could not be
 * reached, or closed the connection. undici's "other side closed" is the
 * failure Node calls `ECONNRESET` ("socket hang up"), and is named so.
 */
function notReached(e: Error & { code?: string }, reusedSocket: boolean): Error {
  if (e.code === "UND_ERR_INVALID_ARG") return e;
  const errno = e.code === "UND_ERR_SOCKET" && e.message !== "bad response" ? "ECONNRESET" : e.code;
  return Object.assign(
    GatewayError.of("platform_unavailable", `the scheduling platform could not be reached (${errno ?? "connection error"})`, { cause: e }),
    { reusedSocket, errno, unreachable: true },
  );
}

function cutOff(): Error {
  return Object.assign(GatewayError.of("platform_unavailable", "the scheduling platform's answer was cut off"), { unreachable: true });
}

function tooLarge(max: number): GatewayError {
  return GatewayError.of("platform_invalid_response", `the scheduling platform's answer is larger than ${max} bytes`);
}

function timeoutError(): GatewayError {
  return GatewayError.of("platform_timeout", "the scheduling platform did not answer in time");
}

function cancelError(call: WebhookCall): GatewayError {
  if (call.deadline !== undefined && Date.now() >= call.deadline - 20) return timeoutError();
  return GatewayError.of("canceled", "the caller went away");
}

/** How a failed webhook call ended, for metrics and the reachability log. */
function outcomeOf(e: unknown): WebhookOutcome {
  if (!(e instanceof GatewayError)) return "invalid_response";
  if ((e as { unreachable?: boolean }).unreachable === true) return "unreachable";
  if (e.platformEnvelope) return e.httpStatus >= 500 ? "error_5xx" : "error_4xx";
  switch (e.code) {
    case "platform_timeout":
      return "timeout";
    case "canceled":
      return "canceled";
    case "platform_unavailable":
      return "error_5xx";
    // The platform answered 401/403, or 404/501 for a webhook it lacks.
    case "platform_rejected":
    case "customer_lookup_not_supported":
      return "error_4xx";
    default:
      return "invalid_response";
  }
}

function isStaleKeepAlive(e: unknown): boolean {
  const x = e as { reusedSocket?: boolean; errno?: string };
  return x.reusedSocket === true && (x.errno === "ECONNRESET" || x.errno === "EPIPE");
}

function isRecord(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * How a platform says it has no such webhook: `501 Not Implemented`, or a
 * `404` that is not an error envelope of its own (a web framework's page for
 * an unknown route) or whose code says no more than `not_found`. A `404`
 * envelope with a code of its own, such as `account_not_found`, is an answer
 * about the request, not about the path, and passes through.
 */
function isMissingWebhook(status: number, error: JsonObject | undefined): boolean {
  if (status === 501) return true;
  if (status !== 404) return false;
  return error === undefined || typeof error.code !== "string" || error.code === "" || error.code === "not_found";
}

/** A platform answer as the error model sees it. */
function interpret(status: number, raw: Buffer, whenMissing: (() => GatewayError) | undefined): PlatformAnswer {
  let body: unknown;
  try {
    body = raw.length === 0 ? undefined : JSON.parse(raw.toString("utf8"));
  } catch {
    body = undefined;
  }
  if (status >= 200 && status < 300) {
    if (!isRecord(body)) {
      throw GatewayError.of("platform_invalid_response", `the scheduling platform answered ${status} without a JSON object`);
    }
    return { status, body, raw };
  }
  const error = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  const code = error !== undefined && typeof error.code === "string" && error.code !== "" ? error.code : undefined;
  if (status === 401 || status === 403) {
    // The platform refused the gateway, not the partner's request: passing
    // its 401 on would tell the partner its own key is wrong.
    throw GatewayError.of(
      "platform_rejected",
      `the scheduling platform refused the gateway's request (${status}${code === undefined ? "" : ` ${code}`}): ` +
        "the platform's webhook URL or secret is misconfigured at DialStack; retry with the same key once it is fixed",
    );
  }
  if (whenMissing !== undefined && isMissingWebhook(status, error)) throw whenMissing();
  if (error !== undefined && code !== undefined && status >= 400 && status < 600) {
    const message = typeof error.message === "string" ? error.message : code;
    throw GatewayError.fromPlatform(status, code, message);
  }
  if (status >= 500) {
    throw GatewayError.of("platform_unavailable", `the scheduling platform answered ${status}`);
  }
  throw GatewayError.of("platform_invalid_response", `the scheduling platform answered ${status} without an error envelope`);
}
