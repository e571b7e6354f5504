/**
 * How the gateway serves the console, over plain HTTP: the page's security
 * headers and markup, its files named after their content and sent
 * compressed as the client accepts, a clear answer when the console was not
 * built, and a build that runs again only when one of its inputs changed.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { fastify } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chooseEncoding, loadConsoleAssets } from "../src/console/console-assets.js";
import { bundleConsole } from "../src/console/console-bundle.js";
import { registerConsole } from "../src/console/console-plugin.js";
import { send } from "./support/http1.js";
import { startHarness, type Harness } from "./support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

/** GET with an `Accept-Encoding`, the body as received (not decoded). */
function get(url: string, acceptEncoding: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { "accept-encoding": acceptEncoding }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      })
      .on("error", reject);
  });
}

/** The page's `<script>` and stylesheet `<link>`: URL and integrity. */
function linkedAssets(page: string): { url: string; integrity: string }[] {
  return [...page.matchAll(/<(?:script|link rel="stylesheet")[^>]* (?:src|href)="([^"]+)" integrity="([^"]+)"/g)].map((m) => ({ url: m[1]!, integrity: m[2]! }));
}

describe("/console", () => {
  it("is served with a strict Content-Security-Policy and security headers", async () => {
    const res = await send(`${h.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    const csp = Object.fromEntries(String(res.headers["content-security-policy"]).split("; ").map((d) => [d.split(" ")[0], d.split(" ").slice(1).join(" ")]));
    expect(csp).toEqual({
      "default-src": "'none'",
      "script-src": "'self'",
      "style-src": "'self'",
      "connect-src": "'self'",
      "img-src": "data:",
      "base-uri": "'none'",
      "form-action": "'none'",
      "frame-ancestors": "'none'",
      "require-trusted-types-for": "'script'",
      "trusted-types": "'none'",
    });
    expect(res.headers).toMatchObject({
      "x-content-type-options": "nosniff",
      "x-frame-options": "DENY",
      "referrer-policy": "no-referrer",
      "cross-origin-opener-policy": "same-origin",
      "cache-control": "no-cache",
    });
  });

  it("is plain HTML: labeled fields without names, real buttons, no inline script or style", () => send(`${h.url}/console`).then(({ text: page }) => {
    for (const label of ["Partner key", "Bot ID", "Customer name", "Customer phone", "Caller phone", "Day (UTC)", "Days"]) {
      const id = new RegExp(`<label for="([a-z-]+)">${label.replace(/[()]/g, "\\$&")}</label>`).exec(page)?.[1];
      expect(id, label).toBeDefined();
      expect(page).toMatch(new RegExp(`<(input|select) id="${id}"`));
    }
    expect(page).toMatch(/<button type="submit">Search slots<\/button>/);
    expect(page).not.toMatch(/<(input|select)[^>]* name=/);
    expect(page).not.toMatch(/<script(?![^>]* src=)|<style|\sstyle=|\son[a-z]+=/i);
    expect(page).toContain('type="password"');
    const assets = linkedAssets(page);
    expect(assets.map((a) => a.url)).toEqual([expect.stringMatching(/^\/console\/assets\/console\.[0-9a-f]{12}\.css$/), expect.stringMatching(/^\/console\/assets\/console\.[0-9a-f]{12}\.js$/)]);
  }));

  it("serves its files named by content, immutable, with the integrity the page names, compressed as accepted", async () => {
    const { text: page } = await send(`${h.url}/console`);
    for (const { url, integrity } of linkedAssets(page)) {
      const plain = await get(h.url + url, "identity");
      expect(plain.status).toBe(200);
      expect(plain.headers["content-type"]).toBe(url.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8");
      expect(plain.headers).toMatchObject({ "cache-control": "public, max-age=31536000, immutable", vary: "accept-encoding", "x-content-type-options": "nosniff" });
      expect(plain.headers["content-encoding"]).toBeUndefined();
      expect(integrity).toBe(`sha384-${createHash("sha384").update(plain.body).digest("base64")}`);
      expect(url).toContain(`.${createHash("sha256").update(plain.body).digest("hex").slice(0, 12)}.`);

      const br = await get(h.url + url, "gzip, deflate, br");
      expect(br.headers["content-encoding"]).toBe("br");
      expect(br.body.length).toBeLessThan(plain.body.length / 2);
      expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true);
      const gz = await get(h.url + url, "br;q=0, gzip");
      expect(gz.headers["content-encoding"]).toBe("gzip");
      expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
    }
  });

  it("redirects /console/ to /console", async () => {
    const res = await send(`${h.url}/console/`);
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe("/console");
  });

  it("answers an unknown asset with the REST 404 envelope", async () => {
    const res = await send(`${h.url}/console/assets/console.000000000000.js`);
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe("not_found");
  });
});

describe("a gateway whose console was not built", () => {
  it("starts, and /console says how to build it", async () => {
    const empty = mkdtempSync(join(tmpdir(), "console-"));
    try {
      const assets = await loadConsoleAssets(empty);
      expect(assets).toBeUndefined();
      const app = fastify({ logger: false });
      registerConsole(app, assets);
      const res = await app.inject({ url: "/console" });
      expect(res.statusCode).toBe(503);
      expect(res.headers["content-security-policy"]).toContain("default-src 'none'");
      expect(res.body).toContain("npm run build");
      await app.close();
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe("content negotiation", () => {
  it.each([
    [undefined, "identity"],
    ["", "identity"],
    ["gzip", "gzip"],
    ["gzip, deflate, br, zstd", "br"],
    ["br;q=0, gzip;q=0.5", "gzip"],
    ["BR", "br"],
    ["*", "br"],
    ["*;q=0", "identity"],
    ["br;q=0, gzip;q=0", "identity"],
    ["deflate", "identity"],
  ])("Accept-Encoding %j gets %s", (header, expected) => {
    expect(chooseEncoding(header)).toBe(expected);
  });
});

describe("the console build", () => {
  it("runs again only when an input changed", async () => {
    const root = mkdtempSync(join(tmpdir(), "console-build-"));
    try {
      writeFileSync(join(root, "entry.ts"), 'import { word } from "./word.js";\ndocument.title = word;\n');
      writeFileSync(join(root, "word.ts"), 'export const word: string = "first";\n');
      writeFileSync(join(root, "style.css"), "body { color: red; }\n");
      const options = { root, script: join(root, "entry.ts"), style: join(root, "style.css"), outdir: join(root, "out") };
      const script = () => readFileSync(join(options.outdir, "console.js"), "utf8");

      expect((await bundleConsole(options)).built).toBe(true);
      expect(script()).toContain('"first"');
      const stamp = JSON.parse(readFileSync(join(options.outdir, "build-stamp.json"), "utf8"));
      expect(Object.keys(stamp.inputs).sort()).toEqual(["entry.ts", "style.css", "word.ts"]);
      const again = await bundleConsole(options);
      expect(again.built).toBe(false);
      expect(again.files.map((f) => f.name)).toEqual(["console.js", "console.css"]);

      writeFileSync(join(root, "word.ts"), 'export const word: string = "second";\n');
      expect((await bundleConsole(options)).built).toBe(true);
      expect(script()).toContain('"second"');

      writeFileSync(join(root, "style.css"), "body { color: blue; }\n");
      expect((await bundleConsole(options)).built).toBe(true);
      expect(readFileSync(join(options.outdir, "console.css"), "utf8")).toContain("#00f");

      rmSync(join(options.outdir, "console.js.br"));
      expect((await bundleConsole(options)).built).toBe(true);
      expect((await bundleConsole(options)).built).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
