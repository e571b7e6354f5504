/**
 * The way from the directory's earlier key layout to the current one.
 *
 * Builds before Redis Cluster support kept the directory under
 * `<prefix>dir:`; it now lives under one hash tag, `<prefix>{<prefix>dir}:`
 * (`directoryKeyPrefix`). A Redis provisioned by such a build looks empty to
 * this one, and every call is answered 503 until the directory is moved:
 * `upgradeDirectoryLayout` moves it (`npm run admin -- upgrade-directory`),
 * and `earlierDirectoryNotice` lets a gateway name that command at start
 * rather than only say that the directory is empty.
 *
 * Each key moves in one script, copied under its new name byte for byte
 * (DUMP and RESTORE, with its expiry) and deleted under the old one, so no key
 * is ever in both layouts and a run cut short is finished by the next. A name
 * the current layout already holds is never overwritten: an index set (a list
 * of ids) is merged into it, any other key stays where it was and is
 * reported. Records move before the index sets, so a gateway watching the
 * directory sees partners only once their records are there; then the marker
 * is set and the change announced on the directory's shard channel, as every
 * write does (gateways of this build listen there, not on the earlier
 * build's `<prefix>dir:changed`).
 *
 * A webhook secret sealed with `GATEWAY_ENCRYPTION_KEY` is bound to the key it
 * lives under, so it is re-sealed for its new place, never written in clear;
 * the command needs the gateways' encryption keys for that, and moves nothing
 * when a sealed secret does not open.
 *
 * Only one Redis can hold the earlier layout: Redis Cluster support came with
 * the current one.
 */
import { FieldCipherError, isSealed, type FieldCipher } from "../encryption/field-cipher.js";
import { directoryChangesChannel } from "./directory-changes.js";
import { isCluster, type RedisConnection } from "./redis-connection.js";
import { directoryKeyPrefix, webhookSecretContext } from "./redis-directory-store.js";

/** Where builds before Redis Cluster support kept the directory under a gateway's `REDIS_KEY_PREFIX`. */
export function earlierDirectoryKeyPrefix(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}dir:`;
}

/** The record kinds of the directory, as the first part of a key's name after its prefix. */
const RECORD_KINDS = ["partner", "partner-key", "platform", "account", "bot"] as const;
const INDEXED_KINDS = ["partner", "platform", "account", "bot"] as const;
const MARKER = "provisioned";

/** A refused upgrade: a Redis Cluster, or secrets the configured keys do not open. */
export class DirectoryUpgradeError extends Error {
  override name = "DirectoryUpgradeError";
}

/** What `upgradeDirectoryLayout` did. */
export interface DirectoryUpgrade {
  readonly from: string;
  readonly to: string;
  /** Keys moved, by kind (`partner`, `partner-key`, `platform`, `account`, `bot`, `index`). */
  readonly moved: ReadonlyMap<string, number>;
  /** Webhook secrets re-sealed for their new key. */
  readonly resealed: number;
  /** Index sets whose ids were added to the current layout's set of the same name. */
  readonly merged: number;
  /** Keys left in the earlier layout because the current one already has their name. */
  readonly kept: readonly string[];
  /** Platforms left in the earlier layout because their secret changed while this ran. */
  readonly changed: readonly string[];
  /** Keys under the earlier prefix that are not directory keys, left alone. */
  readonly ignored: number;
}

/**
 * Moves KEYS[1] to KEYS[2] unless KEYS[2] exists; an index set (ARGV[1] =
 * "merge") is merged into an existing one instead. With ARGV[2] set, the
 * moved hash's `webhook_secret` must still be ARGV[2], and becomes ARGV[3].
 * Returns 1 moved, 2 merged, 0 kept (KEYS[2] exists), -1 the secret changed,
 * -2 KEYS[1] is gone.
 */
const MOVE = `
if redis.call('EXISTS', KEYS[2]) == 1 then
  if ARGV[1] == 'merge' and redis.call('TYPE', KEYS[1]).ok == 'set' and redis.call('TYPE', KEYS[2]).ok == 'set' then
    for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('SADD', KEYS[2], id) end
    redis.call('DEL', KEYS[1])
    return 2
  end
  return 0
end
local payload = redis.call('DUMP', KEYS[1])
if not payload then return -2 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'webhook_secret') ~= ARGV[2] then return -1 end
local expires = redis.call('PEXPIRETIME', KEYS[1])
if expires > 0 then
  redis.call('RESTORE', KEYS[2], expires, payload, 'ABSTTL')
