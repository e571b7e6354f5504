/**
 * Bounds on the connections the listener holds, so that clients that open
 * sockets and send nothing (or too little, too slowly) cannot use up the
 * process's file descriptors and lock everyone else out:
 *
 * - a cap on open connections in total and per client address; past the
 *   per-address cap a new connection from that address is refused (closed at
 *   once);
 * - a deadline for a connection's first request: its protocol preface (and
 *   TLS handshake) and its first request headers must arrive within
 *   `firstRequestTimeoutMs`, or it is closed;
 * - when the total cap is reached, a new connection closes the oldest one that
 *   has not yet sent a request, rather than being refused: connections that
 *   never proved themselves cannot keep clients that would out, and a
 *   connection that already serves a partner is never touched. Only when every
 *   open connection has sent a request is the new one refused;
 * - an optional maximum age, after which the protocol layer asks the
 *   connection to go away once its requests in flight are answered;
 * - a cool-down for an address caught attacking (`penalize`): its new
 *   connections are refused for `cooldownMs`, so a client that was cut off
 *   for a flood does not start the next one on a fresh connection at once.
 *
 * The guard knows no protocol: the listener tells it when a connection has
 * sent its first request (`proven`) and what to do when one ages out.
 */
import { EventEmitter } from "node:events";
import type net from "node:net";
import type { EdgeLimits } from "../config.js";

/** The bounds the guard holds connections to (see `EdgeLimits`). */
export type ConnectionLimits = Pick<EdgeLimits, "maxConnections" | "maxConnectionsPerClient" | "firstRequestTimeoutMs" | "maxConnectionAgeMs" | "cooldownMs">;

/** Why the guard closed or refused a connection. */
export type ConnectionVerdict =
  | "max_connections"
  | "max_connections_per_client"
  | "cooling_down"
  | "first_request_timeout"
  | "evicted_unproven";

/** Addresses cooling down at most. */
const MAX_PENALIZED = 100_000;

interface Entry {
  readonly socket: net.Socket;
  readonly address: string;
  deadline: NodeJS.Timeout | undefined;
  age: NodeJS.Timeout | undefined;
  onAge: (() => void) | undefined;
  aged: boolean;
}

/**
 * Events: `verdict` (reason, address) for every connection refused or closed
 * by a bound; `saturated` (boolean) when the total cap is reached or left.
 */
export class ConnectionGuard extends EventEmitter<{ verdict: [ConnectionVerdict, string]; saturated: [boolean] }> {
  private readonly entries = new Map<net.Socket, Entry>();
  /** Connections that have not sent a request, oldest first (a Set keeps insertion order). */
  private readonly unproven = new Set<Entry>();
  private readonly perAddress = new Map<string, number>();
  private saturated = false;
  /** Addresses cooling down, and until when. */
  private readonly penalized = new Map<string, number>();

  constructor(readonly limits: ConnectionLimits) {
    super();
  }

  /** Open connections now. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Takes a new connection under the bounds, or closes it (false). Call it
   * before anything is read from the socket.
   */
  admit(socket: net.Socket): boolean {
    const address = socket.remoteAddress ?? "";
    if (this.penalized.size > 0) {
      const until = this.penalized.get(address);
      if (until !== undefined && until > performance.now()) {
        this.refuse(socket, "cooling_down", address);
        return false;
      }
      if (until !== undefined) this.penalized.delete(address);
    }
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (fromAddress >= this.limits.maxConnectionsPerClient) {
      this.refuse(socket, "max_connections_per_client", address);
      return false;
    }
    if (this.entries.size >= this.limits.maxConnections) {
      const oldest = this.unproven.values().next().value;
      if (oldest === undefined) {
        this.setSaturated(true);
        this.refuse(socket, "max_connections", address);
        return false;
      }
      this.close(oldest, "evicted_unproven");
    }
    const entry: Entry = { socket, address, deadline: undefined, age: undefined, onAge: undefined, aged: false };
    this.entries.set(socket, entry);
    this.unproven.add(entry);
    this.perAddress.set(address, fromAddress + 1);
    entry.deadline = setTimeout(() => this.close(entry, "first_request_timeout"), this.limits.firstRequestTimeoutMs);
    entry.deadline.unref();
    if (this.limits.maxConnectionAgeMs > 0) {
      entry.age = setTimeout(() => {
        entry.aged = true;
        entry.onAge?.();
      }, this.limits.maxConnectionAgeMs);
      entry.age.unref();
    }
    socket.once("close", () => this.release(entry));
    return true;
  }

  /** Refuses new connections from `address` for the cool-down. */
  penalize(address: string): void {
    if (this.limits.cooldownMs <= 0) return;
    // Kept in the order the cool-downs end: past the bound, the one that ends first goes.
    this.penalized.delete(address);
    if (this.penalized.size >= MAX_PENALIZED) this.penalized.delete(this.penalized.keys().next().value!);
    this.penalized.set(address, performance.now() + this.limits.cooldownMs);
  }

  /** The connection sent its first request: no longer under the first-request deadline, never evicted. */
  proven(socket: net.Socket): void {
    const entry = this.entries.get(socket);
    if (entry === undefined || !this.unproven.has(entry)) return;
    this.unproven.delete(entry);
    clearTimeout(entry.deadline);
    entry.deadline = undefined;
  }

  /** What to do when the connection reaches its maximum age (called at once if it already has). */
  onAge(socket: net.Socket, goAway: () => void): void {
    const entry = this.entries.get(socket);
    if (entry === undefined) return;
    entry.onAge = goAway;
    if (entry.aged) goAway();
  }

  /** True once the connection has reached its maximum age. */
  aged(socket: net.Socket): boolean {
    return this.entries.get(socket)?.aged ?? false;
  }

  private close(entry: Entry, verdict: ConnectionVerdict): void {
    this.emit("verdict", verdict, entry.address);
    this.release(entry);
    entry.socket.destroy();
  }

  private refuse(socket: net.Socket, verdict: ConnectionVerdict, address: string): void {
    this.emit("verdict", verdict, address);
    socket.destroy();
  }

  private release(entry: Entry): void {
    if (this.entries.get(entry.socket) !== entry) return;
    this.entries.delete(entry.socket);
    this.unproven.delete(entry);
    clearTimeout(entry.deadline);
    clearTimeout(entry.age);
    const left = (this.perAddress.get(entry.address) ?? 1) - 1;
    if (left <= 0) this.perAddress.delete(entry.address);
    else this.perAddress.set(entry.address, left);
    if (this.saturated && this.entries.size < this.limits.maxConnections * 0.9) this.setSaturated(false);
  }

  private setSaturated(saturated: boolean): void {
    if (saturated === this.saturated) return;
    this.saturated = saturated;
    this.emit("saturated", saturated);
  }
}
