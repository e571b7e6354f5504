/**
 * Idempotent bookings shared by every gateway on one Redis. A record lives at
 * `<prefix>idem:<partner id>:<sha256 of the key>` as JSON: a claim
 * `{"s":"pending","t":token,"f":fingerprint}` taken with `SET NX PX GET`, or a
 * finished record `{"s":"done","f":fingerprint,"o":outcome}`. Finishing and
 * releasing are Lua scripts that check the claim's token first, so they are
 * atomic and a lapsed claim's former holder cannot touch its successor's.
 *
 * With an encryption key the outcome (the platform's answer: the customer's
 * name, phone number and email) is stored encrypted, `"e":sealed` in place of
 * `"o"`, bound to the record's key. What the scripts and the claim read (state,
 * token, fingerprint) stays in clear.
 *
 * Every script touches one key, so on a Redis Cluster each runs on the master
 * of that key's slot and records spread over every master. A finished record
 * is acknowledged by a replica before the booking is answered, when the
 * master has one (see `store/replica-acknowledgement.ts`).
 *
 * The connection must fail fast (see `connectRedis`): a command that cannot
 * run answers `service_unavailable` instead of waiting for Redis to come back.
 */
import { createHash } from "node:crypto";
import { FieldCipherError, NO_ENCRYPTION, type FieldCipher } from "../encryption/field-cipher.js";
import type { StoredOutcome } from "./stored-outcome.js";
import type { ReplicaAcknowledgement } from "../store/replica-acknowledgement.js";
import { isCluster, type RedisConnection } from "../store/redis-connection.js";
import { ClaimingKeeper, type KeeperOptions } from "./claiming-keeper.js";
import type { DoneRecord, IdempotencyRecord, IdempotencyStore } from "./idempotency-store.js";

/** True when the record in KEYS[1] is the claim of token ARGV[1]. */
const IS_CLAIM_OF = `
local function claim_of(current, token)
  local ok, record = pcall(cjson.decode, current)
  return ok and type(record) == 'table' and record.s == 'pending' and record.t == token
end
`;

