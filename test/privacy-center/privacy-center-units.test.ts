import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCustodianError } from '../../src/core/index.js';
import { DEFAULT_BRANDING, MemorySessionStore, categoryLabel, loadBranding, purposeTextIn, resolveBranding } from '../../src/privacy-center/index.js';

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

describe('purpose translations in the branding file', () => {
  const analytics = { key: 'analytics.reporting', title: 'Analytics', description: 'Aggregate statistics.' };

  it('serves the asked language, then English, then the data map text — each text on its own', () => {
    const b = resolveBranding({
      purposes: {
        'analytics.reporting': { de: { title: 'Statistik' }, en: { description: 'Usage statistics, never per person.' } },
      },
    });
    expect(purposeTextIn(b, analytics, 'de')).toStrictEqual({ title: 'Statistik', description: 'Usage statistics, never per person.' });
    expect(purposeTextIn(b, analytics, 'en')).toStrictEqual({ title: 'Analytics', description: 'Usage statistics, never per person.' });
    expect(purposeTextIn(b, { key: 'personalize', title: 'Personalisation', description: '' }, 'de')).toStrictEqual({ title: 'Personalisation', description: '' });
    expect(purposeTextIn(DEFAULT_BRANDING, analytics, 'de')).toStrictEqual({ title: 'Analytics', description: 'Aggregate statistics.' });
    expect(Object.isFrozen(b.purposes)).toBe(true);
  });

  it('refuses translations it cannot use, saying where and why', () => {
    const issuesOf = (input: unknown) => {
      try {
        resolveBranding(input);
      } catch (e) {
        expect(isCustodianError(e, 'CST_ERR_CONFIG')).toBe(true);
        return (e as { details: { issues: Array<{ path: string; message: string }> } }).details.issues;
      }
      throw new Error('accepted');
    };
    expect(issuesOf({ purposes: { 'analytics.reporting': { fr: { title: 'Statistiques' } } } })).toStrictEqual([
      { path: 'purposes.analytics.reporting.fr', message: '"fr" is not a language of the privacy center (en, de)' },
    ]);
    expect(issuesOf({ purposes: { 'analytics.reporting': { de: {} } } })[0]).toMatchObject({ path: 'purposes.analytics.reporting.de', message: 'give a title, a description or both' });
    expect(issuesOf({ purposes: { 'analytics.reporting': { de: { title: '' } } } })[0]?.path).toBe('purposes.analytics.reporting.de.title');
    expect(issuesOf({ purposes: { 'analytics.reporting': { de: { title: 'x', name: 'y' } } } })[0]?.path).toBe('purposes.analytics.reporting.de');
    expect(issuesOf({ purposes: { 'Not A Key': { de: { title: 'x' } } } })[0]?.message).toContain('a purpose key');
    expect(issuesOf({ purposes: { 'analytics.reporting': { de: { title: 'x'.repeat(201) } } } })[0]?.path).toBe('purposes.analytics.reporting.de.title');
  });
});

describe('rectifiable field labels', () => {
  it('come from fideslang without the User / User Contact prefix, or from the key', () => {
    expect(categoryLabel('user.contact.email')).toBe('Email');
    expect(categoryLabel('user.contact.address.city')).toBe('City');
    expect(categoryLabel('user.name.first')).toBe('First Name');
    expect(categoryLabel('user.contact.url')).toBe('Website');
    expect(categoryLabel('user.contact.custom_thing')).toBe('Custom thing');
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
