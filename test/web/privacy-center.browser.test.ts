import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../../scripts/build-web.mjs';
import type { Custodian } from '../../src/app/index.js';
import { RUN_BROWSER_TESTS, VIEWPORT, checkPage, expectAccessible, launchChromium } from '../support/browser.js';
import { codeFor, privacyCenterServer } from '../support/privacy-center.js';
import { shopDatabase, shopManifest, type ShopCustomer, type ShopTables } from '../support/shop.js';

// Real browser: Debian's Chromium through playwright-core (never `npx playwright install`). Under CI=true a
// missing Chromium fails the suite (launch throws); elsewhere the suite is skipped. Every page is checked with
// axe-core (WCAG 2.2 A/AA) and screenshotted into artifacts/screenshots/ (docs/ui.md).

/** The application the data map points at: one SQLite table of customers, found by e-mail address. */
const SHOP = { customers: ['name', 'city'] } satisfies ShopTables;
const PEOPLE: ShopCustomer[] = [
  { id: 'c-1', email: 'lin@example.com', name: 'Lin', city: 'Lisbon' },
  { id: 'c-2', email: 'sam@example.com', name: 'Sam', city: 'Porto' },
];

// The callbacks given to page.evaluate run in the browser. The Node tsconfig has no DOM library, so they are
// typed against these minimal shapes of what they use (module-scoped: nothing leaks into other files).
interface DomElement {
  readonly id: string;
  readonly tagName: string;
  readonly textContent: string | null;
  readonly outerHTML: string;
  readonly className: string;
  readonly labels?: ArrayLike<unknown> | null;
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
  matches(selector: string): boolean;
}
declare const document: {
  readonly documentElement: DomElement & { readonly lang: string };
  readonly activeElement: DomElement | null;
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): ArrayLike<DomElement>;
};
declare function getComputedStyle(el: DomElement): { readonly outlineStyle: string; readonly outlineWidth: string; readonly fontSize: string; readonly minWidth: string };

/** Problems an automated accessibility audit would flag first: unlabeled controls, nameless buttons, images without alt, duplicate ids. */
async function audit(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    if (!/^[a-z]{2}/.test(document.documentElement.lang)) problems.push('html has no lang');
    const named = (el: DomElement) => (el.getAttribute('aria-label') ?? '').trim() !== '' || (el.getAttribute('aria-labelledby') ?? '') !== '';
    for (const el of Array.from(document.querySelectorAll('input, select, textarea'))) {
      const labels = el.labels;
      if ((labels == null || labels.length === 0) && !named(el)) problems.push(`control without label: ${el.id || el.outerHTML.slice(0, 60)}`);
    }
    for (const el of Array.from(document.querySelectorAll('button, a[href]'))) {
      if ((el.textContent ?? '').trim() === '' && !named(el)) problems.push(`nameless ${el.tagName.toLowerCase()}`);
    }
    for (const img of Array.from(document.querySelectorAll('img'))) if (!img.hasAttribute('alt')) problems.push('img without alt');
    const ids = Array.from(document.querySelectorAll('[id]')).map((e) => e.id);
    for (const id of new Set(ids)) if (ids.filter((x) => x === id).length > 1) problems.push(`duplicate id ${id}`);
    if (document.querySelector('[role="status"][aria-live="polite"]') === null) problems.push('no live region');
    if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
    return problems;
  });
}

/** Presses Tab (at most `max` times) until the focused element matches `selector`; proves it is reachable by keyboard. */
async function tabTo(page: Page, selector: string, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) === true, selector)) return;
  }
  throw new Error(`${selector} not reachable with Tab`);
}

/** The focused element shows a visible focus indicator (outline of at least 2px). */
async function focusVisible(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (el === null) return false;
    const s = getComputedStyle(el);
    return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
  });
}

