/**
 * In-process measure of the unary fast path (src/rpc/unary-fast-path.ts)
 * against connect-es's general handler (with the gateway's error rewrite, as
 * served): CPU µs per call of the handler alone, on a search whose
 * implementation answers at once, no interceptors, no sockets. Each protocol
 * is measured alternately on both paths, in rounds.
 *
 *     node --import tsx bench/unary-handler.ts [calls per round, default 20000] [rounds, default 5]
 */
import { create, toBinary, type JsonValue, fromJson } from "@bufbuild/protobuf";
import { createConnectRouter, createContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import {
  AvailabilityService,
  SearchAvailabilityRequestSchema,
  SearchAvailabilityResponseSchema,
} from "../src/gen/dialstack/partner/v1/availability_pb.js";
import { withErrorDetails } from "../src/rpc/error-details-handler.js";
import { UnaryFastPath } from "../src/rpc/unary-fast-path.js";

const CALLS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const MAX_TIMEOUT_MS = 2_147_483_647;

const options = {
  readMaxBytes: 65_536,
  maxTimeoutMs: MAX_TIMEOUT_MS,
  jsonOptions: { useProtoFieldName: true },
  acceptCompression: [compressionGzip, compressionBrotli],
  interceptors: [],
};
const requestJson = {
  bot_id: "bot_a",
  query: { filter: { start_at_range: { start_at: "2030-01-07T09:00:00Z", end_at: "2030-01-07T12:00:00Z" } } },
};
const answer = fromJson(SearchAvailabilityResponseSchema, {
  availabilities: [
    { start_at: "2030-01-07T09:00:00Z", duration_minutes: 30 },
    { start_at: "2030-01-07T09:30:00Z", duration_minutes: 30 },
  ],
} as JsonValue);

function handlers(): { general: UniversalHandler; fast: UniversalHandler } {
  const fastPath = new UnaryFastPath(options, true);
  const router = createConnectRouter(options);
  fastPath.record(router).service(AvailabilityService, {
    searchAvailability: async () => create(SearchAvailabilityResponseSchema, answer),
    async *streamAvailability() {},
  });
  const general = withErrorDetails(router.handlers.find((h) => h.method.name === "SearchAvailability")!, MAX_TIMEOUT_MS);
  return { general, fast: fastPath.serve(general) };
}

const binary = toBinary(SearchAvailabilityRequestSchema, fromJson(SearchAvailabilityRequestSchema, requestJson as JsonValue));
const json = new TextEncoder().encode(JSON.stringify(requestJson));
const envelope = (data: Uint8Array) => {
  const out = new Uint8Array(5 + data.length);
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
};
const PROTOCOLS = [
  { name: "grpc", contentType: "application/grpc", body: envelope(binary) },
  { name: "grpc-web", contentType: "application/grpc-web+proto", body: envelope(binary) },
  { name: "connect-json", contentType: "application/json", body: json },
  { name: "connect-binary", contentType: "application/proto", body: binary },
];

function request(contentType: string, body: Uint8Array): UniversalServerRequest {
  return {
    httpVersion: "2.0",
    method: "POST",
    url: "http://gateway/dialstack.partner.v1.AvailabilityService/SearchAvailability",
    header: new Headers({ "content-type": contentType, authorization: "Bearer sk_ptnr_x", te: "trailers" }),
    body: (async function* () {
      yield body;
    })(),
    signal: new AbortController().signal,
    contextValues: createContextValues(),
  };
}

async function run(handler: UniversalHandler, contentType: string, body: Uint8Array, calls: number): Promise<number> {
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    const res = await handler(request(contentType, body));
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    for await (const _ of res.body ?? []) {
      // drain, as the adapter writes it
    }
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

const { general, fast } = handlers();
const results = new Map<string, { general: number[]; fast: number[] }>();
for (const p of PROTOCOLS) {
  await run(general, p.contentType, p.body, 2000);
  await run(fast, p.contentType, p.body, 2000);
  results.set(p.name, { general: [], fast: [] });
}
for (let round = 0; round < ROUNDS; round++) {
  for (const p of PROTOCOLS) {
    const r = results.get(p.name)!;
    r.general.push(await run(general, p.contentType, p.body, CALLS));
    r.fast.push(await run(fast, p.contentType, p.body, CALLS));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`CPU µs per call, median of ${ROUNDS} rounds of ${CALLS} calls (Node ${process.version})`);
console.log("protocol         general  fast  fast ÷ general");
for (const [name, r] of results) {
  const g = median(r.general);
  const f = median(r.fast);
  console.log(`${name.padEnd(15)} ${g.toFixed(1).padStart(8)} ${f.toFixed(1).padStart(5)}  ${(f / g).toFixed(2)}`);
}
