/**
 * The authority of an RPC request, as connect-node reads it to make the call's
 * URL (`new URL(path, scheme://authority)`): HTTP/2's `:authority`, or the
 * `Host` header. connect-node throws on a request without one, or with one no
 * URL has (`Host: gateway:99999`), and @connectrpc/connect-fastify then logs
 * the error to the console and fastify answers an empty 200. The RPC routes
 * refuse such a request first, as a bad request.
 */
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { FastifyReply, FastifyRequest } from "fastify";
import { GatewayError } from "../errors.js";
import { restErrorOf, sendRestError } from "../rest/rest-errors.js";

/** Which bases `new URL` takes, as seen so far: a server sees few authorities, so each is checked once. */
const bases = new Map<string, boolean>();

/** `scheme://authority` of a request, as connect-node makes it; undefined when it has no authority or no URL has it. */
export function urlBaseOf(raw: IncomingMessage | Http2ServerRequest): string | undefined {
  const authority = "authority" in raw ? raw.authority : raw.headers.host;
  if (authority === undefined) return undefined;
  const base = `${"encrypted" in raw.socket && raw.socket.encrypted ? "https" : "http"}://${authority}`;
  let ok = bases.get(base);
  if (ok === undefined) {
    ok = URL.canParse("/", base);
    if (bases.size >= 1024) bases.clear();
    bases.set(base, ok);
  }
  return ok ? base : undefined;
}

/** An onRequest hook for the RPC routes: a request whose authority makes no URL is a bad request. */
export function refuseBadAuthority(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  if (urlBaseOf(request.raw) !== undefined) return done();
  sendRestError(request, reply, restErrorOf(GatewayError.of("invalid_request", "the request's Host (or HTTP/2 :authority) is missing or not a valid host and port")));
}
