/**
 * HTTP/2 (or HTTP/1.1) load with nghttp2's h2load: `clients` connections,
 * each with `streams` requests in flight (closed loop), for `durationS`,
 * posting one body file. Latencies come from h2load's per-request log, so
 * they keep microsecond precision.
 *
 * h2load sees HTTP statuses only: a gRPC error inside a 200 counts as a
 * success here. The benchmark checks each target with a real client first
 * and counts the platform's webhooks during the run to catch that.
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import type { LoadResult } from "./load-result.js";

export interface H2loadLoad {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly bodyFile: string;
  readonly clients: number;
  readonly streams: number;
  readonly durationS: number;
  /** HTTP/1.1 instead of HTTP/2 (with `streams` 1). */
  readonly h1?: boolean;
  /** Where h2load writes its per-request log (removed after reading). */
  readonly logFile: string;
}

/** The h2load version, or undefined when it is not installed. */
export function h2loadVersion(): string | undefined {
  const r = spawnSync("h2load", ["--version"], { encoding: "utf8" });
  return r.error !== undefined || r.status !== 0 ? undefined : r.stdout.trim();
}

export function runH2load(load: H2loadLoad): Promise<LoadResult> {
  const args = [
    "-c", String(load.clients),
    "-m", String(load.h1 ? 1 : load.streams),
    "-D", `${Math.max(1, Math.round(load.durationS * 1000))}ms`,
    "-d", load.bodyFile,
    `--log-file=${load.logFile}`,
    ...Object.entries(load.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    ...(load.h1 ? ["--h1"] : []),
    load.url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), load.durationS * 1000 + 30_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(killer);
      if (code !== 0) return reject(new Error(`h2load exited with ${code}: ${out.trim().split("\n").slice(-3).join(" | ")}`));
      const finished = /finished in ([\d.]+)(m?s)/.exec(out);
      const durationS = finished === null ? load.durationS : Number(finished[1]) / (finished[2] === "ms" ? 1000 : 1);
      const latencies: number[] = [];
      let failed = 0;
      let firstFailure: string | undefined;
      let log = "";
      try {
        log = readFileSync(load.logFile, "utf8");
      } catch {
        // No log: no request completed.
      }
      rmSync(load.logFile, { force: true });
      for (const line of log.split("\n")) {
        const [, status, micros] = line.split("\t");
        if (status === undefined || micros === undefined) continue;
        const s = Number(status);
        if (s >= 200 && s < 300) latencies.push(Number(micros) / 1000);
        else {
          failed++;
          firstFailure ??= s <= 0 ? "request failed" : `HTTP ${s}`;
        }
      }
      const errored = /requests: .*?(\d+) errored, (\d+) timeout/.exec(out);
      if (errored !== null) {
        const n = Number(errored[1]) + Number(errored[2]);
        if (n > 0) firstFailure ??= `${n} requests errored or timed out`;
      }
      resolve({ ok: latencies.length, failed, durationS, latenciesMs: latencies, firstFailure });
    });
  });
}
