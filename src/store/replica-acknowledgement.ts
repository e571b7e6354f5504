/**
 * Writes that a replica has acknowledged before the gateway answers. A
 * booking's stored outcome is what answers its retries; if the master that
 * holds it fails right after the partner was answered and its replica had not
 * received the write yet, the promoted replica does not know the booking and
 * a retry would be sent to the platform again. So a finished booking's record
 * is written, then `WAIT 1 <timeout>` asks for one replica's acknowledgement.
 *
 * - Only where the master has replicas (`ROLE`, read at start and again every
 *   30 s): a Redis without any has nothing to wait for.
 * - The write and its WAIT go on connections of their own. WAIT blocks the
 *   connection it is sent on until it returns, so on the shared connection it
 *   would hold up every claim, lookup and rate-limit check behind it.
 * - Writes are batched per master: those that arrive together, or while the
 *   previous WAIT is still out, go in one pipeline followed by one WAIT (which
 *   covers every earlier write of its connection) and are answered together.
 *   Many bookings finishing at once thus wait one timeout, not one each in a
 *   queue behind the others; whether and how long to wait is decided when a
 *   batch is sent, from the deadlines then left.
 * - The timeout is short (`REDIS_REPLICA_ACK_TIMEOUT_MS`, 100 ms) and never
 *   reaches past the caller's deadline: the answer must still go out in time.
 * - When no replica acknowledges in time, the booking is answered anyway (the
 *   platform booked; the record is on the master and normally reaches the
 *   replica moments later; only a failover in that moment loses it, and then
 *   the platform's de-duplication on `idempotency_key` still holds). The
 *   gateway logs a warning when a master stops acknowledging (once, not per
 *   booking) and a line when it acknowledges again, and for the next 5 s
 *   writes to that master without waiting, so a replica that is gone costs
 *   one timeout every 5 s rather than one per booking.
 */
import type { ChainableCommander, Cluster, Redis } from "ioredis";
import type { ReplicaAcknowledgementResult } from "../metrics/metrics.js";
import { ConditionLog } from "../observability/condition-log.js";
import type { Logger } from "../observability/logger.js";
import { keySlot } from "./key-slot.js";
import { closeConnection, duplicateConnection, isCluster, type RedisConnection } from "./redis-connection.js";

/** How often a master's replicas are counted again. */
const ROLE_REFRESH_MS = 30_000;
/** How long a master that did not acknowledge is written to without waiting. */
const QUIET_MS = 5000;
/** What the answer needs after the wait, before the caller's deadline. */
const DEADLINE_MARGIN_MS = 20;

/** What is known of one master. */
interface MasterState {
  /** Connected replicas at the last `ROLE`; undefined until read. */
  replicas: number | undefined;
  checkedAt: number;
  checking: boolean;
  quietUntil: number;
  /** Writes waiting for the next batch. */
  pending: Pending[];
  /** A batch is out (its WAIT blocks the connection); writes arriving meanwhile go in the next. */
  sending: boolean;
}

interface Pending {
  readonly write: KeyWrite;
  readonly direct: () => Promise<unknown>;
  readonly deadline: number | undefined;
  readonly resolve: (written: AcknowledgedResult) => void;
  readonly reject: (error: unknown) => void;
}

export interface AcknowledgedResult {
  readonly result: unknown;
  readonly acknowledgement: ReplicaAcknowledgementResult;
}

/** Adds one write on `key` to a pipeline or transaction. */
export type KeyWrite = (commands: ChainableCommander) => void;

export class ReplicaAcknowledgement {
  private readonly masters = new Map<string, MasterState>();
  /** Per master: a WAIT no replica answered, until one does. */
  private readonly unacknowledged: ConditionLog;

