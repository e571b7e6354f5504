/**
 * A small in-process cache with a time-to-live, bounded in size, that also
 * folds concurrent misses for one key into a single load, so a burst of calls
 * for a cold bot makes one store round trip.
 *
 * A folded load that fails is the failure of the call that started it. The
 * calls that joined it try once more (together, as one load) instead of all
 * taking that one failure: a single store command that timed out must not
 * fail every call of a burst when the next attempt would succeed.
 *
 * At its bound the cache forgets its oldest entry, not everything. Loads that
 * found nothing (`undefined`: an unknown partner key, an unknown bot) are kept
 * apart under a small bound of their own, so that callers presenting made-up
 * keys cannot push the partners that are served out of the cache.
 */
interface Entry<V> {
  readonly value: V;
  readonly expiresAt: number;
}

export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly misses = new Map<string, Entry<V>>();
  private readonly loading = new Map<string, Promise<V>>();
  /** Bumped by `clear()`, so a load that started before it does not refill the cache. */
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly maxMisses = 1000,
  ) {}

  /**
   * The value of `key`: at once when it is cached (no promise: every call
   * looks up its partner and its bot, and a hit is the rule), else a promise
   * of its load.
   */
  get(key: string, load: () => Promise<V>): V | Promise<V> {
    const hit = this.entries.get(key) ?? this.misses.get(key);
    if (hit !== undefined && hit.expiresAt > Date.now()) return hit.value;
    return this.lookup(key, load, true);
  }

  private async lookup(key: string, load: () => Promise<V>, retryJoined: boolean): Promise<V> {
    const hit = this.entries.get(key) ?? this.misses.get(key);
    if (hit !== undefined && hit.expiresAt > Date.now()) return hit.value;
    const pending = this.loading.get(key);
    if (pending !== undefined) {
      if (!retryJoined) return pending;
      try {
        return await pending;
      } catch {
        return this.lookup(key, load, false);
      }
    }
    const generation = this.generation;
    const p = load().then(
      (value) => {
        if (this.loading.get(key) === p) this.loading.delete(key);
        if (this.ttlMs > 0 && generation === this.generation) {
          const [into, other, max] = value === undefined ? [this.misses, this.entries, this.maxMisses] : [this.entries, this.misses, this.maxEntries];
          other.delete(key);
          into.delete(key);
          if (into.size >= max) into.delete(into.keys().next().value!);
          into.set(key, { value, expiresAt: Date.now() + this.ttlMs });
        }
        return value;
      },
      (e: unknown) => {
        if (this.loading.get(key) === p) this.loading.delete(key);
        throw e;
      },
    );
    this.loading.set(key, p);
    return p;
  }

  /** Forgets every entry; loads already under way are not cached. */
  clear(): void {
    this.generation++;
    this.entries.clear();
    this.misses.clear();
    this.loading.clear();
  }
}
