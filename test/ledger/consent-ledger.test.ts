import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCustodian } from '../../src/app/index.js';
import type { Custodian } from '../../src/app/index.js';
import { ManualClock, isCustodianError, type ErrorCode } from '../../src/core/index.js';
import type { ConsentEventInput } from '../../src/ledger/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';
import { makeTcString } from '../support/tcf.js';

const DAY = 86_400_000;
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

describe.each(STORE_KINDS)('consent ledger on %s', (kind) => {
  const clock = new ManualClock('2026-03-01T09:00:00.000Z');
  let c: Custodian;
  let cleanup: () => Promise<void>;
  const ctx = { actor: 'test' };
  const count = async (subjectId: string) =>
    Number((await c.store.db.selectFrom('consent_events').select((eb) => eb.fn.countAll<string>().as('n')).where('subject_id', '=', subjectId).executeTakeFirstOrThrow()).n);

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
  });
  afterAll(async () => cleanup());

  it('records a grant, projects it, and allows processing until it expires', async () => {
    const s = subject('grant');
    const { events } = await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'EU', noticeVersion: 'v3' }], ctx);
    expect(events).toHaveLength(1);
    const e = events[0]!;
    expect(e).toMatchObject({ subjectId: s, decision: 'granted', legalBasis: 'consent', method: 'api', replayed: false, recordedAt: new Date(clock.now()).toISOString() });
    // Default expiry: 13 months (the purpose's defaultExpiryMonths).
    expect(e.expiresAt).toBe('2027-04-01T09:00:00.000Z');
    expect(await c.ledger.check(s, 'analytics.reporting')).toMatchObject({ allowed: true, status: 'granted', eventId: e.id, legalBasis: 'consent' });
    const state = await c.ledger.state(s);
    expect(state.find((p) => p.purpose === 'analytics.reporting')).toMatchObject({ status: 'granted', eventId: e.id });
    expect(state.find((p) => p.purpose === 'personalize')).toMatchObject({ status: 'none', eventId: null });

    clock.advance(400 * DAY);
    expect(await c.ledger.check(s, 'analytics.reporting')).toMatchObject({ allowed: false, status: 'expired' });
    clock.advance(-400 * DAY);
  });

  it('withdrawal is a new event and stops processing; history keeps both', async () => {
    const s = subject('withdraw');
    await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted' }], ctx);
    clock.advance(1000);
    await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'withdrawn', method: 'preference_center' }], ctx);
    const check = await c.ledger.check(s, 'personalize');
    expect(check).toMatchObject({ allowed: false, status: 'withdrawn' });
    expect(check.reason).toContain('Art. 7(3)');
    const h = await c.ledger.history(s);
    expect(h.events.map((e) => e.decision)).toEqual(['granted', 'withdrawn']);
  });

  it('purposes on other legal bases are allowed without consent, but an objection stops legitimate interests', async () => {
    const s = subject('basis');
    const contract = await c.ledger.check(s, 'essential.service');
    expect(contract).toMatchObject({ allowed: true, status: 'none', legalBasis: 'contract' });
    expect(contract.reason).toContain('does not require consent');
    expect(await c.ledger.check(s, 'functional.service.improve')).toMatchObject({ allowed: true, legalBasis: 'legitimate_interests' });
    await c.ledger.record([{ subjectId: s, purpose: 'functional.service.improve', decision: 'denied' }], ctx);
    const objected = await c.ledger.check(s, 'functional.service.improve');
    expect(objected).toMatchObject({ allowed: false, status: 'denied' });
    expect(objected.reason).toContain('Art. 21');
    // A contract purpose stays allowed even after a denial event.
    await c.ledger.record([{ subjectId: s, purpose: 'essential.service', decision: 'denied' }], ctx);
    expect(await c.ledger.check(s, 'essential.service')).toMatchObject({ allowed: true, status: 'denied' });
  });

  it('rejects unknown purposes, bad expiry and bad ids, and a bad event leaves the whole batch unwritten', async () => {
    const s = subject('atomic');
    await expectCode(c.ledger.check(s, 'no.such.purpose'), 'CST_ERR_CONSENT_UNKNOWN_PURPOSE');
    const batch: ConsentEventInput[] = [
      { subjectId: s, purpose: 'personalize', decision: 'granted' },
      { subjectId: s, purpose: 'analytics.reporting', decision: 'granted' },
      { subjectId: s, purpose: 'no.such.purpose', decision: 'granted' },
    ];
    await expectCode(c.ledger.record(batch, ctx), 'CST_ERR_CONSENT_UNKNOWN_PURPOSE');
    await expectCode(
      c.ledger.record([batch[0]!, { subjectId: s, purpose: 'personalize', decision: 'granted', expiresAt: '2020-01-01T00:00:00Z' }], ctx),
      'CST_ERR_CONSENT_BAD_EXPIRY',
    );
    await expectCode(c.ledger.record([{ subjectId: 'x'.repeat(257), purpose: 'personalize', decision: 'granted' }], ctx), 'CST_ERR_VALIDATION');
    await expectCode(c.ledger.record([], ctx), 'CST_ERR_VALIDATION');
    await expectCode(c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted', clientTime: '2026-02-30T00:00:00Z' }], ctx), 'CST_ERR_VALIDATION');
    expect(await count(s)).toBe(0);
    expect((await c.ledger.state(s)).every((p) => p.status === 'none')).toBe(true);
  });

  it('rejects a purpose not offered in the jurisdiction', async () => {
    await c.purposes.put('marketing.sms', {
      title: 'SMS offers', description: '', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: 13, jurisdictions: ['EU', 'UK'], gpcOptOut: false,
    });
    const s = subject('offered');
    await expectCode(c.ledger.record([{ subjectId: s, purpose: 'marketing.sms', decision: 'granted', jurisdiction: 'US-CA' }], ctx), 'CST_ERR_CONSENT_PURPOSE_NOT_OFFERED');
    await c.ledger.record([{ subjectId: s, purpose: 'marketing.sms', decision: 'granted', jurisdiction: 'UK' }], ctx);
    expect(await c.ledger.check(s, 'marketing.sms')).toMatchObject({ allowed: true });
  });

  it('records an idempotency key once and answers the same; reuse for another event conflicts', async () => {
    const s = subject('idem');
    const ev: ConsentEventInput = { subjectId: s, purpose: 'personalize', decision: 'granted', idempotencyKey: `k-${s}` };
    const first = await c.ledger.record([ev], ctx);
    clock.advance(5000);
    const again = await c.ledger.record([ev], ctx);
    expect(again.events[0]).toEqual({ ...first.events[0], replayed: true });
    expect(again.batchId).toBe(first.batchId);
    expect(await count(s)).toBe(1);
    await expectCode(c.ledger.record([{ ...ev, decision: 'denied' }], ctx), 'CST_ERR_CONSENT_IDEMPOTENCY_CONFLICT');
    await expectCode(c.ledger.record([ev, { ...ev }], ctx), 'CST_ERR_CONSENT_DUPLICATE_IDEMPOTENCY_KEY');
    expect(await count(s)).toBe(1);
  });

  it('the database itself refuses UPDATE and DELETE on consent_events', async () => {
    const s = subject('append');
    await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted' }], ctx);
    const attempt = async (q: ReturnType<typeof sql>) =>
      q.execute(c.store.db).then(
        () => 'changed',
        (e: Error) => e.message,
      );
    expect(await attempt(sql`update consent_events set decision = 'denied' where subject_id = ${s}`)).toMatch(/append-only/);
    expect(await attempt(sql`delete from consent_events where subject_id = ${s}`)).toMatch(/append-only/);
    if (kind === 'postgres') expect(await attempt(sql`truncate consent_events`)).toMatch(/append-only/);
    expect(await count(s)).toBe(1);
    expect((await c.ledger.history(s)).events[0]!.decision).toBe('granted');
  });

  it('the projection can only follow the history: direct changes to consent_state are refused by the database', async () => {
    const s = subject('guard');
    const r = await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'withdrawn' }], ctx);
    const attempt = async (q: ReturnType<typeof sql>) =>
      q.execute(c.store.db).then(
        () => 'changed',
        (e: Error) => e.message,
      );
    expect(await attempt(sql`update consent_state set decision = 'granted' where subject_id = ${s}`)).toMatch(/only follows consent_events/);
    expect(await attempt(sql`delete from consent_state where subject_id = ${s}`)).toMatch(/only follows consent_events/);
    expect(await attempt(sql`insert into consent_state (subject_id, purpose, event_id, decision, legal_basis, method, gpc, recorded_at)
      values (${s}, 'analytics.reporting', ${r.events[0]!.id}, 'granted', 'consent', 'api', 0, ${r.events[0]!.recordedAt})`)).toMatch(/only follows consent_events/);
    expect(await c.ledger.check(s, 'personalize')).toMatchObject({ allowed: false, status: 'withdrawn' });
  });

  it('refuses what callers may not say: method gpc, an expiring denial', async () => {
    const s = subject('reserved');
    await expectCode(c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'denied', method: 'gpc' as never }], ctx), 'CST_ERR_VALIDATION');
    await expectCode(
      c.ledger.record([{ subjectId: s, purpose: 'functional.service.improve', decision: 'denied', expiresAt: new Date(clock.now() + DAY).toISOString() }], ctx),
      'CST_ERR_CONSENT_BAD_EXPIRY',
    );
    await expectCode(c.ledger.record([{ subjectId: `a\u0000b`, purpose: 'personalize', decision: 'granted' }], ctx), 'CST_ERR_VALIDATION');
    await expectCode(c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted', evidence: { userAgent: 'x'.repeat(2000) } }], ctx), 'CST_ERR_VALIDATION');
    expect(await count(s)).toBe(0);
  });

  it('purpose definitions must be consistent, and a change by another process is seen within the refresh time', async () => {
    await expectCode(
      c.purposes.put('odd.purpose', { title: 'x', description: '', legalBasis: 'contract', consentRequired: true, defaultExpiryMonths: null, jurisdictions: ['*'], gpcOptOut: false }),
      'CST_ERR_PURPOSE_INVALID',
    );
    const other = await createCustodian(c.config, { clock, watch: false });
    try {
      await other.purposes.put('marketing.postal', { title: 'Postal offers', description: '', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: 13, jurisdictions: ['EU'], gpcOptOut: false });
      clock.advance(5001);
      c.purposes.list(); // a stale read starts the refresh
      await new Promise((r) => setTimeout(r, 50));
      expect(c.purposes.peek('marketing.postal')).toMatchObject({ title: 'Postal offers', jurisdictions: ['EU'] });
    } finally {
      await other.close();
    }
  });

  it('answers as-of queries: the state at any past instant', async () => {
    const s = subject('asof');
    const t0 = clock.now();
    clock.advance(DAY);
    const g = await c.ledger.record([{ subjectId: s, purpose: 'marketing.communications.email', decision: 'granted' }], ctx);
    const t1 = clock.now();
    clock.advance(DAY);
    const w = await c.ledger.record([{ subjectId: s, purpose: 'marketing.communications.email', decision: 'withdrawn' }], ctx);
    const t2 = clock.now();
    const at = async (ms: number) => (await c.ledger.history(s, { asOf: new Date(ms).toISOString(), purpose: 'marketing.communications.email' })).state[0];
    expect(await at(t0)).toMatchObject({ status: 'none' });
    expect(await at(t1)).toMatchObject({ status: 'granted', eventId: g.events[0]!.id });
    expect(await at(t1 + DAY / 2)).toMatchObject({ status: 'granted' });
    expect(await at(t2)).toMatchObject({ status: 'withdrawn', eventId: w.events[0]!.id });
    const h = await c.ledger.history(s, { asOf: new Date(t1).toISOString() });
    expect(h.events.map((e) => e.id)).toEqual([g.events[0]!.id]);
    await expectCode(c.ledger.history(s, { asOf: 'last tuesday' }), 'CST_ERR_VALIDATION');
  });

  it('pages through history with a cursor', async () => {
    const s = subject('page');
    const purposes = ['personalize', 'analytics.reporting', 'train_ai_system'];
    for (let i = 0; i < 5; i++) {
      await c.ledger.record([{ subjectId: s, purpose: purposes[i % 3]!, decision: i % 2 ? 'denied' : 'granted' }], ctx);
      clock.advance(10);
    }
    const p1 = await c.ledger.history(s, { limit: 2 });
    const p2 = await c.ledger.history(s, { limit: 2, after: p1.nextCursor! });
    const p3 = await c.ledger.history(s, { limit: 2, after: p2.nextCursor! });
    expect(p3.nextCursor).toBeNull();
    const all = [...p1.events, ...p2.events, ...p3.events];
    expect(all).toHaveLength(5);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort());
  });

  describe('Global Privacy Control', () => {
    const optOut = ['marketing.advertising', 'marketing.advertising.third_party.targeted'];
    const gpcEvents = async (s: string) => (await c.ledger.history(s)).events.filter((e) => e.method === 'gpc');

    it('records an opt-out for sale/share/targeted-advertising purposes where the jurisdiction honours GPC', async () => {
      const s = subject('gpc-ca');
      await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'US-CA' }], { ...ctx, gpc: true });
      const denials = await gpcEvents(s);
      expect(denials.map((e) => e.purpose).sort()).toEqual(optOut);
      expect(denials.every((e) => e.decision === 'denied' && e.gpc)).toBe(true);
      const check = await c.ledger.check(s, 'marketing.advertising');
      expect(check).toMatchObject({ allowed: false, status: 'denied' });
      expect(check.reason).toContain('Global Privacy Control');
      // The signal again: already opted out, nothing new.
      await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'US-CA' }], { ...ctx, gpc: true });
      expect(await gpcEvents(s)).toHaveLength(2);
    });

    it('does nothing in a jurisdiction without a GPC mandate (unless configured)', async () => {
      const s = subject('gpc-eu');
      await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'EU', evidence: { gpc: true } }], ctx);
      expect(await gpcEvents(s)).toHaveLength(0);
      expect((await c.ledger.history(s)).events[0]!.gpc).toBe(true);
    });

    it('keeps an explicit choice made with the signal present: both recorded, state follows the explicit one', async () => {
      const s = subject('gpc-explicit');
      const r = await c.ledger.record([{ subjectId: s, purpose: 'marketing.advertising', decision: 'granted', jurisdiction: 'US-CA', method: 'banner' }], { ...ctx, gpc: true });
      expect(r.events.map((e) => [e.purpose, e.method, e.decision])).toEqual([
        ['marketing.advertising', 'gpc', 'denied'],
        ['marketing.advertising.third_party.targeted', 'gpc', 'denied'],
        ['marketing.advertising', 'banner', 'granted'],
      ]);
      expect(await c.ledger.check(s, 'marketing.advertising')).toMatchObject({ allowed: true, status: 'granted' });
      clock.advance(1000);
      // Later requests carry the signal again: the explicit grant made under the signal stands.
      await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'US-CA' }], { ...ctx, gpc: true });
      expect(await c.ledger.check(s, 'marketing.advertising')).toMatchObject({ allowed: true });
    });

    it('overrides a grant made before the signal was seen', async () => {
      const s = subject('gpc-late');
      await c.ledger.record([{ subjectId: s, purpose: 'marketing.advertising', decision: 'granted', jurisdiction: 'US-CO' }], ctx);
      clock.advance(1000);
      await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'US-CO' }], { ...ctx, gpc: true });
      expect(await c.ledger.check(s, 'marketing.advertising')).toMatchObject({ allowed: false, status: 'denied' });
    });
  });

  it('decodes a TCF v2 string into the evidence and rejects a malformed one', async () => {
    const s = subject('tcf');
    const tc = makeTcString({ purposes: [1, 3, 4] });
    const r = await c.ledger.record([{ subjectId: s, purpose: 'marketing.advertising', decision: 'granted', method: 'tcf', evidence: { tcString: tc } }], ctx);
    expect(r.events[0]!.evidence?.tcf).toMatchObject({ version: 2, cmpId: 10, vendorListVersion: 100, purposeConsents: [1, 3, 4], vendorConsentCount: 1 });
    for (const bad of ['garbage!!', 'AAAA', tc.slice(0, 12), 'CPXxRfAPXxRfAAfKABENB']) {
      await expectCode(c.ledger.record([{ subjectId: s, purpose: 'marketing.advertising', decision: 'granted', evidence: { tcString: bad } }], ctx), 'CST_ERR_CONSENT_BAD_TCF');
    }
    expect(await count(s)).toBe(1);
  });

  it('minimises evidence before storing it', async () => {
    const s = subject('evidence');
    await c.ledger.record(
      [{ subjectId: s, purpose: 'personalize', decision: 'granted', evidence: { ip: '198.51.100.23', userAgent: 'UA/1.0', pageUrl: 'https://example.com/p?mail=a@example.com#f' } }],
      ctx,
    );
    const row = await c.store.db.selectFrom('consent_events').select(['id', 'evidence', 'evidence_format']).where('subject_id', '=', s).executeTakeFirstOrThrow();
    // Sealed under the subject's key, bound to the row: nothing readable at rest.
    expect(row.evidence_format).toBe('aead-v1');
    expect(row.evidence).not.toContain('198.51');
    expect(row.evidence).not.toContain('UA/1.0');
    expect(await c.keyring.decryptFieldText(row.evidence!, `consent_events.evidence:${row.id}`)).toBe(JSON.stringify({ ip: '198.51.100.0', userAgent: 'UA/1.0', pageUrl: 'https://example.com/p' }));
    expect((await c.ledger.history(s)).events[0]!.evidence).toEqual({ ip: '198.51.100.0', userAgent: 'UA/1.0', pageUrl: 'https://example.com/p' });
    await expectCode(c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted', evidence: { ip: '300.1.1.1' } }], ctx), 'CST_ERR_VALIDATION');
  });

  it('after crypto-shredding, history still lists the events, with their evidence marked shredded', async () => {
    const s = subject('shredded');
    const first = await c.ledger.record(
      [{ subjectId: s, purpose: 'personalize', decision: 'granted', noticeVersion: 'v7', idempotencyKey: `shred-${s}`, evidence: { ip: '203.0.113.9', userAgent: 'UA/2' } }],
      ctx,
    );
    await c.keyring.shredSubject(s, { reason: 'erasure request', actor: 'test' });
    const h = await c.ledger.history(s);
    expect(h.events).toHaveLength(1);
    expect(h.events[0]).toMatchObject({ id: first.events[0]!.id, decision: 'granted', purpose: 'personalize', noticeVersion: 'v7', evidence: { shredded: true } });
    expect(h.state.find((p) => p.purpose === 'personalize')).toMatchObject({ status: 'granted' });
    // A replay of the same idempotency key answers with the stored event, evidence shredded too.
    const again = await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted', noticeVersion: 'v7', idempotencyKey: `shred-${s}`, evidence: { ip: '203.0.113.9', userAgent: 'UA/2' } }], ctx);
    expect(again.events[0]).toMatchObject({ replayed: true, evidence: { shredded: true } });
    // New evidence after shredding gets a fresh key and is readable.
    await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'denied', evidence: { userAgent: 'UA/3' } }], ctx);
    expect((await c.ledger.history(s, { purpose: 'analytics.reporting' })).events[0]!.evidence).toEqual({ userAgent: 'UA/3' });
  });

  it('checks many pairs at once, agreeing with single checks', async () => {
    const subjects = [subject('many'), subject('many'), subject('many')];
    await c.ledger.record([
      { subjectId: subjects[0]!, purpose: 'personalize', decision: 'granted' },
      { subjectId: subjects[1]!, purpose: 'personalize', decision: 'denied' },
    ], ctx);
    const pairs = subjects.flatMap((s) => ['personalize', 'essential.service'].map((purpose) => ({ subjectId: s, purpose })));
    const many = await c.ledger.checkMany(pairs);
    for (let i = 0; i < pairs.length; i++) expect(many[i]).toEqual(await c.ledger.check(pairs[i]!.subjectId, pairs[i]!.purpose));
    await expectCode(c.ledger.checkMany([{ subjectId: subjects[0]!, purpose: 'nope' }]), 'CST_ERR_CONSENT_UNKNOWN_PURPOSE');
  });

  it("one subject's reads never include another's data", async () => {
    const a = subject('iso-a');
    const b = subject('iso-b');
    await c.ledger.record([{ subjectId: a, purpose: 'personalize', decision: 'granted' }, { subjectId: b, purpose: 'personalize', decision: 'denied' }], ctx);
    const ha = await c.ledger.history(a);
    expect(ha.events.every((e) => e.subjectId === a)).toBe(true);
    expect(await c.ledger.check(a, 'personalize')).toMatchObject({ allowed: true, subjectId: a });
    expect(await c.ledger.check(b, 'personalize')).toMatchObject({ allowed: false, subjectId: b });
  });

  it('a write by another process reaches a warm cache through the change feed, without waiting for a TTL', async () => {
    const other = await createCustodian(c.config, { clock, watch: false });
    try {
      const s = subject('xproc');
      await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted' }], ctx);
      expect(await c.ledger.check(s, 'personalize')).toMatchObject({ allowed: true }); // cached in c
      await other.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'withdrawn' }], ctx);
      // The manual clock does not move: only the feed (NOTIFY / data_version) can make c see the withdrawal.
      await vi.waitFor(async () => expect(await c.ledger.check(s, 'personalize')).toMatchObject({ allowed: false, status: 'withdrawn' }), { timeout: 2000, interval: 20 });
    } finally {
      await other.close();
    }
  });

  it("without a change feed, the cache TTL bounds how long another process's write goes unseen", async () => {
    const reader = await createCustodian(c.config, { clock, watch: false });
    try {
      const s = subject('ttl');
      await reader.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted' }], ctx);
      expect(await reader.ledger.check(s, 'personalize')).toMatchObject({ allowed: true });
      await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'withdrawn' }], ctx);
      expect(await reader.ledger.check(s, 'personalize')).toMatchObject({ allowed: true }); // still within the 1 s TTL
      clock.advance(1001);
      expect(await reader.ledger.check(s, 'personalize')).toMatchObject({ allowed: false, status: 'withdrawn' });
    } finally {
      await reader.close();
    }
  });
});
