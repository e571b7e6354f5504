/**
 * Reads a platform's JSON answer into a response message without losing
 * anything: documented fields become typed fields, every other field is kept
 * in the nearest `platform_fields` struct, so RPC clients see what REST clients
 * see. A value of the wrong type breaks the documented schema and is rejected.
 *
 * Most of a platform's answer is timestamps (a search answers a list of
 * slots), and protobuf-es reads each with a regular expression, `Date.parse`
 * and a BigInt: about 0.8 µs, most of the cost of a slot. A timestamp written
 * in UTC with `Z` that names a real instant is read here in plain arithmetic
 * instead (calendar.ts) and set on the message after protobuf-es has read
 * the rest; any other spelling, and every error, is left to protobuf-es, so
 * what is accepted and the message it becomes are the same either way.
 */
import { create, fromJson, protoInt64, type DescField, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { GatewayError } from "../errors.js";
import { daysFromCivil, daysInMonth, readRfc3339 } from "../gateway/calendar.js";
import type { JsonObject } from "./webhook-client.js";

const EXTRAS_FIELD = "platform_fields";

interface Shape {
  readonly fields: ReadonlyMap<string, DescField>;
  readonly extras: DescField | undefined;
}

const shapes = new WeakMap<DescMessage, Shape>();

function shapeOf(desc: DescMessage): Shape {
  let shape = shapes.get(desc);
  if (shape === undefined) {
    const fields = new Map<string, DescField>();
    for (const f of desc.fields) {
      if (f.name === EXTRAS_FIELD) continue;
      fields.set(f.name, f);
      fields.set(f.jsonName, f);
    }
    shape = { fields, extras: desc.fields.find((f) => f.name === EXTRAS_FIELD) };
    shapes.set(desc, shape);
  }
  return shape;
}

function isRecord(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isPlatformMessage(desc: DescMessage): boolean {
  return shapeOf(desc).extras !== undefined;
}

/** The timestamp `text` names when it is `YYYY-MM-DDTHH:MM:SS[.f…]Z` of a real date and time, else undefined (left to protobuf-es). */
function utcTimestampOf(text: string): Timestamp | undefined {
  if (text.charCodeAt(text.length - 1) !== 90 /* Z */) return undefined;
  const t = readRfc3339(text);
  if (t === undefined || t.year < 1 || t.month < 1 || t.month > 12 || t.day < 1 || t.day > daysInMonth(t.year, t.month)) return undefined;
  if (t.hour > 23 || t.minute > 59 || t.second > 59) return undefined;
  const seconds = daysFromCivil(t.year, t.month, t.day) * 86_400 + (t.hour * 60 + t.minute) * 60 + t.second;
  return create(TimestampSchema, { seconds: protoInt64.parse(seconds), nanos: t.nanos });
}

function isTimestampField(field: DescField): boolean {
  return field.fieldKind === "message" && field.oneof === undefined && field.message.typeName === TimestampSchema.typeName;
}

/** Sets on a message what its JSON was relieved of: timestamps read here, in its own fields or its children's. */
type Fill = (message: Record<string, unknown>) => void;

function fillAll(fills: readonly Fill[] | undefined): Fill | undefined {
  if (fills === undefined) return undefined;
  return (message) => {
    for (const fill of fills) fill(message);
  };
}

/**
 * The JSON protobuf-es is to read: undocumented keys moved into
 * `platform_fields`, recursively, and UTC timestamps taken out; `fill` sets
 * those on the message read.
 */
function separate(desc: DescMessage, json: JsonObject): { out: JsonObject; fill: Fill | undefined } {
  const { fields, extras } = shapeOf(desc);
  const out: JsonObject = {};
  let unknown: JsonObject | undefined;
  let fills: Fill[] | undefined;
  for (const key of Object.keys(json)) {
    const value = json[key];
    const field = fields.get(key);
    if (field === undefined) {
      (unknown ??= {})[key] = value;
    } else if (isTimestampField(field) && typeof value === "string" && !spelledTwice(field, json)) {
      const ts = utcTimestampOf(value);
      if (ts === undefined) {
        out[key] = value;
      } else {
        const name = field.localName;
        (fills ??= []).push((m) => {
          m[name] = ts;
        });
      }
    } else if (field.fieldKind === "message" && isPlatformMessage(field.message) && isRecord(value)) {
      const child = separate(field.message, value);
      out[key] = child.out;
      const fill = child.fill;
      if (fill !== undefined) {
        // A oneof's member is kept as `{ case, value }` under the oneof's name.
        const name = field.oneof?.localName ?? field.localName;
        const member = field.oneof === undefined ? (m: Record<string, unknown>) => m[name] : (m: Record<string, unknown>) => (m[name] as { value: unknown }).value;
        (fills ??= []).push((m) => fill(member(m) as Record<string, unknown>));
      }
    } else if (field.fieldKind === "list" && field.listKind === "message" && isPlatformMessage(field.message) && Array.isArray(value)) {
      const item = field.message;
      const name = field.localName;
      out[key] = value.map((v, i) => {
        if (!isRecord(v)) return v;
        const child = separate(item, v);
        const fill = child.fill;
        if (fill !== undefined) (fills ??= []).push((m) => fill((m[name] as Record<string, unknown>[])[i]!));
        return child.out;
      });
    } else {
      out[key] = value;
    }
  }
  if (unknown !== undefined && extras !== undefined) out[extras.name] = unknown;
  return { out, fill: fillAll(fills) };
}

/** True when `json` sets `field` by both its names: protobuf-es refuses that, so it must see both. */
function spelledTwice(field: DescField, json: JsonObject): boolean {
  return field.name !== field.jsonName && json[field.name] !== undefined && json[field.jsonName] !== undefined;
}

/** A platform message read from its JSON by protobuf-es, with the timestamps `separate` took out set again. */
function read<Desc extends DescMessage>(desc: Desc, json: JsonObject): MessageShape<Desc> {
  const { out, fill } = separate(desc, json);
  const message = fromJson(desc, out as JsonValue);
  fill?.(message as unknown as Record<string, unknown>);
  return message;
}

export function fromPlatformJson<Desc extends DescMessage>(desc: Desc, json: JsonObject): MessageShape<Desc> {
  try {
    return read(desc, json);
  } catch (e) {
    throw GatewayError.of("platform_invalid_response", `the scheduling platform's answer breaks the documented schema: ${(e as Error).message}`);
  }
}

/**
 * How long a conversion runs before it lets other work in: a platform's answer
 * of many thousand slots costs tens of milliseconds to convert, and unrelated
 * calls must not wait for all of it. A call waits for the loop at each of its
 * steps (request, webhook, answer), so every millisecond of a slice counts
 * several times in its latency: with 2 ms slices, a search served while
 * 1 MB answers were being converted took a median of 6.5 ms, with 0.5 ms
 * slices 3 ms (`npm run abuse -- big`); a yield costs microseconds.
 */
const SLICE_MS = 0.5;

/** Lists shorter than this are converted at once: they cost less than a slice (about 0.7 µs an item). */
const SLICED_FROM_ITEMS = 500;

/**
 * `fromPlatformJson` for an answer whose bulk is one list of messages (the
 * slots of a search): a long list is converted item by item, and the event
 * loop gets a turn every `SLICE_MS`, so converting a large answer never
 * blocks other calls for more than half a millisecond at a time (reading its
 * JSON text, one `JSON.parse`, takes a few milliseconds for 1 MB). (The
 * webhook client reads large answers one at a time, see
 * `oneLargeAnswerAtATime`.)
 */
export async function fromPlatformJsonInSlices<Desc extends DescMessage>(desc: Desc, json: JsonObject, listName: string): Promise<MessageShape<Desc>> {
  const field = desc.fields.find((f) => f.name === listName);
  const list = json[listName];
  if (field === undefined || field.fieldKind !== "list" || field.listKind !== "message" || !Array.isArray(list) || list.length < SLICED_FROM_ITEMS) {
    return fromPlatformJson(desc, json);
  }
  const rest: JsonObject = { ...json };
  delete rest[listName];
  const message = fromPlatformJson(desc, rest);
  const items: unknown[] = new Array(list.length);
  let sliceStart = performance.now();
  for (let i = 0; i < list.length; i++) {
    const item: unknown = list[i];
    if (!isRecord(item)) {
      throw GatewayError.of("platform_invalid_response", `the scheduling platform's answer breaks the documented schema: ${listName}[${i}] is not an object`);
    }
    try {
      items[i] = read(field.message, item);
    } catch (e) {
      throw GatewayError.of("platform_invalid_response", `the scheduling platform's answer breaks the documented schema: ${listName}[${i}]: ${(e as Error).message}`);
    }
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  (message as Record<string, unknown>)[field.localName] = items;
  return message;
}

let largeAnswers: Promise<unknown> = Promise.resolve();

/**
 * Runs the reading (parse and conversion) of large answers one at a time.
 * With several under way, each turn of the event loop would run a slice of
 * each, and a small call would wait behind all of them at every step; and
 * every answer waiting would hold its parsed form in memory. Queued, an
 * answer waits as the bytes it arrived as, and each turn runs at most one slice.
 */
export function oneLargeAnswerAtATime<T>(read: () => Promise<T>): Promise<T> {
  const turn = largeAnswers.then(read);
  largeAnswers = turn.then(
    () => undefined,
    () => undefined,
  );
  return turn;
}

/** Throws `platform_invalid_response` naming `path` unless `ok`. */
export function requirePlatformField(ok: boolean, path: string): void {
  if (!ok) {
    throw GatewayError.of("platform_invalid_response", `the scheduling platform's answer lacks the required field ${path}`);
  }
}
