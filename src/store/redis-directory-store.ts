import type { ChainableCommander } from "ioredis";
import { FieldCipherError, NO_ENCRYPTION, type FieldCipher } from "../encryption/field-cipher.js";
import { silentLogger, type Logger } from "../observability/logger.js";
import { directoryChangesChannel } from "./directory-changes.js";
import type { Account, Bot, DirectoryStore, Partner, Platform } from "./directory-store.js";
import type { RedisConnection } from "./redis-connection.js";

/**
 * Where the directory lives under a gateway's `REDIS_KEY_PREFIX`:
 * `<prefix>{<prefix>dir}:`. Every key still starts with the prefix, and all
 * share one hash tag, so that on a Redis Cluster the whole directory is in
 * one slot and each write (a transaction over several of its keys, with its
 * change notice) runs on one master. The directory is small, read-mostly and
 * cached in process, so one shard serves it easily.
 */
export function directoryKeyPrefix(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}{${redisKeyPrefix}dir}:`;
}

/**
 * What a platform's webhook secret is sealed to (see `encryption/field-cipher.ts`):
 * where it lives, so it cannot be moved to another platform. A secret moved to
 * another place (a new key layout) is re-sealed for it.
 */
export function webhookSecretContext(directoryPrefix: string, platformId: string): string {
  return `${directoryPrefix}platform:${platformId}:webhook_secret`;
}

/** Sets hash field ARGV[1] of KEYS[1] to ARGV[3] if it still holds ARGV[2]. */
const SWAP_FIELD = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
`;

/**
 * The directory in Redis. Under the directory's prefix (`directoryKeyPrefix`),
 * each record is a hash at `<kind>:<id>`, each kind has a set of its ids for
 * listing, and `partner-key:<sha256>` maps a key hash to its partner. Every
 * write is announced on the shard channel of `directory-changes.ts` and sets
 * the marker `provisioned` (the time of the latest write) in the same
 * transaction, so an empty Redis is told apart from a directory that does not
 * know a key. A directory written before the marker existed has partners and
 * no marker: it counts as provisioned, and the first gateway to find it so
 * writes the marker. Webhook secrets are encrypted when the gateway has an
 * encryption key.
 */
