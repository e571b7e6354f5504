/**
 * The idempotency protocol, written once over an `IdempotencyStore`:
 *
 * - a request claims its (partner, key) with a random token; exactly one
 *   request per key reaches the platform at a time;
 * - a request that finds the key taken with another fingerprint is rejected
 *   with `idempotency_key_mismatch`, whatever the record's state;
 * - one that finds a finished record replays it; one that finds a claim
 *   retries its claim with a short, growing pause until the wait bound, then
 *   gets `idempotency_key_in_use`. A released claim is taken over, so the
 *   waiter becomes the retry;
 * - the claim holder stores a final outcome or releases the key, both checked
 *   against its token, so a claim that lapsed is never overwritten by its
 *   late former holder;
 * - a booking once sent runs to its end even if its caller leaves, so what the
 *   platform did is stored and a retry replays it;
 * - when the store fails as the outcome is written (its Redis master failed
 *   over in between), the caller still gets the outcome, and the write is
 *   tried again in the background until the claim would lapse, so the retry
 *   that comes after the failover is a replay rather than a second booking.
 *   Writing a final record again is harmless: it only ever replaces this
 *   request's own claim or nothing. Once the keeper is closing, a write still
 *   to be tried again gets one last attempt at once, and no more.
 */
import { isUtf8 } from "node:buffer";
import { hash, randomUUID } from "node:crypto";
import { FieldCipherError } from "../encryption/field-cipher.js";
import { GatewayError } from "../errors.js";
import type { IdempotencyKeeper, IdempotentRequest, IdempotentResult } from "../gateway/idempotency.js";
import type { IdempotencyOutcome } from "../metrics/metrics.js";
import { ConditionLog } from "../observability/condition-log.js";
import { silentLogger, type Logger } from "../observability/logger.js";
import type { PlatformAnswer } from "../platform/webhook-client.js";
import type { DoneRecord, IdempotencyRecord, IdempotencyStore } from "./idempotency-store.js";
import { storedOutcomeOf, type StoredOutcome } from "./stored-outcome.js";

export interface KeeperOptions {
  /**
   * Lifetime of a claim. It must exceed the webhook timeout: a claim then only
   * lapses when its gateway died, and a crashed gateway blocks a key no longer.
   */
  readonly claimTtlMs: number;
  /** How long a finished outcome is replayed. */
  readonly resultTtlMs: number;
  /** How long a duplicate waits for the request in flight before `idempotency_key_in_use`. */
  readonly waitMs: number;
  /** Told what became of each key (metrics). */
  readonly onOutcome?: ((outcome: IdempotencyOutcome) => void) | undefined;
  /** Where a stored outcome that no configured key decrypts is reported. */
  readonly log?: Logger | undefined;
}

const FIRST_PAUSE_MS = 10;
const MAX_PAUSE_MS = 100;
/** Pauses between attempts to store an outcome the store refused. */
const FIRST_REWRITE_PAUSE_MS = 100;
const MAX_REWRITE_PAUSE_MS = 1000;

type Settled = { readonly ok: true; readonly answer: PlatformAnswer } | { readonly ok: false; readonly error: unknown };

export class ClaimingKeeper implements IdempotencyKeeper {
  /** Bookings whose caller left, and outcomes still being written: `close()` waits for them. */
  private readonly running = new Set<Promise<unknown>>();
  /** Aborted by `close()`: pauses before another write attempt end at once. */
  private readonly closing = new AbortController();
  /**
   * Per key id (none for values that were altered or moved), outcomes that
   * key sealed and no configured key opens. The keys are read at start, so
   * the condition lasts until the gateway restarts with the right ones: it is
   * logged once per key id, not once per retry it refuses.
   */
  private readonly undecryptable: ConditionLog;

  constructor(
    private readonly store: IdempotencyStore,
    private readonly options: KeeperOptions,
  ) {
    this.undecryptable = new ConditionLog(options.log ?? silentLogger, "idempotency_record_undecryptable", {
      bad:
        "a stored booking outcome cannot be decrypted with the configured keys: retries of that booking are answered 503 service_unavailable " +
        "(configure the key that sealed it in GATEWAY_ENCRYPTION_PREVIOUS_KEYS)",
      good: "stored booking outcomes decrypt again",
    });
  }

  async execute(request: IdempotentRequest, perform: () => Promise<PlatformAnswer>): Promise<IdempotentResult> {
    const id = `${request.scope}:${hash("sha256", request.key, "hex")}`;
    const waitUntil = Date.now() + this.options.waitMs;
    let pause = FIRST_PAUSE_MS;
    for (;;) {
      if (request.signal?.aborted) throw goneError(request);
      // 32 hex digits, 122 of their bits random: a UUID comes from entropy the process fetches in bulk, not one system call per token.
      const token = randomUUID().replaceAll("-", "");
      const found = await this.claim(id, token, request.fingerprint);
      if (found === undefined) {
        this.options.onOutcome?.("claimed");
        return this.run(id, token, request, perform, Date.now() + this.options.claimTtlMs);
      }
      if (found.fingerprint !== request.fingerprint) {
        this.options.onOutcome?.("mismatch");
        throw GatewayError.of(
          "idempotency_key_mismatch",
          "this Idempotency-Key was already used with a different request; use a new key for a new booking",
        );
      }
      if (found.state === "done") {
        this.options.onOutcome?.("replayed");
        return replay(found.outcome);
      }
      const left = waitUntil - Date.now();
      if (left <= 0) {
        this.options.onOutcome?.("in_flight");
        throw GatewayError.of("idempotency_key_in_use", "a request with this Idempotency-Key is still in progress; retry shortly", {
          retryAfterSeconds: 1,
        });
      }
      await pauseFor(Math.min(left, pause * (0.75 + Math.random() / 2)), request);
      pause = Math.min(MAX_PAUSE_MS, pause * 1.5);
    }
  }

