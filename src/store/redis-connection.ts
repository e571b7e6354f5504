/**
 * Redis connections configured for a request path that must fail fast, to
 * one Redis (`REDIS_URL`) or to a Redis Cluster (`REDIS_CLUSTER_NODES`):
 *
 * - no offline queue: a command while disconnected fails at once instead of
 *   waiting for Redis to come back;
 * - a command timeout: a Redis that accepts connections but does not answer
 *   (frozen, overloaded) fails the command after it; event-loop lag alone
 *   does not (see lag-tolerant-timeout.ts);
 * - no retries and no re-sending of a command that may have run: commands in
 *   flight when a connection drops fail right then, and are never sent again
 *   after a reconnect or a failover. A caller that was told
 *   `service_unavailable` must not have its `SET NX` run later;
 * - reconnection in the background, so the gateway recovers by itself when
 *   Redis (or a promoted replica) is back.
 *
 * The rest of the gateway sees `RedisConnection`, the command surface that
 * ioredis's `Redis` and `Cluster` share, and never which of the two it has.
 */
import { lookup } from "node:dns";
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { maskRedisCredentials, type RedisClusterConfig } from "../config.js";
import { useLagTolerantCommandTimeout } from "./lag-tolerant-timeout.js";
import { batchWritesPerTick } from "./tick-batched-writes.js";

/** One Redis or a Redis Cluster: their commands, transactions and pipelines are the same. */
export type RedisConnection = Redis | Cluster;

/** Where the gateway's Redis is: what the configuration names. */
export type RedisTarget = { readonly kind: "node"; readonly url: string } | { readonly kind: "cluster"; readonly cluster: RedisClusterConfig };

export interface RedisConnectionOptions {
  /** Per-command timeout; the gateway answers `service_unavailable` past it. */
  readonly commandTimeoutMs?: number;
}

/** The Redis a configuration names, if any. */
export function redisTargetOf(config: { readonly redisUrl: string | undefined; readonly redisCluster: RedisClusterConfig | undefined }): RedisTarget | undefined {
  if (config.redisCluster !== undefined) return { kind: "cluster", cluster: config.redisCluster };
  if (config.redisUrl !== undefined) return { kind: "node", url: config.redisUrl };
  return undefined;
}

/** The variable that names a target, for messages that tell the operator what to fix. */
export function redisVariableOf(target: RedisTarget): "REDIS_URL" | "REDIS_CLUSTER_NODES" {
  return target.kind === "node" ? "REDIS_URL" : "REDIS_CLUSTER_NODES";
}

/** A target fit for messages and logs: no password. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.kind === "node") return `Redis at ${maskRedisCredentials(target.url)}`;
  return `the Redis Cluster at ${target.cluster.nodes.map((n) => (n.host.includes(":") ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(",")}`;
}

export function isCluster(redis: RedisConnection): redis is Cluster {
  return redis instanceof Cluster;
}

/** Connects to the target; fails with the reason when it cannot be used. */
export function connectTarget(target: RedisTarget, options: RedisConnectionOptions = {}): Promise<RedisConnection> {
  return target.kind === "node" ? connectRedis(target.url, options) : connectRedisCluster(target.cluster, options);
}

/** What every connection to a Redis node gets, alone or as a member of a cluster. */
function nodeOptions(): RedisOptions {
  return {
    // The command timeout is not ioredis's `commandTimeout` (a plain timer
    // that event-loop lag trips) but `withCommandTimeout` below.
    connectTimeout: 1000,
    // Commands in flight when a connection drops fail at once (no retry per
    // request), and are not sent again after the reconnect: they may have run.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    reconnectOnError: () => false,
  };
}

