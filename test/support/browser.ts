/**
 * Debian's chromium driven by playwright-core (no browser download): a fresh profile, HTTPS errors
 * ignored (the test CA is not in the browser's store), CSP bypassed only so that axe-core can be injected.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface TestBrowser {
  context: BrowserContext;
  shots: string;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'fleethub-chromium-'));
  const shots = mkdtempSync(join(tmpdir(), 'fleethub-portal-screenshots-'));
  // A fresh profile directory (--user-data-dir) through playwright's persistent context.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    ignoreHTTPSErrors: true,
    bypassCSP: true,
    viewport: { width: 1280, height: 900 },
  });
  console.log(`portal screenshots: ${shots}`);
  return {
    context,
    shots,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function axeViolations(page: Page): Promise<string[]> {
  // Injected once per document (the portal navigates by hash, so one injection serves many pages).
  if (!(await page.evaluate(() => typeof (globalThis as any).axe !== 'undefined'))) await page.addScriptTag({ content: AXE });
  const result = (await page.evaluate(() => (globalThis as any).axe.run(document, { resultTypes: ['violations'] }))) as { violations: { id: string; impact: string; nodes: { target: string[] }[] }[] };
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** Presses Tab until `target` has the focus (as a keyboard-only user reaches it), then Enter. */
export async function tabTo(page: Page, target: Locator, press = 'Enter', max = 80): Promise<void> {
  const handle = await target.elementHandle();
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((el) => document.activeElement === el, handle)) {
      if (press) await page.keyboard.press(press);
      return;
    }
  }
  throw new Error(`not reachable with Tab: ${target}`);
}
