/**
 * Idempotent bookings for the single-process embedded default: the same
 * protocol as with Redis, with records in process memory. Keys are not shared
 * between processes and do not survive a restart; a gateway that runs as more
 * than one process needs `REDIS_URL`.
 */
import { ClaimingKeeper, type KeeperOptions } from "./claiming-keeper.js";
import type { DoneRecord, IdempotencyRecord, IdempotencyStore } from "./idempotency-store.js";

const SWEEP_INTERVAL_MS = 60_000;

interface Entry {
  readonly record: IdempotencyRecord;
  readonly expiresAt: number;
}

export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private nextSweep = Date.now() + SWEEP_INTERVAL_MS;

  /** Records currently kept, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  async claim(id: string, token: string, fingerprint: string, ttlMs: number): Promise<IdempotencyRecord | undefined> {
    const now = Date.now();
    if (now >= this.nextSweep) this.sweep(now);
    const found = this.live(id, now);
    if (found !== undefined) return found.record;
    this.entries.set(id, { record: { state: "pending", token, fingerprint }, expiresAt: now + ttlMs });
    return undefined;
  }

  async finish(id: string, token: string, record: DoneRecord, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const found = this.live(id, now);
    if (found !== undefined && !(found.record.state === "pending" && found.record.token === token)) return false;
    this.entries.set(id, { record, expiresAt: now + ttlMs });
    return true;
  }

  async release(id: string, token: string): Promise<boolean> {
    const found = this.live(id, Date.now());
    if (found === undefined || found.record.state !== "pending" || found.record.token !== token) return false;
    this.entries.delete(id);
    return true;
  }

  private live(id: string, now: number): Entry | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry;
    this.entries.delete(id);
    return undefined;
  }

  private sweep(now: number): void {
    for (const [id, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(id);
    this.nextSweep = now + SWEEP_INTERVAL_MS;
  }
}

export class MemoryIdempotencyKeeper extends ClaimingKeeper {
  constructor(options: KeeperOptions, store = new MemoryIdempotencyStore()) {
    super(store, options);
  }
}
