// An SVG plot as PNG, rendered by Debian's chromium through puppeteer-core (both already
// used for the console's browser tests): the one renderer here that draws SVG text as
// browsers do, with nothing new to install from npm.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Writes `svg` as a PNG at twice its size (sharp on high-density screens) to `path`.
 * Returns null when written, or why not (no chromium at that path, or it failed): the
 * SVG stands on its own.
 */
export async function svgToPng(svg: string, path: string, chromium: string): Promise<string | null> {
  if (!existsSync(chromium)) return `no chromium at ${chromium} (apt-get install -y chromium, or --chromium PATH)`;
  const size = /<svg[^>]*\swidth="(\d+)"[^>]*\sheight="(\d+)"/.exec(svg);
  if (!size) return 'the SVG has no width and height';
  const [width, height] = [Number(size[1]), Number(size[2])];
  const { default: puppeteer } = await import('puppeteer-core');
  const profile = mkdtempSync(join(tmpdir(), 'sluice-plot-'));
  try {
    const browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
      ],
    });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width, height, deviceScaleFactor: 2 });
      await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
      await page.screenshot({ path: path as `${string}.png`, clip: { x: 0, y: 0, width, height } });
      return null;
    } finally {
      await browser.close();
    }
  } catch (e) {
    return `chromium could not render it: ${(e as Error).message}`;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
