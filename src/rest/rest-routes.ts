/**
 * The REST routes, read from the `google.api.http` annotations of the proto
 * (the convention grpc-gateway, Envoy and Vanguard read). The proto is the
 * only place a REST path is declared: annotating another RPC exposes it.
 *
 * Supported: `get`, `put`, `post`, `delete` and `patch` patterns; literal
 * segments (a trailing `:verb` included) and single-segment variables such as
 * `{bot_id}` or `{booking.id}`; `body: "*"`, `body: "<field>"` or no body (then
 * query parameters fill the remaining fields); `additional_bindings`.
 * Anything else (custom methods, `**` and `{x=pattern}` templates,
 * `response_body`) is refused when the server starts, so an annotation never
 * silently means something other than what it says.
 */
import { getOption, hasOption, type DescField, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { http } from "../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../gen/google/api/http_pb.js";

export type HttpMethod = "GET" | "PUT" | "POST" | "DELETE" | "PATCH";

/** A path variable: the route parameter it is read from, and the request field it fills. */
export interface PathVariable {
  readonly param: string;
  /** Proto field names from the request message down, e.g. `["booking", "id"]`. */
  readonly fieldPath: readonly string[];
}

export interface RestRoute {
  readonly httpMethod: HttpMethod;
  /** The path as annotated, e.g. `/v1/bookings/{booking_id}`. */
  readonly path: string;
  /** The same path in fastify's route syntax. */
  readonly routePath: string;
  readonly variables: readonly PathVariable[];
  /** `*` (the body is the request), a top-level field name, or undefined (no body). */
  readonly body: string | undefined;
  readonly method: DescMethod;
  /** The method's handler, with the interceptors every protocol goes through. */
  readonly handler: UniversalHandler;
}

export class RestRouteError extends Error {
  constructor(method: DescMethod, message: string) {
    super(`google.api.http on ${method.parent.typeName}.${method.name}: ${message}`);
    this.name = "RestRouteError";
  }
}

/** Every REST route declared on the methods of `handlers`, unary and streaming alike. */
export function restRoutes(handlers: readonly UniversalHandler[]): RestRoute[] {
  const routes: RestRoute[] = [];
  for (const handler of handlers) {
    const method = handler.method;
    if (!hasOption(method, http)) continue;
    const rule = getOption(method, http);
    for (const binding of [rule, ...rule.additionalBindings]) {
      routes.push(routeOf(method, handler, binding));
    }
  }
  return routes;
}

function routeOf(method: DescMethod, handler: UniversalHandler, rule: HttpRule): RestRoute {
  if (rule.responseBody !== "") throw new RestRouteError(method, "response_body is not supported");
  const pattern = rule.pattern;
  if (pattern.case === undefined || pattern.case === "custom") {
    throw new RestRouteError(method, "a get, put, post, delete or patch pattern is required");
  }
  const httpMethod = pattern.case.toUpperCase() as HttpMethod;
  const { routePath, variables } = parseTemplate(method, pattern.value);
  let body: string | undefined;
  if (rule.body === "*") body = "*";
  else if (rule.body !== "") {
    if (fieldByName(method.input, rule.body) === undefined) throw new RestRouteError(method, `body field "${rule.body}" does not exist`);
    body = rule.body;
  }
  if (body !== undefined && httpMethod === "GET") throw new RestRouteError(method, "a GET binding cannot have a body");
  return { httpMethod, path: pattern.value, routePath, variables, body, method, handler };
}

function parseTemplate(method: DescMethod, template: string): { routePath: string; variables: PathVariable[] } {
  if (!template.startsWith("/")) throw new RestRouteError(method, `path "${template}" must start with /`);
  // A template may end in a verb, `/v1/things/{id}:archive`, after a literal or a variable.
  const verbMatch = /:([A-Za-z0-9._~-]+)$/.exec(template);
  const verb = verbMatch === null || verbMatch.index < template.lastIndexOf("/") ? undefined : verbMatch[1];
  const path = verb === undefined ? template : template.slice(0, -verb.length - 1);
  const variables: PathVariable[] = [];
  const segments = path
    .slice(1)
    .split("/")
    .map((segment, i, all) => {
      const variable = /^\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)\}$/.exec(segment);
      if (variable !== null) {
        const fieldPath = variable[1]!.split(".");
        checkFieldPath(method, fieldPath);
        const param = `p${variables.length}`;
        variables.push({ param, fieldPath });
        // Before a verb, the variable ends at the colon.
        return verb !== undefined && i === all.length - 1 ? `:${param}(^[^/:]+)` : `:${param}`;
      }
      if (!/^[A-Za-z0-9._~-]+$/.test(segment)) {
        throw new RestRouteError(method, `path segment "${segment}" is not supported`);
      }
      return segment;
    });
  // fastify reads ":" as the start of a parameter; "::" is a literal colon.
  return { routePath: "/" + segments.join("/") + (verb === undefined ? "" : `::${verb}`), variables };
}

function fieldByName(message: DescMessage, name: string): DescField | undefined {
  return message.fields.find((f) => f.name === name);
}

function checkFieldPath(method: DescMethod, path: readonly string[]): void {
  let message: DescMessage | undefined = method.input;
  path.forEach((name, i) => {
    const field = message === undefined ? undefined : fieldByName(message, name);
    if (field === undefined) throw new RestRouteError(method, `path variable field "${path.join(".")}" does not exist`);
    const last = i === path.length - 1;
    if (last ? field.fieldKind !== "scalar" && field.fieldKind !== "enum" : field.fieldKind !== "message") {
      throw new RestRouteError(method, `path variable "${path.join(".")}" must name a singular scalar field`);
    }
    message = field.fieldKind === "message" ? field.message : undefined;
  });
}
