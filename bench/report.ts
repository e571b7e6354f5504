/**
 * The benchmark's report: one markdown table per workload with the median of
 * each target's runs, the gateway's ratios to the baselines, the issue's
 * targets with the figures that answer them, and every raw run. Figures
 * only: nothing here passes or fails a run on speed.
 */
import type { Sample } from "./measure.js";
import { GRPC_SEARCH_SAME_CLIENT, REST_SEARCH_SAME_ROUNDS } from "./workloads.js";

export interface Outcome {
  readonly id: string;
  readonly title: string;
  readonly tool: string;
  readonly note?: string | undefined;
  readonly targets: readonly string[];
  readonly status: "measured" | "not available" | "failed";
  readonly reason?: string | undefined;
  readonly samples: readonly Sample[];
}

export interface RunInfo {
  readonly date: string;
  readonly commit: string;
  readonly command: string;
  readonly machine: { readonly cores: number; readonly cpu: string; readonly memoryGiB: number; readonly kernel: string; readonly node: string };
  readonly tools: Record<string, string>;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly settings: { readonly quick: boolean; readonly concurrency: readonly number[]; readonly durationS: number; readonly warmupS: number; readonly rounds: number };
  readonly gateway: string;
  readonly elapsedS: number;
  /** The gateway's store (absent from older reports: Redis). */
  readonly store?: "redis" | "memory" | undefined;
  /** Median µs of one ioredis command answered, one at a time, before the load (absent from older reports). */
  readonly redisRoundTripUs?: number | undefined;
}

export interface Row {
  readonly target: string;
  readonly concurrency: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuS: number;
  readonly cpuUsPerRequest: number;
  readonly peakRssMiB: number;
  readonly runs: number;
  readonly problems: readonly string[];
}

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The median of each target's runs, per concurrency. */
export function rowsOf(outcome: Outcome): Row[] {
  const rows: Row[] = [];
  const levels = [...new Set(outcome.samples.map((s) => s.concurrency))];
  for (const concurrency of levels) {
    for (const target of outcome.targets) {
      const runs = outcome.samples.filter((s) => s.concurrency === concurrency && s.target === target);
      if (runs.length === 0) continue;
      rows.push({
        target,
        concurrency,
        rps: median(runs.map((r) => r.figures.rps)),
        p50Ms: median(runs.map((r) => r.figures.p50Ms)),
        p99Ms: median(runs.map((r) => r.figures.p99Ms)),
        cpuS: median(runs.map((r) => r.cpuS)),
        cpuUsPerRequest: median(runs.map((r) => (r.figures.ok > 0 ? (r.cpuS * 1e6) / r.figures.ok : NaN))),
        peakRssMiB: median(runs.map((r) => r.peakRssBytes / 2 ** 20)),
        runs: runs.length,
        problems: runs.flatMap((r) => (r.problem === undefined ? [] : [r.problem])),
      });
    }
  }
  return rows;
}

export interface Ratio {
  /** Median over rounds of subject req/s ÷ baseline req/s in the same round. */
  readonly rps: number;
  /** The same for CPU time per request. */
  readonly cpu: number;
  /** Median over rounds of subject p50 − baseline p50, in ms. */
  readonly p50AddedMs: number;
}

/**
 * The measured target against a baseline at one concurrency. Runs alternate
 * (A B A B), so each round's pair shares the machine's load of that moment:
 * the median of the per-round ratios is steadier than a ratio of medians.
 */
export function pairedRatio(outcome: Outcome, concurrency: number, subject: string, baseline: string): Ratio | undefined {
  const runs = (target: string) => outcome.samples.filter((s) => s.concurrency === concurrency && s.target === target && s.figures.ok > 0);
  const a = runs(subject);
  const b = runs(baseline);
  const pairs = a.flatMap((x) => {
    const y = b.find((r) => r.round === x.round);
    return y === undefined ? [] : [[x, y] as const];
  });
  if (pairs.length === 0) return undefined;
  const perRequest = (s: Sample) => s.cpuS / s.figures.ok;
  return {
    rps: median(pairs.map(([x, y]) => x.figures.rps / y.figures.rps)),
    cpu: median(pairs.map(([x, y]) => perRequest(x) / perRequest(y))),
    p50AddedMs: median(pairs.map(([x, y]) => x.figures.p50Ms - y.figures.p50Ms)),
  };
}

/** The workload's measured target (the gateway) against one of its baselines. */
export function ratio(outcome: Outcome | undefined, concurrency: number, baseline: string): Ratio | undefined {
  if (outcome === undefined || outcome.status !== "measured") return undefined;
  return pairedRatio(outcome, concurrency, outcome.targets[0]!, baseline);
}

