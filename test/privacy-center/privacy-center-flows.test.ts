import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ManualClock } from '../../src/core/index.js';
import { as, codeFor, expectError, privacyCenterServer, sessionOf, signIn } from '../support/privacy-center.js';
import { shopDatabase, shopManifest, type ShopTables } from '../support/shop.js';
import { STORE_KINDS } from '../support/stores.js';

/** A shop with customers (found by e-mail), their orders (found through customer_id) and an unrelated log table. */
const SHOP = { customers: ['name', 'city', 'password_hash', 'segment'], orders: ['delivery_phone'], visits: true } satisfies ShopTables;

describe.each(STORE_KINDS)('privacy center: GPC on every visit, audited sign-ins, rectifiable fields, translated purposes (%s)', (kind) => {
  const clock = new ManualClock('2026-11-22T10:00:00.000Z');
  let custodian: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-pc-flows-'));
    const configFile = join(dir, 'privacy-center.json');
    await writeFile(
      configFile,
      JSON.stringify({
        jurisdiction: 'US-CA',
        purposes: {
          'analytics.reporting': { de: { title: 'Statistik', description: 'Zusammengefasste Nutzungsstatistiken.' } },
          'marketing.advertising': { de: { title: 'Werbung' }, en: { description: 'Ads chosen for you.' } },
        },
      }),
    );
    ({ custodian, app, cleanup } = await privacyCenterServer(kind, { clock, privacyCenter: { sessionMinutes: 30, configFile } }));
  });
  afterAll(async () => {
    await cleanup?.();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const subjectOf = (email: string) => `pc_${custodian.keyring.keyedDigest(`privacy-center:subject:email:${email}`)}`;
  type ConsentBody = { language: string; purposes: Array<{ key: string; title: string; description: string; status: string; method: string | null }>; gpc: { signal: boolean; honoured: boolean; applied: string[]; optedOut: string[] } };

  it('applies GPC on every visit, not only with a choice — once, and never over a grant made with the signal', async () => {
    const email = 'gpc-visit@example.com';
    const s = await signIn(app, custodian, email);
    const subjectId = subjectOf(email);
    // Without the signal, a visit writes nothing.
    const plain = (await app.inject({ method: 'GET', url: '/v1/privacy/consent', headers: as(s) })).json<ConsentBody>();
    expect(plain.gpc).toStrictEqual({ signal: false, honoured: false, applied: [], optedOut: [] });
    expect((await custodian.ledger.history(subjectId)).events).toHaveLength(0);

    const first = (await app.inject({ method: 'GET', url: '/v1/privacy/consent', headers: as(s, { 'sec-gpc': '1' }) })).json<ConsentBody>();
    expect(first.gpc).toStrictEqual({ signal: true, honoured: true, applied: ['marketing.advertising', 'marketing.advertising.third_party.targeted'], optedOut: ['marketing.advertising', 'marketing.advertising.third_party.targeted'] });
    expect(first.purposes.find((p) => p.key === 'marketing.advertising')).toMatchObject({ status: 'denied', method: 'gpc' });
    const second = (await app.inject({ method: 'GET', url: '/v1/privacy/consent', headers: as(s, { 'sec-gpc': '1' }) })).json<ConsentBody>();
    expect(second.gpc.applied).toStrictEqual([]);
    expect(second.gpc.optedOut).toHaveLength(2);
    expect((await custodian.ledger.history(subjectId)).events).toHaveLength(2);

    // Shown the opt-out, the person allows advertising anyway, with the signal on: later visits keep that choice.
    const granted = (await app.inject({ method: 'PUT', url: '/v1/privacy/consent/marketing.advertising', payload: { decision: 'granted' }, headers: as(s, { 'sec-gpc': '1' }) })).json<ConsentBody>();
    expect(granted.purposes.find((p) => p.key === 'marketing.advertising')).toMatchObject({ status: 'granted', method: 'privacy_center' });
    const later = (await app.inject({ method: 'GET', url: '/v1/privacy/consent', headers: as(s, { 'sec-gpc': '1' }) })).json<ConsentBody>();
    expect(later.gpc).toMatchObject({ applied: [], optedOut: ['marketing.advertising.third_party.targeted'] });
    expect(later.purposes.find((p) => p.key === 'marketing.advertising')?.status).toBe('granted');
    expect((await custodian.ledger.history(subjectId)).events).toHaveLength(3);
  });

  it('applies the signal at sign-in already', async () => {
    const email = 'gpc-signin@example.com';
    await signIn(app, custodian, email, { 'sec-gpc': '1' });
    const state = await custodian.ledger.state(subjectOf(email));
    expect(state.find((p) => p.purpose === 'marketing.advertising')).toMatchObject({ status: 'denied', method: 'gpc' });
  });

  it('audits code sent, verification failed and succeeded, and session ended — with ids only', async () => {
    const email = 'audited@example.com';
    const { challengeId } = (await app.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>();
    const code = await codeFor(custodian, email);
    const wrong = code === '000000' ? '111111' : '000000';
    expectError(await app.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: wrong } }), 400, 'CST_ERR_PRIVACY_CODE_INVALID');
    const verified = await app.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code } });
    const s = sessionOf(verified);
    expect((await app.inject({ method: 'POST', url: '/v1/privacy/sign-out', headers: as(s) })).statusCode).toBe(204);

    const of = async (action: string) => (await custodian.audit.list({ action })).entries;
    const sent = (await of('privacy_center.code_sent')).find((e) => e.targetRef === challengeId);
    expect(sent).toMatchObject({ actor: 'privacy_center', targetType: 'privacy_sign_in', outcome: 'success', details: { sent: true } });
    expect((await of('privacy_center.verification_failed')).find((e) => e.targetRef === challengeId)).toMatchObject({ outcome: 'failure', details: { reason: 'wrong_code', attemptsLeft: 4 } });
    const subjectId = subjectOf(email);
    const mine = (await custodian.audit.list({ subjectId })).entries;
    const succeeded = mine.find((e) => e.action === 'privacy_center.verification_succeeded');
    expect(succeeded).toMatchObject({ targetType: 'subject', details: { challengeId } });
    expect(succeeded!.actor).toMatch(/^privacy_center:[0-9a-f]{16}$/);
    expect(mine.find((e) => e.action === 'privacy_center.session_ended')).toMatchObject({ actor: succeeded!.actor, details: { reason: 'signed_out' } });
    // Nothing personal in the log: not the address, not the code.
    const all = JSON.stringify((await custodian.audit.list({ limit: 1000 })).entries);
    expect(all).not.toContain(email);
    expect(all).not.toContain(`"${code}"`);

    // A code held back by the per-address limit is on record as denied.
    const flood = 'audited-flood@example.com';
    const challengeIds = new Set<string>();
    for (let i = 0; i < 6; i++) challengeIds.add((await app.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email: flood } })).json<{ challengeId: string }>().challengeId);
    const floods = (await of('privacy_center.code_sent')).filter((e) => challengeIds.has(e.targetRef ?? ''));
    expect(floods.map((e) => e.outcome).sort()).toStrictEqual(['denied', 'success', 'success', 'success', 'success', 'success']);
  });

  // Regression: every code_sent entry carried the address's `email` blind index — for any address, known or not,
  // and for codes held back — and entries are permanent while blind-index keys are not per subject, so the entries
  // stayed linkable to the address after its erasure.
  it('records no form of the address in code_sent entries: not the address, its blind index or its keyed digest', async () => {
    const addresses = ['linkable@example.com', 'Linkable-Mixed@Example.com', 'never-a-user@example.test'];
    const challengeIds = new Set<string>();
    for (const email of addresses) {
      // Six each: five codes sent, one held back by the per-address limit.
      for (let i = 0; i < 6; i++) challengeIds.add((await app.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>().challengeId);
    }
    const entries = (await custodian.audit.list({ action: 'privacy_center.code_sent', limit: 1000 })).entries;
    const mine = entries.filter((e) => challengeIds.has(e.targetRef ?? ''));
    expect(mine).toHaveLength(18);
    expect(mine.filter((e) => e.outcome === 'denied')).toHaveLength(3);
    for (const e of mine) expect(e.details).toStrictEqual({ sent: e.outcome === 'success' });
    // Nor in any code_sent entry of this store (all the tests above included).
    const dump = JSON.stringify(entries);
    for (const email of [...addresses, 'audited@example.com', 'audited-flood@example.com']) {
      const address = email.toLowerCase();
      for (const derived of [email, address, await custodian.keyring.blindIndex(email, 'email'), await custodian.keyring.blindIndex(address, 'email'), custodian.keyring.keyedDigest(`privacy-center:email:${address}`)]) {
        expect(dump).not.toContain(derived);
      }
    }
    expect(dump).not.toContain('emailIndex');
  });

  it('offers the fields the data map declares correctable for the person, and refuses any other', async () => {
    const s = await signIn(app, custodian, 'fields@example.com');
    expect((await app.inject({ method: 'GET', url: '/v1/privacy/rectifiable-fields', headers: as(s) })).json()).toStrictEqual({ fields: [] });
    const shop = join(dir, 'shop.db');
    shopDatabase(shop, { ...SHOP, rows: { customers: [] } });
    await custodian.datamap.put(shopManifest(shop, { ...SHOP, fields: { 'customers.name': { description: 'Your full name' } } }), { actor: 'test' });
    const res = await app.inject({ method: 'GET', url: '/v1/privacy/rectifiable-fields', headers: as(s) });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<{ fields: unknown[] }>().fields).toStrictEqual([
      { field: 'shop_db.customers.email', category: 'user.contact.email', categoryLabel: 'Email', description: null, system: 'Shop' },
      { field: 'shop_db.customers.name', category: 'user.name', categoryLabel: 'Name', description: 'Your full name', system: 'Shop' },
      { field: 'shop_db.customers.city', category: 'user.contact.address.city', categoryLabel: 'City', description: null, system: 'Shop' },
      // Reached from customers through orders.customer_id; not the visits table (no way to find the person there).
      { field: 'shop_db.orders.delivery_phone', category: 'user.contact.phone_number', categoryLabel: 'Phone Number', description: null, system: 'Shop' },
    ]);
    expectError(await app.inject({ method: 'GET', url: '/v1/privacy/rectifiable-fields' }), 401, 'CST_ERR_PRIVACY_SESSION_REQUIRED');

    const ok = await app.inject({ method: 'POST', url: '/v1/privacy/requests', payload: { type: 'rectification', jurisdiction: 'US-CA', corrections: { 'shop_db.customers.city': 'Lisbon' } }, headers: as(s) });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(await custodian.requests.correctionsOf(ok.json<{ id: string }>().id)).toStrictEqual({ 'shop_db.customers.city': 'Lisbon' });
    for (const field of ['shop_db.customers.password_hash', 'shop_db.customers.id', 'shop_db.visits.city', 'shop_db.customers.segment', 'no.such.field']) {
      const bad = await app.inject({ method: 'POST', url: '/v1/privacy/requests', payload: { type: 'rectification', jurisdiction: 'US-CA', corrections: { [field]: 'x' } }, headers: as(s) });
      expectError(bad, 400, 'CST_ERR_VALIDATION');
      expect(bad.json<{ error: { details: { issues: Array<{ path: string }> } } }>().error.details.issues[0]!.path).toBe(`corrections.${field}`);
    }
  });

  it('serves purpose texts in the asked language, with English fallback', async () => {
    const s = await signIn(app, custodian, 'texts@example.com');
    const get = async (query: string) => (await app.inject({ method: 'GET', url: `/v1/privacy/consent${query}`, headers: as(s) })).json<ConsentBody>();
    const de = await get('?language=de');
    expect(de.language).toBe('de');
    expect(de.purposes.find((p) => p.key === 'analytics.reporting')).toMatchObject({ title: 'Statistik', description: 'Zusammengefasste Nutzungsstatistiken.' });
    // Only the title is translated: the description falls back to the English translation.
    expect(de.purposes.find((p) => p.key === 'marketing.advertising')).toMatchObject({ title: 'Werbung', description: 'Ads chosen for you.' });
    // Not translated at all: the data map's text.
    expect(de.purposes.find((p) => p.key === 'personalize')?.title).toBe('Personalisation');
    const en = await get('?language=en');
    expect(en.purposes.find((p) => p.key === 'analytics.reporting')?.title).toBe('Analytics');
    expect(en.purposes.find((p) => p.key === 'marketing.advertising')).toMatchObject({ title: 'Advertising', description: 'Ads chosen for you.' });
    expect((await get('')).language).toBe('en');
    const put = await app.inject({ method: 'PUT', url: '/v1/privacy/consent/analytics.reporting?language=de', payload: { decision: 'granted' }, headers: as(s) });
    expect(put.json<ConsentBody>().purposes.find((p) => p.key === 'analytics.reporting')?.title).toBe('Statistik');
    expectError(await app.inject({ method: 'GET', url: '/v1/privacy/consent?language=fr', headers: as(s) }), 400, 'CST_ERR_VALIDATION');
  });
});
