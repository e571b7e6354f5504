/**
 * A request's logger (src/observability/request-logger.ts) writes the lines a
 * pino child with the same bindings writes, byte for byte, whether it writes
 * them through its parent (fields and a message) or through the child it
 * makes (anything else).
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { REDACTED_PATHS } from "../src/observability/logger.js";
import { RequestLogger } from "../src/observability/request-logger.js";

function recorder() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  // Fixed time and base, so two loggers' lines can be compared as strings.
  const logger = pino({ level: "info", redact: REDACTED_PATHS, timestamp: () => ',"time":1', base: { pid: 1, hostname: "h" } }, stream);
  return { logger, lines };
}

type Call = (log: pino.BaseLogger & { child: pino.Logger["child"] }) => void;

const calls: [string, Call][] = [
  ["fields and a message", (log) => log.info({ method: "POST", path: "/v1/bookings", status: 201, ms: 3 }, "request")],
  ["fields, a message and interpolation", (log) => log.warn({ a: 1 }, "took %d ms", 12)],
  ["a message alone", (log) => log.info("hello")],
  ["an error", (log) => log.error(new Error("boom"))],
  ["an error under err", (log) => log.error({ err: new Error("boom") }, "unexpected error")],
  ["redacted headers", (log) => log.info({ req: { headers: { authorization: "Bearer sk_ptnr_secret" } } }, "headers")],
  ["a level below the logger's", (log) => log.debug({ a: 1 }, "not written")],
  ["a child of it", (log) => log.child({ session: "s1" }).info({ a: 1 }, "from the child")],
  ["a line after a message alone", (log) => (log.info("first"), log.info({ b: 2 }, "second"))],
];

describe("a request's logger", () => {
  for (const [name, call] of calls) {
    it(`writes what pino's child writes: ${name}`, () => {
      const viaChild = recorder();
      call(viaChild.logger.child({ reqId: "req-1" }));
      const viaRequest = recorder();
      call(new RequestLogger(viaRequest.logger, { reqId: "req-1" }, {}) as never);
      // Error stacks differ by the line that made them; everything else must not.
      const strip = (line: string) => line.replace(/"stack":"(?:[^"\\]|\\.)*"/, '"stack":"…"');
      expect(viaRequest.lines.map(strip)).toEqual(viaChild.lines.map(strip));
      expect(viaRequest.lines.join("\n")).not.toContain("sk_ptnr_secret");
      if (name !== "a level below the logger's") expect(viaRequest.lines.every((l) => l.includes('"reqId":"req-1"'))).toBe(true);
    });
  }

  it("makes no pino child for lines of fields, and one for anything else", () => {
    const { logger } = recorder();
    let children = 0;
    const counting = Object.assign(Object.create(logger) as pino.Logger, {
      child: (...args: Parameters<pino.Logger["child"]>) => (children++, logger.child(...args)),
    });
    const log = new RequestLogger(counting, { reqId: "r" }, {});
    log.info({ a: 1 }, "one");
    log.error({ b: 2 }, "two");
    expect(children).toBe(0);
    log.info("a message alone");
    log.info("again");
    expect(children).toBe(1);
  });

  it("reports the level of its parent, and takes a level of its own", () => {
    const { logger, lines } = recorder();
    const log = new RequestLogger(logger, { reqId: "r" }, {});
    expect(log.level).toBe("info");
    log.level = "debug";
    expect(logger.level).toBe("info");
    log.debug({ a: 1 }, "now written");
    expect(lines.some((l) => l.includes("now written"))).toBe(true);
  });
});
