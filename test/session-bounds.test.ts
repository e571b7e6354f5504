/**
 * Bounds on bot sessions: open sessions per partner, a maximum lifetime, an
 * idle clock that messages starting no operation do not reset (and that are
 * charged to the rate limit), and a partner whose key is rotated or deleted
 * losing its open sessions with `unauthorized` within the directory cache
 * TTL: at once when the directory announces the change (Redis), and by the
 * periodic re-check when nothing is announced (the in-memory store).
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPartnerKey } from "../src/store/partner-key.js";
import { clientsFor, expectRpcError, HTTP2_PROTOCOLS, type RpcProtocol } from "./support/clients.js";
import { newPartnerKey, searchBody, startHarness, type Harness } from "./support/harness.js";
import { openSession, search, start, type SessionDriver } from "./support/session-client.js";

async function started(h: Harness, protocol: RpcProtocol, key: string, botId: string): Promise<SessionDriver> {
  const s = openSession(clientsFor(protocol, h.url).session, key);
  s.send(start("s", botId));
  expect((await s.next()).result.case).toBe("started");
  return s;
}

describe.each(HTTP2_PROTOCOLS)("%s", (protocol) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { SESSION_MAX_PER_PARTNER: "3", DIRECTORY_CACHE_TTL_MS: "1000" } });
  });
  afterAll(() => h.close());

  it("refuses a partner's session past its cap with too_many_sessions; other partners are not affected; a closed session frees its place", async () => {
    const open = await Promise.all([1, 2, 3].map(() => started(h, protocol, h.keys.a, h.bots.a)));
    const refused = openSession(clientsFor(protocol, h.url).session, h.keys.a);
    refused.send(start("s", h.bots.a));
    const e = await expectRpcError(refused.rest(), Code.ResourceExhausted, "too_many_sessions");
    expect(Number(e.metadata.get("retry-after"))).toBe(1);
    const other = await started(h, protocol, h.keys.b, h.bots.b);
    open[0]!.close();
    expect(await open[0]!.rest()).toEqual([]);
    await expect.poll(() => h.gateway.sessions.size, { timeout: 2000 }).toBe(3);
    const again = await started(h, protocol, h.keys.a, h.bots.a);
    for (const s of [...open.slice(1), other, again]) {
      s.close();
      await s.rest();
    }
  });

  it("ends the open sessions of a partner whose key is rotated with unauthorized, at once on the change notice", async () => {
    const store = h.gateway.directory.store;
    const keep = await started(h, protocol, h.keys.b, h.bots.b);
    const s = await started(h, protocol, h.keys.a, h.bots.a);
    s.send(search("1", { query: searchBody(h.bots.a).query }));
    expect((await s.next()).result.case).toBe("searchAvailability");
    const partner = (await store.getPartner(h.partners.a))!;
    const rotated = newPartnerKey();
    const changed = performance.now();
    await store.putPartner({ ...partner, keyHash: hashPartnerKey(rotated) });
    try {
      await expectRpcError(s.rest(), Code.Unauthenticated, "unauthorized");
      expect(performance.now() - changed).toBeLessThan(1000);
      // The other partner's session goes on; the new key opens sessions.
      keep.send(search("2", { query: searchBody(h.bots.b).query }));
      expect((await keep.next()).result.case).toBe("searchAvailability");
      const fresh = await started(h, protocol, rotated, h.bots.a);
      fresh.close();
      await fresh.rest();
    } finally {
      await store.putPartner(partner);
      keep.close();
      await keep.rest();
    }
  });
});

describe("without change notices (in-memory directory)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ store: "memory", env: { DIRECTORY_CACHE_TTL_MS: "1000" } });
  });
  afterAll(() => h.close());

  it("a deleted partner's session ends with unauthorized within the cache TTL", async () => {
    const store = h.gateway.directory.store;
    const s = await started(h, "grpc", h.keys.a, h.bots.a);
    const partner = (await store.getPartner(h.partners.a))!;
    const changed = performance.now();
    await store.putPartner({ ...partner, keyHash: hashPartnerKey(newPartnerKey()) });
    try {
      await expectRpcError(s.rest(), Code.Unauthenticated, "unauthorized");
      expect(performance.now() - changed).toBeLessThan(1500);
    } finally {
      await store.putPartner(partner);
    }
  });
});

describe("lifetime and idle clock", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { SESSION_IDLE_SECONDS: "1", SESSION_MAX_LIFETIME_SECONDS: "2", RATE_LIMIT_PER_SECOND: "5", RATE_LIMIT_BURST: "5" } });
  });
  afterAll(() => h.close());

  it("ends a busy session at its maximum lifetime with session_expired", async () => {
    const s = await started(h, "grpc", h.keys.a, h.bots.a);
    const opened = performance.now();
    const keepBusy = setInterval(() => s.send(search(`op-${performance.now()}`, { query: searchBody(h.bots.a).query })), 300);
    try {
      const answers: string[] = [];
      const e = await expectRpcError(
        (async () => {
          for (;;) answers.push((await s.next()).result.case ?? "");
        })(),
        Code.DeadlineExceeded,
        "session_expired",
      );
      expect(e.rawMessage).toContain("open a new session");
      expect(answers.filter((a) => a === "searchAvailability").length).toBeGreaterThan(3);
      const lived = performance.now() - opened;
      expect(lived).toBeGreaterThan(1900);
      expect(lived).toBeLessThan(4000);
    } finally {
      clearInterval(keepBusy);
    }
  });

  it("empty messages do not keep a session alive, and are charged to the rate limit", async () => {
    const s = await started(h, "grpc", h.keys.b, h.bots.b);
    const opened = performance.now();
    const codes: string[] = [];
    let n = 0;
    const keepAlive = setInterval(() => s.send({ requestId: `empty-${n++}` }), 50);
    try {
      const e = await expectRpcError(
        (async () => {
          for (;;) {
            const a = await s.next();
            codes.push(a.result.case === "error" ? a.result.value.code : (a.result.case ?? ""));
          }
        })(),
        Code.DeadlineExceeded,
        "session_idle",
      );
      expect(e).toBeDefined();
      expect(performance.now() - opened).toBeLessThan(2500);
      expect(codes).toContain("invalid_request");
      expect(codes).toContain("rate_limited");
    } finally {
      clearInterval(keepAlive);
    }
  });
});
