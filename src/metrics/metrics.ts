/**
 * What the gateway counts, for Prometheus (`prom-client`). Each function
 * records one event and knows nothing of protocols or frameworks, so every
 * path that serves a call (the RPC handlers, REST, any faster path added
 * later) records it the same way.
 *
 * Labels are bounded by construction: procedures and webhook paths come from
 * the code, codes and outcomes from fixed lists. The one exception is the
 * partner id on `gateway_rate_limited_total`: partners exist only once an
 * operator provisions them, and the label is set only after a key was
 * verified, so a caller cannot invent values; a fleet has as many series as
 * it has throttled partners. No key, secret, bot, account or request id is
 * ever a label.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { CounterSeries, HistogramSeries } from "./series.js";

/** How a call reached the gateway. REST calls count under the RPC procedure they map to. */
export type CallProtocol = "rest" | "connect" | "grpc" | "grpc_web";

/** How a webhook call ended. */
export type WebhookOutcome = "ok" | "error_4xx" | "error_5xx" | "unreachable" | "invalid_response" | "timeout" | "canceled";

/** What the idempotency keeper did with a booking's key. */
export type IdempotencyOutcome = "claimed" | "replayed" | "mismatch" | "in_flight" | "store_unavailable";

/** Whether a replica acknowledged a stored booking before its answer went out (see store/replica-acknowledgement.ts). */
export type ReplicaAcknowledgementResult = "acknowledged" | "not_acknowledged" | "not_waited";

/** Where a Redis failure was seen. */
export type RedisErrorSource = "connection" | "health_check" | "directory" | "idempotency" | "rate_limit";

export interface Metrics {
  /** `code`: the call's status as a snake_case Connect code (`ok`, `not_found`, ...). */
  callFinished(procedure: string, protocol: CallProtocol, code: string, seconds: number): void;
  webhookFinished(path: string, outcome: WebhookOutcome, seconds: number): void;
  idempotency(outcome: IdempotencyOutcome): void;
  rateLimited(partnerId: string): void;
  sessionOpened(): void;
  sessionClosed(): void;
  redisError(source: RedisErrorSource): void;
  replicaAcknowledgement(result: ReplicaAcknowledgementResult): void;
  /** A connection or HTTP/2 session the listener refused or ended by one of its bounds; `reason` is its verdict. */
  edgeRefused(reason: string): void;
}

/** Metrics turned off (`METRICS_PORT=off`): every record is a no-op. */
export const NO_METRICS: Metrics = {
  callFinished() {},
  webhookFinished() {},
  idempotency() {},
  rateLimited() {},
  sessionOpened() {},
  sessionClosed() {},
  redisError() {},
  replicaAcknowledgement() {},
  edgeRefused() {},
};

/**
 * The process's own metrics (CPU, memory, event loop, garbage collection),
 * collected once per process however many gateways it runs (tests run
 * several): their collectors start timers and observers that are never
 * stopped. Each gateway's exposition merges them in.
 */
let processRegistry: Registry | undefined;

function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];

export class PrometheusMetrics implements Metrics {
  private readonly registry = new Registry();
  // The per-call series: recorded on every call and webhook.
  private readonly calls = new CounterSeries(
    "gateway_calls_total",
    "Calls answered, by procedure, protocol and status code (a Connect code; ok for success).",
    ["procedure", "protocol", "code"],
    this.registry,
  );
  private readonly callSeconds = new HistogramSeries(
    "gateway_call_duration_seconds",
    "Time from a call's arrival to the end of its answer (a whole stream for streaming calls).",
    ["procedure", "protocol"],
    LATENCY_BUCKETS,
    this.registry,
  );
  private readonly webhooks = new CounterSeries(
    "gateway_webhook_calls_total",
    "Webhook calls to scheduling platforms, by webhook path and outcome.",
    ["path", "outcome"],
    this.registry,
  );
  private readonly webhookSeconds = new HistogramSeries(
    "gateway_webhook_duration_seconds",
    "Webhook call latency, by webhook path and outcome.",
    ["path", "outcome"],
    LATENCY_BUCKETS,
    this.registry,
  );
  private readonly idempotencyOutcomes = new Counter({
    name: "gateway_idempotency_outcomes_total",
    help: "Idempotency keys of bookings by outcome: claimed, replayed, mismatch, in_flight (gave up waiting), store_unavailable.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  private readonly limited = new Counter({
    name: "gateway_rate_limited_total",
    help: "Calls and session operations refused by a partner's rate limit, by partner id.",
    labelNames: ["partner"] as const,
    registers: [this.registry],
  });
  private readonly sessions = new Gauge({
    name: "gateway_open_sessions",
    help: "Bot sessions (BotSessionService/Converse streams) open now.",
    registers: [this.registry],
  });
  private readonly redisErrors = new Counter({
    name: "gateway_redis_errors_total",
    help: "Redis failures, by where they were seen: connection, health_check, directory, idempotency, rate_limit.",
    labelNames: ["source"] as const,
    registers: [this.registry],
  });

  private readonly replicaAcks = new Counter({
    name: "gateway_replica_acknowledgements_total",
    help: "Finished bookings stored in Redis, by whether a replica acknowledged them in time: acknowledged, not_acknowledged (answered anyway), not_waited (no replica, or waiting paused).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  private readonly edgeRefusals = new Counter({
    name: "gateway_edge_refusals_total",
    help: "Client connections and HTTP/2 sessions the listener refused or ended by one of its bounds, by reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  /** This gateway's series and the process's. */
  private readonly exposition: Registry;

  constructor() {
    this.exposition = Registry.merge([this.registry, processMetrics()]);
  }

  replicaAcknowledgement(result: ReplicaAcknowledgementResult): void {
    this.replicaAcks.inc({ result });
  }

  callFinished(procedure: string, protocol: CallProtocol, code: string, seconds: number): void {
    this.calls.inc(procedure, protocol, code);
    this.callSeconds.observe(seconds, procedure, protocol);
  }

  webhookFinished(path: string, outcome: WebhookOutcome, seconds: number): void {
    this.webhooks.inc(path, outcome);
    this.webhookSeconds.observe(seconds, path, outcome);
  }

  idempotency(outcome: IdempotencyOutcome): void {
    this.idempotencyOutcomes.inc({ outcome });
  }

  rateLimited(partnerId: string): void {
    this.limited.inc({ partner: partnerId });
  }

  sessionOpened(): void {
    this.sessions.inc();
  }

  sessionClosed(): void {
    this.sessions.dec();
  }

  redisError(source: RedisErrorSource): void {
    this.redisErrors.inc({ source });
  }

  edgeRefused(reason: string): void {
    this.edgeRefusals.inc({ reason });
  }

  /** The exposition, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.exposition.contentType, body: await this.exposition.metrics() };
  }
}
