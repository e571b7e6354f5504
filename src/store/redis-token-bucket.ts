/**
 * The shared token buckets of the fleet-wide rate limit, in Redis. One bucket
 * per partner, a hash at `<prefix>rate:<partner id>` holding its tokens and
 * when they were counted; a Lua script refills and takes tokens (a gateway's
 * lease, see `fleet-rate-limiter.ts`) in one round trip, atomically, so
 * gateways never race each other. The time is Redis's
 * own (`TIME`), so the gateways' clocks do not matter; a clock that steps back
 * (a promoted replica's) never adds tokens. A bucket expires once it would be
 * full again, so idle partners cost nothing.
 *
 * The script touches one key: on a Redis Cluster it runs on that key's master.
 */
import { createHash } from "node:crypto";
import type { RateLimit } from "../gateway/rate-limiter.js";
import type { SharedTake, SharedTokenBucket } from "../gateway/fleet-rate-limiter.js";
import type { RedisConnection } from "./redis-connection.js";

/**
 * KEYS[1] the bucket; ARGV[1] tokens per second, ARGV[2] burst, ARGV[3] tokens wanted.
 * Returns {taken, wait}: as many tokens as are free up to the number wanted,
 * or none and the ms until one is free.
 */
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1])
local at = tonumber(bucket[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
local taken = 0
local wait = 0
if tokens >= 1 then
  taken = math.min(want, math.floor(tokens))
  tokens = tokens - taken
else
  wait = math.max(1, math.ceil((1 - tokens) * 1000 / rate))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', at)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {taken, wait}
`;

const TAKE_SHA = createHash("sha1").update(TAKE).digest("hex");

export class RedisTokenBucket implements SharedTokenBucket {
  constructor(
    private readonly redis: RedisConnection,
    /** The gateway's key prefix (`REDIS_KEY_PREFIX`); buckets go under `<prefix>rate:`. */
    private readonly prefix: string,
  ) {}

  /** The Redis key of a partner's bucket. */
  keyOf(partnerId: string): string {
    return `${this.prefix}rate:${partnerId}`;
  }

  async take(partnerId: string, limit: RateLimit, count: number): Promise<SharedTake> {
    const key = this.keyOf(partnerId);
    const want = Math.max(1, Math.floor(count));
    let answer: unknown;
    try {
      answer = await this.redis.evalsha(TAKE_SHA, 1, key, limit.perSecond, limit.burst, want);
    } catch (e) {
      // The script is sent in full once per node (at start, after a restart or failover).
      if (!(e as Error).message.startsWith("NOSCRIPT")) throw e;
      answer = await this.redis.eval(TAKE, 1, key, limit.perSecond, limit.burst, want);
    }
    const [taken, waitMs] = answer as [number, number];
    return { taken: Number(taken), waitMs: Number(waitMs) };
  }
}