const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–");
const n2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");
const times = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");
const signedMs = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? "+" : ""}${x.toFixed(2)} ms` : "–");

function workloadSection(o: Outcome): string {
  const lines = [`### ${o.id}: ${o.title}`, "", `Load: ${o.tool}.`];
  if (o.note) lines.push("", o.note);
  lines.push("");
  if (o.status !== "measured") {
    lines.push(`**${o.status}**: ${o.reason ?? ""}`, "");
    return lines.join("\n");
  }
  const [subject, ...baselines] = o.targets;
  lines.push(
    `| conc. | target | req/s | p50 ms | p99 ms | CPU s | CPU µs/req | peak RSS MiB | ${baselines.map((b) => `vs ${b}`).join(" | ")} |`,
    `|---:|---|---:|---:|---:|---:|---:|---:|${baselines.map(() => "---|").join("")}`,
  );
  const rows = rowsOf(o);
  for (const r of rows) {
    const isSubject = r.target === subject;
    const cells = baselines.map((b) => {
      if (!isSubject) return "";
      const q = pairedRatio(o, r.concurrency, r.target, b);
      if (q === undefined) return "–";
      // The platform's own CPU is not comparable with a relay's: against it, only speed and added latency.
      return [`${times(q.rps)} req/s`, b === "platform direct" ? `p50 ${signedMs(q.p50AddedMs)}` : `${times(q.cpu)} CPU/req`].join(", ");
    });
    const problem = r.problems.length > 0 ? ` ⚠ ${r.problems[0]}` : "";
    lines.push(
      `| ${r.concurrency} | ${isSubject ? `**${r.target}**` : r.target}${problem} | ${n0(r.rps)} | ${n2(r.p50Ms)} | ${n2(r.p99Ms)} | ${n2(r.cpuS)} | ${n0(r.cpuUsPerRequest)} | ${n0(r.peakRssMiB)} | ${cells.join(" | ")} |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}

interface TargetLine {
  readonly goal: string;
  readonly figures: string;
  readonly met: string;
}

function verdict(values: readonly (number | undefined)[], ok: (x: number) => boolean): string {
  const known = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (known.length === 0) return "not measured";
  return known.every(ok) ? "met" : "missed";
}

/** The issue's targets, each with the figures that answer it. */
export function targetLines(outcomes: readonly Outcome[], levels: readonly number[]): TargetLine[] {
  const by = (id: string) => outcomes.find((o) => o.id === id);
  const at = (xs: readonly number[]) => xs.filter((c) => levels.includes(c));
  const lines: TargetLine[] = [];

  // Search against its relay at 16 and 64 in flight: REST and gRPC ≥ 0.6×, Connect JSON and gRPC-Web ≥ 0.5×.
  const relayTargets = [
    { id: "rest-search", name: "REST", baseline: "minimal relay", min: 0.6 },
    { id: "grpc-search", name: "gRPC", baseline: "grpc-js relay", min: 0.6 },
    { id: "connect-json-search", name: "Connect JSON", baseline: "minimal relay", min: 0.5 },
    { id: "grpc-web-search", name: "gRPC-Web", baseline: "grpc-js relay", min: 0.5 },
  ] as const;
  for (const t of relayTargets) {
    const ratios = at([16, 64]).map((c) => [c, ratio(by(t.id), c, t.baseline)?.rps] as const);
    lines.push({
      goal: `gateway ${t.name} search ≥ ${t.min}× the ${t.baseline}'s req/s at 16 and 64 in flight`,
      figures: ratios.map(([c, r]) => `c${c}: ${r === undefined ? "n/a" : times(r)}`).join("; "),
      met: verdict(ratios.map(([, r]) => r), (r) => r >= t.min),
    });
  }

  const gatewayRps = (id: string, c: number) => {
    const o = by(id);
    if (o === undefined || o.status !== "measured") return undefined;
    return rowsOf(o).find((r) => r.concurrency === c && r.target === o.targets[0])?.rps;
  };
  const bookingRatio = (booking: string, search: string, c: number) => {
    const b = gatewayRps(booking, c);
    const s = gatewayRps(search, c);
    return b === undefined || s === undefined ? undefined : b / s;
  };
  // Against the gateway's REST search measured in the same rounds; reports without that row, against rest-search.
  const restBooking = levels.map(
    (c) => [c, ratio(by("rest-booking-fresh"), c, REST_SEARCH_SAME_ROUNDS)?.rps ?? bookingRatio("rest-booking-fresh", "rest-search", c)] as const,
  );
  // Against the gateway's gRPC search driven by the same node:http2 client in the same rounds (not h2load's grpc-search).
  const grpcBooking = levels.map((c) => [c, ratio(by("grpc-booking-fresh"), c, GRPC_SEARCH_SAME_CLIENT)?.rps] as const);
  lines.push({
    goal: "booking with a fresh key ≥ 0.7× the search req/s, REST and gRPC, at every concurrency (c1 included)",
    figures: [
      ...restBooking.map(([c, r]) => `REST c${c}: ${r === undefined ? "n/a" : times(r)}`),
      ...grpcBooking.map(([c, r]) => `gRPC c${c}: ${r === undefined ? "n/a" : times(r)}`),
    ].join("; "),
    met: verdict([...restBooking, ...grpcBooking].map(([, r]) => r), (r) => r >= 0.7),
  });

  const added = (["rest-search", "connect-json-search", "connect-binary-h2-search", "grpc-search", "grpc-web-search"] as const).map(
    (id) => [id, levels.includes(1) ? ratio(by(id), 1, "platform direct")?.p50AddedMs : undefined] as const,
  );
  lines.push({
    goal: "p50 latency added over a direct platform call ≤ 1 ms at concurrency 1, on every protocol",
    figures: added.map(([id, ms]) => `${id}: ${ms === undefined ? "n/a" : signedMs(ms)}`).join("; "),
    met: verdict(added.map(([, ms]) => ms), (ms) => ms <= 1),
  });

  const sessionRatio = levels.map((c) => [c, ratio(by("session-search"), c, "gateway, unary gRPC")] as const);
  lines.push({
    goal: "an operation over an open session stream no slower than the same unary gRPC call",
    figures: sessionRatio
      .map(([c, r]) => `c${c}: ${r === undefined ? "n/a" : `${times(r.rps)} req/s, p50 ${signedMs(r.p50AddedMs)}`}`)
      .join("; "),
    met: verdict(sessionRatio.map(([, r]) => r?.rps), (r) => r >= 1),
  });
  return lines;
}

