/**
 * Idempotent bookings shared by every gateway on one Redis. A record lives at
 * `<prefix>idem:<partner id>:<sha256 of the key>` as JSON: a claim
 * `{"s":"pending","t":token,"f":fingerprint}` taken with `SET NX PX GET`, or a
 * finished record `{"s":"done","f":fingerprint,"o":outcome}`. Finishing and
 * releasing are Lua scripts that check the claim's token first, so they are
 * atomic and a lapsed claim's former holder cannot touch its successor's.
 *
 * The connection must fail fast (see `connectRedis`): a command that cannot
 * run answers `service_unavailable` instead of waiting for Redis to come back.
 */
import type { Redis } from "ioredis";
import type { StoredOutcome } from "../gateway/idempotency.js";
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

/** Deletes KEYS[1] if it is ARGV[1]'s claim. */
const RELEASE = `${IS_CLAIM_OF}
local current = redis.call('GET', KEYS[1])
if current and claim_of(current, ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

interface StoredJson {
  s?: unknown;
  t?: unknown;
  f?: unknown;
  o?: unknown;
}

export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    /** The gateway's key prefix (`REDIS_KEY_PREFIX`); records go under `<prefix>idem:`. */
    private readonly prefix: string,
  ) {}

  /** The Redis key of a record id (`<partner id>:<sha256 of the key>`). */
  keyOf(id: string): string {
    return `${this.prefix}idem:${id}`;
  }

  async claim(id: string, token: string, fingerprint: string, ttlMs: number): Promise<IdempotencyRecord | undefined> {
    const claim = JSON.stringify({ s: "pending", t: token, f: fingerprint });
    const found = await this.redis.set(this.keyOf(id), claim, "PX", ttlMs, "NX", "GET");
    return found === null ? undefined : decode(found);
  }

  async finish(id: string, token: string, record: DoneRecord, ttlMs: number): Promise<boolean> {
    const value = JSON.stringify({ s: "done", f: record.fingerprint, o: record.outcome });
    return (await this.redis.eval(FINISH, 1, this.keyOf(id), token, value, ttlMs)) === 1;
  }

  async release(id: string, token: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.keyOf(id), token)) === 1;
  }
}

export class RedisIdempotencyKeeper extends ClaimingKeeper {
  constructor(redis: Redis, prefix: string, options: KeeperOptions) {
    super(new RedisIdempotencyStore(redis, prefix), options);
  }
}

function decode(raw: string): IdempotencyRecord {
  let v: StoredJson;
  try {
    v = JSON.parse(raw) as StoredJson;
  } catch {
    throw new Error("unreadable idempotency record");
  }
  if (typeof v.f !== "string") throw new Error("unreadable idempotency record");
  if (v.s === "pending" && typeof v.t === "string") return { state: "pending", token: v.t, fingerprint: v.f };
  if (v.s === "done" && typeof v.o === "object" && v.o !== null) return { state: "done", fingerprint: v.f, outcome: v.o as StoredOutcome };
  throw new Error("unreadable idempotency record");
}
