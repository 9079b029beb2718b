import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/core/index.js';

describe('error codes', () => {
  it('are each documented in docs/errors.md with their HTTP status, and nothing else is', async () => {
    const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      expect(doc, `${code} missing from docs/errors.md`).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`));
    }
    const documented = [...doc.matchAll(/\|\s*`(CST_ERR_[A-Z_]+)`\s*\|/g)].map((m) => m[1]);
    expect(documented.filter((c) => !(c! in ERROR_CODES))).toEqual([]);
  });

  it('follow the CST_ERR_<AREA>_<WHAT> pattern and map to 4xx or 5xx', () => {
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^CST_ERR_[A-Z]+(_[A-Z]+)*$/);
      expect(status >= 400 && status < 600).toBe(true);
    }
  });
});
