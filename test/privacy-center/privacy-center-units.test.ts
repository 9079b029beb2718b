import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCustodianError } from '../../src/core/index.js';
import { DEFAULT_BRANDING, MemorySessionStore, loadBranding, resolveBranding } from '../../src/privacy-center/index.js';

describe('privacy center branding', () => {
  it('fills defaults and keeps the given fields', () => {
    expect(resolveBranding(undefined)).toStrictEqual(DEFAULT_BRANDING);
    const b = resolveBranding({ name: 'Example Shop', colors: { primary: '#000000' }, jurisdictions: ['US-CA', 'EU'], languages: ['de'] });
    expect(b).toMatchObject({ name: 'Example Shop', jurisdiction: 'US-CA', jurisdictions: ['US-CA', 'EU'], languages: ['de'], defaultLanguage: 'de' });
    expect(b.colors).toStrictEqual({ ...DEFAULT_BRANDING.colors, primary: '#000000' });
  });

  it('refuses a file that does not match, naming the fields (colours cannot smuggle CSS)', async () => {
    for (const bad of [{ colors: { primary: 'red;}body{display:none' } }, { logoUrl: 'javascript:alert(1)' }, { languages: ['fr'] }, { unknown: 1 }, { jurisdiction: 'europe' }]) {
      let err: unknown;
      try {
        resolveBranding(bad);
      } catch (e) {
        err = e;
      }
      expect(isCustodianError(err, 'CST_ERR_CONFIG'), JSON.stringify(bad)).toBe(true);
    }
    const dir = await mkdtemp(join(tmpdir(), 'custodian-branding-'));
    try {
      await writeFile(join(dir, 'bad.json'), '{');
      await expect(loadBranding(join(dir, 'bad.json'))).rejects.toMatchObject({ code: 'CST_ERR_CONFIG' });
      await expect(loadBranding(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'CST_ERR_CONFIG' });
      await expect(loadBranding(undefined)).resolves.toBe(DEFAULT_BRANDING);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('MemorySessionStore', () => {
  it('drops expired entries and stays within its bound', async () => {
    let now = 0;
    const store = new MemorySessionStore({ now: () => now, maxEntries: 3 });
    const session = (i: number, expiresAt: number) => ({ tokenHash: `h${i}`, email: 'a@example.com', subjectId: 's', userId: null, createdAt: now, expiresAt });
    for (let i = 0; i < 5; i++) await store.putSession(session(i, 100));
    expect(await store.getSession('h0')).toBeUndefined();
    expect(await store.getSession('h4')).toBeDefined();
    now = 200;
    await store.putSession(session(9, 300));
    expect(await store.getSession('h4')).toBeUndefined();
    expect(await store.getSession('h9')).toBeDefined();
  });
});
