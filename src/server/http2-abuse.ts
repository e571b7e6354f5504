/**
 * Per-session defences of the HTTP/2 side that Node's own `http2` options do
 * not cover:
 *
 * - premature resets (the "rapid reset" attack, CVE-2023-44487): a client that
 *   opens streams and resets them at once makes the server start work for
 *   each while never counting against the concurrent-stream limit. A stream
 *   is reset prematurely when the client (not the server) resets it within
 *   `PREMATURE_RESET_LIFETIME_MS` of opening it and before the server's
 *   answer was complete. A session is ended with GOAWAY ENHANCE_YOUR_CALM when,
 *   within `PREMATURE_RESET_WINDOW_MS`, its client reset more than
 *   `maxPrematureResets` streams prematurely and those are more than half of
 *   the streams it closed in that time: Envoy's rule (its defaults: half of
 *   at least 500 streams). An honest client also resets streams (a gRPC
 *   client sends RST_STREAM CANCEL when its deadline expires, often before the
 *   gateway answered), so neither resets the gateway sends itself nor a
 *   minority of resets among answered calls count against it; an attacker
 *   that opens thousands of streams a second and answers none is cut off
 *   within a fraction of a second. Other sessions keep their service;
 * - idle sessions: a session with no open stream for `idleTimeoutMs` is
 *   closed with GOAWAY (not just pinged), so a client cannot hold a connection
 *   open for nothing.
 */
import http2 from "node:http2";
import type { EdgeLimits } from "../config.js";

/** A stream reset sooner than this after it opened is a premature reset (Envoy's default). */
export const PREMATURE_RESET_LIFETIME_MS = 1000;

/** The window in which premature resets are counted. */
export const PREMATURE_RESET_WINDOW_MS = 10_000;

/** The bounds a session is held to (see `EdgeLimits`). */
export type Http2SessionLimits = Pick<EdgeLimits, "maxPrematureResets" | "idleTimeoutMs">;

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
  let closed = 0;
  let premature = 0;
  let windowStart = 0;
  let flooded = false;
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
    const resetHere = markResetsSentHere(stream);
    // Whether the client reset the stream before the server's answer was
    // complete: a flood sends each request whole and resets it at once, and
    // a cheap answer (a 400 for the missing body) may already be under way
    // when the reset is read, so "no headers sent yet" would miss it.
    // Node also ends the writable side of a stream the client reset, after
    // marking it closed: only an answer that ended while it was open counts.
    let answered = false;
    stream.once("finish", () => (answered = !stream.closed));
    stream.once("close", () => {
      open--;
      countClosed(!answered && !resetHere() && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR && performance.now() - opened < PREMATURE_RESET_LIFETIME_MS);
      if (open === 0 && !session.closed) armIdle();
    });
  });
  session.once("close", () => clearTimeout(idle));

  const countClosed = (prematurelyReset: boolean) => {
    const now = performance.now();
    if (now - windowStart > PREMATURE_RESET_WINDOW_MS) {
      windowStart = now;
      closed = 0;
      premature = 0;
    }
    closed++;
    if (prematurelyReset) premature++;
    if (premature <= limits.maxPrematureResets || premature * 2 <= closed || flooded) return;
    // Once: the streams closed in the same read as the one that tripped it come after.
    flooded = true;
    // Also when nghttp2's own rapid-reset bound ended the session first (it
    // counts within one read, before these close events run): the verdict,
    // and so the address's cool-down, must not depend on which bound was first.
    onVerdict("http2_reset_flood");
    if (session.destroyed) return;
    // GOAWAY with ENHANCE_YOUR_CALM (RFC 9113 §5.4.1), then the connection is
    // dropped. (`destroy(error, code)` would send NO_ERROR without an error,
    // and the frame is written once the current read is processed.)
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    setImmediate(() => session.destroy());
  };
}

/**
 * Whether the server itself reset the stream. Node records the same
 * `rstCode` for an RST_STREAM received and one sent, and ends a stream the
 * peer reset through the same `close` and `destroy`, but only after marking
 * it closed: a call to either on a stream not yet closed is the server's own.
 */
function markResetsSentHere(stream: http2.ServerHttp2Stream): () => boolean {
  let here = false;
  const close = stream.close;
  const destroy = stream.destroy;
  stream.close = function (this: http2.ServerHttp2Stream, ...args: Parameters<typeof close>) {
    if (!this.closed) here = true;
    return close.apply(this, args);
  };
  stream.destroy = function (this: http2.ServerHttp2Stream, ...args: Parameters<typeof destroy>) {
    if (!this.closed) here = true;
    return destroy.apply(this, args);
  };
  return () => here;
}
