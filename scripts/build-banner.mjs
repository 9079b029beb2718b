#!/usr/bin/env node
// Builds the consent banner (banner/src/main.ts) into one minified, dependency-free script: dist/banner/banner.js.
// `npm run build` runs it after tsc; tests import buildBanner() to measure the gzipped size.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { URL, fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BANNER_ENTRY = join(ROOT, 'banner/src/main.ts');
export const BANNER_OUTFILE = join(ROOT, 'dist/banner/banner.js');

/**
 * Bundles and minifies the banner. With `write: false` nothing is written and the code is returned.
 * @param {{ outfile?: string, write?: boolean }} [options]
 * @returns {Promise<string>} the built code
 */
export async function buildBanner(options = {}) {
  const outfile = options.outfile ?? BANNER_OUTFILE;
  const write = options.write ?? true;
  if (write) await mkdir(dirname(outfile), { recursive: true });
  const result = await build({
    entryPoints: [BANNER_ENTRY],
    outfile,
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2020',
    platform: 'browser',
    legalComments: 'none',
    charset: 'utf8',
    write,
    logLevel: 'silent',
  });
  if (write) {
    const { readFile } = await import('node:fs/promises');
    return readFile(outfile, 'utf8');
  }
  return result.outputFiles[0].text;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { gzipSync } = await import('node:zlib');
  const code = await buildBanner();
  // The goal (docs/ui.md, test/banner/banner-size.test.ts): at most 15 KiB gzipped.
  console.log(`dist/banner/banner.js: ${code.length} bytes, ${gzipSync(code, { level: 9 }).length} bytes gzipped (goal: at most 15360)`);
}
