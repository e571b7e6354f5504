/**
 * Strict JSON request decoding, for every protocol that carries JSON (REST,
 * Connect JSON, unary and streaming, and Connect GET), with errors that name
 * the field the way partners spell it (`booking.start_at`).
 *
 * protobuf-es reads a JSON Timestamp with `Date.parse`, which rolls an
 * impossible date over: `2030-02-30T00:00:00Z` becomes 2 March and
 * `T24:00:00Z` the next day. After decoding, the message holds a real instant
 * and the mistake cannot be seen any more, so the check runs on the JSON
 * itself, before protobuf-es reads it. connect-es offers no hook into its JSON
 * decoding except the `textDecoder` of its JSON serialization options, which
 * turns the request bytes into the text protobuf-es parses. `strictJsonOptions`
 * supplies one per method that
 *
 * - refuses bytes that are not UTF-8 (the default decoder would silently
 *   turn them into U+FFFD; the binary protocols already refuse them);
 * - checks every Timestamp field of the method's input against RFC 3339 and
 *   the calendar (month days, hours 00-23, the protobuf range), and that
 *   message fields hold objects, naming the field when one does not.
 *
 * The text is parsed once more for the check (a few microseconds for a
 * request of a few hundred bytes), and only for inputs that hold a Timestamp.
 *
 * Errors protobuf-es itself raises name its type names
 * (`cannot decode field dialstack.partner.v1.BookingDetails.duration_minutes`);
 * `nameDecodeError` rewrites them with the field's path in the method's input.
 */
import { isUtf8 } from "node:buffer";
import type { DescField, DescMessage, DescMethod, JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import type { ConnectRouter, MethodImpl } from "@connectrpc/connect";
import { GatewayError } from "../errors.js";
import { daysFromCivil, daysInMonth, readRfc3339 } from "../gateway/calendar.js";

type JsonOptions = Partial<JsonReadOptions & JsonWriteOptions>;

/**
 * A router that registers every method with the strict decoding of its own
 * input type (`strictJsonOptions`) on top of `jsonOptions`, the JSON options
 * the server uses. `service()` registers a service method by method, so
 * every method of it must be implemented.
 */
export function withStrictJson(router: ConnectRouter, jsonOptions: JsonOptions): ConnectRouter {
  const optionsFor = (method: DescMethod, options: Parameters<ConnectRouter["rpc"]>[2]) => ({
    ...options,
    // connect-es passes these options on to its JSON serialization, whose textDecoder they set.
    jsonOptions: { ...jsonOptions, ...options?.jsonOptions, ...strictJsonOptions(method.input) } as JsonOptions,
  });
  const strict: ConnectRouter = {
    handlers: router.handlers,
    service(service, implementation, options) {
      for (const method of service.methods) {
        const impl = (implementation as Record<string, ((...args: never[]) => unknown) | undefined>)[method.localName];
        if (impl === undefined) throw new Error(`${service.typeName}/${method.name} has no implementation`);
        router.rpc(method, impl.bind(implementation) as unknown as MethodImpl<DescMethod>, optionsFor(method, options));
      }
      return strict;
    },
    rpc(method, impl, options) {
      router.rpc(method, impl, optionsFor(method, options));
      return strict;
    },
  };
  return strict;
}

/** The part of connect-es's JSON serialization options this module fills. */
interface StrictJsonOptions {
  readonly textDecoder: { decode(input?: Uint8Array): string };
}

const TIMESTAMP = "google.protobuf.Timestamp";

/** Decodes UTF-8 the way connect-es's default decoder does (a leading byte-order mark is dropped), once checked. */
const utf8 = new TextDecoder("utf-8");

/** The textDecoder for requests of `input`: see the module comment. */
function strictJsonOptions(input: DescMessage): StrictJsonOptions {
  const walk = reachesTimestamp(input, new Map()) ? walkerOf(input) : undefined;
  return {
    textDecoder: {
      decode(input?: Uint8Array): string {
        const bytes = input ?? new Uint8Array(0);
        if (!isUtf8(bytes)) throw invalid("the request body is not valid UTF-8");
        const text = utf8.decode(bytes);
        if (walk !== undefined) {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            // protobuf-es reports the syntax error.
            return text;
          }
          walk(json, "");
        }
        return text;
      },
    },
  };
}

