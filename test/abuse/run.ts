/**
 * The abuse run (`npm run abuse`): full-scale attacks on a gateway process
 * started with `ulimit -n 1024`, a real Redis and a reference platform, each
 * attack bounded in time and count, on loopback only. For each attack a
 * normal partner (its own key, its own address 127.0.0.1) calls the gateway
 * before (the quiet baseline, same run) and during it; the run prints per
 * attack the quiet and attacked success rate and median latency, what the
 * attacker achieved, and the gateway's sockets and RSS before and after.
 *
 * It fails (exit 1) when, during an attack, the normal partner gets less than
 * 99% success or a median latency above 5× its quiet median, or when its
 * sockets do not come back near the baseline after it (RSS is reported); the flood of silent
 * sockets must also let new connections in within 15 s of its start, and the
 * booking burst over two gateways must get no 503 (only 2xx and 409).
 * The small-scale versions of these attacks run in `npm test`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { ReferencePlatform } from "../../src/demo/reference-platform.js";
import { RedisDirectoryStore, directoryKeyPrefix } from "../../src/store/redis-directory-store.js";
import { hashPartnerKey } from "../../src/store/partner-key.js";
import { fieldCipherOf } from "../../src/encryption/field-cipher.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { RedisServer } from "../support/redis-server.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const QUIET_MS = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const key = () => "sk_ptnr_abuse_" + randomBytes(16).toString("hex");
const keys = { attacker: key(), normal: key(), rotated: key() };
const ATTACK_SOURCES = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`);
// Addresses of their own: the rapid-reset attacker's cool down afterwards, and must not hold up the next attacks.
const RAPID_RESET_SOURCES = Array.from({ length: 10 }, (_, i) => `127.0.2.${i + 2}`);
const DAY = "2030-01-07";
const searchBody = (botId: string) => JSON.stringify({ bot_id: botId, query: { filter: { start_at_range: { start_at: `${DAY}T09:00:00Z`, end_at: `${DAY}T12:00:00Z` } } } });

// ---- the world: Redis, the platform, the directory, the gateway process ----

const redisServer = await RedisServer.start();
const secret = "whsec_abuse_" + randomBytes(8).toString("hex");
const bigAnswer = JSON.stringify({
  availabilities: Array.from({ length: 15_000 }, (_, i) => ({
    start_at: new Date(Date.UTC(2030, 0, 7, 9) + i * 60_000).toISOString().replace(".000Z", "Z"),
    duration_minutes: 30,
    loc: `l${i % 5}`,
  })),
});
const platform = await new ReferencePlatform({
  secret,
  respond: (req) => (req.path === "/availability/search" && req.headers["x-dialstack-account-id"] === "acct_big" ? { status: 200, body: bigAnswer } : undefined),
}).start();
const prefix = `abuse:${randomBytes(4).toString("hex")}:`;
const dir = mkdtempSync(join(tmpdir(), "gw-abuse-"));
const seedFile = join(dir, "seed.json");
writeFileSync(
  seedFile,
  JSON.stringify({
    partners: [
      { id: "ptnr_attacker", name: "Attacker", api_key: keys.attacker },
      { id: "ptnr_normal", name: "Normal", api_key: keys.normal },
      { id: "ptnr_rotated", name: "Rotated", api_key: keys.rotated },
    ],
    platforms: [{ id: "plat", webhook_url: platform.url, webhook_secret: secret }],
    accounts: [
      { id: "acct_attacker", platform_id: "plat" },
      { id: "acct_normal", platform_id: "plat" },
      { id: "acct_big", platform_id: "plat" },
      { id: "acct_rotated", platform_id: "plat" },
    ],
    bots: [
      { id: "bot_attacker", partner_id: "ptnr_attacker", account_id: "acct_attacker" },
      { id: "bot_normal", partner_id: "ptnr_normal", account_id: "acct_normal" },
      { id: "bot_big", partner_id: "ptnr_attacker", account_id: "acct_big" },
      { id: "bot_rotated", partner_id: "ptnr_rotated", account_id: "acct_rotated" },
    ],
  }),
);

async function startGateway(seed: boolean): Promise<GatewayProcess> {
  const env = {
    LOG_LEVEL: "warn",
    REDIS_URL: redisServer.url,
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_PER_SECOND: "2000",
    RATE_LIMIT_BURST: "4000",
    SESSION_IDLE_SECONDS: "5",
    ...(seed ? { GATEWAY_SEED: seedFile } : {}),
  };
  const g = await startGatewayProcess(env, { entry: "src", fileLimit: 1024, stopTimeoutMs: 15_000, echoStderr: true });
  children.push(g.child);
  return g;
}

/** The warnings a gateway logged (this run logs at warn). */
const warningsOf = (g: GatewayProcess): string[] => g.log.filter((l) => l.level >= 40).map((l) => l.msg);

