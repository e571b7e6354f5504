/**
 * An independent gRPC implementation: `@grpc/grpc-js` with stubs loaded by
 * `@grpc/proto-loader` from the proto files, as a partner on the gRPC
 * ecosystem would call the gateway. Errors carry the standard rich status in
 * `grpc-status-details-bin`, decoded here with protobufjs, not connect-es.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CALLER } from "../src/demo/reference-platform.js";
import { bookingBody, idempotencyKey, lookupBody, searchBody, startHarness, type Harness } from "./support/harness.js";

const PROTO_DIR = fileURLToPath(new URL("../proto", import.meta.url));

/** google.rpc.Status, the message in `grpc-status-details-bin` (with a wire-compatible Any). */
const STATUS_PROTO = `syntax = "proto3";
package google.rpc;
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message Any { string type_url = 1; bytes value = 2; }`;

interface Stubs {
  availability: grpc.Client & Record<string, Function>;
  booking: grpc.Client & Record<string, Function>;
  customer: grpc.Client & Record<string, Function>;
}

function stubs(address: string, credentials = grpc.credentials.createInsecure()): Stubs {
  const definition = protoLoader.loadSync(["dialstack/partner/v1/availability.proto", "dialstack/partner/v1/booking.proto", "dialstack/partner/v1/customer.proto"], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    defaults: false,
  });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  const v1 = pkg.dialstack.partner.v1;
  return {
    availability: new v1.AvailabilityService(address, credentials),
    booking: new v1.BookingService(address, credentials),
    customer: new v1.CustomerService(address, credentials),
  };
}

