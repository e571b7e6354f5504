/**
 * Partner API keys: `sk_ptnr_` followed by 32 bytes of randomness in base62-ish
 * base64url. Keys are high-entropy, so a plain SHA-256 is a safe way to store
 * them: it cannot be reversed or brute-forced, and a lookup stays one hash.
 */
import { hash, randomBytes } from "node:crypto";

export const PARTNER_KEY_PREFIX = "sk_ptnr_";

const BEARER = /^Bearer[ ]+(\S+)[ ]*$/i;

/** A key as the gateway issues them: the prefix, then at least 32 URL-safe characters. */
const WELL_FORMED = /^sk_ptnr_[A-Za-z0-9_-]{32,248}$/;

/**
 * True for a key fit to be given to a partner: `sk_ptnr_` and at least 32
 * URL-safe characters (`A-Z a-z 0-9 _ -`), as `generatePartnerKey` makes them.
 * A key is stored as a plain SHA-256, which is safe only for keys too random
 * to guess; imports refuse anything shorter.
 */
export function isWellFormedPartnerKey(key: string): boolean {
  return WELL_FORMED.test(key);
}

export function generatePartnerKey(): string {
  return PARTNER_KEY_PREFIX + randomBytes(32).toString("base64url");
}

export function hashPartnerKey(key: string): string {
  return hash("sha256", key, "hex");
}

/** The partner key in an `Authorization` header value, or undefined when there is none. */
export function partnerKeyFromAuthorization(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const m = BEARER.exec(header);
  if (m === null) return undefined;
  const key = m[1]!;
  return key.startsWith(PARTNER_KEY_PREFIX) && key.length <= 256 ? key : undefined;
}