const children: ChildProcess[] = [];
// Whatever happens, the processes this run started are stopped (by pid).
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});
process.on("uncaughtException", (e) => {
  process.stderr.write(`abuse run failed: ${e.stack ?? e}\n`);
  void redisServer.stop().finally(() => process.exit(1));
});
const gateway = await startGateway(true);
const fdLimit = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${gateway.pid}/limits`, "utf8"))?.[1];

// ---- measuring ----

function resources(pid: number): { sockets: number; rssMb: number } {
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSafe(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) sockets++;
    } catch {
      // closed meanwhile
    }
  }
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  if (process.env.ABUSE_SMAPS) {
    const smaps = readFileSync(`/proc/${pid}/smaps`, "utf8").split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
    const heap = smaps.filter((m) => / \[heap\]/.test(m.split("\n")[0]!)).reduce((n, m) => n + Number(/\nRss:\s+(\d+)/.exec(m)?.[1] ?? 0), 0);
    process.stdout.write(`  (smaps: [heap] ${Math.round(heap / 1024)} MB of ${Math.round(Number(rss) / 1024)} MB)\n`);
  }
  return { sockets, rssMb: Math.round(Number(rss) / 1024) };
}

function readlinkSafe(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}

interface Service {
  attempts: number;
  ok: number;
  latencies: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

/**
 * The normal partner: a search every 100 ms on a keep-alive HTTP/1.1
 * connection and one on an HTTP/2 session, both opened before any attack.
 */
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
let h2: http2.ClientHttp2Session = http2.connect(`http://127.0.0.1:${gateway.port}`);
h2.on("error", () => {});

function searchH1(port: number, agent: http.Agent | false): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: "/v1/availability/search", agent, timeout: 10_000, headers: { authorization: `Bearer ${keys.normal}`, "content-type": "application/json" } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === 200));
        res.on("error", () => resolve(false));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end(searchBody("bot_normal"));
  });
}

function searchH2(): Promise<boolean> {
  if (h2.closed || h2.destroyed) {
    h2 = http2.connect(`http://127.0.0.1:${gateway.port}`);
    h2.on("error", () => {});
  }
  return new Promise((resolve) => {
    const s = h2.request({ ":method": "POST", ":path": "/v1/availability/search", authorization: `Bearer ${keys.normal}`, "content-type": "application/json" });
    const timer = setTimeout(() => s.close(), 10_000);
    let status = 0;
    s.on("response", (h) => (status = Number(h[":status"])));
    s.resume();
    s.on("close", () => {
      clearTimeout(timer);
      resolve(status === 200);
    });
    s.on("error", () => {});
    s.end(searchBody("bot_normal"));
  });
}

async function measure(ms: number): Promise<Service> {
  const service: Service = { attempts: 0, ok: 0, latencies: [] };
  const until = performance.now() + ms;
  const loop = async (call: () => Promise<boolean>) => {
    while (performance.now() < until) {
      const started = performance.now();
      service.attempts++;
      if (await call()) {
        service.ok++;
        service.latencies.push(performance.now() - started);
      }
      await sleep(Math.max(0, 100 - (performance.now() - started)));
    }
  };
  await Promise.all([loop(() => searchH1(gateway.port, keepAlive)), loop(searchH2)]);
  return service;
}

/** Runs the attacker process; resolves with its report. */
function attacker(spec: Record<string, unknown>): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/abuse/attacker.ts", JSON.stringify({ port: gateway.port, sources: ATTACK_SOURCES, ...spec })], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!)) : reject(new Error(`attacker exited ${code}`))));
  });
}

interface Row {
  attack: string;
  quiet: Service;
  during: Service;
  attackerReport: Record<string, unknown>;
  before: { sockets: number; rssMb: number };
  after: { sockets: number; rssMb: number };
  extra: Record<string, unknown>;
  failures: string[];
}
const rows: Row[] = [];

async function settle(before: { sockets: number; rssMb: number }): Promise<{ sockets: number; rssMb: number }> {
  let now = resources(gateway.pid);
  for (let i = 0; i < 60 && (now.sockets > before.sockets + 10 || now.rssMb > before.rssMb * 1.5 + 20); i++) {
    await sleep(500);
    now = resources(gateway.pid);
  }
  return now;
}