export class RedisDirectoryStore implements DirectoryStore {
  private readonly channel: string;

  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix = "dir:",
    /** Encrypts webhook secrets at rest (see `encryption/field-cipher.ts`); in clear by default. */
    private readonly cipher: FieldCipher = NO_ENCRYPTION,
    /** Where writing a missing marker is reported. */
    private readonly log: Logger = silentLogger,
  ) {
    this.channel = directoryChangesChannel(prefix);
  }

  private secretContext(platformId: string): string {
    return webhookSecretContext(this.prefix, platformId);
  }

  private key(kind: string, id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  private get marker(): string {
    return `${this.prefix}provisioned`;
  }

  /** A transaction for one write: it leaves the marker and announces the change. */
  private write(kind: string): ChainableCommander {
    return this.redis.multi().set(this.marker, new Date().toISOString()).spublish(this.channel, kind);
  }

  async isProvisioned(): Promise<boolean> {
    if ((await this.redis.exists(this.marker)) === 1) return true;
    // Lost data takes the partners with it; partners without the marker were written before it existed.
    if ((await this.redis.scard(this.key("index", "partner"))) === 0) return false;
    if ((await this.redis.set(this.marker, new Date().toISOString(), "NX")) === "OK") {
      this.log.info({}, "the directory has partners but no marker (it was written before the marker existed): the marker is written now");
    }
    return true;
  }

  private async hash(kind: string, id: string): Promise<Record<string, string> | undefined> {
    const h = await this.redis.hgetall(this.key(kind, id));
    return Object.keys(h).length === 0 ? undefined : h;
  }

  async findPartnerByKeyHash(keyHash: string): Promise<Partner | undefined> {
    const id = await this.redis.get(this.key("partner-key", keyHash));
    return id === null ? undefined : this.getPartner(id);
  }
  async getPartner(id: string): Promise<Partner | undefined> {
    const h = await this.hash("partner", id);
    return h && { id, name: h.name ?? "", keyHash: h.key_hash ?? "" };
  }
  async getPlatform(id: string): Promise<Platform | undefined> {
    const h = await this.hash("platform", id);
    if (h === undefined) return undefined;
    const secret = h.webhook_secret ? this.cipher.open(h.webhook_secret, this.secretContext(id)) : undefined;
    return { id, webhookUrl: h.webhook_url || undefined, webhookSecret: secret };
  }
  async getAccount(id: string): Promise<Account | undefined> {
    const h = await this.hash("account", id);
    return h && { id, platformId: h.platform_id ?? "" };
  }
  async getBot(id: string): Promise<Bot | undefined> {
    const h = await this.hash("bot", id);
    return h && { id, partnerId: h.partner_id ?? "", accountId: h.account_id ?? "" };
  }

  async putPartner(partner: Partner): Promise<void> {
    const previous = await this.getPartner(partner.id);
    const tx = this.write("partner");
    if (previous !== undefined && previous.keyHash !== partner.keyHash) {
      tx.del(this.key("partner-key", previous.keyHash));
    }
    tx.hset(this.key("partner", partner.id), { name: partner.name, key_hash: partner.keyHash });
    tx.set(this.key("partner-key", partner.keyHash), partner.id);
    tx.sadd(this.key("index", "partner"), partner.id);
    await tx.exec();
  }
  async putPlatform(platform: Platform): Promise<void> {
    const k = this.key("platform", platform.id);
    await this.write("platform")
      .del(k)
      .hset(k, {
        id: platform.id,
        webhook_url: platform.webhookUrl ?? "",
        webhook_secret: platform.webhookSecret === undefined ? "" : this.cipher.seal(platform.webhookSecret, this.secretContext(platform.id)),
      })
      .sadd(this.key("index", "platform"), platform.id)
      .exec();
  }
  async putAccount(account: Account): Promise<void> {
    await this.write("account")
      .hset(this.key("account", account.id), { platform_id: account.platformId })
      .sadd(this.key("index", "account"), account.id)
      .exec();
  }
  async putBot(bot: Bot): Promise<void> {
    await this.write("bot")
      .hset(this.key("bot", bot.id), { partner_id: bot.partnerId, account_id: bot.accountId })
      .sadd(this.key("index", "bot"), bot.id)
      .exec();
  }

  /**
   * Seals every webhook secret with the cipher's current key (after a key was
   * introduced or rotated). A secret no configured key opens is left as it is
   * and counted, and the others are still re-sealed. Returns how many were
   * rewritten and how many skipped.
   */
  async reencryptSecrets(): Promise<{ rewritten: number; skipped: number }> {
    let rewritten = 0;
    let skipped = 0;
    for (const id of await this.redis.smembers(this.key("index", "platform"))) {
      const stored = await this.redis.hget(this.key("platform", id), "webhook_secret");
      if (!stored || this.cipher.isCurrent(stored)) continue;
      let plain: string;
      try {
        plain = this.cipher.open(stored, this.secretContext(id));
      } catch (e) {
        if (!(e instanceof FieldCipherError)) throw e;
        skipped++;
        continue;
      }
      const sealed = this.cipher.seal(plain, this.secretContext(id));
      // Only if the secret did not change meanwhile (an admin writing it is newer than this).
      const swapped = await this.redis.eval(SWAP_FIELD, 1, this.key("platform", id), "webhook_secret", stored, sealed);
      if (swapped === 1) rewritten++;
    }
    if (rewritten > 0) await this.redis.spublish(this.channel, "platform");
    return { rewritten, skipped };
  }

  private async list<T>(kind: string, get: (id: string) => Promise<T | undefined>): Promise<T[]> {
    const ids = (await this.redis.smembers(this.key("index", kind))).sort();
    const found = await Promise.all(ids.map(get));
    return found.filter((x): x is Awaited<T> => x !== undefined);
  }
  listPartners(): Promise<Partner[]> {
    return this.list("partner", (id) => this.getPartner(id));
  }
  listPlatforms(): Promise<Platform[]> {
    return this.list("platform", (id) => this.getPlatform(id));
  }
  listAccounts(): Promise<Account[]> {
    return this.list("account", (id) => this.getAccount(id));
  }
  listBots(): Promise<Bot[]> {
    return this.list("bot", (id) => this.getBot(id));
  }
}
