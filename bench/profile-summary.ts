/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went:
 * by package or source file, and by function, both self time and, for the
 * gateway's own functions, inclusive time.
 *
 *     node --import tsx bench/profile-summary.ts <file.cpuprofile> [top]
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where a function lives: the gateway's own file, a package, Node itself, or a V8 pseudo-frame. */
function placeOf(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return pkg[1]!;
  if (url.startsWith("node:")) return url;
  const own = /.*\/(dist|src|bench)\/(.+)$/.exec(url);
  return own === null ? url : `${own[1]}/${own[2]}`;
}

/** The layer of the stack a place belongs to, to say which part of the gateway's stack costs what. */
function layerOf(place: string, functionName: string): string {
  if (/^(dist|src)\//.test(place)) return "gateway code (src/)";
  if (place.startsWith("@connectrpc/")) return "connect-es";
  if (place.startsWith("@bufbuild/")) return "protobuf-es";
  if (/^(fastify|find-my-way|avvio|@fastify\/|light-my-request|fast-json-stringify|toad-cache|fast-querystring|fast-decode-uri-component)/.test(place)) return "fastify";
  if (/^(pino|sonic-boom|thread-stream|@pinojs)/.test(place) || /^writeString|^writeBuffer/.test(functionName)) return "logging (pino)";
  if (/^(ioredis|@ioredis|denque|redis-)/.test(place)) return "ioredis";
  if (/^writev?$|^writeUtf8String|^writeLatin1String|^readStart|^shutdown/.test(functionName) && place === "(native)") return "socket writes (incl. kernel loopback TCP)";
  if (/node:_http_|node:http$|node:https$|node:internal\/http$/.test(place)) return "node http/1.1";
  if (/node:internal\/http2/.test(place)) return "node http/2";
  if (/abort_controller|domexception|event_target/.test(place)) return "AbortSignal / DOMException";
  if (/node:internal\/streams|node:events|stream_base_commons|node:net/.test(place)) return "node streams, events, net";
  if (/node:internal\/crypto|node:crypto/.test(place)) return "crypto (hash, HMAC, uuid)";
  if (/node:internal\/modules|node:internal\/deps\/cjs|wrapSafe|compile/.test(place)) return "module loading (start-up)";
  if (place === "(garbage collector)") return "garbage collector";
  if (place === "undici") return "webhook client (undici)";
  if (/node:internal\/deps\/undici/.test(place)) return "Headers (Node's undici)";
  if (/^\(program\)|runMicrotasks|task_queues|node:internal\/timers|node:timers/.test(place === "(native)" ? functionName : place)) return "event loop, microtasks, timers";
  if (place === "(native)" && /^(parse|stringify)$/.test(functionName)) return "JSON";
  if (/node:internal\/url|node:url/.test(place)) return "URL parsing";
  if (/node:buffer|node:internal\/buffer/.test(place)) return "Buffer";
  return "other";
}

function table(rows: [string, number][], totalUs: number, top: number): string {
  return rows
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`)
    .join("\n");
}

export function summariseProfile(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)").reduce((a, [, us]) => a + us, 0);
  const busy = total - idle;

  const keyOf = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"}  ${placeOf(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`;
  const byPlace = new Map<string, number>();
  const byLayer = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === "(idle)") continue;
    const place = placeOf(n.callFrame.url, n.callFrame.functionName);
    byPlace.set(place, (byPlace.get(place) ?? 0) + us);
    const layer = layerOf(place, n.callFrame.functionName);
    byLayer.set(layer, (byLayer.get(layer) ?? 0) + us);
    byFunction.set(keyOf(n), (byFunction.get(keyOf(n)) ?? 0) + us);
    // Inclusive time of the gateway's own functions: every own frame on the stack, once per sample.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!;
      if (!/\/(dist|src)\//.test(frame.callFrame.url)) continue;
      const k = keyOf(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  return [
    `profile ${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percentages are of busy time)`,
    "",
    "self time by layer:",
    table([...byLayer], busy, top),
    "",
    "self time by package / file:",
    table([...byPlace], busy, top),
    "",
    "self time by function:",
    table([...byFunction], busy, top),
    "",
    "inclusive time of the gateway's own functions:",
    table([...inclusive], busy, top),
  ].join("\n");
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, top] = process.argv.slice(2);
  if (file === undefined) {
    console.error("usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top]");
    process.exit(2);
  }
  console.log(summariseProfile(file, top === undefined ? 25 : Number(top)));
}