async function run(
  attack: string,
  spec: Record<string, unknown>,
  during?: (report: Promise<Record<string, number>>) => Promise<Record<string, unknown>>,
  judge?: (report: Record<string, number>) => string[],
): Promise<void> {
  const before = resources(gateway.pid);
  const quiet = await measure(QUIET_MS);
  const report = attacker(spec);
  await sleep(1000);
  const duringMs = Number(spec.durationMs) - 1500;
  const [service, extra, attackerReport] = await Promise.all([measure(duringMs), during?.(report) ?? Promise.resolve({}), report]);
  const after = await settle(before);
  const failures: string[] = [];
  const rate = service.ok / service.attempts;
  if (rate < 0.99) failures.push(`success ${(rate * 100).toFixed(1)}% < 99%`);
  if (median(service.latencies) > 5 * median(quiet.latencies)) failures.push(`median ${median(service.latencies).toFixed(1)} ms > 5× quiet ${median(quiet.latencies).toFixed(1)} ms`);
  if (after.sockets > before.sockets + 10) failures.push(`sockets ${after.sockets} after vs ${before.sockets} before`);
  // Reported, not failed: after a burst of large allocations V8 keeps the
  // pages its heap grew into although its live heap comes back (the smaps
  // line printed with the figures shows how much of RSS is heap), so RSS
  // alone cannot tell retained pages from a leak.
  const rssNote = after.rssMb > before.rssMb * 1.5 + 20 ? `RSS stayed at ${after.rssMb} MB (${before.rssMb} MB before)` : undefined;
  for (const [k, v] of Object.entries(extra)) if (k.startsWith("fail:") && v) failures.push(String(v));
  failures.push(...(judge?.(attackerReport) ?? []));
  const row = { attack, quiet, during: service, attackerReport, before, after, extra: rssNote ? { ...extra, note: rssNote } : extra, failures };
  rows.push(row);
  print(row);
}

function print(r: Row): void {
  const pct = (s: Service) => `${((s.ok / s.attempts) * 100).toFixed(1)}% of ${s.attempts}`;
  const extra = Object.entries(r.extra).filter(([k]) => !k.startsWith("fail:")).map(([k, v]) => `${k}=${v}`).join(" ");
  process.stdout.write(
    `\n== ${r.attack}\n` +
      `  normal partner  quiet: ${pct(r.quiet)} ok, median ${median(r.quiet.latencies).toFixed(1)} ms   during: ${pct(r.during)} ok, median ${median(r.during.latencies).toFixed(1)} ms (${(median(r.during.latencies) / median(r.quiet.latencies)).toFixed(2)}× quiet)\n` +
      `  attacker        ${JSON.stringify(r.attackerReport)}\n` +
      (extra ? `  observed        ${extra}\n` : "") +
      `  gateway         sockets ${r.before.sockets} before -> ${r.after.sockets} after; RSS ${r.before.rssMb} MB -> ${r.after.rssMb} MB\n` +
      `  ${r.failures.length === 0 ? "PASS" : "FAIL: " + r.failures.join("; ")}\n`,
  );
}

process.stdout.write(`gateway pid ${gateway.pid}, file-descriptor limit ${fdLimit}, port ${gateway.port}\n`);
const only = process.argv.slice(2);
const wanted = (name: string) => only.length === 0 || only.some((o) => name.includes(o));

// ---- the attacks ----