else
  redis.call('RESTORE', KEYS[2], 0, payload)
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'webhook_secret', ARGV[3]) end
redis.call('DEL', KEYS[1])
return 1
`;

/** The keys SCAN looks at per step. */
const SCAN_COUNT = 1000;

/**
 * The error a gateway logs at start when its directory is empty but one Redis
 * holds the directory of an earlier build; undefined otherwise. One EXISTS.
 */
export async function earlierDirectoryNotice(redis: RedisConnection, redisKeyPrefix: string): Promise<string | undefined> {
  if (isCluster(redis)) return undefined;
  const from = earlierDirectoryKeyPrefix(redisKeyPrefix);
  const found = await redis.exists(`${from}${MARKER}`, ...INDEXED_KINDS.map((kind) => `${from}index:${kind}`));
  if (found === 0) return undefined;
  return (
    `the directory is empty, but Redis holds the directory of an earlier build under ${from} (this build reads it under ` +
    `${directoryKeyPrefix(redisKeyPrefix)}). Every call is answered 503 service_unavailable until it is moved: run npm run admin -- upgrade-directory`
  );
}

/**
 * Moves the directory from the earlier layout to the current one, on one
 * Redis (see the module's comment). Safe to run again: what moved is not
 * under the earlier prefix any more, and a second run finds only what the
 * first kept.
 */
export async function upgradeDirectoryLayout(redis: RedisConnection, redisKeyPrefix: string, cipher: FieldCipher): Promise<DirectoryUpgrade> {
  if (isCluster(redis)) {
    throw new DirectoryUpgradeError("a Redis Cluster never held the earlier directory layout (only one Redis did): there is nothing to upgrade");
  }
  const from = earlierDirectoryKeyPrefix(redisKeyPrefix);
  const to = directoryKeyPrefix(redisKeyPrefix);
  const records: string[] = [];
  const indexes: string[] = [];
  let marker = false;
  let ignored = 0;
  for (const key of await keysUnder(redis, from)) {
    const name = key.slice(from.length);
    if (name === MARKER) marker = true;
    else if (INDEXED_KINDS.some((kind) => name === `index:${kind}`)) indexes.push(key);
    else if (RECORD_KINDS.some((kind) => name.startsWith(`${kind}:`))) records.push(key);
    else ignored++;
  }

  // Every sealed secret is opened before anything moves: a missing key stops the whole upgrade.
  const secrets = new Map<string, { stored: string; resealed: string }>();
  let unopened = 0;
  for (const key of records) {
    const name = key.slice(from.length);
    if (!name.startsWith("platform:")) continue;
    const stored = await redis.hget(key, "webhook_secret");
    if (stored === null || !isSealed(stored)) continue;
    const id = name.slice("platform:".length);
    try {
      const plain = cipher.open(stored, webhookSecretContext(from, id));
      secrets.set(key, { stored, resealed: cipher.seal(plain, webhookSecretContext(to, id)) });
    } catch (e) {
      if (!(e instanceof FieldCipherError)) throw e;
      unopened++;
    }
  }
  if (unopened > 0) {
    throw new DirectoryUpgradeError(
      `${unopened} webhook secrets under ${from} are encrypted with a key that is neither GATEWAY_ENCRYPTION_KEY nor in ` +
        "GATEWAY_ENCRYPTION_PREVIOUS_KEYS; they are re-encrypted for their new keys, so run upgrade-directory with the " +
        "gateways' encryption keys. Nothing was moved",
    );
  }

  const moved = new Map<string, number>();
  const kept: string[] = [];
  const changed: string[] = [];
  let resealed = 0;
  let merged = 0;
  for (const key of [...records.sort(), ...indexes.sort()]) {
    const name = key.slice(from.length);
    const secret = secrets.get(key);
    const index = indexes.includes(key);
    const result = await redis.eval(MOVE, 2, key, to + name, index ? "merge" : "move", secret?.stored ?? "", secret?.resealed ?? "");
    const kind = name.slice(0, name.indexOf(":"));
    if (result === 1) {
      moved.set(kind, (moved.get(kind) ?? 0) + 1);
      if (secret !== undefined) resealed++;
    } else if (result === 2) merged++;
    else if (result === 0) kept.push(key);
    else if (result === -1) changed.push(key);
  }

  if (moved.size > 0 || merged > 0 || marker) {
    // As every write: the marker, and the notice that makes running gateways look again at once.
    const results = await redis
      .multi()
      .set(`${to}${MARKER}`, new Date().toISOString())
      .spublish(directoryChangesChannel(to), "upgrade")
      .del(`${from}${MARKER}`)
      .exec();
    const failed = results?.find(([e]) => e !== null)?.[0];
    if (failed) throw failed;
  }
  const byKind = new Map([...RECORD_KINDS, "index"].flatMap((kind) => (moved.has(kind) ? [[kind, moved.get(kind)!] as const] : [])));
  return { from, to, moved: byKind, resealed, merged, kept, changed, ignored };
}

/** Every key under `prefix`, with SCAN (never `KEYS`, which blocks Redis). */
async function keysUnder(redis: RedisConnection, prefix: string): Promise<string[]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  const keys = new Set<string>();
  let cursor = "0";
  do {
    const [next, found] = await redis.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT);
    for (const key of found) keys.add(key);
    cursor = next;
  } while (cursor !== "0");
  return [...keys];
}
