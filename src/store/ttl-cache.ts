/**
 * A small in-process cache with a time-to-live, bounded in size, that also
 * folds concurrent misses for one key into a single load, so a burst of calls
 * for a cold bot makes one store round trip.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private readonly loading = new Map<string, Promise<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expiresAt > Date.now()) return hit.value;
    const pending = this.loading.get(key);
    if (pending !== undefined) return pending;
    const p = load().then(
      (value) => {
        this.loading.delete(key);
        if (this.ttlMs > 0) {
          if (this.entries.size >= this.maxEntries) this.entries.clear();
          this.entries.set(key, { value, expiresAt: Date.now() + this.ttlMs });
        }
        return value;
      },
      (e: unknown) => {
        this.loading.delete(key);
        throw e;
      },
    );
    this.loading.set(key, p);
    return p;
  }

  clear(): void {
    this.entries.clear();
  }
}
