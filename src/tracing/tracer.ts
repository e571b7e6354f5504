/**
 * Spans of the gateway's calls, behind one small interface so the serving
 * paths and the webhook client never depend on how spans are kept:
 *
 * - without an OTLP endpoint, `propagatingTracer` only carries the trace
 *   context on: the webhook gets the caller's trace id with a span id of the
 *   gateway's, and nothing is recorded (a random id and a string per call);
 * - with one, `otlp-tracer.ts` records the same spans with OpenTelemetry and
 *   exports them.
 */
import { formatTraceParent, newSpanId, newTraceId, parseTraceParent, parseTraceState, type TraceParent } from "./trace-context.js";

/** What a call's span needs from the request, whatever its protocol. */
export interface CallSpanStart {
  /** `package.Service/Method`. */
  readonly procedure: string;
  /** `rest`, `connect`, `grpc` or `grpc_web`. */
  readonly protocol: string;
  readonly requestId: string;
  readonly traceparent: string | string[] | undefined;
  readonly tracestate: string | string[] | undefined;
}

/** The headers that carry a trace to a platform. */
export interface TraceHeaders {
  readonly traceparent: string;
  readonly tracestate?: string | undefined;
}

/** One outgoing webhook call inside a call's span. */
export interface WebhookSpan {
  readonly headers: TraceHeaders;
  /** `status`: the platform's HTTP status, when it answered; `error`: the gateway's error code otherwise. */
  end(status: number | undefined, error: string | undefined): void;
}

export interface CallSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Starts the span of a webhook this call sends (`path`: the webhook path, e.g. `/bookings`). */
  webhook(path: string, url: URL): WebhookSpan;
  /** Ends the span with the call's status (a snake_case Connect code). */
  end(code: string): void;
}

export interface Tracer {
  startCall(start: CallSpanStart): CallSpan;
  /** Sends what is still buffered. */
  close(): Promise<void>;
}

/** Joins the caller's trace or starts one, and passes it on; records nothing. */
export const propagatingTracer: Tracer = {
  startCall(start) {
    return new PropagatingSpan(parseTraceParent(start.traceparent), parseTraceState(start.tracestate));
  },
  async close() {},
};

class PropagatingSpan implements CallSpan, WebhookSpan {
  readonly traceId: string;
  readonly spanId = newSpanId();
  readonly headers: TraceHeaders;

  constructor(parent: TraceParent | undefined, tracestate: string | undefined) {
    this.traceId = parent?.traceId ?? newTraceId();
    // Nothing is recorded here: a new trace is not sampled, a joined one keeps the caller's decision.
    const flags = parent?.flags ?? 0;
    this.headers = { traceparent: formatTraceParent({ traceId: this.traceId, spanId: this.spanId, flags }), tracestate: parent ? tracestate : undefined };
  }

  webhook(): WebhookSpan {
    return this;
  }

  end(): void {}
}
