/**
 * W3C Trace Context (`traceparent`, `tracestate`): reading what a caller
 * sent and writing what the gateway sends on. A call joins the caller's
 * trace (same trace id, the caller's span as parent); a caller that sent no
 * valid `traceparent` starts a new trace at the gateway.
 */
import { randomFillSync } from "node:crypto";

export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  readonly spanId: string;
  /** The trace flags; bit 0 is `sampled`. */
  readonly flags: number;
}

const VERSION_00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const LATER_VERSION = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** The caller's `traceparent`, or undefined when absent or invalid (then the gateway starts a trace). */
export function parseTraceParent(header: string | string[] | undefined): TraceParent | undefined {
  if (typeof header !== "string") return undefined;
  const value = header.trim();
  let traceId: string, spanId: string, flags: string;
  const v00 = VERSION_00.exec(value);
  if (v00 !== null) {
    [, traceId, spanId, flags] = v00 as unknown as [string, string, string, string];
  } else {
    // A later version is read as version 00, as the specification asks; ff is invalid.
    const later = LATER_VERSION.exec(value);
    if (later === null || later[1] === "00" || later[1] === "ff") return undefined;
    [, , traceId, spanId, flags] = later as unknown as [string, string, string, string, string];
  }
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

/** The caller's `tracestate`, passed on as received when it is reasonable (at most 512 printable characters). */
export function parseTraceState(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(",") : header;
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === "" || trimmed.length > 512 || !/^[\x20-\x7e]+$/.test(trimmed)) return undefined;
  return trimmed;
}

export function formatTraceParent(p: TraceParent): string {
  return `00-${p.traceId}-${p.spanId}-${p.flags.toString(16).padStart(2, "0")}`;
}

// Random ids come from a pool refilled in blocks: one system call per 256 spans.
const pool = Buffer.alloc(4096);
let offset = pool.length;

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString("hex", offset, offset + bytes);
  offset += bytes;
  return hex;
}

export function newSpanId(): string {
  const id = randomHex(8);
  return id === ZERO_SPAN ? newSpanId() : id;
}

export function newTraceId(): string {
  const id = randomHex(16);
  return id === ZERO_TRACE ? newTraceId() : id;
}
