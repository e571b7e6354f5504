/**
 * `npm run bench`: measures the gateway as it runs in production against
 * baselines doing the same work, in one run, on loopback only.
 *
 * It builds the gateway, starts a private Redis (or uses a loopback
 * `REDIS_URL`), the fast test platform, the gateway (`node dist/main.js`,
 * Redis store, seed file, `LOG_LEVEL=info`, output to a log file), the
 * minimal `node:http` relay and the `@grpc/grpc-js` relay; then runs every
 * workload at each concurrency, alternating the targets, and writes the report
 * to bench/results/<date>-<commit>.md. Every process it starts is stopped
 * when it ends, and a hard time limit ends it whatever happens.
 *
 * `--quick` is the CI smoke test: one short run per target, figures not
 * comparable; it fails when a workload that should run produced no figures.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, createReadStream, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { gatewayEnvironment, gatewaySeed } from "./fixture.js";
import { h2loadVersion } from "./load/h2load-load.js";
import { measure, type Sample } from "./measure.js";
import { answers200, freePort, killAll, redis, releaseWatchdog, startBenchServer, startProgram, type RedisInUse, type ServerProcess } from "./processes.js";
import { summariseProfile } from "./profile-summary.js";
import { median, renderReport, rowsOf, targetLines, type Outcome, type RunInfo } from "./report.js";
import { workloads, type Target, type Workload } from "./workloads.js";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const resultsDir = join(root, "bench", "results");

const USAGE = `npm run bench [-- options]

  --quick               CI smoke test: every workload once, briefly, at concurrency 16 (under a minute)
  --only=a,b            run only these workloads (ids as in the report)
  --concurrency=1,16,64 concurrency levels
  --duration=5          seconds per measured run
  --warmup=2            seconds of warm-up per target and workload
  --rounds=2            measured runs per target and level, alternating targets
  --profile             run the gateway under node --cpu-prof and summarise the profile
  --compare=REF         also measure the gateway as built from git REF, as one more target in every workload
  --compare-node=PATH   also measure the gateway run by another Node.js binary (with --compare: REF's build on it)
  --gateways-only       run only the gateway targets (with --compare: an A/B of two builds)
  --store=redis|memory  the gateway's store: Redis (default, as in production) or its embedded in-memory store,
                        to tell what Redis costs a call (bookings claim and store their keys there)
  --require-all         treat a workload that is not available on this build as a failure
  --out=FILE            report path (default bench/results/<date>-<commit>.md)
  --keep-logs           keep the gateway log even when the run succeeds`;

interface Settings {
  readonly quick: boolean;
  readonly only: readonly string[] | undefined;
  readonly concurrency: readonly number[];
  readonly durationS: number;
  readonly warmupS: number;
  readonly rounds: number;
  readonly profile: boolean;
  readonly compare: string | undefined;
  readonly compareNode: string | undefined;
  readonly gatewaysOnly: boolean;
  readonly requireAll: boolean;
  readonly out: string | undefined;
  readonly keepLogs: boolean;
  readonly store: "redis" | "memory";
}

function settings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      concurrency: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      rounds: { type: "string" },
      profile: { type: "boolean", default: false },
      compare: { type: "string" },
      "compare-node": { type: "string" },
      "gateways-only": { type: "boolean", default: false },
      "require-all": { type: "boolean", default: false },
      out: { type: "string" },
      "keep-logs": { type: "boolean", default: false },
      store: { type: "string", default: "redis" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const number = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} must be a number from ${min} to ${max}`);
    return v;
  };
  const quick = values.quick!;
  if (values.store !== "redis" && values.store !== "memory") throw new Error("--store must be redis or memory");
  const concurrency = values.concurrency?.split(",").map((c) => number("concurrency", c, 1, 1, 1024)) ?? (quick ? [16] : [1, 16, 64]);
  return {
    quick,
    only: values.only?.split(",").map((s) => s.trim()),
    concurrency,
    durationS: number("duration", values.duration, quick ? 1 : 5, 0.5, 600),
    warmupS: number("warmup", values.warmup, quick ? 0 : 2, 0, 600),
    rounds: Math.round(number("rounds", values.rounds, quick ? 1 : 2, 1, 20)),
    profile: values.profile!,
    compare: values.compare,
    compareNode: values["compare-node"],
    gatewaysOnly: values["gateways-only"]!,
    requireAll: values["require-all"]!,
    out: values.out,
    keepLogs: values["keep-logs"]!,
    store: values.store,
  };
}

function log(line: string): void {
  process.stderr.write(line + "\n");
}

function git(...args: string[]): string {
  return spawnSync("git", args, { cwd: root, encoding: "utf8" }).stdout?.trim() ?? "";
}

/** Lines of the gateway log at level error or worse (pino: 50, 60). */
async function gatewayErrors(logFile: string): Promise<string[]> {
  const found: string[] = [];
  if (!existsSync(logFile)) return found;
  const lines = createInterface({ input: createReadStream(logFile) });
  for await (const line of lines) {
    if (/"level":(5|6)\d/.test(line) && found.length < 5) found.push(line.slice(0, 400));
  }
  return found;
}

