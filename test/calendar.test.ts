/**
 * The arithmetic RFC 3339 reading and writing (src/gateway/calendar.ts)
 * against what it replaced: a regular expression and `Date` for the strict
 * Timestamp check of requests, `toISOString` for the timestamps sent to the
 * platform. Thousands of generated timestamps, valid and broken, must get the
 * same verdict and the same error message from both.
 */
import { describe, expect, it } from "vitest";
import { daysFromCivil, isoOfMillis, readRfc3339 } from "../src/gateway/calendar.js";
import { SearchAvailabilityRequestSchema } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { strictJsonCheck } from "../src/rpc/strict-json.js";

const MIN_MS = -62_135_596_800_000; // 0001-01-01T00:00:00Z
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/** The check as it was written with a regular expression and `Date`: the message it fails with, or undefined. */
function referenceVerdict(json: unknown): string | undefined {
  const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|([+-])(\d{2}):(\d{2}))$/;
  const m = typeof json === "string" ? RFC3339.exec(json) : null;
  if (m === null) return "expected an RFC 3339 string such as 2024-01-15T10:00:00Z";
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12) return `there is no month ${m[2]}`;
  const days = month === 2 ? ((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (day < 1 || day > days) return `${m[1]}-${m[2]} has no day ${m[3]} (it has ${days} days)`;
  if (hour > 23) return "the hour must be 00 to 23 (midnight is T00:00:00 of the next day)";
  if (minute > 59) return "the minute must be 00 to 59";
  if (second > 59) return "the second must be 00 to 59";
  let offsetMinutes = 0;
  if (m[7] !== undefined) {
    const [oh, om] = [Number(m[8]), Number(m[9])];
    if (oh > 23 || om > 59) return "the UTC offset must be within -23:59 and +23:59";
    offsetMinutes = (m[7] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second);
  const ms = date.getTime() - offsetMinutes * 60_000;
  if (ms < MIN_MS || ms > MAX_MS) return "it must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z";
  return undefined;
}

const check = strictJsonCheck(SearchAvailabilityRequestSchema)!;
const PATH = "query.filter.start_at_range.start_at";

function verdict(json: unknown): string | undefined {
  try {
    check({ query: { filter: { start_at_range: { start_at: json } } } });
    return undefined;
  } catch (e) {
    const message = (e as Error).message.replace(/^\[invalid_argument\] /, "");
    expect(message.startsWith(`${PATH} is not a valid timestamp: `), message).toBe(true);
    return message.slice(`${PATH} is not a valid timestamp: `.length);
  }
}

/** A small deterministic generator, so a failure can be reproduced. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    s ^= s >>> 12;
    return (s >>> 0) / 0x1_0000_0000;
  };
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

describe("the strict Timestamp check reads RFC 3339 as the regular expression and Date did", () => {
  const next = random(20261130);
  const int = (below: number) => Math.floor(next() * below);

  /** A timestamp of the right shape whose fields may be out of range, with a fraction and an offset or Z. */
  function shaped(): string {
    const fraction = int(3) === 0 ? "" : `.${pad(int(1_000_000_000), 9).slice(0, 1 + int(9))}`;
    const zone = int(2) === 0 ? "Z" : `${int(2) === 0 ? "+" : "-"}${pad(int(26), 2)}:${pad(int(62), 2)}`;
    const year = int(4) === 0 ? int(10_000) : 1990 + int(60);
    return `${pad(year, 4)}-${pad(int(14), 2)}-${pad(int(33), 2)}T${pad(int(26), 2)}:${pad(int(62), 2)}:${pad(int(62), 2)}${fraction}${zone}`;
  }

  const noise = ["0", "9", "-", ":", "T", "t", "Z", "z", ".", "+", " ", "\u0663", "\uff11", "", "00", "\n"];
  function broken(): string {
    const text = shaped();
    const at = int(text.length + 1);
    const what = int(3);
    const piece = noise[int(noise.length)]!;
    if (what === 0) return text.slice(0, at) + piece + text.slice(at + 1); // replace one character
    if (what === 1) return text.slice(0, at) + piece + text.slice(at); // insert
    return text.slice(0, at) + text.slice(at + 1); // delete
  }

  it("agrees on 20,000 timestamps of the right shape, valid and out of range", () => {
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = shaped();
      const expected = referenceVerdict(text);
      if (expected === undefined) valid++;
      expect(verdict(text), text).toBe(expected);
    }
    // Both kinds are well represented.
    expect(valid).toBeGreaterThan(2000);
    expect(valid).toBeLessThan(18_000);
  });

  it("agrees on 20,000 timestamps with a character replaced, inserted or deleted", () => {
    for (let i = 0; i < 20_000; i++) {
      const text = broken();
      expect(verdict(text), JSON.stringify(text)).toBe(referenceVerdict(text));
    }
  });

  it("agrees on the edges of the range, leap days and values that are not strings", () => {
    const cases: unknown[] = [
      "0001-01-01T00:00:00Z",
      "0000-12-31T23:59:59Z",
      "0001-01-01T00:00:00+00:01",
      "0001-01-01T00:00:00-00:01",
      "9999-12-31T23:59:59Z",
      "9999-12-31T23:59:59.999999999Z",
      "9999-12-31T23:59:59-00:01",
      "9999-12-31T23:59:59+00:01",
      "2024-02-29T00:00:00Z",
      "2023-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z",
      "2000-02-29T00:00:00Z",
      "2030-01-07T24:00:00Z",
      "2030-01-07T10:00:00.Z",
      "2030-01-07T10:00:00.1234567890Z",
      "2030-01-07T10:00:00+0100",
      "2030-01-07 10:00:00Z",
      "",
      42,
      true,
      {},
      [],
    ];
    for (const json of cases) expect(verdict(json), JSON.stringify(json)).toBe(referenceVerdict(json));
  });

  it("reads the offset and the fraction as written", () => {
    expect(readRfc3339("2030-01-07T10:00:00.5-05:30")).toEqual({
      year: 2030,
      month: 1,
      day: 7,
      hour: 10,
      minute: 0,
      second: 0,
      nanos: 500_000_000,
      offset: -330,
      offsetHours: 5,
      offsetMinutes: 30,
    });
    expect(readRfc3339("2030-01-07T10:00:00.000000001Z")?.nanos).toBe(1);
    expect(readRfc3339("2030-01-07T10:00:00.123456789Z")?.nanos).toBe(123_456_789);
    expect(readRfc3339("2030-01-07T10:00:00z")).toBeUndefined();
  });
});

