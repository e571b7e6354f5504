/**
 * The gateway keeps its connections to a platform alive between webhooks,
 * for `PLATFORM_IDLE_CONNECTION_MS` (4 s by default) of idleness.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { IDLE_SOCKET_TIMEOUT_MS } from "../src/platform/webhook-client.js";
import { bearer, clientsFor, searchRequest } from "./support/clients.js";
import { searchBody, startHarness, type Harness } from "./support/harness.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function twoSearchesApart(gapMs: number): Promise<number[]> {
  const client = clientsFor("connect-json-h1", h!.url).availability;
  await client.searchAvailability(searchRequest(searchBody(h!.bots.a)), bearer(h!.keys.a));
  await new Promise((resolve) => setTimeout(resolve, gapMs));
  await client.searchAvailability(searchRequest(searchBody(h!.bots.a)), bearer(h!.keys.a));
  return h!.platform.received.filter((r) => r.path.endsWith("/availability/search")).map((r) => r.connection);
}

describe("connections to the platform", () => {
  it("are kept 4 s by default, the webhook client's own idle timeout", () => {
    expect(loadConfig({}).platformIdleConnectionMs).toBe(IDLE_SOCKET_TIMEOUT_MS);
    expect(loadConfig({ PLATFORM_IDLE_CONNECTION_MS: "60000" }).platformIdleConnectionMs).toBe(60_000);
  });

  it("a webhook 800 ms after the last one reuses its connection by default", async () => {
    h = await startHarness({ store: "memory" });
    const [first, second] = await twoSearchesApart(800);
    expect(second).toBe(first);
  });

  it("with PLATFORM_IDLE_CONNECTION_MS=200, the idle connection is closed and the next webhook opens another", async () => {
    h = await startHarness({ store: "memory", env: { PLATFORM_IDLE_CONNECTION_MS: "200" } });
    const [first, second] = await twoSearchesApart(800);
    expect(second).toBe(first! + 1);
  });
});
