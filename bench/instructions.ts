/**
 * Machine instructions per request, counted by valgrind's callgrind: the
 * gateway and the minimal relay under the same REST search load, each run on
 * its own under `valgrind --tool=callgrind`. Counting starts after a warm-up
 * (so the code is compiled) and stops after a fixed number of requests.
 *
 * The load benchmark (run.ts) measures CPU seconds, which on a shared 2-core
 * machine move by 20 to 40% from one round to the next; an instruction count
 * moves by a few per cent between runs (a major garbage collection falling
 * inside the counted requests or not), whatever else the machine is doing. It
 * counts the process's own instructions only, not the kernel's (socket
 * writes), and not time: use it to tell whether a change made the gateway do
 * less work, and the load benchmark for what that is worth in requests per
 * second.
 *
 * Under valgrind a process runs many times slower, and unevenly: with the
 * production idle timeout (4 s) the gateway's pooled platform connections
 * time out between bursts and are opened again, and a new connection costs
 * far more than a request on an open one, so two counts of one build
 * differed by a fifth. The gateway counted here keeps idle platform
 * connections up to the test platform's keep-alive timeout
 * (`PLATFORM_IDLE_CONNECTION_MS`), and the report says how many connections
 * each process opened while it was counted: compare counts that opened
 * about as many. (A build without that setting churns as before.)
 *
 *     npm run bench:instructions -- [--requests=3000] [--warm-up=15000] [--path=rest|connect] [--relay=yes|no]
 *         [--gateway=<another build's dist/main.js>]
 *
 * Needs valgrind (apt-get install valgrind); Redis as the load benchmark
 * finds it (REDIS_URL, or a private redis-server).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { AUTHORIZATION, gatewayEnvironment, gatewaySeed, SEARCH_JSON, SEARCH_PATH_REST, SEARCH_PATH_RPC } from "./fixture.js";
import type { PlatformStats } from "./servers/fast-platform.js";
import { answers200, freePort, killAll, redis, releaseWatchdog, startBenchServer, startProgram, type ServerProcess } from "./processes.js";

const root = fileURLToPath(new URL("..", import.meta.url));

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "3000" },
    "warm-up": { type: "string", default: "15000" },
    path: { type: "string", default: "rest" },
    relay: { type: "string", default: "yes" },
    connections: { type: "string", default: "16" },
    gateway: { type: "string" },
  },
});
const REQUESTS = Number(values.requests);
const WARM_UP = Number(values["warm-up"]);
const CONNECTIONS = Number(values.connections);
const PATH = values.path === "connect" ? SEARCH_PATH_RPC : SEARCH_PATH_REST;

/**
 * valgrind names the pipes `callgrind_control` talks through after the user
 * and `HOST`; the controller must see the same names as the process.
 */
const VALGRIND_NAMES = { USER: "root", LOGNAME: "root", HOST: "127.0.0.1" };

/** Where a counted process spent its instructions: V8's compiler and garbage collector, and the rest (the program itself). */
interface Count {
  readonly total: number;
  readonly compiler: number;
  readonly gc: number;
}

/** Self cost per function from a callgrind output file (names may be compressed to `(id)`). */
function countOf(file: string): Count {
  const names = new Map<string, string>();
  let fn = "";
  let callCost = false;
  const count = { total: 0, compiler: 0, gc: 0 };
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith("fn=")) {
      const m = /^\((\d+)\)(?: (.*))?$/.exec(line.slice(3));
      if (m === null) fn = line.slice(3);
      else {
        if (m[2] !== undefined) names.set(m[1]!, m[2]);
        fn = names.get(m[1]!) ?? "";
      }
      continue;
    }
    if (line.startsWith("cfn=")) {
      const m = /^\((\d+)\) (.*)$/.exec(line.slice(4));
      if (m !== null) names.set(m[1]!, m[2]!);
      continue;
    }
    if (line.startsWith("calls=")) {
      callCost = true;
      continue;
    }
    if (!/^[+\-*\d]/.test(line)) continue;
    const cost = Number(line.split(" ")[1]);
    if (callCost) {
      // The inclusive cost of a call, already counted in the callee's own lines.
      callCost = false;
      continue;
    }
    if (!Number.isFinite(cost)) continue;
    count.total += cost;
    if (/compiler::|maglev|Maglev|turboshaft|RegisterAllocator|InstructionSelector/.test(fn)) count.compiler += cost;
    else if (/Scaveng|MarkCompact|Sweeper|Marking|Evacuat|ConcurrentMarking|heap::base|Heap::/.test(fn)) count.gc += cost;
  }
  return count;
}

function load(url: string, amount: number): Promise<{ ok: number; failed: number }> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        method: "POST",
        headers: { authorization: AUTHORIZATION, "content-type": "application/json" },
        body: JSON.stringify(SEARCH_JSON),
        connections: CONNECTIONS,
        pipelining: 1,
        amount,
        timeout: 60,
      },
      (error, result) =>
        error ? reject(error) : resolve({ ok: result["2xx"], failed: result.non2xx + result.errors + result.timeouts }),
    );
  });
}

