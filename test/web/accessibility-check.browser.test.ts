import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_BROWSER_TESTS, axeViolations, expectAccessible, launchChromium } from '../support/browser.js';

// The accessibility checks of the browser tests pass only if axe really runs: this proves the shared helper finds
// known violations, also on a page whose CSP forbids inline scripts (as /privacy and /admin do).

describe.skipIf(!RUN_BROWSER_TESTS)('axe-core accessibility check helper', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  const BROKEN = `<!doctype html><html lang="en"><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self'; style-src 'unsafe-inline'"><title>t</title></head>
    <body><main><h1>Broken on purpose</h1><p style="color:#bbb;background:#fff">low contrast text</p><input type="text"><button></button></main></body></html>`;

  it('finds serious violations despite a strict CSP, and fails with the rule, the element and the advice', async () => {
    const page = await browser.newPage();
    try {
      await page.setContent(BROKEN);
      const ids = (await axeViolations(page)).map((v) => v.id).sort();
      expect(ids).toEqual(expect.arrayContaining(['button-name', 'color-contrast', 'label']));
      await expect(expectAccessible(page, 'broken page')).rejects.toThrow(/color-contrast \(serious\): Elements must meet minimum color contrast ratio thresholds \[https:\/\/[^\]]+\]\n\s+at p/);
    } finally {
      await page.close();
    }
  });

  it('passes a clean page', async () => {
    const page = await browser.newPage();
    try {
      await page.setContent('<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>Fine</h1><label for="a">Name</label><input id="a"></main></body></html>');
      await expectAccessible(page, 'clean page');
    } finally {
      await page.close();
    }
  });
});