/**
 * The same checks on a request body that is already parsed (REST parses it
 * to check it is an object): undefined when `input` holds no Timestamp and
 * protobuf-es's own reading is enough.
 */
export function strictJsonCheck(input: DescMessage): ((json: unknown) => void) | undefined {
  if (!reachesTimestamp(input, new Map())) return undefined;
  const walk = walkerOf(input);
  return (json) => walk(json, "");
}

function invalid(message: string): Error {
  return GatewayError.of("invalid_request", message).toConnectError();
}

/** Checks a JSON value against a message type; `path` is the dotted path of the value ("" for the request). */
type Walker = (json: unknown, path: string) => void;

const walkers = new WeakMap<DescMessage, Walker>();

function walkerOf(desc: DescMessage): Walker {
  const known = walkers.get(desc);
  if (known !== undefined) return known;
  const byKey = new Map<string, { field: DescField; check: Walker }>();
  const walker: Walker = (json, path) => {
    if (json === null || typeof json !== "object" || Array.isArray(json)) return;
    for (const key of Object.keys(json)) {
      const entry = byKey.get(key);
      if (entry === undefined) continue;
      entry.check((json as Record<string, unknown>)[key], path === "" ? entry.field.name : `${path}.${entry.field.name}`);
    }
  };
  walkers.set(desc, walker);
  const reaching = new Map<DescMessage, boolean>();
  for (const field of desc.fields) {
    const check = fieldCheck(field, reaching);
    if (check !== undefined) byKey.set(field.name, { field, check }).set(field.jsonName, { field, check });
  }
  return walker;
}

/** The check of one field's JSON value, or undefined when protobuf-es's own reading is enough. */
function fieldCheck(field: DescField, reaching: Map<DescMessage, boolean>): Walker | undefined {
  if (field.fieldKind === "message") {
    const message = field.message;
    if (message.typeName === TIMESTAMP) return checkTimestamp;
    if (message.typeName.startsWith("google.protobuf.")) return undefined;
    const inner = reachesTimestamp(message, reaching) ? walkerOf(message) : undefined;
    return (json, path) => {
      if (json === null) return;
      if (typeof json !== "object" || Array.isArray(json)) throw invalid(`${path} must be an object`);
      inner?.(json, path);
    };
  }
  if (field.fieldKind === "list" && field.listKind === "message") {
    const message = field.message;
    const inner = message.typeName === TIMESTAMP ? checkTimestamp : reachesTimestamp(message, reaching) ? walkerOf(message) : undefined;
    if (inner === undefined) return undefined;
    return (json, path) => {
      if (Array.isArray(json)) json.forEach((item, i) => inner(item, `${path}[${i}]`));
    };
  }
  return undefined;
}

/** True when a Timestamp can occur somewhere in a message of this type. */
function reachesTimestamp(desc: DescMessage, seen: Map<DescMessage, boolean>): boolean {
  const known = seen.get(desc);
  if (known !== undefined) return known;
  seen.set(desc, false);
  const reaches = desc.fields.some((f) => {
    const message = f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message") ? f.message : undefined;
    if (message === undefined) return false;
    if (message.typeName === TIMESTAMP) return true;
    return !message.typeName.startsWith("google.protobuf.") && reachesTimestamp(message, seen);
  });
  seen.set(desc, reaches);
  return reaches;
}

