import type { ChainableCommander, Redis } from "ioredis";
import { directoryChangesChannel } from "./directory-changes.js";
import type { Account, Bot, DirectoryStore, Partner, Platform } from "./directory-store.js";

/** Where the directory lives under a gateway's `REDIS_KEY_PREFIX`. */
export function directoryKeyPrefix(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}dir:`;
}

/**
 * The directory in Redis. Each record is a hash under `dir:<kind>:<id>`, each
 * kind has a set of its ids for listing, and `dir:partner-key:<sha256>` maps a
 * key hash to its partner. Every write is announced on the channel of
 * `directory-changes.ts` and sets the marker `dir:provisioned` (the time of
 * the latest write) in the same transaction, so an empty Redis is told apart
 * from a directory that does not know a key.
 */
export class RedisDirectoryStore implements DirectoryStore {
  private readonly channel: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix = "dir:",
  ) {
    this.channel = directoryChangesChannel(prefix);
  }

  private key(kind: string, id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  private get marker(): string {
    return `${this.prefix}provisioned`;
  }

  /** A transaction for one write: it leaves the marker and announces the change. */
  private write(kind: string): ChainableCommander {
    return this.redis.multi().set(this.marker, new Date().toISOString()).publish(this.channel, kind);
  }

  async isProvisioned(): Promise<boolean> {
    return (await this.redis.exists(this.marker)) === 1;
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
    return h && { id, webhookUrl: h.webhook_url || undefined, webhookSecret: h.webhook_secret || undefined };
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
        webhook_secret: platform.webhookSecret ?? "",
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
