/**
 * The built gateway and admin command run as child processes, the way an
 * operator runs them, with an environment that holds only what a test gives
 * (plus PATH and HOME), so no setting of the test run leaks in.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function cleanEnv(env: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...env };
}

/** Runs a command to completion (killed after `timeoutMs`). */
export function run(command: string, args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number; shell?: boolean } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: cleanEnv(options.env), shell: options.shell ?? false, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 15_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `npm run admin -- <args>` without the rebuild: the test run built `dist/` once. */
export function admin(args: readonly string[], env: Record<string, string>): Promise<Finished> {
  return run(process.execPath, ["dist/admin/cli.js", ...args], { env });
}

/** The API key an admin command printed once. */
export function printedKey(out: string): string {
  const m = /^\s+(sk_ptnr_\S+)$/m.exec(out);
  if (m === null) throw new Error(`no key in output:\n${out}`);
  return m[1]!;
}

export interface GatewayProcess {
  readonly child: ChildProcess;
  /** Everything printed on stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Waits until stdout matches. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(): Promise<number | null>;
}

/** Starts `node dist/main.js` with exactly `env` (plus PATH and HOME). */
export function startGatewayProcess(env: Record<string, string>): GatewayProcess {
  const child = spawn(process.execPath, ["dist/main.js"], { cwd: ROOT, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    notify();
  });
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    notify();
  });
  child.once("exit", notify);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out);
          if (m !== null) return done(() => resolve(m));
          if (child.exitCode !== null) return done(() => reject(new Error(`gateway exited (${child.exitCode}): ${err}`)));
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
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      return new Promise((resolve) => {
        child.once("exit", (code) => resolve(code));
        child.kill("SIGTERM");
      });
    },
  };
}
