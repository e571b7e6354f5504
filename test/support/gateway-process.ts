/**
 * A second gateway as a real operating-system process (`src/main.ts` run by
 * Node through tsx), for tests that need two gateways sharing one Redis or
 * that SIGKILL a gateway in the middle of a request. It shares a harness's
 * directory by using the same Redis and key prefix.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** One line the gateway logged (pino JSON). */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface GatewayProcess {
  readonly url: string;
  readonly pid: number;
  /** Every line logged so far, in order. */
  readonly log: readonly LogLine[];
  /** Kills the process with SIGKILL and waits until it is gone. */
  kill(): Promise<void>;
  /** Stops the process (SIGTERM, then SIGKILL) if it still runs. */
  stop(): Promise<void>;
}

/**
 * Starts a gateway process with `env` as its whole configuration (plus PATH),
 * e.g. `REDIS_URL`, `REDIS_KEY_PREFIX`, `WEBHOOK_TIMEOUT_MS`.
 */
export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stderr: string[] = [];
  const log: LogLine[] = [];
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway process did not start: ${stderr.join("")}`)), 15_000);
    void exited.then(() => reject(new Error(`gateway process exited: ${stderr.join("")}`)));
    // Every line is read, so the pipe never fills; the one announcing the port resolves.
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; level?: number };
        if (typeof entry.msg === "string" && typeof entry.level === "number") log.push(entry as LogLine);
        if (entry.msg === "gateway listening" && typeof entry.port === "number") {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not a log line
      }
    });
  }).catch(async (e: unknown) => {
    await stopChild(child, exited);
    throw e;
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    log,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
    stop: () => stopChild(child, exited),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}
