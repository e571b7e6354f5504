/**
 * The webhook signature as the platform documentation describes it, written
 * here from the documentation rather than taken from the gateway, so a test
 * platform that verifies with it checks the gateway against the documented
 * format instead of against itself:
 *
 *     X-DialStack-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the webhook secret>
 *
 * compared in constant time, and refused when `t` is more than five minutes
 * from now.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const TOLERANCE_SECONDS = 5 * 60;

/** True when `header` is a documented signature of `rawBody` under `secret`. */
export function documentedSignatureValid(secret: string, header: string | string[] | undefined, rawBody: string, nowMs = Date.now()): boolean {
  if (typeof header !== "string") return false;
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (m === null) return false;
  const t = m[1]!;
  if (Math.abs(nowMs / 1000 - Number(t)) > TOLERANCE_SECONDS) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${rawBody}`, "utf8").digest();
  return timingSafeEqual(expected, Buffer.from(m[2]!, "hex"));
}

/** A documented signature header, for tests that send webhooks themselves. */
export function documentedSignature(secret: string, rawBody: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${rawBody}`, "utf8").digest("hex")}`;
}
