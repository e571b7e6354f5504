/**
 * A log destination for a gateway under test: each JSON line the gateway
 * writes is parsed and kept in `lines`, for the test to read.
 */
import { Writable } from "node:stream";

export type LogLine = Record<string, unknown>;

export function logLinesInto(lines: LogLine[]): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim() !== "") lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
}
