import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

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
