/**
 * Whether Redis answers, kept up to date in the background so that a probe
 * never waits for Redis: the connection's own events say at once when it
 * drops, and a PING every second with a short timeout catches a Redis that
 * keeps its connections open but does not answer (frozen, swapping, stuck in
 * a long command). A PING still unanswered is not repeated; when it is
 * answered at last, Redis is back.
 */
import type { Redis } from "ioredis";

export interface RedisMonitorOptions {
  /** Between two PINGs. */
  readonly intervalMs?: number;
  /** A PING unanswered for this long marks Redis unreachable. */
  readonly timeoutMs?: number;
  /** Called with every change, and with the reason when Redis is lost. */
  readonly onChange: (up: boolean, reason: string | undefined) => void;
  /** Called for each failure seen (connection error, failed or late PING). */
  readonly onError?: (source: "connection" | "health_check") => void;
}

export class RedisMonitor {
  private up: boolean;
  private pinging = false;
  private readonly timer: NodeJS.Timeout;
  private readonly detach: () => void;

  constructor(
    private readonly redis: Redis,
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
    const late = setTimeout(() => {
      this.options.onError?.("health_check");
      this.set(false, `no answer to PING within ${this.options.timeoutMs ?? 500} ms`);
    }, this.options.timeoutMs ?? 500);
    late.unref();
    this.redis.ping().then(
      () => {
        clearTimeout(late);
        this.pinging = false;
        this.set(true, undefined);
      },
      (e: Error) => {
        clearTimeout(late);
        this.pinging = false;
        if (this.up) this.options.onError?.("health_check");
        this.set(false, `PING failed: ${e.message}`);
      },
    );
  }

  private set(up: boolean, reason: string | undefined): void {
    if (up === this.up) return;
    this.up = up;
    this.options.onChange(up, reason);
  }
}
