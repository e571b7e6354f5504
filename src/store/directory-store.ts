/**
 * The directory: partners, scheduling platforms, accounts and bots. One
 * interface with two implementations (in process memory for the embedded
 * default, Redis for production), both checked by the same test suite.
 *
 * Partner API keys never reach a store: only their SHA-256 hash does
 * (see `partner-key.ts`). Webhook secrets are stored because the gateway needs
 * them to sign requests, and are never printed.
 */

export interface Partner {
  readonly id: string;
  readonly name: string;
  /** Hex SHA-256 of the partner's API key. */
  readonly keyHash: string;
}

export interface Platform {
  readonly id: string;
  /** Base URL the webhook paths are appended to; absent when no webhook is configured. */
  readonly webhookUrl: string | undefined;
  readonly webhookSecret: string | undefined;
}

export interface Account {
  readonly id: string;
  readonly platformId: string;
}

export interface Bot {
  readonly id: string;
  readonly partnerId: string;
  readonly accountId: string;
}

export interface DirectoryStore {
  findPartnerByKeyHash(keyHash: string): Promise<Partner | undefined>;
  getPartner(id: string): Promise<Partner | undefined>;
  getPlatform(id: string): Promise<Platform | undefined>;
  getAccount(id: string): Promise<Account | undefined>;
  getBot(id: string): Promise<Bot | undefined>;

  /** Creates or replaces a partner; a replaced partner's old key stops working. */
  putPartner(partner: Partner): Promise<void>;
  putPlatform(platform: Platform): Promise<void>;
  putAccount(account: Account): Promise<void>;
  putBot(bot: Bot): Promise<void>;

  /**
   * True when the directory carries its marker: every write leaves it, so a
   * directory without it was never provisioned, or its store lost its data
   * (a Redis restarted without persistence). Callers tell that apart from a
   * key or bot the directory does not know. A directory that has partners but
   * no marker (written before the marker existed) is provisioned, and gets
   * its marker.
   */
  isProvisioned(): Promise<boolean>;

  listPartners(): Promise<Partner[]>;
  listPlatforms(): Promise<Platform[]>;
  listAccounts(): Promise<Account[]>;
  listBots(): Promise<Bot[]>;
}
