/**
 * The fastify application: every protocol on one server. Connect, gRPC and
 * gRPC-Web are served by connect-es; REST is translated onto the same
 * handlers, so auth, validation and errors are shared by construction.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { createContextValues, type ConnectRouter } from "@connectrpc/connect";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { fastifyCors } from "@fastify/cors";
import { fastify, LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerFactory } from "fastify";
import type { LoggerOptions } from "pino";
import type { Config } from "../config.js";
import type { Appointments } from "../gateway/appointments.js";
import type { Customers } from "../gateway/customers.js";
import type { RateLimiter } from "../gateway/rate-limiter.js";
import type { Directory } from "../store/directory.js";
import { withErrorDetails } from "../rpc/error-details-handler.js";
import { authenticate, errorModel } from "../rpc/interceptors.js";
import { withStrictJson } from "../rpc/strict-json.js";
import { registerServices } from "../rpc/services.js";
import { restErrorOfFramework, sendRestError } from "../rest/rest-errors.js";
import { registerRest } from "../rest/rest-plugin.js";
import { loadConsoleAssets } from "../console/console-assets.js";
import { registerConsole } from "../console/console-plugin.js";
import { corsOptions } from "./cors.js";
import { createOnePortServer, type EdgeVerdict } from "./one-port-server.js";
import type { OverloadMonitor } from "./overload.js";
import type { SessionRegistry } from "../gateway/session-registry.js";
import { GatewayError } from "../errors.js";

export interface Gateway {
  readonly config: Config;
  readonly directory: Directory;
  readonly appointments: Appointments;
  readonly customers: Customers;
  readonly rateLimiter: RateLimiter;
  /** Whether the process is overloaded; new calls are refused while it is. */
  readonly overload: OverloadMonitor;
  /** Open bot sessions, by partner. */
  readonly sessions: SessionRegistry;
  /** Releases connections and timers; the server must be closed first. */
  close(): Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._:\-]{1,128}$/;

/** JSON as partners write it: proto field names (`bot_id`); the camelCase JSON names are read too. */
const JSON_OPTIONS = { useProtoFieldName: true } as const;

/**
 * Node's timers hold at most 2^31-1 ms; a longer client deadline would
 * silently become 1 ms, so it is refused as invalid instead.
 */
const MAX_TIMEOUT_MS = 2_147_483_647;

export interface BuildOptions {
  /** Log output; defaults to stdout at the configured level. */
  readonly logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
  /** A logger made with `loggerOptions`, shared with the gateway's components; takes precedence over `logger`. */
  readonly loggerInstance?: FastifyBaseLogger;
  /** Told of every connection or HTTP/2 session a bound refused or ended (for counting). */
  readonly onEdgeVerdict?: (verdict: EdgeVerdict, address: string) => void;
}

/** The server's pino options: the configured level, and never a partner key or idempotency key in a log line. */
export function loggerOptions(config: Config): LoggerOptions {
  return {
    level: config.logLevel,
    redact: ["req.headers.authorization", "req.headers['idempotency-key']"],
  };
}

export async function buildServer(gateway: Gateway, options: BuildOptions = {}): Promise<FastifyInstance> {
  const { config } = gateway;
  const serverFactory: FastifyServerFactory = (handler) =>
    createOnePortServer(handler as Parameters<typeof createOnePortServer>[0], {
      tls: config.tls,
      keepAliveMs: 30_000,
      limits: config.edge,
      onVerdict: options.onEdgeVerdict,
      onSaturated: (saturated) =>
        saturated
          ? app.log.warn({ maxConnections: config.edge.maxConnections }, "connection cap reached: new connections close the oldest that sent no request, or are refused")
          : app.log.info({ maxConnections: config.edge.maxConnections }, "connections back under the cap"),
    }) as never;
  const app = fastify({
    serverFactory,
    ...(options.loggerInstance !== undefined ? { loggerInstance: options.loggerInstance } : { logger: options.logger ?? loggerOptions(config) }),
    // One line per request comes from the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxRequestBytes,
    requestIdHeader: "x-request-id",
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    frameworkErrors: (error, req, reply) => sendRestError(req, reply, restErrorOfFramework(error)),
  });

  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });
  app.addHook("onResponse", async (req, reply) => {
    req.log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, "request");
  });

  await app.register(fastifyCors, corsOptions);

  // Bot sessions stop reading, answer what is in flight and end with
  // `shutting_down` as soon as closing begins. This is not connect's
  // `shutdownSignal`: that one aborts every call's `ctx.signal`, which would
  // cancel the webhooks in flight instead of letting them finish. The
  // listener's grace period bounds how long they may take.
  const closing = new AbortController();
  setMaxListeners(0, closing.signal); // one listener per open session
  app.addHook("preClose", async () => closing.abort());

  const handlers: UniversalHandler[] = [];
  const contextValues = () => createContextValues();
  await app.register(async (rpc) => {
    // Errors fastify raises itself on the RPC routes (a content type no
    // protocol accepts, say) come in the REST envelope too, not fastify's shape.
    rpc.setErrorHandler((error, req, reply) => sendRestError(req, reply, restErrorOfFramework(error)));
    await rpc.register(fastifyConnectPlugin, {
      routes(router: ConnectRouter) {
        registerServices(withStrictJson(router, JSON_OPTIONS), {
          appointments: gateway.appointments,
          customers: gateway.customers,
          sessions: {
            maxInFlight: config.sessionMaxInFlight,
            idleMs: config.sessionIdleMs,
            maxLifetimeMs: config.sessionMaxLifetimeMs,
            registry: gateway.sessions,
            shutdownSignal: closing.signal,
            rateLimiter: gateway.rateLimiter,
            reportError: (e) => app.log.error({ err: e, procedure: "dialstack.partner.v1.BotSessionService/Converse" }, "unexpected error"),
          },
        });
        // Errors that connect-es raises before any interceptor runs get the
        // same ErrorInfo as the rest; the plugin serves the wrapped handlers.
        router.handlers.splice(0, router.handlers.length, ...router.handlers.map((handler) => withErrorDetails(handler, MAX_TIMEOUT_MS)));
        handlers.push(...router.handlers);
      },
      // Runs once the protocol is known and before the body is read: an
      // overloaded gateway refuses the call without spending more on it.
      requestGate: () => {
        try {
          gateway.overload.admit();
        } catch (e) {
          throw GatewayError.from(e).toConnectError();
        }
      },
      readMaxBytes: config.maxRequestBytes,
      maxTimeoutMs: MAX_TIMEOUT_MS,
      jsonOptions: JSON_OPTIONS,
      interceptors: [errorModel((e, procedure) => app.log.error({ err: e, procedure }, "unexpected error")), authenticate(gateway.directory, gateway.rateLimiter)],
      contextValues,
    });
  });
  await registerRest(app, { handlers, contextValues });
  registerConsole(app, await loadConsoleAssets());

  app.get("/healthz", async () => ({ status: "ok" }));
  return app;
}
