/**
 * Health as load balancers and orchestrators see it: the gRPC health service
 * (Check, Watch, List) with no partner key, on every protocol and with
 * @grpc/grpc-js; NOT_SERVING while a test-owned Redis is frozen with SIGSTOP
 * and SERVING again after SIGCONT; `/healthz` and `/readyz` answering within
 * a second meanwhile; one log line when Redis is lost and one when it is
 * back, and the failed checks counted; NOT_SERVING and an ended Watch at
 * shutdown.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Code, createClient } from "@connectrpc/connect";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../src/gen/grpc/health/v1/health_pb.js";
import { expectRpcError, RPC_PROTOCOLS, transportFor } from "./support/clients.js";
import { startHarness, type Harness } from "./support/harness.js";
import { parsePrometheusText, sampleValue } from "./support/prometheus-text.js";
import { RedisServer } from "./support/redis-server.js";
import { logLinesInto, type LogLine } from "./support/log-lines.js";

const PROTO_DIR = fileURLToPath(new URL("../proto", import.meta.url));

const SERVICES = ["", "dialstack.partner.v1.AvailabilityService", "dialstack.partner.v1.BookingService", "dialstack.partner.v1.BotSessionService"];

/** A grpc-js client of grpc.health.v1.Health, loaded from the proto as any gRPC user would. */
function grpcHealthClient(port: number): grpc.Client & Record<string, Function> {
  const definition = protoLoader.loadSync("grpc/health/v1/health.proto", { includeDirs: [PROTO_DIR], keepCase: true, enums: String });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  return new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function check(client: grpc.Client & Record<string, Function>, service: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.Check!({ service }, { deadline: Date.now() + 3000 }, (e: grpc.ServiceError | null, res: { status: string }) => (e ? reject(e) : resolve(res.status))),
  );
}

