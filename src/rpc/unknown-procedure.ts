/**
 * A gRPC or gRPC-Web client calling a method the gateway does not have must
 * get `unimplemented` (status 12), as every gRPC server answers: HTTP 200
 * with the status, and no message. An HTTP 404 instead reaches
 * the client as `unimplemented` from some libraries and `unknown` or
 * `internal` from others, with no message.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { encodeGrpcMessage } from "./grpc-message.js";

const GRPC_CONTENT_TYPE = /^application\/grpc(?:-web(?:-text)?)?(?:[+;]|$)/i;

/** True for a request whose content type is one of gRPC or gRPC-Web's. */
export function isGrpcRequest(request: FastifyRequest): boolean {
  const type = request.headers["content-type"];
  return typeof type === "string" && GRPC_CONTENT_TYPE.test(type);
}

export function sendUnknownProcedure(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const contentType = request.headers["content-type"]!;
  const status = { "grpc-status": "12", "grpc-message": encodeGrpcMessage(`unknown method: ${request.url.split("?")[0]!}`) };
  reply.code(200).header("x-request-id", request.id).header("content-type", contentType);
  // gRPC over HTTP/2 reads the status from trailers (Node cannot end a
  // stream with its first HEADERS frame here, so a header-only status would
  // arrive without END_STREAM and be lost). gRPC-Web reads it from headers.
  if (request.raw.httpVersionMajor === 2 && !/^application\/grpc-web/i.test(contentType)) reply.raw.addTrailers(status);
  else reply.headers(status);
  return reply.send();
}
