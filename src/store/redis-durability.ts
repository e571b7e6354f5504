/**
 * Whether the Redis behind the gateway keeps its data. Idempotency records
 * and the directory live there: a Redis that restarts without them replays
 * nothing (a retried booking is sent to the platform again, safe only because
 * the platform de-duplicates on `idempotency_key`) and knows no partner (every
 * call answers `service_unavailable` until the directory is imported again).
 * Bookings are durable with an append-only file: `appendfsync always` loses
 * nothing, `everysec` up to about a second of writes when the host itself
 * fails (a crash of Redis alone loses nothing, the writes are in the kernel).
 *
 * The gateway reads the settings once at start and says what it found. A
 * managed Redis may refuse `CONFIG`; that is a warning (durability is then
 * unverified), not fatal.
 */
import type { Redis } from "ioredis";
import type { Logger } from "../observability/logger.js";
import { isCluster, type RedisConnection } from "./redis-connection.js";

export interface RedisPersistence {
  /** `yes` or `no`. */
  readonly appendonly: string;
  /** `always`, `everysec` or `no`. */
  readonly appendfsync: string;
}

export type DurabilityVerdict =
  | { readonly kind: "unknown"; readonly reason: string }
  | { readonly kind: "durable" | "not_durable"; readonly persistence: RedisPersistence };

async function readPersistence(node: Redis): Promise<RedisPersistence> {
  const reply = (await node.call("CONFIG", "GET", "appendonly", "appendfsync")) as string[];
  const settings = new Map<string, string>();
  for (let i = 0; i + 1 < reply.length; i += 2) settings.set(reply[i]!, reply[i + 1]!);
  return { appendonly: settings.get("appendonly") ?? "", appendfsync: settings.get("appendfsync") ?? "" };
}

/** How much a setting keeps: 0 no append-only file, 1 flushing left to the system, 2 durable. */
function strength(p: RedisPersistence): number {
  if (p.appendonly !== "yes") return 0;
  return p.appendfsync === "always" || p.appendfsync === "everysec" ? 2 : 1;
}

/**
 * Reads the persistence settings, and logs whether bookings survive a Redis
 * restart. On a Redis Cluster every node is read (a replica becomes the
 * master after a failover) and the weakest one is reported, by address.
 */
export async function checkRedisDurability(redis: RedisConnection, log: Logger): Promise<DurabilityVerdict> {
  const nodes = isCluster(redis) ? redis.nodes("all") : [redis];
  let weakest: { persistence: RedisPersistence; node: string | undefined } | undefined;
  for (const node of nodes) {
    const address = isCluster(redis) ? `${node.options.host}:${node.options.port}` : undefined;
    let persistence: RedisPersistence;
    try {
      persistence = await readPersistence(node);
    } catch (e) {
      const reason = (e as Error).message;
      // A warning: durability is then unverified, and the operator has to check it.
      log.warn(
        { reason, ...(address !== undefined ? { node: address } : {}) },
        "cannot read the Redis persistence settings (CONFIG GET refused, as managed Redis services do): " +
          "make sure this Redis keeps an append-only file (appendonly yes, appendfsync always or everysec), or bookings are not durable",
      );
      return { kind: "unknown", reason };
    }
    if (weakest === undefined || strength(persistence) < strength(weakest.persistence)) weakest = { persistence, node: address };
  }
  const { persistence, node } = weakest!;
  const fields = { appendonly: persistence.appendonly, appendfsync: persistence.appendfsync, ...(node !== undefined ? { node } : {}) };
  if (persistence.appendonly !== "yes") {
    log.warn(
      fields,
      "bookings are not durable: Redis keeps no append-only file (appendonly no). After a Redis restart stored booking results are gone " +
        "(a retry is sent to the platform again) and so is the directory (every call answers 503 until it is imported again). " +
        "Set appendonly yes with appendfsync always or everysec",
    );
    return { kind: "not_durable", persistence };
  }
  if (strength(persistence) < 2) {
    log.warn(
      fields,
      `bookings are not durable: appendfsync ${persistence.appendfsync} leaves flushing to the operating system, ` +
        "and a host failure loses the writes of the last tens of seconds. Set appendfsync always or everysec",
    );
    return { kind: "not_durable", persistence };
  }
  log.info(fields, "Redis keeps an append-only file: stored bookings and the directory survive a Redis restart");
  return { kind: "durable", persistence };
}
