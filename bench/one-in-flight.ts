/**
 * Where a call's time goes with one call in flight: the REST search and the
 * REST booking with a fresh key, sent one at a time and in turns (search,
 * booking, search, ...), with the gateway's CPU per request split by thread:
 * its main thread (the event loop: every line of JavaScript, and the system
 * calls it makes) and the rest (V8's garbage collector and compiler threads,
 * libuv's pool).
 *
 * At one call in flight nothing overlaps: the time a booking adds to a search
 * is the work it adds on the main thread plus the waits it adds (Redis's
 * answers). The load benchmark (run.ts) gives req/s and CPU for all threads;
 * this splits them, and with `--syscalls` counts the gateway's system calls
 * per request under strace (which slows it: its timings are not reported).
 *
 *     npm run bench:one-in-flight -- [--store=redis|memory] [--seconds=5] [--rounds=3] [--warmup=5] [--syscalls]
 *
 * It builds the gateway first (`npm run build`). The warm-up sends each call
 * for `--warmup` seconds: V8 goes on optimising the gateway's code for
 * several seconds of calls, and a round measured during that is slower.
 *
 * Needs Linux (`/proc`), Redis as the load benchmark finds it (REDIS_URL, or a
 * private redis-server), and strace for `--syscalls` (apt-get install strace).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { AUTHORIZATION, BOOKING_JSON, BOOKING_PATH_REST, gatewayEnvironment, gatewaySeed, SEARCH_JSON, SEARCH_PATH_REST } from "./fixture.js";
import { answers200, freePort, killAll, redis, releaseWatchdog, startBenchServer, startProgram, type ServerProcess } from "./processes.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
/** The whole run's limit: a gateway that stops answering ends it. */
const HARD_LIMIT_MS = 10 * 60_000;

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "redis" },
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    warmup: { type: "string", default: "5" },
    syscalls: { type: "boolean", default: false },
  },
});
if (values.store !== "redis" && values.store !== "memory") throw new Error("--store must be redis or memory");
const SECONDS = Math.min(60, Math.max(1, Number(values.seconds)));
const ROUNDS = Math.min(10, Math.max(1, Math.round(Number(values.rounds))));
const WARMUP = Math.min(60, Math.max(1, Number(values.warmup)));

type Kind = "search" | "booking";

/** CPU seconds of each of a process's threads, the main thread under "main". */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const name = tid === String(pid) ? "main" : "other";
    out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
  }
  return out;
}

class Client {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private next = 0;
  private readonly search = JSON.stringify(SEARCH_JSON);
  private readonly booking = JSON.stringify(BOOKING_JSON);

  constructor(private readonly port: number) {}

  /** One call; rejects unless it succeeded. */
  call(kind: Kind): Promise<void> {
    const headers: Record<string, string> = { authorization: AUTHORIZATION, "content-type": "application/json" };
    if (kind === "booking") headers["idempotency-key"] = `one-in-flight-${process.pid}-${this.next++}`;
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port: this.port, method: "POST", path: kind === "search" ? SEARCH_PATH_REST : BOOKING_PATH_REST, headers, agent: this.agent },
        (res) => {
          res.resume();
          res.on("end", () => (res.statusCode! < 300 ? resolve() : reject(new Error(`${kind}: status ${res.statusCode}`))));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error(`${kind}: no answer within 10 s`)));
      req.on("error", reject);
      req.end(kind === "search" ? this.search : this.booking);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

interface Row {
  readonly kind: Kind;
  readonly rps: number;
  readonly p50Us: number;
  readonly mainUs: number;
  readonly otherUs: number;
}

async function measureRun(client: Client, gateway: ServerProcess, kind: Kind, seconds: number): Promise<Row> {
  const latencies: number[] = [];
  const before = threadCpu(gateway.pid);
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    const t = performance.now();
    await client.call(kind);
    latencies.push(performance.now() - t);
  }
  const elapsed = (performance.now() - start) / 1000;
  const after = threadCpu(gateway.pid);
  latencies.sort((a, b) => a - b);
  const per = (name: string) => (((after.get(name) ?? 0) - (before.get(name) ?? 0)) * 1e6) / latencies.length;
  return { kind, rps: latencies.length / elapsed, p50Us: latencies[latencies.length >> 1]! * 1000, mainUs: per("main"), otherUs: per("other") };
}

/** System calls that are not the calls' own work (locks, memory mapping): left out of the counts. */
const HOUSEKEEPING = /^(futex|madvise|mmap|munmap|mprotect)$/;

/**
 * System calls of the gateway per request, counted by `strace -c` over
 * `count` calls of `kind`; the housekeeping calls above are left out.
 */
