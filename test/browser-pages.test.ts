/**
 * The pages the gateway serves, used as people use them: a real headless
 * Chromium (Debian's `chromium`, driven by playwright-core) opens `/console`
 * from a running gateway, types into the labeled fields, looks a caller up,
 * searches, books, survives a lost answer, and every request it made is
 * recorded: all of them went to the gateway's own origin, and every call was
 * gRPC-Web. `/docs` loads nothing from elsewhere either. Neither page may log
 * a console error.
 */
import { chromium, type Browser, type ConsoleMessage, type Page, type Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CALLER } from "../src/demo/reference-platform.js";
import { startHarness, type Harness } from "./support/harness.js";
import { chromium as chromiumProgram } from "./support/system-programs.js";

const program = chromiumProgram();

const API = /^\/dialstack\.partner\.v1\.\w+\/\w+$/;
const GRPC_WEB = "application/grpc-web+proto";
/** A Monday: the reference platform has slots from 09:00 to 17:00 UTC. */
const DAY = "2030-01-07";

let h: Harness;
let browser: Browser | undefined;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

interface Visit {
  readonly page: Page;
  readonly requests: Request[];
  /** Console errors and uncaught exceptions. */
  readonly errors: string[];
}

/** Opens `path` in a new page that records every request and every error. */
async function visit(path: string, viewport = { width: 1280, height: 900 }): Promise<Visit> {
  browser ??= await chromium.launch({
    executablePath: program.require(),
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport });
  const requests: Request[] = [];
  const errors: string[] = [];
  page.on("request", (r) => requests.push(r));
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  const answer = await page.goto(h.url + path);
  expect(answer?.status()).toBe(200);
  return { page, requests, errors };
}

function expectOnlyOwnOrigin(requests: readonly Request[]): void {
  expect(requests.length).toBeGreaterThan(0);
  for (const r of requests) expect(new URL(r.url()).origin, r.url()).toBe(h.url);
}

/** The text of a fact ("Request ID", "Replayed", ...) shown in `region`. */
const fact = (page: Page, region: string, label: string) => page.locator(`${region} dt`, { hasText: new RegExp(`^${label}$`) }).locator("xpath=following-sibling::dd[1]");

