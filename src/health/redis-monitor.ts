/**
 * Whether Redis answers, kept up to date in the background so that a probe
 * never waits for Redis: the connection's own events say at once when it
 * drops, and a PING every second catches a Redis that keeps its connections
 * open but does not answer (frozen, swapping, stuck in a long command).
 *
 * A PING counts as missed when it fails, or when the connection's own command
 * timeout rejects it: the one the request path runs under, past which calls
 * fail anyway, and which is decided only after the event loop has read what
 * arrived meanwhile, so a gateway that was itself busy does not blame Redis
 * (see store/lag-tolerant-timeout.ts). Two misses in a row mark Redis
 * unreachable, so a single slow answer on a loaded machine does not take the
 * gateway out of a load balancer. One answered PING marks it reachable again.
 *
 * On a Redis Cluster every master is pinged: a master that does not answer
 * leaves its slots without a home until a replica is promoted, and the
 * bookings whose keys live there fail meanwhile.
 */
import type { RedisErrorSource } from "../metrics/metrics.js";
import { CommandTimeoutError } from "../store/lag-tolerant-timeout.js";
import { isCluster, type RedisConnection } from "../store/redis-connection.js";

export interface RedisMonitorOptions {
  /** Between two PINGs. */
  readonly intervalMs?: number;
  /** Misses in a row that mark Redis unreachable. */
  readonly missesToFail?: number;
  /** Called with every change, and with the reason when Redis is lost. */
  readonly onChange: (up: boolean, reason: string | undefined) => void;
  /** Called for each failure seen (connection error, failed or unanswered PING). */
  readonly onError?: (source: Extract<RedisErrorSource, "connection" | "health_check">) => void;
}

export class RedisMonitor {
  private up: boolean;
  private pinging = false;
  private misses = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly detach: () => void;

  constructor(
    private readonly redis: RedisConnection,
    private readonly options: RedisMonitorOptions,
  ) {
    this.up = redis.status === "ready";
    const onClose = () => this.set(false, "connection closed");
    const onReady = () => this.ping();
    const onError = () => options.onError?.("connection");
    redis.on("close", onClose);
    redis.on("ready", onReady);
    redis.on("error", onError);
    this.detach = () => {
      redis.off("close", onClose);
      redis.off("ready", onReady);
      redis.off("error", onError);
    };
    this.timer = setInterval(() => this.ping(), options.intervalMs ?? 1000);
    this.timer.unref();
  }

  get reachable(): boolean {
    return this.up;
  }

  close(): void {
    clearInterval(this.timer);
    this.detach();
  }

  private ping(): void {
    if (this.pinging || this.redis.status !== "ready") return;
    this.pinging = true;
    this.pingAll().then(
      () => {
        this.pinging = false;
        this.misses = 0;
        this.set(true, undefined);
      },
      (e: Error) => {
        this.pinging = false;
        this.options.onError?.("health_check");
        const reason = e instanceof CommandTimeoutError ? `no answer to PING within ${e.timeoutMs} ms` : `PING failed: ${e.message}`;
        if (++this.misses >= (this.options.missesToFail ?? 2)) this.set(false, reason);
      },
    );
  }

  private async pingAll(): Promise<void> {
    const redis = this.redis;
    if (!isCluster(redis)) {
      await redis.ping();
      return;
    }
    const masters = redis.nodes("master");
    if (masters.length === 0) throw new Error("no master is known");
    await Promise.all(masters.map((node) => node.ping()));
  }

  private set(up: boolean, reason: string | undefined): void {
    if (up === this.up) return;
    this.up = up;
    this.options.onChange(up, reason);
  }
}
