/**
 * The fastify application: every protocol on one server. Connect, gRPC and
 * gRPC-Web are served by connect-es; REST reaches the same implementations
 * behind the same interceptors (unary calls directly, server streams
 * transcoded onto the handlers), so auth, validation and errors are shared by
 * construction.
 * Beside the partner services: gRPC health and reflection (no key needed),
 * the probes, `/metrics`, and the hook that observes every call.
 */
import { setMaxListeners } from "node:events";
import type { Gateway } from "../gateway/gateway.js";
import type { DescMethod } from "@bufbuild/protobuf";
import { createContextValues, type ConnectRouter, type Interceptor, type MethodImplSpec } from "@connectrpc/connect";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { fastifyCors } from "@fastify/cors";
import { fastify, LogController, type FastifyInstance, type FastifyRequest, type FastifyServerFactory } from "fastify";
import { HEALTH_SERVICE, registerHealth } from "../health/health-service.js";
import { registerProbes } from "../health/probes.js";
import { serveMetrics } from "../metrics/metrics-server.js";
import { CallObserver } from "../observability/call-observer.js";
import { ConditionLog } from "../observability/condition-log.js";
import { REDACTED_PATHS, type Logger } from "../observability/logger.js";
import { requestIdOf, REQUEST_ID_HEADER } from "../observability/request-id.js";
import { DescriptorIndex } from "../reflection/descriptor-index.js";
import { REFLECTION_SERVICES, registerReflection } from "../reflection/reflection-service.js";
import { callKey } from "../rpc/call-context.js";
import { withErrorDetails } from "../rpc/error-details-handler.js";
import { authenticate, errorModel, observeOutcome } from "../rpc/interceptors.js";
import { registerServices } from "../rpc/services.js";
import { withStrictJson } from "../rpc/strict-json.js";
import { UnaryFastPath } from "../rpc/unary-fast-path.js";
import { restErrorOfFramework, sendRestError } from "../rest/rest-errors.js";
import { recordImplementations } from "../rest/direct-call.js";
import { registerRest } from "../rest/rest-plugin.js";
import { loadConsoleAssets } from "../console/console-assets.js";
import { registerConsole } from "../console/console-plugin.js";
import { observeCalls } from "./call-hooks.js";
import { refuseBadAuthority } from "./authority.js";
import { corsOptions } from "./cors.js";
import { createOnePortServer } from "./one-port-server.js";
import { GatewayError } from "../errors.js";


/**
 * Node's timers hold at most 2^31-1 ms; a longer client deadline would
 * silently become 1 ms, so it is refused as invalid instead.
 */
const MAX_TIMEOUT_MS = 2_147_483_647;

/** JSON as partners write it: proto field names (`bot_id`); the camelCase JSON names are read too. */
const JSON_OPTIONS = { useProtoFieldName: true } as const;

export interface BuildOptions {
  /** Log output; defaults to the gateway's logger. */
  readonly logger?: boolean | { level: string; stream?: NodeJS.WritableStream };
}

