/**
 * Seed files provision the directory in one step:
 *
 *     {"partners":  [{"id", "name", "api_key"}],
 *      "platforms": [{"id", "webhook_url", "webhook_secret"}],
 *      "accounts":  [{"id", "platform_id"}],
 *      "bots":      [{"id", "partner_id", "account_id"}]}
 *
 * A platform without `webhook_url` has no webhook configured. Partner keys
 * are hashed on the way in and never stored in clear.
 */
import { readFile } from "node:fs/promises";
import type { DirectoryStore } from "./directory-store.js";
import { hashPartnerKey, isWellFormedPartnerKey, PARTNER_KEY_PREFIX } from "./partner-key.js";

export interface Seed {
  readonly partners: ReadonlyArray<{ id: string; name: string; api_key: string }>;
  readonly platforms: ReadonlyArray<{ id: string; webhook_url?: string; webhook_secret?: string }>;
  readonly accounts: ReadonlyArray<{ id: string; platform_id: string }>;
  readonly bots: ReadonlyArray<{ id: string; partner_id: string; account_id: string }>;
}

export class SeedError extends Error {
  override name = "SeedError";
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function list(seed: Record<string, unknown>, name: string): Record<string, unknown>[] {
  const v = seed[name];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every(isRecord)) throw new SeedError(`"${name}" must be an array of objects`);
  return v;
}

function str(o: Record<string, unknown>, where: string, field: string, required = true): string | undefined {
  const v = o[field];
  if (v === undefined || v === null || v === "") {
    if (required) throw new SeedError(`${where}: "${field}" is required`);
    return undefined;
  }
  if (typeof v !== "string") throw new SeedError(`${where}: "${field}" must be a string`);
  return v;
}

/** Validates a parsed seed document, including its references. */
export function parseSeed(doc: unknown): Seed {
  if (!isRecord(doc)) throw new SeedError("a seed file holds one JSON object");
  const partners = list(doc, "partners").map((p, i) => {
    const where = `partners[${i}]`;
    const key = str(p, where, "api_key")!;
    if (!key.startsWith(PARTNER_KEY_PREFIX)) throw new SeedError(`${where}: "api_key" must start with ${PARTNER_KEY_PREFIX}`);
    if (!isWellFormedPartnerKey(key)) {
      throw new SeedError(
        `${where}: "api_key" must be ${PARTNER_KEY_PREFIX} followed by at least 32 random URL-safe characters (A-Z a-z 0-9 _ -); ` +
          "npm run admin -- create-partner generates one",
      );
    }
    return { id: str(p, where, "id")!, name: str(p, where, "name", false) ?? "", api_key: key };
  });
  const platforms = list(doc, "platforms").map((p, i) => {
    const where = `platforms[${i}]`;
    const webhook_url = str(p, where, "webhook_url", false);
    const webhook_secret = str(p, where, "webhook_secret", webhook_url !== undefined);
    if (webhook_url !== undefined && !/^https?:\/\/[^/]/.test(webhook_url)) {
      throw new SeedError(`${where}: "webhook_url" must be an http(s) URL`);
    }
    return { id: str(p, where, "id")!, webhook_url, webhook_secret };
  });
  const accounts = list(doc, "accounts").map((a, i) => ({
    id: str(a, `accounts[${i}]`, "id")!,
    platform_id: str(a, `accounts[${i}]`, "platform_id")!,
  }));
  const bots = list(doc, "bots").map((b, i) => ({
    id: str(b, `bots[${i}]`, "id")!,
    partner_id: str(b, `bots[${i}]`, "partner_id")!,
    account_id: str(b, `bots[${i}]`, "account_id")!,
  }));
  const ids = (xs: ReadonlyArray<{ id: string }>) => new Set(xs.map((x) => x.id));
  const platformIds = ids(platforms);
  const accountIds = ids(accounts);
  const partnerIds = ids(partners);
  accounts.forEach((a, i) => {
    if (!platformIds.has(a.platform_id)) throw new SeedError(`accounts[${i}]: unknown platform_id "${a.platform_id}"`);
  });
  bots.forEach((b, i) => {
    if (!partnerIds.has(b.partner_id)) throw new SeedError(`bots[${i}]: unknown partner_id "${b.partner_id}"`);
    if (!accountIds.has(b.account_id)) throw new SeedError(`bots[${i}]: unknown account_id "${b.account_id}"`);
  });
  return { partners, platforms, accounts, bots };
}

export async function readSeedFile(path: string): Promise<Seed> {
  const text = await readFile(path, "utf8");
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new SeedError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseSeed(doc);
}

/** Writes a seed into a store, hashing partner keys. */
export async function importSeed(store: DirectoryStore, seed: Seed): Promise<void> {
  for (const p of seed.platforms) {
    await store.putPlatform({ id: p.id, webhookUrl: p.webhook_url, webhookSecret: p.webhook_secret });
  }
  for (const a of seed.accounts) await store.putAccount({ id: a.id, platformId: a.platform_id });
  for (const p of seed.partners) await store.putPartner({ id: p.id, name: p.name, keyHash: hashPartnerKey(p.api_key) });
  for (const b of seed.bots) await store.putBot({ id: b.id, partnerId: b.partner_id, accountId: b.account_id });
}