/** Stores ARGV[2] for ARGV[3] ms if KEYS[1] is ARGV[1]'s claim, or holds nothing. */
const FINISH = `${IS_CLAIM_OF}
local current = redis.call('GET', KEYS[1])
if current and not claim_of(current, ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;

const FINISH_SHA = createHash("sha1").update(FINISH).digest("hex");

/** Deletes KEYS[1] if it is ARGV[1]'s claim. */
const RELEASE = `${IS_CLAIM_OF}
local current = redis.call('GET', KEYS[1])
if current and claim_of(current, ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

const RELEASE_SHA = createHash("sha1").update(RELEASE).digest("hex");

/** Replaces KEYS[1] by ARGV[2], keeping its time to live, if it still holds ARGV[1]. */
const SWAP = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
`;

interface StoredJson {
  s?: unknown;
  t?: unknown;
  f?: unknown;
  o?: unknown;
  e?: unknown;
}

/** Records looked at per SCAN step while re-encrypting. */
const SCAN_COUNT = 500;

export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly redis: RedisConnection,
    /** The gateway's key prefix (`REDIS_KEY_PREFIX`); records go under `<prefix>idem:`. */
    private readonly prefix: string,
    /** Encrypts stored outcomes (see `encryption/field-cipher.ts`); in clear by default. */
    private readonly cipher: FieldCipher = NO_ENCRYPTION,
    /** Waits for a replica to have a finished record; finished records are not waited for without it. */
    private readonly acknowledgement?: ReplicaAcknowledgement,
  ) {}

  /** The Redis key of a record id (`<partner id>:<sha256 of the key>`). */
  keyOf(id: string): string {
    return `${this.prefix}idem:${id}`;
  }

  async claim(id: string, token: string, fingerprint: string, ttlMs: number): Promise<IdempotencyRecord | undefined> {
    const claim = JSON.stringify({ s: "pending", t: token, f: fingerprint });
    const key = this.keyOf(id);
    const found = await this.redis.set(key, claim, "PX", ttlMs, "NX", "GET");
    return found === null ? undefined : this.decode(key, found);
  }

  async finish(id: string, token: string, record: DoneRecord, ttlMs: number, deadline?: number): Promise<boolean> {
    const key = this.keyOf(id);
    const stored = this.encode(key, record);
    const direct = () => this.evalScript(FINISH, FINISH_SHA, key, token, stored, ttlMs);
    if (this.acknowledgement === undefined) return (await direct()) === 1;
    const { result } = await this.acknowledgement.write(key, (commands) => commands.eval(FINISH, 1, key, token, stored, ttlMs), deadline, direct);
    return result === 1;
  }

  /** A script by its SHA1; it is sent in full only when Redis does not have it yet (at start, after a restart or failover). */
  private async evalScript(script: string, sha: string, key: string, ...args: (string | number)[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(sha, 1, key, ...args);
    } catch (e) {
      if (!(e as Error).message.startsWith("NOSCRIPT")) throw e;
      return await this.redis.eval(script, 1, key, ...args);
    }
  }

  /**
   * Seals every stored outcome with the cipher's current key (after a key was
   * introduced or rotated), keeping each record's time to live. A record that
   * changed meanwhile is left as it is, and so is one no configured key
   * opens (counted as skipped). Returns how many records were found, how
   * many rewritten and how many skipped.
   */
  async reencrypt(): Promise<{ records: number; rewritten: number; skipped: number }> {
    let records = 0;
    let rewritten = 0;
    let skipped = 0;
    const pattern = `${this.prefix.replace(/[*?[\]\\]/g, "\\$&")}idem:*`;
    // SCAN walks one node: on a cluster, every master's keys are walked in turn.
    for (const node of isCluster(this.redis) ? this.redis.nodes("master") : [this.redis]) {
      let cursor = "0";
      do {
        const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT);
        cursor = next;
        for (const key of keys) {
          const outcome = await this.reencryptRecord(key);
          if (outcome !== "gone") records++;
          if (outcome === "rewritten") rewritten++;
          if (outcome === "skipped") skipped++;
        }
      } while (cursor !== "0");
    }
    return { records, rewritten, skipped };
  }

  /** Re-seals one record; one that no configured key opens is left as it is (`skipped`). */
  private async reencryptRecord(key: string): Promise<"gone" | "kept" | "rewritten" | "skipped"> {
    const stored = await this.redis.get(key);
    if (stored === null) return "gone";
    let record: IdempotencyRecord;
    try {
      record = this.decode(key, stored);
    } catch (e) {
      if (e instanceof FieldCipherError) return "skipped";
      throw e;
    }
    if (record.state !== "done") return "kept";
    const sealed = (JSON.parse(stored) as StoredJson).e;
    if (typeof sealed === "string" ? this.cipher.isCurrent(sealed) : !this.cipher.enabled) return "kept";
    return (await this.redis.eval(SWAP, 1, key, stored, this.encode(key, record))) === 1 ? "rewritten" : "kept";
  }

  private encode(key: string, record: DoneRecord): string {
    if (!this.cipher.enabled) return JSON.stringify({ s: "done", f: record.fingerprint, o: record.outcome });
    return JSON.stringify({ s: "done", f: record.fingerprint, e: this.cipher.seal(JSON.stringify(record.outcome), key) });
  }

  private decode(key: string, raw: string): IdempotencyRecord {
    let v: StoredJson;
    try {
      v = JSON.parse(raw) as StoredJson;
    } catch {
      throw new Error("unreadable idempotency record");
    }
    if (typeof v.f !== "string") throw new Error("unreadable idempotency record");
    if (v.s === "pending" && typeof v.t === "string") return { state: "pending", token: v.t, fingerprint: v.f };
    if (v.s === "done" && typeof v.e === "string") {
      return { state: "done", fingerprint: v.f, outcome: JSON.parse(this.cipher.open(v.e, key)) as StoredOutcome };
    }
    if (v.s === "done" && typeof v.o === "object" && v.o !== null) return { state: "done", fingerprint: v.f, outcome: v.o as StoredOutcome };
    throw new Error("unreadable idempotency record");
  }

  async release(id: string, token: string): Promise<boolean> {
    return (await this.evalScript(RELEASE, RELEASE_SHA, this.keyOf(id), token)) === 1;
  }
}

export class RedisIdempotencyKeeper extends ClaimingKeeper {
  constructor(redis: RedisConnection, prefix: string, options: KeeperOptions, cipher: FieldCipher = NO_ENCRYPTION, acknowledgement?: ReplicaAcknowledgement) {
    super(new RedisIdempotencyStore(redis, prefix, cipher, acknowledgement), options);
  }
}
