/**
 * One log line per change of a condition an operator acts on (Redis lost,
 * a platform unreachable, the gateway overloaded), never one per request:
 * a condition that fails for every call of an outage still logs once when
 * it starts and once when it ends.
 *
 * The line names the condition in `condition` and, for a keyed condition (one
 * per platform, say), the key in `subject`, so alerts can match on them.
 */
import type { Logger } from "./logger.js";

export interface ConditionMessages {
  /** Logged when the condition starts, at `level` (default `error`). */
  readonly bad: string;
  /** Logged when it ends, at `warn`, so that both show at `LOG_LEVEL=warn`. */
  readonly good: string;
  readonly level?: "error" | "warn";
}

export class ConditionLog {
  private readonly bad = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly condition: string,
    private readonly messages: ConditionMessages,
  ) {}

  /**
   * Records whether the condition holds for `subject`; logs only a change.
   * `fields` must hold no secret. `message` replaces the start message when
   * the caller knows more of the cause this time.
   */
  report(holds: boolean, subject = "", fields: Record<string, unknown> = {}, message?: string): void {
    if (holds === this.bad.has(subject)) return;
    const line = { condition: this.condition, ...(subject === "" ? {} : { subject }), ...fields };
    if (holds) {
      this.bad.add(subject);
      this.log[this.messages.level ?? "error"](line, message ?? this.messages.bad);
    } else {
      this.bad.delete(subject);
      this.log.warn(line, this.messages.good);
    }
  }
}
