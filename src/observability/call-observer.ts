/**
 * What the gateway observes of each call, in one place and without knowing
 * the protocol: the call is counted and timed (metrics), it has a span in the
 * caller's trace (tracing), a request id, and a logger that puts the request
 * id on every line. A serving path starts an observation when a call
 * arrives, whoever learns the call's status records it (`settle`), and the
 * path ends it when the answer is complete (`end`).
 */
import { Code } from "@connectrpc/connect";
import type { CallProtocol, Metrics } from "../metrics/metrics.js";
import type { CallSpan, Tracer } from "../tracing/tracer.js";
import type { Logger } from "./logger.js";

export interface CallStart {
  /** `package.Service/Method`; a REST call names the method it maps to. */
  readonly procedure: string;
  readonly protocol: CallProtocol;
  readonly requestId: string;
  /** The caller's W3C trace context headers, as received. */
  readonly traceparent: string | string[] | undefined;
  readonly tracestate: string | string[] | undefined;
  /** The logger of the request (it carries the request id). */
  readonly log: Logger;
}

export class CallObservation {
  readonly span: CallSpan;
  private readonly startedAt = performance.now();
  private code: string | undefined;
  private ended = false;

  constructor(
    private readonly metrics: Metrics,
    tracer: Tracer,
    readonly start: CallStart,
  ) {
    this.span = tracer.startCall(start);
  }

  get requestId(): string {
    return this.start.requestId;
  }

  get log(): Logger {
    return this.start.log;
  }

  /** Records the call's status, a Connect code; the last one recorded counts. */
  settle(code: Code | "ok"): void {
    this.code = code === "ok" ? "ok" : CODE_NAMES[code];
  }

  /** Counts the call and ends its span, once; `fallback` is the status if none was recorded. */
  end(fallback: string): void {
    if (this.ended) return;
    this.ended = true;
    const code = this.code ?? fallback;
    this.metrics.callFinished(this.start.procedure, this.start.protocol, code, (performance.now() - this.startedAt) / 1000);
    this.span.end(code);
  }
}

export class CallObserver {
  constructor(
    private readonly metrics: Metrics,
    private readonly tracer: Tracer,
  ) {}

  start(start: CallStart): CallObservation {
    return new CallObservation(this.metrics, this.tracer, start);
  }
}

/** Connect codes in snake_case, as metrics and spans name them. */
export const CODE_NAMES: Readonly<Record<Code, string>> = Object.fromEntries(
  Object.entries(Code)
    .filter(([, v]) => typeof v === "number")
    .map(([name, v]) => [v, name.replace(/[A-Z]/g, (m, i: number) => (i === 0 ? m.toLowerCase() : `_${m.toLowerCase()}`))]),
) as Record<Code, string>;

/**
 * The status of a call that nobody recorded, from its HTTP answer: errors
 * the framework raised before the call reached the gateway's code (a body
 * that is not JSON, too large), or a caller that went away.
 */
export function codeOfHttpStatus(status: number, completed: boolean): string {
  if (!completed) return "canceled";
  if (status >= 200 && status < 300) return "ok";
  switch (status) {
    case 400:
    case 415:
      return "invalid_argument";
    case 401:
      return "unauthenticated";
    case 403:
      return "permission_denied";
    case 404:
      return "not_found";
    case 405:
    case 501:
    case 505:
      return "unimplemented";
    case 408:
    case 504:
      return "deadline_exceeded";
    case 409:
      return "aborted";
    case 413:
    case 429:
      return "resource_exhausted";
    case 422:
      return "failed_precondition";
    case 499:
      return "canceled";
    case 502:
    case 503:
      return "unavailable";
  }
  return status < 500 ? "failed_precondition" : "internal";
}