describe.skipIf(!RUN_BROWSER_TESTS)('privacy center in a real browser', () => {
  let custodian: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let browser: Browser;
  let base: string;
  let dir: string;
  const errors: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-pc-browser-'));
    const webDir = await buildWeb({ outDir: join(dir, 'web') });
    const configFile = join(dir, 'privacy-center.json');
    await writeFile(
      configFile,
      JSON.stringify({
        name: 'Example Shop',
        jurisdiction: 'US-CA',
        jurisdictions: ['US-CA', 'EU'],
        languages: ['en', 'de'],
        purposes: { 'marketing.advertising': { de: { title: 'Werbung', description: 'Anzeigen, die anhand Ihrer Daten ausgewählt werden.' } } },
      }),
    );
    ({ custodian, app, cleanup } = await privacyCenterServer('sqlite', { privacyCenter: { configFile, webDir, sessionMinutes: 30 } }));
    const shop = join(dir, 'shop.db');
    shopDatabase(shop, { ...SHOP, rows: { customers: PEOPLE } });
    const purposes = [{ key: 'accounts', title: 'Customer accounts', legalBasis: 'contract' }] as const;
    await custodian.datamap.put(shopManifest(shop, { ...SHOP, organization: 'Example Shop', purposes }), { actor: 'test' });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await cleanup?.();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function open(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/privacy`);
    return page;
  }

  /** Signs in with the keyboard only: Tab to the field, type, Enter; the code field gets the focus. `atCode` runs on the code page. */
  async function signIn(page: Page, email: string, atCode?: () => Promise<void>): Promise<void> {
    await page.waitForSelector('#email');
    await tabTo(page, '#email');
    expect(await focusVisible(page)).toBe(true);
    await page.keyboard.type(email);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#code');
    await page.waitForFunction(() => document.activeElement?.id === 'code');
    await atCode?.();
    await page.keyboard.type(await codeFor(custodian, email, { waitMs: 5000 }));
    await page.keyboard.press('Enter');
    await page.waitForSelector('#consent-title');
  }

  const subjectOf = (email: string) => `pc_${custodian.keyring.keyedDigest(`privacy-center:subject:email:${email}`)}`;
  const stateOf = async (email: string, purpose: string) => (await custodian.ledger.state(subjectOf(email))).find((s) => s.purpose === purpose);

  it('signs in, withdraws and grants, makes an access request and lists it — keyboard only', async () => {
    const context = await browser.newContext({ locale: 'en-GB', viewport: VIEWPORT });
    const page = await open(context);
    const csp = (await page.request.get(`${base}/privacy`)).headers()['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    await page.waitForSelector('#email');
    expect(await audit(page)).toEqual([]);
    await checkPage(page, 'privacy', 'sign-in');

    const email = 'ada@example.com';
    await signIn(page, email, () => checkPage(page, 'privacy', 'code'));
    expect(await page.textContent('[role="status"]')).toContain('signed in');
    expect(await page.$('#gpc-notice')).toBeNull();
    await page.waitForSelector('[data-purpose="analytics.reporting"]');
    expect(await audit(page)).toEqual([]);
    await checkPage(page, 'privacy', 'consent');
    // Plain-language description and legal basis are shown.
    const card = await page.textContent('[data-purpose="analytics.reporting"]');
    expect(card).toContain('Aggregate statistics');
    expect(card).toContain('GDPR Art. 6(1)(a)');

    await tabTo(page, 'button[aria-label="Allow: Analytics"]');
    expect(await focusVisible(page)).toBe(true);
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-purpose="analytics.reporting"] .state[data-status="granted"]');
    expect((await stateOf(email, 'analytics.reporting'))?.status).toBe('granted');
    await page.keyboard.press('Tab'); // Withdraw sits right after Allow, with the same look.
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Withdraw: Analytics');
    await page.keyboard.press('Space');
    await page.waitForSelector('[data-purpose="analytics.reporting"] .state[data-status="withdrawn"]');
    expect(await page.textContent('[role="status"]')).toContain('You withdrew: Analytics');
    const state = await stateOf(email, 'analytics.reporting');
    expect(state).toMatchObject({ status: 'withdrawn', method: 'privacy_center' });
    const [allow, withdraw] = await page.evaluate(() =>
      Array.from(document.querySelectorAll('[data-purpose="analytics.reporting"] button.choice')).map((b) => b.className + getComputedStyle(b).fontSize + getComputedStyle(b).minWidth),
    );
    expect(allow).toBe(withdraw);

    await tabToText(page, 'New request', 'Shift+Tab'); // the navigation sits above the main content
    await page.keyboard.press('Enter');
    await page.waitForSelector('#new-title');
    await page.waitForFunction(() => document.activeElement?.id === 'new-title');
    expect(await audit(page)).toEqual([]);
    await checkPage(page, 'privacy', 'new-request');
    await tabTo(page, '#type-access');
    expect(await page.isChecked('#type-access')).toBe(true);
    await tabToText(page, 'Send request');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#requests-title');
    await page.waitForSelector('table.requests tbody tr');
    expect(await audit(page)).toEqual([]);
    await expectAccessible(page, 'privacy requests (in progress)');
    const row = await page.textContent('table.requests tbody tr');
    expect(row).toContain('See my data');
    expect(row).toContain('In progress');
    expect(await page.textContent('[role="status"]')).toContain('Your request was received');
    const own = await custodian.requests.listByIdentity('email', email);
    expect(own).toHaveLength(1);
    expect(own[0]).toMatchObject({ type: 'access', channel: 'privacy_center', status: 'in_progress' });
    expect(await page.getAttribute(`tr[data-request="${own[0]!.id}"] td[data-status]`, 'data-status')).toBe('in_progress');

    await tabToText(page, 'Sign out', 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#email');
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  it('says the Global Privacy Control signal was applied when Sec-GPC: 1 is honoured, in German too', async () => {
    const context = await browser.newContext({ locale: 'de-DE', extraHTTPHeaders: { 'Sec-GPC': '1' } });
    const page = await open(context);
    expect(await page.getAttribute('html', 'lang')).toBe('de');
    await page.waitForSelector('#email');
    expect(await page.textContent('h1')).toBe('Anmelden');
    const email = 'grace@example.com';
    await signIn(page, email);
    await page.waitForSelector('#gpc-notice');
    // Applied on the visit itself, before any choice (11 CCR §7025(c)(1)), and said so with the purposes it opted out of.
    expect(await stateOf(email, 'marketing.advertising')).toMatchObject({ status: 'denied', method: 'gpc' });
    const notice = await page.textContent('#gpc-notice');
    expect(notice).toMatch(/Global-Privacy-Control-Signal Ihres Browsers wurde angewendet/);
    // The purpose's title is the branding file's German translation; the other has none and keeps the data map's.
    expect(notice).toContain('Durch das Signal abgelehnt: Werbung, Sale or sharing for targeted advertising.');
    expect(await page.textContent('[data-purpose="marketing.advertising"] h2')).toBe('Werbung');
    expect(await page.textContent('[data-purpose="marketing.advertising"] .state')).toBe('Durch das Global-Privacy-Control-Signal Ihres Browsers abgelehnt');
    expect(await audit(page)).toEqual([]);
    await checkPage(page, 'privacy', 'consent-gpc');
    // A choice made with the signal carries it; a second visit records nothing more.
    await page.click('button[aria-label="Erlauben: Analytics"]');
    await page.waitForSelector('[data-purpose="analytics.reporting"] .state[data-status="granted"]');
    expect((await custodian.ledger.history(subjectOf(email))).events.find((e) => e.purpose === 'analytics.reporting')?.gpc).toBe(true);
    await page.reload();
    await page.waitForSelector('#gpc-notice');
    expect((await custodian.ledger.history(subjectOf(email))).events.filter((e) => e.method === 'gpc')).toHaveLength(2);
    // Switching the language reloads the purpose texts: English falls back to the data map's title.
    await page.selectOption('#language', 'en');
    await page.waitForFunction(() => document.querySelector('[data-purpose="marketing.advertising"] h2')?.textContent === 'Advertising');
    expect(await page.textContent('#gpc-notice')).toContain('Opted out by the signal: Advertising, Sale or sharing for targeted advertising.');
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  it('offers the correctable fields of the data map as a list, and sends a correction — current values never shown', async () => {
    const context = await browser.newContext({ locale: 'en-GB', viewport: VIEWPORT });
    const page = await open(context);
    try {
      const email = 'sam@example.com';
      await signIn(page, email);
      await page.getByRole('button', { name: 'New request' }).click();
      await page.waitForSelector('#new-title');
      await page.check('#type-rectification');
      await page.waitForSelector('#correction-field');
      const options = await page.evaluate(() => Array.from(document.querySelectorAll('#correction-field option')).map((e) => [e.getAttribute('value'), e.textContent]));
      expect(options).toStrictEqual([
        ['', 'Choose what to correct'],
        ['shop_db.customers.email', 'E-mail address'],
        ['shop_db.customers.name', 'Name'],
        ['shop_db.customers.city', 'City'],
      ]);
      // Nothing of Sam's row is on the page.
      expect(await page.textContent('main')).not.toContain('Porto');
      expect(await audit(page)).toEqual([]);
      await checkPage(page, 'privacy', 'rectification');
      await page.selectOption('#correction-field', 'shop_db.customers.city');
      await page.fill('#correction-value', 'Braga');
      await page.getByRole('button', { name: 'Send request' }).click();
      await page.waitForSelector('table.requests tbody tr');
      const [request] = await custodian.requests.listByIdentity('email', email);
      expect(request).toMatchObject({ type: 'rectification' });
      expect(await custodian.requests.correctionsOf(request!.id)).toStrictEqual({ 'shop_db.customers.city': 'Braga' });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('a subject asks for an access package, and downloads it in the browser once it is ready', async () => {
    const context = await browser.newContext({ locale: 'en-GB', viewport: VIEWPORT, acceptDownloads: true });
    const page = await open(context);
    try {
      const email = 'lin@example.com';
      await signIn(page, email);
      await page.getByRole('button', { name: 'New request' }).click();
      await page.waitForSelector('#new-title');
      await page.check('#type-access');
      await page.getByRole('button', { name: 'Send request' }).click();
      await page.waitForSelector('table.requests tbody tr');
      const [request] = await custodian.requests.listByIdentity('email', email);
      expect(request).toMatchObject({ type: 'access', status: 'in_progress' });
      const row = page.locator(`tr[data-request="${request!.id}"]`);
      expect(await row.textContent()).toContain('Not ready yet');
      expect(await row.getByRole('button').count()).toBe(0);

      // The worker's job, in-process: read the subject's rows from every system of the data map.
      expect((await custodian.runner.run(request!.id, 'w-browser-test')).status).toBe('completed');
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.waitForSelector(`tr[data-request="${request!.id}"] td[data-status="completed"]`);
      const button = row.getByRole('button', { name: 'Download' });
      await button.waitFor();
      await checkPage(page, 'privacy', 'requests');

      // Download goes through a signed one-hour link; the browser saves the ZIP.
      const download = page.waitForEvent('download');
      await button.click();
      const file = await download;
      expect(file.suggestedFilename()).toBe(`custodian-${request!.id}.zip`);
      const zipPath = join(dir, 'downloaded.zip');
      await file.saveAs(zipPath);
      expect((await readFile(zipPath)).subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
      expect(execFileSync('unzip', ['-Z1', zipPath], { encoding: 'utf8' }).trim().split('\n').sort()).toStrictEqual(['csv/shop_db.customers.csv', 'package.json', 'report.html']);
      const pkg = JSON.parse(execFileSync('unzip', ['-p', zipPath, 'package.json'], { encoding: 'utf8' })) as { requestId: string; collections: Array<{ collection: string; rows: unknown[] }> };
      expect(pkg.requestId).toBe(request!.id);
      // Lin's row, and nobody else's.
      expect(pkg.collections.find((c) => c.collection === 'shop_db.customers')?.rows).toStrictEqual([{ id: 'c-1', email, name: 'Lin', city: 'Lisbon' }]);
      expect(JSON.stringify(pkg)).not.toContain('sam@example.com');
      // The download is on record.
      expect((await custodian.audit.list({ action: 'request.package_downloaded' })).entries.length).toBeGreaterThan(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  /** Presses Tab (or Shift+Tab) until a control whose text is `text` has the focus. */
  async function tabToText(page: Page, text: string, key: 'Tab' | 'Shift+Tab' = 'Tab'): Promise<void> {
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press(key);
      if (await page.evaluate((t) => document.activeElement?.textContent?.trim() === t, text)) return;
    }
    throw new Error(`"${text}" not reachable with Tab`);
  }
});
