/**
 * Runs the gateway. With no configuration it runs the embedded default: the
 * in-memory directory, a built-in demo platform on its own port, and a demo
 * partner whose key is printed once at start.
 */
import { randomBytes } from "node:crypto";
import { ConfigError, loadConfig, SHUTDOWN_EXIT_MARGIN_MS, type Config } from "./config.js";
import { createGateway } from "./gateway/create-gateway.js";
import { DEMO_CALLER, ReferencePlatform } from "./demo/reference-platform.js";
import { buildServer } from "./server/app.js";
import { MemoryDirectoryStore } from "./store/memory-directory-store.js";
import { redisTargetOf } from "./store/redis-connection.js";
import { generatePartnerKey, hashPartnerKey } from "./store/partner-key.js";
import { SeedError } from "./store/seed.js";

interface Demo {
  readonly platform: ReferencePlatform;
  readonly partnerKey: string;
  readonly botId: string;
}

async function startDemo(config: Config, store: MemoryDirectoryStore): Promise<Demo> {
  const secret = "whsec_" + randomBytes(24).toString("base64url");
  const platform = await new ReferencePlatform({ secret, port: config.demoPlatformPort }).start();
  const partnerKey = generatePartnerKey();
  await store.putPlatform({ id: "plat_demo", webhookUrl: platform.url, webhookSecret: secret });
  await store.putAccount({ id: "acct_demo", platformId: "plat_demo" });
  await store.putPartner({ id: "ptnr_demo", name: "Demo partner", keyHash: hashPartnerKey(partnerKey) });
  await store.putBot({ id: "bot_demo", partnerId: "ptnr_demo", accountId: "acct_demo" });
  return { platform, partnerKey, botId: "bot_demo" };
}

/** The next weekday, 09:00 to 17:00 UTC: a range where the demo platform has slots. */
function nextBusinessDay(): { start: string; end: string } {
  const d = new Date();
  do d.setUTCDate(d.getUTCDate() + 1);
  while (d.getUTCDay() === 0 || d.getUTCDay() === 6);
  const day = d.toISOString().slice(0, 10);
  return { start: `${day}T09:00:00Z`, end: `${day}T17:00:00Z` };
}

function usage(config: Config, demo: Demo): string {
  const base = `${config.tls ? "https" : "http"}://${config.host.includes(":") ? `[${config.host}]` : config.host}:${config.port}`;
  const { start, end } = nextBusinessDay();
  const body = JSON.stringify({ bot_id: demo.botId, query: { filter: { start_at_range: { start_at: start, end_at: end } } } });
  const lookup = JSON.stringify({ bot_id: demo.botId, customer: { phone: DEMO_CALLER.phone } });
  const auth = `Authorization: Bearer ${demo.partnerKey}`;
  const rpc = `${base}/dialstack.partner.v1.AvailabilityService/SearchAvailability`;
  return [
    "",
    "Demo partner key (shown once):",
    `  ${demo.partnerKey}`,
    `Demo bot: ${demo.botId}   demo platform: ${demo.platform.url}`,
    "",
    "REST:",
    `  curl -s ${base}/v1/availability/search -H '${auth}' -H 'Content-Type: application/json' -d '${body}'`,
    "gRPC:",
    `  npx buf curl --schema proto --protocol grpc --http2-prior-knowledge -H '${auth}' -d '${body}' ${rpc}`,
    "gRPC-Web:",
    `  npx buf curl --schema proto --protocol grpcweb -H '${auth}' -d '${body}' ${rpc}`,
    "Connect:",
    `  npx buf curl --schema proto --protocol connect -H '${auth}' -d '${body}' ${rpc}`,
    `Caller lookup (the demo platform knows ${DEMO_CALLER.phone}, ${DEMO_CALLER.name}; any other number is not found), REST and gRPC:`,
    `  curl -s ${base}/v1/customers/lookup -H '${auth}' -H 'Content-Type: application/json' -d '${lookup}'`,
    `  npx buf curl --schema proto --protocol grpc --http2-prior-knowledge -H '${auth}' -d '${lookup}' ${base}/dialstack.partner.v1.CustomerService/LookupCustomer`,
    `In a browser (paste the key, bot ${demo.botId}): ${base}/console   API reference: ${base}/docs`,
    "",
  ].join("\n");
}

/** A failure to listen, as the setting to fix: the port (in use, not allowed) or the host. */
function nameListenError(portVariable: "PORT" | "DEMO_PLATFORM_PORT", config: Config): (e: unknown) => never {
  return (e) => {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EADDRINUSE" || err.code === "EACCES") {
      const port = portVariable === "PORT" ? config.port : config.demoPlatformPort;
      throw new ConfigError(portVariable, `cannot listen on port ${port}: ${err.code === "EADDRINUSE" ? "already in use" : "permission denied"}`);
    }
    if (err.code === "ENOTFOUND" || err.code === "EADDRNOTAVAIL" || err.code === "EAI_AGAIN") {
      throw new ConfigError("HOST", `cannot listen on ${config.host}: ${err.code}`);
    }
    throw e;
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const redis = redisTargetOf(config);
  const embedded = redis === undefined && config.seedFile === undefined;
  const store = new MemoryDirectoryStore();
  const gateway = await createGateway(config, embedded ? { directoryStore: store } : {});
  const demo = embedded ? await startDemo(config, store).catch(nameListenError("DEMO_PLATFORM_PORT", config)) : undefined;
  const app = await buildServer(gateway);
  await app.listen({ port: config.port, host: config.host }).catch(nameListenError("PORT", config));
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  const store_ = redis === undefined ? "memory" : redis.kind === "cluster" ? "redis-cluster" : "redis";
  const metrics = config.metrics.serve === "port" ? app.metricsServer?.port : config.metrics.serve;
  app.log.info({ port, store: store_, tls: config.tls !== undefined, metrics, tracing: config.tracing !== undefined }, "gateway listening");
  // The log's lines wait for the end of the turn; the usage follows them.
  gateway.log.flush();
  if (demo !== undefined) process.stdout.write(usage({ ...config, port }, demo) + "\n");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, "shutting down");
    // The listener lets calls finish for SHUTDOWN_GRACE_MS; closing the rest gets a margin beyond it.
    const force = setTimeout(() => process.exit(1), config.shutdownGraceMs + SHUTDOWN_EXIT_MARGIN_MS);
    force.unref();
    await app.close();
    await gateway.close();
    await demo?.platform.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) {
    process.stderr.write(`configuration error: ${e.message}\n`);
  } else if (e instanceof SeedError) {
    process.stderr.write(`configuration error: GATEWAY_SEED: ${e.message}\n`);
  } else {
    const err = e as NodeJS.ErrnoException;
    process.stderr.write(`gateway failed to start: ${err.code ? `${err.code} ` : ""}${err.message}\n`);
  }
  process.exit(1);
});
