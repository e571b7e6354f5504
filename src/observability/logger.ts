/**
 * The gateway's one logger (pino, JSON lines). It is created before the
 * components so that they can report state changes (Redis lost, a platform
 * unreachable) on the same stream as the requests; the server logs each
 * call through a child of it that carries the call's request id.
 *
 * Partner keys and idempotency keys are redacted wherever a request's
 * headers are logged; nothing else the gateway logs holds a secret.
 *
 * On stdout, lines are written synchronously but several at a time (see
 * `BatchedStdout`): a line per request cost a system call per request.
 */
import { writeSync } from "node:fs";
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
  return pino(config, options.stream === undefined ? (stdoutLog ??= new BatchedStdout()) : (options.stream as pino.DestinationStream));
}

/** The one stdout destination, shared by every logger of the process. */
let stdoutLog: BatchedStdout | undefined;

/** Marks a destination that pino tells each line's level (`lastLevel`). */
const PINO_METADATA: unique symbol = Symbol.for("pino.metadata");

/** pino's numeric level of `error`. */
const ERROR_LEVEL = 50;

/** Where a write to a full, non-blocking stdout waits a millisecond before it tries again. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * stdout for the log, written synchronously (`fs.writeSync`) but not one
 * line at a time: the lines logged in one turn of the event loop are written
 * together at its end, or as soon as 8 KiB wait. An `error` or `fatal` line
 * is written at once, with the lines before it, and whatever waits is
 * written when the process exits, by an uncaught exception too; only a
 * process that ends without its exit running (SIGKILL, a signal it does not
 * handle, running out of memory) can lose the info lines of its last turn.
 * A reader that went away (`EPIPE`) is not an error: the lines are dropped.
 * No `fsync`: a line is the kernel's once written, as with pino's own
 * destination.
 */
export class BatchedStdout {
  /** Asks pino to set `lastLevel` before each line it writes. */
  readonly [PINO_METADATA] = true;
  lastLevel = 0;
  private waiting = "";
  private scheduled = false;
  /** stdout's reader went away. */
  private closed = false;
  private readonly flushNow = () => {
    this.scheduled = false;
    if (this.waiting === "") return;
    if (this.closed) {
      this.waiting = "";
      return;
    }
    const bytes = Buffer.from(this.waiting);
    this.waiting = "";
    let written = 0;
    while (written < bytes.length) {
      try {
        written += writeSync(1, bytes, written);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // The reader is gone (a log shipper that died): the gateway goes on serving and its lines go nowhere, as with pino's own destination.
        if (code === "EPIPE") {
          this.closed = true;
          return;
        }
        if (code !== "EAGAIN") throw e;
        Atomics.wait(PAUSE, 0, 0, 1);
      }
    }
  };

  constructor() {
    process.on("exit", this.flushNow);
  }

  write(line: string): void {
    this.waiting += line;
    if (this.lastLevel >= ERROR_LEVEL || this.waiting.length >= 8192) {
      this.flushNow();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /** Writes whatever waits (pino's `logger.flush()`). */
  flush(done?: (error?: Error) => void): void {
    this.flushNow();
    done?.();
  }
}
