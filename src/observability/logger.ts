/**
 * The gateway's one logger (pino, JSON lines). It is created before the
 * components so that they can report state changes (Redis lost, a platform
 * unreachable) on the same stream as the requests; the server logs each
 * call through a child of it that carries the call's request id.
 *
 * Partner keys and idempotency keys are redacted wherever a request's
 * headers are logged; nothing else the gateway logs holds a secret.
 */
import { pino, type LogFn } from "pino";

/** What components need of a logger; pino's and fastify's request loggers both fit. */
export interface Logger {
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
}

export interface LoggerOptions {
  readonly level: string;
  readonly stream?: NodeJS.WritableStream | undefined;
}

export const REDACTED_PATHS = ["req.headers.authorization", "req.headers['idempotency-key']"];

export function createLogger(options: LoggerOptions): pino.Logger {
  const config = { level: options.level, redact: REDACTED_PATHS };
  return options.stream === undefined ? pino(config) : pino(config, options.stream as pino.DestinationStream);
}
