/**
 * One TCP port for every protocol. gRPC needs HTTP/2; browsers and most REST
 * clients speak HTTP/1.1; Node serves each on its own server. Without TLS,
 * this server reads the first bytes of each connection: the HTTP/2 client
 * preface (`PRI * HTTP/2.0...`) sends the socket to an HTTP/2 server (h2c with
 * prior knowledge), anything else to an HTTP/1.1 server. With TLS, ALPN
 * chooses (h2, then http/1.1). Both servers share one request handler.
 *
 * Every connection is held under the bounds of `EdgeLimits` on both paths
 * (see connection-guard.ts and http2-abuse.ts). The inner HTTP/1.1 server
 * never listens itself, and Node only starts the timer that enforces
 * `headersTimeout` and `requestTimeout` when a server begins listening: it is
 * started here by telling that server it listens.
 *
 * `close()` stops accepting, lets requests in flight finish (HTTP/2 sessions
 * get a GOAWAY), and destroys what is still open after `graceMs`.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { EdgeLimits, TlsConfig } from "../config.js";
import { ConnectionGuard, type ConnectionVerdict } from "./connection-guard.js";
import { guardHttp2Session, type SessionVerdict } from "./http2-abuse.js";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** A connection or session a bound ended, for whoever counts or logs them. */
export type EdgeVerdict = ConnectionVerdict | SessionVerdict;

export interface OnePortOptions {
  readonly tls?: TlsConfig | undefined;
  /** How long `close()` waits for requests in flight before destroying connections (`Config.shutdownGraceMs`). */
  readonly graceMs: number;
  /** Idle HTTP/2 sessions are pinged at this interval, keeping long streams alive through middleboxes. */
  readonly keepAliveMs?: number;
  /** `Config.edge`. */
  readonly limits: EdgeLimits;
  /** Told of every connection a bound refused or ended. */
  readonly onVerdict?: (verdict: EdgeVerdict, address: string) => void;
  /** Told when the total connection cap is reached (true) and left (false). */
  readonly onSaturated?: (saturated: boolean) => void;
}

/**
 * HTTP/2 settings and Node's own flood guards. Node's defaults for invalid
 * frames (1000) and rejected streams (100) are lowered so a misbehaving
 * session is ended sooner; a session's memory for frames and headers is
 * capped (it is a GOAWAY, not the process's memory, when a client overruns
 * it); 100 concurrent streams per session follows RFC 9113's recommended
 * minimum, as nginx and grpc-go do.
 */
function http2Options(limits: EdgeLimits): http2.ServerOptions {
  return {
    settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: 64 * 1024 },
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxSessionMemory: 10,
    maxHeaderListPairs: 128,
    maxOutstandingPings: 10,
    maxSettings: 32,
    unknownProtocolTimeout: limits.firstRequestTimeoutMs,
  };
}

export function createOnePortServer(handler: Handler, options: OnePortOptions): net.Server {
  const { graceMs, limits } = options;
  const guard = new ConnectionGuard(limits);
  const onVerdict = options.onVerdict ?? (() => {});
  guard.on("verdict", onVerdict);
  if (options.onSaturated) guard.on("saturated", options.onSaturated);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  // HTTP/1.1 connections with a request in progress. An http.Server that is
  // not listening itself does not track its connections, so this does.
  const busy = new Set<net.Socket>();
  let closing = false;
  const h1Sockets = new WeakSet<net.Socket>();
  const h2Options = http2Options(limits);
  /** The TCP socket under a TLS socket (the guard counts TCP sockets). */
  const tcpOf = (socket: net.Socket): net.Socket => ((socket as { _parent?: net.Socket })._parent ?? socket);

  const admit = (socket: net.Socket): boolean => {
    if (!guard.admit(socket)) return false;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    return true;
  };

  // The TCP socket of the session being created: Node creates it, and emits
  // `session`, synchronously within the connection event.
  let incoming: net.Socket | undefined;
  const trackSession = (session: http2.ServerHttp2Session) => {
    // A connection still being sniffed when close() began becomes a session
    // afterwards: it is told to go away at once.
    if (closing) session.close();
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    const tcp = incoming;
    incoming = undefined;
    const address = tcp?.remoteAddress ?? "";
    guardHttp2Session(
      session,
      limits,
      () => {
        if (tcp !== undefined) guard.proven(tcp);
      },
      (verdict) => {
        onVerdict(verdict, address);
        if (verdict === "http2_reset_flood") guard.penalize(address);
      },
    );
    if (tcp !== undefined) {
      guard.onAge(tcp, () => {
        // GOAWAY: streams in flight finish, new ones go to a new connection.
        session.close();
        setTimeout(() => session.destroy(), graceMs).unref();
      });
    }
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
    const tcp = tcpOf(socket);
    guard.proven(tcp);
    busy.add(socket);
    const last = () => closing || guard.aged(tcp);
    if (last()) res.setHeader("connection", "close");
    res.on("close", () => {
      busy.delete(socket);
      if (last()) socket.end();
    });
  };
  /** An aged HTTP/1.1 connection ends now if idle, otherwise after its response. */
  const ageHttp1 = (socket: net.Socket) => guard.onAge(tcpOf(socket), () => {
    if (!busy.has(socket)) socket.end();
  });

  let server: net.Server;
  let h1: http.Server | undefined;
  if (options.tls) {
    const secure = http2.createSecureServer(
      {
        ...h2Options,
        cert: options.tls.cert,
        key: options.tls.key,
        allowHTTP1: true,
        // The TLS handshake is part of the time a connection has for its first request.
        handshakeTimeout: limits.firstRequestTimeoutMs,
      },
      handler,
    );
    // The HTTP/1.1 side of a listening secure server enforces these itself;
    // its keep-alive timeout is unset by default (no limit).
    Object.assign(secure, {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      keepAliveTimeoutBuffer: 1000,
      connectionsCheckingInterval: checkingInterval(limits),
    });
    secure.prependListener("connection", (socket: net.Socket) => {
      if (!admit(socket)) socket.on("error", () => {});
    });
    secure.prependListener("secureConnection", (socket: net.Socket) => (incoming = tcpOf(socket)));
    secure.on("session", trackSession);
    // HTTP/1.1 over TLS (ALPN http/1.1 or none) is served by the HTTP/2
    // server, which does not track those connections either.
    secure.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      if (req.httpVersionMajor !== 1) return;
      if (!h1Sockets.has(req.socket)) {
        h1Sockets.add(req.socket);
        ageHttp1(req.socket);
      }
      trackHttp1Request(req, res);
    });
    server = secure;
  } else {
    h1 = http.createServer({
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: checkingInterval(limits),
    }, handler);
    // Starts Node's check of headersTimeout and requestTimeout (see above).
    h1.emit("listening");
    h1.on("request", trackHttp1Request);
    const h2 = http2.createServer(h2Options, handler);
    h2.on("session", trackSession);
    server = net.createServer((socket) => {
      if (!admit(socket)) return;
      sniff(socket, (isHttp2, seen) => {
        if (isHttp2) {
          // The HTTP/2 session reads bytes already buffered on the socket.
          socket.unshift(seen);
          incoming = socket;
          h2.emit("connection", socket);
        } else {
          h1Sockets.add(socket);
          ageHttp1(socket);
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
    // Stops the inner server's timeout checks (it was never listening: its close reports that, harmlessly).
    h1?.close(() => {});
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

/** How often Node looks for HTTP/1.1 requests past their timeouts: often enough that a bound holds to about a second. */
function checkingInterval(limits: EdgeLimits): number {
  return Math.max(100, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
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
