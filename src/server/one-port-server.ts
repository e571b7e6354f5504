/**
 * One TCP port for every protocol. gRPC needs HTTP/2; browsers and most REST
 * clients speak HTTP/1.1; Node serves each on its own server. Without TLS,
 * this server reads the first bytes of each connection: the HTTP/2 client
 * preface (`PRI * HTTP/2.0...`) sends the socket to an HTTP/2 server (h2c with
 * prior knowledge), anything else to an HTTP/1.1 server. With TLS, ALPN
 * chooses (h2, then http/1.1). Both servers share one request handler.
 *
 * `close()` stops accepting, lets requests in flight finish (HTTP/2 sessions
 * get a GOAWAY), and destroys what is still open after `graceMs`.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { TlsConfig } from "../config.js";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface OnePortOptions {
  readonly tls?: TlsConfig | undefined;
  /** How long `close()` waits for requests in flight before destroying connections. */
  readonly graceMs?: number;
  /** Idle HTTP/2 sessions are pinged at this interval, keeping long streams alive through middleboxes. */
  readonly keepAliveMs?: number;
}

export function createOnePortServer(handler: Handler, options: OnePortOptions = {}): net.Server {
  const graceMs = options.graceMs ?? 10_000;
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  // HTTP/1.1 connections with a request in progress. An http.Server that is
  // not listening itself does not track its connections, so this does.
  const busy = new Set<net.Socket>();
  let closing = false;
  const h1Sockets = new WeakSet<net.Socket>();
  const h2Options: http2.ServerOptions = { settings: { maxConcurrentStreams: 1000 } };

  const trackSession = (session: http2.Http2Session) => {
    // A connection still being sniffed when close() began becomes a session
    // afterwards: it is told to go away at once.
    if (closing) session.close();
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    if (options.keepAliveMs) {
      const timer = setInterval(() => {
        if (!session.closed && !session.destroyed) session.ping(() => {});
      }, options.keepAliveMs);
      timer.unref();
      session.on("close", () => clearInterval(timer));
    }
  };

  const trackHttp1Request = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    const socket = req.socket;
    busy.add(socket);
    if (closing) res.setHeader("connection", "close");
    res.on("close", () => {
      busy.delete(socket);
      if (closing) socket.end();
    });
  };

  let server: net.Server;
  let h1: http.Server | undefined;
  if (options.tls) {
    const secure = http2.createSecureServer({ ...h2Options, cert: options.tls.cert, key: options.tls.key, allowHTTP1: true }, handler);
    secure.on("session", trackSession);
    secure.on("secureConnection", (socket: net.Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    // HTTP/1.1 over TLS (ALPN http/1.1 or none) is served by the HTTP/2
    // server, which does not track those connections either.
    secure.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      if (req.httpVersionMajor !== 1) return;
      h1Sockets.add(req.socket);
      trackHttp1Request(req, res);
    });
    server = secure;
  } else {
    h1 = http.createServer(handler);
    h1.keepAliveTimeout = 65_000;
    h1.on("request", trackHttp1Request);
    const h2 = http2.createServer(h2Options, handler);
    h2.on("session", trackSession);
    server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      sniff(socket, (isHttp2, seen) => {
        if (isHttp2) {
          // The HTTP/2 session reads bytes already buffered on the socket.
          socket.unshift(seen);
          h2.emit("connection", socket);
        } else {
          h1Sockets.add(socket);
          // The HTTP/1.1 parser reads the socket's handle directly and would
          // not see unshifted bytes, so they are handed to it as a data event.
          h1!.emit("connection", socket);
          socket.emit("data", seen);
          socket.resume();
        }
      });
    });
    server.on("error", () => {});
  }

  const close = server.close.bind(server);
  server.close = (callback?: (err?: Error) => void) => {
    closing = true;
    close(callback);
    for (const session of sessions) session.close();
    // Idle keep-alive connections end now; busy ones after their response.
    for (const socket of sockets) if (h1Sockets.has(socket) && !busy.has(socket)) socket.end();
    const deadline = setTimeout(() => {
      for (const socket of sockets) socket.destroy();
    }, graceMs);
    deadline.unref();
    return server;
  };
  return server;
}

/** Decides between HTTP/2 and HTTP/1.1 from the first bytes of a connection. */
function sniff(socket: net.Socket, route: (isHttp2: boolean, seen: Buffer) => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const prefixMatches = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (prefixMatches && seen.length < PREFACE.length) return;
    socket.off("data", onData);
    socket.off("error", onError);
    socket.pause();
    route(prefixMatches, seen);
  };
  const onError = () => socket.destroy();
  socket.on("data", onData);
  socket.on("error", onError);
}
