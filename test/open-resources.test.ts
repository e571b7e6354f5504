/**
 * A gateway's resources close last opened first, and one that fails to close
 * does not keep the others open.
 */
import { expect, it } from "vitest";
import { OpenResources } from "../src/gateway/open-resources.js";

it("closes in reverse order, runs every step when one throws, and reports the first failure", async () => {
  const opened = new OpenResources();
  const closed: string[] = [];
  opened.add(() => closed.push("redis"));
  opened.add(async () => {
    closed.push("watch");
    throw new Error("watch would not close");
  });
  opened.add(() => closed.push("keeper"));
  opened.add(() => {
    closed.push("health");
    throw new Error("health would not close");
  });
  await expect(opened.close()).rejects.toThrow("health would not close");
  expect(closed).toEqual(["health", "keeper", "watch", "redis"]);
  // Closed once: a second close has nothing left to do.
  await opened.close();
  expect(closed).toHaveLength(4);
});
