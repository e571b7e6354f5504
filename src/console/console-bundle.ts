/**
 * Builds the console's browser files ahead of time, as the last step of
 * `npm run build` (so of `npm start`, the tests and the benchmark): the
 * script with everything it imports (connect-web, the generated service
 * descriptors) and its stylesheet, minified by esbuild, and a brotli and a
 * gzip form of each, so the gateway serves them small without compressing
 * per request.
 *
 * A build whose inputs have not changed is skipped, to keep a warm
 * `npm start` fast: the stamp written beside the output lists every file
 * esbuild read (from its metafile) with a hash of its content, and esbuild is
 * not even loaded while they all match.
 *
 * Run as `node dist/console/console-bundle.js`.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { brotliCompress, constants as zlib, gzip } from "node:zlib";
import { COMPRESSIONS, CONSOLE_BUILD_DIR, CONSOLE_FILES } from "./console-assets.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const STAMP = "build-stamp.json";

export interface BundleOptions {
  /** The folder esbuild works in; input paths are recorded relative to it. */
  readonly root: string;
  /** The script's entry point and the stylesheet, written as `console.js` and `console.css`. */
  readonly script: string;
  readonly style: string;
  readonly outdir: string;
}

export const DEFAULT_BUNDLE: BundleOptions = {
  root: ROOT,
  script: join(ROOT, "src/console/browser/console.ts"),
  style: join(ROOT, "src/console/browser/console.css"),
  outdir: CONSOLE_BUILD_DIR,
};

interface Stamp {
  /** What else decides the output: the esbuild version and the options. */
  readonly recipe: string;
  /** Each input, relative to the root, with the SHA-256 of its content. */
  readonly inputs: Record<string, string>;
}

export interface BundleResult {
  /** False when the output was up to date and nothing was written. */
  readonly built: boolean;
  /** Each output file with its size, raw and compressed. */
  readonly files: readonly { readonly name: string; readonly bytes: number; readonly br: number; readonly gzip: number }[];
}

export async function bundleConsole(options: BundleOptions = DEFAULT_BUNDLE): Promise<BundleResult> {
  const recipe = JSON.stringify({
    esbuild: esbuildVersion(),
    // This file holds the build options: a change to it is a change of recipe.
    builder: hash(await readFile(fileURLToPath(import.meta.url))),
    script: relative(options.root, options.script),
    style: relative(options.root, options.style),
  });
  if (await upToDate(options, recipe)) return { built: false, files: await sizes(options.outdir) };

  const { build } = await import("esbuild");
  const result = await build({
    absWorkingDir: options.root,
    entryPoints: { console: options.script, "console-style": options.style },
    outdir: options.outdir,
    // The stylesheet's entry is named apart from the script's; its output is renamed below.
    entryNames: "[name]",
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome100", "firefox100", "safari16"],
    legalComments: "none",
    metafile: true,
    logLevel: "error",
    write: false,
  });
  await rm(options.outdir, { recursive: true, force: true });
  await mkdir(options.outdir, { recursive: true });
  for (const out of result.outputFiles) {
    const name = out.path.endsWith(".css") ? CONSOLE_FILES.style : CONSOLE_FILES.script;
    const body = Buffer.from(out.contents);
    await writeFile(join(options.outdir, name), body);
    for (const { encoding, suffix } of COMPRESSIONS) await writeFile(join(options.outdir, name + suffix), await compress(encoding, body));
  }
  const inputs: Record<string, string> = {};
  for (const input of Object.keys(result.metafile.inputs).sort()) {
    inputs[input] = hash(await readFile(join(options.root, input)));
  }
  await writeFile(join(options.outdir, STAMP), JSON.stringify({ recipe, inputs } satisfies Stamp, null, 1));
  return { built: true, files: await sizes(options.outdir) };
}

async function upToDate(options: BundleOptions, recipe: string): Promise<boolean> {
  try {
    const stamp = JSON.parse(await readFile(join(options.outdir, STAMP), "utf8")) as Stamp;
    if (stamp.recipe !== recipe) return false;
    await sizes(options.outdir); // every output is there
    const current = await Promise.all(Object.entries(stamp.inputs).map(async ([input, digest]) => hash(await readFile(join(options.root, input))) === digest));
    return current.every(Boolean);
  } catch {
    return false;
  }
}

async function sizes(outdir: string): Promise<BundleResult["files"]> {
  const size = async (file: string) => (await readFile(join(outdir, file))).length;
  return Promise.all(
    Object.values(CONSOLE_FILES).map(async (name) => ({ name, bytes: await size(name), br: await size(name + ".br"), gzip: await size(name + ".gz") })),
  );
}

function compress(encoding: (typeof COMPRESSIONS)[number]["encoding"], body: Buffer): Promise<Buffer> {
  return encoding === "br"
    ? promisify(brotliCompress)(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } })
    : promisify(gzip)(body, { level: zlib.Z_BEST_COMPRESSION });
}

const hash = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

function esbuildVersion(): string {
  try {
    return (createRequire(import.meta.url)("esbuild/package.json") as { version: string }).version;
  } catch {
    return "absent";
  }
}

const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} kB`;

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  bundleConsole().then(
    ({ built, files }) => {
      if (!built) return;
      const summary = files.map((f) => `${f.name} ${kb(f.bytes)} (${kb(f.br)} brotli, ${kb(f.gzip)} gzip)`).join(", ");
      process.stdout.write(`console built in ${relative(process.cwd(), DEFAULT_BUNDLE.outdir) || "."}: ${summary}\n`);
    },
    (e: unknown) => {
      process.stderr.write(`the console could not be built: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