export async function connectRedis(url: string, options: RedisConnectionOptions = {}): Promise<Redis> {
  const redis = new Redis(url, {
    ...nodeOptions(),
    lazyConnect: true,
    enableOfflineQueue: false,
    // Batched by `batchWritesPerTick` instead (see store/tick-batched-writes.ts).
    enableAutoPipelining: false,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
  });
  withCommandTimeout(redis, options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
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
  if (await isClusterNode(redis)) {
    redis.disconnect();
    throw new Error("this Redis is a node of a Redis Cluster (cluster_enabled:1): name the cluster's nodes in REDIS_CLUSTER_NODES instead of REDIS_URL");
  }
  return redis;
}

/** True when INFO says cluster mode: keys outside its slots would only get MOVED. A Redis that refuses INFO is taken as it is. */
async function isClusterNode(redis: Redis): Promise<boolean> {
  try {
    return /^cluster_enabled:1\s*$/m.test(await redis.info("cluster"));
  } catch {
    return false;
  }
}

/** How long a cluster may take to report `cluster_state:ok` at start. */
const CLUSTER_READY_TIMEOUT_MS = 5000;

/**
 * The options of a cluster client, each chosen so that no command runs late.
 * ioredis's defaults queue and re-send; what each value here prevents:
 */
function clusterOptions(cluster: RedisClusterConfig): ClusterOptions {
  return {
    lazyConnect: true,
    // No cluster-wide offline queue: while the client has no usable slot map
    // (starting, reconnecting to the whole cluster) a command fails at once,
    // and a command for a node whose connection is down fails at once too.
    // Each node connection keeps a queue of its own that ioredis does not let
    // us turn off: it holds commands only while that connection is being
    // opened (bounded by connectTimeout). A claim the command timeout failed
    // while it waited there is still written when the connection opens; the
    // release the idempotency keeper sends for a failed claim follows it on
    // the same connection and takes it back.
    enableOfflineQueue: false,
    // Ready only once CLUSTER INFO says the cluster is not failing.
    enableReadyCheck: true,
    // Reads go to masters too: a replica lags, and an idempotency record or
    // the directory marker read from one could miss a write just made, so a
    // replay would go unseen and a booking be sent twice.
    scaleReads: "master",
    // `Connection is closed` after a command was written: it may have run.
    // A positive value re-sends it after a failover; 0 fails it instead, and
    // the partner's retry (same idempotency key) is what runs again.
    retryDelayOnFailover: 0,
    // CLUSTERDOWN while a replica is being promoted: the command did not run,
    // but a failover takes seconds; the caller is answered 503 now instead of
    // being held (and it retries with the same key).
    retryDelayOnClusterDown: 0,
    // MOVED and ASK: the node did not run the command; it is sent on to the
    // named node at once, which is how the client finds a promoted replica. A
    // positive delay would park it in a queue that still sends it after the
    // command timeout has already failed it.
    retryDelayOnMoved: 0,
    // TRYAGAIN only answers multi-key commands during a slot migration; the
    // request path sends none (every script and transaction touches one key,
    // or keys of one hash tag), so this only concerns the admin command.
    retryDelayOnTryAgain: 0,
    // A failover or a migration needs one or two redirections; more means the
    // topology is changing under us: fail, and let the retry find it settled.
    maxRedirections: 4,
    // The slot map is refreshed after every MOVED, and at this interval, so
    // that promotions and new replicas are seen without waiting for an error.
    // (ioredis 6 documents 5000 as the default but does not apply one.)
    slotsRefreshInterval: 5000,
    slotsRefreshTimeout: 1000,
    // Losing every node: reconnect in the background, as with one Redis.
    clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    // A turn's commands for one node go as one pipeline. Sent one by one,
    // the second command of a turn for a node whose connection is still
    // being opened (node connections open on first use) is refused as if
    // the connection were closed, since there is no offline queue.
    enableAutoPipelining: true,
    // Hostnames among the seeds are resolved at each (re)connect with the
    // system resolver, so a DNS name for the seed nodes follows their moves.
    // (Nodes found through the slot map are addressed as the cluster announces them.)
    dnsLookup: lookup,
    // Per node. Node connections are never reconnected (a lost node is
    // dropped, and found again through the slot map), so the per-request
    // retry and re-send settings only make sure nothing is queued or sent
    // twice while a connection closes.
    redisOptions: {
      ...nodeOptions(),
      ...(cluster.username !== undefined ? { username: cluster.username } : {}),
      ...(cluster.password !== undefined ? { password: cluster.password } : {}),
      ...(cluster.tls ? { tls: {} } : {}),
    },
  };
}

export async function connectRedisCluster(cluster: RedisClusterConfig, options: RedisConnectionOptions = {}): Promise<Cluster> {
  const client = new Cluster(
    cluster.nodes.map((n) => ({ host: n.host, port: n.port })),
    clusterOptions(cluster),
  );
  withCommandTimeout(client, options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
  // The client's own errors say that every node failed; a node's error says why.
  let nodeError: Error | undefined;
  client.on("error", () => {});
  client.on("node error", (e: Error) => {
    nodeError = e;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no node answered with cluster_state:ok within ${CLUSTER_READY_TIMEOUT_MS / 1000} s`)),
          CLUSTER_READY_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (e) {
    client.disconnect();
    // ioredis reports a refused connection to a node as its closing.
    if (nodeError?.message === "Connection is closed.") throw new Error("no node accepted a connection");
    throw nodeError ?? e;
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** A command to a Redis that does not answer fails after this, and the caller is told `service_unavailable`. */
const DEFAULT_COMMAND_TIMEOUT_MS = 1000;

const commandTimeouts = new WeakMap<RedisConnection, number>();

/**
 * Bounds every command of `redis` (of every node, on a cluster) by
 * `timeoutMs`, with a timer that event-loop lag alone does not trip; a
 * single Redis's connection also writes a turn's commands together.
 */
function withCommandTimeout(redis: RedisConnection, timeoutMs: number): void {
  commandTimeouts.set(redis, timeoutMs);
  if (!isCluster(redis)) {
    useLagTolerantCommandTimeout(redis, timeoutMs);
    batchWritesPerTick(redis);
    return;
  }
  // A cluster sends each command through the connection of the node that
  // serves its slot; nodes come and go with the slot map. (Its writes are
  // batched by its auto-pipelining, see clusterOptions.)
  redis.on("+node", (node: Redis) => useLagTolerantCommandTimeout(node, timeoutMs));
}

/**
 * A second connection like `redis`, for work that must not share its
 * connection (subscriptions, blocking WAITs), with `redis`'s command timeout
 * unless another is given (a WAIT may block longer than a command may take).
 */
export async function duplicateConnection(redis: RedisConnection, commandTimeoutMs?: number): Promise<RedisConnection> {
  const copy: RedisConnection = isCluster(redis) ? redis.duplicate() : redis.duplicate();
  withCommandTimeout(copy, commandTimeoutMs ?? commandTimeouts.get(redis) ?? DEFAULT_COMMAND_TIMEOUT_MS);
  copy.on("error", () => {});
  if (isCluster(copy)) copy.on("node error", () => {});
  try {
    await copy.connect();
  } catch (e) {
    // Stop its reconnecting: nobody holds it.
    copy.disconnect();
    throw e;
  }
  return copy;
}

/**
 * A connection of its own to one node of `cluster` (a subscription to a shard
 * channel must be held on the node that serves it), with the cluster's
 * options and command timeout, that is not reconnected: its caller replaces
 * it, since the node may no longer serve what it wants by then. It is a plain
 * connection, so its writes are batched as a single Redis's are.
 */
export async function connectClusterNode(cluster: Cluster, node: { readonly host: string; readonly port: number }): Promise<Redis> {
  const connection = new Redis({
    ...cluster.options.redisOptions,
    host: node.host,
    port: node.port,
    lazyConnect: true,
    retryStrategy: () => null,
  });
  withCommandTimeout(connection, commandTimeouts.get(cluster) ?? DEFAULT_COMMAND_TIMEOUT_MS);
  connection.on("error", () => {});
  try {
    await connection.connect();
  } catch (e) {
    connection.disconnect();
    throw e;
  }
  return connection;
}

/** Closes a connection, politely if Redis answers. */
export async function closeConnection(redis: RedisConnection): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}
