/**
 * The workloads: one kind of partner request, the load tool that sends it,
 * and the targets it is sent to. The first target of a workload is the one
 * measured (the gateway); the others are what it is compared with (baselines
 * doing the same relay, and the platform called directly).
 *
 * Before a workload runs, every target is checked with one real request. A
 * gateway endpoint that answers 404 or `unimplemented` makes the workload
 * "not available" on this build (reported, not an error); any other wrong
 * answer, or a baseline that does not answer correctly, is an error.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { SearchAvailabilityResponseSchema } from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { CreateBookingResponseSchema } from "../src/gen/dialstack/partner/v1/booking_pb.js";
import { LookupCustomerResponseSchema } from "../src/gen/dialstack/partner/v1/customer_pb.js";
import {
  AUTHORIZATION,
  BOOKING_BINARY,
  BOOKING_JSON,
  BOOKING_PATH_REST,
  BOOKING_PATH_RPC,
  CONVERSE_PATH_RPC,
  LOOKUP_BINARY,
  LOOKUP_JSON,
  LOOKUP_PATH_REST,
  LOOKUP_PATH_RPC,
  PLATFORM_BOOKING_JSON,
  PLATFORM_LOOKUP_JSON,
  PLATFORM_SEARCH_JSON,
  SEARCH_BINARY,
  SEARCH_JSON,
  SEARCH_PATH_REST,
  SEARCH_PATH_RPC,
  WEBHOOK_BASE_PATH,
  converseAnswerKind,
  converseSearch,
  converseStart,
  envelope,
} from "./fixture.js";
import { runAutocannon } from "./load/autocannon-load.js";
import { runH2Session, runH2Unary, type H2Call } from "./load/h2-client-load.js";
import { runH2load } from "./load/h2load-load.js";
import type { LoadResult } from "./load/load-result.js";
import { grpcStatusOf, messagesOf, postH1, postH2, session, type Answer } from "./probe.js";
import type { ServerProcess } from "./processes.js";

export interface Target {
  readonly label: string;
  /** The process whose CPU time and peak RSS are measured. */
  readonly server: ServerProcess;
  /** Webhooks the platform receives per successful request: 1 for a relay, 0 for a replay. */
  readonly platformCallsPerRequest: 0 | 1;
  /** A reference build of the gateway, which may predate the workload's endpoint: then it is left out, not a failure. */
  readonly mayLack?: boolean;
  /** Undefined when the target answers correctly; why it is not available when its endpoint is missing. Throws when it answers wrongly. */
  check(): Promise<string | undefined>;
  run(concurrency: number, durationS: number): Promise<LoadResult>;
}

export interface Workload {
  readonly id: string;
  readonly title: string;
  readonly tool: string;
  /** What a reader must know to compare the rows. */
  readonly note?: string;
  readonly targets: readonly Target[];
}

interface WorkloadSpec extends Omit<Workload, "targets"> {
  /** The workload's gateway target, for the gateway under test and for a reference build. */
  readonly gateway: (server: ServerProcess, label: string) => Target;
  readonly baselines: readonly Target[];
}

export interface Servers {
  readonly gateway: ServerProcess;
  /** Another build of the gateway, measured in the same run (`--compare`). */
  /** A second gateway measured like the first: another build (`--compare`) or another Node.js (`--compare-node`). */
  readonly reference?: { readonly server: ServerProcess; readonly label: string } | undefined;
  readonly minimalRelay: ServerProcess;
  readonly grpcRelay: ServerProcess;
  readonly platform: ServerProcess;
}

/** How a concurrency becomes HTTP/2 connections and streams: up to 16 streams per connection. */
export function h2Layout(concurrency: number): { connections: number; streams: number } {
  const connections = Math.ceil(concurrency / 16);
  return { connections, streams: Math.ceil(concurrency / connections) };
}

/** The row of grpc-booking-fresh that measures the gateway's gRPC search with the booking's own client. */
export const GRPC_SEARCH_SAME_CLIENT = "gateway, gRPC search (same client)";

