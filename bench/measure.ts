/**
 * One measured run of one target: the load tool's figures, the CPU time the
 * target's server process spent during the run, its peak resident memory
 * during the run (the kernel's high-water mark, reset before the run), and
 * how many webhooks the platform received, which tells whether the target
 * really relayed each request it answered (or, for replays, did not).
 */
import { figures, type LoadFigures } from "./load/load-result.js";
import { getJson } from "./probe.js";
import { cpuSeconds, peakRssBytes, resetPeakRss, type ServerProcess } from "./processes.js";
import type { PlatformStats } from "./servers/fast-platform.js";
import type { Target } from "./workloads.js";

export interface Sample {
  readonly target: string;
  readonly concurrency: number;
  readonly round: number;
  readonly figures: LoadFigures;
  /** CPU seconds (user + system) of the target's server during the run. */
  readonly cpuS: number;
  /** Peak RSS of the target's server during the run; since its start where the kernel cannot reset it. */
  readonly peakRssBytes: number;
  readonly platformCalls: number;
  /** What was wrong with the run, if anything. */
  readonly problem?: string | undefined;
}

export async function measure(target: Target, platform: ServerProcess, concurrency: number, durationS: number, round: number): Promise<Sample> {
  const pid = target.server.pid;
  const before = await getJson<PlatformStats>(platform.url + "/__stats");
  resetPeakRss(pid);
  const cpuBefore = cpuSeconds(pid);
  const result = await target.run(concurrency, durationS);
  const cpuS = cpuSeconds(pid) - cpuBefore;
  const peak = peakRssBytes(pid);
  const after = await getJson<PlatformStats>(platform.url + "/__stats");
  const f = figures(result);
  const platformCalls = after.requests - before.requests;
  return { target: target.label, concurrency, round, figures: f, cpuS, peakRssBytes: peak, platformCalls, problem: problemOf(target, f, platformCalls, after.badSignatures - before.badSignatures) };
}

function problemOf(target: Target, f: LoadFigures, platformCalls: number, badSignatures: number): string | undefined {
  const failure = f.firstFailure === undefined ? "" : ` (first: ${f.firstFailure})`;
  if (f.ok === 0) return `no successful response${failure}`;
  if (f.failed > (f.ok + f.failed) * 0.01) return `${f.failed} of ${f.ok + f.failed} requests failed${failure}`;
  if (badSignatures > 0) return `the platform rejected ${badSignatures} webhook signatures`;
  if (target.platformCallsPerRequest === 1 && platformCalls < f.ok) {
    return `the platform received ${platformCalls} webhooks for ${f.ok} successful responses`;
  }
  if (target.platformCallsPerRequest === 0 && platformCalls > f.ok * 0.01 + 1) {
    return `replays reached the platform ${platformCalls} times for ${f.ok} responses`;
  }
  return undefined;
}
