/**
 * Commands run as child processes, the built admin command as an operator
 * runs it, with an environment that holds only what a test gives (plus PATH,
 * HOME and the test run's serving path, `servingPathEnv`), so no other
 * setting of the test run leaks in. (The gateway itself: gateway-process.ts.)
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function cleanEnv(env: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...servingPathEnv(), ...env };
}

/**
 * The one setting a test run passes on to every gateway it starts: which
 * path serves unary RPC calls (`UNARY_FAST_PATH`), so that the protocol
 * tests run against the fast path and, in vitest's `general-path` project,
 * against connect-es's general handler.
 */
export function servingPathEnv(): Record<string, string> {
  const value = process.env.UNARY_FAST_PATH;
  return value === undefined || value === "" ? {} : { UNARY_FAST_PATH: value };
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