describe("timestamps written for the platform", () => {
  const next = random(7);
  const reference = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

  it("are what toISOString writes, without .000, across the whole Timestamp range", () => {
    const edges = [0, -1, 1, 999, 1000, MIN_MS, MAX_MS, MAX_MS - 999, Date.UTC(2024, 1, 29), Date.UTC(2000, 1, 29, 23, 59, 59, 999), Date.UTC(1900, 2, 1), Date.UTC(999, 11, 31)];
    for (const ms of edges) expect(isoOfMillis(ms), String(ms)).toBe(reference(ms));
    for (let i = 0; i < 50_000; i++) {
      const whole = i % 2 === 0;
      let ms = MIN_MS + Math.floor(next() * (MAX_MS - MIN_MS));
      if (whole) ms -= ((ms % 1000) + 1000) % 1000;
      expect(isoOfMillis(ms), String(ms)).toBe(reference(ms));
    }
    expect(isoOfMillis(Date.UTC(2030, 0, 7, 9, 0, 0))).toBe("2030-01-07T09:00:00Z");
    expect(isoOfMillis(Date.UTC(2030, 0, 7, 9, 0, 0, 5))).toBe("2030-01-07T09:00:00.005Z");
  });

  it("count days as Date.UTC does", () => {
    for (let i = 0; i < 20_000; i++) {
      const year = 1 + Math.floor(next() * 9999);
      const month = 1 + Math.floor(next() * 12);
      const day = 1 + Math.floor(next() * 31);
      const date = new Date(0);
      date.setUTCFullYear(year, month - 1, day);
      expect(daysFromCivil(year, month, day) * 86_400_000, `${year}-${month}-${day}`).toBe(date.getTime());
    }
  });
});
