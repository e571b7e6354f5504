/**
 * Spans recorded with OpenTelemetry and exported over OTLP/HTTP, when an
 * endpoint is configured (the standard `OTEL_*` variables, read in
 * config.ts). A call is a SERVER span that continues the caller's trace; each
 * webhook it sends is a CLIENT span under it, and the platform receives that
 * span as its parent.
 *
 * The SDK is loaded only here, and this module only when tracing is on, so
 * a gateway without an endpoint carries none of its cost. Exports that fail
 * (the collector down, refusing) are logged once when they start failing and
 * once when they succeed again; spans meanwhile are dropped, calls are not
 * affected.
 */
import { ROOT_CONTEXT, createTraceState, SpanKind, SpanStatusCode, trace, type Span, type Tracer as OtelTracer } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import type { TracingConfig } from "../config.js";
import { ConditionLog } from "../observability/condition-log.js";
import type { Logger } from "../observability/logger.js";
import { formatTraceParent, parseTraceParent, parseTraceState } from "./trace-context.js";
import type { CallSpan, CallSpanStart, TraceHeaders, Tracer, WebhookSpan } from "./tracer.js";

function samplerOf(config: TracingConfig): Sampler {
  const ratio = () => new TraceIdRatioBasedSampler(config.samplerRatio);
  switch (config.sampler) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return ratio();
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: ratio() });
  }
}

async function exporterOf(config: TracingConfig): Promise<SpanExporter> {
  const options = { url: config.endpoint, headers: { ...config.headers } };
  if (config.protocol === "http/json") {
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    return new OTLPTraceExporter(options);
  }
  const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
  return new OTLPTraceExporter(options);
}

/** `ExportResultCode.SUCCESS` of @opentelemetry/core. */
const EXPORT_SUCCESS = 0;

/** The exporter, with its failures and recoveries logged (see ConditionLog). */
function reporting(exporter: SpanExporter, endpoint: string, log: Logger): SpanExporter {
  const failing = new ConditionLog(log, "otlp_export", {
    bad: "span export failing: spans are dropped until the collector accepts them",
    good: "span export working again",
    level: "warn",
  });
  const collector = new URL(endpoint).host;
  return {
    export(spans, done) {
      exporter.export(spans, (result: { code: number; error?: Error }) => {
        failing.report(result.code !== EXPORT_SUCCESS, collector, result.error === undefined ? {} : { error: result.error.message });
        done(result as Parameters<typeof done>[0]);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}

export async function startOtlpTracer(config: TracingConfig, log: Logger): Promise<Tracer> {
  const exporter = reporting(await exporterOf(config), config.endpoint, log);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ ...config.resourceAttributes, "service.name": config.serviceName }),
    sampler: samplerOf(config),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
  });
  const tracer = provider.getTracer("dialstack-gateway");
  return {
    startCall: (start) => new OtlpCallSpan(tracer, start),
    async close() {
      await provider.forceFlush().catch(() => {});
      await provider.shutdown().catch(() => {});
    },
  };
}

function headersOf(span: Span): TraceHeaders {
  const c = span.spanContext();
  return { traceparent: formatTraceParent({ traceId: c.traceId, spanId: c.spanId, flags: c.traceFlags }), tracestate: c.traceState?.serialize() || undefined };
}

class OtlpCallSpan implements CallSpan {
  private readonly span: Span;
  readonly traceId: string;
  readonly spanId: string;

  constructor(
    private readonly tracer: OtelTracer,
    start: CallSpanStart,
  ) {
    const parent = parseTraceParent(start.traceparent);
    const tracestate = parent === undefined ? undefined : parseTraceState(start.tracestate);
    const parentContext =
      parent === undefined
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, {
            traceId: parent.traceId,
            spanId: parent.spanId,
            traceFlags: parent.flags,
            isRemote: true,
            traceState: tracestate === undefined ? undefined : createTraceState(tracestate),
          });
    const [service, method] = start.procedure.split("/");
    this.span = tracer.startSpan(
      start.procedure,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system": start.protocol === "grpc" || start.protocol === "grpc_web" ? "grpc" : "connect_rpc",
          "rpc.service": service,
          "rpc.method": method,
          "dialstack.protocol": start.protocol,
          "dialstack.request_id": start.requestId,
        },
      },
      parentContext,
    );
    const c = this.span.spanContext();
    this.traceId = c.traceId;
    this.spanId = c.spanId;
  }

  webhook(path: string, url: URL): WebhookSpan {
    const span = this.tracer.startSpan(
      `POST ${path}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "http.request.method": "POST",
          "server.address": url.hostname,
          "server.port": Number(url.port || (url.protocol === "https:" ? 443 : 80)),
          "url.path": url.pathname,
        },
      },
      trace.setSpan(ROOT_CONTEXT, this.span),
    );
    return {
      headers: headersOf(span),
      end(status, error) {
        if (status !== undefined) span.setAttribute("http.response.status_code", status);
        if (error !== undefined) {
          span.setAttribute("error.type", error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: error });
        }
        span.end();
      },
    };
  }

  end(code: string): void {
    this.span.setAttribute("rpc.response.status_code", code);
    if (code !== "ok") this.span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    this.span.end();
  }
}
