import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { buildServer } from '../../src/server/index.js';
import { buildAdmin } from '../../scripts/build-web.mjs';
import { RUN_BROWSER_TESTS, VIEWPORT, checkPage, expectAccessible, launchChromium } from '../support/browser.js';
import { custodianFixture } from '../support/stores.js';

// A real browser against a real server: the admin console, signed in with pasted API keys, driven by the keyboard
// where it matters (sign-in, decisions), checking that the strict CSP lets the built page run. Every page is checked
// with axe-core (WCAG 2.2 A/AA) and screenshotted into artifacts/screenshots/ (docs/ui.md).

/** The few browser globals the page functions use (this test compiles against Node's lib, without the DOM). */
interface BrowserGlobals {
  document: { activeElement: { tagName: string; getAttribute(name: string): string | null } | null };
  getComputedStyle(e: unknown): { outlineStyle: string };
  sessionStorage: { length: number };
  localStorage: { length: number };
}

describe.skipIf(!RUN_BROWSER_TESTS)('admin console in Chromium', () => {
  let custodian: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let browser: Browser;
  let base: string;
  let webDir: string;
  let adminKey: string;
  let analystKey: string;
  const ids: { approve: string; reject: string; access: string } = { approve: '', reject: '', access: '' };

  beforeAll(async () => {
    webDir = await mkdtemp(join(tmpdir(), 'custodian-admin-web-'));
    await buildAdmin({ outDir: webDir });
    process.env.CUSTODIAN_ADMIN_WEB_DIR = webDir;
    const f = await custodianFixture('sqlite');
    custodian = f.custodian;
    cleanup = f.cleanup;
    await custodian.datamap.put(parse(await readFile('examples/shop/custodian.yaml', 'utf8')), { actor: 'test' });
    adminKey = (await custodian.apiKeys.create({ name: 'privacy-team', scopes: ['admin'], createdBy: 'test' })).secret;
    analystKey = (await custodian.apiKeys.create({ name: 'analyst', scopes: ['consent:read', 'audit:read', 'datamap:read'], createdBy: 'test' })).secret;
    // Erasure waits for approval; an authenticated access request goes straight to work.
    ids.approve = (await custodian.requests.create({ type: 'erasure', jurisdiction: 'EU', identities: { userId: 'u-approve' }, authenticated: true, actor: 'test' })).id;
    ids.reject = (await custodian.requests.create({ type: 'erasure', jurisdiction: 'EU', identities: { userId: 'u-reject' }, authenticated: true, actor: 'test' })).id;
    ids.access = (await custodian.requests.create({ type: 'access', jurisdiction: 'EU', identities: { userId: 'u-access' }, authenticated: true, actor: 'test' })).id;
    await custodian.ledger.record([{ subjectId: 'u-access', purpose: custodian.purposes.list()[0]!.key, decision: 'granted', method: 'api' }], { actor: 'test' });
    app = await buildServer(custodian, { logLevel: false });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    delete process.env.CUSTODIAN_ADMIN_WEB_DIR;
    await browser?.close();
    await app?.close();
    await cleanup?.();
    await rm(webDir, { recursive: true, force: true });
  });

  /** Opens the console, types the key into the sign-in form with the keyboard and presses Enter; `atLogin` runs on the sign-in page. */
  const signIn = async (page: Page, key: string, atLogin?: () => Promise<void>) => {
    await page.goto(`${base}/admin`);
    await page.getByLabel('API key').waitFor();
    await atLogin?.();
    await page.keyboard.press('Tab'); // the skip link comes first
    await page.getByLabel('API key').focus();
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await page.locator('nav').waitFor();
  };
  const cspErrors = (page: Page) => {
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    return errors;
  };

  it('signs in with an admin key, works the request queue, verifies the audit log and shows the data map', async () => {
    const context = await browser.newContext({ locale: 'en-GB', acceptDownloads: true, viewport: VIEWPORT });
    const page = await context.newPage();
    const errors = cspErrors(page);
    try {
      await signIn(page, adminKey, () => checkPage(page, 'admin', 'login'));
      // The key lives in sessionStorage only.
      expect(await page.evaluate(() => [(globalThis as unknown as BrowserGlobals).sessionStorage.length, (globalThis as unknown as BrowserGlobals).localStorage.length])).toStrictEqual([1, 0]);
      const nav = page.locator('nav');
      expect(await nav.locator('a').allTextContents()).toStrictEqual(['Requests', 'Consent', 'Audit', 'Data map', 'Incidents']);
      expect(await nav.locator('a[aria-current="page"]').textContent()).toBe('Requests');

      // The queue: every created request, soonest deadline first.
      await page.locator('tr[data-request]').first().waitFor();
      const rows = await page.locator('tr[data-request]').evaluateAll((trs) => trs.map((tr) => (tr as unknown as { getAttribute(n: string): string }).getAttribute('data-request')));
      expect(new Set(rows)).toStrictEqual(new Set([ids.approve, ids.reject, ids.access]));
      expect(await page.locator(`tr[data-request="${ids.approve}"]`).textContent()).toMatch(/erasure.*awaiting_approval/);
      expect(await page.locator(`tr[data-request="${ids.approve}"]`).textContent()).toMatch(/\d+ d \d+ h left/);
      await checkPage(page, 'admin', 'requests');

      // A filter narrows the queue (server-side).
      await page.getByLabel('Type').selectOption('access');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('tr[data-request]').length === 1);
      await page.getByLabel('Type').selectOption('');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.locator(`tr[data-request="${ids.approve}"]`).waitFor();

      // Approve one from the keyboard.
      await page.locator(`tr[data-request="${ids.approve}"] a`).focus();
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: /Request: erasure/ }).waitFor();
      expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.activeElement?.tagName)).toBe('H1'); // focus moves to the new page
      await page.getByRole('heading', { level: 2, name: 'Progress across systems' }).waitFor();
      await page.getByText('No execution result yet').waitFor(); // from GET /v1/requests/{id}/tasks: nothing ran yet
      await checkPage(page, 'admin', 'request');
      await page.getByRole('button', { name: 'Approve' }).focus();
      expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).getComputedStyle((globalThis as unknown as BrowserGlobals).document.activeElement).outlineStyle)).not.toBe('none');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector('[data-field="status"]')?.textContent === 'in_progress');
      await page.locator('[role="status"]', { hasText: 'Request is now in_progress.' }).waitFor();
      expect((await custodian.requests.get(ids.approve)).status).toBe('in_progress');

      // Reject the other with a reason; without one the page says so first.
      await page.getByRole('link', { name: /Back to the queue/ }).click();
      await page.locator(`tr[data-request="${ids.reject}"] a`).click();
      await page.getByRole('button', { name: 'Reject' }).click();
      await page.getByRole('alert').filter({ hasText: 'Give a reason first.' }).waitFor();
      await page.getByLabel(/Reason/).fill('Identity could not be matched to an account.');
      await page.getByRole('button', { name: 'Reject' }).click();
      await page.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } }).document.querySelector('[data-field="status"]')?.textContent === 'rejected');
      expect((await custodian.requests.get(ids.reject)).status).toBe('rejected');
      expect((await custodian.requests.history(ids.reject)).at(-1)?.reason).toBe('Identity could not be matched to an account.');

      // Audit: entries of what just happened, and a verification with progress.
      await nav.getByRole('link', { name: 'Audit' }).click();
      await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
      await page.locator('td', { hasText: 'request.status_changed' }).first().waitFor();
      await page.getByRole('button', { name: 'Verify the log' }).click();
      await page.locator('[data-verified]').waitFor({ timeout: 15_000 });
      expect(await page.locator('[data-verify-results] li').allTextContents()).toStrictEqual([expect.stringMatching(/^The audit tree verifies/), expect.stringMatching(/^The consent tree verifies/)]);
      expect(await page.locator('#verify-progress').getAttribute('value')).toBe('2');
      await checkPage(page, 'admin', 'audit');

      // Consent: rates per purpose, and one subject's history with proofs.
      await nav.getByRole('link', { name: 'Consent' }).click();
      await page.getByRole('heading', { level: 1, name: 'Consent rates' }).waitFor();
      await page.locator('article[data-purpose] svg[role="img"]').first().waitFor();
      await page.getByLabel('Subject id').fill('u-access');
      await page.getByRole('button', { name: 'Look up' }).click();
      // The visible text ("Download") starts the accessible name (WCAG 2.5.3 Label in Name).
      await page.getByRole('button', { name: /^Download: Proof of consent, / }).first().waitFor();
      await checkPage(page, 'admin', 'consent');

      // Data map: the SVG graph (fetched with the key, shown through a blob: URL), flows, Art. 30 and DPIA.
      await nav.getByRole('link', { name: 'Data map' }).click();
      const img = page.locator('img.graph');
      await img.waitFor();
      expect(await img.getAttribute('src')).toMatch(/^blob:/);
      expect(await img.getAttribute('alt')).toMatch(/Data-flow graph: \d+ nodes/);
      await page.waitForFunction(() => {
        const i = (globalThis as unknown as { document: { querySelector(s: string): { naturalWidth: number } | null } }).document.querySelector('img.graph');
        return (i?.naturalWidth ?? 0) > 0;
      });
      await page.locator('tr[data-dpia]').first().waitFor();
      await checkPage(page, 'admin', 'datamap');
      const download = page.waitForEvent('download');
      await page.getByRole('button', { name: 'Download CSV' }).click();
      expect((await download).suggestedFilename()).toBe('ropa.csv');

      // Incidents: nothing open yet; the admin reports one with the form, submitted from the keyboard.
      await nav.getByRole('link', { name: 'Incidents' }).click();
      await page.getByRole('heading', { level: 1, name: 'Open incidents' }).waitFor();
      await page.getByText('Nothing to show.').waitFor();
      const form = page.locator('form[data-new-incident]');
      await form.getByRole('heading', { level: 2, name: 'Report an incident' }).waitFor();
      await form.getByRole('group', { name: 'Helpdesk' }).getByRole('checkbox', { name: 'helpdesk.tickets' }).waitFor(); // the data map's collections, by system
      await expectAccessible(page, 'admin incidents (none open, empty form)');
      await form.getByLabel('Title', { exact: true }).fill('Helpdesk export exposed');
      await form.getByLabel(/What happened/).fill('A misconfigured share exposed a helpdesk ticket export.');
      await form.getByRole('checkbox', { name: 'helpdesk.tickets' }).check();
      await form.getByLabel(/People affected/).fill('120');
      expect(await form.getByLabel(/Jurisdictions/).inputValue()).toBe('EU');
      const opened = page.waitForResponse((r) => r.url().endsWith('/v1/incidents') && r.request().method() === 'POST');
      await form.getByLabel(/People affected/).focus();
      await page.keyboard.press('Enter');
      expect((await opened).status()).toBe(201);
      await page.locator('[role="status"]', { hasText: 'Incident opened: Helpdesk export exposed.' }).waitFor();
      const incidentRow = page.locator('tbody tr', { hasText: 'Helpdesk export exposed' });
      await incidentRow.waitFor();
      // Detected now: the 72-hour clock of the supervisory authority (GDPR Art. 33(1)) has just started.
      // (The page's clock ticks every 30 s, so "now" may be a little before the detection: up to 3 d 0 h.)
      expect(await incidentRow.textContent()).toMatch(/^Helpdesk export exposedopen.* UTC(2 d 23|3 d 0) h left(authority|high)/);
      expect(await form.getByLabel('Title', { exact: true }).inputValue()).toBe(''); // the form is ready for the next one
      await checkPage(page, 'admin', 'incidents');
      const incidents = await custodian.incidents.list();
      expect(incidents).toHaveLength(1);
      expect(incidents[0]).toMatchObject({ title: 'Helpdesk export exposed', status: 'open', systems: ['support'], collections: ['helpdesk.tickets'], affectedCount: 120, jurisdictions: ['EU'], encrypted: false, source: 'manual' });
      expect(incidents[0]!.dataCategories.length).toBeGreaterThan(0); // derived from the collection's fields
      expect(incidents[0]!.createdBy).toMatch(/^key:/);
      // The audit log records who opened it.
      await nav.getByRole('link', { name: 'Audit' }).click();
      await page.getByLabel('Action').fill('incident.opened');
      await page.getByRole('button', { name: 'Apply' }).click();
      // The table re-renders when the filtered page arrives: wait for that state, not for the first matching cell.
      await expect.poll(async () => page.locator('tbody tr').count(), { timeout: 15_000 }).toBe(1);
      await page.locator('td', { hasText: 'incident.opened' }).first().waitFor();
      expect((await custodian.audit.list({ action: 'incident.opened' })).entries).toHaveLength(1);

      // A client route reloads into the same page (SPA fallback), still signed in within the tab.
      await page.goto(`${base}/admin/requests/${ids.reject}`);
      await page.getByRole('heading', { level: 1, name: /Request: erasure/ }).waitFor();
      expect(errors).toStrictEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a key without requests scopes sees no requests section; German UI; a wrong key is refused', async () => {
    const context = await browser.newContext({ locale: 'de-DE' });
    const page = await context.newPage();
    const errors = cspErrors(page);
    try {
      await page.goto(`${base}/admin`);
      await page.getByLabel('API-Schlüssel').fill('cst_wrong-key');
      await page.keyboard.press('Enter');
      await page.getByRole('alert').filter({ hasText: 'nicht akzeptiert' }).waitFor();
      await page.getByLabel('API-Schlüssel').fill(analystKey);
      await page.keyboard.press('Enter');
      const nav = page.locator('nav');
      await nav.waitFor();
      expect(await nav.locator('a').allTextContents()).toStrictEqual(['Einwilligungen', 'Prüfprotokoll', 'Datenlandkarte']);
      expect(await page.locator('html').getAttribute('lang')).toBe('de');
      // Even the requests address opens an allowed section instead.
      await page.goto(`${base}/admin/requests`);
      await page.getByRole('heading', { level: 1, name: 'Einwilligungsraten' }).waitFor();
      expect(await page.locator('tr[data-request]').count()).toBe(0);
      // The consent chart of the recorded grant is an inline SVG with a text title.
      const chart = page.locator('article[data-purpose] svg[role="img"]').first();
      await chart.waitFor();
      expect(await chart.locator('title').textContent()).toMatch(/^Zustimmungs- und Widerrufsrate/);
      await expectAccessible(page, 'admin consent (German)');
      expect(errors).toStrictEqual([]);
    } finally {
      await context.close();
    }
  });
});
