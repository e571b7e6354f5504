/**
 * The human-readable API reference served at `/docs`, rendered on the server
 * from the OpenAPI document, so the page and the document cannot disagree.
 * The page is one self-contained HTML file: one inline stylesheet (allowed by
 * its hash), no script, nothing loaded from anywhere, so it works offline and
 * behind any firewall.
 *
 * It reads as a partner would use it: a navigation list, each operation with
 * a `curl` example, its fields and its answers, the codes of its errors
 * linked to the one table that explains every code.
 */
import { createHash } from "node:crypto";

type Json = { [key: string]: unknown };

const METHODS = ["get", "put", "post", "delete", "patch"] as const;

function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A link target the page may use: an anchor on the page, a path on this server, or https. */
const SAFE_HREF = /^(#[\w-]+|\/[\w./-]*|https:\/\/[\w./-]+)$/;

/** The small part of Markdown the document uses: paragraphs, lists, fenced code, `code`, **bold**, [links](#anchor). */
function markdown(text: unknown): string {
  if (typeof text !== "string" || text === "") return "";
  const inline = (s: string) =>
    esc(s)
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
      .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (whole, label: string, href: string) => (SAFE_HREF.test(href) ? `<a href="${href}">${label}</a>` : whole));
  const out: string[] = [];
  const blocks = text.split(/(```\n[\s\S]*?\n```)/);
  for (const chunk of blocks) {
    const fenced = /^```\n([\s\S]*?)\n```$/.exec(chunk);
    if (fenced !== null) {
      out.push(`<pre>${esc(fenced[1])}</pre>`);
      continue;
    }
    for (const block of chunk.split(/\n\s*\n/)) {
      const lines = block.split("\n").filter((l) => l.trim() !== "");
      if (lines.length === 0) continue;
      if (lines.every((l) => /^\s*- /.test(l))) {
        out.push(`<ul>${lines.map((l) => `<li>${inline(l.replace(/^\s*- /, ""))}</li>`).join("")}</ul>`);
      } else if (lines.every((l) => /^\s*\d+\. /.test(l))) {
        out.push(`<ol>${lines.map((l) => `<li>${inline(l.replace(/^\s*\d+\. /, ""))}</li>`).join("")}</ol>`);
      } else {
        out.push(`<p>${inline(lines.join(" "))}</p>`);
      }
    }
  }
  return out.join("\n");
}

const STYLE = `
*{box-sizing:border-box}
body{font:15px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2433;margin:0}
.layout{display:grid;grid-template-columns:230px minmax(0,1fr);gap:40px;max-width:1180px;margin:0 auto;padding:0 24px}
nav{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;padding:24px 0;font-size:14px}
nav ul{list-style:none;margin:0;padding:0}nav ul ul{padding-left:12px;margin-bottom:6px}
nav li{margin:2px 0}nav a{color:#1d2433;text-decoration:none}nav a:hover{text-decoration:underline}
nav .group{display:block;margin-top:10px;color:#5a6478;font-weight:600;text-transform:uppercase;font-size:12px;letter-spacing:.04em}
.title{font-weight:700;font-size:15px;margin:0 0 12px}
main{padding:24px 0 48px;min-width:0}
h1{margin:0 0 4px;font-size:28px}h2{border-top:2px solid #d8dde6;padding-top:20px;margin-top:36px}
h3{font-size:20px;margin:32px 0 4px}h4{margin:18px 0 6px}
section.operation{border-top:1px solid #d8dde6;margin-top:28px}
a{color:#1d5fb8}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
pre{background:#f4f6f9;border:1px solid #d8dde6;border-radius:6px;padding:10px 12px;white-space:pre-wrap;overflow-wrap:break-word;margin:8px 0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}td,th{border:1px solid #d8dde6;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f9}td p{margin:0}code.name{white-space:nowrap}
.endpoint{font-size:15px;margin:4px 0 10px}.method{background:#1d6b3a;color:#fff;border-radius:4px;padding:1px 8px;font-weight:600;font-size:13px}
.status{background:#e7ebf2;border-radius:4px;padding:1px 8px}
.codes{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:6px 18px}.muted{color:#5a6478}
@media (max-width:820px){.layout{display:block;padding:0 14px}.title{display:none}nav{position:static;max-height:none;border-bottom:1px solid #d8dde6;padding:16px 0}nav ul ul{display:flex;flex-wrap:wrap;gap:0 14px}h3{font-size:18px}}
`;

