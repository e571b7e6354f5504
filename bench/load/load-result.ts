/**
 * What one load run produced, whatever the tool: the successful responses
 * with their latencies, the failures, and the time it took. Latencies are
 * kept at full precision (autocannon's own histogram rounds to whole
 * milliseconds, too coarse for a sub-millisecond relay).
 */
export interface LoadResult {
  /** Successful responses (2xx, and gRPC status 0 where the tool can see it). */
  readonly ok: number;
  /** Non-successful responses, connection errors and timeouts. */
  readonly failed: number;
  readonly durationS: number;
  /** Latency of each successful response, in milliseconds. */
  readonly latenciesMs: ArrayLike<number>;
  /** What the first failure was, for the report. */
  readonly firstFailure?: string | undefined;
}

export interface LoadFigures {
  readonly ok: number;
  readonly failed: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly firstFailure?: string | undefined;
}

/** The value below which a fraction `p` of the sorted values fall (nearest rank). */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

export function figures(result: LoadResult): LoadFigures {
  const sorted = Float64Array.from(result.latenciesMs).sort();
  return {
    ok: result.ok,
    failed: result.failed,
    rps: result.durationS > 0 ? result.ok / result.durationS : 0,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    firstFailure: result.firstFailure,
  };
}
