/**
 * The directory's cache folds concurrent misses into one load; when that load
 * fails, the calls that joined it try once more, together, rather than all
 * taking the one failure. At its bound it forgets its oldest entry, not all,
 * and lookups that found nothing cannot push out those that did: a flood of
 * made-up partner keys leaves the partners being served in the cache. The
 * in-process rate limits are bounded the same way.
 */
import { expect, it } from "vitest";
import { RateLimiter } from "../src/gateway/rate-limiter.js";
import { Directory } from "../src/store/directory.js";
import type { Partner } from "../src/store/directory-store.js";
import { MemoryDirectoryStore } from "../src/store/memory-directory-store.js";
import { generatePartnerKey, hashPartnerKey } from "../src/store/partner-key.js";
import { TtlCache } from "../src/store/ttl-cache.js";

it("folds concurrent misses into one load, and caches its value", async () => {
  const cache = new TtlCache<number>(60_000);
  let loads = 0;
  const load = async () => {
    loads++;
    await new Promise((r) => setTimeout(r, 10));
    return 7;
  };
  expect(await Promise.all(Array.from({ length: 50 }, () => cache.get("k", load)))).toEqual(Array(50).fill(7));
  expect(await cache.get("k", load)).toBe(7);
  expect(loads).toBe(1);
});

it("when the folded load fails, its starter gets the failure and the joiners retry once, as one load", async () => {
  const cache = new TtlCache<number>(60_000);
  let loads = 0;
  const load = async () => {
    const n = ++loads;
    await new Promise((r) => setTimeout(r, 10));
    if (n === 1) throw new Error("Command timed out");
    return 7;
  };
  const results = await Promise.allSettled(Array.from({ length: 50 }, () => cache.get("k", load)));
  expect(results[0]).toMatchObject({ status: "rejected", reason: expect.objectContaining({ message: "Command timed out" }) });
  expect(results.slice(1).every((r) => r.status === "fulfilled" && r.value === 7)).toBe(true);
  expect(loads).toBe(2);
});

it("joiners retry only once: a store that keeps failing fails them all", async () => {
  const cache = new TtlCache<number>(60_000);
  let loads = 0;
  const load = async () => {
    loads++;
    await new Promise((r) => setTimeout(r, 5));
    throw new Error("down");
  };
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => cache.get("k", load)));
  expect(results.every((r) => r.status === "rejected")).toBe(true);
  expect(loads).toBe(2);
});

it("at its bound forgets the oldest entry, not every entry", async () => {
  const cache = new TtlCache<string>(60_000, 3);
  const loads: string[] = [];
  const load = (k: string) => async () => (loads.push(k), k);
  for (const k of ["a", "b", "c", "d"]) await cache.get(k, load(k));
  for (const k of ["b", "c", "d", "a"]) await cache.get(k, load(k));
  expect(loads).toEqual(["a", "b", "c", "d", "a"]);
});

it("keeps what found nothing apart: misses do not push out what was found", async () => {
  const cache = new TtlCache<string | undefined>(60_000, 3, 2);
  let found = 0;
  await cache.get("partner", async () => (found++, "partner"));
  for (let i = 0; i < 100; i++) await cache.get(`unknown-${i}`, async () => undefined);
  await cache.get("partner", async () => (found++, "partner"));
  expect(found).toBe(1);
  // The latest misses are remembered, within their own bound.
  let missLoads = 0;
  await cache.get("unknown-99", async () => (missLoads++, undefined));
  await cache.get("unknown-0", async () => (missLoads++, undefined));
  expect(missLoads).toBe(1);
});

/** The in-memory directory, counting its partner lookups. */
class CountingStore extends MemoryDirectoryStore {
  lookups = 0;
  override async findPartnerByKeyHash(keyHash: string): Promise<Partner | undefined> {
    this.lookups++;
    return super.findPartnerByKeyHash(keyHash);
  }
}

it("a flood of unknown partner keys leaves a served partner in the directory's cache", async () => {
  const store = new CountingStore();
  const key = generatePartnerKey();
  await store.putPartner({ id: "ptnr_a", name: "A", keyHash: hashPartnerKey(key) });
  const directory = new Directory(store, 60_000);
  expect((await directory.authenticate(`Bearer ${key}`)).id).toBe("ptnr_a");
  for (let i = 0; i < 12_000; i++) {
    await expect(directory.authenticate(`Bearer ${generatePartnerKey()}`)).rejects.toMatchObject({ code: "unauthorized" });
  }
  const before = store.lookups;
  expect((await directory.authenticate(`Bearer ${key}`)).id).toBe("ptnr_a");
  expect(store.lookups).toBe(before);
});

it("the in-process rate limit forgets its oldest bucket at its bound, not every bucket", () => {
  const limiter = new RateLimiter({ perSecond: 1, burst: 1 });
  const now = Date.now();
  for (let i = 0; i < 100_000; i++) limiter.take(`p${i}`, now);
  limiter.take("newcomer", now);
  // A partner that just used its token is still limited; clearing every bucket would have refilled it.
  expect(() => limiter.take("p99999", now)).toThrow(/rate limit/);
});