async function syscalls(client: Client, gateway: ServerProcess, kind: Kind, count: number, workDir: string): Promise<[string, number][]> {
  const file = join(workDir, `strace-${kind}.txt`);
  const tracer = spawn("strace", ["-f", "-c", "-o", file, "-p", String(gateway.pid)], { stdio: "ignore" });
  const exited = new Promise((r) => tracer.once("exit", r));
  try {
    await new Promise((r) => setTimeout(r, 1000)); // strace attaches to every thread
    if (tracer.exitCode !== null) throw new Error(`strace could not attach to the gateway (exit code ${tracer.exitCode})`);
    for (let i = 0; i < count; i++) await client.call(kind);
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    // Detached in every case: a gateway left traced would run slowly until it exits.
    tracer.kill("SIGINT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (tracer.exitCode === null) tracer.kill("SIGKILL");
  }
  const rows: [string, number][] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m !== null && m[2] !== "total" && !HOUSEKEEPING.test(m[2]!)) rows.push([m[2]!, Number(m[1]) / count]);
  }
  return rows.sort((a, b) => b[1] - a[1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  if (values.syscalls && spawnSync("strace", ["-V"]).error !== undefined) throw new Error("--syscalls needs strace: apt-get install strace");
  const build = spawnSync("npm", ["run", "-s", "build"], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (build.status !== 0) throw new Error("npm run build failed");
  const workDir = mkdtempSync(join(os.tmpdir(), "bench-one-in-flight-"));
  const servers: ServerProcess[] = [];
  let client: Client | undefined;
  try {
    const redisInUse = values.store === "redis" ? await redis(workDir) : undefined;
    if (redisInUse?.server) servers.push(redisInUse.server);
    const platform = await startBenchServer("test platform", "fast-platform.ts");
    servers.push(platform);
    const seedFile = join(workDir, "seed.json");
    writeFileSync(seedFile, JSON.stringify(gatewaySeed(platform.url)));
    const port = await freePort();
    const gateway = await startProgram("gateway", process.execPath, [join(root, "dist", "main.js")], {
      env: gatewayEnvironment({ port, redisUrl: redisInUse?.url, keyPrefix: `bench:${process.pid}:one-in-flight:`, seedFile }),
      logFile: join(workDir, "gateway.log"),
      port,
      ready: () => answers200(`http://127.0.0.1:${port}/healthz`),
    });
    servers.push(gateway);
    client = new Client(port);
    console.log(
      `gateway store: ${redisInUse === undefined ? "in memory (--store=memory)" : redisInUse.description}; ${WARMUP} s warm-up per call, ${SECONDS} s per run, ${ROUNDS} rounds, one call in flight`,
    );
    for (const kind of ["search", "booking"] as const) await measureRun(client, gateway, kind, WARMUP);
    const rows: Row[] = [];
    console.log("\nround  call      req/s   p50 µs   main thread µs/req   other threads µs/req");
    for (let round = 1; round <= ROUNDS; round++) {
      for (const kind of ["search", "booking"] as const) {
        const row = await measureRun(client, gateway, kind, SECONDS);
        rows.push(row);
        console.log(`${String(round).padStart(5)}  ${kind.padEnd(8)} ${row.rps.toFixed(0).padStart(6)} ${row.p50Us.toFixed(0).padStart(8)} ${row.mainUs.toFixed(0).padStart(20)} ${row.otherUs.toFixed(0).padStart(22)}`);
      }
    }
    const of = (kind: Kind, f: (r: Row) => number) => rows.filter((r) => r.kind === kind).map(f);
    const ratios = (f: (r: Row) => number) => median(of("booking", f).map((b, i) => b / of("search", f)[i]!));
    console.log(
      `\nmedians: search p50 ${median(of("search", (r) => r.p50Us)).toFixed(0)} µs, main thread ${median(of("search", (r) => r.mainUs)).toFixed(0)} µs/req; ` +
        `booking p50 ${median(of("booking", (r) => r.p50Us)).toFixed(0)} µs, main thread ${median(of("booking", (r) => r.mainUs)).toFixed(0)} µs/req`,
    );
    console.log(
      `booking ÷ search (medians of per-round ratios): req/s ${ratios((r) => r.rps).toFixed(2)}×, main thread CPU/req ${ratios((r) => r.mainUs).toFixed(2)}×, ` +
        `main thread CPU/req minus search's: ${median(of("booking", (r) => r.mainUs).map((b, i) => b - of("search", (r) => r.mainUs)[i]!)).toFixed(0)} µs`,
    );
    if (values.syscalls) {
      for (const kind of ["search", "booking"] as const) {
        const counts = await syscalls(client, gateway, kind, 200, workDir);
        console.log(`\nsystem calls of the gateway per ${kind} (strace -c, 200 calls; without futex and memory mapping; under 0.05 left out): ${counts.filter(([, n]) => n >= 0.05).map(([name, n]) => `${name} ${n.toFixed(2)}`).join(", ")}`);
      }
    }
  } finally {
    client?.close();
    for (const s of servers.reverse()) await s.stop().catch(() => {});
    killAll();
    releaseWatchdog();
    rmSync(workDir, { recursive: true, force: true });
  }
}

setTimeout(() => {
  console.error(`one-in-flight: not done within ${HARD_LIMIT_MS / 60_000} minutes; stopping`);
  killAll();
  releaseWatchdog();
  process.exit(1);
}, HARD_LIMIT_MS).unref();

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  killAll();
  process.exit(1);
});