function unary<T>(client: grpc.Client & Record<string, Function>, method: string, request: unknown, metadata: Record<string, string>, deadlineMs = 5000): Promise<T> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve, reject) => {
    client[method]!(request, md, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** A timestamp as proto-loader wants it from an RFC 3339 string. */
function ts(iso: string): { seconds: string; nanos: number } {
  return { seconds: String(Date.parse(iso) / 1000), nanos: 0 };
}

function searchMessage(botId: string) {
  const body = searchBody(botId);
  const r = body.query.filter.start_at_range;
  return { bot_id: botId, query: { filter: { start_at_range: { start_at: ts(r.start_at), end_at: ts(r.end_at) } } } };
}

/** The ErrorInfo reasons in a ServiceError's `grpc-status-details-bin`. */
function errorInfoReasons(err: grpc.ServiceError): { code: number; reasons: string[]; metadata: Record<string, string>[] } {
  const root = new protobuf.Root();
  protobuf.parse(STATUS_PROTO, root, { keepCase: true });
  protobuf.parse(readFileSync(`${PROTO_DIR}/google/rpc/error_details.proto`, "utf8"), root, { keepCase: true });
  const Status = root.lookupType("google.rpc.Status");
  const ErrorInfo = root.lookupType("google.rpc.ErrorInfo");
  const raw = err.metadata.get("grpc-status-details-bin")[0];
  expect(raw, "grpc-status-details-bin").toBeInstanceOf(Buffer);
  const status = Status.toObject(Status.decode(raw as Buffer)) as { code: number; details: { type_url: string; value: Uint8Array }[] };
  const infos = status.details
    .filter((d) => d.type_url === "type.googleapis.com/google.rpc.ErrorInfo")
    .map((d) => ErrorInfo.toObject(ErrorInfo.decode(d.value)) as { reason: string; metadata: Record<string, string> });
  return { code: status.code, reasons: infos.map((i) => i.reason), metadata: infos.map((i) => i.metadata) };
}

let h: Harness;
let s: Stubs;
beforeAll(async () => {
  h = await startHarness();
  s = stubs(`127.0.0.1:${h.port}`);
});
afterAll(async () => {
  s.availability.close();
  s.booking.close();
  s.customer.close();
  await h.close();
});

describe("@grpc/grpc-js client", () => {
  it("searches availability", async () => {
    const res = await unary<{ availabilities: { start_at: { seconds: string }; duration_minutes: number }[] }>(
      s.availability,
      "SearchAvailability",
      searchMessage(h.bots.a),
      { authorization: `Bearer ${h.keys.a}` },
    );
    expect(res.availabilities.length).toBeGreaterThan(0);
    expect(res.availabilities[0]!.duration_minutes).toBe(30);
    expect(new Date(Number(res.availabilities[0]!.start_at.seconds) * 1000).toISOString()).toBe("2030-01-07T09:00:00.000Z");
  });

  it("books a slot with the idempotency key in metadata", async () => {
    const body = bookingBody(h.bots.a);
    const res = await unary<{ booking: { id: string; status: string; customer: { name: string } } }>(
      s.booking,
      "CreateBooking",
      { bot_id: body.bot_id, booking: { ...body.booking, start_at: ts(body.booking.start_at) } },
      { authorization: `Bearer ${h.keys.a}`, "idempotency-key": idempotencyKey() },
    );
    expect(res.booking.status).toBe("accepted");
    expect(res.booking.id).toMatch(/^bkg_/);
    expect(res.booking.customer.name).toBe("John Doe");
  });

  it("looks up a caller, and reads found: false for an unknown one", async () => {
    const auth = { authorization: `Bearer ${h.keys.a}` };
    const known = await unary<{ found: boolean; customer: { name: string; phone: string; existing_appointment: { start_at: { seconds: string }; status: string } } }>(
      s.customer,
      "LookupCustomer",
      lookupBody(h.bots.a, DEMO_CALLER.phone),
      auth,
    );
    expect(known.found).toBe(true);
    expect(known.customer).toMatchObject({ name: DEMO_CALLER.name, phone: DEMO_CALLER.phone, existing_appointment: { status: "confirmed" } });
    expect(new Date(Number(known.customer.existing_appointment.start_at.seconds) * 1000).toISOString()).toMatch(/T10:00:00\.000Z$/);
    const unknown = await unary<{ found?: boolean; customer?: unknown }>(s.customer, "LookupCustomer", lookupBody(h.bots.a, "+15550100999"), auth);
    expect(unknown.found ?? false).toBe(false);
    expect(unknown.customer).toBeUndefined();
  });

  it("a bad phone is INVALID_ARGUMENT and a platform without lookup UNIMPLEMENTED, with their ErrorInfo", async () => {
    const auth = { authorization: `Bearer ${h.keys.a}` };
    const bad = await unary(s.customer, "LookupCustomer", lookupBody(h.bots.a, "+1 555"), auth).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(bad?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad?.details).toContain("customer.phone");
    expect(errorInfoReasons(bad!)).toEqual({ code: grpc.status.INVALID_ARGUMENT, reasons: ["invalid_request"], metadata: [{ http_status: "400" }] });
    h.script = (req) => (req.path === "/customers/lookup" ? { status: 501, body: "" } : undefined);
    const missing = await unary(s.customer, "LookupCustomer", lookupBody(h.bots.a, DEMO_CALLER.phone), auth).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(missing?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(errorInfoReasons(missing!)).toEqual({ code: grpc.status.UNIMPLEMENTED, reasons: ["customer_lookup_not_supported"], metadata: [{ http_status: "501" }] });
  });

  it("reads the ErrorInfo from grpc-status-details-bin", async () => {
    const err = await unary(s.availability, "SearchAvailability", searchMessage(h.bots.b), { authorization: `Bearer ${h.keys.a}` }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.NOT_FOUND);
    const details = errorInfoReasons(err!);
    expect(details).toEqual({ code: grpc.status.NOT_FOUND, reasons: ["bot_not_found"], metadata: [{ http_status: "404" }] });
  });

  it("unauthenticated without a key, with ErrorInfo", async () => {
    const err = await unary(s.availability, "SearchAvailability", searchMessage(h.bots.a), {}).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(errorInfoReasons(err!).reasons).toEqual(["unauthorized"]);
  });

  it("reads error messages verbatim: ':', '%' and non-ASCII text survive grpc-message", async () => {
    const noKey = await unary(s.availability, "SearchAvailability", searchMessage(h.bots.a), { authorization: "Basic abc" }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(noKey?.details).toBe("missing or malformed Authorization header: expected Bearer sk_ptnr_...");
    h.script = () => ({ status: 409, body: { error: { code: "slot_unavailable", message: "slot 10:00 taken: 100% booked, déjà" } } });
    const taken = await unary(s.availability, "SearchAvailability", searchMessage(h.bots.a), { authorization: `Bearer ${h.keys.a}` }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(taken?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(taken?.details).toBe("slot 10:00 taken: 100% booked, déjà");
  });

  it("an unknown method is UNIMPLEMENTED", async () => {
    const client = new grpc.Client(`127.0.0.1:${h.port}`, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
        client.makeUnaryRequest(
          "/dialstack.partner.v1.AvailabilityService/NoSuchMethod",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          new grpc.Metadata(),
          { deadline: Date.now() + 5000 },
          (e) => (e ? resolve(e) : reject(new Error("the call succeeded"))),
        );
      });
      expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
      expect(err.details).toBe("unknown method: /dialstack.partner.v1.AvailabilityService/NoSuchMethod");
    } finally {
      client.close();
    }
  });
});
