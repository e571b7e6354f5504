/**
 * The human-readable API reference served at `/docs`, rendered on the server
 * from the OpenAPI document, so the page and the document cannot disagree.
 * The page is one self-contained HTML file: inline CSS, no script, nothing
 * loaded from anywhere, so it works offline and behind any firewall.
 */
type Json = { [key: string]: unknown };

const METHODS = ["get", "put", "post", "delete", "patch"] as const;

function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The small part of Markdown the document uses: paragraphs, lists, `code`, **bold**. */
function markdown(text: unknown): string {
  if (typeof text !== "string" || text === "") return "";
  const inline = (s: string) =>
    esc(s)
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  const out: string[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block.split("\n").filter((l) => l.trim() !== "");
    if (lines.every((l) => /^\s*- /.test(l))) {
      out.push(`<ul>${lines.map((l) => `<li>${inline(l.replace(/^\s*- /, ""))}</li>`).join("")}</ul>`);
    } else if (lines.every((l) => /^\s*\d+\. /.test(l))) {
      out.push(`<ol>${lines.map((l) => `<li>${inline(l.replace(/^\s*\d+\. /, ""))}</li>`).join("")}</ol>`);
    } else {
      out.push(`<p>${inline(lines.join(" "))}</p>`);
    }
  }
  return out.join("\n");
}

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

  /** A schema flattened into rows: dotted field name, type, required, description. */
  const fieldRows = (schema: unknown, prefix = "", depth = 0): string[] => {
    const s = resolve(schema);
    const required = new Set<string>((s.required as string[] | undefined) ?? []);
    const properties = s.properties as Json | undefined;
    if (properties === undefined || depth > 6) return [];
    return Object.entries(properties).flatMap(([name, raw]) => {
      const field = resolve(raw);
      const items = field.type === "array" ? resolve(field.items) : undefined;
      const type = items !== undefined ? `array of ${items.type ?? "object"}` : `${field.type ?? "object"}${field.format ? ` (${field.format})` : ""}`;
      const path = prefix + name;
      const row = `<tr><td><code>${esc(path)}</code></td><td>${esc(type)}</td><td>${required.has(name) ? "required" : ""}</td><td>${markdown(field.description)}</td></tr>`;
      const nested = items !== undefined ? fieldRows(items, `${path}[].`, depth + 1) : fieldRows(field, `${path}.`, depth + 1);
      return [row, ...nested];
    });
  };

  const fieldTable = (schema: unknown) => {
    const rows = fieldRows(schema);
    return rows.length === 0 ? "" : `<table><tr><th>Field</th><th>Type</th><th></th><th>Description</th></tr>${rows.join("")}</table>`;
  };

  const examples = (media: Json | undefined) =>
    Object.values((media?.examples as Json | undefined) ?? {})
      .map((e) => {
        const value = (e as Json).value;
        return `<pre>${esc(typeof value === "string" ? value : JSON.stringify(value, null, 2))}</pre>`;
      })
      .join("");

  /** The first (the only) media type of a body, with its name. */
  const mediaOf = (content: unknown): (Json & { type: string }) | undefined => {
    const first = Object.entries((content as Json | undefined) ?? {})[0];
    return first === undefined ? undefined : { ...(first[1] as Json), type: first[0] };
  };

  /** What a successful body holds: its fields, or for an event stream the data of each event. */
  const bodyDescription = (media: (Json & { type: string }) | undefined) => {
    if (media === undefined) return "";
    const events = media["x-event-data"] as Json | undefined;
    if (events === undefined) return fieldTable(media.schema) + examples(media);
    return (
      `<p>Content type <code>${esc(media.type)}</code>.</p>` +
      Object.entries(events)
        .map(([name, schema]) => `<h5>event <code>${esc(name)}</code></h5>${fieldTable(schema)}`)
        .join("") +
      examples(media)
    );
  };

  const info = doc.info as Json;
  const servers = (doc.servers as Json[] | undefined) ?? [];
  const schemes = ((doc.components as Json).securitySchemes ?? {}) as Json;
  const sections: string[] = [];
  const toc: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const method of METHODS) {
      const op = (item as Json)[method] as Json | undefined;
      if (op === undefined) continue;
      const id = esc(op.operationId ?? `${method}-${path}`);
      toc.push(`<li><a href="#${id}">${esc(op.summary)}</a></li>`);
      const params = ((op.parameters as unknown[] | undefined) ?? []).map(resolve);
      const body = resolve(op.requestBody);
      const bodyMedia = mediaOf(body.content);
      const responses = Object.entries((op.responses as Json) ?? {}).map(([status, r]) => {
        const res = resolve(r);
        const media = mediaOf(res.content);
        const codes = Object.keys((media?.examples as Json | undefined) ?? {});
        const isError = status === "default" || Number(status) >= 400;
        return `<h4><span class="status">${esc(status)}</span> ${isError ? codes.map((c) => `<code>${esc(c)}</code>`).join(" ") : ""}</h4>${markdown(res.description)}${
          isError ? "" : bodyDescription(media)
        }`;
      });
      sections.push(`<section id="${id}">
<h2><span class="method">${method.toUpperCase()}</span> <code>${esc(path)}</code></h2>
<h3>${esc(op.summary)}</h3>
${markdown(op.description)}
${params.length === 0 ? "" : `<h3>Headers</h3><table><tr><th>Name</th><th></th><th>Description</th></tr>${params.map((p) => `<tr><td><code>${esc(p.name)}</code></td><td>${p.required ? "required" : ""}</td><td>${markdown(p.description)}</td></tr>`).join("")}</table>`}
${bodyMedia === undefined ? "" : `<h3>Request body (<code>${esc(bodyMedia.type)}</code>)</h3>${fieldTable(bodyMedia.schema)}${examples(bodyMedia)}`}
<h3>Responses</h3>
${responses.join("\n")}
</section>`);
    }
  }
  const errorCode = resolve({ $ref: "#/components/schemas/ErrorCode" });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(info.title)} ${esc(info.version)}</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2433;max-width:960px;margin:0 auto;padding:24px}
h1{margin-bottom:0}h2{border-top:1px solid #d8dde6;padding-top:24px;margin-top:40px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
pre{background:#f4f6f9;border:1px solid #d8dde6;border-radius:6px;padding:12px;overflow:auto}
table{border-collapse:collapse;width:100%;margin:8px 0 16px}td,th{border:1px solid #d8dde6;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f9}td p{margin:0}.method{background:#1d6b3a;color:#fff;border-radius:4px;padding:2px 8px;font-size:14px}
.status{background:#e7ebf2;border-radius:4px;padding:2px 8px}
</style>
</head>
<body>
<h1>${esc(info.title)}</h1>
<p>Version ${esc(info.version)}</p>
${markdown(info.description)}
<h2>Base URL</h2>
${servers.map((s) => `<p><code>${esc(s.url)}</code></p>`).join("")}
<h2>Authentication</h2>
${Object.entries(schemes)
  .map(([name, s]) => `<h3>${esc(name)}</h3><p>HTTP ${esc((s as Json).scheme)}</p>${markdown((s as Json).description)}`)
  .join("")}
<h2>Endpoints</h2>
<ul>${toc.join("")}</ul>
<h2>Errors</h2>
<pre>${esc(JSON.stringify({ error: { code: "error_code", message: "Human-readable message" } }, null, 2))}</pre>
${markdown(errorCode.description)}
${sections.join("\n")}
</body>
</html>
`;
}