/**
 * The page's Content-Security-Policy: nothing may load, the one inline
 * stylesheet is allowed by its hash, and no page may frame it (as the console).
 */
export const DOCS_CONTENT_SECURITY_POLICY = `default-src 'none'; style-src 'sha256-${createHash("sha256").update(STYLE).digest("base64")}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export function renderDocsPage(doc: Json): string {
  const lookup = (ref: string): unknown =>
    ref
      .slice(2)
      .split("/")
      .reduce<Json>((at, key) => (at[key] ?? {}) as Json, doc);

  /** A schema, parameter or response with its `$ref` and `allOf` resolved; sibling keywords win. */
  const resolve = (node: unknown, depth = 0): Json => {
    let out = (node ?? {}) as Json;
    if (depth > 16) return out;
    if (typeof out.$ref === "string") {
      const { $ref, ...rest } = out;
      out = { ...resolve(lookup($ref as string), depth + 1), ...rest };
    }
    if (Array.isArray(out.allOf)) {
      const { allOf, ...rest } = out;
      out = { ...resolve((allOf as unknown[])[0], depth + 1), ...rest };
    }
    return out;
  };

  const typeOf = (field: Json): string => {
    if (field.const !== undefined) return JSON.stringify(field.const);
    if (field.type === "array") return `array of ${resolve(field.items).type ?? "object"}`;
    return `${field.type ?? "object"}${field.format ? ` (${field.format})` : ""}`;
  };

  /** A schema flattened into rows: dotted field name, type, required, description. */
  const fieldRows = (schema: unknown, prefix = "", depth = 0): string[] => {
    const s = resolve(schema);
    const required = new Set<string>((s.required as string[] | undefined) ?? []);
    const properties = s.properties as Json | undefined;
    if (properties === undefined || depth > 6) return [];
    return Object.entries(properties).flatMap(([name, raw]) => {
      const field = resolve(raw);
      const path = prefix + name;
      // Field paths may wrap after each dot on a narrow screen.
      const row = `<tr><td><code>${esc(path).replaceAll(".", ".<wbr>")}</code></td><td>${esc(typeOf(field))}</td><td>${required.has(name) ? "yes" : ""}</td><td>${markdown(field.description)}</td></tr>`;
      const nested = field.type === "array" ? fieldRows(field.items, `${path}[].`, depth + 1) : fieldRows(field, `${path}.`, depth + 1);
      return [row, ...nested];
    });
  };

  const table = (head: readonly string[], rows: readonly string[]) =>
    rows.length === 0 ? "" : `<div class="scroll"><table><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>${rows.join("")}</table></div>`;

  const fieldTable = (schema: unknown) => table(["Field", "Type", "Required", "Description"], fieldRows(schema));

  const examples = (media: Json | undefined) =>
    Object.values((media?.examples as Json | undefined) ?? {})
      .map((e) => {
        const example = resolve(e);
        return `<pre>${esc(JSON.stringify(example.value, null, 2))}</pre>`;
      })
      .join("");

  /** The first (the only) media type of a body, with its name. */
  const mediaOf = (content: unknown): (Json & { type: string }) | undefined => {
    const first = Object.entries((content as Json | undefined) ?? {})[0];
    return first === undefined ? undefined : { ...(first[1] as Json), type: first[0] };
  };

  /** The events of an event stream: each variant's name, what it means, and its data's fields. */
  const eventTable = (schema: unknown) =>
    ((resolve(schema).oneOf as unknown[] | undefined) ?? [])
      .map((variant) => {
        const event = resolve(variant);
        const properties = event.properties as Json;
        const name = resolve(properties.event).const;
        const data = resolve(properties.data);
        const fields = fieldRows(data);
        return `<h5>event <code>${esc(name)}</code></h5>${markdown(event.description)}${
          fields.length > 0 ? table(["Field of <code>data</code>", "Type", "Required", "Description"], fields) : `<p>Data: <code>{}</code></p>`
        }`;
      })
      .join("");

  const headerRows = (headers: Json | undefined) =>
    Object.entries(headers ?? {})
      .filter(([name]) => !commonHeaders.includes(name))
      .map(([name, h]) => `<tr><td><code class="name">${esc(name)}</code></td><td>${markdown(resolve(h).description)}</td></tr>`);

  const errorCodes = ((resolve({ $ref: "#/components/schemas/ErrorCode" }).anyOf as unknown[] | undefined) ?? [])
    .map((c) => c as Json)
    .filter((c) => typeof c.const === "string");
  const errorLink = (code: string) =>
    errorCodes.some((c) => c.const === code) ? `<a href="#error-${esc(code)}"><code>${esc(code)}</code></a>` : `<code>${esc(code)}</code>`;

  const operations = Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    METHODS.filter((m) => (item as Json)[m] !== undefined).map((method) => ({ path, method, op: (item as Json)[method] as Json })),
  );
  const refsOf = (list: unknown) => ((list as Json[] | undefined) ?? []).map((p) => JSON.stringify(p));
  /** Request headers every operation takes, and response headers every answer carries: described once. */
  const commonParams = refsOf(operations[0]?.op.parameters).filter((p) => operations.every(({ op }) => refsOf(op.parameters).includes(p)));
  const allResponses = operations.flatMap(({ op }) => Object.values((op.responses as Json) ?? {}).map(resolve));
  const commonHeaders = Object.entries((allResponses[0]?.headers as Json | undefined) ?? {})
    .filter(([name, h]) => allResponses.every((r) => JSON.stringify((r.headers as Json | undefined)?.[name]) === JSON.stringify(h)))
    .map(([name]) => name);
  /** Request bodies already described, by schema: a later operation with the same body links to the first. */
  const bodiesShown = new Map<string, { id: string; summary: string }>();

  const requestBody = (media: Json, id: string, summary: string): string => {
    const key = JSON.stringify(media.schema);
    const first = bodiesShown.get(key);
    if (first !== undefined) return `<p>As for <a href="#${first.id}">${esc(first.summary)}</a>.</p>`;
    bodiesShown.set(key, { id, summary });
    return fieldTable(media.schema);
  };

  const operation = (path: string, method: string, op: Json, id: string): string => {
    const params = ((op.parameters as unknown[] | undefined) ?? []).filter((p) => !commonParams.includes(JSON.stringify(p))).map(resolve);
    const bodyMedia = mediaOf(resolve(op.requestBody).content);
    const samples = ((op["x-codeSamples"] as Json[] | undefined) ?? []).map((s) => `<pre>${esc(s.source)}</pre>`).join("");
    const successes: string[] = [];
    const errors: string[] = [];
    const shownBodies = new Map<string, string>();
    for (const [status, r] of Object.entries((op.responses as Json) ?? {})) {
      const res = resolve(r);
      const media = mediaOf(res.content);
      if (status === "default" || Number(status) >= 400) {
        const codes = Object.keys((media?.examples as Json | undefined) ?? {});
        if (codes.length > 0) errors.push(`<li><span class="status">${esc(status)}</span> ${codes.map(errorLink).join(", ")}</li>`);
        continue;
      }
      const schemaRef = (media?.schema as Json | undefined)?.$ref as string | undefined;
      const sameAs = schemaRef === undefined ? undefined : shownBodies.get(schemaRef);
      if (schemaRef !== undefined && sameAs === undefined) shownBodies.set(schemaRef, status);
      const body =
        media === undefined
          ? ""
          : sameAs !== undefined
            ? `<p class="muted">Body as for ${esc(sameAs)}.</p>`
            : media.type === "text/event-stream"
              ? eventTable(media.schema)
              : fieldTable(media.schema) + examples(media);
      successes.push(
        `<h4>Response <span class="status">${esc(status)}</span>${media === undefined ? "" : ` <code>${esc(media.type)}</code>`}</h4>${markdown(res.description)}${table(
          ["Header", "Description"],
          headerRows(res.headers as Json | undefined),
        )}${body}`,
      );
    }
    return `<section class="operation" id="${id}" aria-labelledby="${id}-title">