  private constructor(
    /** The gateway's connection: plain writes and `ROLE`. */
    private readonly redis: RedisConnection,
    /** Connection(s) that carry only writes followed by WAIT. */
    private readonly acking: RedisConnection,
    private readonly timeoutMs: number,
    log: Logger,
    /** Told of each write's acknowledgement (metrics). */
    private readonly onResult: (acknowledgement: ReplicaAcknowledgementResult) => void,
  ) {
    this.unacknowledged = new ConditionLog(log, "replica_acknowledgement", {
      bad: "no replica acknowledged a stored booking in time",
      good: "a replica acknowledges stored bookings again",
      level: "warn",
    });
  }

  /** Opens the acknowledging connection and counts every master's replicas. */
  static async start(
    redis: RedisConnection,
    timeoutMs: number,
    log: Logger,
    onResult: (acknowledgement: ReplicaAcknowledgementResult) => void = () => {},
  ): Promise<ReplicaAcknowledgement> {
    // WAIT blocks its connection for up to the timeout: the command timeout there is longer.
    const acks = new ReplicaAcknowledgement(redis, await duplicateConnection(redis, timeoutMs + 1000), timeoutMs, log, onResult);
    await Promise.all(acks.masterNodes().map(([name, node]) => acks.countReplicas(name, node)));
    return acks;
  }

  /**
   * Runs `write` (commands on `key` only), then, if the key's master has
   * replicas, waits until one acknowledges it or the time is up. Fails only
   * when the write fails; a missing acknowledgement is not a failure.
   * `direct` is the same write sent on its own on the gateway's connection,
   * used when there is nothing to wait for (by default `write` in a pipeline
   * of its own).
   */
  async write(key: string, write: KeyWrite, deadline?: number, direct: () => Promise<unknown> = () => this.plain(write)): Promise<AcknowledgedResult> {
    const written = await this.writeAndWait(key, write, deadline, direct);
    this.onResult(written.acknowledgement);
    return written;
  }

  private async writeAndWait(key: string, write: KeyWrite, deadline: number | undefined, direct: () => Promise<unknown>): Promise<AcknowledgedResult> {
    const name = this.masterOf(key);
    const state = this.state(name);
    // A master not seen before (a replica promoted since the start) is counted first, once.
    if (state.checkedAt === 0) await this.recount(name);
    else if (Date.now() - state.checkedAt > ROLE_REFRESH_MS) void this.recount(name);
    if (!this.waitsFor(state, this.timeoutFor(deadline))) return { result: await direct(), acknowledgement: "not_waited" };
    return new Promise((resolve, reject) => {
      state.pending.push({ write, direct, deadline, resolve, reject });
      if (!state.sending && state.pending.length === 1) queueMicrotask(() => void this.send(name, state));
    });
  }

  /** How long a write with this deadline may wait now; WAIT 0 would block for ever, so below 1 it is no wait at all. */
  private timeoutFor(deadline: number | undefined): number {
    return Math.floor(Math.min(this.timeoutMs, deadline === undefined ? Infinity : deadline - Date.now() - DEADLINE_MARGIN_MS));
  }

  private waitsFor(state: MasterState, timeoutMs: number): boolean {
    return state.replicas !== 0 && Date.now() >= state.quietUntil && timeoutMs >= 1;
  }

  /** Sends the writes pending for a master as one batch, then the next batch if more came meanwhile. */
  private async send(name: string, state: MasterState): Promise<void> {
    state.sending = true;
    try {
      while (state.pending.length > 0) {
        const batch = state.pending.splice(0);
        // Decided now, not when each write arrived: the master may have gone quiet, and deadlines came closer.
        const waiting: Pending[] = [];
        for (const p of batch) {
          if (this.waitsFor(state, this.timeoutFor(p.deadline))) waiting.push(p);
          else this.settle(p, p.direct(), "not_waited");
        }
        if (waiting.length > 0) await this.sendBatch(name, state, waiting);
      }
    } finally {
      state.sending = false;
    }
  }

