/**
 * A private Redis Cluster for tests: three masters and three replicas, six
 * `redis-server` processes started from the installed binary, each in its own
 * directory, joined with `redis-cli --cluster create`. A node's cluster bus
 * listens on its port + 10000, so nodes take ports up to 55535 whose bus port
 * is free as well. Only the processes started here are ever stopped, by pid.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

const BUS_PORT_OFFSET = 10_000;
const NODE_TIMEOUT_MS = 2000;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/** A port at most 55535 that is free, and whose bus port is free too. */
async function freeNodePort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    if (taken.has(port) || taken.has(port + BUS_PORT_OFFSET)) continue;
    if ((await canListen(port)) && (await canListen(port + BUS_PORT_OFFSET))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error("no free port pair for a cluster node");
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A short-lived connection to one node, for looking at the cluster from outside the gateway. */
async function withNode<T>(port: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500, commandTimeout: 1000 });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

export interface ClusterNodeProcess {
  readonly port: number;
  readonly pid: number;
}

export interface RedisClusterOptions {
  /** Keep an append-only file on every node, synced this way; none by default. */
  readonly appendfsync?: "always" | "everysec" | "no";
}

export class RedisCluster {
  private readonly children = new Map<number, ChildProcess>();

  private constructor(
    private readonly dir: string,
    private readonly options: RedisClusterOptions,
  ) {}

