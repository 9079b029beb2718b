import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

// Shared by the real-browser tests: Debian's Chromium, never a downloaded one (never `npx playwright install`).

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium';
/** Flags that keep Chromium quiet and sandbox-free in a container (docs: /work/shared/STACK.md). */
export const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Whether the browser is installed here. */
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
/** Whether browser tests run: always under CI (a missing browser then fails in {@link launchChromium}), else when installed. */
export const RUN_BROWSER_TESTS = HAVE_CHROMIUM || process.env.CI === 'true';

/** Launches headless Chromium; throws (never skips) when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: install the Debian chromium package (never npx playwright install)`);
  return chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, headless: true });
}

/** The WCAG levels the accessibility checks hold every page to (axe-core tags). */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] as const;
/** Impacts that fail a test; `minor` and `moderate` findings are printed only. */
const FAILING_IMPACTS = new Set(['serious', 'critical']);
const AXE_SOURCE = fileURLToPath(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url));
let axeSource: string | undefined;

/** One axe-core rule that failed on a page: the rule, how bad, the elements, and the advice. */
export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly helpUrl: string;
  readonly targets: string[];
}

/**
 * Runs axe-core on the page as it is now and returns its WCAG 2.2 A/AA violations.
 * The pages forbid inline scripts (CSP `script-src 'self'`), so axe is not added as a `<script>` element: its source is
 * evaluated through the DevTools protocol (`Runtime.evaluate`), which CSP does not govern, so the page keeps its real
 * policy and a CSP regression still shows in the tests.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= await readFile(AXE_SOURCE, 'utf8');
  if (!(await page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe === 'object'))) await page.evaluate(axeSource);
  return page.evaluate(async (tags) => {
    interface AxeRun {
      violations: Array<{ id: string; impact?: string | null; help: string; helpUrl: string; nodes: Array<{ target: unknown[] }> }>;
    }
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<AxeRun> } }).axe;
    const results = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return results.violations.map((v) => ({ id: v.id, impact: v.impact ?? null, help: v.help, helpUrl: v.helpUrl, targets: v.nodes.map((n) => n.target.map(String).join(' ')) }));
  }, [...AXE_TAGS]);
}

/**
 * Fails (throws) when axe-core finds a serious or critical WCAG 2.2 A/AA violation on the page; the message names
 * each rule, its elements and the advice. Lesser findings are printed, not failed.
 */
export async function expectAccessible(page: Page, where: string): Promise<void> {
  const violations = await axeViolations(page);
  const line = (v: AxeViolation) => `  ${v.id} (${v.impact ?? 'unknown'}): ${v.help} [${v.helpUrl}]\n${v.targets.map((t) => `    at ${t}`).join('\n')}`;
  const failing = violations.filter((v) => FAILING_IMPACTS.has(v.impact ?? ''));
  const minor = violations.filter((v) => !FAILING_IMPACTS.has(v.impact ?? ''));
  if (minor.length > 0) process.stdout.write(`axe on ${where}: ${minor.length} minor finding(s)\n${minor.map(line).join('\n')}\n`);
  if (failing.length > 0) throw new Error(`axe on ${where}: ${failing.length} serious or critical WCAG violation(s)\n${failing.map(line).join('\n')}`);
}

/** Where {@link screenshot} writes: test artifacts, not committed (see docs/ui.md). */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url));
/** The viewport of every page the browser tests open, so that screenshots are comparable. */
export const VIEWPORT = { width: 1024, height: 700 } as const;

/** Saves the top of the page as `artifacts/screenshots/<face>-<page>.png` (scrolled up first); returns the path. */
export async function screenshot(page: Page, face: 'banner' | 'privacy' | 'admin', name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${face}-${name}.png`);
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
  await page.screenshot({ path, animations: 'disabled', caret: 'hide' });
  return path;
}

/** Checks the page with axe ({@link expectAccessible}) and saves its screenshot ({@link screenshot}). */
export async function checkPage(page: Page, face: 'banner' | 'privacy' | 'admin', name: string): Promise<void> {
  await screenshot(page, face, name);
  await expectAccessible(page, `${face} ${name}`);
}
