/**
 * Change notices for the Redis directory. Every write through
 * `RedisDirectoryStore` publishes a notice on one channel per key prefix;
 * gateways subscribe and drop their cached lookups, so a change made with the
 * admin command applies at once rather than after the cache TTL.
 *
 * The notices only make changes apply sooner: a gateway that misses one (its
 * subscription was reconnecting) still sees the change when the TTL expires,
 * and it forgets its cache whenever the subscription comes back.
 */
import type { Redis } from "ioredis";

/** The channel on which writes under `keyPrefix` are announced. */
export function directoryChangesChannel(keyPrefix: string): string {
  return `${keyPrefix}changed`;
}

export interface DirectoryWatch {
  close(): Promise<void>;
}

/**
 * Calls `onChange` whenever a directory write under `keyPrefix` is announced,
 * and whenever the subscription (re)connects. `redis` is duplicated: a
 * subscribed connection cannot run other commands.
 */
export async function watchDirectoryChanges(
  redis: Redis,
  keyPrefix: string,
  onChange: (why: "written" | "reconnected") => void,
): Promise<DirectoryWatch> {
  const subscriber = redis.duplicate();
  subscriber.on("error", () => {});
  subscriber.on("message", () => onChange("written"));
  subscriber.on("ready", () => onChange("reconnected"));
  await subscriber.connect();
  await subscriber.subscribe(directoryChangesChannel(keyPrefix));
  return {
    async close() {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}
