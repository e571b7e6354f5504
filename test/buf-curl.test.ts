/**
 * An independent client: `buf curl`, reading the proto files, speaks each of
 * Connect, gRPC (h2c with prior knowledge) and gRPC-Web to the one port.
 * Search, booking and caller lookup succeed, and errors arrive with their code
 * and an ErrorInfo whose reason is the machine code.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CALLER } from "../src/demo/reference-platform.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { run } from "./support/commands.js";
import { bookingBody, idempotencyKey, lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";

/** The tests run concurrently, so the platform answers by phone number: this one as a platform without lookup. */
const NOT_SUPPORTED_PHONE = "+15550100404";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    respond: (req) =>
      req.path === "/customers/lookup" && (req.body?.customer as { phone?: string } | undefined)?.phone === NOT_SUPPORTED_PHONE
        ? { status: 404, body: "Not Found" }
        : undefined,
  });
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

function reasonOf(error: BufError): string | undefined {
  const info = error.details?.find((d) => d.type === "google.rpc.ErrorInfo");
  return info === undefined ? undefined : fromBinary(ErrorInfoSchema, Buffer.from(info.value, "base64")).reason;
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

  it("looks up a caller: found with the appointment, and not found", async () => {
    const auth = [`Authorization: Bearer ${h.keys.a}`];
    const known = await bufCurl(protocol, flags, "CustomerService/LookupCustomer", lookupBody(h.bots.a, DEMO_CALLER.phone), auth);
    expect(known.stderr).toBe("");
    expect(known.code).toBe(0);
    expect(JSON.parse(known.stdout)).toMatchObject({
      found: true,
      customer: { name: DEMO_CALLER.name, phone: DEMO_CALLER.phone, existingAppointment: { status: "confirmed" } },
    });
    const unknown = await bufCurl(protocol, flags, "CustomerService/LookupCustomer", lookupBody(h.bots.a, "+15550100999"), auth);
    expect(unknown.code).toBe(0);
    // proto3 JSON leaves out a false bool: found is false.
    expect(JSON.parse(unknown.stdout).found ?? false).toBe(false);
  });

  it("reports a bad phone number and a platform without lookup with their codes", async () => {
    const auth = [`Authorization: Bearer ${h.keys.a}`];
    const bad = await bufCurl(protocol, flags, "CustomerService/LookupCustomer", lookupBody(h.bots.a, "call me maybe"), auth);
    expect(bad.code).not.toBe(0);
    const invalid = JSON.parse(bad.stderr) as BufError;
    expect({ code: invalid.code, reason: reasonOf(invalid) }).toEqual({ code: "invalid_argument", reason: "invalid_request" });
    expect(invalid.message).toContain("customer.phone");
    const missing = await bufCurl(protocol, flags, "CustomerService/LookupCustomer", lookupBody(h.bots.a, NOT_SUPPORTED_PHONE), auth);
    expect(missing.code).not.toBe(0);
    const unsupported = JSON.parse(missing.stderr) as BufError;
    expect({ code: unsupported.code, reason: reasonOf(unsupported) }).toEqual({ code: "unimplemented", reason: "customer_lookup_not_supported" });
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
