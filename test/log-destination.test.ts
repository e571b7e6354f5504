/**
 * The log on stdout is written several lines at a time, and still loses no
 * line a crash matters for: each case runs the gateway's logger in a child
 * process and reads what reached its stdout.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const logger = fileURLToPath(new URL("../src/observability/logger.ts", import.meta.url));

interface Run {
  readonly lines: { level: number; msg: string }[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** When each line was read, in ms after the child started. */
  readonly readAt: number[];
  /** When the child's stdout closed, in ms after it started. */
  readonly closedAt: number;
}

/** Runs `body` (with `log`, the gateway's stdout logger, in scope) in a child process. */
function run(body: string): Promise<Run> {
  const script = `import { createLogger } from ${JSON.stringify(logger)};\nconst log = createLogger({ level: "info" });\n${body}\n`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "ignore"] });
  const started = performance.now();
  const lines: Run["lines"] = [];
  const readAt: number[] = [];
  let rest = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const line of parts) {
      lines.push(JSON.parse(line) as Run["lines"][number]);
      readAt.push(performance.now() - started);
    }
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  return new Promise((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      resolve({ lines, code, signal, readAt, closedAt: performance.now() - started });
    }),
  );
}

describe("the log on stdout", () => {
  it("writes every line logged before an uncaught exception, in order", async () => {
    const r = await run(`
      for (let i = 0; i < 50; i++) log.info({}, "before " + i);
      setTimeout(() => { log.info({}, "last"); throw new Error("boom"); }, 10);
    `);
    expect(r.code).toBe(1);
    expect(r.lines.map((l) => l.msg)).toEqual([...Array.from({ length: 50 }, (_, i) => `before ${i}`), "last"]);
  });

  it("writes an error line, and the lines before it, before the next statement runs", async () => {
    const r = await run(`
      log.info({}, "context");
      log.error({}, "failure");
      process.kill(process.pid, "SIGKILL");
    `);
    expect(r.signal).toBe("SIGKILL");
    expect(r.lines.map((l) => [l.level, l.msg])).toEqual([
      [30, "context"],
      [50, "failure"],
    ]);
  });

  it("writes the lines of a turn at its end, without waiting for more lines or for the exit", async () => {
    const r = await run(`
      log.info({}, "one");
      log.info({}, "two");
      setTimeout(() => process.exit(0), 3000);
    `);
    expect(r.lines.map((l) => l.msg)).toEqual(["one", "two"]);
    // Read long before the exit, 3 s later, which would otherwise have written them.
    expect(r.closedAt - r.readAt[1]!).toBeGreaterThan(2000);
  });

  it("writes what waits when the process exits", async () => {
    const r = await run(`
      log.info({}, "goodbye");
      process.exit(3);
    `);
    expect(r.code).toBe(3);
    expect(r.lines.map((l) => l.msg)).toEqual(["goodbye"]);
  });
});

describe("the log on stdout, when its reader goes away", () => {
  it("the process goes on and exits normally, dropping its lines", async () => {
    const script = `import { createLogger } from ${JSON.stringify(logger)};
      const log = createLogger({ level: "info" });
      log.info({}, "first");
      setTimeout(() => {
        for (let i = 0; i < 200; i++) log.info({ i }, "after the reader left");
        log.error({}, "an error line too");
        setTimeout(() => process.exit(0), 100);
      }, 500);`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "ignore"] });
    child.stdout.once("data", () => child.stdout.destroy());
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on("exit", (c, s) => resolve([c, s])));
    clearTimeout(killer);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });
});
