/**
 * Per-session defences of the HTTP/2 side that Node's own `http2` options do
 * not cover:
 *
 * - premature resets (the "rapid reset" attack, CVE-2023-44487): a client that
 *   opens streams and resets them at once makes the server start work for
 *   each while never counting against the concurrent-stream limit. A stream
 *   reset within `PREMATURE_RESET_LIFETIME_MS` of opening is premature; a
 *   session whose streams were reset prematurely more than `maxPrematureResets` times within
 *   `PREMATURE_RESET_WINDOW_MS` is ended with GOAWAY ENHANCE_YOUR_CALM, as
 *   Envoy and nginx do; other sessions keep their service;
 * - idle sessions: a session with no open stream for `idleTimeoutMs` is
 *   closed with GOAWAY (not just pinged), so a client cannot hold a connection
 *   open for nothing.
 */
import http2 from "node:http2";

/** A stream reset sooner than this after it opened is a premature reset (Envoy's default). */
export const PREMATURE_RESET_LIFETIME_MS = 1000;

/** The window in which premature resets are counted. */
export const PREMATURE_RESET_WINDOW_MS = 10_000;

export interface Http2SessionLimits {
  /** Unanswered streams a client may reset within the window before its session is ended. */
  readonly maxPrematureResets: number;
  /** A session with no open stream for this long is closed; 0 disables. */
  readonly idleTimeoutMs: number;
}

export type SessionVerdict = "http2_reset_flood" | "http2_idle";

/**
 * Watches one session. `onFirstStream` runs when the client opens its first
 * stream; `onVerdict` when the session is ended by a bound.
 */
export function guardHttp2Session(
  session: http2.ServerHttp2Session,
  limits: Http2SessionLimits,
  onFirstStream: () => void,
  onVerdict: (verdict: SessionVerdict) => void,
): void {
  let open = 0;
  let streams = 0;
  let resets = 0;
  let windowStart = 0;
  let idle: NodeJS.Timeout | undefined;

  const armIdle = () => {
    if (limits.idleTimeoutMs <= 0) return;
    idle = setTimeout(() => {
      if (open > 0 || session.closed || session.destroyed) return;
      onVerdict("http2_idle");
      session.close();
    }, limits.idleTimeoutMs);
    idle.unref();
  };

  session.on("stream", (stream) => {
    if (streams++ === 0) onFirstStream();
    open++;
    clearTimeout(idle);
    const opened = performance.now();
    stream.once("close", () => {
      open--;
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR && performance.now() - opened < PREMATURE_RESET_LIFETIME_MS) countReset();
      if (open === 0 && !session.closed) armIdle();
    });
  });
  session.once("close", () => clearTimeout(idle));

  const countReset = () => {
    const now = performance.now();
    if (now - windowStart > PREMATURE_RESET_WINDOW_MS) {
      windowStart = now;
      resets = 0;
    }
    if (++resets <= limits.maxPrematureResets || session.destroyed) return;
    onVerdict("http2_reset_flood");
    // GOAWAY with ENHANCE_YOUR_CALM (RFC 9113 §5.4.1), then the connection is
    // dropped. (`destroy(error, code)` would send NO_ERROR without an error,
    // and the frame is written once the current read is processed.)
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    setImmediate(() => session.destroy());
  };
}