/** The row of rest-booking-fresh that measures the gateway's REST search in the booking's own rounds. */
export const REST_SEARCH_SAME_ROUNDS = "gateway, REST search (same rounds)";

const JSON_HEADERS = { "content-type": "application/json" };
const AUTH_JSON = { ...JSON_HEADERS, authorization: AUTHORIZATION };
const CONNECT_JSON = { ...AUTH_JSON, "connect-protocol-version": "1" };
const CONNECT_BINARY = { "content-type": "application/proto", "connect-protocol-version": "1", authorization: AUTHORIZATION };
const GRPC = { "content-type": "application/grpc", te: "trailers", authorization: AUTHORIZATION };
const GRPC_WEB = { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", authorization: AUTHORIZATION };

/** The field a correct answer has: a search's slots, a booking, a lookup's `found`. */
type Expect = "availabilities" | "booking" | "found";

function snippet(body: Buffer): string {
  return body.toString("utf8", 0, 300).replace(/\s+/g, " ");
}

/** True when a 404 says that no route exists (a framework's 404, or the error model's `not_found`), rather than, say, `bot_not_found`. */
function routeMissing(body: Buffer): boolean {
  try {
    const json = JSON.parse(body.toString("utf8")) as { error?: { code?: unknown } };
    return typeof json.error?.code !== "string" || json.error.code === "not_found";
  } catch {
    return true;
  }
}

/** Verdict on a JSON answer: undefined when correct, a reason when the route is missing; throws otherwise. */
function judgeJson(what: string, a: Answer, expect: Expect): string | undefined {
  if (a.status === 404 && routeMissing(a.body)) return `${what} answers 404`;
  if (a.status >= 200 && a.status < 300) {
    const json = JSON.parse(a.body.toString("utf8")) as Record<string, unknown>;
    if (json[expect] !== undefined) return undefined;
  }
  throw new Error(`${what} answered HTTP ${a.status}: ${snippet(a.body)}`);
}

function decodes(expect: Expect, message: Buffer | undefined): boolean {
  if (message === undefined) return false;
  if (expect === "availabilities") return fromBinary(SearchAvailabilityResponseSchema, message).availabilities.length > 0;
  if (expect === "found") return fromBinary(LookupCustomerResponseSchema, message).found;
  return fromBinary(CreateBookingResponseSchema, message).booking !== undefined;
}

function answer(a: Answer, name: string): string | undefined {
  const v = a.trailers[name] ?? a.headers[name];
  return typeof v === "string" ? v : undefined;
}

/** Verdict on a binary answer (Connect binary, gRPC, gRPC-Web). */
function judgeBinary(what: string, a: Answer, expect: Expect, enveloped: boolean): string | undefined {
  const grpcStatus = grpcStatusOf(a);
  if (a.status === 404 || grpcStatus === "12") return `${what} is not implemented (${a.status === 404 ? "HTTP 404" : "unimplemented"})`;
  const message = enveloped ? messagesOf(a.body)[0] : a.body;
  if (a.status === 200 && (!enveloped || grpcStatus === "0") && decodes(expect, message)) return undefined;
  const grpcMessage = answer(a, "grpc-message");
  throw new Error(`${what} answered HTTP ${a.status}, grpc-status ${grpcStatus ?? "none"}${grpcMessage ? ` (${decodeURIComponent(grpcMessage)})` : ""}: ${snippet(a.body)}`);
}

function freshKeys(): () => string {
  const run = randomBytes(4).toString("hex");
  let n = 0;
  return () => `bench-${run}-${++n}`;
}

export function workloads(servers: Servers, workDir: string): Workload[] {
  const { gateway, minimalRelay, grpcRelay, platform } = servers;
  const file = (name: string, data: string | Uint8Array) => {
    const path = join(workDir, name);
    writeFileSync(path, data);
    return path;
  };
  const files = {
    platformSearch: file("platform-search.json", JSON.stringify(PLATFORM_SEARCH_JSON)),
    platformLookup: file("platform-lookup.json", JSON.stringify(PLATFORM_LOOKUP_JSON)),
    grpcLookup: file("grpc-lookup.bin", envelope(LOOKUP_BINARY)),
    connectSearch: file("connect-search.bin", SEARCH_BINARY),
    grpcSearch: file("grpc-search.bin", envelope(SEARCH_BINARY)),
    grpcWebSearch: file("grpc-web-search.bin", envelope(SEARCH_BINARY)),
  };
  let logs = 0;
  const logFile = () => join(workDir, `h2load-${++logs}.log`);

  /** An HTTP/1.1 JSON target driven by autocannon. */
  const autocannonTarget = (
    label: string,
    server: ServerProcess,
    path: string,
    headers: Record<string, string>,
    body: object,
    expect: Expect,
    options: { perRequestHeaders?: () => Record<string, string>; platformCalls?: 0 | 1; checkTwice?: boolean } = {},
  ): Target => ({
    label,
    server,
    platformCallsPerRequest: options.platformCalls ?? 1,
    async check() {
      const h = { ...headers, ...options.perRequestHeaders?.() };
      const first = await postH1(server.url + path, h, JSON.stringify(body));
      const verdict = judgeJson(`POST ${path}`, first, expect);
      if (verdict !== undefined || !options.checkTwice) return verdict;
      const second = await postH1(server.url + path, h, JSON.stringify(body));
      judgeJson(`POST ${path}`, second, expect);
      if (second.headers["idempotent-replayed"] !== "true") return "a second booking with the same key is not marked Idempotent-Replayed (no replay store)";
      return undefined;
    },
    run: (concurrency, durationS) =>
      runAutocannon({
        url: server.url + path,
        headers,
        body: JSON.stringify(body),
        connections: concurrency,
        durationS,
        perRequestHeaders: options.perRequestHeaders,
      }),
  });

  /** A binary target driven by h2load over HTTP/2 (or HTTP/1.1 for the JSON platform). */
  const h2loadTarget = (
    label: string,
    server: ServerProcess,
    path: string,
    headers: Record<string, string>,
    bodyFile: string,
    check: () => Promise<string | undefined>,
    h1 = false,
  ): Target => ({
    label,
    server,
    platformCallsPerRequest: 1,
    check,
    run: (concurrency, durationS) => {
      const { connections, streams } = h1 ? { connections: concurrency, streams: 1 } : h2Layout(concurrency);
      return runH2load({ url: server.url + path, headers, bodyFile, clients: connections, streams, durationS, h1, logFile: logFile() });
    },
  });

  const binaryCheck = (server: ServerProcess, path: string, headers: Record<string, string>, body: Buffer, expect: Expect, enveloped: boolean, h?: () => Record<string, string>) => async () => {
    const first = await postH2(server.url, { ":path": path, ...headers, ...h?.() }, body);
    return judgeBinary(`${path} (${headers["content-type"]})`, first, expect, enveloped);
  };

  /** A gRPC target driven by the node:http2 load client (a fresh call each time). */
  const h2ClientTarget = (label: string, server: ServerProcess, call: () => H2Call, expect: Expect, options: { platformCalls?: 0 | 1; checkTwice?: boolean } = {}): Target => ({
    label,
    server,
    platformCallsPerRequest: options.platformCalls ?? 1,
    async check() {
      const c = call();
      const path = String(c.headers[":path"]);
      const first = await postH2(server.url, c.headers, c.body);
      const verdict = judgeBinary(path, first, expect, true);
      if (verdict !== undefined || !options.checkTwice) return verdict;
      const second = await postH2(server.url, c.headers, c.body);
      judgeBinary(path, second, expect, true);
      if (second.headers["idempotent-replayed"] !== "true") return "a second booking with the same key is not marked Idempotent-Replayed (no replay store)";
      return undefined;
    },
    run: (concurrency, durationS) => {
      const { connections, streams } = h2Layout(concurrency);
      return runH2Unary({ url: server.url, connections, streamsPerConnection: streams, durationS, call });
    },
  });

  /** Each webhook called directly: its payload, the file h2load sends, and what a correct answer has. */
  const webhooks = {
    "/availability/search": { payload: PLATFORM_SEARCH_JSON, file: files.platformSearch, expect: "availabilities" },
    "/bookings": { payload: PLATFORM_BOOKING_JSON, file: undefined, expect: "booking" },
    "/customers/lookup": { payload: PLATFORM_LOOKUP_JSON, file: files.platformLookup, expect: "found" },
  } as const;
  const platformDirect = (path: keyof typeof webhooks) =>
    autocannonTarget("platform direct", platform, WEBHOOK_BASE_PATH + path, JSON_HEADERS, webhooks[path].payload, webhooks[path].expect);
  const platformDirectH1 = (path: "/availability/search" | "/customers/lookup") => {
    const { payload, file: bodyFile, expect } = webhooks[path];
    const url = platform.url + WEBHOOK_BASE_PATH + path;
    return h2loadTarget("platform direct", platform, WEBHOOK_BASE_PATH + path, JSON_HEADERS, bodyFile, async () => judgeJson("the platform", await postH1(url, JSON_HEADERS, JSON.stringify(payload)), expect), true);
  };
  const grpcJsSearch = h2loadTarget("grpc-js relay", grpcRelay, SEARCH_PATH_RPC, GRPC, files.grpcSearch, binaryCheck(grpcRelay, SEARCH_PATH_RPC, GRPC, envelope(SEARCH_BINARY), "availabilities", true));
  const grpcJsLookup = h2loadTarget("grpc-js relay", grpcRelay, LOOKUP_PATH_RPC, GRPC, files.grpcLookup, binaryCheck(grpcRelay, LOOKUP_PATH_RPC, GRPC, envelope(LOOKUP_BINARY), "found", true));

  const grpcSearchCall: H2Call = { headers: { ":path": SEARCH_PATH_RPC, ...GRPC }, body: envelope(SEARCH_BINARY) };
  const bookingKey = freshKeys();
  const grpcBookingCall = (key: () => string) => (): H2Call => ({
    headers: { ":path": BOOKING_PATH_RPC, ...GRPC, "idempotency-key": key() },
    body: envelope(BOOKING_BINARY),
  });
  const replayKey = `bench-replay-${randomBytes(4).toString("hex")}`;
  const sameKey = () => replayKey;
  const fresh = () => ({ "idempotency-key": bookingKey() });
  const replayHeaders = { ...AUTH_JSON, "idempotency-key": replayKey };

  const sessionTarget = (server: ServerProcess, label: string): Target => ({
    label: `${label}, session op`,
    server,
    platformCallsPerRequest: 1,
    async check() {
      const a = await session(server.url, { ":path": CONVERSE_PATH_RPC, ...GRPC }, [converseStart(), converseSearch("probe")], converseAnswerKind);
      if (a.status === 404 || a.grpcStatus === "12") return "BotSessionService/Converse is not implemented";
      if (a.grpcStatus === "0" && a.answers.join(",") === "started,ok") return undefined;
      throw new Error(`Converse answered ${a.answers.join(",") || "nothing"}, grpc-status ${a.grpcStatus ?? "none"} ${a.grpcMessage ?? ""}`);
    },
    run: (concurrency, durationS) => {
      const { connections, streams } = h2Layout(concurrency);
      const ops = Array.from({ length: 64 }, (_, i) => converseSearch(`op-${i}`));
      return runH2Session({
        url: server.url,
        connections,
        streamsPerConnection: streams,
        durationS,
        headers: { ":path": CONVERSE_PATH_RPC, ...GRPC } as http2.OutgoingHttpHeaders,
        start: converseStart(),
        op: (n) => ops[n % ops.length]!,
        classify: converseAnswerKind,
      });
    },
  });

  const specs: WorkloadSpec[] = [
    {
      id: "rest-search",
      title: "Availability search, REST (HTTP/1.1)",
      tool: "autocannon, one request in flight per connection",
      gateway: (server, label) => autocannonTarget(label, server, SEARCH_PATH_REST, AUTH_JSON, SEARCH_JSON, "availabilities"),
      baselines: [
        autocannonTarget("minimal relay", minimalRelay, SEARCH_PATH_REST, AUTH_JSON, SEARCH_JSON, "availabilities"),
        platformDirect("/availability/search"),
      ],
    },
    {
      id: "connect-json-search",
      title: "Availability search, Connect JSON over HTTP/1.1",
      tool: "autocannon, one request in flight per connection",
      gateway: (server, label) => autocannonTarget(label, server, SEARCH_PATH_RPC, CONNECT_JSON, SEARCH_JSON, "availabilities"),
      baselines: [
        autocannonTarget("minimal relay", minimalRelay, SEARCH_PATH_RPC, CONNECT_JSON, SEARCH_JSON, "availabilities"),
        platformDirect("/availability/search"),
      ],
    },
    {
      id: "connect-binary-h2-search",
      title: "Availability search, Connect binary (application/proto) over HTTP/2",
      tool: "h2load; up to 16 streams per connection; the platform over HTTP/1.1, one connection per request in flight",
      note: "The grpc-js relay speaks gRPC, not Connect: it is the closest binary-over-HTTP/2 server a team would otherwise pick.",
      gateway: (server, label) =>
        h2loadTarget(label, server, SEARCH_PATH_RPC, CONNECT_BINARY, files.connectSearch, binaryCheck(server, SEARCH_PATH_RPC, CONNECT_BINARY, Buffer.from(SEARCH_BINARY), "availabilities", false)),
      baselines: [grpcJsSearch, platformDirectH1("/availability/search")],
    },
    {
      id: "grpc-search",
      title: "Availability search, gRPC",
      tool: "h2load; up to 16 streams per connection; the platform over HTTP/1.1, one connection per request in flight",
      gateway: (server, label) =>
        h2loadTarget(label, server, SEARCH_PATH_RPC, GRPC, files.grpcSearch, binaryCheck(server, SEARCH_PATH_RPC, GRPC, envelope(SEARCH_BINARY), "availabilities", true)),
      baselines: [grpcJsSearch, platformDirectH1("/availability/search")],
    },
    {
      id: "grpc-web-search",
      title: "Availability search, gRPC-Web over HTTP/2",
      tool: "h2load; up to 16 streams per connection; the platform over HTTP/1.1, one connection per request in flight",
      note: "grpc-js does not serve gRPC-Web; its row is the same relay over gRPC.",
      gateway: (server, label) =>
        h2loadTarget(label, server, SEARCH_PATH_RPC, GRPC_WEB, files.grpcWebSearch, binaryCheck(server, SEARCH_PATH_RPC, GRPC_WEB, envelope(SEARCH_BINARY), "availabilities", true)),
      baselines: [grpcJsSearch, platformDirectH1("/availability/search")],
    },
    {
      id: "rest-lookup",
      title: "Caller lookup, REST (HTTP/1.1)",
      tool: "autocannon, one request in flight per connection",
      note: "A lookup is never cached: every request is relayed, as by the minimal relay. The platform answers a known caller with an appointment.",
      gateway: (server, label) => autocannonTarget(label, server, LOOKUP_PATH_REST, AUTH_JSON, LOOKUP_JSON, "found"),
      baselines: [autocannonTarget("minimal relay", minimalRelay, LOOKUP_PATH_REST, AUTH_JSON, LOOKUP_JSON, "found"), platformDirect("/customers/lookup")],
    },
    {
      id: "grpc-lookup",
      title: "Caller lookup, gRPC",
      tool: "h2load; up to 16 streams per connection; the platform over HTTP/1.1, one connection per request in flight",
      note: "A lookup is never cached: every call is relayed, as by the grpc-js relay.",
      gateway: (server, label) =>
        h2loadTarget(label, server, LOOKUP_PATH_RPC, GRPC, files.grpcLookup, binaryCheck(server, LOOKUP_PATH_RPC, GRPC, envelope(LOOKUP_BINARY), "found", true)),
      baselines: [grpcJsLookup, platformDirectH1("/customers/lookup")],
    },
    {
      id: "rest-booking-fresh",
      title: "Booking with a fresh idempotency key per request, REST",
      tool: "autocannon with a new Idempotency-Key per request (setupRequest)",
      note:
        "The gateway claims and stores every key in Redis; the minimal relay stores nothing. The gateway's REST search is measured here too, in the same rounds, for the booking-to-search ratio (the machine's speed drifts between workloads).",
      gateway: (server, label) => autocannonTarget(label, server, BOOKING_PATH_REST, AUTH_JSON, BOOKING_JSON, "booking", { perRequestHeaders: fresh }),
      baselines: [
        autocannonTarget("minimal relay", minimalRelay, BOOKING_PATH_REST, AUTH_JSON, BOOKING_JSON, "booking", { perRequestHeaders: fresh }),
        platformDirect("/bookings"),
        autocannonTarget(REST_SEARCH_SAME_ROUNDS, gateway, SEARCH_PATH_REST, AUTH_JSON, SEARCH_JSON, "availabilities"),
      ],
    },
    {
      id: "grpc-booking-fresh",
      title: "Booking with a fresh idempotency key per request, gRPC",
      tool: "node:http2 closed-loop client (bench/load/h2-client-load.ts), a new idempotency-key header per call",
      note:
        "The gateway claims and stores every key in Redis; the grpc-js relay stores nothing. The gateway's gRPC search is measured here too, with the same client, for the booking-to-search ratio (h2load, which drives grpc-search, costs the machine less per call than this client).",
      gateway: (server, label) => h2ClientTarget(label, server, grpcBookingCall(bookingKey), "booking"),
      baselines: [
        h2ClientTarget("grpc-js relay", grpcRelay, grpcBookingCall(bookingKey), "booking"),
        h2ClientTarget(GRPC_SEARCH_SAME_CLIENT, gateway, () => grpcSearchCall, "availabilities"),
      ],
    },
    {
      id: "rest-booking-replay",
      title: "Booking replayed from one stored key, REST",
      tool: "autocannon, the same Idempotency-Key and body on every request",
      note: "The gateway answers from its store without calling the platform; the minimal relay relays every request.",
      gateway: (server, label) => autocannonTarget(label, server, BOOKING_PATH_REST, replayHeaders, BOOKING_JSON, "booking", { platformCalls: 0, checkTwice: true }),
      baselines: [autocannonTarget("minimal relay", minimalRelay, BOOKING_PATH_REST, replayHeaders, BOOKING_JSON, "booking"), platformDirect("/bookings")],
    },
    {
      id: "grpc-booking-replay",
      title: "Booking replayed from one stored key, gRPC",
      tool: "node:http2 closed-loop client, the same idempotency-key on every call",
      note: "The gateway answers from its store without calling the platform; the grpc-js relay relays every call.",
      gateway: (server, label) => h2ClientTarget(label, server, grpcBookingCall(sameKey), "booking", { platformCalls: 0, checkTwice: true }),
      baselines: [h2ClientTarget("grpc-js relay", grpcRelay, grpcBookingCall(sameKey), "booking")],
    },
    {
      id: "session-search",
      title: "Availability search over an open bot session vs. the same search as a unary gRPC call",
      tool: "node:http2 closed-loop client: one session stream per lane with one operation in flight, vs. one unary call in flight per lane",
      gateway: sessionTarget,
      baselines: [h2ClientTarget("gateway, unary gRPC", gateway, () => grpcSearchCall, "availabilities")],
    },
  ];

  const gateways: [ServerProcess, string][] = [[gateway, "gateway"]];
  if (servers.reference !== undefined) gateways.push([servers.reference.server, servers.reference.label]);
  return specs.map(({ gateway: target, baselines, ...rest }) => ({
    ...rest,
    targets: [...gateways.map(([server, label], i) => ({ ...target(server, label), mayLack: i > 0 })), ...baselines],
  }));
}
