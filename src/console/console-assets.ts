/**
 * The console's built browser files, as the gateway serves them. They are
 * built ahead of time (console-bundle.ts, part of `npm run build`), so the
 * gateway needs no bundler at run time: it reads them once at start-up, names
 * each after its content (so browsers may cache it for good), and keeps the
 * brotli and gzip forms the build made beside them.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where the build writes the console: `dist/console/browser/` of the project. This
 * module is `src/console/` when run from source and `dist/console/` when
 * built; both are two levels below the project, so one path fits both.
 */
export const CONSOLE_BUILD_DIR = fileURLToPath(new URL("../../dist/console/browser/", import.meta.url));

/** The files the build writes, and the compressed forms written beside each. */
export const CONSOLE_FILES = { script: "console.js", style: "console.css" } as const;
export const COMPRESSIONS = [
  { encoding: "br", suffix: ".br" },
  { encoding: "gzip", suffix: ".gz" },
] as const;

export type ContentEncoding = (typeof COMPRESSIONS)[number]["encoding"] | "identity";

export interface ConsoleAsset {
  /** The URL path, named after the content: `/console/assets/console.3f2a9c1b0d4e.js`. */
  readonly path: string;
  readonly contentType: string;
  /** The Subresource Integrity value of the uncompressed file. */
  readonly integrity: string;
  readonly bodies: ReadonlyMap<ContentEncoding, Buffer>;
}

export interface ConsoleAssets {
  readonly script: ConsoleAsset;
  readonly style: ConsoleAsset;
}

const CONSOLE_ASSET_PREFIX = "/console/assets/";

const CONTENT_TYPES = { script: "text/javascript; charset=utf-8", style: "text/css; charset=utf-8" } as const;

/** The built console, or undefined when it has not been built. */
export async function loadConsoleAssets(dir: string = CONSOLE_BUILD_DIR): Promise<ConsoleAssets | undefined> {
  try {
    return {
      script: await loadAsset(dir, "script"),
      style: await loadAsset(dir, "style"),
    };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

async function loadAsset(dir: string, kind: keyof typeof CONSOLE_FILES): Promise<ConsoleAsset> {
  const file = CONSOLE_FILES[kind];
  const body = await readFile(join(dir, file));
  const bodies = new Map<ContentEncoding, Buffer>([["identity", body]]);
  for (const { encoding, suffix } of COMPRESSIONS) bodies.set(encoding, await readFile(join(dir, file + suffix)));
  const name = file.replace(/\.(\w+)$/, `.${createHash("sha256").update(body).digest("hex").slice(0, 12)}.$1`);
  return {
    path: CONSOLE_ASSET_PREFIX + name,
    contentType: CONTENT_TYPES[kind],
    integrity: `sha384-${createHash("sha384").update(body).digest("base64")}`,
    bodies,
  };
}

/**
 * The encoding to answer with, from an `Accept-Encoding` header: brotli, then
 * gzip, when the client accepts them (a `q=0` refuses one), else none.
 */
export function chooseEncoding(acceptEncoding: string | undefined): ContentEncoding {
  const accepted = new Map<string, number>();
  for (const part of (acceptEncoding ?? "").split(",")) {
    const [token, ...params] = part.trim().toLowerCase().split(";");
    if (token === undefined || token === "") continue;
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    accepted.set(token, q === undefined ? 1 : Number(q));
  }
  const wildcard = accepted.get("*");
  for (const { encoding } of COMPRESSIONS) {
    const q = accepted.get(encoding) ?? wildcard ?? 0;
    if (q > 0) return encoding;
  }
  return "identity";
}
