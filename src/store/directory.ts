/**
 * The hot-path view of the directory: who is calling, and where their bot's
 * requests go. Lookups are cached in process for a short TTL so a request
 * makes no store round trip; a change made with the admin command takes
 * effect within that TTL.
 *
 * A lookup that finds nothing is checked against the directory's marker
 * before it is answered: a store that lost its data (a Redis restarted
 * without persistence) must not turn every partner's key into `unauthorized`.
 * Without the marker the answer is `service_unavailable`, and the gateway
 * logs an error once each time the marker goes missing (and a line when it is
 * back). Only misses pay for the check, and a marker found is cached like a lookup.
 */
import { FieldCipherError } from "../encryption/field-cipher.js";
import { GatewayError } from "../errors.js";
import { ConditionLog } from "../observability/condition-log.js";
import { silentLogger, type Logger } from "../observability/logger.js";
import type { Account, Bot, DirectoryStore, Partner, Platform } from "./directory-store.js";
import { hashPartnerKey, partnerKeyFromAuthorization } from "./partner-key.js";
import { TtlCache } from "./ttl-cache.js";

/** A bot with the account it serves and that account's platform. */
export interface BotRoute {
  readonly bot: Bot;
  readonly account: Account;
  readonly platform: Platform;
}

/** How long a lost directory asks clients to wait before they retry. */
const UNPROVISIONED_RETRY_AFTER_SECONDS = 5;

export class Directory {
  private readonly partners: TtlCache<Partner | undefined>;
  private readonly routes: TtlCache<BotRoute | undefined>;
  /**
   * Until when the marker is known to be present. Only its presence is
   * cached: a gateway that found the directory empty sees the import at once.
   */
  private markerSeenUntil = 0;
  /** Bumped by `invalidate()`, so a check that started before it caches nothing. */
  private generation = 0;
  /** The marker as last seen, to log its changes once; unknown until first checked. */
  private provisioned: boolean | undefined;
  private readonly invalidated: (() => void)[] = [];
  private readonly emptyLog: ConditionLog;

  constructor(
    readonly store: DirectoryStore,
    private readonly cacheTtlMs: number,
    private readonly log: Logger = silentLogger,
    /** Told of every store failure (metrics). */
    private readonly onStoreError: () => void = () => {},
  ) {
    this.partners = new TtlCache(cacheTtlMs);
    this.routes = new TtlCache(cacheTtlMs);
    this.emptyLog = new ConditionLog(log, "directory_empty", {
      bad:
        "the directory is empty: its marker is missing from Redis (it was never imported, or Redis lost its data). " +
        "Every call is answered 503 service_unavailable until the directory is written again (npm run admin -- import)",
      good: "the directory is back: its marker is present again",
    });
  }

  /** The partner an `Authorization` header identifies; `unauthorized` otherwise. */
  async authenticate(authorization: string | null | undefined): Promise<Partner> {
    const key = partnerKeyFromAuthorization(authorization);
    if (key === undefined) {
      throw GatewayError.of("unauthorized", "missing or malformed Authorization header: expected Bearer sk_ptnr_...");
    }
    const keyHash = hashPartnerKey(key);
    const partner = await this.cached(this.partners, keyHash, () => this.store.findPartnerByKeyHash(keyHash));
    if (partner === undefined || partner.keyHash !== keyHash) {
      await this.requireProvisioned();
      throw GatewayError.of("unauthorized", "unknown partner key");
    }
    return partner;
  }

  /**
   * Checks the directory's marker (cached): `service_unavailable` when it is
   * missing. Logs when the marker's presence changes; `whyEmpty` may give the
   * error logged if it is missing now, when its caller can tell the cause.
   */
  async requireProvisioned(whyEmpty?: () => Promise<string | undefined>): Promise<void> {
    if (Date.now() < this.markerSeenUntil) return;
    const generation = this.generation;
    const provisioned = await this.storeCall(() => this.store.isProvisioned());
    if (provisioned && generation === this.generation) this.markerSeenUntil = Date.now() + this.cacheTtlMs;
    if (provisioned !== this.provisioned) {
      this.provisioned = provisioned;
      this.emptyLog.report(!provisioned, "", {}, provisioned ? undefined : await whyEmpty?.().catch(() => undefined));
    }
    if (!provisioned) {
      throw GatewayError.of("service_unavailable", "the gateway's directory is unavailable; retry later", {
        retryAfterSeconds: UNPROVISIONED_RETRY_AFTER_SECONDS,
      });
    }
  }

  /**
   * Where `botId` sends its requests, if it belongs to `partner`. Another
   * partner's bot is answered exactly like an unknown one.
   */
  async route(partner: Partner, botId: string): Promise<BotRoute> {
    const route = await this.cached(this.routes, botId, () => this.loadRoute(botId));
    if (route === undefined || route.bot.partnerId !== partner.id) {
      if (route === undefined) await this.requireProvisioned();
      throw GatewayError.of("bot_not_found", `bot ${JSON.stringify(botId)} not found`);
    }
    if (route.platform.webhookUrl === undefined || route.platform.webhookSecret === undefined) {
      throw GatewayError.of("webhook_not_configured", `the account of bot ${JSON.stringify(botId)} has no webhook configured`);
    }
    return route;
  }

  /**
   * True when `partner`'s key still opens it, read from the store itself
   * (not the cache): for sessions authenticated long ago.
   */
  async partnerStillValid(partner: Partner): Promise<boolean> {
    const current = await this.store.findPartnerByKeyHash(partner.keyHash);
    return current !== undefined && current.id === partner.id && current.keyHash === partner.keyHash;
  }

  /** Calls `listener` whenever the cache is dropped because the directory changed. */
  onInvalidate(listener: () => void): void {
    this.invalidated.push(listener);
  }

  /** Forgets every cached lookup. */
  invalidate(): void {
    for (const listener of this.invalidated) listener();
    this.partners.clear();
    this.routes.clear();
    this.markerSeenUntil = 0;
    this.generation++;
    // A directory found empty is looked at again now: its return is logged even if no lookup misses.
    if (this.provisioned === false) this.requireProvisioned().catch(() => {});
  }

  private async loadRoute(botId: string): Promise<BotRoute | undefined> {
    const bot = await this.store.getBot(botId);
    if (bot === undefined) return undefined;
    const account = await this.store.getAccount(bot.accountId);
    const platform = account && (await this.store.getPlatform(account.platformId));
    if (account === undefined) return undefined;
    return { bot, account, platform: platform ?? { id: account.platformId, webhookUrl: undefined, webhookSecret: undefined } };
  }

  /** A cached lookup: the value itself on a hit, or the load as a store call. */
  private cached<T>(cache: TtlCache<T>, key: string, load: () => Promise<T>): T | Promise<T> {
    const found = cache.get(key, load);
    return found instanceof Promise ? this.storeCall(() => found) : found;
  }

  private async storeCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof GatewayError) throw e;
      // A secret no configured key opens is the operator's to fix; the caller gets the store's failure.
      if (e instanceof FieldCipherError) this.log.error({ reason: e.message }, "cannot read the directory");
      this.onStoreError();
      throw GatewayError.of("service_unavailable", "the directory store is unavailable; retry shortly", {
        retryAfterSeconds: 1,
        cause: e,
      });
    }
  }
}
