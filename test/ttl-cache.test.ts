/**
 * The directory's cache folds concurrent misses into one load; when that load
 * fails, the calls that joined it try once more, together, rather than all
 * taking the one failure.
 */
import { expect, it } from "vitest";
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
