/**
 * The mutation check: `npm run mutate [-- <words>]`. It applies each bug of
 * mutations.ts (or those whose name contains every given word) to `src/`,
 * one at a time, runs the test files that must catch it, puts the file back,
 * and prints which bugs were caught and which survived. A test suite is only
 * as good as the bugs it fails on; this shows that it still fails on these.
 *
 * Not part of `npm test`: each mutation runs vitest (and its build) anew,
 * which takes minutes in all.
 *
 * The file is restored whatever happens (an error, Ctrl-C, SIGTERM), and the
 * run refuses to start when a file it would mutate has uncommitted changes,
 * so a restore can never lose work. It exits non-zero when a mutation
 * survived, did not compile, or its tests could not run.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MUTATIONS, type Mutation } from "./mutations.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** A run of one mutation's tests; the slowest files take well under a minute. */
const RUN_TIMEOUT_MS = 5 * 60_000;

type Verdict =
  | { readonly kind: "caught"; readonly failed: readonly string[] }
  | { readonly kind: "survived"; readonly passed: number }
  | { readonly kind: "does not compile"; readonly detail: string }
  | { readonly kind: "tests did not run"; readonly detail: string };

/** The mutation applied right now, to restore on any way out. */
let applied: { readonly path: string; readonly original: string } | undefined;
let child: ChildProcess | undefined;

function restore(): void {
  if (applied === undefined) return;
  writeFileSync(applied.path, applied.original);
  applied = undefined;
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (child?.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    restore();
    process.stderr.write(`\nmutate: ${signal}, the mutated file is restored\n`);
    process.exit(130);
  });
}
process.on("exit", restore);

function main(): Promise<number> {
  const words = process.argv.slice(2).map((w) => w.toLowerCase());
  const chosen = MUTATIONS.filter((m) => words.every((w) => m.name.toLowerCase().includes(w)));
  if (chosen.length === 0) {
    process.stderr.write(`mutate: no mutation's name contains ${words.map((w) => JSON.stringify(w)).join(" and ")}\n`);
    return Promise.resolve(2);
  }
  const files = [...new Set(chosen.map((m) => m.file))];
  const dirty = git(["status", "--porcelain", "--", ...files]);
  if (dirty !== "") {
    process.stderr.write(`mutate: refusing to run, files it would mutate have uncommitted changes:\n${dirty}\n`);
    return Promise.resolve(2);
  }
  for (const m of chosen) {
    const count = readFileSync(join(ROOT, m.file), "utf8").split(m.find).length - 1;
    if (count !== 1) {
      process.stderr.write(`mutate: "${m.name}": the text to find occurs ${count} times in ${m.file}, not once:\n  ${m.find}\n`);
      return Promise.resolve(2);
    }
  }
  return runAll(chosen);
}

async function runAll(chosen: readonly Mutation[]): Promise<number> {
  const scratch = mkdtempSync(join(tmpdir(), "mutate-"));
  const verdicts: Verdict[] = [];
  const started = Date.now();
  try {
    for (const [i, m] of chosen.entries()) {
      const t0 = Date.now();
      process.stdout.write(`[${i + 1}/${chosen.length}] ${m.area}: ${m.name}\n    ${m.file}: ${m.find.trim()}\n    ->  ${m.replace.trim() || "(line removed)"}\n`);
      const verdict = await judge(m, scratch);
      verdicts.push(verdict);
      process.stdout.write(`    ${verdictLine(verdict)} (${Math.round((Date.now() - t0) / 1000)} s)\n\n`);
    }
  } finally {
    restore();
    rmSync(scratch, { recursive: true, force: true });
    // The last run built dist/ from a mutated source: build it again from the real one.
    spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-b", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
  }
  const caught = verdicts.filter((v) => v.kind === "caught").length;
  process.stdout.write(`Summary: ${caught} of ${chosen.length} mutations caught in ${Math.round((Date.now() - started) / 1000)} s\n`);
  chosen.forEach((m, i) => {
    const v = verdicts[i]!;
    process.stdout.write(`  ${v.kind === "caught" ? "caught  " : v.kind.toUpperCase()}  ${m.area}: ${m.name}\n`);
  });
  return caught === chosen.length ? 0 : 1;
}

/** Applies `m`, runs its tests, restores the file. */
async function judge(m: Mutation, scratch: string): Promise<Verdict> {
  const path = join(ROOT, m.file);
  const original = readFileSync(path, "utf8");
  applied = { path, original };
  try {
    writeFileSync(path, original.replace(m.find, m.replace));
    const typecheck = spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "--noEmit", "-p", "."], { cwd: ROOT, encoding: "utf8" });
    if (typecheck.status !== 0) return { kind: "does not compile", detail: (typecheck.stdout + typecheck.stderr).trim().split("\n").slice(0, 3).join("\n") };
    const report = join(scratch, "report.json");
    rmSync(report, { force: true });
    const args = ["node_modules/vitest/vitest.mjs", "run", ...m.tests, "--reporter=json", `--outputFile=${report}`];
    if (m.testName !== undefined) args.push("-t", m.testName);
    const { code, output } = await run(args);
    let results: VitestJson;
    try {
      results = JSON.parse(readFileSync(report, "utf8")) as VitestJson;
    } catch {
      return { kind: "tests did not run", detail: `exit ${code}, no report:\n${tail(output)}` };
    }
    const failed = results.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === "failed").map((a) => a.fullName));
    if (failed.length > 0) return { kind: "caught", failed };
    if (code !== 0 || results.numPassedTests === 0) return { kind: "tests did not run", detail: `exit ${code}, ${results.numPassedTests} passed:\n${tail(output)}` };
    return { kind: "survived", passed: results.numPassedTests };
  } finally {
    restore();
  }
}

interface VitestJson {
  readonly numPassedTests: number;
  readonly testResults: readonly { readonly assertionResults: readonly { readonly fullName: string; readonly status: string }[] }[];
}

/** Runs node with `args` in its own process group, so a timeout or a signal stops all it started. */
function run(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const proc = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    child = proc;
    proc.stdout.on("data", (c: Buffer) => chunks.push(c));
    proc.stderr.on("data", (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => {
      chunks.push(Buffer.from(`\nmutate: no result after ${RUN_TIMEOUT_MS / 1000} s, stopped\n`));
      try {
        process.kill(-proc.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
    }, RUN_TIMEOUT_MS);
    proc.on("close", (code) => {
      clearTimeout(timer);
      child = undefined;
      resolve({ code, output: Buffer.concat(chunks).toString("utf8") });
    });
  });
}

function verdictLine(v: Verdict): string {
  switch (v.kind) {
    case "caught":
      return `caught by ${v.failed.length} failing test(s), e.g. "${v.failed[0]}"`;
    case "survived":
      return `SURVIVED: all ${v.passed} tests passed`;
    default:
      return `${v.kind.toUpperCase()}:\n${v.detail.replace(/^/gm, "      ")}`;
  }
}

function tail(text: string): string {
  return text.trim().split("\n").slice(-15).join("\n");
}

function git(args: readonly string[]): string {
  const r = spawnSync("git", args, { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

process.exitCode = await main();