<h3 id="${id}-title">${esc(op.summary)}</h3>
<p class="endpoint"><span class="method">${method.toUpperCase()}</span> <code>${esc(path)}</code></p>
${markdown(op.description)}
${samples === "" ? "" : `<h4>Example</h4>${samples}`}
${params.length === 0 ? "" : `<h4>Request headers</h4>${table(["Header", "Required", "Description"], params.map((p) => `<tr><td><code class="name">${esc(p.name)}</code></td><td>${p.required ? "yes" : ""}</td><td>${markdown(p.description)}</td></tr>`))}`}
${bodyMedia === undefined ? "" : `<h4>Request body <code>${esc(bodyMedia.type)}</code></h4>${requestBody(bodyMedia, id, String(op.summary))}`}
${successes.join("\n")}
<h4>Errors</h4>
<ul class="codes">${errors.join("")}</ul>
<p class="muted">Each code is explained under <a href="#errors">Errors</a>; an error of the scheduling platform is passed through with its own status and code.</p>
</section>`;
  };

  const info = doc.info as Json;
  const servers = (doc.servers as Json[] | undefined) ?? [];
  const schemes = ((doc.components as Json).securitySchemes ?? {}) as Json;
  const tags = ((doc.tags as Json[] | undefined) ?? []).map((t) => ({ name: String(t.name), description: t.description, ops: [] as { id: string; summary: string; html: string }[] }));
  for (const { path, method, op } of operations) {
    const id = esc(op.operationId ?? `${method}-${path}`);
    const tagName = ((op.tags as string[] | undefined) ?? [])[0] ?? "Operations";
    let tag = tags.find((t) => t.name === tagName);
    if (tag === undefined) tags.push((tag = { name: tagName, description: undefined, ops: [] }));
    tag.ops.push({ id, summary: String(op.summary), html: operation(path, method, op, id) });
  }
  const tagId = (name: string) => `tag-${esc(name.toLowerCase().replace(/[^a-z0-9]+/g, "-"))}`;

  const nav = `<nav aria-label="Contents">
