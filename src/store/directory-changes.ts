/**
 * Change notices for the Redis directory. Every write through
 * `RedisDirectoryStore` publishes a notice on one channel per key prefix, in
 * the same transaction as the write; gateways subscribe and drop their cached
 * lookups, so a change made with the admin command applies at once rather
 * than after the cache TTL.
 *
 * The channel is a shard channel (`SPUBLISH`/`SSUBSCRIBE`, Redis 7) named
 * inside the directory's hash tag: on a Redis Cluster it lives on the master
 * that holds the directory, and only that shard carries the notices (classic
 * pub/sub would copy every message to every node). When that master fails,
 * the watcher subscribes again on the replica that replaced it; on one Redis
 * ioredis subscribes again by itself after a reconnect. (ioredis 6's own
 * sharded subscribers, `shardedSubscribers: true`, deliver across failovers
 * too, but announce a new subscription before it holds, and repeatedly while
 * the master is down: the gateway would drop its cache while Redis is away.)
 *
 * The notices only make changes apply sooner: a gateway that misses one (its
 * subscription was reconnecting) still sees the change when the TTL expires,
 * and it forgets its cache whenever a lost subscription is back. Not before:
 * while Redis is away the cache is what keeps calls going.
 */
import type { Cluster, Redis } from "ioredis";
import { keySlot } from "./key-slot.js";
import { closeConnection, connectClusterNode, duplicateConnection, isCluster, type RedisConnection } from "./redis-connection.js";

/** The channel on which writes under `keyPrefix` are announced. */
export function directoryChangesChannel(keyPrefix: string): string {
  return `${keyPrefix}changed`;
}

export interface DirectoryWatch {
  close(): Promise<void>;
}

export type ChangeReason = "written" | "reconnected";

/**
 * Calls `onChange` whenever a directory write under `keyPrefix` is announced,
 * and whenever the subscription comes back after it was lost. The
 * subscription has a connection of its own (a subscribed connection cannot
 * run other commands), with the command timeout of `redis`: a Redis that does
 * not answer fails the subscription instead of holding the start-up.
 */
export async function watchDirectoryChanges(redis: RedisConnection, keyPrefix: string, onChange: (why: ChangeReason) => void): Promise<DirectoryWatch> {
  const channel = directoryChangesChannel(keyPrefix);
  if (isCluster(redis)) {
    const watch = new ShardChannelWatch(redis, channel, onChange);
    await watch.start();
    return watch;
  }
  const subscriber = (await duplicateConnection(redis)) as Redis;
  subscriber.on("smessage", (ch: string) => ch === channel && onChange("written"));
  try {
    await subscriber.ssubscribe(channel);
  } catch (e) {
    subscriber.disconnect();
    throw e;
  }
  subscriber.on("ready", () => onChange("reconnected"));
  return {
    async close() {
      await closeConnection(subscriber);
    },
  };
}

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 1000;

/**
 * A shard channel subscription on a Redis Cluster: one connection to the
 * master serving the channel's slot, found anew from `CLUSTER SLOTS` each
 * time the connection ends (the master failed) or the server drops the
 * subscription (the slot moved), retried with a growing pause until it holds.
 */
class ShardChannelWatch implements DirectoryWatch {
  private subscriber: Redis | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly channel: string,
    private readonly onChange: (why: ChangeReason) => void,
  ) {}

  /** Subscribes; fails when the channel's master cannot be subscribed to now. */
  async start(): Promise<void> {
    this.subscriber = await this.subscribe();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    await subscriber?.quit().catch(() => subscriber.disconnect());
  }

  private async subscribe(): Promise<Redis> {
    // Replaced, not reconnected, when it ends: the channel's master may be elsewhere by then.
    const subscriber = await connectClusterNode(this.cluster, await this.owner());
    subscriber.on("smessage", (ch: string) => ch === this.channel && this.onChange("written"));
    try {
      await subscriber.ssubscribe(this.channel);
    } catch (e) {
      subscriber.disconnect();
      throw e;
    }
    // The connection ended (its node failed), or the server dropped the
    // subscription because the slot moved (ioredis reports that as `moved`).
    subscriber.once("end", () => this.lost(subscriber));
    subscriber.once("moved", () => this.lost(subscriber));
    return subscriber;
  }

  private lost(subscriber: Redis): void {
    if (this.closed || subscriber !== this.subscriber) return;
    this.subscriber = undefined;
    subscriber.disconnect();
    this.retry(FIRST_RETRY_MS);
  }

  private retry(pause: number): void {
    this.retryTimer = setTimeout(() => {
      this.subscribe().then(
        (subscriber) => {
          if (this.closed) {
            subscriber.disconnect();
            return;
          }
          this.subscriber = subscriber;
          this.onChange("reconnected");
        },
        () => {
          if (!this.closed) this.retry(Math.min(MAX_RETRY_MS, pause * 2));
        },
      );
    }, pause);
    this.retryTimer.unref();
  }

  /** The master serving the channel's slot, as a node of the cluster sees it now. */
  private async owner(): Promise<{ host: string; port: number }> {
    const slot = keySlot(this.channel);
    const ranges = await this.cluster.cluster("SLOTS");
    const master = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
    if (master === undefined) throw new Error(`no master serves slot ${slot}`);
    return { host: master[0], port: master[1] };
  }
}
