import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { BreachDetector, judgePurpose, type DetectionHit, type DetectionOptions } from '../../src/breach/index.js';
import { ManualClock } from '../../src/core/index.js';
import { buildServer } from '../../src/server/index.js';
import { runCliCaptured } from '../support/cli.js';
import { STORE_KINDS, custodianFixture, type StoreFixture } from '../support/stores.js';

const DAY = 86_400_000;
// Default purposes of the registry (src/core/purposes.ts); the data map below declares only the first.
const SERVICE = 'essential.service';
const ANALYTICS = 'analytics.reporting';
const ADS = 'marketing.advertising';

/** A data map whose only purpose is essential.service (a system without datasets is enough for purposes). */
const manifest = {
  version: 1,
  organization: { name: 'Purpose Shop', dpo: 'dpo@purpose-shop.example' },
  purposes: [{ key: SERVICE, title: 'Run the shop', legalBasis: 'contract' }],
  systems: [{ key: 'shop', name: 'Shop', owner: 'Commerce', purposes: [SERVICE] }],
};

const PERSONAL_READ_ROUTES = [
  'GET /v1/subjects/{subjectId}/consent/history',
  'GET /v1/consent/events/{id}/proof',
  'POST /v1/consent/link',
  'POST /v1/crypto/decrypt',
  'POST /v1/crypto/decrypt/batch',
  'GET /v1/requests/{id}/package',
  'GET /v1/incidents/{id}/affected-subjects',
  'GET /v1/incidents',
  'GET /v1/incidents/{id}',
];

describe('judgePurpose', () => {
  const pool = [SERVICE, ANALYTICS, ADS, 'train_ai_system'];
  it('flags a read iff the key declares purposes and the stated one is missing, undeclared, or (with a data map) not in it', () => {
    fc.assert(
      fc.property(fc.subarray(pool), fc.option(fc.constantFrom(...pool), { nil: null }), fc.option(fc.subarray(pool), { nil: null }), (declared, stated, inMap) => {
        const why = judgePurpose(stated, new Set(declared), inMap === null ? null : new Set(inMap));
        const fits = declared.length === 0 || (stated !== null && declared.includes(stated) && (inMap === null || inMap.includes(stated)));
        expect(why === null).toBe(fits);
        if (declared.length > 0 && stated === null) expect(why).toBe('missing');
        if (declared.length > 0 && stated !== null && !declared.includes(stated)) expect(why).toBe('undeclared');
      }),
    );
  });
});

