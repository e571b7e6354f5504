import type { Account, Bot, DirectoryStore, Partner, Platform } from "./directory-store.js";

/** The directory in process memory: the embedded default, and a reference for the Redis store. */
export class MemoryDirectoryStore implements DirectoryStore {
  private readonly partners = new Map<string, Partner>();
  private readonly partnerByKeyHash = new Map<string, string>();
  private readonly platforms = new Map<string, Platform>();
  private readonly accounts = new Map<string, Account>();
  private readonly bots = new Map<string, Bot>();

  async findPartnerByKeyHash(keyHash: string): Promise<Partner | undefined> {
    const id = this.partnerByKeyHash.get(keyHash);
    return id === undefined ? undefined : this.partners.get(id);
  }
  async getPartner(id: string): Promise<Partner | undefined> {
    return this.partners.get(id);
  }
  async getPlatform(id: string): Promise<Platform | undefined> {
    return this.platforms.get(id);
  }
  async getAccount(id: string): Promise<Account | undefined> {
    return this.accounts.get(id);
  }
  async getBot(id: string): Promise<Bot | undefined> {
    return this.bots.get(id);
  }

  async putPartner(partner: Partner): Promise<void> {
    const previous = this.partners.get(partner.id);
    if (previous !== undefined) this.partnerByKeyHash.delete(previous.keyHash);
    this.partners.set(partner.id, { ...partner });
    this.partnerByKeyHash.set(partner.keyHash, partner.id);
  }
  async putPlatform(platform: Platform): Promise<void> {
    this.platforms.set(platform.id, { ...platform });
  }
  async putAccount(account: Account): Promise<void> {
    this.accounts.set(account.id, { ...account });
  }
  async putBot(bot: Bot): Promise<void> {
    this.bots.set(bot.id, { ...bot });
  }

  /** Always: the in-memory directory is written by the process that reads it, and is never lost apart from it. */
  async isProvisioned(): Promise<boolean> {
    return true;
  }

  async listPartners(): Promise<Partner[]> {
    return [...this.partners.values()];
  }
  async listPlatforms(): Promise<Platform[]> {
    return [...this.platforms.values()];
  }
  async listAccounts(): Promise<Account[]> {
    return [...this.accounts.values()];
  }
  async listBots(): Promise<Bot[]> {
    return [...this.bots.values()];
  }
}
