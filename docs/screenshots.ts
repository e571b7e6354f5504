/**
 * Takes the README's screenshots of `/console` and `/docs`, at a desktop and
 * a phone width, from the gateway as `npm start` runs it (the built
 * `dist/main.js` with its demo platform and printed demo key), with Debian's
 * chromium driven by playwright-core. The console is shown after a caller
 * lookup, a two-day search and a booking, as a developer would leave it.
 *
 * `npm run screenshots` builds first and writes `docs/*.png`.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium, type Page } from "playwright-core";
import { chromium as chromiumProgram } from "../test/support/system-programs.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WIDTHS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } } as const;

interface Started {
  readonly url: string;
  readonly key: string;
  stop(): void;
}

/** `node dist/main.js` on a free port; resolves once it printed its demo key and address, and stops it if it never does. */
function startGateway(): Promise<Started> {
  const child = spawn(process.execPath, ["dist/main.js"], { cwd: ROOT, env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "inherit"] });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  };
  const started = new Promise<Started>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the gateway did not print its console address within 15 s")), 15_000);
    child.once("exit", (code) => reject(new Error(`the gateway exited (${code})`)));
    let key: string | undefined;
    createInterface({ input: child.stdout! }).on("line", (line) => {
      key ??= /^ {2}(sk_ptnr_\S+)$/.exec(line)?.[1];
      const url = /(http:\/\/\S+)\/console\b/.exec(line)?.[1];
      if (url !== undefined && key !== undefined) {
        clearTimeout(timer);
        resolve({ url, key, stop });
      }
    });
  });
  return started.catch((e: unknown) => {
    stop();
    throw e;
  });
}

async function useConsole(page: Page, key: string, days: string): Promise<void> {
  await page.getByLabel("Partner key", { exact: true }).fill(key);
  await page.getByLabel("Bot ID", { exact: true }).fill("bot_demo");
  await page.getByLabel("Caller phone", { exact: true }).fill("+14155550123");
  await page.getByRole("button", { name: "Look up caller" }).click();
  await page.getByRole("button", { name: "Use as customer" }).click();
  await page.getByLabel("Days").selectOption(days);
  await page.getByRole("button", { name: /^Search/ }).click();
  await page.locator("#search-status dt", { hasText: "Found" }).waitFor();
  await page.getByRole("button", { name: /^Book / }).first().click();
  await page.locator("#result dt", { hasText: "Booking ID" }).waitFor();
}

async function main(): Promise<void> {
  const gateway = await startGateway();
  try {
    const browser = await chromium.launch({
      executablePath: chromiumProgram().require(),
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    try {
      for (const [name, viewport] of Object.entries(WIDTHS)) {
        const page = await browser.newPage({ viewport });
        await page.goto(`${gateway.url}/console`);
        await useConsole(page, gateway.key, name === "desktop" ? "2" : "1");
        await page.screenshot({ path: `docs/console-${name}.png`, fullPage: true });
        await page.goto(name === "desktop" ? `${gateway.url}/docs#createBooking` : `${gateway.url}/docs`);
        await page.screenshot({ path: `docs/docs-${name}.png` });
        await page.close();
        process.stdout.write(`docs/console-${name}.png, docs/docs-${name}.png\n`);
      }
    } finally {
      await browser.close();
    }
  } finally {
    gateway.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`screenshots failed: ${(e as Error).message}\n`);
  process.exit(1);
});
