import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply } from 'fastify';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};
// At most five folders deep, no dot segments, no hidden files: nothing outside the built folder is reachable.
const ASSET_PATH = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\/){0,4}[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** A file of a built app, ready to send. */
export interface AppAsset {
  /** Path inside the app (`index.html` for client-side routes). */
  readonly asset: string;
  readonly type: string;
  readonly content: Buffer;
  /** Cache-Control: hashed assets forever, everything else revalidated. */
  readonly cacheControl: string;
}

/**
 * A single-page app built by scripts/build-web.mjs (`dist/web/<name>`), served read-only: only files of the
 * built folder with known types; any path without an extension is the app's index.html (client-side routes).
 */
export class StaticApp {
  readonly #dir: string | undefined;
  readonly #files = new Map<string, Buffer>();

  /** `configured` overrides the folder; otherwise dist/web/<name> beside the compiled server or under the repository. */
  constructor(name: string, configured?: string) {
    const candidates =
      configured !== undefined && configured !== ''
        ? [resolve(configured)]
        : [fileURLToPath(new URL(`../web/${name}/`, import.meta.url)), fileURLToPath(new URL(`../../dist/web/${name}/`, import.meta.url))];
    this.#dir = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  }

  /** Whether the app has been built. */
  get built(): boolean {
    return this.#dir !== undefined;
  }

  /** The file for a request path under the app's prefix, or undefined (answer 404). */
  async load(path: string): Promise<AppAsset | undefined> {
    if (this.#dir === undefined) return undefined;
    const asset = path !== '' && extname(path) !== '' ? path : 'index.html';
    if (!ASSET_PATH.test(asset) || asset.split('/').some((s) => s === '..' || s.startsWith('.'))) return undefined;
    const type = CONTENT_TYPES[extname(asset)];
    if (type === undefined) return undefined;
    let content = this.#files.get(asset);
    if (content === undefined) {
      try {
        content = await readFile(join(this.#dir, asset));
      } catch {
        return undefined;
      }
      this.#files.set(asset, content);
    }
    return { asset, type, content, cacheControl: asset.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache' };
  }
}

/** The headers every page of a built app carries, with its own Content-Security-Policy. */
export function pageHeaders(reply: FastifyReply, csp: string): FastifyReply {
  return reply
    .header('content-security-policy', csp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin')
    .header('permissions-policy', 'camera=(), microphone=(), geolocation=()');
}

export function notFound(reply: FastifyReply): FastifyReply {
  return reply.code(404).type('text/plain; charset=utf-8').send('Not found');
}
