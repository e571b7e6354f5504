/**
 * The README's reference tables are checked against the code, so neither can
 * change without the other: the configuration table names exactly the
 * variables `loadConfig` reads, each integer setting's range is the one it
 * enforces, and the Logs table names exactly the conditions the code logs.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** The rows of the first table under `heading`, as arrays of cells. */
function tableUnder(heading: string): string[][] {
  const section = README.slice(README.indexOf(`\n${heading}\n`));
  expect(section.length, heading).toBeLessThan(README.length);
  const lines = section.split("\n");
  const first = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.slice(1, -1).split(" | ").map((c) => c.trim()));
  }
  return rows;
}

/** The names in backquotes of a cell: `A`, `B` → [A, B]. */
const namesIn = (cell: string): string[] => [...cell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!);

/** Every variable `loadConfig` looks at, with and without span export (whose settings are only read when it is on). */
function variablesRead(): Set<string> {
  const seen = new Set<string>();
  const recording = (given: Record<string, string>) =>
    new Proxy(given, {
      get(target, name) {
        if (typeof name === "string") seen.add(name);
        return target[name as string];
      },
    });
  loadConfig(recording({}), { fdLimit: 1024 });
  loadConfig(recording({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }), { fdLimit: 1024 });
  return seen;
}

describe("the README's configuration table", () => {
  const rows = tableUnder("## Configuration");

  it("names every variable the gateway reads, and no other", () => {
    const documented = new Set(rows.flatMap((r) => namesIn(r[0]!)));
    const read = variablesRead();
    expect([...read].filter((n) => !documented.has(n)).sort(), "read but not in the README").toEqual([]);
    expect([...documented].filter((n) => !read.has(n)).sort(), "in the README but never read").toEqual([]);
  });

  it("gives each integer setting the range it is held to", () => {
    const ranges = rows
      .map((r) => ({ name: namesIn(r[0]!)[0]!, range: /^`(\d+)`–`(\d+)`/.exec(r[2]!) }))
      .filter((r) => r.range !== null)
      .map(({ name, range }) => ({ name, min: Number(range![1]), max: Number(range![2]) }));
    expect(ranges.length).toBeGreaterThan(25);
    // Room for every bound of the others: timeouts that must exceed the webhook timeout, headers within the request timeout.
    const others = { WEBHOOK_TIMEOUT_MS: "100", HEADERS_TIMEOUT_MS: "100", REQUEST_TIMEOUT_MS: "3600000" };
    const refusal = (name: string, value: number): string | undefined => {
      try {
        loadConfig({ ...others, [name]: String(value) }, { fdLimit: 1024 });
        return undefined;
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).variable;
      }
    };
    for (const { name, min, max } of ranges) {
      expect({ name, min: refusal(name, min), max: refusal(name, max) }).toEqual({ name, min: undefined, max: undefined });
      expect({ name, below: min > 0 ? refusal(name, min - 1) : name, above: refusal(name, max + 1) }).toEqual({ name, below: name, above: name });
    }
  });
});

describe("the README's Logs table", () => {
  it("names every condition the code logs, and no other", () => {
    const documented = new Set(tableUnder("### Logs").map((r) => /^`([a-z_]+)`/.exec(r[0]!)?.[1]));
    const src = fileURLToPath(new URL("../src", import.meta.url));
    const logged = new Set<string>();
    for (const file of readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"))) {
      for (const m of readFileSync(join(src, file), "utf8").matchAll(/new ConditionLog\([^,]+,\s*"([a-z_]+)"/g)) logged.add(m[1]!);
    }
    expect(logged.size).toBeGreaterThan(5);
    expect([...logged].filter((c) => !documented.has(c)).sort(), "logged but not in the README").toEqual([]);
    expect([...documented].filter((c) => c !== undefined && !logged.has(c)).sort(), "in the README but never logged").toEqual([]);
  });
});
