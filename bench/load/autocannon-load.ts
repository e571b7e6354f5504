/**
 * HTTP/1.1 load with autocannon: `connections` keep-alive connections, each
 * with one request in flight (closed loop), for `durationS`. Fresh headers
 * per request (a new idempotency key each time) go through autocannon's
 * `setupRequest`.
 */
import autocannon from "autocannon";
import type { LoadResult } from "./load-result.js";

export interface AutocannonLoad {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly connections: number;
  readonly durationS: number;
  /** Headers that change with every request. */
  readonly perRequestHeaders?: (() => Record<string, string>) | undefined;
}

export function runAutocannon(load: AutocannonLoad): Promise<LoadResult> {
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const fresh = load.perRequestHeaders;
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const instance = autocannon(
      {
        url: load.url,
        method: "POST",
        headers: load.headers,
        body: load.body,
        connections: load.connections,
        pipelining: 1,
        duration: load.durationS,
        sampleInt: 100,
        timeout: 10,
        ...(fresh === undefined
          ? {}
          : {
              requests: [
                {
                  setupRequest: (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, ...fresh() } }),
                },
              ],
            }),
      },
      (error) => {
        if (error) return reject(error);
        resolve({ ok, failed, durationS: Number(process.hrtime.bigint() - started) / 1e9, latenciesMs: latencies, firstFailure });
      },
    );
    instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) {
        ok++;
        latencies.push(ms);
      } else {
        failed++;
        firstFailure ??= `HTTP ${status}`;
      }
    });
    instance.on("reqError", (e: Error) => {
      failed++;
      firstFailure ??= e.message;
    });
  });
}
