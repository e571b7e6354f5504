/**
 * The embedded default as a new user meets it: the built gateway started with
 * no configuration prints a demo key and ready-to-paste commands (searches on
 * every protocol, and a lookup of the demo platform's known caller), and every
 * printed `curl` and `buf curl` line works exactly as printed (run through a
 * shell from the project folder), and the printed console and reference
 * page answer. The key never reaches a log line, and
 * SIGTERM shuts the gateway down cleanly.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CALLER } from "../src/demo/reference-platform.js";
import { run } from "./support/commands.js";
import { startGatewayProcess, type GatewayProcess } from "./support/gateway-process.js";
import { freePort } from "./support/redis-server.js";
import { curl } from "./support/system-programs.js";

const curlProgram = curl("the printed curl line of the quick start");

let gw: GatewayProcess;
let port: number;
let key: string;
let commands: string[];

beforeAll(async () => {
  port = await freePort();
  gw = await startGatewayProcess({ PORT: String(port) }, { entry: "dist" });
  await gw.waitFor(/^Caller lookup .*\n {2}curl .*\n {2}npx buf curl .*$/m);
  key = /^Demo partner key \(shown once\):\n {2}(sk_ptnr_\S+)$/m.exec(gw.stdout())![1]!;
  commands = gw
    .stdout()
    .split("\n")
    .filter((line) => /^ {2}(curl|npx buf curl) /.test(line))
    .map((line) => line.trim());
});
afterAll(async () => {
  await gw?.stop();
});

describe("npm start with no configuration", () => {
  const isLookup = (c: string) => /\/v1\/customers\/lookup |\.CustomerService\/LookupCustomer$/.test(c);

  it("prints the demo key, the demo bot and commands for curl and each buf curl protocol", () => {
    expect(key).toMatch(/^sk_ptnr_[A-Za-z0-9_-]{43}$/);
    expect(gw.stdout()).toMatch(/^Demo bot: bot_demo /m);
    const searches = commands.filter((c) => !isLookup(c));
    expect(searches.filter((c) => c.startsWith("curl "))).toHaveLength(1);
    for (const protocol of ["grpc", "grpcweb", "connect"]) {
      expect(searches.some((c) => c.startsWith("npx buf curl ") && c.includes(`--protocol ${protocol} `))).toBe(true);
    }
    const lookups = commands.filter(isLookup);
    expect(lookups.map((c) => c.split(" ")[0])).toEqual(["curl", "npx"]);
    for (const c of lookups) expect(c).toContain(JSON.stringify({ bot_id: "bot_demo", customer: { phone: DEMO_CALLER.phone } }));
    for (const c of commands) {
      expect(c).toContain(`Bearer ${key}`);
      expect(c).toContain(`http://127.0.0.1:${port}/`);
    }
  });

  it("every printed command works as printed", async () => {
    const runnable = commands.filter((c) => !(curlProgram.skip && c.startsWith("curl ")));
    const results = await Promise.all(runnable.map((c) => run("sh", ["-c", c], { timeoutMs: 20_000 }).then((r) => ({ c, r }))));
    for (const { c, r } of results) {
      expect(r.code, `${c}\n${r.stderr}`).toBe(0);
      if (isLookup(c)) {
        const answer = JSON.parse(r.stdout) as { found?: boolean; customer?: Record<string, unknown> };
        expect(answer.found, c).toBe(true);
        expect(answer.customer, c).toMatchObject({ name: DEMO_CALLER.name, phone: DEMO_CALLER.phone });
        expect(Object.keys(answer.customer!).sort(), c).toEqual(c.startsWith("curl ") ? ["existing_appointment", "name", "phone"] : ["existingAppointment", "name", "phone"]);
        continue;
      }
      const answer = JSON.parse(r.stdout) as { availabilities?: Record<string, unknown>[] };
      expect(answer.availabilities?.length, c).toBeGreaterThan(0);
      expect(Object.keys(answer.availabilities![0]!).sort(), c).toEqual(
        c.startsWith("curl ") ? ["duration_minutes", "start_at"] : ["durationMinutes", "startAt"],
      );
    }
  });

  it("prints the addresses of the browser console and the reference page, which answer", async () => {
    const printed = /^In a browser \(paste the key, bot bot_demo\): (\S+)\/console {3}API reference: (\S+)\/docs$/m.exec(gw.stdout());
    expect(printed?.[1]).toBe(`http://127.0.0.1:${port}`);
    const page = await fetch(`${printed![1]}/console`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const script = /<script type="module" src="([^"]+)"/.exec(html)![1]!;
    const asset = await fetch(printed![1] + script);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await fetch(`${printed![2]}/docs`)).status).toBe(200);
  });

  it("logs each request without the key", () => {
    const logs = gw
      .stdout()
      .split("\n")
      .filter((line) => line.startsWith("{"));
    expect(logs.some((line) => line.includes('"msg":"request"'))).toBe(true);
    for (const line of logs) expect(line).not.toContain(key);
    expect(gw.stderr()).toBe("");
  });

  it("shuts down cleanly on SIGTERM", async () => {
    expect(await gw.stop()).toBe(0);
    expect(gw.stdout()).toContain('"msg":"shutting down"');
  });
});
