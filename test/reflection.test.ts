/**
 * Server reflection, as tools use it with no copy of the `.proto` files:
 * `buf curl --list-methods`, and `buf curl` calls with no `--schema` on each
 * protocol (buf resolves the messages through reflection); what grpcurl
 * does, done with @grpc/grpc-js and protobufjs (v1alpha first, the schema
 * rebuilt from the descriptors, then a call made with it); and the
 * reflection protocol itself, v1 and v1alpha, on every protocol that carries
 * bidirectional streams: files with their imports (down to
 * google/protobuf/*.proto), symbols, extensions, services, and NOT_FOUND
 * answers that keep the stream open.
 */
import { create, fromBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import descriptorExtension from "protobufjs/ext/descriptor.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ServerReflection as ReflectionV1,
  ServerReflectionRequestSchema as RequestV1Schema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../src/gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1Alpha, ServerReflectionRequestSchema as RequestV1AlphaSchema } from "../src/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { HTTP2_PROTOCOLS, transportFor } from "./support/clients.js";
import { run } from "./support/commands.js";
import { searchBody, startHarness, type Harness } from "./support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const SERVICES = [
  "dialstack.partner.v1.AvailabilityService",
  "dialstack.partner.v1.BookingService",
  "dialstack.partner.v1.BotSessionService",
  "dialstack.partner.v1.CustomerService",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];

