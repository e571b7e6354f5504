/**
 * The standard gRPC health service (`grpc.health.v1.Health`), which load
 * balancers, Kubernetes gRPC probes and service meshes call. The gateway's
 * own services, and `""` for the server as a whole, are SERVING when the
 * gateway can do its work (see health-state.ts); the health and reflection
 * services stay SERVING until shutdown. It needs no authentication.
 *
 * `Watch` sends the current status at once and again on every change; a
 * service that is not known is SERVICE_UNKNOWN there, and NOT_FOUND for
 * `Check`, as the protocol asks. At shutdown a watch gets NOT_SERVING and
 * ends, so that it does not hold the connection open.
 */
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { GatewayError } from "../errors.js";
import { Health, HealthCheckResponse_ServingStatus as Status, HealthCheckResponseSchema } from "../gen/grpc/health/v1/health_pb.js";
import type { HealthState } from "./health-state.js";

export const HEALTH_SERVICE = Health;

export interface HealthServices {
  /** Services whose status is the gateway's (business services). */
  readonly dependent: readonly string[];
  /** Services that serve until shutdown whatever else fails (health, reflection). */
  readonly independent: readonly string[];
}

const MAX_LISTED = 100;

export function registerHealth(router: ConnectRouter, state: HealthState, services: HealthServices): void {
  const dependent = new Set(["", ...services.dependent]);
  const independent = new Set(services.independent);
  const statusOf = (service: string): Status | undefined => {
    if (dependent.has(service)) return state.serving ? Status.SERVING : Status.NOT_SERVING;
    if (independent.has(service)) return state.isShuttingDown ? Status.NOT_SERVING : Status.SERVING;
    return undefined;
  };
  router.service(Health, {
    check(req) {
      const status = statusOf(req.service);
      if (status === undefined) throw GatewayError.of("not_found", `unknown service ${JSON.stringify(req.service)}`);
      return { status };
    },
    list() {
      const names = [...dependent, ...independent].filter((s) => s !== "").slice(0, MAX_LISTED);
      return { statuses: Object.fromEntries(["", ...names].map((name) => [name, { status: statusOf(name)! }])) };
    },
    async *watch(req, ctx: HandlerContext) {
      let last: Status | undefined;
      for (;;) {
        const status = statusOf(req.service) ?? Status.SERVICE_UNKNOWN;
        const next = changed(state, ctx.signal);
        if (status !== last) {
          last = status;
          yield create(HealthCheckResponseSchema, { status });
        }
        if (state.isShuttingDown || ctx.signal.aborted) return;
        await next;
      }
    },
  });
}

/** Resolves at the next change of `state`, or when `signal` aborts. */
function changed(state: HealthState, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      unsubscribe();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const unsubscribe = state.subscribe(done);
    signal.addEventListener("abort", done, { once: true });
  });
}
