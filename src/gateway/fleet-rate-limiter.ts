/**
 * One rate limit per partner for the whole fleet. Behind a load balancer a
 * partner's calls spread over every gateway; limits kept per process would
 * let it through at N times its limit. So each call also takes a token from
 * a bucket every gateway shares (in Redis: one script, one round trip).
 *
 * - The gateway's own bucket is checked first, without a round trip: a
 *   gateway that alone sees more than the limit refuses at once (the shared
 *   bucket would refuse those calls too), so an abusive partner does not
 *   cost Redis a call per refusal.
 * - When the shared bucket does not answer (Redis unreachable, or slower than
 *   `waitMs`), the call is limited by the gateway's own bucket only: searches
 *   and lookups go on, each gateway enforcing the limit on its share of the
 *   traffic, as a gateway without Redis would. Bookings need Redis for their
 *   idempotency claim anyway, and fail closed there. For a second after such
 *   a failure calls do not wait for the shared bucket; then one call tries it
 *   again while the others go on without it, so a frozen Redis costs one slow
 *   call a second, not one per call. The gateway logs when the shared limit is
 *   lost and when it is back.
 */
import { ConditionLog } from "../observability/condition-log.js";
import { silentLogger, type Logger } from "../observability/logger.js";
import { rateLimited, RateLimiter, type CallLimiter, type RateLimit } from "./rate-limiter.js";

/** A token bucket per partner, shared by every gateway. */
export interface SharedTokenBucket {
  /** Takes one of `partnerId`'s tokens. 0 when it did; otherwise milliseconds until one is free. */
  take(partnerId: string, limit: RateLimit): Promise<number>;
}

/** How long a call waits for the shared bucket before it is limited by the gateway's own. */
const SHARED_WAIT_MS = 250;
/** How long after a failure calls skip the shared bucket. */
const SKIP_AFTER_FAILURE_MS = 1000;

export class FleetRateLimiter implements CallLimiter {
  private readonly local: RateLimiter;
  private skipSharedUntil = 0;
  /** The shared bucket's last answer failed: the next call to ask it is a probe. */
  private failing = false;
  private readonly unavailable: ConditionLog;

  constructor(
    private readonly limit: RateLimit,
    private readonly shared: SharedTokenBucket,
    log: Logger = silentLogger,
    /** Told of every refusal (metrics). */
    private readonly onLimited: (partnerId: string) => void = () => {},
    /** Told of every failure of the shared bucket (metrics). */
    private readonly onSharedError: () => void = () => {},
    private readonly waitMs = SHARED_WAIT_MS,
  ) {
    this.local = new RateLimiter(limit, onLimited);
    this.unavailable = new ConditionLog(log, "fleet_rate_limit", {
      bad: "the fleet-wide rate limit is unavailable (Redis did not answer): each gateway limits partners on its own until it is back",
      good: "the fleet-wide rate limit is available again",
      level: "warn",
    });
  }

  async charge(partnerId: string): Promise<void> {
    if (this.limit.perSecond <= 0) return;
    this.local.take(partnerId);
    if (Date.now() < this.skipSharedUntil) return;
    // While one call probes a shared bucket that failed, the others do not wait for it too.
    if (this.failing) this.skipSharedUntil = Date.now() + this.waitMs;
    let retryAfterMs: number;
    try {
      retryAfterMs = await this.takeShared(partnerId);
    } catch (e) {
      this.onSharedError();
      this.failing = true;
      this.skipSharedUntil = Date.now() + SKIP_AFTER_FAILURE_MS;
      this.unavailable.report(true, "", { reason: (e as Error).message });
      return;
    }
    if (this.failing) {
      this.failing = false;
      this.skipSharedUntil = 0;
    }
    this.unavailable.report(false);
    if (retryAfterMs > 0) {
      this.onLimited(partnerId);
      throw rateLimited(this.limit, Math.ceil(retryAfterMs / 1000));
    }
  }

  private takeShared(partnerId: string): Promise<number> {
    const taken = this.shared.take(partnerId, this.limit);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.waitMs} ms`)), this.waitMs);
    });
    // Whichever loses, its outcome is moot.
    taken.catch(() => {});
    return Promise.race([taken, late]).finally(() => clearTimeout(timer));
  }
}
