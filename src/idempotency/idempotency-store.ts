/**
 * Where idempotency records live: Redis when gateways share one, process
 * memory for the single-process embedded default. Both give the same four
 * atomic operations, and `ClaimingKeeper` builds the whole protocol on them,
 * so the two behave alike by construction.
 */
import type { StoredOutcome } from "./stored-outcome.js";

/** A booking in flight, claimed by the request holding `token`. */
export interface PendingRecord {
  readonly state: "pending";
  readonly token: string;
  readonly fingerprint: string;
}

/** A booking whose final outcome is kept for replays. */
export interface DoneRecord {
  readonly state: "done";
  readonly fingerprint: string;
  readonly outcome: StoredOutcome;
}

export type IdempotencyRecord = PendingRecord | DoneRecord;

export interface IdempotencyStore {
  /**
   * Claims `id` for `token` for `ttlMs` if no record exists (`SET NX PX`), in
   * one atomic step that returns the record found otherwise. `undefined`
   * means the caller now holds the claim.
   */
  claim(id: string, token: string, fingerprint: string, ttlMs: number): Promise<IdempotencyRecord | undefined>;
  /**
   * Replaces `token`'s claim by the final record, kept for `ttlMs`. Also
   * writes when the claim has lapsed and no one holds the key; never
   * overwrites another request's claim or a finished record. True if written.
   * A store with replicas may wait for one to have the record, never past
   * `deadline` (epoch milliseconds, the caller's).
   */
  finish(id: string, token: string, record: DoneRecord, ttlMs: number, deadline?: number): Promise<boolean>;
  /** Deletes the record if it is still `token`'s claim, so a retry may claim it. True if deleted. */
  release(id: string, token: string): Promise<boolean>;
}
