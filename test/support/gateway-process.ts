/**
 * A gateway as a real operating-system process, for tests that run it as an
 * operator does (the built `dist/main.js`), that need two gateways sharing
 * one Redis, or that SIGKILL a gateway in the middle of a request (`src/main.ts`
 * run by Node through tsx, no build needed). The environment holds only what
 * the test gives (plus PATH and HOME), so no setting of the test run leaks
 * in; without a `PORT` the gateway gets a free one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { createInterface } from "node:readline";
import { cleanEnv, ROOT } from "./commands.js";
import { freePort } from "./redis-server.js";

/** One line the gateway logged (pino JSON). */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface GatewayProcessOptions {
  /** `dist`: `node dist/main.js` (the test run builds it once); `src`: `src/main.ts` through tsx. */
  readonly entry?: "dist" | "src";
  /** A limit on the process's open files (`ulimit -n`). */
  readonly fileLimit?: number;
  /** How long `stop()` waits after SIGTERM before it sends SIGKILL. */
  readonly stopTimeoutMs?: number;
  /** Also copy the process's stderr to this process's. */
  readonly echoStderr?: boolean;
}

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** Every line logged so far, in order. */
  readonly log: readonly LogLine[];
  /** Everything printed on stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Waits until stdout matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Kills the process with SIGKILL and waits until it is gone. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited in time; the exit code (null when killed). */
  stop(): Promise<number | null>;
}

/** Starts a gateway with `env` as its whole configuration and resolves once `/healthz` answers. */
export async function startGatewayProcess(env: Record<string, string>, options: GatewayProcessOptions = {}): Promise<GatewayProcess> {
  const port = env.PORT !== undefined && env.PORT !== "0" ? Number(env.PORT) : await freePort();
  const main = options.entry === "dist" ? ["dist/main.js"] : ["--import", "tsx", "src/main.ts"];
  const command = options.fileLimit === undefined ? process.execPath : "sh";
  // `exec` makes the shell's pid the gateway's; the limit applies to it.
  const args = options.fileLimit === undefined ? main : ["-c", `ulimit -n ${options.fileLimit}; exec "${process.execPath}" ${main.join(" ")}`];
  const child = spawn(command, args, { cwd: ROOT, env: cleanEnv({ ...env, PORT: String(port) }), stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let out = "";
  let err = "";
  const log: LogLine[] = [];
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  // Every line is read, so the pipe never fills.
  createInterface({ input: child.stdout! }).on("line", (line) => {
    out += line + "\n";
    try {
      const entry = JSON.parse(line) as Partial<LogLine>;
      if (typeof entry.msg === "string" && typeof entry.level === "number") log.push(entry as LogLine);
    } catch {
      // not a log line
    }
    notify();
  });
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    if (options.echoStderr) process.stderr.write(d);
    notify();
  });
  child.once("exit", notify);

  const stop = async (): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const force = setTimeout(() => child.kill("SIGKILL"), options.stopTimeoutMs ?? 10_000);
    await exited;
    clearTimeout(force);
    return child.exitCode;
  };
  const gateway: GatewayProcess = {
    child,
    pid: child.pid!,
    port,
    url: `http://127.0.0.1:${port}`,
    log,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out);
          if (m !== null) return done(() => resolve(m));
          if (child.exitCode !== null || child.signalCode !== null) return done(() => reject(new Error(`gateway exited (${child.exitCode ?? child.signalCode}): ${err}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for ${pattern}; stdout:\n${out}\nstderr:\n${err}`))), timeoutMs);
        const done = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
    stop,
  };
  try {
    await untilHealthy(port, child, 20_000);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}: ${err}`);
  }
  return gateway;
}

async function untilHealthy(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`gateway process exited (${child.exitCode ?? child.signalCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/healthz", timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on("error", () => resolve(false));
      req.on("timeout", () => req.destroy());
    });
    if (ok) return;
    if (Date.now() > until) throw new Error("gateway process did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
}