const MIN_MS = -62_135_596_800_000; // 0001-01-01T00:00:00Z
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/** An RFC 3339 timestamp that names a real instant: the checks protobuf-es leaves to `Date.parse`. */
function checkTimestamp(json: unknown, path: string): void {
  if (json === null) return;
  const t = typeof json === "string" ? readRfc3339(json) : undefined;
  if (t === undefined) throw badTimestamp(path, "expected an RFC 3339 string such as 2024-01-15T10:00:00Z");
  const text = json as string;
  if (t.month < 1 || t.month > 12) throw badTimestamp(path, `there is no month ${text.slice(5, 7)}`);
  const days = daysInMonth(t.year, t.month);
  if (t.day < 1 || t.day > days) throw badTimestamp(path, `${text.slice(0, 4)}-${text.slice(5, 7)} has no day ${text.slice(8, 10)} (it has ${days} days)`);
  if (t.hour > 23) throw badTimestamp(path, "the hour must be 00 to 23 (midnight is T00:00:00 of the next day)");
  if (t.minute > 59) throw badTimestamp(path, "the minute must be 00 to 59");
  if (t.second > 59) throw badTimestamp(path, "the second must be 00 to 59");
  if (t.offsetHours > 23 || t.offsetMinutes > 59) throw badTimestamp(path, "the UTC offset must be within -23:59 and +23:59");
  const ms = daysFromCivil(t.year, t.month, t.day) * 86_400_000 + ((t.hour * 60 + t.minute - t.offset) * 60 + t.second) * 1000;
  if (ms < MIN_MS || ms > MAX_MS) throw badTimestamp(path, "it must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z");
}

function badTimestamp(path: string, why: string): Error {
  return invalid(`${path} is not a valid timestamp: ${why}`);
}

const FIELD_ERROR = /^cannot decode field ([\w.]+)\.(\w+) from JSON: ([\s\S]*)$/;
const MESSAGE_ERROR = /^cannot decode message ([\w.]+) from JSON:? ([\s\S]*)$/;

/**
 * A protobuf-es JSON decoding error of a request of `input`, with the field
 * named by its path (`booking.duration_minutes: expected number (int32), got "x"`).
 * Messages it does not recognise are returned as they are.
 */
export function nameDecodeError(message: string, input: DescMessage): string {
  const paths = pathsOf(input);
  const field = FIELD_ERROR.exec(message);
  if (field !== null) {
    const path = paths.fields.get(`${field[1]}.${field[2]}`);
    if (path !== undefined) return `${path}: ${field[3]}`;
  }
  const whole = MESSAGE_ERROR.exec(message);
  if (whole !== null) {
    if (whole[1] === input.typeName) return `the request body: ${whole[2]}`;
    const path = paths.messages.get(whole[1]!);
    if (path !== undefined) return `${path}: ${whole[2]}`;
  }
  return message;
}

interface Paths {
  /** `<message type>.<field name>` to the field's path. */
  readonly fields: Map<string, string>;
  /** Message type to the path of the first field of that type. */
  readonly messages: Map<string, string>;
}

const pathCache = new WeakMap<DescMessage, Paths>();

function pathsOf(input: DescMessage): Paths {
  let paths = pathCache.get(input);
  if (paths === undefined) {
    paths = { fields: new Map(), messages: new Map() };
    collect(input, "", paths, new Set());
    pathCache.set(input, paths);
  }
  return paths;
}

function collect(desc: DescMessage, prefix: string, paths: Paths, onPath: Set<DescMessage>): void {
  if (onPath.has(desc)) return;
  onPath.add(desc);
  for (const f of desc.fields) {
    const path = prefix === "" ? f.name : `${prefix}.${f.name}`;
    const key = `${desc.typeName}.${f.name}`;
    if (!paths.fields.has(key)) paths.fields.set(key, path);
    const message = f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message") ? f.message : undefined;
    if (message === undefined) continue;
    // Well-known types occur in many places; their errors are named by the checks above instead.
    if (message.typeName.startsWith("google.protobuf.")) continue;
    if (!paths.messages.has(message.typeName)) paths.messages.set(message.typeName, path);
    collect(message, path, paths, onPath);
  }
  onPath.delete(desc);
}
