/**
 * Platform answers are bounded: one larger than PLATFORM_MAX_ANSWER_BYTES is
 * `platform_invalid_response` on every protocol (and is not read to its end),
 * and a large answer within the bound (15,000 slots) is read whole, every
 * slot converted, a bad slot named by its index. (How much a large answer
 * holds up other calls is measured by `npm run abuse`.)
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, clientsFor, expectRpcError, RPC_PROTOCOLS, searchRequest } from "./support/clients.js";
import { searchBody, startHarness, type Harness } from "./support/harness.js";
import { send } from "./support/http1.js";

/** `n` slots of about 65 bytes each, as JSON: 15,000 make a 1 MB answer. */
function slots(n: number): { start_at: string; duration_minutes: number; loc: string }[] {
  return Array.from({ length: n }, (_, i) => ({
    start_at: new Date(Date.UTC(2030, 0, 7, 9) + i * 60_000).toISOString().replace(".000Z", "Z"),
    duration_minutes: 30,
    loc: `l${i % 5}`,
  }));
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { PLATFORM_MAX_ANSWER_BYTES: "4096" } });
});
afterAll(() => h.close());

describe.each(RPC_PROTOCOLS)("%s", (protocol) => {
  it("answers platform_invalid_response when the platform's answer is over the size limit", async () => {
    h.script = (req) => (req.path === "/availability/search" ? { status: 200, body: { availabilities: slots(100) } } : undefined);
    const c = clientsFor(protocol, h.url);
    const e = await expectRpcError(c.availability.searchAvailability(searchRequest(searchBody(h.bots.a)), bearer(h.keys.a)), Code.Unavailable, "platform_invalid_response");
    expect(e.rawMessage).toContain("larger than 4096 bytes");
  });
});

it("REST: 502 platform_invalid_response for an answer over the limit; one under it passes", async () => {
  h.script = (req) => (req.path === "/availability/search" ? { status: 200, body: { availabilities: slots(100) } } : undefined);
  const post = () => send(`${h.url}/v1/availability/search`, { headers: { authorization: `Bearer ${h.keys.a}` }, body: searchBody(h.bots.a) });
  const over = await post();
  expect({ status: over.status, code: over.json?.error?.code }).toEqual({ status: 502, code: "platform_invalid_response" });
  h.script = (req) => (req.path === "/availability/search" ? { status: 200, body: { availabilities: slots(10) } } : undefined);
  const under = await post();
  expect(under.status).toBe(200);
  expect(under.json.availabilities).toHaveLength(10);
});

describe("a large answer within the default limit", () => {
  let big: Harness;
  beforeAll(async () => {
    big = await startHarness();
  });
  afterAll(() => big.close());

  it("converts all 15,000 slots of a 1 MB answer, and names a bad slot by its index", async () => {
    const many = slots(15_000);
    expect(JSON.stringify({ availabilities: many }).length).toBeGreaterThan(950_000);
    big.script = (req) => (req.path === "/availability/search" ? { status: 200, body: { availabilities: many } } : undefined);
    const c = clientsFor("grpc", big.url);
    const res = await c.availability.searchAvailability(searchRequest(searchBody(big.bots.a)), bearer(big.keys.a));
    expect(res.availabilities).toHaveLength(15_000);
    expect(res.availabilities[14_999]!.platformFields).toEqual({ loc: "l4" });
    const broken = slots(15_000);
    (broken[12_345] as Record<string, unknown>).duration_minutes = 30.5;
    big.script = (req) => (req.path === "/availability/search" ? { status: 200, body: { availabilities: broken } } : undefined);
    const e = await expectRpcError(c.availability.searchAvailability(searchRequest(searchBody(big.bots.a)), bearer(big.keys.a)), Code.Unavailable, "platform_invalid_response");
    expect(e.rawMessage).toContain("availabilities[12345]");
  });
});
