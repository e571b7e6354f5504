/**
 * One rate limit per partner for the whole fleet. Behind a load balancer a
 * partner's calls spread over every gateway; limits kept per process would
 * let it through at N times its limit. So the calls also draw on a bucket
 * every gateway shares (in Redis: one script, one round trip).
 *
 * - The gateway's own bucket is checked first, without a round trip: a
 *   gateway that alone sees more than the limit refuses at once (the shared
 *   bucket would refuse those calls too), so an abusive partner does not
 *   cost Redis a call per refusal.
 * - Tokens are taken from the shared bucket in small leases, not one per
 *   call: a round trip takes up to `leaseSize(limit)` tokens (about 50 ms of
 *   the partner's rate, at most a tenth of its burst, at least 1), and the
 *   gateway's next calls for that partner spend them without a round trip.
 *   Calls that find the lease empty while a round trip for it is out wait
 *   for that one rather than sending their own; if it does not bring enough
 *   for them all, the next one takes a token for each call still waiting
 *   (spent at once, so never held). Every call still spends a
 *   token the shared bucket gave out, so the fleet stays within the limit
 *   but for the tokens leased and not yet spent: over any interval a fleet
 *   of N gateways lets through at most N × (lease − 1) calls more than the
 *   bucket alone would, and a gateway that runs dry may refuse while another
 *   still holds up to lease − 1 of the partner's tokens. With a lease of 1
 *   (a limit of at most 20 calls a second, or a burst under 20) every call takes
 *   its own token, exactly.
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

/** What one round trip to the shared bucket took. */
export interface SharedTake {
  /** Tokens taken: between 1 and the number asked for, or 0 when none was free. */
  readonly taken: number;
  /** When none was taken, milliseconds until one is free; otherwise 0. */
  readonly waitMs: number;
}

/** A token bucket per partner, shared by every gateway. */
export interface SharedTokenBucket {
  /** Takes up to `count` (at least 1) of `partnerId`'s tokens, as many as are free. */
  take(partnerId: string, limit: RateLimit, count: number): Promise<SharedTake>;
}

/** How long a call waits for the shared bucket before it is limited by the gateway's own. */
const SHARED_WAIT_MS = 250;
/** How long after a failure calls skip the shared bucket. */
const SKIP_AFTER_FAILURE_MS = 1000;
/** A lease is at most this much of the partner's sustained rate... */
const LEASE_MS = 50;
/** ...and at most this share of its burst. */
const LEASE_BURST_SHARE = 10;
/** Partners with a lease at most. */
const MAX_LEASES = 100_000;

/** Tokens a gateway takes from the shared bucket per round trip: about 50 ms of the rate, at most a tenth of the burst, at least 1. */
export function leaseSize(limit: RateLimit): number {
  return Math.max(1, Math.min(Math.ceil((limit.perSecond * LEASE_MS) / 1000), Math.floor(limit.burst / LEASE_BURST_SHARE)));
}

/** A partner's tokens leased from the shared bucket and not spent yet. */
interface Lease {
  tokens: number;
  /** The round trip out for more: resolves to 0, or to the ms until a token is free when none was. */
  refill: Promise<number> | undefined;
  /** Calls waiting for a token from a round trip. */
  waiting: number;
}

export class FleetRateLimiter implements CallLimiter {
  private readonly local: RateLimiter;
  private readonly leases = new Map<string, Lease>();
  private readonly leaseSize: number;
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
    this.leaseSize = leaseSize(limit);
    this.unavailable = new ConditionLog(log, "fleet_rate_limit", {
      bad: "the fleet-wide rate limit is unavailable (Redis did not answer): each gateway limits partners on its own until it is back",
      good: "the fleet-wide rate limit is available again",
      level: "warn",
    });
  }

  /** Settles at once (no promise) when the call is paid from the gateway's lease or the shared bucket is skipped. */
  charge(partnerId: string): void | Promise<void> {
    if (this.limit.perSecond <= 0) return;
    this.local.take(partnerId);
    const lease = this.leases.get(partnerId);
    if (lease !== undefined && lease.tokens >= 1) {
      lease.tokens -= 1;
      return;
    }
    if (Date.now() < this.skipSharedUntil) return;
    return this.chargeShared(partnerId, lease ?? this.newLease(partnerId));
  }

  private newLease(partnerId: string): Lease {
    // Bounded like the gateway's own buckets: past it the lease made longest ago goes.
    if (this.leases.size >= MAX_LEASES) this.leases.delete(this.leases.keys().next().value!);
    const lease: Lease = { tokens: 0, refill: undefined, waiting: 0 };
    this.leases.set(partnerId, lease);
    return lease;
  }

  private async chargeShared(partnerId: string, lease: Lease): Promise<void> {
    lease.waiting++;
    try {
      for (;;) {
        lease.refill ??= this.refill(lease, partnerId);
        const retryAfterMs = await lease.refill;
        if (retryAfterMs > 0) {
          this.onLimited(partnerId);
          throw rateLimited(this.limit, Math.ceil(retryAfterMs / 1000));
        }
        if (lease.tokens >= 1) {
          lease.tokens -= 1;
          return;
        }
        // The shared bucket failed (the call goes on under the gateway's own limit), or other calls spent the lease first.
        if (Date.now() < this.skipSharedUntil) return;
      }
    } finally {
      lease.waiting--;
    }
  }

  /**
   * One round trip for more tokens: a lease, or one token for each call
   * waiting if there are more (they spend them at once, so no more is held).
   * Never rejects: a failure is recorded, and resolves to 0 with no tokens.
   */
  private async refill(lease: Lease, partnerId: string): Promise<number> {
    // While one call probes a shared bucket that failed, the others do not wait for it too.
    if (this.failing) this.skipSharedUntil = Date.now() + this.waitMs;
    try {
      let took: SharedTake;
      try {
        took = await this.takeShared(partnerId, Math.max(this.leaseSize, lease.waiting));
      } catch (e) {
        this.onSharedError();
        this.failing = true;
        this.skipSharedUntil = Date.now() + SKIP_AFTER_FAILURE_MS;
        this.unavailable.report(true, "", { reason: (e as Error).message });
        return 0;
      }
      if (this.failing) {
        this.failing = false;
        this.skipSharedUntil = 0;
      }
      this.unavailable.report(false);
      lease.tokens += took.taken;
      return took.taken > 0 ? 0 : Math.max(1, took.waitMs);
    } finally {
      lease.refill = undefined;
    }
  }

  private takeShared(partnerId: string, count: number): Promise<SharedTake> {
    const taken = this.shared.take(partnerId, this.limit, count);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.waitMs} ms`)), this.waitMs);
    });
    // Whichever loses, its outcome is moot.
    taken.catch(() => {});
    return Promise.race([taken, late]).finally(() => clearTimeout(timer));
  }
}
