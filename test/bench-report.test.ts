/**
 * The benchmark's arithmetic and wire reading: what the report says must
 * follow from the runs (medians, per-round ratios, the targets' verdicts),
 * and the session load generator must tell answers apart from their bytes.
 * The benchmark itself runs end to end in CI as `npm run bench -- --quick`.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { converseAnswerKind } from "../bench/fixture.js";
import { figures, percentile } from "../bench/load/load-result.js";
import type { Sample } from "../bench/measure.js";
import { median, pairedRatio, rowsOf, targetLines, type Outcome } from "../bench/report.js";
import { h2Layout } from "../bench/workloads.js";
import { ConverseResponseSchema } from "../src/gen/dialstack/partner/v1/session_pb.js";

function sample(target: string, round: number, rps: number, p50Ms: number, cpuS = 1, concurrency = 16): Sample {
  const ok = rps * 5;
  return { target, concurrency, round, figures: { ok, failed: 0, rps, p50Ms, p99Ms: p50Ms * 2 }, cpuS, peakRssBytes: 100 * 2 ** 20, platformCalls: ok };
}

function outcome(id: string, targets: string[], samples: Sample[]): Outcome {
  return { id, title: id, tool: "test", targets, status: "measured", samples };
}

describe("benchmark figures", () => {
  it("takes the median of an odd and an even number of values, ignoring missing ones", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });

  it("reads percentiles by nearest rank at full precision", () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => (i + 1) / 10);
    expect(percentile(sorted, 0.5)).toBeCloseTo(5.0);
    expect(percentile(sorted, 0.99)).toBeCloseTo(9.9);
    const f = figures({ ok: 4, failed: 0, durationS: 2, latenciesMs: [0.31, 0.12, 0.45, 0.2] });
    expect(f.rps).toBe(2);
    expect(f.p50Ms).toBeCloseTo(0.2);
  });

  it("compares targets round by round, so a slow moment of the machine hits both sides of a ratio", () => {
    const o = outcome("grpc-search", ["gateway", "grpc-js relay"], [
      sample("gateway", 1, 100, 2),
      sample("grpc-js relay", 1, 200, 1),
      sample("gateway", 2, 400, 2),
      sample("grpc-js relay", 2, 500, 1),
      sample("gateway", 3, 300, 2),
      sample("grpc-js relay", 3, 400, 1),
    ]);
    const r = pairedRatio(o, 16, "gateway", "grpc-js relay")!;
    expect(r.rps).toBeCloseTo(0.75);
    expect(r.p50AddedMs).toBeCloseTo(1);
    // CPU per request: the gateway spends the same CPU on fewer requests.
    expect(r.cpu).toBeCloseTo(1 / 0.75);
    expect(rowsOf(o).map((row) => [row.target, row.rps])).toEqual([
      ["gateway", 300],
      ["grpc-js relay", 400],
    ]);
  });

  it("states each target with its figures and says missed or not measured, never failing the run", () => {
    const lines = targetLines(
      [
        outcome("grpc-search", ["gateway", "grpc-js relay"], [sample("gateway", 1, 90, 2), sample("grpc-js relay", 1, 100, 1)]),
        { id: "rest-search", title: "", tool: "", targets: [], status: "not available", reason: "404", samples: [] },
      ],
      [16],
    );
    expect(lines.find((l) => l.goal.includes("gRPC"))).toMatchObject({ met: "missed", figures: "c16: 0.90×" });
    expect(lines.find((l) => l.goal.includes("REST search"))?.met).toBe("not measured");
  });

  it("spreads a concurrency over HTTP/2 connections of at most 16 streams", () => {
    expect(h2Layout(1)).toEqual({ connections: 1, streams: 1 });
    expect(h2Layout(16)).toEqual({ connections: 1, streams: 16 });
    expect(h2Layout(64)).toEqual({ connections: 4, streams: 16 });
  });
});

describe("reading session answers from their bytes", () => {
  const bytes = (result: Parameters<typeof create<typeof ConverseResponseSchema>>[1]) => toBinary(ConverseResponseSchema, create(ConverseResponseSchema, result));

  it("tells a started session, an answer (search, booking, lookup) and an error apart", () => {
    expect(converseAnswerKind(bytes({ requestId: "start", result: { case: "started", value: { botId: "bot_1", accountId: "acct_1" } } }))).toBe("started");
    expect(converseAnswerKind(bytes({ requestId: "op-1", result: { case: "searchAvailability", value: {} } }))).toBe("ok");
    expect(converseAnswerKind(bytes({ requestId: "op-4", result: { case: "lookupCustomer", value: { found: true, customer: { name: "Jane" } } } }))).toBe("ok");
    expect(converseAnswerKind(bytes({ requestId: "op-2", result: { case: "error", value: { code: "slot_unavailable", message: "taken" } } }))).toBe(
      "error: slot_unavailable",
    );
    expect(converseAnswerKind(bytes({ requestId: "op-3" }))).toBe("empty");
  });
});