async function runWorkload(w: Workload, s: Settings, platform: ServerProcess): Promise<Outcome> {
  const base = { id: w.id, title: w.title, tool: w.tool, note: w.note, targets: w.targets.map((t) => t.label) };
  const failed = (reason: string, samples: Sample[] = []): Outcome => ({ ...base, status: "failed", reason, samples });
  const [subject, ...baselines] = w.targets;
  try {
    const missing = await subject!.check();
    if (missing !== undefined) {
      log(`[${w.id}] not available: ${missing}`);
      return { ...base, status: "not available", reason: missing, samples: [] };
    }
  } catch (e) {
    return failed(`${subject!.label}: ${(e as Error).message}`);
  }
  const lacking = new Set<Target>();
  for (const b of baselines) {
    try {
      const missing = await b.check();
      if (missing !== undefined && b.mayLack === true) {
        log(`[${w.id}] ${b.label} left out: ${missing}`);
        lacking.add(b);
      } else if (missing !== undefined) return failed(`${b.label}: ${missing}`);
    } catch (e) {
      return failed(`${b.label}: ${(e as Error).message}`);
    }
  }
  const targets = w.targets.filter((t) => !lacking.has(t));
  if (s.warmupS > 0) {
    for (const t of targets) {
      try {
        await t.run(Math.max(...s.concurrency), s.warmupS);
      } catch (e) {
        return failed(`warm-up of ${t.label}: ${(e as Error).message}`);
      }
    }
  }
  const samples: Sample[] = [];
  for (const concurrency of s.concurrency) {
    for (let round = 1; round <= s.rounds; round++) {
      for (const t of targets) {
        let sample: Sample;
        try {
          sample = await measure(t, platform, concurrency, s.durationS, round);
        } catch (e) {
          const problem = `run failed: ${(e as Error).message}`;
          sample = { target: t.label, concurrency, round, figures: { ok: 0, failed: 0, rps: 0, p50Ms: NaN, p99Ms: NaN }, cpuS: NaN, peakRssBytes: NaN, platformCalls: 0, problem };
        }
        samples.push(sample);
        const f = sample.figures;
        log(
          `[${w.id}] c${concurrency} r${round} ${t.label.padEnd(22)} ${Math.round(f.rps).toString().padStart(6)} req/s  p50 ${f.p50Ms.toFixed(2)} ms  p99 ${f.p99Ms.toFixed(2)} ms  cpu ${sample.cpuS.toFixed(2)} s${sample.problem ? `  ⚠ ${sample.problem}` : ""}`,
        );
      }
    }
  }
  return { ...base, targets: targets.map((t) => t.label), status: "measured", samples };
}

