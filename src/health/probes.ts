/**
 * HTTP probes for orchestrators (Kubernetes, load balancers):
 *
 * - `GET /healthz`, liveness: the process answers. It does not look at Redis:
 *   restarting a gateway because Redis is down would not bring Redis back.
 * - `GET /readyz`, readiness: 200 when the gateway can serve calls, 503 with
 *   the reasons otherwise (Redis unreachable, shutting down), so traffic goes
 *   to other instances meanwhile.
 *
 * Both answer from state kept in memory, at once, even while Redis is frozen.
 */
import type { FastifyInstance } from "fastify";
import type { HealthState } from "./health-state.js";

export function registerProbes(app: FastifyInstance, state: HealthState): void {
  app.get("/healthz", (_req, reply) => reply.header("cache-control", "no-store").send({ status: "ok" }));
  app.get("/readyz", (_req, reply) => {
    const reasons = state.notReady();
    reply.header("cache-control", "no-store");
    if (reasons.length === 0) return reply.send({ status: "ready" });
    return reply.code(503).send({ status: "not_ready", reasons });
  });
}
