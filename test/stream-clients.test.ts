/**
 * Both streams driven by clients no one here wrote: `@grpc/grpc-js` (loading
 * the .proto files with `@grpc/proto-loader`) for StreamAvailability and
 * Converse, and `buf curl` for StreamAvailability over gRPC-Web and Converse
 * over gRPC.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const week = { start_at: "2030-01-07T00:00:00Z", end_at: "2030-01-14T00:00:00Z" };
const weekDays = ["2030-01-07", "2030-01-08", "2030-01-09", "2030-01-10", "2030-01-11", "2030-01-12", "2030-01-13"];

describe("@grpc/grpc-js", () => {
  type Json = Record<string, any>;
  let availability: grpc.Client & Record<string, any>;
  let session: grpc.Client & Record<string, any>;

  beforeAll(() => {
    const definition = protoLoader.loadSync(["dialstack/partner/v1/availability.proto", "dialstack/partner/v1/session.proto"], {
      includeDirs: ["proto"],
      keepCase: true,
      longs: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as any;
    const v1 = pkg.dialstack.partner.v1;
    const target = `127.0.0.1:${h.port}`;
    availability = new v1.AvailabilityService(target, grpc.credentials.createInsecure());
    session = new v1.BotSessionService(target, grpc.credentials.createInsecure());
  });
  afterAll(() => {
    availability.close();
    session.close();
  });

  const auth = (key: string) => {
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${key}`);
    return md;
  };
  const ts = (iso: string) => ({ seconds: String(Date.parse(iso) / 1000), nanos: 0 });
  const iso = (t: Json) => new Date(Number(t.seconds) * 1000).toISOString().slice(0, 10);

  it("reads StreamAvailability window by window", async () => {
    const call = availability.StreamAvailability(
      { bot_id: h.bots.a, query: { filter: { start_at_range: { start_at: ts(week.start_at), end_at: ts(week.end_at) } } } },
      auth(h.keys.a),
    ) as grpc.ClientReadableStream<Json>;
    const windows: string[] = [];
    for await (const m of call) windows.push(iso(m.window.start_at));
    expect(windows).toEqual(weekDays);
  });

  it("receives a StreamAvailability error with its ErrorInfo", async () => {
    const call = availability.StreamAvailability(
      { bot_id: h.bots.b, query: { filter: { start_at_range: { start_at: ts(week.start_at), end_at: ts(week.end_at) } } } },
      auth(h.keys.a),
    ) as grpc.ClientReadableStream<Json>;
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      call.on("data", () => {});
      call.on("error", resolve);
    });
    expect(error.code).toBe(grpc.status.NOT_FOUND);
    expect(reasonOfStatusDetails(error.metadata.get("grpc-status-details-bin")[0] as Buffer)).toBe("bot_not_found");
  });

  it("holds a Converse session: start, a search and a booking, answers tagged by request_id", async () => {
    const call = session.Converse(auth(h.keys.a)) as grpc.ClientDuplexStream<Json, Json>;
    const answers: Json[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on("data", (m: Json) => answers.push(m));
      call.on("end", resolve);
      call.on("error", reject);
    });
    const search = searchBody(h.bots.a).query.filter.start_at_range;
    const booking = bookingBody(h.bots.a).booking;
    call.write({ request_id: "s", start: { bot_id: h.bots.a } });
    call.write({ request_id: "search", search_availability: { query: { filter: { start_at_range: { start_at: ts(search.start_at), end_at: ts(search.end_at) } } } } });
    call.write({
      request_id: "booking",
      create_booking: {
        idempotency_key: idempotencyKey(),
        booking: { ...booking, start_at: ts(booking.start_at) },
      },
    });
    call.write({ request_id: "bad" });
    call.end();
    await ended;
    const byId = new Map(answers.map((a) => [a.request_id, a]));
    expect(byId.get("s")).toMatchObject({ result: "started", started: { bot_id: h.bots.a, account_id: h.accounts.a } });
    expect(byId.get("search")!.search_availability.availabilities.length).toBeGreaterThan(0);
    expect(byId.get("booking")!.create_booking.booking.status).toBe("accepted");
    expect(byId.get("bad")).toMatchObject({ result: "error", error: { code: "invalid_request" } });
    expect(answers).toHaveLength(4);
  });
});

/** The ErrorInfo reason inside a serialized google.rpc.Status (details = 3, each an Any: type_url = 1, value = 2). */
function reasonOfStatusDetails(bytes: Uint8Array): string | undefined {
  const fields = (data: Uint8Array) => {
    const reader = new BinaryReader(data);
    const out = new Map<number, Uint8Array[]>();
    while (reader.pos < reader.len) {
      const [no, type] = reader.tag();
      if (type === WireType.LengthDelimited) out.set(no, [...(out.get(no) ?? []), reader.bytes()]);
      else reader.skip(type);
    }
    return out;
  };
  for (const any of fields(bytes).get(3) ?? []) {
    const parts = fields(any);
    const typeUrl = new TextDecoder().decode(parts.get(1)?.[0]);
    if (typeUrl.endsWith("/google.rpc.ErrorInfo")) return fromBinary(ErrorInfoSchema, parts.get(2)![0]!).reason;
  }
  return undefined;
}

describe("buf curl", () => {
  const exec = promisify(execFile);
  const buf = "node_modules/.bin/buf";

  /** buf curl prints each message as an indented JSON document. */
  const messages = (stdout: string): any[] =>
    stdout
      .split(/\n(?=\{)/)
      .filter((s) => s.trim() !== "")
      .map((s) => JSON.parse(s));

  it("reads StreamAvailability over gRPC-Web", async () => {
    const body = JSON.stringify({ bot_id: h.bots.a, query: { filter: { start_at_range: week } } });
    const { stdout } = await exec(buf, [
      "curl",
      "--schema",
      "proto",
      "--protocol",
      "grpcweb",
      "-H",
      `Authorization: Bearer ${h.keys.a}`,
      "-d",
      body,
      `${h.url}/dialstack.partner.v1.AvailabilityService/StreamAvailability`,
    ]);
    expect(messages(stdout).map((m) => m.window.startAt.slice(0, 10))).toEqual(weekDays);
  });

  it("holds a Converse session over gRPC, reading the messages from stdin", async () => {
    const input = [
      { requestId: "s", start: { botId: h.bots.a } },
      { requestId: "search", searchAvailability: { query: searchBody(h.bots.a).query } },
      { requestId: "booking", createBooking: { idempotencyKey: idempotencyKey(), booking: bookingBody(h.bots.a).booking } },
    ]
      .map((m) => JSON.stringify(m))
      .join("\n");
    const run = exec(buf, [
      "curl",
      "--schema",
      "proto",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "-H",
      `Authorization: Bearer ${h.keys.a}`,
      "-d",
      "@-",
      `${h.url}/dialstack.partner.v1.BotSessionService/Converse`,
    ]);
    run.child.stdin!.end(input);
    const { stdout } = await run;
    const byId = new Map(messages(stdout).map((m) => [m.requestId, m]));
    expect(byId.get("s")).toMatchObject({ started: { botId: h.bots.a } });
    expect(byId.get("search").searchAvailability.availabilities.length).toBeGreaterThan(0);
    expect(byId.get("booking").createBooking.booking.status).toBe("accepted");
  });
});
