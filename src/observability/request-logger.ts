/**
 * Request loggers that cost nothing until they log something else than fields.
 *
 * fastify gives every request a pino child carrying its request id, and pino
 * serializes a child's bindings when it is made: about 13k instructions per
 * request (2% of a REST search), spent again for every request although most
 * log exactly one line (the access line). A `RequestLogger` keeps the parent
 * and the bindings instead: a line with fields (`log.info({...}, "msg")`) is
 * written by the parent with the bindings first, which is the line the child
 * would have written, key for key; anything else (a message alone, an error
 * object, `child()`, a level change) makes the pino child then and hands over
 * to it for good.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString } from "pino";

type Level = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export class RequestLogger implements FastifyBaseLogger {
  private made: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly own: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  /** The pino child, made on first need. */
  private child_(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.own, this.options));
  }

  private write(level: Level, args: unknown[]): void {
    const made = this.made;
    const fields = args[0];
    // With options (a level or serializers of its own) only the child writes its lines.
    if (made === undefined && this.options.level === undefined && this.options.serializers === undefined && isPlainObject(fields)) {
      (this.parent[level] as (...a: unknown[]) => void)({ ...this.own, ...fields }, ...args.slice(1));
      return;
    }
    (this.child_()[level] as (...a: unknown[]) => void)(...args);
  }

  get level(): LevelWithSilentOrString {
    return this.made?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    this.child_().level = level;
  }

  isLevelEnabled(level: string): boolean {
    const target = this.made ?? this.parent;
    return (target as FastifyBaseLogger & { isLevelEnabled?(l: string): boolean }).isLevelEnabled?.(level) ?? true;
  }

  fatal(...args: unknown[]): void {
    this.write("fatal", args);
  }
  error(...args: unknown[]): void {
    this.write("error", args);
  }
  warn(...args: unknown[]): void {
    this.write("warn", args);
  }
  info(...args: unknown[]): void {
    this.write("info", args);
  }
  debug(...args: unknown[]): void {
    this.write("debug", args);
  }
  trace(...args: unknown[]): void {
    this.write("trace", args);
  }
  silent(...args: unknown[]): void {
    this.write("silent", args);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.child_().child(bindings, options);
  }

  bindings(): Bindings {
    return (this.child_() as FastifyBaseLogger & { bindings(): Bindings }).bindings();
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** fastify's `childLoggerFactory`: a `RequestLogger` in place of pino's child. */
export function requestLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new RequestLogger(logger, bindings, options);
}
