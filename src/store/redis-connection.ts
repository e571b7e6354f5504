/**
 * Redis connections configured for a request path that must fail fast:
 *
 * - no offline queue: a command while disconnected fails at once instead of
 *   waiting for Redis to come back;
 * - a command timeout: a Redis that accepts connections but does not answer
 *   (frozen, overloaded) fails the command after it; event-loop lag alone
 *   does not (see lag-tolerant-timeout.ts);
 * - no retries and no re-sending: commands in flight when the connection drops
 *   fail right then, and are never sent again after a reconnect. A caller that
 *   was told `service_unavailable` must not have its `SET NX` run later;
 * - reconnection in the background, so the gateway recovers by itself when
 *   Redis is back.
 */
import { Redis } from "ioredis";
import { useLagTolerantCommandTimeout } from "./lag-tolerant-timeout.js";

export interface RedisConnectionOptions {
  /** Per-command timeout; the gateway answers `service_unavailable` past it. */
  readonly commandTimeoutMs?: number;
}

export async function connectRedis(url: string, options: RedisConnectionOptions = {}): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 1000,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    reconnectOnError: () => false,
  });
  useLagTolerantCommandTimeout(redis, options.commandTimeoutMs ?? 1000);
  // Without a listener ioredis reports every failed reconnect as an unhandled
  // error event; the request path reports outages through its own errors.
  let lastError: Error | undefined;
  redis.on("error", (e: Error) => {
    lastError = e;
  });
  try {
    await redis.connect();
  } catch (e) {
    // Stop reconnecting, and report why the connection failed rather than
    // that it closed.
    redis.disconnect();
    throw lastError ?? e;
  }
  return redis;
}

/** A Redis URL fit for messages and logs: its password, if any, masked. */
export function displayRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}
