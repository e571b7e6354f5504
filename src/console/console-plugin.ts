/**
 * Serves the console: the page at `/console` and its built script and
 * stylesheet under `/console/assets/`, named after their content.
 *
 * The page is where a developer pastes a partner key, so it is locked down:
 * a Content-Security-Policy that allows only this origin's own script, style
 * and calls (no inline script, nothing from another origin, Trusted Types
 * required), no framing, no referrer, and the usual response headers that
 * keep browsers from guessing types or sharing the window.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { chooseEncoding, type ConsoleAsset, type ConsoleAssets } from "./console-assets.js";
import { renderConsolePage } from "./console-page.js";

const CONSOLE_PATH = "/console";

const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  // The page's icon is an empty data: URL, so the browser asks the server for none.
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": CONSOLE_CSP,
  // The page links assets by content hash: it must be revalidated, they need not be.
  "cache-control": "no-cache",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
};

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Console not built</title></head>
<body><h1>The console is not built</h1><p>Run <code>npm run build</code> (<code>npm start</code> does it), then start the gateway again.</p></body></html>
`;

/** Registers the console's routes; `assets` is undefined when the console was not built. */
export function registerConsole(app: FastifyInstance, assets: ConsoleAssets | undefined): void {
  if (assets === undefined) {
    app.log.warn("the console is not built (npm run build): /console answers 503");
    app.get(CONSOLE_PATH, (_request, reply) => reply.code(503).headers(PAGE_HEADERS).send(NOT_BUILT));
    return;
  }
  const page = renderConsolePage({
    script: { url: assets.script.path, integrity: assets.script.integrity },
    style: { url: assets.style.path, integrity: assets.style.integrity },
  });
  app.get(CONSOLE_PATH, (_request, reply) => reply.headers(PAGE_HEADERS).send(page));
  app.get(`${CONSOLE_PATH}/`, (_request, reply) => reply.redirect(CONSOLE_PATH, 308));
  for (const asset of [assets.script, assets.style]) {
    app.get(asset.path, (request, reply) => sendAsset(reply, asset, request.headers["accept-encoding"]));
  }
}

function sendAsset(reply: FastifyReply, asset: ConsoleAsset, acceptEncoding: string | undefined): FastifyReply {
  const encoding = chooseEncoding(acceptEncoding);
  const body = asset.bodies.get(encoding)!;
  reply.headers({
    "content-type": asset.contentType,
    "cache-control": "public, max-age=31536000, immutable",
    vary: "accept-encoding",
    "x-content-type-options": "nosniff",
    "cross-origin-resource-policy": "same-origin",
  });
  if (encoding !== "identity") reply.header("content-encoding", encoding);
  return reply.send(body);
}
