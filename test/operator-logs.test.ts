/**
 * Logs an operator acts on: a scheduling platform that stops accepting
 * connections is logged once at warn however many calls fail, and once more
 * when it answers again; the lines name the platform's host and never its
 * secret or a partner key. (Redis lost and recovered: test/health.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReferencePlatform } from "../src/demo/reference-platform.js";
import { searchBody, startHarness, type Harness } from "./support/harness.js";
import { parsePrometheusText, sampleValue } from "./support/prometheus-text.js";
import { freePort } from "./support/redis-server.js";
import { logLinesInto, type LogLine } from "./support/log-lines.js";

describe("a platform that goes away and comes back", () => {
  let h: Harness;
  const lines: LogLine[] = [];
  let port: number;
  const secret = "whsec_unreachable_test_secret";

  beforeAll(async () => {
    const stream = logLinesInto(lines);
    h = await startHarness({ env: { LOG_LEVEL: "warn" }, logStream: stream });
    port = await freePort();
    const store = h.gateway.directory.store;
    await store.putPlatform({ id: "plat_away", webhookUrl: `http://127.0.0.1:${port}/dialstack`, webhookSecret: secret });
    await store.putAccount({ id: "acct_away", platformId: "plat_away" });
    await store.putBot({ id: "bot_away", partnerId: h.partners.a, accountId: "acct_away" });
  });
  afterAll(() => h.close());

  const search = () =>
    fetch(`${h.url}/v1/availability/search`, {
      method: "POST",
      headers: { authorization: `Bearer ${h.keys.a}`, "content-type": "application/json" },
      body: JSON.stringify(searchBody("bot_away")),
    });

  it("logs one line when it becomes unreachable and one when it is back", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await search();
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("platform_unavailable");
    }
    const platform = await new ReferencePlatform({ secret, port }).start();
    try {
      expect((await search()).status).toBe(200);
      expect((await search()).status).toBe(200);
    } finally {
      await platform.close();
    }
    const platformLines = lines.filter((l) => l.condition === "platform_unreachable");
    expect(platformLines.map((l) => [l.level, l.msg, l.subject])).toEqual([
      [40, "scheduling platform unreachable: its calls fail with platform_unavailable", `127.0.0.1:${port}`],
      [40, "scheduling platform reachable again", `127.0.0.1:${port}`],
    ]);
    expect(platformLines[0]!.error).toBe("ECONNREFUSED");
    const text = JSON.stringify(lines);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(h.keys.a);

    const metrics = parsePrometheusText(await (await fetch(`${h.url}/metrics`)).text());
    expect(sampleValue(metrics, "gateway_webhook_calls_total", { path: "/availability/search", outcome: "unreachable" })).toBe(5);
  });
});
