/**
 * Prints the behaviour × protocol table (see behaviour-matrix.ts) at the end
 * of a test run, from the cells that passing tests recorded in their `meta`
 * (vitest carries a test's meta from whichever forked worker ran it).
 *
 * A cell shows how many passing tests check it. When the run was the whole
 * suite (every test file of the project, no test name filter, not
 * interrupted), an empty cell of a required row reads MISSING and fails the
 * run. A partial run only prints what it saw ("." for an empty cell).
 */
import type { Reporter, TestModule, TestRunEndReason, TestSpecification, Vitest } from "vitest/node";
import { COLUMNS, META_KEY, REQUIRED, type Behaviour, type Cell, type Column } from "./behaviour-matrix.js";

export default class BehaviourMatrixReporter implements Reporter {
  private vitest: Vitest | undefined;
  private specifications: readonly TestSpecification[] = [];

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunStart(specifications: readonly TestSpecification[]): void {
    this.specifications = specifications;
  }

  async onTestRunEnd(testModules: readonly TestModule[], _errors: unknown, reason: TestRunEndReason): Promise<void> {
    const counts = new Map<string, number>();
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        if (test.result().state !== "passed") continue;
        for (const [behaviour, column] of ((test.meta() as Record<string, unknown>)[META_KEY] ?? []) as Cell[]) {
          const key = cellKey(behaviour, column);
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      }
    }
    const whole = reason !== "interrupted" && (await this.wholeSuiteRan());
    const missing: string[] = [];
    const rows = (Object.keys(REQUIRED) as Behaviour[]).map((behaviour) => {
      const required: readonly Column[] = REQUIRED[behaviour];
      return [
        behaviour,
        ...COLUMNS.map((column) => {
          const n = counts.get(cellKey(behaviour, column)) ?? 0;
          if (n > 0) return String(n);
          if (!required.includes(column)) return "";
          missing.push(`${behaviour} on ${column}`);
          return whole ? "MISSING" : ".";
        }),
      ];
    });
    const log = (line = "") => this.vitest!.logger.log(line);
    log();
    log("Behaviour × protocol (passing tests per cell)");
    for (const line of table(["behaviour", ...COLUMNS], rows)) log(line);
    if (missing.length === 0) {
      log("Every required cell is covered.");
    } else if (whole) {
      log(`The whole suite ran and ${missing.length} required cell(s) are empty:`);
      for (const m of missing) log(`  - ${m}`);
      process.exitCode = 1;
    } else {
      log(`${missing.length} required cell(s) empty in this partial run (the whole suite must fill them).`);
    }
    log();
  }

  /** True when every test file ran, unfiltered. */
  private async wholeSuiteRan(): Promise<boolean> {
    const vitest = this.vitest!;
    if (vitest.getGlobalTestNamePattern() !== undefined) return false;
    if (this.specifications.some((s) => s.testNamePattern || s.testLines?.length || s.testIds?.length || s.testNames?.length)) return false;
    const ran = new Set(this.specifications.map((s) => s.moduleId));
    for (const project of vitest.projects) {
      const { testFiles } = await project.globTestFiles();
      if (testFiles.some((file) => !ran.has(file))) return false;
    }
    return true;
  }
}

function cellKey(behaviour: Behaviour, column: Column): string {
  return `${behaviour}\n${column}`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
}