  /** Waits until every booking in flight is settled and every outcome written or given up (one last attempt each). */
  async close(): Promise<void> {
    this.closing.abort();
    // A booking that settles now may start writing its outcome again: wait for that too.
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private async claim(id: string, token: string, fingerprint: string): Promise<IdempotencyRecord | undefined> {
    try {
      return await this.store.claim(id, token, fingerprint, this.options.claimTtlMs);
    } catch (e) {
      // The claim may still land once the store answers (a timed-out command
      // is not a command that did not run): take it back, so the key is not
      // blocked for a claim lifetime by a request that already failed.
      this.store.release(id, token).catch(() => {});
      if (e instanceof FieldCipherError) this.reportUndecryptable(e);
      this.options.onOutcome?.("store_unavailable");
      throw GatewayError.of("service_unavailable", "the idempotency store is unavailable; retry shortly with the same key", {
        retryAfterSeconds: 1,
        cause: e,
      });
    }
  }

  /** Logs a stored outcome no configured key opens, once per key id; never the value. */
  private reportUndecryptable(e: FieldCipherError): void {
    this.undecryptable.report(true, e.keyId ?? "", { reason: e.message });
  }

  /** Sends the booking as the claim holder; the caller may leave, the booking and its bookkeeping go on. */
  private async run(
    id: string,
    token: string,
    request: IdempotentRequest,
    perform: () => Promise<PlatformAnswer>,
    claimLapsesAt: number,
  ): Promise<IdempotentResult> {
    const task = this.track(this.settle(id, token, request, perform, claimLapsesAt));
    const settled = await untilGone(task, request);
    if (settled.ok) return { answer: settled.answer, replayed: false };
    throw settled.error;
  }

  private track<T>(task: Promise<T>): Promise<T> {
    this.running.add(task);
    void task.then(() => this.running.delete(task));
    return task;
  }

  /** Performs the booking, then stores its final outcome or releases the key. Never rejects. */
  private async settle(
    id: string,
    token: string,
    request: IdempotentRequest,
    perform: () => Promise<PlatformAnswer>,
    claimLapsesAt: number,
  ): Promise<Settled> {
    let settled: Settled;
    let outcome: StoredOutcome | undefined;
    try {
      const answer = await perform();
      settled = { ok: true, answer };
      // The platform's text as it came, which REST answers: a replay is then byte for byte the first answer.
      const text = answer.raw !== undefined && isUtf8(answer.raw) ? answer.raw.toString("utf8") : undefined;
      outcome = { kind: "answer", status: answer.status, body: answer.body, text };
    } catch (error) {
      settled = { ok: false, error };
      outcome = storedOutcomeOf(error);
    }
    // When the store fails here the outcome still reaches the caller, and is
    // written later. Should that fail until the claim lapses too, a retry asks
    // the platform again with the same downstream key, which it de-duplicates.
    if (outcome !== undefined) {
      const record: DoneRecord = { state: "done", fingerprint: request.fingerprint, outcome };
      const written = await this.store.finish(id, token, record, this.options.resultTtlMs, request.deadline).then(
        () => true,
        () => false,
      );
      if (!written) void this.track(this.finishLater(id, token, record, claimLapsesAt));
    } else {
      await this.store.release(id, token).catch(() => false);
    }
    return settled;
  }

  /**
   * Writes a refused outcome again after growing pauses, until it is written
   * or the claim lapses; once the keeper closes, one last attempt at once.
   * Never rejects.
   */
  private async finishLater(id: string, token: string, record: DoneRecord, claimLapsesAt: number): Promise<void> {
    const closing = this.closing.signal;
    let pause = FIRST_REWRITE_PAUSE_MS;
    while (Date.now() + pause < claimLapsesAt) {
      await pauseUnless(pause, closing);
      try {
        await this.store.finish(id, token, record, this.options.resultTtlMs);
        return;
      } catch {
        if (closing.aborted) return;
        pause = Math.min(MAX_REWRITE_PAUSE_MS, pause * 2);
      }
    }
  }
}

function replay(outcome: StoredOutcome): IdempotentResult {
  if (outcome.kind === "answer") {
    const raw = outcome.text === undefined ? undefined : Buffer.from(outcome.text, "utf8");
    return { answer: { status: outcome.status, body: outcome.body, raw }, replayed: true };
  }
  throw GatewayError.fromPlatform(outcome.status, outcome.code, outcome.message).asReplay();
}

/** What a caller that stopped waiting gets: its deadline passed, or it went away. */
function goneError(request: IdempotentRequest): GatewayError {
  if (request.deadline !== undefined && Date.now() >= request.deadline - 20) {
    return GatewayError.of("platform_timeout", "the booking did not finish before the caller's deadline; retry with the same key");
  }
  return GatewayError.of("canceled", "the caller went away");
}

/** `task`, or the caller's departure, whichever comes first. */
function untilGone<T>(task: Promise<T>, request: IdempotentRequest): Promise<T> {
  const signal = request.signal;
  if (signal === undefined) return task;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(goneError(request));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    task.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** A pause of `ms`, ended early when `signal` aborts. */
function pauseUnless(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function pauseFor(ms: number, request: IdempotentRequest): Promise<void> {
  return untilGone(new Promise<void>((resolve) => setTimeout(resolve, ms)), request);
}
