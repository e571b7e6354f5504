/**
 * The gateway's one logger (pino, JSON lines). It is created before the
 * components so that they can report state changes (Redis lost, a platform
 * unreachable) on the same stream as the requests; the server logs each
 * call through a child of it that carries the call's request id.
 *
 * Partner keys and idempotency keys are redacted wherever a request's
 * headers are logged; nothing else the gateway logs holds a secret.
 */
import { pino } from "pino";

/**
 * What components need of a logger: fields (never a secret, a partner key or
 * a customer's details) and a message. pino's and fastify's request loggers
 * both fit, and so does a test's recorder.
 */
export interface Logger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
}

/** Logs nothing: for components built without a server around them. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

export interface LoggerOptions {
  readonly level: string;
  readonly stream?: NodeJS.WritableStream | undefined;
}

export const REDACTED_PATHS = ["req.headers.authorization", "req.headers['idempotency-key']"];

export function createLogger(options: LoggerOptions): pino.Logger {
  const config = { level: options.level, redact: REDACTED_PATHS };
  return options.stream === undefined ? pino(config) : pino(config, options.stream as pino.DestinationStream);
}
