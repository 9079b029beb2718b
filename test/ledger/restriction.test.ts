import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCustodian, type Custodian } from '../../src/app/index.js';
import { LEGAL_BASES, ManualClock, isCustodianError, uuidv7, type ErrorCode, type Purpose } from '../../src/core/index.js';
import { DECISIONS, RESTRICTED_REASON, type ConsentCheck, type Decision } from '../../src/ledger/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

let seq = 0;
/** A subject id unique to this run, so tests sharing a store never see each other's data. */
const subject = (label: string) => `${label}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isCustodianError(err) ? err.code : err).toBe(code);
}

/** A purpose based on a legal obligation: the only kind a restriction lets through (GDPR Art. 18(2)). */
const LEGAL: Omit<Purpose, 'key'> = {
  title: 'Statutory records',
  description: 'Keep invoices as tax law requires.',
  legalBasis: 'legal_obligation',
  consentRequired: false,
  defaultExpiryMonths: null,
  jurisdictions: ['*'],
  gpcOptOut: false,
};

describe.each(STORE_KINDS)('restriction of processing on %s', (kind) => {
  const clock = new ManualClock('2026-06-01T09:00:00.000Z');
  let c: Custodian;
  let cleanup: () => Promise<void>;
  const actor = 'test';
  const events = async (subjectId: string) => (await c.outbox.read(0, 10_000)).filter((e) => e.subject === subjectId);
  const rows = async (subjectId: string) => c.store.db.selectFrom('subject_restrictions_events').selectAll().where('subject_id', '=', subjectId).orderBy('id').execute();

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
    await c.purposes.put('legal.records', LEGAL);
  });
  afterAll(async () => cleanup());

  it('refuses every purpose but those based on a legal obligation while restricted, and allows them again once lifted', async () => {
    const s = subject('restrict');
    await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted' }], { actor });
    // Warm the cache: the restriction must reach cached answers too.
    expect(await c.ledger.check(s, 'analytics.reporting')).toMatchObject({ allowed: true, status: 'granted' });
    expect(await c.ledger.check(s, 'essential.service')).toMatchObject({ allowed: true });

    const requestId = uuidv7(clock.now());
    const r = await c.ledger.restrict(s, { reason: 'accuracy_contested', requestId, actor });
    expect(r).toMatchObject({ subjectId: s, restricted: true, changed: true, reason: 'accuracy_contested', requestId, since: '2026-06-01T09:00:00.000Z', updatedAt: '2026-06-01T09:00:00.000Z' });
    expect(r.eventId).toMatch(/^[0-9a-f-]{36}$/);

    const granted = await c.ledger.check(s, 'analytics.reporting');
    expect(granted).toMatchObject({ allowed: false, status: 'restricted', reason: RESTRICTED_REASON, legalBasis: 'consent' });
    expect(granted.eventId).not.toBeNull(); // still names the deciding consent event
    expect(await c.ledger.check(s, 'essential.service')).toMatchObject({ allowed: false, status: 'restricted', legalBasis: 'contract' });
    expect(await c.ledger.check(s, 'functional.service.improve')).toMatchObject({ allowed: false, status: 'restricted' });
    const legal = await c.ledger.check(s, 'legal.records');
    expect(legal).toMatchObject({ allowed: true, status: 'none', legalBasis: 'legal_obligation' });
    expect(legal.reason).toContain('Art. 18(2)');
    const many = await c.ledger.checkMany([
      { subjectId: s, purpose: 'analytics.reporting' },
      { subjectId: s, purpose: 'legal.records' },
      { subjectId: subject('other'), purpose: 'essential.service' },
    ]);
    expect(many.map((m) => [m.status, m.allowed])).toEqual([
      ['restricted', false],
      ['none', true],
      ['none', true],
    ]);
    // A later grant does not lift the restriction (Art. 18(2) consent means lifting it, reason subject_consent).
    await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted' }], { actor });
    expect(await c.ledger.check(s, 'personalize')).toMatchObject({ allowed: false, status: 'restricted' });

    clock.advance(1000);
    const lifted = await c.ledger.liftRestriction(s, { reason: 'accuracy_verified', actor });
    expect(lifted).toMatchObject({ restricted: false, changed: true, reason: 'accuracy_verified', requestId: null, since: null, updatedAt: '2026-06-01T09:00:01.000Z' });
    expect(await c.ledger.check(s, 'analytics.reporting')).toMatchObject({ allowed: true, status: 'granted' });
    expect(await c.ledger.check(s, 'personalize')).toMatchObject({ allowed: true, status: 'granted' });
    expect(await c.ledger.restriction(s)).toEqual({ subjectId: s, restricted: false, reason: 'accuracy_verified', requestId: null, since: null, eventId: lifted.eventId, updatedAt: lifted.updatedAt });
  });

  it('is idempotent: restricting twice or lifting what is not restricted records nothing', async () => {
    const s = subject('idem');
    expect(await c.ledger.restriction(s)).toEqual({ subjectId: s, restricted: false, reason: null, requestId: null, since: null, eventId: null, updatedAt: null });
    expect(await c.ledger.liftRestriction(s, { reason: 'recorded_in_error', actor })).toMatchObject({ restricted: false, changed: false, eventId: null });
    const first = await c.ledger.restrict(s, { reason: 'objection_pending', actor });
    clock.advance(10);
    const again = await c.ledger.restrict(s, { reason: 'blocking', actor });
    expect(again).toMatchObject({ restricted: true, changed: false, reason: 'objection_pending', eventId: first.eventId, since: first.since });
    await c.ledger.liftRestriction(s, { reason: 'objection_decided', actor });
    expect((await c.ledger.liftRestriction(s, { reason: 'objection_decided', actor })).changed).toBe(false);
    expect((await rows(s)).map((r) => [r.action, r.reason])).toEqual([
      ['restricted', 'objection_pending'],
      ['lifted', 'objection_decided'],
    ]);
    // Concurrent restrictions of one subject record one event (a lock per subject).
    const t = subject('race');
    const results = await Promise.all([1, 2, 3].map(() => c.ledger.restrict(t, { reason: 'subject_request', actor })));
    expect(results.filter((x) => x.changed)).toHaveLength(1);
    expect(await rows(t)).toHaveLength(1);
  });

  it('lifting after the clock stepped back still follows the history (ids keep the order of the changes)', async () => {
    const s = subject('clockstep');
    const r = await c.ledger.restrict(s, { reason: 'legal_claims', actor });
    clock.advance(-60_000);
    try {
      const l = await c.ledger.liftRestriction(s, { reason: 'legal_claims_ended', actor });
      expect(l).toMatchObject({ restricted: false, changed: true });
      expect(l.eventId! > r.eventId!).toBe(true);
      expect((await rows(s)).map((x) => x.action)).toEqual(['restricted', 'lifted']);
      expect((await c.ledger.check(s, 'essential.service')).allowed).toBe(true);
    } finally {
      clock.advance(60_000);
    }
  });

  it('validates reason codes, request ids and subject ids', async () => {
    const s = subject('bad');
    await expectCode(c.ledger.restrict(s, { reason: 'because' as never, actor }), 'CST_ERR_VALIDATION');
    await expectCode(c.ledger.restrict(s, { reason: 'accuracy_verified' as never, actor }), 'CST_ERR_VALIDATION'); // a lift reason
    await expectCode(c.ledger.liftRestriction(s, { reason: 'accuracy_contested' as never, actor }), 'CST_ERR_VALIDATION');
    await expectCode(c.ledger.restrict(s, { reason: 'legal_claims', requestId: 'not-a-uuid', actor }), 'CST_ERR_VALIDATION');
    await expectCode(c.ledger.restrict('x'.repeat(257), { reason: 'legal_claims', actor }), 'CST_ERR_VALIDATION');
    await expectCode(c.ledger.restriction(''), 'CST_ERR_VALIDATION');
    expect(await rows(s)).toHaveLength(0);
  });

  it('emits subject.restricted and subject.restriction_lifted in the same transaction, and audits both', async () => {
    const s = subject('events');
    const requestId = uuidv7(clock.now());
    const r = await c.ledger.restrict(s, { reason: 'unlawful_processing', requestId, actor: 'key:k1', auditRequestId: 'http-1' });
    await c.ledger.restrict(s, { reason: 'unlawful_processing', actor }); // no change, no event
    const l = await c.ledger.liftRestriction(s, { reason: 'subject_consent', actor });
    const got = await events(s);
    expect(got.map((e) => e.type)).toEqual(['subject.restricted', 'subject.restriction_lifted']);
    expect(got[0]).toMatchObject({ subject: s, data: { subjectId: s, purposes: [], restrictionEventId: r.eventId, reason: 'unlawful_processing', requestId, at: r.updatedAt } });
    expect(got[1]).toMatchObject({ data: { restrictionEventId: l.eventId, reason: 'subject_consent', requestId: null } });
    const restricted = (await c.audit.list({ action: 'subject.restricted' })).entries.filter((e) => (e.details as { restrictionEventId?: string }).restrictionEventId === r.eventId);
    expect(restricted).toHaveLength(1);
    expect(restricted[0]).toMatchObject({ actor: 'key:k1', details: { reason: 'unlawful_processing', subjectRequestId: requestId } });
    expect(JSON.stringify(restricted[0])).not.toContain(s); // the subject is stored as a keyed reference only
    expect((await c.audit.list({ action: 'subject.restriction_lifted' })).entries.some((e) => (e.details as { restrictionEventId?: string }).restrictionEventId === l.eventId)).toBe(true);
  });

  it('the database refuses to rewrite the history, and the projection only follows it', async () => {
    const s = subject('immutable');
    const r = await c.ledger.restrict(s, { reason: 'legal_claims', actor });
    await expect(c.store.db.updateTable('subject_restrictions_events').set({ reason: 'blocking' }).where('subject_id', '=', s).execute()).rejects.toThrow(/append-only/);
    await expect(c.store.db.deleteFrom('subject_restrictions_events').where('subject_id', '=', s).execute()).rejects.toThrow(/append-only/);
    if (kind === 'postgres') await expect(sql`truncate subject_restrictions_events`.execute(c.store.db)).rejects.toThrow(/append-only/);
    // Lifting by editing the projection, or deleting it, is refused: it must name a later "lifted" event.
    await expect(c.store.db.updateTable('subject_restrictions').set({ restricted: 0 }).where('subject_id', '=', s).execute()).rejects.toThrow(/only follows/);
    await expect(c.store.db.deleteFrom('subject_restrictions').where('subject_id', '=', s).execute()).rejects.toThrow(/only follows/);
    await expect(
      c.store.db.insertInto('subject_restrictions').values({ subject_id: subject('forged'), restricted: 0, reason: 'recorded_in_error', request_id: null, since: null, event_id: r.eventId!, updated_at: r.updatedAt! }).execute(),
    ).rejects.toThrow(/only follows/);
    expect(await c.ledger.restriction(s)).toMatchObject({ restricted: true, eventId: r.eventId });
    expect(await c.ledger.check(s, 'essential.service')).toMatchObject({ status: 'restricted' });
  });

  it('a restriction by another process reaches a warm cache through the change feed, and so does its lifting', async () => {
    const other = await createCustodian(c.config, { clock, watch: false });
    try {
      const s = subject('xproc');
      await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted' }], { actor });
      expect(await c.ledger.check(s, 'personalize')).toMatchObject({ allowed: true }); // cached in c
      expect(await other.ledger.check(s, 'personalize')).toMatchObject({ allowed: true }); // cached in other
      await other.ledger.restrict(s, { reason: 'accuracy_contested', actor });
      expect(await other.ledger.check(s, 'personalize')).toMatchObject({ allowed: false, status: 'restricted' }); // its own cache at once
      // The manual clock does not move: only the feed (NOTIFY / data_version) can make c see the restriction.
      await vi.waitFor(async () => expect(await c.ledger.check(s, 'personalize')).toMatchObject({ allowed: false, status: 'restricted' }), { timeout: 2000, interval: 20 });
      await other.ledger.liftRestriction(s, { reason: 'accuracy_verified', actor });
      await vi.waitFor(async () => expect(await c.ledger.check(s, 'personalize')).toMatchObject({ allowed: true, status: 'granted' }), { timeout: 2000, interval: 20 });
    } finally {
      await other.close();
    }
  });

  it('check() equals a simple oracle for any sequence of restrictions, liftings and consent events', async () => {
    const purposes = ['analytics.reporting', 'essential.service', 'functional.service.improve', 'legal.records'];
    const basis = new Map(purposes.map((p) => [p, c.purposes.peek(p)!.legalBasis]));
    const op = fc.oneof(
      fc.constant({ op: 'restrict' as const }),
      fc.constant({ op: 'lift' as const }),
      fc.record({ op: fc.constant('consent' as const), purpose: fc.constantFrom(...purposes.slice(0, 3)), decision: fc.constantFrom(...DECISIONS) }),
    );
    /** The rule, stated plainly: a restriction refuses everything but legal obligations; otherwise the consent rules. */
    const oracle = (restricted: boolean, purpose: string, last: Decision | undefined): Pick<ConsentCheck, 'allowed' | 'status'> => {
      const b = basis.get(purpose)!;
      if (restricted && b !== 'legal_obligation') return { allowed: false, status: 'restricted' };
      const status = last ?? 'none';
      if (b === 'consent') return { allowed: last === 'granted', status };
      if (LEGAL_BASES[b].objectable) return { allowed: last !== 'denied' && last !== 'withdrawn', status };
      return { allowed: true, status };
    };
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
        const s = subject('prop');
        let restricted = false;
        const last = new Map<string, Decision>();
        for (const o of ops) {
          clock.advance(1);
          if (o.op === 'restrict') {
            expect((await c.ledger.restrict(s, { reason: 'subject_request', actor })).changed).toBe(!restricted);
            restricted = true;
          } else if (o.op === 'lift') {
            expect((await c.ledger.liftRestriction(s, { reason: 'subject_consent', actor })).changed).toBe(restricted);
            restricted = false;
          } else {
            await c.ledger.record([{ subjectId: s, purpose: o.purpose, decision: o.decision }], { actor });
            last.set(o.purpose, o.decision);
          }
          // After every step, through the cache (check) and the batch path (checkMany).
          for (const p of purposes) expect(await c.ledger.check(s, p)).toMatchObject(oracle(restricted, p, last.get(p)));
          const many = await c.ledger.checkMany(purposes.map((purpose) => ({ subjectId: s, purpose })));
          expect(many.map((m) => ({ allowed: m.allowed, status: m.status }))).toEqual(purposes.map((p) => oracle(restricted, p, last.get(p))));
        }
        expect((await c.ledger.restriction(s)).restricted).toBe(restricted);
      }),
      { numRuns: kind === 'postgres' ? 15 : 30 },
    );
  });
});
