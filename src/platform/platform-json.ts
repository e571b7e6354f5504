/**
 * Reads a platform's JSON answer into a response message without losing
 * anything: documented fields become typed fields, every other field is kept
 * in the nearest `platform_fields` struct, so RPC clients see what REST clients
 * see. A value of the wrong type breaks the documented schema and is rejected.
 */
import { fromJson, type DescField, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { GatewayError } from "../errors.js";
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

/** Moves undocumented keys into `platform_fields`, recursively. */
function separate(desc: DescMessage, json: JsonObject): JsonObject {
  const { fields, extras } = shapeOf(desc);
  const out: JsonObject = {};
  let unknown: JsonObject | undefined;
  for (const key of Object.keys(json)) {
    const value = json[key];
    const field = fields.get(key);
    if (field === undefined) {
      (unknown ??= {})[key] = value;
    } else if (field.fieldKind === "message" && isPlatformMessage(field.message) && isRecord(value)) {
      out[key] = separate(field.message, value);
    } else if (field.fieldKind === "list" && field.listKind === "message" && isPlatformMessage(field.message) && Array.isArray(value)) {
      const item = field.message;
      out[key] = value.map((v) => (isRecord(v) ? separate(item, v) : v));
    } else {
      out[key] = value;
    }
  }
  if (unknown !== undefined && extras !== undefined) out[extras.name] = unknown;
  return out;
}

export function fromPlatformJson<Desc extends DescMessage>(desc: Desc, json: JsonObject): MessageShape<Desc> {
  try {
    return fromJson(desc, separate(desc, json) as JsonValue);
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
      items[i] = fromJson(field.message, separate(field.message, item) as JsonValue);
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
