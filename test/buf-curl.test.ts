/**
 * An independent client: `buf curl`, reading the proto files, speaks each of
 * Connect, gRPC (h2c with prior knowledge) and gRPC-Web to the one port.
 * Search and booking succeed, and an error arrives with its code and an
 * ErrorInfo whose reason is the machine code.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { run } from "./support/commands.js";
import { bookingBody, idempotencyKey, searchBody, startHarness, type Harness } from "./support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const PROTOCOLS = [
  ["connect", []],
  ["grpc", ["--http2-prior-knowledge"]],
  ["grpcweb", []],
] as const;

function bufCurl(protocol: string, flags: readonly string[], method: string, body: unknown, headers: string[]) {
  return run(
    "node_modules/.bin/buf",
    [
      "curl",
      "--schema",
      "proto",
      "--protocol",
      protocol,
      ...flags,
      ...headers.flatMap((x) => ["-H", x]),
      "-d",
      JSON.stringify(body),
      `${h.url}/dialstack.partner.v1.${method}`,
    ],
    { timeoutMs: 15_000 },
  );
}

interface BufError {
  code: string;
  message: string;
  details?: { type: string; value: string }[];
}

describe.concurrent.each(PROTOCOLS)("buf curl --protocol %s", (protocol, flags) => {
  it("searches availability", async () => {
    const r = await bufCurl(protocol, flags, "AvailabilityService/SearchAvailability", searchBody(h.bots.a), [`Authorization: Bearer ${h.keys.a}`]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.availabilities.length).toBeGreaterThan(0);
    expect(res.availabilities[0]).toMatchObject({ startAt: "2030-01-07T09:00:00Z", durationMinutes: 30 });
  });

  it("books a slot", async () => {
    const body = bookingBody(h.bots.a);
    const r = await bufCurl(protocol, flags, "BookingService/CreateBooking", body, [
      `Authorization: Bearer ${h.keys.a}`,
      `Idempotency-Key: ${idempotencyKey()}`,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.booking).toMatchObject({ status: "accepted", startAt: body.booking.start_at, customer: { name: "John Doe" } });
  });

  it("reports an error with its code and ErrorInfo reason", async () => {
    const r = await bufCurl(protocol, flags, "AvailabilityService/SearchAvailability", searchBody(h.bots.b), [`Authorization: Bearer ${h.keys.a}`]);
    expect(r.code).not.toBe(0);
    const error = JSON.parse(r.stderr) as BufError;
    expect(error.code).toBe("not_found");
    expect(error.message).toContain("not found");
    const info = error.details?.find((d) => d.type === "google.rpc.ErrorInfo");
    expect(info).toBeDefined();
    expect(fromBinary(ErrorInfoSchema, Buffer.from(info!.value, "base64")).reason).toBe("bot_not_found");
  });
});
