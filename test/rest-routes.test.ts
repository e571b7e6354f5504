/**
 * The REST mapping read from `google.api.http`, on a service built for the
 * test (an echo: it answers with the request it received), so every kind of
 * binding the router supports is exercised: path variables, nested ones,
 * `body: "*"`, `body: "<field>"`, query parameters, a `:verb` path and
 * additional bindings. Annotations it does not support are refused at start-up.
 */
import { create, createFileRegistry, setExtension, type DescMethod, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { createConnectRouter, createContextValues, type HandlerContext, type MethodImplSpec } from "@connectrpc/connect";
import { fastify, type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http } from "../src/gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../src/gen/google/api/http_pb.js";
import { GatewayError } from "../src/errors.js";
import { recordImplementations } from "../src/rest/direct-call.js";
import { registerRest } from "../src/rest/rest-plugin.js";
import { restRoutes } from "../src/rest/rest-routes.js";

type Rule = MessageInitShape<typeof HttpRuleSchema>;

const { STRING, BOOL, INT32, INT64, MESSAGE } = FieldDescriptorProto_Type;
const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;

/** A service `test.v1.Echo` whose methods take and return `EchoRequest`, annotated with `rules`. */
function echoService(rules: Record<string, Rule>): DescService {
  const field = (name: string, number: number, type: FieldDescriptorProto_Type, extra: object = {}) => ({ name, number, type, label: OPTIONAL, ...extra });
  const file = create(FileDescriptorProtoSchema, {
    name: "test/v1/echo.proto",
    package: "test.v1",
    syntax: "proto3",
    messageType: [
      { name: "Inner", field: [field("n", 1, INT32), field("on", 2, BOOL)] },
      {
        name: "EchoRequest",
        field: [
          field("id", 1, STRING),
          field("flag", 2, BOOL),
          field("tags", 3, STRING, { label: REPEATED }),
          field("inner", 4, MESSAGE, { typeName: ".test.v1.Inner" }),
          field("note", 5, STRING),
          field("count", 6, INT64),
        ],
      },
    ],
    service: [
      {
        name: "Echo",
        method: Object.entries(rules).map(([name, rule]) => {
          const options = create(MethodOptionsSchema);
          setExtension(options, http, create(HttpRuleSchema, rule));
          return { name, inputType: ".test.v1.EchoRequest", outputType: ".test.v1.EchoRequest", options };
        }),
      },
    ],
  });
  return createFileRegistry(file, () => undefined).getService("test.v1.Echo")!;
}

/**
 * Handlers that echo the request, except where `impl` says otherwise; with
 * `implementations`, the methods' implementations are kept there too.
 */
function handlersOf(
  service: DescService,
  impl: Record<string, (req: unknown, ctx: HandlerContext) => unknown> = {},
  implementations?: Map<DescMethod, MethodImplSpec>,
) {
  const plain = createConnectRouter({ jsonOptions: { useProtoFieldName: true } });
  const router = implementations === undefined ? plain : recordImplementations(plain, implementations);
  const echo = (req: unknown) => req;
  router.service(service, Object.fromEntries(service.methods.map((m) => [m.localName, impl[m.localName] ?? echo])) as never);
  return router.handlers;
}

// Unary calls are transcoded into Connect calls on the handlers, or, given the implementations, call them directly.
describe.each([
  ["bindings", false],
  ["bindings, called directly", true],
])("%s", (_name, direct) => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const service = echoService({
      Get: {
        pattern: { case: "get", value: "/v1/things/{id}" },
        additionalBindings: [{ pattern: { case: "get", value: "/v1/things/{id}/inner/{inner.n}" } }],
      },
      Update: { pattern: { case: "patch", value: "/v1/things/{id}" }, body: "inner" },
      Create: { pattern: { case: "post", value: "/v1/things" }, body: "*" },
      Archive: { pattern: { case: "post", value: "/v1/things/{id}:archive" }, body: "*" },
      Remove: { pattern: { case: "delete", value: "/v1/things/{id}" } },
      Batch: { pattern: { case: "post", value: "/v1/things:batch" }, body: "*" },
      Replay: { pattern: { case: "post", value: "/v1/replays" }, body: "*" },
      Limited: { pattern: { case: "post", value: "/v1/limited" }, body: "*" },
      Broken: { pattern: { case: "post", value: "/v1/broken" }, body: "*" },
    });
    app = fastify();
    const implementations = new Map<DescMethod, MethodImplSpec>();
    const handlers = handlersOf(service, {
      replay(req, ctx) {
        ctx.responseHeader.set("idempotent-replayed", "true");
        return req;
      },
      limited() {
        throw GatewayError.of("rate_limited", "slow down", { retryAfterSeconds: 7 }).toConnectError();
      },
      broken() {
        throw new Error("secret detail at /srv/app.js:12");
      },
    }, implementations);
    await registerRest(app, {
      handlers,
      contextValues: () => createContextValues(),
      direct: direct
        ? { implementations, interceptors: [], jsonOptions: { useProtoFieldName: true }, readMaxBytes: 1 << 20, maxTimeoutMs: 2_147_483_647 }
        : undefined,
    });
    await app.ready();
  });
  afterAll(() => app.close());

  const call = async (method: "GET" | "POST" | "PATCH" | "DELETE" | "PUT", url: string, payload?: unknown) => {
    const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object, headers: { "content-type": "application/json" } }) });
    return { status: res.statusCode, json: res.json(), headers: res.headers };
  };

  it("fills path variables and query parameters, converting booleans and repeated values", async () => {
    expect(await call("GET", "/v1/things/t1?flag=true&tags=a&tags=b&count=5&inner.on=true&note=hi%20there&unknown=x")).toMatchObject({
      status: 200,
      json: { id: "t1", flag: true, tags: ["a", "b"], count: "5", inner: { on: true }, note: "hi there" },
    });
  });

  it("serves additional bindings, with nested path variables", async () => {
    expect(await call("GET", "/v1/things/t2/inner/7")).toMatchObject({ status: 200, json: { id: "t2", inner: { n: 7 } } });
  });

  it("reads a body field, and the rest from the path and query", async () => {
    expect(await call("PATCH", "/v1/things/t3?note=q", { n: 3, on: true })).toMatchObject({
      status: 200,
      json: { id: "t3", note: "q", inner: { n: 3, on: true } },
    });
  });

  it("reads the whole body for body: *, merged with the path", async () => {
    expect(await call("POST", "/v1/things", { id: "t4", tags: ["x"] })).toMatchObject({ status: 200, json: { id: "t4", tags: ["x"] } });
    expect(await call("POST", "/v1/things/t5:archive", { note: "n" })).toMatchObject({ status: 200, json: { id: "t5", note: "n" } });
    expect(await call("POST", "/v1/things:batch", { id: "t7" })).toMatchObject({ status: 200, json: { id: "t7" } });
  });

  it("serves methods without a body", async () => {
    expect(await call("DELETE", "/v1/things/t6")).toMatchObject({ status: 200, json: { id: "t6" } });
  });

  it("copies the call's response headers", async () => {
    const res = await call("POST", "/v1/replays", { id: "r1" });
    expect(res).toMatchObject({ status: 200, json: { id: "r1" }, headers: { "idempotent-replayed": "true" } });
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(Object.keys(res.headers).filter((h) => h.startsWith("connect-") || h.startsWith("trailer-"))).toEqual([]);
  });

  it("answers an error's Retry-After, and an unexpected failure as internal_error without detail", async () => {
    expect(await call("POST", "/v1/limited", {})).toMatchObject({
      status: 429,
      json: { error: { code: "rate_limited", message: "slow down" } },
      headers: { "retry-after": "7" },
    });
    const broken = await call("POST", "/v1/broken", {});
    expect(broken).toMatchObject({ status: 500, json: { error: { code: "internal_error", message: "internal error" } } });
    expect(JSON.stringify(broken)).not.toContain("secret");
  });

  it("answers errors of the mapping in the envelope", async () => {
    expect(await call("GET", "/v1/things/t1?count=many")).toMatchObject({ status: 400, json: { error: { code: "invalid_request" } } });
    expect(await call("PUT", "/v1/things/t1")).toMatchObject({ status: 405, json: { error: { code: "method_not_allowed" } }, headers: { allow: "GET, PATCH, DELETE" } });
    expect(await call("GET", "/v1/other")).toMatchObject({ status: 404, json: { error: { code: "not_found" } } });
  });
});

describe("annotations the router refuses at start-up", () => {
  it.each<[string, Rule, RegExp]>([
    ["a custom method", { pattern: { case: "custom", value: { kind: "HEAD", path: "/v1/x" } } }, /pattern is required/],
    ["response_body", { pattern: { case: "get", value: "/v1/x" }, responseBody: "inner" }, /response_body/],
    ["a multi-segment variable", { pattern: { case: "get", value: "/v1/{id=things/*}" } }, /not supported/],
    ["a wildcard", { pattern: { case: "get", value: "/v1/**" } }, /not supported/],
    ["an unknown path field", { pattern: { case: "get", value: "/v1/{nope}" } }, /does not exist/],
    ["a message path field", { pattern: { case: "get", value: "/v1/{inner}" } }, /singular scalar/],
    ["an unknown body field", { pattern: { case: "post", value: "/v1/x" }, body: "nope" }, /does not exist/],
    ["a GET with a body", { pattern: { case: "get", value: "/v1/x" }, body: "*" }, /cannot have a body/],
  ])("%s", (_name, rule, message) => {
    expect(() => restRoutes(handlersOf(echoService({ M: rule })))).toThrow(message);
  });
});
