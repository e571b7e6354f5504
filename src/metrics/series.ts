/**
 * Counters and histograms for the per-call hot path. prom-client's own
 * `Counter.inc` and `Histogram.observe` validate and hash their label object
 * on every call (a closure, a sort, a string per observation); these keep one
 * entry per label combination in nested Maps keyed by the label values, so
 * recording is a few lookups and an addition. prom-client still owns the
 * registry and writes the exposition: each series is registered as a metric
 * that reports its values when scraped.
 */
import type { Registry } from "prom-client";

interface Entry {
  readonly labels: Record<string, string>;
  value: number;
}

interface HistogramEntry {
  readonly labels: Record<string, string>;
  /** Per bucket (not cumulative), the last one for +Inf. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

interface MetricValue {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/**
 * Entries by label values, up to three labels, as nested Maps: a lookup per
 * label on strings the callers reuse (procedure names come from the routes),
 * with nothing allocated once a combination has been seen.
 */
class Entries<E> {
  private readonly root = new Map<string, unknown>();
  readonly all: E[] = [];

  constructor(
    private readonly labelNames: readonly string[],
    private readonly create: (labels: Record<string, string>) => E,
  ) {}

  get(a: string, b?: string, c?: string): E {
    const depth = this.labelNames.length;
    let map = this.root;
    if (depth > 1) map = this.level(map, a);
    if (depth > 2) map = this.level(map, b!);
    const last = depth === 1 ? a : depth === 2 ? b! : c!;
    let entry = map.get(last) as E | undefined;
    if (entry === undefined) {
      const values = [a, b, c];
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i]!));
      entry = this.create(labels);
      map.set(last, entry);
      this.all.push(entry);
    }
    return entry;
  }

  private level(map: Map<string, unknown>, key: string): Map<string, unknown> {
    let next = map.get(key) as Map<string, unknown> | undefined;
    if (next === undefined) {
      next = new Map();
      map.set(key, next);
    }
    return next;
  }
}

abstract class Series {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "histogram",
    registry: Registry,
  ) {
    // prom-client formats whatever `get()` reports.
    registry.registerMetric(this as never);
  }

  abstract get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }>;
}

export class CounterSeries extends Series {
  private readonly entries: Entries<Entry>;

  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    super(name, help, "counter", registry);
    this.entries = new Entries(labelNames, (labels) => ({ labels, value: 0 }));
  }

  inc(a: string, b?: string, c?: string): void {
    this.entries.get(a, b, c).value++;
  }

  async get() {
    const values = this.entries.all.map((e) => ({ labels: e.labels, value: e.value }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: "sum" };
  }
}

export class HistogramSeries extends Series {
  private readonly entries: Entries<HistogramEntry>;

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
    registry: Registry,
  ) {
    super(name, help, "histogram", registry);
    this.entries = new Entries(labelNames, (labels) => ({ labels, buckets: new Float64Array(bounds.length + 1), sum: 0, count: 0 }));
  }

  observe(value: number, a: string, b?: string, c?: string): void {
    const entry = this.entries.get(a, b, c);
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    entry.buckets[i]!++;
    entry.sum += value;
    entry.count++;
  }

  async get() {
    const values: MetricValue[] = [];
    for (const e of this.entries.all) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += e.buckets[i]!;
        values.push({ labels: { ...e.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...e.labels, le: "+Inf" }, value: e.count, metricName: `${this.name}_bucket` });
      values.push({ labels: e.labels, value: e.sum, metricName: `${this.name}_sum` });
      values.push({ labels: e.labels, value: e.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: "sum" };
  }
}
