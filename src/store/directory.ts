/**
 * The hot-path view of the directory: who is calling, and where their bot's
 * requests go. Lookups are cached in process for a short TTL so a request
 * makes no store round trip; a change made with the admin command takes
 * effect within that TTL.
 */
import { GatewayError } from "../errors.js";
import type { Account, Bot, DirectoryStore, Partner, Platform } from "./directory-store.js";
import { hashPartnerKey, partnerKeyFromAuthorization } from "./partner-key.js";
import { TtlCache } from "./ttl-cache.js";

/** A bot with the account it serves and that account's platform. */
export interface BotRoute {
  readonly bot: Bot;
  readonly account: Account;
  readonly platform: Platform;
}

export class Directory {
  private readonly partners: TtlCache<Partner | undefined>;
  private readonly routes: TtlCache<BotRoute | undefined>;

  constructor(
    readonly store: DirectoryStore,
    cacheTtlMs: number,
    /** Told of every store failure (metrics). */
    private readonly onStoreError: () => void = () => {},
  ) {
    this.partners = new TtlCache(cacheTtlMs);
    this.routes = new TtlCache(cacheTtlMs);
  }

  /** The partner an `Authorization` header identifies; `unauthorized` otherwise. */
  async authenticate(authorization: string | null | undefined): Promise<Partner> {
    const key = partnerKeyFromAuthorization(authorization);
    if (key === undefined) {
      throw GatewayError.of("unauthorized", "missing or malformed Authorization header: expected Bearer sk_ptnr_...");
    }
    const keyHash = hashPartnerKey(key);
    const partner = await this.storeCall(() => this.partners.get(keyHash, () => this.store.findPartnerByKeyHash(keyHash)));
    if (partner === undefined || partner.keyHash !== keyHash) {
      throw GatewayError.of("unauthorized", "unknown partner key");
    }
    return partner;
  }

  /**
   * Where `botId` sends its requests, if it belongs to `partner`. Another
   * partner's bot is answered exactly like an unknown one.
   */
  async route(partner: Partner, botId: string): Promise<BotRoute> {
    const route = await this.storeCall(() => this.routes.get(botId, () => this.loadRoute(botId)));
    if (route === undefined || route.bot.partnerId !== partner.id) {
      throw GatewayError.of("bot_not_found", `bot ${JSON.stringify(botId)} not found`);
    }
    if (route.platform.webhookUrl === undefined || route.platform.webhookSecret === undefined) {
      throw GatewayError.of("webhook_not_configured", `the account of bot ${JSON.stringify(botId)} has no webhook configured`);
    }
    return route;
  }

  /** Forgets every cached lookup. */
  invalidate(): void {
    this.partners.clear();
    this.routes.clear();
  }

  private async loadRoute(botId: string): Promise<BotRoute | undefined> {
    const bot = await this.store.getBot(botId);
    if (bot === undefined) return undefined;
    const account = await this.store.getAccount(bot.accountId);
    const platform = account && (await this.store.getPlatform(account.platformId));
    if (account === undefined) return undefined;
    return { bot, account, platform: platform ?? { id: account.platformId, webhookUrl: undefined, webhookSecret: undefined } };
  }

  private async storeCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof GatewayError) throw e;
      this.onStoreError();
      throw GatewayError.of("service_unavailable", "the directory store is unavailable; retry shortly", {
        retryAfterSeconds: 1,
        cause: e,
      });
    }
  }
}