export function renderReport(info: RunInfo, outcomes: readonly Outcome[]): string {
  const m = info.machine;
  const lines = [
    `# Benchmark ${info.date.slice(0, 10)} at ${info.commit}${info.settings.quick ? " (quick smoke run: figures not comparable)" : ""}`,
    "",
    `- command: \`${info.command}\``,
    `- date: ${info.date}; commit: ${info.commit}`,
    `- machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}`,
    `- tools: ${Object.entries(info.tools).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `- load average (1, 5, 15 min) before: ${info.loadBefore.map((x) => x.toFixed(2)).join(", ")}; after: ${info.loadAfter.map((x) => x.toFixed(2)).join(", ")}`,
    `- runs: concurrency ${info.settings.concurrency.join(", ")}; ${info.settings.durationS} s per run; ${info.settings.rounds} rounds alternating the targets (A B C A B C); ${info.settings.warmupS} s warm-up per target and workload; medians shown; ratios are medians of the per-round ratios`,
    `- gateway: ${info.gateway}`,
    ...(info.redisRoundTripUs !== undefined
      ? [`- Redis round trip before the load (ioredis, one \`SET NX PX GET\` at a time): median ${Math.round(info.redisRoundTripUs)} µs; a fresh booking makes two in a row`]
      : []),
    `- elapsed: ${Math.round(info.elapsedS)} s`,
    "",
    "Everything runs on this one machine: load generator, gateway, baselines, test platform and Redis share its cores, so a",
    "target's req/s is bounded by what the others leave it. Compare ratios within a run; CPU µs/req is the least noisy figure.",
    "",
    "## Targets",
    "",
    ...(info.store === "memory"
      ? ["The gateway ran on its in-memory store (`--store=memory`): these figures say what Redis costs, and do not count for the targets, which are of the gateway on Redis.", ""]
      : []),
    "| target | figures (medians) | |",
    "|---|---|---|",
    ...targetLines(outcomes, info.settings.concurrency).map((t) => `| ${t.goal} | ${t.figures} | ${t.met} |`),
    "",
    "## Workloads",
    "",
    "| workload | status | gateway req/s by concurrency |",
    "|---|---|---|",
    ...outcomes.map((o) => {
      const rows = o.status === "measured" ? rowsOf(o).filter((r) => r.target === o.targets[0]) : [];
      const status = o.status === "measured" ? (rows.some((r) => r.problems.length > 0) ? "measured, with problems" : "measured") : `${o.status}: ${o.reason ?? ""}`;
      return `| ${o.id} | ${status} | ${rows.map((r) => `c${r.concurrency}: ${n0(r.rps)}`).join(", ")} |`;
    }),
    "",
    ...outcomes.map(workloadSection),
    "## Every run",
    "",
    "| workload | conc. | round | target | ok | failed | req/s | p50 ms | p99 ms | CPU s | peak RSS MiB | webhooks | problem |",
    "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...outcomes.flatMap((o) =>
      o.samples.map(
        (s) =>
          `| ${o.id} | ${s.concurrency} | ${s.round} | ${s.target} | ${s.figures.ok} | ${s.figures.failed} | ${n0(s.figures.rps)} | ${n2(s.figures.p50Ms)} | ${n2(s.figures.p99Ms)} | ${n2(s.cpuS)} | ${n0(s.peakRssBytes / 2 ** 20)} | ${s.platformCalls} | ${s.problem ?? ""} |`,
      ),
    ),
    "",
  ];
  return lines.join("\n");
}