  private async sendBatch(name: string, state: MasterState, batch: Pending[]): Promise<void> {
    const timeoutMs = Math.min(...batch.map((p) => this.timeoutFor(p.deadline)));
    const pipeline = this.acking.pipeline();
    for (const p of batch) p.write(pipeline);
    pipeline.call("WAIT", "1", String(Math.max(1, timeoutMs)));
    let replies: [Error | null, unknown][];
    try {
      replies = (await pipeline.exec()) ?? [];
    } catch {
      // The batch could not be sent on this connection (its slot map may be
      // behind the gateway's): each write goes through the gateway's own.
      for (const p of batch) this.settle(p, p.direct(), "not_waited");
      return;
    }
    const [waitError, replicas] = replies[batch.length] ?? [new Error("no reply to WAIT")];
    const acknowledged = !waitError && Number(replicas) >= 1;
    const acknowledgement: ReplicaAcknowledgementResult = acknowledged ? "acknowledged" : "not_acknowledged";
    batch.forEach((p, i) => {
      const [writeError, result] = replies[i] ?? [new Error("no reply to the write")];
      if (!writeError) return p.resolve({ result, acknowledgement });
      // The acknowledging connection's slot map may be behind the gateway's
      // (a MOVED right after a failover): write through the gateway's own
      // connection, which follows redirections, and do not wait this time.
      if (/^(MOVED|ASK) /.test(writeError.message)) return this.settle(p, p.direct(), "not_waited");
      p.reject(writeError);
    });
    this.unacknowledged.report(
      !acknowledged,
      name,
      { timeoutMs, reason: waitError?.message },
      `no replica acknowledged a stored booking within ${timeoutMs} ms: bookings are answered anyway, and a failover of this master ` +
        `before its replica catches up would forget them (the platform's de-duplication then answers a retry). ` +
        `Writes to it do not wait for a replica for ${QUIET_MS / 1000} s at a time until one acknowledges again`,
    );
    if (acknowledged) return;
    state.quietUntil = Date.now() + QUIET_MS;
  }

  private settle(p: Pending, written: Promise<unknown>, acknowledgement: ReplicaAcknowledgementResult): void {
    written.then((result) => p.resolve({ result, acknowledgement }), p.reject);
  }

  async close(): Promise<void> {
    await closeConnection(this.acking);
  }

  private async plain(write: KeyWrite): Promise<unknown> {
    const pipeline = this.redis.pipeline();
    write(pipeline);
    const [[error, result] = [new Error("no reply to the write")]] = (await pipeline.exec()) ?? [];
    if (error) throw error;
    return result;
  }

  /** The master holding `key`, by its address on a cluster; the one Redis otherwise. */
  private masterOf(key: string): string {
    if (!isCluster(this.redis)) return "redis";
    return this.redis.slots[keySlot(key)]?.[0] ?? "unknown";
  }

  private masterNodes(): [string, Redis][] {
    if (!isCluster(this.redis)) return [["redis", this.redis]];
    return (this.redis as Cluster).nodes("master").map((node) => [`${node.options.host}:${node.options.port}`, node]);
  }

  private state(name: string): MasterState {
    let state = this.masters.get(name);
    if (state === undefined) {
      state = { replicas: undefined, checkedAt: 0, checking: false, quietUntil: 0, pending: [], sending: false };
      this.masters.set(name, state);
    }
    return state;
  }

  /** Counts a master's replicas again. */
  private async recount(name: string): Promise<void> {
    const node = this.masterNodes().find(([n]) => n === name)?.[1];
    if (node !== undefined) await this.countReplicas(name, node);
    else this.state(name).checkedAt = Date.now();
  }

  private async countReplicas(name: string, node: Redis): Promise<void> {
    const state = this.state(name);
    if (state.checking) return;
    state.checking = true;
    try {
      const role = (await node.call("ROLE")) as [string, number, unknown[]];
      state.replicas = role[0] === "master" && Array.isArray(role[2]) ? role[2].length : 0;
    } catch {
      // Unknown: WAIT, bounded by its timeout, finds out.
      state.replicas = undefined;
    } finally {
      state.checkedAt = Date.now();
      state.checking = false;
    }
  }
}
