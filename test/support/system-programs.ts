/**
 * Programs some tests need that npm does not install: chromium, openssl,
 * curl, h2load. On a developer's machine a missing one skips the tests that
 * need it, with one line naming the Debian package to install. With
 * `CI=true` a missing program is a failure instead: `.ci/run` installs them
 * all, so a missing one there means the run did not test what it claims.
 */
import { spawnSync } from "node:child_process";
import { beforeEach } from "vitest";

export interface SystemProgram {
  /** The command, e.g. `chromium`. */
  readonly command: string;
  /** Its path, when it is installed. */
  readonly path: string | undefined;
  /** True when the tests that need it are to be skipped (missing, and not in CI). */
  readonly skip: boolean;
  /** Throws, naming the package to install, when the program is missing. */
  require(): string;
}

const inCi = process.env.CI === "true";
const announced = new Set<string>();

function locate(commands: readonly string[]): { command: string; path: string | undefined } {
  for (const command of commands) {
    const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
    const path = found.status === 0 ? found.stdout.trim() : "";
    if (path !== "") return { command, path };
  }
  return { command: commands[0]!, path: undefined };
}

/**
 * Looks a program up (the first of `commands` found on PATH). When it is
 * missing outside CI, prints one line saying what is skipped and how to get it.
 */
export function systemProgram(commands: string | readonly string[], debianPackage: string, needed: string): SystemProgram {
  const { command, path } = locate(typeof commands === "string" ? [commands] : commands);
  const missing = `${command} is not installed (apt-get install ${debianPackage})`;
  const skip = path === undefined && !inCi;
  if (skip && !announced.has(command)) {
    announced.add(command);
    process.stderr.write(`skipped: ${needed}: ${missing}\n`);
  }
  return {
    command,
    path,
    skip,
    require() {
      if (path === undefined) throw new Error(`${missing}; CI=true requires it`);
      return path;
    },
  };
}

/** Fails every test of the enclosing block, by name, when `program` is missing (it is then only not skipped under CI). */
export function requireEach(program: SystemProgram): void {
  beforeEach(() => {
    program.require();
  });
}

export const chromium = (needed = "browser tests") => systemProgram(["chromium", "chromium-browser"], "chromium", needed);
export const openssl = (needed = "TLS tests") => systemProgram("openssl", "openssl", needed);
export const curl = (needed = "curl tests") => systemProgram("curl", "curl", needed);
export const promtool = (needed = "the metrics check with promtool") => systemProgram("promtool", "prometheus", needed);
