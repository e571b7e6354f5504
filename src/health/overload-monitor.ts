/**
 * Knows when the process is overloaded: its event loop runs late. Work
 * accepted on a lagging loop waits behind everything before it and times out
 * anyway, so new calls are refused early (`overloaded`, with a Retry-After)
 * while the lag lasts, and the calls already accepted get the loop.
 *
 * The lag is measured by a timer that should fire every `SAMPLE_MS`: how late
 * it fires is how late everything else runs. A call arriving while the timer
 * is overdue by more than the threshold (the loop is blocked right now, or
 * was until this moment) counts as overloaded too, without waiting for the
 * next sample. Entering and leaving the state is an event (`change`), for
 * logs and metrics; `state()` says where things stand.
 */
import { EventEmitter } from "node:events";
import { GatewayError } from "../errors.js";

const SAMPLE_MS = 100;

/** Seconds a refused client is asked to wait. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 1;

export interface OverloadState {
  readonly overloaded: boolean;
  /** The event loop's delay at the last sample, milliseconds. */
  readonly eventLoopDelayMs: number;
  /** Calls refused as `overloaded` since start. */
  readonly refused: number;
}

export class OverloadMonitor extends EventEmitter<{ change: [OverloadState] }> {
  private overloaded = false;
  private delayMs = 0;
  private refused = 0;
  private due = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `thresholdMs` 0 disables the monitor: nothing is ever refused. */
  constructor(private readonly thresholdMs: number) {
    super();
    if (thresholdMs > 0) this.schedule();
  }

  state(): OverloadState {
    return { overloaded: this.overloaded, eventLoopDelayMs: this.delayMs, refused: this.refused };
  }

  /** Throws `overloaded` when new work should be refused now. */
  admit(): void {
    if (this.thresholdMs <= 0) return;
    if (!this.overloaded && performance.now() - this.due > this.thresholdMs) this.update(performance.now() - this.due);
    if (!this.overloaded) return;
    this.refused++;
    throw GatewayError.of("overloaded", "the gateway is overloaded; retry shortly", { retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS });
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.due = performance.now() + SAMPLE_MS;
    this.timer = setTimeout(() => {
      this.update(Math.max(0, performance.now() - this.due));
      this.schedule();
    }, SAMPLE_MS);
    this.timer.unref();
  }

  private update(delayMs: number): void {
    this.delayMs = Math.round(delayMs);
    const overloaded = delayMs > this.thresholdMs;
    if (overloaded === this.overloaded) return;
    this.overloaded = overloaded;
    this.emit("change", this.state());
  }
}
