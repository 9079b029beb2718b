import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCustodian, loadConfig, type Custodian } from '../../src/app/index.js';
import { isCustodianError } from '../../src/core/index.js';
import { MAX_SCAN_PAGE } from '../../src/connectors/data/index.js';
import { DataMap, checkManifestValue } from '../../src/datamap/index.js';
import { RetentionService, type RetentionServiceOptions } from '../../src/retention/index.js';
import { storeFixture, type StoreFixture } from '../support/stores.js';
import { appDatabase, pgReachable, retentionManifest, type AppDatabase, type AppEngine, type EventRow } from './fixtures.js';

/*
 * Retention end to end: the service on a real store (SQLite, PostgreSQL) against a real application database of
 * the same engine, with a fixed clock. Under CI=true an unreachable PostgreSQL fails the run; locally it skips.
 */

const NOW = Date.parse('2026-06-01T00:00:00.000Z');
const EVENTS_CUTOFF = '2026-05-02T00:00:00.000Z';
const DUE = '2026-04-01T12:00:00.000Z';
const NOT_DUE = '2026-05-20T12:00:00.000Z';

function events(): EventRow[] {
  const rows: EventRow[] = [];
  for (let i = 1; i <= 20; i++) rows.push({ id: `e-${String(i).padStart(3, '0')}`, email: `user${i}@example.com`, at: i === 20 ? null : i % 2 === 1 ? DUE : NOT_DUE });
  rows.push({ id: 'e-edge1', email: 'edge1@example.com', at: '2026-05-01T23:59:59.999Z' });
  rows.push({ id: 'e-edge2', email: 'edge2@example.com', at: EVENTS_CUTOFF });
  rows.push({ id: 'e-held1', email: 'held@example.com', at: DUE });
  rows.push({ id: 'e-held2', email: 'lawyer@example.com', at: DUE });
  return rows;
}

const isDue = (r: EventRow) => r.at !== null && r.at < EVENTS_CUTOFF;

const profiles = () => [
  { id: 1, email: 'old1@example.com', name: 'Old One', phone: '+4410001', lastSeen: '2024-01-01T00:00:00.000Z' },
  { id: 2, email: 'old2@example.com', name: 'Old Two', phone: null, lastSeen: '2025-05-31T23:59:59.000Z' },
  { id: 3, email: 'new3@example.com', name: 'New Three', phone: '+4410003', lastSeen: '2026-01-01T00:00:00.000Z' },
  { id: 4, email: 'held@example.com', name: 'Held Four', phone: '+4410004', lastSeen: '2024-01-01T00:00:00.000Z' },
];