if (wanted("silent")) {
  await run("1,500 silent sockets held for 60 s (gateway under ulimit -n 1024)", { kind: "silent", count: 1500, durationMs: 60_000, reconnectMs: 1000 }, async () => {
    // New connections, one every 500 ms from the flood's start: when is the first one served?
    const started = performance.now();
    let firstServedMs: number | undefined;
    let served = 0;
    let tried = 0;
    while (performance.now() - started < 57_000) {
      tried++;
      if (await searchH1(gateway.port, false)) {
        served++;
        firstServedMs ??= Math.round(performance.now() - started + 1000);
      }
      await sleep(500);
    }
    return {
      newConnectionsServed: `${served}/${tried}`,
      firstNewConnectionServedAfterMs: firstServedMs,
      "fail:late": firstServedMs === undefined || firstServedMs > 15_000 ? `first new connection served after ${firstServedMs} ms (> 15 s)` : undefined,
    };
  });
}
if (wanted("slowloris")) await run("slowloris: 300 connections sending headers at 1 byte/s, 30 s", { kind: "slowloris", count: 300, durationMs: 30_000 });
if (wanted("slowbody")) await run("slow bodies: 300 requests sending their body at 1 byte/s, 40 s", { kind: "slowbody", count: 300, durationMs: 40_000, key: keys.attacker });
if (wanted("preface")) await run("partial HTTP/2 preface: 300 connections, 20 s", { kind: "preface", count: 300, durationMs: 20_000 });
if (wanted("idle-h2")) await run("idle HTTP/2 sessions: 300 sessions that open no stream, 20 s", { kind: "idle-h2", count: 300, durationMs: 20_000 });
if (wanted("rapid")) {
  await run("HTTP/2 rapid reset at 6,000 streams/s, 15 s", { kind: "rapid-reset", count: 4, rate: 6000, durationMs: 15_000, key: keys.attacker, reconnectMs: 0, sources: RAPID_RESET_SOURCES }, undefined, (report) =>
    report.streamsPerSecond! >= 5000 ? [] : [`the attacker reached only ${report.streamsPerSecond} streams/s`],
  );
}
if (wanted("sessions")) await run("5,000 open bot sessions of one partner, 20 s", { kind: "sessions", count: 5000, durationMs: 20_000, key: keys.attacker, botId: "bot_attacker" });
if (wanted("empty")) await run("200 sessions kept alive with empty messages every 100 ms, 15 s", { kind: "empty-sessions", count: 200, durationMs: 15_000, key: keys.attacker, botId: "bot_attacker" });
if (wanted("big")) await run("20 concurrent searches answered with 1 MB / 15,000 slots, 15 s", { kind: "big-answers", count: 20, durationMs: 15_000, key: keys.attacker, botId: "bot_big" });
if (wanted("rotated")) {
  await run(
    "a rotated key with 50 open sessions",
    { kind: "sessions", count: 50, durationMs: 8000, key: keys.rotated, botId: "bot_rotated" },
    async () => {
      await sleep(1500);
      const redis = new Redis(redisServer.url);
      const store = new RedisDirectoryStore(redis, directoryKeyPrefix(prefix), fieldCipherOf(undefined));
      const partner = (await store.getPartner("ptnr_rotated"))!;
      await store.putPartner({ ...partner, keyHash: hashPartnerKey(key()) });
      await redis.quit();
      return {};
    },
    (report) => {
      const ended = Object.entries(report).find(([k]) => k.includes("partner key"))?.[1];
      return ended === 50 && report.started === 50 ? [] : [`${ended ?? 0} of ${report.started} sessions ended with unauthorized`];
    },
  );
}
if (wanted("burst")) {
  const second = await startGateway(false);
  const before = resources(gateway.pid);
  const statuses = new Map<number, number>();
  // Fewer connections than MAX_CONNECTIONS_PER_CLIENT (256): the burst is of bookings, not of connections.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
  const book = (port: number, idem: string, slot: number) =>
    new Promise<void>((resolve) => {
      const start = new Date(Date.UTC(2032, 0, 5, 9) + slot * 30 * 60_000).toISOString().replace(".000Z", "Z");
      const body = JSON.stringify({ bot_id: "bot_normal", booking: { start_at: start, duration_minutes: 30, customer: { phone: "+15551234567", name: "Burst" } } });
      const req = http.request({ host: "127.0.0.1", port, method: "POST", path: "/v1/bookings", agent, headers: { authorization: `Bearer ${keys.normal}`, "content-type": "application/json", "idempotency-key": idem } }, (res) => {
        res.resume();
        res.on("end", () => {
          statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
          resolve();
        });
      });
      req.on("error", () => {
        statuses.set(0, (statuses.get(0) ?? 0) + 1);
        resolve();
      });
      req.end(body);
    });
  const started = performance.now();
  const salt = randomBytes(4).toString("hex");
  await Promise.all(Array.from({ length: 500 }, (_, i) => [book(gateway.port, `burst-${salt}-${i}`, i), book(second.port, `burst-${salt}-${i}`, i)]).flat());
  const took = Math.round(performance.now() - started);
  await second.stop();
  const bad = [...statuses].filter(([s]) => !(s >= 200 && s < 300) && s !== 409);
  const row: Row = {
    attack: "1,000-booking burst over two gateways on a healthy Redis (500 keys, each sent to both)",
    quiet: { attempts: 1, ok: 1, latencies: [1] },
    during: { attempts: 1, ok: 1, latencies: [1] },
    attackerReport: Object.fromEntries(statuses),
    before,
    after: await settle(before),
    extra: { tookMs: took },
    failures: bad.length > 0 ? [`answers other than 2xx/409: ${JSON.stringify(Object.fromEntries(bad))}`] : [],
  };
  rows.push(row);
  process.stdout.write(`\n== ${row.attack}\n  answers by status ${JSON.stringify(row.attackerReport)} in ${took} ms\n  ${row.failures.length === 0 ? "PASS" : "FAIL: " + row.failures.join("; ")}\n`);
}

// ---- done ----
keepAlive.destroy();
h2.destroy();
const warned = [...new Set(warningsOf(gateway))];
if (warned.length > 0) process.stdout.write(`\ngateway warnings seen: ${warned.map((w) => w.slice(0, 100)).join(" | ")}\n`);
await gateway.stop();
await platform.close();
await redisServer.stop();
rmSync(dir, { recursive: true, force: true });
const failed = rows.filter((r) => r.failures.length > 0);
process.stdout.write(`\n${rows.length - failed.length} passed, ${failed.length} failed\n`);
process.exit(failed.length === 0 ? 0 : 1);
