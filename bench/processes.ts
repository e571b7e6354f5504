/**
 * The processes of a benchmark run: the servers it starts, how it knows they
 * are ready, how it stops them, and what the kernel says about their CPU time
 * and memory (`/proc/<pid>/stat` and `/proc/<pid>/status`). Every process is
 * registered with a watchdog that ends it if the benchmark dies.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { openSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CLOCK_TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** Asks the process to stop (SIGTERM), and kills it if it has not after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

let watchdog: ChildProcess | undefined;

function watch(pid: number): void {
  watchdog ??= spawn(process.execPath, ["--import", "tsx", here("./servers/watchdog.ts")], { stdio: ["pipe", "ignore", "inherit"] });
  watchdog.stdin!.write(`+${pid}\n`);
}

function unwatch(pid: number): void {
  watchdog?.stdin?.write(`-${pid}\n`);
}

/** Lets the watchdog go; call last. */
export function releaseWatchdog(): void {
  watchdog?.stdin?.end();
  watchdog = undefined;
}

const live = new Set<ChildProcess>();

/** Kills every process still running, at once (for an abrupt exit). */
export function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
}

function track(name: string, child: ChildProcess): void {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  live.add(child);
  watch(child.pid);
  child.on("exit", () => {
    live.delete(child);
    unwatch(child.pid!);
  });
}

function stopper(child: ChildProcess): (graceMs?: number) => Promise<void> {
  return (graceMs = 5000) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill("SIGTERM");
    });
}

function exitError(name: string, child: ChildProcess): Promise<never> {
  return new Promise((_, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`${name} exited before it was ready (${signal ?? `code ${code}`})`)));
  });
}

function timeout(name: string, ms: number): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${name} was not ready within ${ms} ms`)), ms).unref());
}

/** Starts one of the servers in bench/servers (it announces its port on stdout). */
export async function startBenchServer(
  name: string,
  file: string,
  env: Record<string, string> = {},
  wrapper: readonly string[] = [],
  readyWithinMs = 20_000,
): Promise<ServerProcess> {
  const command = [...wrapper, process.execPath, "--import", "tsx", here(`./servers/${file}`)];
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ["pipe", "pipe", "inherit"],
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  track(name, child);
  const port = await Promise.race([
    new Promise<number>((resolve) => {
      const lines = createInterface({ input: child.stdout! });
      lines.once("line", (line) => resolve((JSON.parse(line) as { port: number }).port));
    }),
    exitError(name, child),
    timeout(name, readyWithinMs),
  ]);
  return { name, pid: child.pid!, port, url: `http://127.0.0.1:${port}`, stop: stopper(child) };
}

/** Starts a program whose output goes to `logFile`, and waits until `ready` resolves. */
export async function startProgram(
  name: string,
  command: string,
  args: string[],
  options: { env: Record<string, string>; logFile: string; port: number; ready: () => Promise<boolean>; readyWithinMs?: number },
): Promise<ServerProcess> {
  const log = openSync(options.logFile, "a");
  const child = spawn(command, args, { stdio: ["ignore", log, log], env: options.env });
  track(name, child);
  const readyWithinMs = options.readyWithinMs ?? 30_000;
  const deadline = Date.now() + readyWithinMs;
  const exited = exitError(name, child);
  exited.catch(() => {});
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) await exited;
    if (await options.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} was not ready within ${readyWithinMs / 1000} s; see ${options.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name, pid: child.pid!, port: options.port, url: `http://127.0.0.1:${options.port}`, stop: stopper(child) };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** True when `GET url` answers 200. */
export function answers200(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
  });
}

/** User plus system CPU time of a process (all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resets the peak resident set size the kernel keeps (VmHWM); false where the kernel refuses. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Peak resident set size (VmHWM), in bytes. */
export function peakRssBytes(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m === null ? NaN : Number(m[1]) * 1024;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function redisAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setTimeout(1000, () => socket.destroy());
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (d) => {
      socket.destroy();
      resolve(d.toString().startsWith("+PONG"));
    });
    socket.once("error", () => resolve(false));
    socket.once("close", () => resolve(false));
  });
}

export interface RedisInUse {
  readonly url: string;
  readonly description: string;
  readonly server?: ServerProcess;
}

export async function redis(workDir: string): Promise<RedisInUse> {
  const given = process.env.REDIS_URL?.trim();
  if (given) {
    const host = new URL(given).hostname;
    if (!isLoopback(host)) throw new Error(`REDIS_URL must point at this machine (loopback) for a benchmark; got host ${host}`);
    return { url: given, description: "the Redis at REDIS_URL" };
  }
  if (spawnSync("redis-server", ["--version"]).error !== undefined) {
    throw new Error("redis-server is not installed: apt-get install redis-server (or set REDIS_URL to a loopback Redis)");
  }
  const port = await freePort();
  const server = await startProgram("redis-server", "redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workDir], {
    env: { PATH: process.env.PATH ?? "" },
    logFile: join(workDir, "redis.log"),
    port,
    ready: () => redisAnswers(port),
  });
  return { url: `redis://127.0.0.1:${port}`, description: "a private redis-server started for the run", server };
}