for (const engine of ['sqlite', 'postgres'] as const satisfies readonly AppEngine[]) {
  const up = engine === 'sqlite' || (await pgReachable());
  if (!up && process.env.CI !== 'true') {
    describe.skip(`retention on ${engine} (PostgreSQL not reachable; CI=true fails instead)`, () => {
      it('skipped', () => undefined);
    });
    continue;
  }

  describe(`retention on ${engine}`, () => {
    let store: StoreFixture;
    let app: AppDatabase;
    let c: Custodian;
    let now = NOW;

    beforeAll(async () => {
      store = await storeFixture(engine);
      app = await appDatabase(engine);
      c = await createCustodian(loadConfig({}, { dbUrl: store.url, dataDir: store.dir, logLevel: 'silent' }), { clock: { now: () => now }, retention: { batchSize: 4 } });
      await c.datamap.put(retentionManifest(app.url), { actor: 'test' });
      // An open access request holds its subject's rows.
      await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: 'held@example.com' }, authenticated: true, actor: 'app' });
    });
    afterAll(async () => {
      await c?.close();
      await app?.cleanup();
      await store?.cleanup();
    });
    beforeEach(async () => {
      now = NOW;
      for (const h of await c.retention.listHolds({ active: true })) await c.retention.releaseHold(h.id, 'test');
      await app.clear();
      await app.insertEvents(events());
      await app.insertProfiles(profiles());
    });

    it('a dry run counts what a run would do and changes nothing', async () => {
      const run = await c.retention.run({ dryRun: true, actor: 'test' });
      expect(run.status).toBe('completed');
      expect(run.dryRun).toBe(true);
      const ev = run.collections.find((x) => x.collection === 'app_db.events')!;
      const due = events().filter(isDue);
      expect(ev.matched).toBe(due.length);
      expect(ev.deleted).toBe(due.length - 1);
      expect(ev.skipped).toEqual({ subject_hold: 1 });
      const pr = run.collections.find((x) => x.collection === 'app_db.profiles')!;
      expect(pr).toMatchObject({ matched: 3, anonymised: 2, skipped: { subject_hold: 1 } });
      expect(await app.eventIds()).toEqual(events().map((e) => e.id).sort());
      expect((await app.profiles()).map((p) => p.name)).toEqual(profiles().map((p) => p.name));
    });

    it('deletes exactly the rows past due, keeps rows of held subjects, anonymises per strategy, and is idempotent', async () => {
      const hold = await c.retention.createHold({ scope: 'subject', identity: { kind: 'email', value: ' Lawyer@Example.com ' }, reason: 'case 2026-17', actor: 'test' });
      expect(hold).toMatchObject({ scope: 'subject', identityKind: 'email', active: true, system: null });
      expect(JSON.stringify(hold)).not.toContain('lawyer');
      const run = await c.retention.run({ actor: 'test' });
      expect(run.status).toBe('completed');
      const expected = events()
        .filter((e) => !isDue(e) || e.id === 'e-held1' || e.id === 'e-held2')
        .map((e) => e.id)
        .sort();
      expect(await app.eventIds()).toEqual(expected);
      const ev = run.collections.find((x) => x.collection === 'app_db.events')!;
      expect(ev).toMatchObject({ state: 'done', deleted: events().filter(isDue).length - 2, skipped: { subject_hold: 2 } });

      const after = await app.profiles();
      expect(after[0]).toMatchObject({ id: 1, name: 'REDACTED', phone: null });
      expect(after[0]!.email).toMatch(/^[0-9a-f]{64}$/);
      expect(after[1]).toMatchObject({ id: 2, name: 'REDACTED', phone: null });
      expect(after[2]).toMatchObject({ id: 3, name: 'New Three', email: 'new3@example.com' });
      expect(after[3]).toMatchObject({ id: 4, name: 'Held Four', email: 'held@example.com' });

      // Again: nothing left to delete; anonymised rows are recognised as such.
      const again = await c.retention.run({ actor: 'test' });
      expect(again.totals.deleted).toBe(0);
      expect(again.totals.anonymised).toBe(0);
      expect(again.collections.find((x) => x.collection === 'app_db.profiles')!.skipped).toEqual({ subject_hold: 1, already_anonymised: 2 });
      expect(await app.profiles()).toEqual(after);

      // The run is stored, and audited without values.
      const stored = await c.retention.get(run.id);
      expect(stored.totals).toEqual(run.totals);
      const entries = await c.store.db.selectFrom('audit_entries').select(['action', 'details']).where('action', 'like', 'retention.%').execute();
      expect(entries.map((e) => e.action)).toEqual(expect.arrayContaining(['retention.run_started', 'retention.run_completed']));
      expect(JSON.stringify(entries)).not.toMatch(/example\.com/);
    });

    it('skips a collection under a legal hold until it is released', async () => {
      const hold = await c.retention.createHold({ scope: 'collection', collection: 'app_db.events', reason: 'litigation hold', actor: 'test' });
      const run = await c.retention.run({ actor: 'test', system: 'app' });
      const ev = run.collections.find((x) => x.collection === 'app_db.events')!;
      expect(ev.state).toBe('skipped');
      expect(ev.skipped).toEqual({ legal_hold: events().filter(isDue).length });
      expect(await app.eventIds()).toHaveLength(events().length);
      const report = await c.retention.report();
      expect(report.rules.find((r) => r.collection === 'app_db.events')!.heldBy).toBe('legal_hold');
      await c.retention.releaseHold(hold.id, 'test');
      await expect(c.retention.releaseHold(hold.id, 'test')).rejects.toMatchObject({ code: 'CST_ERR_LEGAL_HOLD_NOT_FOUND' });
      const next = await c.retention.run({ actor: 'test' });
      expect(next.collections.find((x) => x.collection === 'app_db.events')!.deleted).toBe(events().filter(isDue).length - 1);
    });

    it('a legal hold that has ended no longer holds', async () => {
      await c.retention.createHold({ scope: 'system', system: 'app', reason: 'audit', until: '2026-06-02T00:00:00.000Z', actor: 'test' });
      expect((await c.retention.run({ actor: 'test', dryRun: true })).totals.deleted).toBe(0);
      now = Date.parse('2026-06-03T00:00:00.000Z');
      expect((await c.retention.run({ actor: 'test', dryRun: true })).totals.deleted).toBeGreaterThan(0);
    });

    it('refuses invalid holds', async () => {
      await expect(c.retention.createHold({ scope: 'collection', collection: 'app_db.nope', reason: 'x', actor: 't' })).rejects.toMatchObject({ code: 'CST_ERR_LEGAL_HOLD_INVALID' });
      await expect(c.retention.createHold({ scope: 'subject', reason: 'x', actor: 't' })).rejects.toMatchObject({ code: 'CST_ERR_LEGAL_HOLD_INVALID' });
      await expect(c.retention.createHold({ scope: 'system', system: 'app', reason: 'x', until: '2020-01-01T00:00:00.000Z', actor: 't' })).rejects.toMatchObject({ code: 'CST_ERR_LEGAL_HOLD_INVALID' });
    });

    it('reports rows past due and coming due per rule, measured against the system', async () => {
      const report = await c.retention.report();
      const ev = report.rules.find((r) => r.collection === 'app_db.events')!;
      // The open access request holds held@example.com: its row past due is held, not actionable.
      expect(ev).toMatchObject({ cutoff: EVENTS_CUTOFF, pastDue: events().filter(isDue).length - 1, pastDueHeld: 1, heldReasons: { legal_hold: 0, subject_legal_hold: 0, open_request: 1 }, compliant: false, error: null });
      // Coming due within 30 days: age in [cutoff, cutoff + 30 days).
      expect(ev.dueSoon).toBe(events().filter((e) => e.at !== null && e.at >= EVENTS_CUTOFF).length);
      const pr = report.rules.find((r) => r.collection === 'app_db.profiles')!;
      expect(pr).toMatchObject({ pastDue: 2, pastDueHeld: 1, heldReasons: { open_request: 1 }, anonymised: 0, dueSoon: 0 });
      expect(ev.anonymised).toBe(0);
      expect(report.compliancePercent).toBe(0);
      expect(report).toMatchObject({ pastDueTotal: events().filter(isDue).length - 1 + 2, pastDueHeldTotal: 2 });
      await c.retention.run({ actor: 'test' });
      const after = await c.retention.report();
      // Held rows stay past due, reported apart; nothing actionable is left, so every rule complies.
      expect(after.rules.find((r) => r.collection === 'app_db.events')).toMatchObject({ pastDue: 0, pastDueHeld: 1, compliant: true });
      // Anonymised rows stay past due by age, but their rule is met.
      expect(after.rules.find((r) => r.collection === 'app_db.profiles')).toMatchObject({ pastDue: 0, pastDueHeld: 1, anonymised: 2, compliant: true });
      expect(after).toMatchObject({ compliancePercent: 100, pastDueTotal: 0, pastDueHeldTotal: 2 });
      expect(after.lastRun?.status).toBe('completed');
    });

    it('report: held rows by reason — legal hold on the collection, on a subject, open request — and compliance over actionable rows only', async () => {
      // Regression: held rows were counted as past due, and a collection whose past-due rows were all held showed non-compliant.
      const subject = await c.retention.createHold({ scope: 'subject', identity: { kind: 'email', value: 'lawyer@example.com' }, reason: 'case 9', actor: 'test' });
      // held@example.com is also under a subject legal hold: a row counts once, under the legal hold.
      const both = await c.retention.createHold({ scope: 'subject', identity: { kind: 'email', value: 'held@example.com' }, reason: 'case 10', actor: 'test' });
      let report = await c.retention.report();
      const ev = report.rules.find((r) => r.collection === 'app_db.events')!;
      expect(ev).toMatchObject({ pastDue: events().filter(isDue).length - 2, pastDueHeld: 2, heldReasons: { legal_hold: 0, subject_legal_hold: 2, open_request: 0 } });
      await c.retention.releaseHold(both.id, 'test');
      const collection = await c.retention.createHold({ scope: 'collection', collection: 'app_db.events', reason: 'litigation', actor: 'test' });
      report = await c.retention.report();
      expect(report.rules.find((r) => r.collection === 'app_db.events')).toMatchObject({
        heldBy: 'legal_hold',
        pastDue: 0,
        pastDueHeld: events().filter(isDue).length,
        heldReasons: { legal_hold: events().filter(isDue).length, subject_legal_hold: 0, open_request: 0 },
        compliant: true,
      });
      // Profiles still have 2 actionable rows: 1 of 2 measured rules complies.
      expect(report.compliancePercent).toBe(50);
      await c.retention.releaseHold(collection.id, 'test');
      await c.retention.releaseHold(subject.id, 'test');
    });

    /** A retention service on `c`'s store whose connectors record the `limit` of every findExpired and the rows it returned. */
    function recordingService(options: RetentionServiceOptions = {}, dataMap?: () => Promise<{ map: DataMap; version: number } | undefined>) {
      const pages: { limit: number; rows: number }[] = [];
      const svc = new RetentionService(
        {
          store: c.store,
          clock: { now: () => now },
          dataMap: dataMap ?? (() => c.datamap.currentView()),
          digest: (t) => c.keyring.keyedDigest(t),
          hashKey: () => c.keyring.systemSecret('erasure-hash'),
          identitiesOf: (id) => c.requests.identitiesOf(id),
          connect: async (map, system) => {
            const { openDataConnector } = await import('../../src/connectors/data/index.js');
            const inner = await openDataConnector(map.system(system)!.connection!);
            return new Proxy(inner, {
              get(target, prop, receiver) {
                const value = Reflect.get(target, prop, receiver) as unknown;
                if (prop !== 'findExpired') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
                return async (...args: Parameters<typeof inner.findExpired>) => {
                  const page = await inner.findExpired(...args);
                  pages.push({ limit: args[1].limit, rows: page.rows.length });
                  return page;
                };
              },
            });
          },
        },
        options,
      );
      return { svc, pages };
    }

    it('report: reads the rows past due in bounded pages, never more than a page at once', async () => {
      await app.insertEvents(Array.from({ length: 25_000 }, (_, i) => ({ id: `bulk-${String(i).padStart(6, '0')}`, email: i % 1000 === 0 ? 'held@example.com' : `bulk${i}@example.com`, at: DUE })));
      const { svc, pages } = recordingService();
      const report = await svc.report();
      const ev = report.rules.find((r) => r.collection === 'app_db.events')!;
      const all = events().filter(isDue).length + 25_000;
      expect(ev).toMatchObject({ pastDue: all - 26, pastDueHeld: 1 + 25, heldReasons: { open_request: 26 }, pastDueAll: all, scanned: all, estimated: false });
      // What the report asks for, not what the connector returns (it clamps): pages of MAX_SCAN_PAGE at most.
      const eventPages = pages.filter((p) => p.rows > 1_000);
      expect(eventPages.map((p) => p.limit)).toEqual([MAX_SCAN_PAGE, MAX_SCAN_PAGE, MAX_SCAN_PAGE]);
      expect(Math.max(...pages.map((p) => p.limit))).toBe(MAX_SCAN_PAGE);
    });

    it('report: reads at most reportScanRows rows past due per rule, past it the split is estimated and scaled to the exact count', async () => {
      // Regression: the report read every row past due of a collection whose subjects may be held — O(rows past due) per request.
      await app.clear();
      // 403 rows past due in key order, every fourth held by the open request: the first 100 read are 25 held, 75 actionable.
      await app.insertEvents(Array.from({ length: 403 }, (_, i) => ({ id: `bulk-${String(i).padStart(4, '0')}`, email: i % 4 === 0 ? 'held@example.com' : `bulk${i}@example.com`, at: DUE })));
      await app.insertProfiles(profiles());
      const { svc, pages } = recordingService({ reportScanRows: 100 });
      let report = await svc.report();
      let ev = report.rules.find((r) => r.collection === 'app_db.events')!;
      // 403 × 25/100 = 100.75 and 403 × 75/100 = 302.25: largest remainder, they add up to the exact count.
      expect(ev).toMatchObject({ pastDueAll: 403, scanned: 100, estimated: true, pastDueHeld: 101, heldReasons: { legal_hold: 0, subject_legal_hold: 0, open_request: 101 }, pastDue: 302, anonymised: 0, compliant: false, error: null });
      expect(pages.filter((p) => p.limit > 100)).toEqual([]);
      // Profiles have fewer rows past due than the bound: exact.
      expect(report.rules.find((r) => r.collection === 'app_db.profiles')).toMatchObject({ pastDue: 2, pastDueHeld: 1, pastDueAll: 3, scanned: 3, estimated: false });
      expect(report).toMatchObject({ estimated: true, pastDueTotal: 302 + 2, pastDueHeldTotal: 101 + 1 });

      // Every row read is held: the rows not read may be actionable, so the rule is not judged either way.
      await app.clear();
      await app.insertEvents(Array.from({ length: 300 }, (_, i) => ({ id: `bulk-${String(i).padStart(4, '0')}`, email: i < 150 ? 'held@example.com' : `bulk${i}@example.com`, at: DUE })));
      report = await svc.report();
      ev = report.rules.find((r) => r.collection === 'app_db.events')!;
      expect(ev).toMatchObject({ pastDueAll: 300, scanned: 100, estimated: true, pastDue: 0, pastDueHeld: 300, compliant: null });
      // Only profiles (empty now) are measured.
      expect(report.compliancePercent).toBe(100);

      // With a bound above the rows past due, the same report is exact.
      const exact = await recordingService({ reportScanRows: 1_000 }).svc.report();
      expect(exact.rules.find((r) => r.collection === 'app_db.events')).toMatchObject({ pastDueAll: 300, scanned: 300, estimated: false, pastDue: 150, pastDueHeld: 150, compliant: false });
      expect(exact.estimated).toBe(false);
    });

    it('report: a collection without a primaryKey is counted, its held rows unknown, while subjects are held', async () => {
      // Regression: it failed with CST_ERR_DATAMAP_INVALID whenever any subject was held (its rows cannot be paged by key).
      const manifest = retentionManifest(app.url);
      const [eventsCollection, profilesCollection] = manifest.systems[0]!.datasets[0]!.collections;
      const noKey = { ...eventsCollection!, fields: eventsCollection!.fields.map(({ primaryKey: _, ...f }) => f) };
      const checked = checkManifestValue({ ...manifest, systems: [{ ...manifest.systems[0]!, datasets: [{ key: 'app_db', collections: [noKey, profilesCollection!] }] }] });
      expect(checked.issues.filter((i) => i.severity === 'error')).toEqual([]);
      const map = new DataMap(checked.manifest!);
      expect(map.collection('app_db.events')!.collection.fields.some((f) => f.primaryKey === true)).toBe(false);
      const { svc, pages } = recordingService({}, async () => ({ map, version: 1 }));
      const report = await svc.report();
      const all = events().filter(isDue).length;
      expect(report.rules.find((r) => r.collection === 'app_db.events')).toEqual(
        expect.objectContaining({ error: null, pastDue: all, pastDueHeld: null, heldReasons: null, anonymised: 0, pastDueAll: all, scanned: 0, estimated: false, compliant: false }),
      );
      // Only profiles (with a primaryKey) were read page by page.
      expect(pages.length).toBe(1);
      expect(report.rules.find((r) => r.collection === 'app_db.profiles')).toMatchObject({ pastDue: 2, pastDueHeld: 1, error: null });
      // Unknown held rows add nothing to the held total; the rows past due count as actionable.
      expect(report).toMatchObject({ pastDueTotal: all + 2, pastDueHeldTotal: 1 });
    });

    it('a legal hold placed during a run stops the rule at the next batch', async () => {
      let calls = 0;
      const svc: RetentionService = new RetentionService(
        {
          store: c.store,
          clock: { now: () => now },
          dataMap: () => c.datamap.currentView(),
          digest: (t) => c.keyring.keyedDigest(t),
          hashKey: () => c.keyring.systemSecret('erasure-hash'),
          connect: async (map, system) => {
            const { openDataConnector } = await import('../../src/connectors/data/index.js');
            const inner = await openDataConnector(map.system(system)!.connection!);
            return new Proxy(inner, {
              get(target, prop, receiver) {
                if (prop !== 'findExpired') {
                  const value = Reflect.get(target, prop, receiver) as unknown;
                  // Methods run on the connector itself (its private fields are not on the proxy).
                  return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
                }
                return async (...args: Parameters<typeof inner.findExpired>) => {
                  // The second page read: a hold is placed on the collection before it comes back.
                  if (++calls === 2 && args[0].name === 'events') await svc.createHold({ scope: 'collection', collection: 'app_db.events', reason: 'mid-run', actor: 'test' });
                  return inner.findExpired(...args);
                };
              },
            });
          },
        },
        { owner: 'mid-run', batchSize: 4 },
      );
      const run = await svc.run({ actor: 'test' });
      const ev = run.collections.find((x) => x.collection === 'app_db.events')!;
      expect(ev.state).toBe('skipped');
      expect(ev.error).toContain('placed during the run');
      // Only the first page (the 4 first rows past due in key order) was processed; the rest stays.
      expect(ev.matched).toBe(4);
      expect(ev.deleted).toBe(4);
      expect(await app.eventIds()).toHaveLength(events().length - 4);
    });

    it('runs one at a time across processes (the lease)', async () => {
      const other = new RetentionService(
        { store: c.store, clock: { now: () => now }, dataMap: () => c.datamap.currentView(), connect: () => Promise.reject(new Error('unused')), digest: (t) => c.keyring.keyedDigest(t), hashKey: () => c.keyring.systemSecret('erasure-hash') },
        { owner: 'other-process' },
      );
      await c.store.db.insertInto('retention_lease').values({ name: 'retention', owner: 'someone-else', run_id: null, until: new Date(now + 60_000).toISOString() }).execute();
      try {
        const err = await other.run({ actor: 'test' }).catch((e: unknown) => e);
        expect(isCustodianError(err, 'CST_ERR_RETENTION_BUSY')).toBe(true);
        // A dry run takes no lease.
        expect((await c.retention.run({ actor: 'test', dryRun: true })).status).toBe('completed');
      } finally {
        await c.store.db.deleteFrom('retention_lease').execute();
      }
    });

    it('property: after a run no unheld row past due remains and no row not due is gone', async () => {
      const held = new Set(['held@example.com']);
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              // Minutes around the cutoff, so boundaries are hit often.
              offset: fc.integer({ min: -3 * 24 * 60, max: 3 * 24 * 60 }),
              subject: fc.constantFrom('a@example.com', 'b@example.com', 'held@example.com'),
              noAge: fc.boolean(),
            }),
            { maxLength: 40 },
          ),
          async (specs) => {
            await app.clear();
            const rows: EventRow[] = specs.map((s, i) => ({ id: `r-${String(i).padStart(4, '0')}`, email: s.subject, at: s.noAge && i % 5 === 0 ? null : new Date(Date.parse(EVENTS_CUTOFF) + s.offset * 60_000).toISOString() }));
            await app.insertEvents(rows);
            await c.retention.run({ actor: 'property' });
            const left = new Set(await app.eventIds());
            for (const r of rows) {
              const mustGo = isDue(r) && !held.has(r.email);
              expect(left.has(r.id)).toBe(!mustGo);
            }
          },
        ),
        { numRuns: engine === 'sqlite' ? 25 : 10 },
      );
    });
  });
}
