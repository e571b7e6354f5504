/**
 * Encryption at rest for the values in Redis that must not sit there in
 * clear: webhook secrets (whoever holds one can sign bookings) and stored
 * booking answers (customer names, phone numbers, emails). Redis backups, AOF
 * files, replicas and `MONITOR` then show ciphertext only.
 *
 * AES-256-GCM from `node:crypto`. A sealed value is one string,
 *
 *     enc:v1:<key id>:<iv>:<ciphertext and tag>     (base64url parts)
 *
 * whose key id names the key that sealed it, so keys can rotate: the gateway
 * seals with its current key and opens with the current or any previous one,
 * and `npm run admin -- reencrypt` re-seals everything with the current key,
 * after which the previous keys can be dropped. Each value is bound to where
 * it lives (`context`, the additional authenticated data): a sealed secret
 * copied to another platform, or an answer copied to another idempotency key,
 * does not open.
 *
 * Values written before a key was configured are read as they are, so a key
 * can be introduced without a migration step (and `reencrypt` seals them).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import type { EncryptionKeys } from "../config.js";

export interface FieldCipher {
  /** True when values are sealed; false for the cipher used without a key. */
  readonly enabled: boolean;
  /** `plain` sealed with the current key for `context`, or `plain` itself when not enabled. */
  seal(plain: string, context: string): string;
  /** The plain value of what `seal` returned for `context` (a value stored in clear is returned as it is). */
  open(stored: string, context: string): string;
  /** True when `stored` needs no re-sealing: sealed with the current key (or, not enabled, in clear). */
  isCurrent(stored: string): boolean;
}

/** Raised for a sealed value no configured key opens, or one that was tampered with. */
export class FieldCipherError extends Error {
  override name = "FieldCipherError";

  constructor(
    message: string,
    /** The id of the key that sealed the value, when the error is that no configured key has it. */
    readonly keyId?: string,
  ) {
    super(message);
  }
}

const PREFIX = "enc:v1:";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** True for a value `seal` produced, as opposed to one stored in clear. */
export function isSealed(stored: string): boolean {
  return stored.startsWith(PREFIX);
}

/** The id stored beside each value: a digest of the key, which does not reveal it. */
export function keyId(key: Buffer): string {
  return createHash("sha256").update("dialstack field cipher key id\0").update(key).digest("base64url").slice(0, 12);
}

/** Keeps values in clear; refuses to open a sealed value, since it has no key. */
export const NO_ENCRYPTION: FieldCipher = {
  enabled: false,
  seal: (plain) => plain,
  open(stored) {
    if (isSealed(stored)) {
      const id = stored.split(":")[2];
      throw new FieldCipherError(`a value in Redis is encrypted (key id ${id}) but GATEWAY_ENCRYPTION_KEY is not set`, id);
    }
    return stored;
  },
  isCurrent: (stored) => !isSealed(stored),
};

/** AES-256-GCM with `current` for sealing, and `current` or any of `previous` for opening. */
export function aesGcmCipher(current: Buffer, previous: readonly Buffer[] = []): FieldCipher {
  for (const key of [current, ...previous]) {
    if (key.length !== KEY_BYTES) throw new RangeError(`an encryption key has ${KEY_BYTES} bytes, got ${key.length}`);
  }
  const currentId = keyId(current);
  const keys = new Map<string, Buffer>();
  for (const key of [...previous, current]) keys.set(keyId(key), key);
  return {
    enabled: true,
    seal(plain, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", current, iv);
      cipher.setAAD(Buffer.from(context));
      const sealed = Buffer.concat([cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `${PREFIX}${currentId}:${iv.toString("base64url")}:${sealed.toString("base64url")}`;
    },
    open(stored, context) {
      if (!isSealed(stored)) return stored;
      const [id, iv, sealed] = stored.slice(PREFIX.length).split(":");
      const key = id === undefined ? undefined : keys.get(id);
      if (key === undefined) {
        throw new FieldCipherError(
          `a value in Redis is encrypted with key id ${id}, which is neither GATEWAY_ENCRYPTION_KEY nor one of GATEWAY_ENCRYPTION_PREVIOUS_KEYS`,
          id,
        );
      }
      const bytes = Buffer.from(sealed ?? "", "base64url");
      if (bytes.length < TAG_BYTES) throw new FieldCipherError("an encrypted value in Redis is truncated");
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv ?? "", "base64url"));
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
        return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]).toString("utf8");
      } catch {
        throw new FieldCipherError("an encrypted value in Redis does not open: it was altered or moved from where it was written");
      }
    },
    isCurrent: (stored) => stored.startsWith(`${PREFIX}${currentId}:`),
  };
}

/** The cipher the configured keys give: AES-256-GCM with them, or none. */
export function fieldCipherOf(keys: EncryptionKeys | undefined): FieldCipher {
  return keys === undefined ? NO_ENCRYPTION : aesGcmCipher(keys.key, keys.previousKeys);
}
