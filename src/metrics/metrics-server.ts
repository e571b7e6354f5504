/**
 * `GET /metrics` in the Prometheus text format: on the gateway's own port by
 * default, or on a port of its own (`METRICS_PORT`) so that the port partners
 * reach does not expose it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { ConfigError, type Config } from "../config.js";
import { PrometheusMetrics, type Metrics } from "./metrics.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The metrics listener, when `METRICS_PORT` names a port of its own. */
    metricsServer: MetricsServer | undefined;
  }
}

/** Serves `metrics` where the configuration says: on `app`, on a port of its own (closed with `app`), or nowhere. */
export async function serveMetrics(app: FastifyInstance, metrics: Metrics, config: Pick<Config, "metrics" | "host">): Promise<void> {
  app.decorate("metricsServer", undefined);
  if (!(metrics instanceof PrometheusMetrics)) return;
  if (config.metrics.serve === "main") registerMetricsRoute(app, metrics);
  if (config.metrics.serve !== "port") return;
  const port = config.metrics.port;
  const server = await startMetricsServer(metrics, config.host, port).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "EADDRINUSE" || e.code === "EACCES") {
      throw new ConfigError("METRICS_PORT", `cannot listen on port ${port}: ${e.code === "EADDRINUSE" ? "already in use" : "permission denied"}`);
    }
    throw e;
  });
  app.metricsServer = server;
  app.addHook("onClose", () => server.close());
}

function registerMetricsRoute(app: FastifyInstance, metrics: PrometheusMetrics): void {
  app.get("/metrics", async (_req, reply) => {
    const { contentType, body } = await metrics.scrape();
    return reply.header("content-type", contentType).header("cache-control", "no-store").send(body);
  });
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

async function startMetricsServer(metrics: PrometheusMetrics, host: string, port: number): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.url?.split("?")[0] !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: metrics are at GET /metrics\n");
      return;
    }
    metrics.scrape().then(
      ({ contentType, body }) => res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
