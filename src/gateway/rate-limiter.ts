/**
 * Per-partner rate limits. Every call (unary, stream, session operation) is
 * charged through a `CallLimiter` before it is relayed. `RateLimiter` is the
 * token bucket kept in process: the whole limit of a gateway that keeps its
 * data in memory, and with Redis the first check of every call and the
 * fallback when Redis cannot answer (see `fleet-rate-limiter.ts`).
 */
import { GatewayError } from "../errors.js";

export interface RateLimit {
  /** Sustained calls per second; 0 disables limiting. */
  readonly perSecond: number;
  /** Calls allowed in a burst above the sustained rate. */
  readonly burst: number;
}

/** Charges one call to a partner's limit; fails with `rate_limited` past it. */
export interface CallLimiter {
  charge(partnerId: string): void | Promise<void>;
}

/** The `rate_limited` error for a limit, with the wait until a token is free. */
export function rateLimited(limit: RateLimit, retryAfterSeconds: number): GatewayError {
  return GatewayError.of("rate_limited", `rate limit of ${limit.perSecond} calls per second exceeded`, {
    retryAfterSeconds: Math.max(1, retryAfterSeconds),
  });
}

/** Partners with a bucket at most. */
const MAX_BUCKETS = 100_000;

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class RateLimiter implements CallLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    /** Told of every refusal (metrics). */
    private readonly onLimited: (partnerId: string) => void = () => {},
  ) {}

  charge(partnerId: string): void {
    this.take(partnerId);
  }

  /** Takes one token for `partnerId`, or throws `rate_limited` with the seconds until one is free. */
  take(partnerId: string, now = Date.now()): void {
    const { perSecond, burst } = this.limit;
    if (perSecond <= 0) return;
    let bucket = this.buckets.get(partnerId);
    if (bucket === undefined) {
      // Bounded: past it the bucket made longest ago goes (partners exist only once provisioned, so this is far off).
      if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: burst, updatedAt: now };
      this.buckets.set(partnerId, bucket);
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * perSecond);
      bucket.updatedAt = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    this.onLimited(partnerId);
    throw rateLimited(this.limit, Math.ceil((1 - bucket.tokens) / perSecond));
  }
}
