/**
 * The CPU a webhook costs the process that sends it: the gateway's webhook
 * client (undici, `src/platform/webhook-client.ts`) against the same signed
 * POST made with `node:http` and a keep-alive agent (as the gateway sent it
 * before, and as the baseline relays still do), each answer read and parsed.
 * Both send to the benchmark's test platform, which runs in its own process
 * and checks every signature; only the sending process's CPU is counted.
 *
 *     npm run bench:webhooks -- [--requests=20000] [--rounds=3] [--concurrency=1,16,64]
 *
 * Rounds alternate the two clients; the figures are medians of the rounds,
 * and the ratio is the median of the per-round ratios.
 */
import http from "node:http";
import { parseArgs } from "node:util";
import { WebhookClient } from "../src/platform/webhook-client.js";
import { ACCOUNT_HEADER, SIGNATURE_HEADER, signatureHeader } from "../src/platform/signature.js";
import { ACCOUNT_ID, PLATFORM_SEARCH_JSON, WEBHOOK_BASE_PATH, WEBHOOK_SECRET } from "./fixture.js";
import type { PlatformStats } from "./servers/fast-platform.js";
import { killAll, startBenchServer } from "./processes.js";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "1,16,64" },
  },
});
const REQUESTS = Number(values.requests);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = values.concurrency.split(",").map(Number);

type Send = () => Promise<unknown>;

function nodeHttpClient(base: URL): Send {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: "lifo", timeout: 4000 });
  const path = `${WEBHOOK_BASE_PATH}/availability/search`;
  return () =>
    new Promise((resolve, reject) => {
      const body = Buffer.from(JSON.stringify(PLATFORM_SEARCH_JSON));
      const req = http.request({
        hostname: base.hostname,
        port: base.port,
        path,
        method: "POST",
        agent,
        headers: [
          "Host",
          base.host,
          "Content-Type",
          "application/json",
          "Content-Length",
          String(body.length),
          SIGNATURE_HEADER,
          signatureHeader(WEBHOOK_SECRET, body),
          ACCOUNT_HEADER,
          ACCOUNT_ID,
        ],
      });
      req.on("error", reject);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))) : reject(new Error(`status ${res.statusCode}`))));
      });
      req.end(body);
    });
}

function gatewayClient(base: URL): Send {
  const client = new WebhookClient({ timeoutMs: 10_000 });
  const target = { webhookUrl: base.origin + WEBHOOK_BASE_PATH, webhookSecret: WEBHOOK_SECRET };
  return () => client.post({ target, accountId: ACCOUNT_ID, path: "/availability/search", payload: PLATFORM_SEARCH_JSON, idempotent: true });
}

/** CPU µs per request of `requests` calls, `concurrency` in flight. */
async function measure(send: Send, concurrency: number, requests: number): Promise<number> {
  let left = requests;
  const worker = async () => {
    while (left-- > 0) await send();
  };
  const before = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / requests;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const platform = await startBenchServer("test platform", "fast-platform.ts");
  try {
    const base = new URL(platform.url);
    const clients: [string, Send][] = [
      ["node:http + agent", nodeHttpClient(base)],
      ["gateway WebhookClient (undici)", gatewayClient(base)],
    ];
    process.stdout.write(`CPU µs per webhook in the sending process (${REQUESTS} requests per round, ${ROUNDS} rounds, medians)\n\n`);
    process.stdout.write(`| in flight | ${clients.map(([name]) => name).join(" | ")} | undici ÷ node:http |\n|---:|${clients.map(() => "---:|").join("")}---:|\n`);
    for (const concurrency of CONCURRENCY) {
      for (const [, send] of clients) await measure(send, concurrency, Math.min(REQUESTS, 5000));
      const figures: number[][] = clients.map(() => []);
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, [, send]] of clients.entries()) figures[i]!.push(await measure(send, concurrency, REQUESTS));
      }
      const ratios = figures[1]!.map((undici, round) => undici / figures[0]![round]!);
      process.stdout.write(`| ${concurrency} | ${figures.map((f) => median(f).toFixed(1)).join(" | ")} | ${median(ratios).toFixed(2)}× |\n`);
    }
    const stats = (await (await fetch(`${platform.url}/__stats`)).json()) as PlatformStats;
    if (stats.badSignatures > 0) throw new Error(`${stats.badSignatures} webhooks reached the platform with a bad signature`);
    process.stdout.write(`\nthe platform checked ${stats.signed} signed webhooks over ${stats.connections} connections, none bad\n`);
  } finally {
    killAll();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