for (const kind of STORE_KINDS) {
  describe(`purpose_mismatch detection on ${kind}`, () => {
    let c: Custodian;
    let app: FastifyInstance;
    let cleanup: () => Promise<void>;
    let fixture: StoreFixture;
    let admin: string;
    const clock = new ManualClock('2026-03-01T00:00:00.000Z');

    beforeAll(async () => {
      ({ custodian: c, cleanup, fixture } = await custodianFixture(kind, { clock }));
      app = await buildServer(c, { logLevel: false });
      admin = (await c.apiKeys.create({ name: 'admin', scopes: ['admin'], createdBy: 'test' })).secret;
    });
    afterAll(async () => {
      await app?.close();
      await cleanup?.();
    });

    const detector = (options: DetectionOptions = {}) => new BreachDetector({ store: c.store, clock, incidents: c.incidents, apiKeys: c.apiKeys, dataMap: () => c.datamap.currentView() }, options);
    const keyWith = async (purposes: string[]) => (await c.apiKeys.create({ name: 'svc', scopes: ['crypto', 'consent:read'], purposes, createdBy: 'test' })).id;
    /** `n` decryptions by key `id`, each with `purpose` stated (or none). */
    const reads = async (id: string, purpose: string | null, n = 1) =>
      c.audit.recordNow(Array.from({ length: n }, () => ({ actor: `key:${id}`, action: 'crypto.decrypted', targetType: 'system' as const, targetId: null, details: { count: 3, ...(purpose === null ? {} : { purpose }) } })));
    const hitsOf = async (d: BreachDetector, id: string): Promise<DetectionHit[]> => (await d.run()).filter((h) => h.rule === 'purpose_mismatch' && h.actor === `key:${id}`);
    const openedEvents = async (incidentId: string) => (await sql<{ data: string }>`select data from event_outbox where type = 'incident.opened'`.execute(c.store.db)).rows.filter((e) => e.data.includes(incidentId)).length;

    it('a key reading under a purpose it declares is not flagged', async () => {
      const id = await keyWith([SERVICE, ANALYTICS]);
      await reads(id, SERVICE, 3);
      await reads(id, ANALYTICS);
      expect(await hitsOf(detector(), id)).toEqual([]);
    });

    it('a read under an undeclared purpose opens one suspected incident, deduplicated within the window', async () => {
      const id = await keyWith([SERVICE]);
      await reads(id, SERVICE, 2);
      await reads(id, ADS);
      const d = detector();
      const [hit] = await hitsOf(d, id);
      expect(hit).toMatchObject({ rule: 'purpose_mismatch', observed: 1, threshold: 1, mismatches: { missing: 0, undeclared: 1, not_in_data_map: 0 } });
      const incident = await c.incidents.get(hit!.incidentId!);
      expect(incident).toMatchObject({ status: 'suspected', source: `detection:purpose_mismatch:key:${id}` });
      expect(incident.description).toContain(ADS);
      // More reads in the same window: still one incident.
      await reads(id, ADS, 5);
      expect(await hitsOf(d, id)).toEqual([expect.objectContaining({ observed: 6, incidentId: null })]);
      expect(await openedEvents(incident.id)).toBe(1);
    });

    it('a read without a stated purpose by a key that declares purposes is flagged', async () => {
      const id = await keyWith([SERVICE]);
      await reads(id, null);
      const [hit] = await hitsOf(detector(), id);
      expect(hit).toMatchObject({ observed: 1, mismatches: { missing: 1, undeclared: 0, not_in_data_map: 0 } });
      expect(hit!.incidentId).not.toBeNull();
    });

    it('a key declared for no purposes is not judged, whatever it states', async () => {
      const id = await keyWith([]);
      await reads(id, null, 3);
      await reads(id, ADS, 3);
      expect(await hitsOf(detector(), id)).toEqual([]);
      expect((await c.apiKeys.declaredPurposes()).has(id)).toBe(false);
    });

    it('honours the threshold, and after the window a new incident counts only reads made since', async () => {
      const id = await keyWith([SERVICE]);
      const d = detector({ purposeMismatches: 3, purposeWindowMs: DAY });
      await reads(id, ADS, 2);
      expect(await hitsOf(d, id)).toEqual([]);
      await reads(id, null);
      const [first] = await hitsOf(d, id);
      expect(first).toMatchObject({ observed: 3, threshold: 3 });
      expect(first!.incidentId).not.toBeNull();
      clock.advance(DAY + 1);
      expect(await hitsOf(d, id)).toEqual([]); // the three reads are out of the window: never counted twice
      await reads(id, ADS, 3);
      const [second] = await hitsOf(d, id);
      expect(second).toMatchObject({ observed: 3 });
      expect(second!.incidentId).not.toBeNull();
      expect(second!.incidentId).not.toBe(first!.incidentId);
    });

    it('still judges the reads a key made before it was revoked', async () => {
      const id = await keyWith([SERVICE]);
      await reads(id, ADS);
      await c.apiKeys.revoke(id, 'test');
      expect(await hitsOf(detector(), id)).toEqual([expect.objectContaining({ observed: 1 })]);
    });

    it('POST /v1/api-keys takes declared purposes: unknown ones are a typed 400, malformed ones a validation 400', async () => {
      const post = (body: unknown) => app.inject({ method: 'POST', url: '/v1/api-keys', payload: body as object, headers: { authorization: `Bearer ${admin}` } });
      const created = await post({ name: 'analytics job', scopes: ['crypto'], purposes: [ANALYTICS, SERVICE, ANALYTICS] });
      expect(created.statusCode).toBe(201);
      const minted = created.json<{ id: string; purposes: string[] }>();
      expect(minted.purposes).toEqual([ANALYTICS, SERVICE]);
      const listed = (await app.inject({ method: 'GET', url: '/v1/api-keys', headers: { authorization: `Bearer ${admin}` } })).json<{ apiKeys: Array<{ id: string; purposes: string[] }> }>();
      expect(listed.apiKeys.find((k) => k.id === minted.id)?.purposes).toEqual([ANALYTICS, SERVICE]);
      expect((await post({ name: 'plain', scopes: ['crypto'] })).json()).toMatchObject({ purposes: [] });

      const unknown = await post({ name: 'x', scopes: ['crypto'], purposes: [SERVICE, 'no_such.purpose'] });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json()).toEqual({ error: { code: 'CST_ERR_AUTH_UNKNOWN_PURPOSE', message: expect.any(String) as string, details: { purposes: ['no_such.purpose'] } } });
      const malformed = await post({ name: 'x', scopes: ['crypto'], purposes: ['Not A Key'] });
      expect([malformed.statusCode, malformed.json<{ error: { code: string } }>().error.code]).toEqual([400, 'CST_ERR_VALIDATION']);
      await expect(c.apiKeys.create({ name: 'x', scopes: ['crypto'], purposes: ['no_such.purpose'], createdBy: 'test' })).rejects.toMatchObject({ code: 'CST_ERR_AUTH_UNKNOWN_PURPOSE' });
      const audit = await c.store.db.selectFrom('audit_entries').select('details').where('action', '=', 'api_key.created').where('target_ref', '=', minted.id).executeTakeFirstOrThrow();
      expect(JSON.parse(audit.details)).toEqual({ scopes: ['crypto'], purposes: [ANALYTICS, SERVICE] });
    });

    it('custodian keys create --purposes declares them; unknown or malformed purposes exit 2', async () => {
      const store = ['--db', fixture.url, '--data-dir', fixture.dir];
      const ok = await runCliCaptured(['keys', 'create', '--scopes', 'crypto', '--purposes', `${SERVICE}, ${ANALYTICS}`, '--name', 'nightly job', ...store]);
      expect(ok.code, ok.stderr).toBe(0);
      const minted = JSON.parse(ok.stdout) as { id: string; purposes: string[] };
      expect(minted.purposes).toEqual([SERVICE, ANALYTICS]);
      expect((await c.apiKeys.declaredPurposes()).get(minted.id)).toEqual([SERVICE, ANALYTICS]);
      const unknown = await runCliCaptured(['keys', 'create', '--scopes', 'crypto', '--purposes', 'no_such.purpose', ...store]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('CST_ERR_AUTH_UNKNOWN_PURPOSE');
      expect((await runCliCaptured(['keys', 'create', '--scopes', 'crypto', '--purposes', 'Not A Key', ...store])).code).toBe(2);
    });

    it('Custodian-Purpose lands in the audit entry of each personal-data read over HTTP, and the detector judges it', async () => {
      const created = (await app.inject({ method: 'POST', url: '/v1/api-keys', payload: { name: 'support tool', scopes: ['crypto', 'consent:read'], purposes: [SERVICE] }, headers: { authorization: `Bearer ${admin}` } })).json<{ id: string; secret: string }>();
      const call = (method: 'GET' | 'POST', url: string, purpose: string | undefined, payload?: object) =>
        app.inject({ method, url, headers: { authorization: `Bearer ${created.secret}`, ...(purpose === undefined ? {} : { 'custodian-purpose': purpose }) }, ...(payload === undefined ? {} : { payload }) });
      const { ciphertext } = (await call('POST', '/v1/crypto/encrypt', undefined, { subjectId: 'user-7', plaintext: 'ada@example.com', context: 'crm.email:7' })).json<{ ciphertext: string }>();
      const recorded = await c.ledger.record([{ subjectId: 'user-7', purpose: ANALYTICS, decision: 'granted' }], { actor: 'test' });

      expect((await call('POST', '/v1/crypto/decrypt', SERVICE, { ciphertext, context: 'crm.email:7' })).statusCode).toBe(200);
      expect((await call('POST', '/v1/crypto/decrypt/batch', ADS, { items: [{ ciphertext, context: 'crm.email:7' }] })).statusCode).toBe(200);
      expect((await call('GET', '/v1/subjects/user-7/consent/history', SERVICE)).statusCode).toBe(200);
      expect((await call('GET', `/v1/consent/events/${recorded.events[0]!.id}/proof`, undefined)).statusCode).toBe(200);
      // Well-formed but not configured: recorded as given (the detector flags it), never refused.
      expect((await call('POST', '/v1/crypto/decrypt', 'fraud.investigation', { ciphertext, context: 'crm.email:7' })).statusCode).toBe(200);
      // Malformed, or two purposes at once: 400 before anything is read or recorded.
      for (const bad of ['Essential Service', 'essential.service, analytics.reporting', 'x'.repeat(129)]) {
        const res = await call('POST', '/v1/crypto/decrypt', bad, { ciphertext, context: 'crm.email:7' });
        expect([res.statusCode, res.json<{ error: { code: string } }>().error.code]).toEqual([400, 'CST_ERR_VALIDATION']);
        expect(res.json<{ error: { details: { issues: Array<{ path: string }> } } }>().error.details.issues[0]!.path).toBe('headers.custodian-purpose');
        expect(res.body).not.toContain('ada@example.com');
      }

      const entries = await c.store.db.selectFrom('audit_entries').select(['action', 'details']).where('actor', '=', `key:${created.id}`).where('action', 'in', ['crypto.decrypted', 'consent.history.read']).orderBy('id').execute();
      expect(entries.map((e) => [e.action, (JSON.parse(e.details) as { purpose?: string }).purpose ?? null])).toEqual([
        ['crypto.decrypted', SERVICE],
        ['crypto.decrypted', ADS],
        ['consent.history.read', SERVICE],
        ['consent.history.read', null],
        ['crypto.decrypted', 'fraud.investigation'],
      ]);
      const [hit] = await hitsOf(detector(), created.id);
      expect(hit).toMatchObject({ observed: 3, mismatches: { missing: 1, undeclared: 2, not_in_data_map: 0 } });
    });

    it('declares the Custodian-Purpose header in the OpenAPI schema of every route that hands out personal data', () => {
      const doc = app.swagger() as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string; required?: boolean }> }>> };
      const withHeader = Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.entries(item)
          .filter(([, op]) => op.parameters?.some((p) => p.in === 'header' && p.name === 'custodian-purpose' && p.required !== true))
          .map(([method]) => `${method.toUpperCase()} ${path}`),
      );
      expect(withHeader.sort()).toEqual([...PERSONAL_READ_ROUTES].sort());
    });

    it('with a data map declaring purposes, a declared purpose the data map does not declare is flagged (unless turned off)', async () => {
      const id = await keyWith([SERVICE, ANALYTICS]);
      await reads(id, ANALYTICS);
      await reads(id, SERVICE);
      expect(await hitsOf(detector(), id)).toEqual([]); // no data map stored yet: not judged against one
      await c.datamap.put(manifest, { actor: 'test' });
      expect(await hitsOf(detector({ purposeInDataMap: false }), id)).toEqual([]);
      const [hit] = await hitsOf(detector(), id);
      expect(hit).toMatchObject({ observed: 1, mismatches: { missing: 0, undeclared: 0, not_in_data_map: 1 } });
    });

    it('property: per key, observed = the reads outside its declared (and the data map’s) purposes; a hit iff that reaches the threshold; keys without purposes never hit', async () => {
      const pool = [SERVICE, ANALYTICS, ADS];
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.subarray(pool), { minLength: 1, maxLength: 3 }),
          fc.array(fc.tuple(fc.nat(), fc.option(fc.constantFrom(...pool, 'unknown.purpose'), { nil: null })), { maxLength: 12 }),
          fc.integer({ min: 1, max: 3 }),
          async (declaredPerKey, readList, threshold) => {
            clock.advance(2 * DAY); // a fresh window for this run
            const ids = await Promise.all(declaredPerKey.map((p) => keyWith(p)));
            for (const [k, stated] of readList) await reads(ids[k % ids.length]!, stated);
            const map = await c.datamap.currentView();
            const inMap = map === undefined ? null : new Set(map.map.purposes.map((p) => p.key));
            const hits = (await detector({ purposeMismatches: threshold }).run()).filter((h) => h.rule === 'purpose_mismatch');
            ids.forEach((id, i) => {
              const declared = new Set(declaredPerKey[i]);
              // The oracle, independent of judgePurpose: stated nothing, or something outside the key's or the data map's purposes.
              const rejected = readList.filter(([k, s]) => k % ids.length === i && (s === null || !declared.has(s) || (inMap !== null && !inMap.has(s)))).length;
              const hit = hits.find((h) => h.actor === `key:${id}`);
              if (declared.size === 0 || rejected < threshold) expect(hit).toBeUndefined();
              else expect(hit).toMatchObject({ observed: rejected, threshold });
            });
          },
        ),
        { numRuns: 12 },
      );
    });
  });
}