export async function buildServer(gateway: Gateway, options: BuildOptions = {}): Promise<FastifyInstance> {
  const { config } = gateway;
  const serverFactory: FastifyServerFactory = (handler) =>
    createOnePortServer(handler as Parameters<typeof createOnePortServer>[0], {
      tls: config.tls,
      keepAliveMs: 30_000,
      graceMs: config.shutdownGraceMs,
      limits: config.edge,
      onVerdict: (verdict) => gateway.metrics.edgeRefused(verdict),
      onSaturated: (saturated) => connectionCap.report(saturated, "", { maxConnections: config.edge.maxConnections }),
    }) as never;
  const connectionCap = new ConditionLog(gateway.log, "connection_cap", {
    bad: "connection cap reached: new connections close the oldest that sent no request, or are refused",
    good: "connections back under the cap",
    level: "warn",
  });
  const logging =
    options.logger === undefined
      ? { loggerInstance: gateway.log }
      : { logger: typeof options.logger === "boolean" ? options.logger : { ...options.logger, redact: REDACTED_PATHS } };
  const app = fastify({
    serverFactory,
    ...logging,
    // One line per request comes from the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxRequestBytes,
    // fastify would take a request id header as it comes; this checks it.
    requestIdHeader: false,
    genReqId: (req) => requestIdOf(req.headers[REQUEST_ID_HEADER]),
    return503OnClosing: true,
    frameworkErrors: (error, req, reply) => sendRestError(req, reply, restErrorOfFramework(error)),
  }) as unknown as FastifyInstance;

  // Callback hooks, not async ones: no promise per request for work that never waits.
  app.addHook("onRequest", (req, reply, done) => {
    reply.header(REQUEST_ID_HEADER, req.id);
    done();
  });
  app.addHook("onResponse", (req, reply, done) => {
    // The path only: a Connect GET carries the whole request (a caller's phone number, say) in its query.
    req.log.info({ method: req.method, path: pathOf(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, "request");
    done();
  });

  await app.register(fastifyCors, corsOptions);

  // Bot sessions stop reading, answer what is in flight and end with
  // `shutting_down` as soon as closing begins. This is not connect's
  // `shutdownSignal`: that one aborts every call's `ctx.signal`, which would
  // cancel the webhooks in flight instead of letting them finish. The
  // listener's grace period bounds how long they may take. Health turns
  // NOT_SERVING at the same moment, so load balancers stop sending calls.
  const closing = new AbortController();
  setMaxListeners(0, closing.signal); // one listener per open session
  app.addHook("preClose", async () => {
    gateway.health.beginShutdown();
    closing.abort();
  });

  const reportError = (e: unknown, procedure: string, log: Logger = gateway.log) => log.error({ err: e, procedure }, "unexpected error");
  const contextValues = (req: FastifyRequest) => createContextValues().set(callKey, req.call);
  const rpcOptions = (interceptors: Interceptor[]) => ({
    readMaxBytes: config.maxRequestBytes,
    maxTimeoutMs: MAX_TIMEOUT_MS,
    jsonOptions: JSON_OPTIONS,
    // The plugin's default, named here so that the unary fast path negotiates the same.
    acceptCompression: [compressionGzip, compressionBrotli],
    interceptors: [observeOutcome(), errorModel(reportError), ...interceptors],
    contextValues,
  });
  // Errors that connect-es raises before any interceptor runs get the same
  // ErrorInfo as the rest; the plugin serves the wrapped handlers, and the
  // unary fast path goes in front of the plugin's route for each unary method
  // (through fastify's onRoute hook in the plugin's scope).
  const wrapHandlers = (router: ConnectRouter, fastPath: UnaryFastPath) =>
    router.handlers.splice(
      0,
      router.handlers.length,
      ...router.handlers.map((handler) => fastPath.serve(withErrorDetails(handler, MAX_TIMEOUT_MS))),
    );

  // Runs once the protocol is known and before the body is read: an
  // overloaded gateway refuses the call without spending more on it.
  // (Health and reflection are not gated: probes must answer.)
  const requestGate = () => {
    try {
      gateway.overload.admit();
    } catch (e) {
      throw GatewayError.from(e).toConnectError();
    }
  };
  const partnerOptions = rpcOptions([authenticate(gateway.directory, gateway.rateLimiter)]);
  // The partner methods' implementations, which REST invokes directly with the same interceptors.
  const implementations = new Map<DescMethod, MethodImplSpec>();
  const handlers: UniversalHandler[] = [];
  await app.register(async (rpc) => {
    // Errors fastify raises itself on the RPC routes (a content type no
    // protocol accepts, say) come in the REST envelope too, not fastify's shape.
    rpc.setErrorHandler((error, req, reply) => sendRestError(req, reply, restErrorOfFramework(error)));
    rpc.addHook("onRequest", refuseBadAuthority);
    const options = { ...partnerOptions, requestGate };
    const fastPath = new UnaryFastPath(options, config.unaryFastPath, contextValues);
    rpc.addHook("onRoute", (route) => fastPath.route(route));
    await rpc.register(fastifyConnectPlugin, {
      routes(router: ConnectRouter) {
        registerServices(withStrictJson(recordImplementations(fastPath.record(router), implementations), JSON_OPTIONS), {
          appointments: gateway.appointments,
          customers: gateway.customers,
          sessions: {
            maxInFlight: config.sessionMaxInFlight,
            idleMs: config.sessionIdleMs,
            maxLifetimeMs: config.sessionMaxLifetimeMs,
            registry: gateway.sessions,
            shutdownSignal: closing.signal,
            rateLimiter: gateway.rateLimiter,
            reportError: (e) => reportError(e, "dialstack.partner.v1.BotSessionService/Converse"),
          },
          metrics: gateway.metrics,
        });
        wrapHandlers(router, fastPath);
        handlers.push(...router.handlers);
      },
      ...options,
    });
  });

  // Health and reflection answer without a partner key.
  const partnerServices = [...new Map(handlers.map((h) => [h.service.typeName, h.service])).values()];
  const publicHandlers: UniversalHandler[] = [];
  await app.register(async (rpc) => {
    rpc.setErrorHandler((error, req, reply) => sendRestError(req, reply, restErrorOfFramework(error)));
    rpc.addHook("onRequest", refuseBadAuthority);
    const options = rpcOptions([]);
    const fastPath = new UnaryFastPath(options, config.unaryFastPath, contextValues);
    rpc.addHook("onRoute", (route) => fastPath.route(route));
    await rpc.register(fastifyConnectPlugin, {
      routes(router: ConnectRouter) {
        const recording = fastPath.record(router);
        registerHealth(recording, gateway.health, {
          dependent: partnerServices.map((s) => s.typeName),
          independent: [HEALTH_SERVICE, ...REFLECTION_SERVICES].map((s) => s.typeName),
        });
        registerReflection(recording, new DescriptorIndex([...partnerServices, HEALTH_SERVICE, ...REFLECTION_SERVICES]));
        wrapHandlers(router, fastPath);
        publicHandlers.push(...router.handlers);
      },
      ...options,
    });
  });
  const restRoutes = await registerRest(app, {
    handlers,
    contextValues,
    direct: {
      implementations,
      interceptors: partnerOptions.interceptors,
      jsonOptions: JSON_OPTIONS,
      readMaxBytes: config.maxRequestBytes,
      maxTimeoutMs: MAX_TIMEOUT_MS,
      requestGate,
    },
  });
  registerConsole(app, await loadConsoleAssets());

  const procedureOf = (h: UniversalHandler) => `${h.service.typeName}/${h.method.name}`;
  observeCalls(app, new CallObserver(gateway.metrics, gateway.tracer), {
    rpc: new Map([...handlers, ...publicHandlers].map((h) => [h.requestPath, procedureOf(h)])),
    rest: new Map(restRoutes.map((r) => [`${r.httpMethod} ${r.routePath}`, procedureOf(r.handler)])),
  });

  registerProbes(app, gateway.health);
  await serveMetrics(app, gateway.metrics, config);
  return app;
}

function pathOf(url: string): string {
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}
