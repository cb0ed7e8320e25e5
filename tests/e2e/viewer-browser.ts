/**
 * @module tests/e2e/viewer-browser — opens pages in Debian's headless Chromium (/usr/bin/chromium,
 * installed by scripts/setup.sh) through playwright-core, offline: no sandbox (we run as root),
 * no GPU, no QUIC, no first-run, background networking, component updates or sync, and a new
 * empty profile directory per browser. Every request the page makes is recorded, so a test can
 * check that the viewer fetched nothing but its own file. Shared by the viewer tests and
 * bench/viewer-load.bench.ts.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Why the browser tests cannot run here, or undefined. */
export function browserSkipReason(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `needs ${CHROMIUM} (Debian's chromium package; scripts/setup.sh installs it)`;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "beetrace-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface OpenedPage {
  page: Page;
  /** URLs requested besides the page's own file */
  requests: string[];
  /** Uncaught errors and console errors of the page */
  errors: string[];
  /** From navigation start until body[data-ready] */
  wallMs: number;
  /** The page's own measure (body[data-load-ms]): script start to ready */
  loadMs: number;
}

/** Opens `file` (plus `hash`), waits until the viewer says it is ready. */
export async function openViewer(b: Browser, file: string, hash = "", timeoutMs = 60_000): Promise<OpenedPage> {
  const page = await b.context.newPage();
  const url = `file://${file}`;
  const requests: string[] = [];
  const errors: string[] = [];
  page.on("request", (r) => {
    if (r.url().split("#")[0] !== url) requests.push(r.url());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  const t0 = performance.now();
  await page.goto(url + hash);
  await page.waitForSelector("body[data-ready]", { timeout: timeoutMs, state: "attached" });
  const wallMs = performance.now() - t0;
  const ready = await page.getAttribute("body", "data-ready");
  if (ready !== "1") throw new Error(`viewer did not load: ${await page.textContent("#overview")}`);
  return { page, requests, errors, wallMs, loadMs: Number(await page.getAttribute("body", "data-load-ms")) };
}