function control(pid: number, ...args: string[]): void {
  execFileSync("callgrind_control", [...args, String(pid)], { env: { ...process.env, ...VALGRIND_NAMES }, stdio: "ignore" });
}

/** Warms `server` up, counts `REQUESTS` requests, and returns the count per request. */
async function counted(name: string, server: ServerProcess, outDir: string, platform: ServerProcess): Promise<Count & { failed: number; connections: number }> {
  const url = `${server.url}${PATH}`;
  const warm = await load(url, WARM_UP);
  if (warm.failed > 0) throw new Error(`${name}: ${warm.failed} of the warm-up requests failed`);
  const before = await platformStats(platform);
  control(server.pid, "--instr=on");
  const run = await load(url, REQUESTS);
  control(server.pid, "--instr=off");
  const connections = (await platformStats(platform)).connections - before.connections;
  control(server.pid, "--dump");
  await server.stop(60_000);
  const files = readdirSync(outDir).filter((f) => f.startsWith(`${name}.out`));
  const sum = files.map((f) => countOf(join(outDir, f))).reduce((a, b) => ({ total: a.total + b.total, compiler: a.compiler + b.compiler, gc: a.gc + b.gc }));
  return { total: sum.total / run.ok, compiler: sum.compiler / run.ok, gc: sum.gc / run.ok, failed: run.failed, connections };
}

async function platformStats(platform: ServerProcess): Promise<PlatformStats> {
  return (await (await fetch(`${platform.url}/__stats`)).json()) as PlatformStats;
}

function valgrind(outDir: string, name: string): string[] {
  return ["valgrind", "--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${join(outDir, `${name}.out`)}`, `--log-file=${join(outDir, `${name}.valgrind.log`)}`];
}

async function main(): Promise<void> {
  if (spawnSync("valgrind", ["--version"]).error !== undefined) {
    throw new Error("valgrind is not installed: apt-get install valgrind");
  }
  const build = spawnSync("npm", ["run", "-s", "build"], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (build.status !== 0) throw new Error("npm run build failed");
  const workDir = mkdtempSync(join(os.tmpdir(), "bench-instructions-"));
  const servers: ServerProcess[] = [];
  try {
    const redisInUse = await redis(workDir);
    if (redisInUse.server) servers.push(redisInUse.server);
    const platform = await startBenchServer("test platform", "fast-platform.ts");
    servers.push(platform);
    const seedFile = join(workDir, "seed.json");
    writeFileSync(seedFile, JSON.stringify(gatewaySeed(platform.url)));
    const rows: [string, Count & { failed: number; connections: number }][] = [];

    const port = await freePort();
    const [command, ...args] = valgrind(workDir, "gateway");
    const gateway = await startProgram("gateway", command!, [...args, process.execPath, values.gateway ?? join(root, "dist", "main.js")], {
      env: {
        ...gatewayEnvironment({ port, redisUrl: redisInUse.url, keyPrefix: `bench:${process.pid}:instructions:`, seedFile }),
        ...VALGRIND_NAMES,
        // A process under valgrind runs many times slower: its event loop lags, which is not overload,
        // and its platform connections fall idle for seconds, which is not what they do at full speed.
        OVERLOAD_EVENT_LOOP_DELAY_MS: "0",
        PLATFORM_IDLE_CONNECTION_MS: "600000",
      },
      logFile: join(workDir, "gateway.log"),
      port,
      ready: () => answers200(`http://127.0.0.1:${port}/healthz`),
      readyWithinMs: 300_000,
    });
    servers.push(gateway);
    rows.push(["gateway", await counted("gateway", gateway, workDir, platform)]);

    if (values.relay !== "no") {
      const relay = await startBenchServer("minimal relay", "minimal-relay.ts", { PLATFORM_URL: platform.url, ...VALGRIND_NAMES }, valgrind(workDir, "relay"), 300_000);
      servers.push(relay);
      rows.push(["minimal relay", await counted("relay", relay, workDir, platform)]);
    }

    const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
    const head = `instructions per ${values.path === "connect" ? "Connect JSON" : "REST"} search (${REQUESTS} counted after ${WARM_UP} warm-up, ${CONNECTIONS} connections)`;
    process.stdout.write(`\n${head}\n\n| target | total | program | V8 compiler | garbage collector | platform connections opened |\n|---|---:|---:|---:|---:|---:|\n`);
    for (const [name, c] of rows) {
      if (c.failed > 0) process.stdout.write(`(${name}: ${c.failed} requests failed)\n`);
      process.stdout.write(`| ${name} | ${k(c.total)} | ${k(c.total - c.compiler - c.gc)} | ${k(c.compiler)} | ${k(c.gc)} | ${c.connections} |\n`);
    }
    if (rows.length === 2) {
      const [g, r] = [rows[0]![1], rows[1]![1]];
      process.stdout.write(`\ngateway ÷ minimal relay: ${(g.total / r.total).toFixed(2)}× in total, ${((g.total - g.compiler - g.gc) / (r.total - r.compiler - r.gc)).toFixed(2)}× in the program\n`);
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    releaseWatchdog();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  killAll();
  releaseWatchdog();
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
