import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildBanner } from '../../scripts/build-banner.mjs';

/** The budget of the banner script, gzipped (level 9, as CDNs serve it). */
const BUDGET_BYTES = 15 * 1024;

describe('banner script size', () => {
  it(`builds to at most ${BUDGET_BYTES} bytes gzipped, dependency-free`, async () => {
    const code = await buildBanner({ write: false });
    const gzipped = gzipSync(code, { level: 9 }).length;
    // Logged so CI history shows the trend; the numbers hold no personal data.
    process.stdout.write(`banner.js: ${code.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET_BYTES})\n`);
    expect(gzipped).toBeLessThanOrEqual(BUDGET_BYTES);
    // One self-contained IIFE: no imports, no requires, no source map reference.
    expect(code).not.toMatch(/\bimport\s*\(|\brequire\(|sourceMappingURL/);
  });

  it('type-checks against the DOM library (esbuild only strips types)', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
    await expect(promisify(execFile)(process.execPath, [tsc, '-p', 'banner/tsconfig.json'], { cwd: root })).resolves.toBeDefined();
  }, 60_000);
});
