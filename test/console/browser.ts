// Driving the web console in a real browser, for the browser test and the end-to-end test:
// Debian's chromium through puppeteer-core (never a browser an npm install script fetched).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** The DOM as page.evaluate callbacks use it (the project compiles without the DOM lib). */
export interface El {
  textContent: string | null;
  innerText: string;
  dataset: Record<string, string | undefined>;
  querySelector(s: string): El | null;
  querySelectorAll(s: string): ArrayLike<El> & Iterable<El>;
  _kept?: boolean;
}
declare const location: { hash: string };

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why a browser test cannot run here, or false. */
export const noChromium: string | false = existsSync(CHROMIUM)
  ? false
  : `no chromium at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH`;

/** A headless chromium with a profile of its own (removed on close); `args` adds flags. */
export async function launch(args: readonly string[] = []): Promise<{ browser: Browser; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      ...args,
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface Opened {
  page: Page;
  errors: string[];
}

/** A tab signed in with `token` through the sign-in form, collecting console errors and failed page scripts. */
export async function open(browser: Browser, base: string, token: string, width = 1280): Promise<Opened> {
  const page = await browser.newPage();
  await page.setViewport({ width, height: 900 });
  const errors: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => void errors.push(String(e)));
  await page.goto(`${base}/ui/`);
  await page.waitForSelector('#token', { visible: true });
  await page.type('#token', token);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#nav:not([hidden])');
  return { page, errors };
}

/** Goes to a page of the console (`#/jobs`) and waits for `ready`. */
export async function go(page: Page, hash: string, ready: string): Promise<void> {
  await page.evaluate((h) => void (location.hash = h), hash);
  await page.waitForSelector(ready, { timeout: 10000 });
}

/** The text of the first element matching `sel`, as the user sees it. */
export const text = (page: Page, sel: string): Promise<string> => page.$eval(sel, (e) => (e as unknown as El).innerText);