<p class="title">${esc(info.title)}</p>
<ul>
<li><a href="#overview">Overview</a></li>
<li><a href="#servers">Servers</a></li>
<li><a href="#authentication">Authentication</a></li>
<li><a href="#headers">Common headers</a></li>
${tags
  .map((t) => `<li><a class="group" href="#${tagId(t.name)}">${esc(t.name)}</a><ul>${t.ops.map((o) => `<li><a href="#${o.id}">${esc(o.summary)}</a></li>`).join("")}</ul></li>`)
  .join("\n")}
<li><a class="group" href="#errors">Errors</a></li>
</ul>
</nav>`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${esc(info.title)} ${esc(info.version)}</title>
<style>${STYLE}</style>
</head>
<body>
<div class="layout">
${nav}
<main>
<section id="overview">
<h1>${esc(info.title)}</h1>
<p class="muted">Version ${esc(info.version)} · <a href="/openapi.json">OpenAPI document</a> · <a href="/console">Try it in the browser console</a></p>
${markdown(info.description)}
</section>
<section id="servers">
<h2>Servers</h2>
${table(["URL", "Description"], servers.map((s) => `<tr><td><code>${esc(s.url)}</code></td><td>${markdown(s.description)}</td></tr>`))}
</section>
<section id="authentication">
<h2>Authentication</h2>
${Object.entries(schemes)
  .map(([, s]) => `<p>HTTP ${esc((s as Json).scheme)}.</p>${markdown((s as Json).description)}`)
  .join("")}
</section>
<section id="headers">
<h2>Common headers</h2>
<p>Every operation takes these request headers, and every answer (errors included) carries these response headers.</p>
${table(
  ["Request header", "Required", "Description"],
  commonParams.map((p) => resolve(JSON.parse(p))).map((p) => `<tr><td><code class="name">${esc(p.name)}</code></td><td>${p.required ? "yes" : ""}</td><td>${markdown(p.description)}</td></tr>`),
)}
${table(
  ["Response header", "Description"],
  commonHeaders.map((name) => `<tr><td><code class="name">${esc(name)}</code></td><td>${markdown(resolve((allResponses[0]!.headers as Json)[name]).description)}</td></tr>`),
)}
</section>
${tags
  .map(
    (t) => `<section id="${tagId(t.name)}">
<h2>${esc(t.name)}</h2>
${markdown(t.description)}
${t.ops.map((o) => o.html).join("\n")}
</section>`,
  )
  .join("\n")}
<section id="errors">
<h2>Errors</h2>
<p>Every error has the same shape: a stable machine <code>code</code> to branch on and a <code>message</code> for people.</p>
<pre>${esc('{"error": {"code": "bot_not_found", "message": "bot bot_123 not found"}}')}</pre>
<p>The gateway's own codes, with the HTTP status each comes with. An error the scheduling platform answers with is passed through with the platform's status and code (for example <code>409 slot_unavailable</code>).</p>
${table(
  ["Code", "Status", "When"],
  errorCodes.map((c) => `<tr id="error-${esc(c.const)}"><td><code>${esc(c.const)}</code></td><td>${esc(c["x-http-status"])}</td><td>${markdown(c.description)}</td></tr>`),
)}
</section>
</main>
</div>
</body>
</html>
`;
}
