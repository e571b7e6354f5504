/**
 * The gateway's components as the servers that expose them see them:
 * assembled from a `Config` by `create-gateway.ts`, served on every protocol
 * by `server/app.ts`. The server depends on this, never the reverse.
 */
import type { Logger as PinoLogger } from "pino";
import type { Config } from "../config.js";
import type { HealthState } from "../health/health-state.js";
import type { OverloadMonitor } from "../health/overload-monitor.js";
import type { Metrics } from "../metrics/metrics.js";
import type { Directory } from "../store/directory.js";
import type { Tracer } from "../tracing/tracer.js";
import type { Appointments } from "./appointments.js";
import type { Customers } from "./customers.js";
import type { CallLimiter } from "./rate-limiter.js";
import type { SessionRegistry } from "./session-registry.js";

export interface Gateway {
  readonly config: Config;
  readonly directory: Directory;
  readonly appointments: Appointments;
  readonly customers: Customers;
  readonly rateLimiter: CallLimiter;
  readonly log: PinoLogger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
  readonly health: HealthState;
  /** Whether the process is overloaded; new calls are refused while it is. */
  readonly overload: OverloadMonitor;
  /** Open bot sessions, by partner. */
  readonly sessions: SessionRegistry;
  /** Releases connections and timers; the server must be closed first. */
  close(): Promise<void>;
}