describe.skipIf(program.skip)("/console in a browser", () => {
  it("looks up, searches and books over gRPC-Web, and a retry after a lost answer replays instead of booking twice", async () => {
    const { page, requests, errors } = await visit("/console");
    const name = `Ada Lovelace ${Date.now()}`;
    const phone = "+15550100123";

    await page.getByLabel("Partner key", { exact: true }).fill(h.keys.a);
    await page.getByLabel("Bot ID", { exact: true }).fill(h.bots.a);

    // Caller recognition, then the caller's details as the booking's customer.
    await page.getByLabel("Caller phone", { exact: true }).fill(DEMO_CALLER.phone);
    await page.getByRole("button", { name: "Look up caller" }).click();
    await expect.poll(() => fact(page, "#lookup-result", "Name").textContent()).toBe(DEMO_CALLER.name);
    await page.getByRole("button", { name: "Use as customer" }).click();
    expect(await page.getByLabel("Customer phone", { exact: true }).inputValue()).toBe(DEMO_CALLER.phone);
    await page.getByLabel("Customer name", { exact: true }).fill(name);
    await page.getByLabel("Customer phone", { exact: true }).fill(phone);

    // Two days of slots, streamed.
    await page.getByLabel("Day (UTC)").fill(DAY);
    await page.getByLabel("Days").selectOption("2");
    await page.getByRole("button", { name: /^Search/ }).click();
    await expect.poll(() => fact(page, "#search-status", "Found").textContent()).toMatch(/^\d+ free slots in 2 days$/);
    expect(await page.locator("#slots h3").allTextContents()).toEqual(["Monday, 7 January 2030", "Tuesday, 8 January 2030"]);
    const slots = page.getByRole("button", { name: /^Book / });
    expect(await slots.count()).toBeGreaterThan(2);

    // A booking: it reaches the platform once, with the typed name, and the page shows the platform's id.
    const bookingsBefore = h.platform.bookingsMade();
    await slots.nth(0).click();
    await expect.poll(() => fact(page, "#result", "Booking ID").textContent()).toMatch(/^bkg_/);
    const first = [...h.platform.bookings.values()].at(-1)!.booking as { id: string; customer: { name: string; phone: string }; start_at: string };
    expect(h.platform.bookingsMade()).toBe(bookingsBefore + 1);
    expect(first.customer).toEqual({ name, phone });
    expect(await fact(page, "#result", "Booking ID").textContent()).toBe(first.id);
    expect(await fact(page, "#result", "Status").textContent()).toBe("accepted");
    expect(await fact(page, "#result", "Starts").textContent()).toBe(first.start_at);
    expect(await fact(page, "#result", "Replayed").textContent()).toBe("no");

    // The network loses the answer to the next booking: the gateway booked, the page saw a failure.
    const webhooksBefore = h.platform.received.filter((r) => r.path === "/bookings").length;
    await page.route(
      "**/dialstack.partner.v1.BookingService/CreateBooking",
      async (route) => {
        await route.fetch();
        await route.abort("connectionreset");
      },
      { times: 1 },
    );
    const second = slots.nth(1);
    await second.click();
    await expect.poll(() => page.locator("#result h3").textContent()).toBe("Booking failed");
    expect(await fact(page, "#result", "Code").textContent()).toMatch(/^[a-z_]+$/);
    expect(h.platform.bookingsMade()).toBe(bookingsBefore + 2);
    const lost = [...h.platform.bookings.values()].at(-1)!.booking as { id: string };

    // The user clicks the same slot again: the same key is resent and the stored answer replayed.
    await second.click();
    await expect.poll(() => fact(page, "#result", "Booking ID").textContent()).toBe(lost.id);
    expect(await fact(page, "#result", "Replayed").textContent()).toMatch(/^yes/);
    expect(await fact(page, "#result", "Idempotency-Key").textContent()).toMatch(/resent after the failed attempt/);
    expect(h.platform.bookingsMade()).toBe(bookingsBefore + 2);
    expect(h.platform.received.filter((r) => r.path === "/bookings").length).toBe(webhooksBefore + 1);

    // Every call was gRPC-Web to the gateway's own origin; the rest was the page and its two files.
    expectOnlyOwnOrigin(requests);
    const calls = requests.filter((r) => API.test(new URL(r.url()).pathname));
    expect(calls.map((r) => new URL(r.url()).pathname.split("/")[2])).toEqual(["LookupCustomer", "StreamAvailability", "CreateBooking", "CreateBooking", "CreateBooking"]);
    for (const r of calls) {
      expect(r.method()).toBe("POST");
      expect(r.headers()["content-type"]).toBe(GRPC_WEB);
    }
    expect(requests.filter((r) => !calls.includes(r)).map((r) => `${r.method()} ${r.resourceType()}`)).toEqual(["GET document", "GET stylesheet", "GET script"]);

    // A fresh key per booking, the same key for the retry; the partner key only ever in the Authorization header.
    const keys = calls.filter((r) => r.url().endsWith("/CreateBooking")).map((r) => r.headers()["idempotency-key"]);
    expect(keys[0]).not.toBe(keys[1]);
    expect(keys[2]).toBe(keys[1]);
    for (const r of calls) expect(r.headers().authorization).toBe(`Bearer ${h.keys.a}`);

    // The request id shown is the one the gateway answered with.
    const replayAnswer = await calls.at(-1)!.response();
    expect(await fact(page, "#result", "Request ID").textContent()).toBe(replayAnswer!.headers()["x-request-id"]);

    // The key is kept nowhere but in the field: not in storage, a cookie, the URL or the calls list.
    expect(await page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")).toEqual([0, 0, ""]);
    expect(page.url()).toBe(`${h.url}/console`);
    expect(await page.locator("body").innerText()).not.toContain(h.keys.a);

    // The only console error is the browser's report of the connection the test reset.
    expect(errors.filter((e) => !/net::ERR_CONNECTION_RESET/.test(e))).toEqual([]);
    expect(errors).toHaveLength(1);
    await page.close();
  });

  it("shows the gateway's error code and message", async () => {
    const { page, errors } = await visit("/console");
    await page.getByLabel("Partner key", { exact: true }).fill(h.keys.a);
    await page.getByLabel("Bot ID", { exact: true }).fill(h.bots.b); // partner B's bot
    await page.getByLabel("Day (UTC)").fill(DAY);
    await page.getByRole("button", { name: /^Search/ }).click();
    await expect.poll(() => fact(page, "#search-status", "Code").textContent()).toBe("bot_not_found");
    expect(await fact(page, "#search-status", "Status").textContent()).toBe("not_found");
    expect(await fact(page, "#search-status", "Message").textContent()).toContain(h.bots.b);
    expect(await fact(page, "#search-status", "Request ID").textContent()).toMatch(/\S/);
    expect(await page.getByRole("button", { name: /^Book / }).count()).toBe(0);

    await page.getByLabel("Partner key", { exact: true }).fill("sk_ptnr_not_a_key");
    await page.getByLabel("Caller phone", { exact: true }).fill(DEMO_CALLER.phone);
    await page.getByRole("button", { name: "Look up caller" }).click();
    await expect.poll(() => fact(page, "#lookup-result", "Code").textContent()).toBe("unauthorized");
    expect(errors).toEqual([]);
    await page.close();
  });

  it("after a final refusal (the slot is taken) the next click is a new booking with a new key, not a replay of the refusal", async () => {
    const { page, requests, errors } = await visit("/console");
    await page.getByLabel("Partner key", { exact: true }).fill(h.keys.a);
    await page.getByLabel("Bot ID", { exact: true }).fill(h.bots.a);
    await page.getByLabel("Customer name", { exact: true }).fill(`Grace Hopper ${Date.now()}`);
    await page.getByLabel("Customer phone", { exact: true }).fill("+15550100199");
    await page.getByLabel("Day (UTC)").fill("2030-01-08");
    await page.getByRole("button", { name: /^Search/ }).click();
    const slot = page.getByRole("button", { name: /^Book / }).last();
    await slot.waitFor();
    const webhooksBefore = h.platform.received.filter((r) => r.path === "/bookings").length;

    await slot.click();
    await expect.poll(() => fact(page, "#result", "Booking ID").textContent()).toMatch(/^bkg_/);
    for (let i = 0; i < 2; i++) {
      // The same slot again: the platform refuses it, as taken, each time asked anew.
      // (A click shows "Booking …" at once, so the poll below sees this click's answer.)
      await slot.click();
      await expect.poll(() => fact(page, "#result", "Code").textContent()).toBe("slot_unavailable");
      expect(await fact(page, "#result", "Replayed").textContent()).toBe("no");
      expect(await page.locator("#result").innerText()).toContain("The answer is final");
    }
    const keys = requests.filter((r) => r.url().endsWith("/CreateBooking")).map((r) => r.headers()["idempotency-key"]);
    expect(new Set(keys).size).toBe(3);
    expect(h.platform.received.filter((r) => r.path === "/bookings").length).toBe(webhooksBefore + 3);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("phone fields take E.164 only, as the gateway does", async () => {
    const { page, errors } = await visit("/console");
    for (const label of ["Caller phone", "Customer phone"]) {
      const input = page.getByLabel(label, { exact: true });
      const id = await input.getAttribute("id");
      for (const [phone, valid] of [["+15551234567", true], ["+4930123456789", true], ["5551234567", false], ["+05551234567", false], ["+1 555 123 4567", false], ["+1234567", false]] as const) {
        await input.fill(phone);
        expect({ label, phone, valid: await page.evaluate(`document.getElementById(${JSON.stringify(id)}).validity.valid`) }).toEqual({ label, phone, valid });
      }
    }
    expect(errors).toEqual([]);
    await page.close();
  });

  it("labels every input and names every control", async () => {
    const { page, errors } = await visit("/console", { width: 390, height: 844 });
    // Evaluated in the page (a string: this file is compiled without the DOM's types).
    const unlabeled = await page.evaluate('[...document.querySelectorAll("input, select")].filter((e) => e.labels.length !== 1).map((e) => e.id)');
    expect(unlabeled).toEqual([]);
    expect(await page.locator("input[name], select[name]").count()).toBe(0);
    expect(await page.locator("[onclick], a[href^='javascript:'], div[role=button]").count()).toBe(0);
    // Nothing is wider than a phone's screen.
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe.skipIf(program.skip)("/docs in a browser", () => {
  it.each([
    ["a desktop", { width: 1280, height: 900 }],
    ["a phone", { width: 390, height: 844 }],
  ])("loads nothing from elsewhere, logs no error and fits %s", async (_, viewport) => {
    const { page, requests, errors } = await visit("/docs", viewport);
    await page.getByRole("navigation").getByRole("link", { name: "Create booking" }).click();
    expect(page.url()).toBe(`${h.url}/docs#createBooking`);
    expect(await page.getByRole("heading", { name: "Create booking" }).isVisible()).toBe(true);
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(viewport.width);
    expectOnlyOwnOrigin(requests);
    expect(requests.map((r) => r.resourceType())).toEqual(["document"]);
    expect(errors).toEqual([]);
    await page.close();
  });
});
