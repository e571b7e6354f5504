/**
 * Whether the gateway can do its work, for the gRPC health service and the
 * readiness probe alike: it cannot while Redis (when it uses one) is
 * unreachable, nor once it has begun shutting down. The state is kept
 * current in the background, so reading it costs nothing and never waits.
 */
import type { RedisConnection } from "../store/redis-connection.js";
import type { Logger } from "../observability/logger.js";
import { ConditionLog } from "../observability/condition-log.js";
import type { Metrics } from "../metrics/metrics.js";
import { RedisMonitor } from "./redis-monitor.js";

/** Why the gateway is not ready, as the readiness probe reports it. */
export type NotReadyReason = "redis_unreachable" | "shutting_down";

export class HealthState {
  private readonly monitor: RedisMonitor | undefined;
  private shuttingDown = false;
  private readonly listeners = new Set<() => void>();

  constructor(redis: RedisConnection | undefined, log: Logger, metrics: Metrics) {
    if (redis === undefined) return;
    const redisLog = new ConditionLog(log, "redis", {
      bad: "Redis unreachable: bookings fail with service_unavailable and the gateway reports NOT_SERVING",
      good: "Redis reachable again",
    });
    this.monitor = new RedisMonitor(redis, {
      onChange: (up, reason) => {
        redisLog.report(!up, "", reason === undefined ? {} : { reason });
        this.changed();
      },
      onError: (source) => metrics.redisError(source),
    });
  }

  /** True when the gateway can serve calls. */
  get serving(): boolean {
    return this.notReady().length === 0;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  notReady(): NotReadyReason[] {
    const reasons: NotReadyReason[] = [];
    if (this.monitor !== undefined && !this.monitor.reachable) reasons.push("redis_unreachable");
    if (this.shuttingDown) reasons.push("shutting_down");
    return reasons;
  }

  /** From now on the gateway reports NOT_SERVING; watchers are told and their streams end. */
  beginShutdown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.changed();
  }

  /** Calls `listener` after every change until the returned function is called. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.monitor?.close();
    this.listeners.clear();
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
