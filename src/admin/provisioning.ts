/**
 * The operations behind `npm run admin`: create partners, platforms, accounts
 * and bots, set webhooks, import seed files, list what exists. They work on
 * any `DirectoryStore` and check references, so the directory never holds a
 * bot whose partner or account is missing.
 *
 * Secrets the operations generate (a partner key, a webhook secret) are
 * returned once to the caller, who shows them once; a partner key is stored
 * only as its hash, and listings never contain a secret.
 */
import { randomBytes } from "node:crypto";
import type { Account, Bot, DirectoryStore, Partner, Platform } from "../store/directory-store.js";
import { generatePartnerKey, hashPartnerKey } from "../store/partner-key.js";
import { importSeed, type Seed } from "../store/seed.js";

/** A refused operation: an unknown or duplicate id, a bad URL. */
export class ProvisioningError extends Error {
  override name = "ProvisioningError";
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

function checkId(kind: string, id: string): string {
  if (!ID.test(id)) {
    throw new ProvisioningError(`${kind} id ${JSON.stringify(id)} is invalid: use letters, digits and _ . : - (at most 128)`);
  }
  return id;
}

function checkWebhookUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ProvisioningError(`webhook URL ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ProvisioningError(`webhook URL ${JSON.stringify(url)} must be http or https`);
  }
  return url;
}

function checkSecret(secret: string): string {
  if (secret.length < 16 || /\s/.test(secret)) {
    throw new ProvisioningError("a webhook secret has at least 16 characters and no spaces");
  }
  return secret;
}

export function generateWebhookSecret(): string {
  return "whsec_" + randomBytes(24).toString("base64url");
}

/** A partner as listings show it: the key hash shortened, never the key. */
export interface PartnerListing {
  readonly id: string;
  readonly name: string;
  readonly keyHashPrefix: string;
}

/** A platform as listings show it: whether a secret is set, never the secret. */
export interface PlatformListing {
  readonly id: string;
  readonly webhookUrl: string | undefined;
  readonly hasSecret: boolean;
}

export interface Listing {
  readonly partners: PartnerListing[];
  readonly platforms: PlatformListing[];
  readonly accounts: Account[];
  readonly bots: Bot[];
}

export type ListingKind = keyof Listing;

export class Provisioning {
  constructor(private readonly store: DirectoryStore) {}

  async importSeed(seed: Seed): Promise<void> {
    await importSeed(this.store, seed);
  }

  /** Creates a partner and returns its new key: the only time the key exists outside the partner's hands. */
  async createPartner(id: string, name: string): Promise<{ partner: Partner; apiKey: string }> {
    checkId("partner", id);
    if ((await this.store.getPartner(id)) !== undefined) {
      throw new ProvisioningError(`partner ${id} already exists (rotate-key issues a new key)`);
    }
    const apiKey = generatePartnerKey();
    const partner = { id, name, keyHash: hashPartnerKey(apiKey) };
    await this.store.putPartner(partner);
    return { partner, apiKey };
  }

  /** Gives a partner a new key; the old one stops working. */
  async rotatePartnerKey(id: string): Promise<{ partner: Partner; apiKey: string }> {
    const existing = await this.store.getPartner(id);
    if (existing === undefined) throw new ProvisioningError(`unknown partner ${id}`);
    const apiKey = generatePartnerKey();
    const partner = { ...existing, keyHash: hashPartnerKey(apiKey) };
    await this.store.putPartner(partner);
    return { partner, apiKey };
  }

  /**
   * Creates a platform, with a webhook when `webhookUrl` is given. Returns the
   * secret when it was generated here, so it can be shown once.
   */
  async createPlatform(id: string, webhook: { url?: string; secret?: string }): Promise<{ generatedSecret: string | undefined }> {
    checkId("platform", id);
    if (webhook.url === undefined && webhook.secret !== undefined) {
      throw new ProvisioningError("a webhook secret needs a webhook URL");
    }
    if ((await this.store.getPlatform(id)) !== undefined) {
      throw new ProvisioningError(`platform ${id} already exists (set-webhook changes its webhook)`);
    }
    if (webhook.url === undefined) {
      await this.store.putPlatform({ id, webhookUrl: undefined, webhookSecret: undefined });
      return { generatedSecret: undefined };
    }
    return this.writeWebhook(id, webhook.url, webhook.secret);
  }

  /** Sets a platform's webhook URL and secret. Returns the secret when it was generated here. */
  async setWebhook(platformId: string, url: string, secret: string | undefined): Promise<{ generatedSecret: string | undefined }> {
    if ((await this.store.getPlatform(platformId)) === undefined) {
      throw new ProvisioningError(`unknown platform ${platformId}`);
    }
    return this.writeWebhook(platformId, url, secret);
  }

  private async writeWebhook(id: string, url: string, secret: string | undefined): Promise<{ generatedSecret: string | undefined }> {
    const webhookUrl = checkWebhookUrl(url);
    const webhookSecret = secret === undefined ? generateWebhookSecret() : checkSecret(secret);
    await this.store.putPlatform({ id, webhookUrl, webhookSecret });
    return { generatedSecret: secret === undefined ? webhookSecret : undefined };
  }

  async createAccount(id: string, platformId: string): Promise<Account> {
    checkId("account", id);
    if ((await this.store.getPlatform(platformId)) === undefined) throw new ProvisioningError(`unknown platform ${platformId}`);
    if ((await this.store.getAccount(id)) !== undefined) throw new ProvisioningError(`account ${id} already exists`);
    const account = { id, platformId };
    await this.store.putAccount(account);
    return account;
  }

  async createBot(id: string, partnerId: string, accountId: string): Promise<Bot> {
    checkId("bot", id);
    if ((await this.store.getPartner(partnerId)) === undefined) throw new ProvisioningError(`unknown partner ${partnerId}`);
    if ((await this.store.getAccount(accountId)) === undefined) throw new ProvisioningError(`unknown account ${accountId}`);
    if ((await this.store.getBot(id)) !== undefined) throw new ProvisioningError(`bot ${id} already exists`);
    const bot = { id, partnerId, accountId };
    await this.store.putBot(bot);
    return bot;
  }

  /** What exists, without secrets, sorted by id. */
  async list(): Promise<Listing> {
    const [partners, platforms, accounts, bots] = await Promise.all([
      this.store.listPartners(),
      this.store.listPlatforms(),
      this.store.listAccounts(),
      this.store.listBots(),
    ]);
    const byId = <T extends { id: string }>(xs: T[]): T[] => xs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      partners: byId(partners).map((p) => ({ id: p.id, name: p.name, keyHashPrefix: p.keyHash.slice(0, 8) })),
      platforms: byId(platforms).map((p: Platform) => ({ id: p.id, webhookUrl: p.webhookUrl, hasSecret: p.webhookSecret !== undefined })),
      accounts: byId(accounts).map((a) => ({ id: a.id, platformId: a.platformId })),
      bots: byId(bots).map((b) => ({ id: b.id, partnerId: b.partnerId, accountId: b.accountId })),
    };
  }
}
