/**
 * Partner API keys: `sk_ptnr_` followed by 32 bytes of randomness in base62-ish
 * base64url. Keys are high-entropy, so a plain SHA-256 is a safe way to store
 * them: it cannot be reversed or brute-forced, and a lookup stays one hash.
 */
import { createHash, randomBytes } from "node:crypto";

export const PARTNER_KEY_PREFIX = "sk_ptnr_";

const BEARER = /^Bearer[ ]+(\S+)[ ]*$/i;

export function generatePartnerKey(): string {
  return PARTNER_KEY_PREFIX + randomBytes(32).toString("base64url");
}

export function hashPartnerKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** The partner key in an `Authorization` header value, or undefined when there is none. */
export function partnerKeyFromAuthorization(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const m = BEARER.exec(header);
  if (m === null) return undefined;
  const key = m[1]!;
  return key.startsWith(PARTNER_KEY_PREFIX) && key.length <= 256 ? key : undefined;
}
