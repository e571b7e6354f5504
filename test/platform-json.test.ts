/**
 * Reading a platform's answer (src/platform/platform-json.ts) against
 * protobuf-es's own JSON reader: a UTC timestamp read in plain arithmetic
 * must give the message protobuf-es gives, and every other spelling, every
 * broken value and every error must stay protobuf-es's. Thousands of
 * generated timestamps, valid and broken, in slots and in a booking, with the
 * field spelled by either name, both, or null, and with undocumented fields.
 */
import { equals, fromJson, toBinary, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SearchAvailabilityResponseSchema } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { CreateBookingResponseSchema } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { LookupCustomerResponseSchema } from "../src/gen/dialstack/partner/v1/customer_pb.js";
import { fromPlatformJson, fromPlatformJsonInSlices } from "../src/platform/platform-json.js";

const PREFIX = "the scheduling platform's answer breaks the documented schema: ";

type Outcome = { ok: true; bytes: Uint8Array; message: unknown } | { ok: false; error: string };

/** What protobuf-es makes of `json` (with no undocumented fields in it, or with them already under `platform_fields`). */
function reference(desc: DescMessage, json: JsonValue): Outcome {
  try {
    const message = fromJson(desc, json);
    return { ok: true, bytes: toBinary(desc, message), message };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

function platform(desc: DescMessage, json: JsonValue): Outcome {
  try {
    const message = fromPlatformJson(desc, json as never);
    return { ok: true, bytes: toBinary(desc, message), message };
  } catch (e) {
    const message = (e as Error).message;
    expect(message.startsWith(PREFIX), message).toBe(true);
    return { ok: false, error: message.slice(PREFIX.length) };
  }
}

function expectSame(desc: DescMessage, json: JsonValue, expected: JsonValue = json): void {
  const want = reference(desc, expected);
  const got = platform(desc, json);
  if (want.ok && got.ok) {
    expect(equals(desc, got.message as never, want.message as never), JSON.stringify(json)).toBe(true);
    expect(Buffer.from(got.bytes).equals(Buffer.from(want.bytes)), JSON.stringify(json)).toBe(true);
  } else {
    expect(got, JSON.stringify(json)).toEqual(want);
  }
}

/** A deterministic generator (xorshift), so a failure names an input that can be run again. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4_294_967_296;
  };
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/** Timestamps: about half valid UTC ones anywhere in the range, the rest near and across every boundary the reading checks. */
function timestamps(count: number, seed: number): string[] {
  const r = random(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const int = (min: number, max: number) => min + Math.floor(r() * (max - min + 1));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    if (r() < 0.5) {
      const [year, month] = [int(1, 9999), int(1, 12)];
      const day = int(1, new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && (year % 4 !== 0 || (year % 100 === 0 && year % 400 !== 0)) ? 1 : 0));
      const digits = int(0, 9);
      const fraction = digits === 0 ? "" : `.${pad(int(0, 10 ** digits - 1), digits)}`;
      out.push(`${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(int(0, 23), 2)}:${pad(int(0, 59), 2)}:${pad(int(0, 59), 2)}${fraction}Z`);
      continue;
    }
    const year = pick([0, 1, 99, 100, 1582, 1900, 1970, 2000, 2024, 2030, 2100, 9999]);
    const month = pick([0, 1, 2, 2, 4, 6, 9, 11, 12, 13]);
    const day = pick([0, 1, 15, 28, 29, 30, 31, 32]);
    const hour = pick([0, 9, 23, 24, 99]);
    const minute = pick([0, 30, 59, 60]);
    const second = pick([0, 1, 59, 60]);
    const fraction = pick(["", "", ".0", ".5", ".123", ".000000001", ".999999999", ".1234567890", "."]);
    const zone = pick(["Z", "Z", "Z", "z", "+00:00", "-00:00", "+05:30", "-23:59", "+24:00", ""]);
    const sep = r() < 0.97 ? "T" : pick(["t", " "]);
    out.push(`${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}${sep}${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${fraction}${zone}`);
  }
  return out;
}

describe("a platform answer reads as protobuf-es reads it", () => {
  it("slot timestamps: 4,000 generated, valid and broken", () => {
    const stamps = timestamps(4000, 0x5eed);
    // Enough of them take each way for the comparison to mean something.
    const valid = stamps.filter((s) => reference(SearchAvailabilityResponseSchema, { availabilities: [{ start_at: s }] }).ok).length;
    expect(valid).toBeGreaterThan(2000);
    expect(valid).toBeLessThan(3500);
    for (const s of stamps) {
      expectSame(SearchAvailabilityResponseSchema, { availabilities: [{ start_at: s, duration_minutes: 30 }] });
    }
  });

  it("odd shapes of the value: not a string, empty, padded, other digits", () => {
    for (const v of [null, 0, 1_893_920_400, true, [], {}, "", " 2030-01-07T09:00:00Z", "2030-01-07T09:00:00Z ", "２０３０-01-07T09:00:00Z", "2030-1-7T9:00:00Z", "2030-01-07T09:00Z", "2030-01-07"]) {
      expectSame(SearchAvailabilityResponseSchema, { availabilities: [{ start_at: v, duration_minutes: 30 }] });
    }
  });

  it("a field spelled by both names, by its JSON name, or null, and errors after a good timestamp", () => {
    const t = "2030-01-07T09:00:00Z";
    const slots: JsonValue[] = [
      { start_at: t, startAt: t },
      { startAt: t, start_at: t },
      { start_at: t, startAt: null },
      { startAt: t, duration_minutes: 30 },
      { start_at: t, duration_minutes: "thirty" },
      { start_at: t, duration_minutes: 30.5 },
      { duration_minutes: 2 ** 31, start_at: t },
      { start_at: t, durationMinutes: 30, duration_minutes: 30 },
    ];
    for (const slot of slots) expectSame(SearchAvailabilityResponseSchema, { availabilities: [slot] });
  });

  it("undocumented fields go to platform_fields, beside timestamps read either way", () => {
    for (const s of timestamps(300, 0xbeef)) {
      const slot = { start_at: s, duration_minutes: 30, room: "b", extra: { nested: [1, "x", null] } };
      const expected = { start_at: s, duration_minutes: 30, platform_fields: { room: "b", extra: { nested: [1, "x", null] } } };
      expectSame(SearchAvailabilityResponseSchema, { availabilities: [slot], cursor: "c1" }, { availabilities: [expected], platform_fields: { cursor: "c1" } });
    }
  });

  it("a booking's timestamps, at every level of the answer", () => {
    const stamps = timestamps(600, 0xb00c);
    for (let i = 0; i < stamps.length; i += 3) {
      const [a, b, c] = [stamps[i]!, stamps[i + 1]!, stamps[i + 2]!];
      const booking = { id: "bk_1", status: "confirmed", start_at: a, end_at: b, created_at: c, customer: { phone: "+15551234567", name: "Ada" } };
      expectSame(CreateBookingResponseSchema, { booking });
    }
  });

  it("a customer lookup's appointment, two levels down, spelled by either name", () => {
    for (const s of timestamps(300, 0xc057)) {
      const appointment = { start_at: s, end_at: "2030-01-07T10:00:00.250Z", status: "booked" };
      expectSame(LookupCustomerResponseSchema, { found: true, customer: { name: "Ada", phone: "+15551234567", existing_appointment: appointment } });
      expectSame(LookupCustomerResponseSchema, { found: true, customer: { existingAppointment: { startAt: s } } });
    }
  });

  it("a long list, read in slices, gives what protobuf-es gives item by item", async () => {
    const stamps = timestamps(1200, 0x511ce);
    const valid = stamps.filter((s) => reference(SearchAvailabilityResponseSchema, { availabilities: [{ start_at: s }] }).ok);
    const json = { availabilities: valid.map((s, i) => ({ start_at: s, duration_minutes: 30 + (i % 5) })) };
    expect(json.availabilities.length).toBeGreaterThan(500);
    const sliced = await fromPlatformJsonInSlices(SearchAvailabilityResponseSchema, json, "availabilities");
    expect(equals(SearchAvailabilityResponseSchema, sliced, fromJson(SearchAvailabilityResponseSchema, json))).toBe(true);
  });
});