/** The statuses a grpc-js Watch receives, as they arrive. */
function watch(client: grpc.Client & Record<string, Function>, service: string) {
  const seen: string[] = [];
  let ended: grpc.StatusObject | undefined;
  const call = client.Watch!({ service }) as grpc.ClientReadableStream<{ status: string }>;
  call.on("data", (m: { status: string }) => seen.push(m.status));
  call.on("status", (s: grpc.StatusObject) => (ended = s));
  call.on("error", () => {});
  return {
    seen,
    get ended() {
      return ended;
    },
    cancel: () => call.cancel(),
  };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

describe("gRPC health, no partner key, on every protocol", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  describe.each(RPC_PROTOCOLS)("%s", (protocol) => {
    it("Check is SERVING for the server and each service, NOT_FOUND for an unknown one", async () => {
      const client = createClient(Health, transportFor(protocol, h.url));
      for (const service of [...SERVICES, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]) {
        expect((await client.check({ service })).status, service).toBe(Status.SERVING);
      }
      await expectRpcError(client.check({ service: "no.such.Service" }), Code.NotFound, "not_found");
    });

    it("List names every service", async () => {
      const client = createClient(Health, transportFor(protocol, h.url));
      const { statuses } = await client.list({});
      expect(Object.keys(statuses)).toEqual(expect.arrayContaining([...SERVICES, "grpc.reflection.v1alpha.ServerReflection"]));
      expect(Object.values(statuses).every((s) => s.status === Status.SERVING)).toBe(true);
    });
  });

  it("Watch of an unknown service says SERVICE_UNKNOWN and stays open (grpc-js)", async () => {
    const client = grpcHealthClient(h.port);
    try {
      const w = watch(client, "no.such.Service");
      await expect.poll(() => w.seen).toEqual(["SERVICE_UNKNOWN"]);
      await new Promise((r) => setTimeout(r, 200));
      expect(w.ended).toBeUndefined();
      w.cancel();
    } finally {
      client.close();
    }
  });

  it("the probes answer: /healthz 200, /readyz 200 ready", async () => {
    const live = await fetch(`${h.url}/healthz`);
    expect([live.status, await live.json()]).toEqual([200, { status: "ok" }]);
    const ready = await fetch(`${h.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { status: "ready" }]);
  });
});

describe("with Redis frozen (SIGSTOP) and thawed (SIGCONT)", () => {
  let redis: RedisServer;
  let h: Harness;
  const lines: LogLine[] = [];
  let client: grpc.Client & Record<string, Function>;

  beforeAll(async () => {
    redis = await RedisServer.start();
    const stream = logLinesInto(lines);
    h = await startHarness({ redisUrl: redis.url, env: { LOG_LEVEL: "warn" }, logStream: stream });
    client = grpcHealthClient(h.port);
  });
  afterAll(async () => {
    client.close();
    await h.close();
    await redis.stop();
  });

  it("Check and Watch (grpc-js) see NOT_SERVING while frozen and SERVING after; the probes answer within a second", async () => {
    expect(await check(client, "")).toBe("SERVING");
    const w = watch(client, "dialstack.partner.v1.BookingService");
    await expect.poll(() => w.seen).toEqual(["SERVING"]);

    redis.pause();
    try {
      // Two PINGs in a row unanswered for a second each: two to three seconds.
      await expect.poll(() => check(client, ""), { timeout: 8000, interval: 100 }).toBe("NOT_SERVING");
      expect(await check(client, "dialstack.partner.v1.AvailabilityService")).toBe("NOT_SERVING");
      // Health itself still serves: it answers the question.
      expect(await check(client, "grpc.health.v1.Health")).toBe("SERVING");
      await expect.poll(() => w.seen).toEqual(["SERVING", "NOT_SERVING"]);

      const ready = await timed(() => fetch(`${h.url}/readyz`));
      expect(ready.value.status).toBe(503);
      expect(await ready.value.json()).toEqual({ status: "not_ready", reasons: ["redis_unreachable"] });
      expect(ready.ms).toBeLessThan(1000);
      const live = await timed(() => fetch(`${h.url}/healthz`));
      expect(live.value.status).toBe(200);
      expect(live.ms).toBeLessThan(1000);
    } finally {
      redis.unpause();
    }
    await expect.poll(() => check(client, ""), { timeout: 5000, interval: 100 }).toBe("SERVING");
    await expect.poll(() => w.seen).toEqual(["SERVING", "NOT_SERVING", "SERVING"]);
    expect((await fetch(`${h.url}/readyz`)).status).toBe(200);
    w.cancel();

    const metrics = parsePrometheusText(await (await fetch(`${h.url}/metrics`)).text());
    expect(sampleValue(metrics, "gateway_redis_errors_total", { source: "health_check" })).toBeGreaterThanOrEqual(1);

    const redisLines = lines.filter((l) => l.condition === "redis");
    expect(redisLines.map((l) => [l.level, l.msg])).toEqual([
      [50, expect.stringMatching(/^Redis unreachable/)],
      [40, "Redis reachable again"],
    ]);
    // The PING was missed by the connection's own command timeout.
    expect(redisLines[0]).toMatchObject({ reason: "no answer to PING within 1000 ms" });
    expect(JSON.stringify(lines)).not.toContain(h.keys.a);
  });

  it("a killed and restarted Redis: NOT_SERVING, then SERVING on its own", async () => {
    await redis.kill();
    await expect.poll(() => check(client, ""), { timeout: 5000, interval: 100 }).toBe("NOT_SERVING");
    await redis.resume();
    await expect.poll(() => check(client, ""), { timeout: 8000, interval: 100 }).toBe("SERVING");
  });
});

describe("at shutdown", () => {
  it("health turns NOT_SERVING, a Watch is told and ends, /readyz is 503", async () => {
    const h = await startHarness();
    const client = grpcHealthClient(h.port);
    try {
      const w = watch(client, "");
      await expect.poll(() => w.seen).toEqual(["SERVING"]);
      const closed = h.close();
      await expect.poll(() => w.seen).toEqual(["SERVING", "NOT_SERVING"]);
      await expect.poll(() => w.ended?.code).toBe(grpc.status.OK);
      await closed;
    } finally {
      client.close();
    }
  });

  it("the health state reports shutting_down to /readyz", async () => {
    const h = await startHarness();
    try {
      h.gateway.health.beginShutdown();
      const ready = await fetch(`${h.url}/readyz`);
      expect([ready.status, await ready.json()]).toEqual([503, { status: "not_ready", reasons: ["shutting_down"] }]);
      expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    } finally {
      await h.close();
    }
  });
});