async function main(): Promise<number> {
  const started = Date.now();
  const argv = process.argv.slice(2);
  const s = settings(argv);
  if (!existsSync("/proc/self/stat")) throw new Error("the benchmark reads /proc for CPU time and memory: it needs Linux");
  const h2load = h2loadVersion();
  if (h2load === undefined) {
    log("h2load is not installed. It drives the HTTP/2 workloads; install it with:\n\n    apt-get install nghttp2-client\n");
    return 2;
  }

  const stamp = new Date().toISOString();
  const commit = git("rev-parse", "--short", "HEAD") + (git("status", "--porcelain", "--untracked-files=no") === "" ? "" : "-dirty");
  // A profiled run, a quick run and a comparison each get their own report, so one never overwrites another of the same commit.
  const name = `${stamp.slice(0, 10)}-${commit}${s.compare !== undefined ? `-vs-${s.compare}` : ""}${s.quick ? "-quick" : ""}${s.profile ? "-profile" : ""}`;
  const workDir = join(resultsDir, `run-${stamp.replace(/[:.]/g, "")}.tmp`);
  mkdirSync(workDir, { recursive: true });
  const loadBefore = os.loadavg();

  log("building the gateway (npm run build)...");
  const build = spawnSync("npm", ["run", "-s", "build"], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (build.status !== 0) throw new Error("npm run build failed");

  const servers: ServerProcess[] = [];
  let redisInUse: RedisInUse | undefined;
  const prefix = `bench:${process.pid}:${Date.now()}:`;
  const gatewayLogs = [join(workDir, "gateway.log")];
  const gatewayLog = gatewayLogs[0]!;
  const outcomes: Outcome[] = [];
  let reference: { server: ServerProcess; label: string } | undefined;
  let redisRoundTripUs: number | undefined;
  try {
    redisInUse = await redis(workDir);
    if (redisInUse.server) servers.push(redisInUse.server);
    redisRoundTripUs = await redisRoundTrip(redisInUse.url, `${prefix}round-trip:`);
    const platform = await startBenchServer("test platform", "fast-platform.ts");
    servers.push(platform);
    const seedFile = join(workDir, "seed.json");
    writeFileSync(seedFile, JSON.stringify(gatewaySeed(platform.url), null, 2));
    const startGateway = async (name: string, mainJs: string, logFile: string, profileDir: string | undefined, node = process.execPath) => {
      const port = await freePort();
      return startProgram(name, node, [...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), mainJs], {
        env: gatewayEnvironment({ port, redisUrl: s.store === "redis" ? redisInUse!.url : undefined, keyPrefix: `${prefix}${name.replace(/\W+/g, "-")}:`, seedFile }),
        logFile,
        port,
        ready: () => answers200(`http://127.0.0.1:${port}/healthz`),
      });
    };
    const gateway = await startGateway("gateway", join(root, "dist", "main.js"), gatewayLogs[0]!, s.profile ? join(workDir, "profile") : undefined);
    servers.push(gateway);
    if (s.compare !== undefined || s.compareNode !== undefined) {
      let mainJs = join(root, "dist", "main.js");
      let label = "gateway";
      if (s.compare !== undefined) {
        const ref = git("rev-parse", "--short", s.compare);
        if (ref === "") throw new Error(`--compare: ${s.compare} is not a commit`);
        log(`building the reference gateway at ${ref}...`);
        mainJs = buildReference(s.compare, join(workDir, "reference"));
        label += ` @${ref}`;
      }
      let node = process.execPath;
      if (s.compareNode !== undefined) {
        node = s.compareNode;
        const version = spawnSync(node, ["--version"], { encoding: "utf8" }).stdout?.trim();
        if (!version) throw new Error(`--compare-node: ${node} does not run`);
        label += ` on node ${version}`;
      }
      gatewayLogs.push(join(workDir, "gateway-reference.log"));
      reference = { server: await startGateway(label, mainJs, gatewayLogs[1]!, undefined, node), label };
      servers.push(reference.server);
    }
    const minimalRelay = await startBenchServer("minimal relay", "minimal-relay.ts", { PLATFORM_URL: platform.url });
    servers.push(minimalRelay);
    const grpcRelay = await startBenchServer("grpc-js relay", "grpc-js-relay.ts", { PLATFORM_URL: platform.url });
    servers.push(grpcRelay);
    log(`gateway pid ${gateway.pid} on ${gateway.url} (log: ${relative(root, gatewayLog)}); minimal relay ${minimalRelay.url}; grpc-js relay ${grpcRelay.url}; platform ${platform.url}`);

    const all = workloads({ gateway, reference, minimalRelay, grpcRelay, platform }, workDir);
    const unknown = s.only?.filter((id) => !all.some((w) => w.id === id)) ?? [];
    if (unknown.length > 0) throw new Error(`unknown workload ${unknown.join(", ")}; workloads: ${all.map((w) => w.id).join(", ")}`);
    const gateways = new Set([gateway, reference?.server]);
    for (const w of all.filter((w) => s.only === undefined || s.only.includes(w.id))) {
      const targets = s.gatewaysOnly ? w.targets.filter((t) => gateways.has(t.server)) : w.targets;
      outcomes.push(await runWorkload({ ...w, targets }, s, platform));
    }

    for (const server of [...servers].reverse()) await server.stop();
  } finally {
    for (const server of servers) await server.stop(1000);
    if (redisInUse !== undefined && redisInUse.server === undefined) await dropKeys(redisInUse.url, prefix);
    releaseWatchdog();
  }

  const errors = (await Promise.all(gatewayLogs.map(gatewayErrors))).flat();
  const info: RunInfo = {
    date: stamp,
    commit,
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`,
    machine: {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model.trim() ?? "unknown",
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      node: process.version,
    },
    tools: { autocannon: autocannonVersion(), h2load: h2load.replace(/^h2load\s+/, "") },
    loadBefore,
    loadAfter: os.loadavg(),
    settings: { quick: s.quick, concurrency: s.concurrency, durationS: s.durationS, warmupS: s.warmupS, rounds: s.rounds },
    gateway: `node dist/main.js, ${s.store === "redis" ? `Redis store (${redisInUse?.description ?? "?"})` : "its in-memory store (--store=memory: no Redis)"}, LOG_LEVEL=info to a file${s.profile ? ", under --cpu-prof" : ""}${reference !== undefined ? `; also ${reference.label} (same settings)` : ""}`,
    elapsedS: (Date.now() - started) / 1000,
    store: s.store,
    redisRoundTripUs,
  };
  const report = renderReport(info, outcomes);
  mkdirSync(resultsDir, { recursive: true });
  const out = s.out ?? join(resultsDir, `${name}.md`);
  writeFileSync(out, report);
  writeFileSync(out.replace(/\.md$/, "") + ".json", JSON.stringify({ info, outcomes: outcomes.map((o) => ({ ...o, rows: o.status === "measured" ? rowsOf(o) : [] })) }, null, 2));

  if (s.profile) {
    const profiles = existsSync(join(workDir, "profile")) ? readdirSync(join(workDir, "profile")).filter((f) => f.endsWith(".cpuprofile")) : [];
    for (const p of profiles) {
      const kept = join(resultsDir, `${name}-gateway.cpuprofile`);
      copyFileSync(join(workDir, "profile", p), kept);
      log(`\ngateway CPU profile: ${relative(root, kept)} (open in Chrome DevTools or speedscope)\n`);
      log(summariseProfile(kept, 25));
    }
  }

  // The verdict: figures are never judged, only whether each workload produced them.
  const problems: string[] = [];
  for (const o of outcomes) {
    if (o.status === "failed") problems.push(`${o.id}: ${o.reason}`);
    if (o.status === "not available" && s.requireAll) problems.push(`${o.id}: not available (${o.reason})`);
    for (const r of o.status === "measured" ? rowsOf(o) : []) {
      if (r.problems.length > 0) problems.push(`${o.id} c${r.concurrency} ${r.target}: ${r.problems[0]}`);
    }
  }
  if (errors.length > 0) problems.push(`the gateway logged errors, e.g. ${errors[0]}`);

  log("");
  for (const t of targetLines(outcomes, s.concurrency)) log(`${t.met.padEnd(12)} ${t.goal}\n             ${t.figures}`);
  log("");
  for (const o of outcomes) log(`${o.id.padEnd(26)} ${o.status}${o.reason ? `: ${o.reason}` : ""}`);
  log(`\nreport: ${relative(root, out)}`);
  if (problems.length > 0) {
    log(`\n${problems.length} problem(s):\n  ${problems.join("\n  ")}\ngateway log kept: ${relative(root, gatewayLog)}`);
    return 1;
  }
  if (!s.keepLogs) rmSync(workDir, { recursive: true, force: true });
  return 0;
}

/** Builds the gateway as it was at `ref` into `dir` (sources from git, this checkout's node_modules); returns its main.js. */
function buildReference(ref: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const archive = spawnSync("git", ["archive", "--format=tar", ref], { cwd: root, maxBuffer: 256 * 2 ** 20 });
  if (archive.status !== 0) throw new Error(`git archive ${ref} failed: ${archive.stderr.toString()}`);
  const untar = spawnSync("tar", ["-x", "-C", dir], { input: archive.stdout });
  if (untar.status !== 0) throw new Error(`unpacking ${ref} failed: ${untar.stderr.toString()}`);
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
  const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(dir, "tsconfig.build.json")], { stdio: "inherit" });
  if (tsc.status !== 0) throw new Error(`building ${ref} failed`);
  return join(dir, "dist", "main.js");
}

function autocannonVersion(): string {
  try {
    return (JSON.parse(spawnSync("node", ["-p", "JSON.stringify(require('autocannon/package.json'))"], { cwd: root, encoding: "utf8" }).stdout) as { version: string }).version;
  } catch {
    return "?";
  }
}

/**
 * The median time, in µs, of one Redis command sent from this process with
 * ioredis and answered, one at a time on an otherwise idle machine (a claim's
 * `SET NX PX GET`): what each of a fresh booking's two round trips costs at
 * the least, to read the booking figures at concurrency 1 by.
 */
async function redisRoundTrip(url: string, prefix: string): Promise<number | undefined> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  try {
    await client.connect();
    const times: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const started = process.hrtime.bigint();
      await client.set(`${prefix}${i}`, "x".repeat(100), "PX", 60_000, "NX", "GET");
      if (i >= 1000) times.push(Number(process.hrtime.bigint() - started) / 1000);
    }
    return median(times);
  } catch (e) {
    log(`could not measure the Redis round trip: ${(e as Error).message}`);
    return undefined;
  } finally {
    client.disconnect();
  }
}

async function dropKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  try {
    await client.connect();
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } catch (e) {
    log(`could not remove the benchmark's keys (${prefix}*) from Redis: ${(e as Error).message}`);
  } finally {
    client.disconnect();
  }
}

function hardLimitS(argv: string[]): number {
  try {
    const s = settings(argv);
    const runs = 30 * s.concurrency.length * s.rounds * (s.durationS + 3) + 30 * (s.warmupS + 2);
    return s.quick ? Math.max(150, runs) : runs + 300;
  } catch {
    return 60;
  }
}

const limit = hardLimitS(process.argv.slice(2));
setTimeout(() => {
  log(`bench: stopped at its hard time limit (${limit} s)`);
  killAll();
  releaseWatchdog();
  process.exit(3);
}, limit * 1000).unref();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll();
    releaseWatchdog();
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log(`bench: ${(e as Error).message}`);
    killAll();
    releaseWatchdog();
    process.exit(1);
  },
);
