#!/usr/bin/env node
// Builds the web apps (Vite + Preact) served by the server: the privacy center (web/privacy → dist/web/privacy,
// at /privacy) and the admin console (web/admin → dist/web/admin, at /admin). `npm run build` runs it after tsc;
// the browser tests build one app, possibly into a temp folder, with buildWeb() / buildAdmin().
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { build } from 'vite';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WEB_ROOT = join(ROOT, 'web/privacy');
export const WEB_OUTDIR = join(ROOT, 'dist/web/privacy');
export const ADMIN_ROOT = join(ROOT, 'web/admin');
export const ADMIN_OUTDIR = join(ROOT, 'dist/web/admin');

/**
 * Builds one app. No inline scripts or styles (the server's CSP forbids them): one module script, one stylesheet.
 * @param {string} root source folder
 * @param {string} base URL path the server serves it under
 * @param {string} outDir output folder
 * @returns {Promise<string>} the output folder
 */
async function buildApp(root, base, outDir) {
  await build({
    root,
    base,
    configFile: false,
    logLevel: 'warn',
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2020',
      modulePreload: { polyfill: false },
      assetsInlineLimit: 0,
      cssCodeSplit: false,
      sourcemap: false,
    },
  });
  return outDir;
}

/** Builds the privacy center. @param {{ outDir?: string }} [options] */
export function buildWeb(options = {}) {
  return buildApp(WEB_ROOT, '/privacy/', options.outDir ?? WEB_OUTDIR);
}

/** Builds the admin console. @param {{ outDir?: string }} [options] */
export function buildAdmin(options = {}) {
  return buildApp(ADMIN_ROOT, '/admin/', options.outDir ?? ADMIN_OUTDIR);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(`privacy center built into ${await buildWeb()}`);
  console.log(`admin console built into ${await buildAdmin()}`);
}