  /** Starts six nodes and creates the cluster (3 masters, 1 replica each); waits until every node says `cluster_state:ok`. */
  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const cluster = new RedisCluster(mkdtempSync(join(tmpdir(), "gw-cluster-")), options);
    try {
      const taken = new Set<number>();
      for (let i = 0; i < 6; i++) await cluster.startNode(await freeNodePort(taken));
      const create = spawnSync("redis-cli", ["--cluster", "create", ...cluster.ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "1", "--cluster-yes"], {
        encoding: "utf8",
        timeout: 30_000,
      });
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
      await cluster.waitUntilHealthy();
      return cluster;
    } catch (e) {
      await cluster.stop();
      throw e;
    }
  }

  /** Every node's port, in start order. */
  get ports(): number[] {
    return [...this.children.keys()];
  }

  /** The nodes started here and still running. */
  get running(): ClusterNodeProcess[] {
    return [...this.children].filter(([, c]) => c.exitCode === null && c.signalCode === null).map(([port, c]) => ({ port, pid: c.pid! }));
  }

  /** `REDIS_CLUSTER_NODES` for this cluster: every node as a seed. */
  get seeds(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(",");
  }

  private async startNode(port: number): Promise<void> {
    const dir = join(this.dir, String(port));
    mkdirSync(dir);
    const { appendfsync } = this.options;
    const persistence = appendfsync === undefined ? ["--appendonly", "no"] : ["--appendonly", "yes", "--appendfsync", appendfsync];
    const child = spawn(
      "redis-server",
      [
        "--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", dir,
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", String(NODE_TIMEOUT_MS),
      ],
      { cwd: dir, stdio: "ignore" },
    );
    const failed = new Promise<never>((_, reject) => {
      child.once("error", (e) => reject(new Error(`cannot start redis-server (apt-get install redis-server): ${e.message}`)));
      child.once("exit", (code) => reject(new Error(`redis-server on ${port} exited (${code}) before it listened`)));
    });
    failed.catch(() => {});
    this.children.set(port, child);
    await Promise.race([until(`node ${port} listening`, 5000, async () => ((await withNode(port, (r) => r.ping())) === "PONG" ? true : undefined)), failed]);
  }

  /** Waits until every running node reports `cluster_state:ok`, and every running replica is linked to its master. */
  async waitUntilHealthy(timeoutMs = 20_000): Promise<void> {
    await until("cluster_state:ok on every node", timeoutMs, async () => {
      for (const { port } of this.running) {
        const info = await withNode(port, (r) => r.cluster("INFO") as Promise<string>);
        if (!info.includes("cluster_state:ok")) return undefined;
        const replication = await withNode(port, (r) => r.info("replication"));
        if (replication.includes("role:slave") && !replication.includes("master_link_status:up")) return undefined;
      }
      return true;
    });
  }

  /** The port of the master serving `key`'s slot, as a running node sees it. */
  async masterOf(key: string): Promise<number> {
    const { port: asked } = this.running[0]!;
    return withNode(asked, async (r) => {
      const slot = (await r.cluster("KEYSLOT", key)) as number;
      const master = (await r.cluster("SLOTS")).find(([from, to]) => slot >= from && slot <= to)?.[2];
      if (master === undefined) throw new Error(`slot ${slot} is not served`);
      return master[1];
    });
  }

  /** The slot of `key` (`CLUSTER KEYSLOT`). */
  keySlot(key: string): Promise<number> {
    return withNode(this.running[0]!.port, (r) => r.cluster("KEYSLOT", key) as Promise<number>);
  }

  /** Ports of the running masters. */
  async masters(): Promise<number[]> {
    const masters: number[] = [];
    for (const { port } of this.running) {
      const role = await withNode(port, (r) => r.call("ROLE") as Promise<unknown[]>);
      if (role[0] === "master") masters.push(port);
    }
    return masters;
  }

  /** The port of a running replica of the master on `masterPort`. */
  async replicaOf(masterPort: number): Promise<number> {
    for (const { port } of this.running) {
      const role = await withNode(port, (r) => r.call("ROLE") as Promise<unknown[]>);
      if (role[0] === "slave" && Number(role[2]) === masterPort) return port;
    }
    throw new Error(`no running replica of ${masterPort}`);
  }

  /** The slots the master on `masterPort` serves. */
  async slotsOf(masterPort: number): Promise<Set<number>> {
    const slots = new Set<number>();
    const ranges = await withNode(this.running[0]!.port, (r) => r.cluster("SLOTS"));
    for (const [from, to, master] of ranges) if (master?.[1] === masterPort) for (let s = from; s <= to; s++) slots.add(s);
    return slots;
  }

  /** The value of `key` as the replica on `port` has it (READONLY). */
  readOnReplica(port: number, key: string): Promise<string | null> {
    return withNode(port, async (r) => {
      await r.call("READONLY");
      return r.get(key);
    });
  }

  /** Every key on the node at `port` matching `pattern` (SCAN). */
  scan(port: number, pattern: string): Promise<string[]> {
    return withNode(port, async (r) => {
      const found: string[] = [];
      let cursor = "0";
      do {
        const [next, keys] = await r.scan(cursor, "MATCH", pattern, "COUNT", 500);
        cursor = next;
        found.push(...keys);
      } while (cursor !== "0");
      return found;
    });
  }

  /** Freezes a node (SIGSTOP): connections stay open, nothing answers. */
  pause(port: number): void {
    this.children.get(port)?.kill("SIGSTOP");
  }

  unpause(port: number): void {
    this.children.get(port)?.kill("SIGCONT");
  }

  /** Kills a node with SIGKILL and waits until it is gone. */
  async kill(port: number): Promise<void> {
    const child = this.children.get(port);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
  }

  /**
   * Waits until a replica has taken over the slots of a killed master: every
   * running node answers `cluster_state:ok` and none of them names the dead
   * port as a master of slots.
   */
  async waitForFailover(deadPort: number, timeoutMs = 20_000): Promise<void> {
    await until(`a replica promoted in place of ${deadPort}`, timeoutMs, async () => {
      for (const { port } of this.running) {
        const info = await withNode(port, (r) => r.cluster("INFO") as Promise<string>);
        if (!info.includes("cluster_state:ok")) return undefined;
        const ranges = await withNode(port, (r) => r.cluster("SLOTS"));
        if (ranges.some((range) => range[2]?.[1] === deadPort)) return undefined;
      }
      return true;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(
      [...this.children.values()].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill("SIGCONT");
        child.kill("SIGKILL");
        await exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}
