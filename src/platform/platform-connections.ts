/**
 * The keep-alive connections of one platform origin, for the webhook client:
 * at most `max` HTTP/1.1 connections (undici `Client`s, one request at a
 * time each), the most recently used idle one first, so that the least used
 * ones go idle and are closed, and requests beyond `max` wait their turn in
 * order.
 *
 * Each request learns whether the connection it is written on carried
 * earlier requests (`reused`): only such a connection can be one the
 * platform closed while it sat idle. A connection whose request failed is
 * closed and replaced, never reused.
 */
import { Client, type Dispatcher } from "undici";

/** One request's side of an exchange with the platform. */
export interface PlatformExchange {
  /** What undici sends: the method, path, headers and body. */
  readonly request: Dispatcher.DispatchOptions;
  /** True once the caller no longer wants the request: a request still waiting for a connection is then never sent. */
  cancelled(): boolean;
  /** The request is about to be written; `controller.abort(error)` ends it (and closes its connection). */
  started(controller: Dispatcher.DispatchController, reused: boolean): void;
  answerStarted(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void;
  answerData(controller: Dispatcher.DispatchController, chunk: Buffer): void;
  answerEnded(): void;
  /** The request failed, or was aborted; `reused` as for `started` (false if it never was written). */
  failed(error: Error, reused: boolean): void;
}

export interface PlatformConnectionsOptions {
  readonly max: number;
  /** undici's options for each connection (keep-alive timeouts). */
  readonly client: Client.Options;
}

export class PlatformConnections {
  /** Idle connections, the most recently used last. */
  private readonly idle: Connection[] = [];
  /** Every open connection, idle or busy. */
  private readonly all = new Set<Connection>();
  /** Requests waiting for a connection, oldest first. */
  private readonly waiting: PlatformExchange[] = [];
  private closed = false;

  constructor(
    private readonly origin: string,
    private readonly options: PlatformConnectionsOptions,
  ) {}

  /** Sends `exchange` on the most recently used idle connection, a new one, or the first one to come free. */
  send(exchange: PlatformExchange): void {
    if (this.closed) return exchange.failed(new Error("the platform's connections are closed"), false);
    const connection = this.idle.pop() ?? (this.all.size < this.options.max ? this.open() : undefined);
    if (connection === undefined) this.waiting.push(exchange);
    else connection.carry(exchange);
  }

  /** Closes every connection; requests in flight fail. */
  close(): void {
    this.closed = true;
    for (const connection of this.all) connection.destroy().catch(() => {});
    this.all.clear();
    this.idle.length = 0;
    for (const exchange of this.waiting.splice(0)) exchange.failed(new Error("the platform's connections are closed"), false);
  }

  /** A request on `connection` ended; a connection whose request failed is closed, not reused. */
  release(connection: Connection, healthy: boolean): void {
    if (!healthy) {
      this.all.delete(connection);
      connection.destroy().catch(() => {});
    }
    if (this.closed) return;
    const next = this.nextWaiting();
    if (next === undefined) {
      if (healthy) this.idle.push(connection);
      return;
    }
    // Handed on once undici has finished with the request that ended (this runs inside its callback).
    const carrier = healthy ? connection : this.open();
    queueMicrotask(() => this.handOn(carrier, next));
  }

  /** Sends `exchange` on `connection`, or, if its caller left meanwhile, the next waiting one; else `connection` goes idle. */
  private handOn(connection: Connection, exchange: PlatformExchange): void {
    if (this.closed) return exchange.failed(new Error("the platform's connections are closed"), false);
    const next = exchange.cancelled() ? this.nextWaiting() : exchange;
    if (next !== undefined) connection.carry(next);
    else this.idle.push(connection);
  }

  private nextWaiting(): PlatformExchange | undefined {
    let next = this.waiting.shift();
    while (next !== undefined && next.cancelled()) next = this.waiting.shift();
    return next;
  }

  private open(): Connection {
    const connection = new Connection(this, this.origin, this.options.client);
    this.all.add(connection);
    return connection;
  }
}

/** One connection (an undici `Client`), counting the requests written on its current socket. */
class Connection extends Client {
  /** Requests written on the current socket. */
  written = 0;

  constructor(
    readonly pool: PlatformConnections,
    origin: string,
    options: Client.Options,
  ) {
    super(origin, options);
    // undici reports a new socket before it writes the first request on it.
    this.on("connect", () => {
      this.written = 0;
    });
  }

  carry(exchange: PlatformExchange): void {
    this.dispatch(exchange.request, new Lease(this, exchange));
  }
}

/** undici's handler for one request on one connection: it tells the exchange, and gives the connection back when the request ends. */
class Lease implements Dispatcher.DispatchHandler {
  private reused = false;
  private started = false;
  private done = false;

  constructor(
    private readonly connection: Connection,
    private readonly exchange: PlatformExchange,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.started = true;
    this.reused = this.connection.written++ > 0;
    this.exchange.started(controller, this.reused);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.exchange.answerStarted(controller, status, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.exchange.answerData(controller, chunk);
  }

  onResponseEnd(): void {
    if (this.end(true)) this.exchange.answerEnded();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error & { code?: string }): void {
    // A request undici refused to make (a header value it does not accept) leaves its connection as it was.
    if (!this.end(error.code === "UND_ERR_INVALID_ARG")) return;
    // A request that failed before it was written, on a connection that had carried others, failed because that
    // connection had gone stale (undici checks an idle connection first, and a reset arriving then fails what waits).
    this.exchange.failed(error, this.started ? this.reused : this.connection.written > 0);
  }

  private end(healthy: boolean): boolean {
    if (this.done) return false;
    this.done = true;
    this.connection.pool.release(this.connection, healthy);
    return true;
  }
}