describe("buf curl, with no schema: everything comes from reflection", () => {
  it.each([
    ["HTTP/1.1", []],
    ["h2c", ["--http2-prior-knowledge"]],
  ] as const)("--list-methods over %s lists every method", async (_name, flags) => {
    const r = await run("node_modules/.bin/buf", ["curl", "--list-methods", ...flags, h.url], { timeoutMs: 15_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const methods = r.stdout.trim().split("\n");
    expect(methods).toEqual(
      expect.arrayContaining([
        "dialstack.partner.v1.AvailabilityService/SearchAvailability",
        "dialstack.partner.v1.AvailabilityService/StreamAvailability",
        "dialstack.partner.v1.BookingService/CreateBooking",
        "dialstack.partner.v1.BotSessionService/Converse",
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ]),
    );
  });

  it.each([
    ["connect", []],
    ["grpc", ["--http2-prior-knowledge"]],
    ["grpcweb", []],
  ] as const)("a search over --protocol %s", async (protocol, flags) => {
    const r = await run(
      "node_modules/.bin/buf",
      [
        "curl",
        "--protocol",
        protocol,
        ...flags,
        "-H",
        `Authorization: Bearer ${h.keys.a}`,
        "-d",
        JSON.stringify(searchBody(h.bots.a)),
        `${h.url}/dialstack.partner.v1.AvailabilityService/SearchAvailability`,
      ],
      { timeoutMs: 15_000 },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).availabilities[0]).toMatchObject({ startAt: "2030-01-07T09:00:00Z", durationMinutes: 30 });
  });
});

describe("grpcurl's way, with @grpc/grpc-js and protobufjs: reflection, then a call built from what it returned", () => {
  it("lists services, fetches the schema of AvailabilityService, and searches with it", async () => {
    const definition = protoLoader.loadSync("grpc/reflection/v1alpha/reflection.proto", {
      includeDirs: [fileURLToPath(new URL("../proto", import.meta.url))],
      keepCase: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as any;
    const client = new pkg.grpc.reflection.v1alpha.ServerReflection(`127.0.0.1:${h.port}`, grpc.credentials.createInsecure()) as grpc.Client &
      Record<string, Function>;
    try {
      const stream = client.ServerReflectionInfo!() as grpc.ClientDuplexStream<object, any>;
      const answers: any[] = [];
      const ask = (request: object) =>
        new Promise<any>((resolve, reject) => {
          stream.once("data", (answer: any) => {
            answers.push(answer);
            resolve(answer);
          });
          stream.once("error", reject);
          stream.write(request);
        });
      const listed = await ask({ list_services: "" });
      expect(listed.list_services_response.service.map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(SERVICES));
      const files = await ask({ file_containing_symbol: "dialstack.partner.v1.AvailabilityService" });
      stream.end();

      // The schema as protobufjs reads it from the FileDescriptorProtos, with no .proto file at hand.
      const set = { file: files.file_descriptor_response.file_descriptor_proto.map((b: Buffer) => (descriptorExtension as unknown as typeof import("protobufjs/ext/descriptor.js")).FileDescriptorProto.decode(b)) };
      const root = (protobuf.Root as any).fromDescriptor(set) as protobuf.Root;
      const service = root.lookupService("dialstack.partner.v1.AvailabilityService");
      const method = service.methods["SearchAvailability"]!.resolve() as protobuf.Method;
      const input = method.resolvedRequestType!;
      const output = method.resolvedResponseType!;
      const request = input.fromObject({
        botId: h.bots.a,
        query: { filter: { startAtRange: { startAt: { seconds: Date.parse("2030-01-07T09:00:00Z") / 1000 }, endAt: { seconds: Date.parse("2030-01-07T12:00:00Z") / 1000 } } } },
      });
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${h.keys.a}`);
      const answer = await new Promise<any>((resolve, reject) =>
        client.makeUnaryRequest(
          "/dialstack.partner.v1.AvailabilityService/SearchAvailability",
          (m: protobuf.Message) => Buffer.from(input.encode(m).finish()),
          (b: Buffer) => output.toObject(output.decode(b), { longs: Number }),
          request,
          metadata,
          { deadline: Date.now() + 5000 },
          (e: grpc.ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r)),
        ),
      );
      expect(answer.availabilities.length).toBeGreaterThan(0);
      expect(answer.availabilities[0]).toMatchObject({ startAt: { seconds: Date.parse("2030-01-07T09:00:00Z") / 1000 }, durationMinutes: 30 });
    } finally {
      client.close();
    }
  });
});

/** Sends `requests` on one reflection stream and returns the answers in order. */
async function reflect(service: DescService, protocol: (typeof HTTP2_PROTOCOLS)[number], requests: ServerReflectionRequest[]): Promise<ServerReflectionResponse[]> {
  const client = createClient(service as typeof ReflectionV1, transportFor(protocol, h.url));
  const answers: ServerReflectionResponse[] = [];
  async function* outgoing() {
    yield* requests;
  }
  for await (const answer of client.serverReflectionInfo(outgoing())) answers.push(answer as ServerReflectionResponse);
  return answers;
}

const fileNames = (answer: ServerReflectionResponse) =>
  answer.messageResponse.case === "fileDescriptorResponse"
    ? answer.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)
    : [];

describe.each(HTTP2_PROTOCOLS)("the reflection protocol over %s", (protocol) => {
  describe.each([
    ["v1", ReflectionV1, RequestV1Schema],
    ["v1alpha", ReflectionV1Alpha, RequestV1AlphaSchema],
  ] as const)("%s", (_version, service, schema) => {
    const request = (init: Parameters<typeof create<typeof RequestV1Schema>>[1]) => create(schema as typeof RequestV1Schema, { host: "gw", ...init });

    it("lists the services, and resolves files and symbols with their imports", async () => {
      const answers = await reflect(service, protocol, [
        request({ messageRequest: { case: "listServices", value: "" } }),
        request({ messageRequest: { case: "fileContainingSymbol", value: "dialstack.partner.v1.AvailabilityService" } }),
        request({ messageRequest: { case: "fileByFilename", value: "dialstack/partner/v1/booking.proto" } }),
        request({ messageRequest: { case: "fileContainingSymbol", value: "dialstack.partner.v1.BookingService.CreateBooking" } }),
        request({ messageRequest: { case: "fileContainingSymbol", value: "grpc.health.v1.HealthCheckResponse.ServingStatus" } }),
      ]);
      expect(answers).toHaveLength(5);
      const [list, bySymbol, byName, again, healthEnum] = answers as [ServerReflectionResponse, ServerReflectionResponse, ServerReflectionResponse, ServerReflectionResponse, ServerReflectionResponse];
      expect(list.messageResponse.case).toBe("listServicesResponse");
      expect(list.messageResponse.case === "listServicesResponse" && list.messageResponse.value.service.map((s) => s.name).sort()).toEqual([...SERVICES].sort());
      expect(list.validHost).toBe("gw");
      expect(list.originalRequest?.messageRequest.case).toBe("listServices");
      // The file first, then everything it imports, transitively.
      const first = fileNames(bySymbol);
      expect(first[0]).toBe("dialstack/partner/v1/availability.proto");
      expect(first).toEqual(expect.arrayContaining(["google/protobuf/timestamp.proto", "google/api/annotations.proto", "google/protobuf/descriptor.proto"]));
      // Files already sent on this stream are not sent again.
      const second = fileNames(byName);
      expect(second[0]).toBe("dialstack/partner/v1/booking.proto");
      expect(second.filter((n) => first.includes(n))).toEqual([]);
      expect(fileNames(again)).toEqual([]);
      expect(again.messageResponse.case).toBe("fileDescriptorResponse");
      expect(fileNames(healthEnum)).toEqual(["grpc/health/v1/health.proto"]);
    });

    it("answers NOT_FOUND for what it does not know, and the stream goes on", async () => {
      const answers = await reflect(service, protocol, [
        request({ messageRequest: { case: "fileByFilename", value: "no/such.proto" } }),
        request({ messageRequest: { case: "fileContainingSymbol", value: "no.such.Symbol" } }),
        request({ messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 1 } } }),
        request({ messageRequest: { case: "allExtensionNumbersOfType", value: "no.such.Message" } }),
        request({ messageRequest: { case: "fileByFilename", value: "google/protobuf/timestamp.proto" } }),
      ]);
      expect(answers.map((a) => (a.messageResponse.case === "errorResponse" ? a.messageResponse.value.errorCode : a.messageResponse.case))).toEqual([
        5,
        5,
        5,
        5,
        "fileDescriptorResponse",
      ]);
      expect(answers[1]!.messageResponse.value).toMatchObject({ errorMessage: 'symbol "no.such.Symbol" not found' });
    });

    it("finds extensions: google.api.http on MethodOptions", async () => {
      const answers = await reflect(service, protocol, [
        request({ messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" } }),
        request({ messageRequest: { case: "fileContainingExtension", value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 } } }),
      ]);
      expect(answers[0]!.messageResponse).toMatchObject({ case: "allExtensionNumbersResponse", value: { baseTypeName: "google.protobuf.MethodOptions", extensionNumber: [72295728] } });
      expect(fileNames(answers[1]!)[0]).toBe("google/api/annotations.proto");
    });
  });
});
