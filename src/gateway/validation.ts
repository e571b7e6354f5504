/**
 * Request validation shared by every protocol. Each failure is
 * `invalid_request` with a message naming the field, in the JSON spelling
 * partners use.
 */
import { toJson } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { GatewayError } from "../errors.js";
import { E164_PATTERN } from "./phone-number.js";

// RFC 3339 covers years 0001 to 9999.
const MIN_SECONDS = -62135596800;
const MAX_SECONDS = 253402300799;

export function invalid(message: string): GatewayError {
  return GatewayError.of("invalid_request", message);
}

export function requireString(value: string, field: string): string {
  if (value.trim() === "") throw invalid(`${field} is required`);
  return value;
}

const E164 = new RegExp(E164_PATTERN);

/** A required phone number in E.164 form. The message names the field, not the number (it is personal data). */
export function requirePhone(value: string, field: string): string {
  if (value.trim() === "") throw invalid(`${field} is required`);
  if (!E164.test(value)) throw invalid(`${field} must be an E.164 phone number: + and 8 to 15 digits, no spaces, e.g. +15551234567`);
  return value;
}

/**
 * A checked timestamp: epoch milliseconds, and its RFC 3339 form, built only
 * when read (a search needs milliseconds only, and formatting costs more than
 * the check).
 *
 * A class, not an object literal with a getter: V8 builds such a literal
 * through its runtime, at about 0.4 µs each, twenty times the cost of the
 * check itself.
 */
export class CheckedTimestamp {
  constructor(
    private readonly ts: Timestamp,
    readonly ms: number,
  ) {}

  get iso(): string {
    return toJson(TimestampSchema, this.ts) as string;
  }
}

/** A required timestamp within RFC 3339's range (years 0001 to 9999). */
export function requireTimestamp(ts: Timestamp | undefined, field: string): CheckedTimestamp {
  if (ts === undefined) throw invalid(`${field} is required`);
  // Exact for every second in range; a value far out of range stays out of range as a number.
  const seconds = Number(ts.seconds);
  if (!(seconds >= MIN_SECONDS && seconds <= MAX_SECONDS) || ts.nanos < 0 || ts.nanos > 999_999_999) {
    throw invalid(`${field} is not a valid timestamp`);
  }
  return new CheckedTimestamp(ts, seconds * 1000 + Math.floor(ts.nanos / 1e6));
}
