/**
 * The behaviour × protocol table: which promised behaviour is checked, by a
 * passing test, on which protocol. A behaviour that holds on one protocol may
 * silently differ on another; this table makes a missing protocol visible.
 *
 * In a test, after the assertions that check a behaviour, call
 *
 *     covers("409 in flight · booking", protocol);
 *
 * with the protocol the test spoke: an `RpcProtocol` of clients.ts, a
 * `WireProtocol` of wire.ts, `"rest"`, or a column name. The cell counts only
 * if that test passes (an `onTestFinished` hook reads the test's result), so
 * a test that fails before or after the call never fills it. Call it from the
 * test body, not from a hook or an `it.concurrent` test.
 *
 * At the end of a run the reporter (behaviour-matrix-reporter.ts) prints the
 * table. When the run was the whole suite (every test file, no name filter),
 * an empty cell in a row of `REQUIRED` fails the run; a run of some files only
 * prints what it saw.
 *
 * A new behaviour gets a row in `REQUIRED` ("<behaviour> · <operation>"), with
 * the columns it applies to, and `covers` calls in the tests that check it.
 */
import { onTestFinished } from "vitest";
import type { RpcProtocol } from "./clients.js";
import type { WireProtocol } from "./wire.js";

export const COLUMNS = ["REST", "Connect JSON", "Connect binary", "gRPC", "gRPC-Web"] as const;
export type Column = (typeof COLUMNS)[number];

/** Every row, and the columns on which it must be checked. */
export const REQUIRED = {
  "auth failure · search": COLUMNS,
  "auth failure · booking": COLUMNS,
  "bot ownership · search": COLUMNS,
  "bot ownership · booking": COLUMNS,
  "validation · search": COLUMNS,
  "validation · booking": COLUMNS,
  "replay · booking": COLUMNS,
  "422 mismatch · booking": COLUMNS,
  "409 in flight · booking": COLUMNS,
  "platform error pass-through · search": COLUMNS,
  "platform error pass-through · booking": COLUMNS,
  "server deadline · search": COLUMNS,
  "server deadline · booking": COLUMNS,
  "size limit · search": COLUMNS,
  "size limit · booking": COLUMNS,
  "rate limit · search": COLUMNS,
  "rate limit · booking": COLUMNS,
  "platform rejected · booking": COLUMNS,
  "auth failure · lookup": COLUMNS,
  "bot ownership · lookup": COLUMNS,
  "validation · lookup": COLUMNS,
  "platform error pass-through · lookup": COLUMNS,
  "platform rejected · lookup": COLUMNS,
  "rate limit · lookup": COLUMNS,
  "overload · search": COLUMNS,
  "overload · booking": COLUMNS,
} as const satisfies Record<string, readonly Column[]>;

export type Behaviour = keyof typeof REQUIRED;

/** The key under which a test's covered cells travel to the reporter, in the test's `meta`. */
export const META_KEY = "behaviours";

/** One covered cell, as stored in a test's `meta`. */
export type Cell = readonly [Behaviour, Column];

/** The table column of a protocol. */
export function columnOf(protocol: RpcProtocol | WireProtocol | "rest" | Column): Column {
  if (typeof protocol !== "string") {
    if (protocol.framing === "connect") return protocol.codec === "json" ? "Connect JSON" : "Connect binary";
    return protocol.framing === "grpc" ? "gRPC" : "gRPC-Web";
  }
  if ((COLUMNS as readonly string[]).includes(protocol)) return protocol as Column;
  if (protocol === "rest") return "REST";
  if (protocol.startsWith("connect-json")) return "Connect JSON";
  if (protocol.startsWith("connect-binary")) return "Connect binary";
  if (protocol.startsWith("grpc-web")) return "gRPC-Web";
  return "gRPC";
}

/** Records that the running test checks `behaviour` on `protocol`; counted only if the test passes. */
export function covers(behaviour: Behaviour, protocol: RpcProtocol | WireProtocol | "rest" | Column): void {
  const cell: Cell = [behaviour, columnOf(protocol)];
  onTestFinished(({ task }) => {
    if (task.result?.state !== "pass") return;
    const meta = task.meta as Record<string, unknown>;
    const cells = (meta[META_KEY] ??= []) as Cell[];
    cells.push(cell);
  });
}
