import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ManualClock, isCustodianError } from '../../src/core/index.js';
import { ConsentLedger, type EvidenceCipher } from '../../src/ledger/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

let seq = 0;
/** A subject id unique to this run, so tests sharing a store never see each other's data. */
const subject = (label: string) => `${label}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
const OPT_OUT = ['marketing.advertising', 'marketing.advertising.third_party.targeted'];

describe.each(STORE_KINDS)('ConsentLedger.applyGpc on %s', (kind) => {
  const clock = new ManualClock('2026-03-01T09:00:00.000Z');
  let c: Custodian;
  let cleanup: () => Promise<void>;
  const ctx = { actor: 'privacy_center:0123456789abcdef' };

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
  });
  afterAll(async () => cleanup());

  const stateOf = async (s: string, purpose: string) => (await c.ledger.state(s)).find((p) => p.purpose === purpose);
  const eventsOf = async (s: string) => (await c.ledger.history(s)).events;

  it('opts an undecided subject out of every GPC purpose once, through the one write path (audit, outbox)', async () => {
    const s = subject('visit');
    const head = await c.outbox.head();
    const first = await c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx, requestId: 'req-1' });
    expect(first).toMatchObject({ honoured: true, purposes: OPT_OUT });
    expect(first.batchId).toMatch(/^[0-9a-f-]{36}$/);
    const events = await eventsOf(s);
    expect(events.map((e) => [e.purpose, e.decision, e.method, e.gpc, e.jurisdiction, e.actor])).toStrictEqual(OPT_OUT.map((p) => [p, 'denied', 'gpc', true, 'US-CA', ctx.actor]));
    expect(await c.ledger.check(s, 'marketing.advertising')).toMatchObject({ allowed: false, reason: 'opted out by Global Privacy Control signal' });
    // The same audit entry and outbox events as any other recorded batch.
    const audited = (await c.audit.list({ action: 'consent.recorded' })).entries.filter((e) => e.targetRef === first.batchId);
    expect(audited).toHaveLength(1);
    expect(audited[0]!.details).toMatchObject({ events: 2, gpcOptOuts: 2, subjects: 1, purposes: OPT_OUT });
    const outboxed = (await c.outbox.read(head, 1000)).filter((e) => e.subject === s);
    expect(outboxed.map((e) => [e.type, e.data.purposes, e.data.gpc])).toStrictEqual(OPT_OUT.map((p) => ['consent.denied', [p], true]));

    // Every later visit with the signal: nothing new (idempotent), on this process and in the store.
    for (let i = 0; i < 3; i++) expect(await c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx })).toStrictEqual({ honoured: true, purposes: [], batchId: null });
    expect(await eventsOf(s)).toHaveLength(2);
  });

  it('overrides a grant made without the signal, and honours one made while it was present (11 CCR §7025(c)(3))', async () => {
    const s = subject('grants');
    await c.ledger.record([{ subjectId: s, purpose: 'marketing.advertising', decision: 'granted', jurisdiction: 'US-CA' }], { actor: 'test' });
    expect((await stateOf(s, 'marketing.advertising'))?.status).toBe('granted');
    clock.advance(1000);
    expect((await c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx })).purposes).toStrictEqual(OPT_OUT);
    expect(await stateOf(s, 'marketing.advertising')).toMatchObject({ status: 'denied', method: 'gpc' });

    // The person, shown the conflict, allows advertising with the signal still on: that choice stands.
    clock.advance(1000);
    await c.ledger.record([{ subjectId: s, purpose: 'marketing.advertising', decision: 'granted', jurisdiction: 'US-CA', method: 'privacy_center' }], { actor: 'test', gpc: true });
    clock.advance(1000);
    expect((await c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx })).purposes).toStrictEqual([]);
    expect(await stateOf(s, 'marketing.advertising')).toMatchObject({ status: 'granted', method: 'privacy_center' });
  });

  it('does nothing where the jurisdiction does not honour GPC, and refuses a malformed one', async () => {
    const s = subject('eu');
    expect(await c.ledger.applyGpc(s, { jurisdiction: 'EU', ...ctx })).toStrictEqual({ honoured: false, purposes: [], batchId: null });
    expect(await c.ledger.applyGpc(s, { jurisdiction: null, ...ctx })).toStrictEqual({ honoured: false, purposes: [], batchId: null });
    expect(await eventsOf(s)).toHaveLength(0);
    const err = await c.ledger.applyGpc(s, { jurisdiction: 'california', ...ctx }).catch((e: unknown) => e);
    expect(isCustodianError(err, 'CST_ERR_VALIDATION')).toBe(true);
    const bad = await c.ledger.applyGpc('', { jurisdiction: 'US-CA', ...ctx }).catch((e: unknown) => e);
    expect(isCustodianError(bad, 'CST_ERR_VALIDATION')).toBe(true);
  });

  it('records the opt-outs once when two visits apply the signal at the same moment', async () => {
    const s = subject('race');
    const results = await Promise.all(Array.from({ length: 4 }, () => c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx })));
    expect(results.flatMap((r) => r.purposes).sort()).toStrictEqual(OPT_OUT);
    expect(await eventsOf(s)).toHaveLength(2);
  });

  it('property: after applyGpc every GPC purpose is opted out or granted with the signal, and a second call changes nothing', async () => {
    type Step = { kind: 'apply' } | { kind: 'decide'; purpose: string; decision: 'granted' | 'withdrawn' | 'denied'; gpc: boolean };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.constant<Step>({ kind: 'apply' }),
      fc.record({ kind: fc.constant('decide' as const), purpose: fc.constantFrom(...OPT_OUT, 'analytics.reporting'), decision: fc.constantFrom('granted' as const, 'withdrawn' as const, 'denied' as const), gpc: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 6 }), async (steps) => {
        const s = subject('prop');
        for (const st of steps) {
          clock.advance(10);
          if (st.kind === 'apply') await c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx });
          else await c.ledger.record([{ subjectId: s, purpose: st.purpose, decision: st.decision, jurisdiction: 'US-CA' }], { actor: 'test', gpc: st.gpc });
        }
        clock.advance(10);
        await c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx });
        const state = await c.ledger.state(s);
        const history = await eventsOf(s);
        for (const purpose of OPT_OUT) {
          const p = state.find((x) => x.purpose === purpose)!;
          if (p.status === 'granted') {
            // Only a grant made with the signal survives it.
            expect(history.filter((e) => e.purpose === purpose).at(-1)?.gpc).toBe(true);
          } else {
            expect(['denied', 'withdrawn']).toContain(p.status);
          }
        }
        const before = history.length;
        clock.advance(10);
        expect((await c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx })).purposes).toStrictEqual([]);
        expect(await eventsOf(s)).toHaveLength(before);
      }),
      { numRuns: kind === 'sqlite' ? 40 : 15 },
    );
  });

  it('an explicit choice whose ids were drawn before a concurrent GPC opt-out committed is written after it, not overtaken', async () => {
    const s = subject('race');
    // A ledger whose evidence sealing waits for the test: record() has drawn its event ids and pauses there,
    // the window in which another tab's visit applies the signal.
    let release!: () => void;
    let paused!: () => void;
    const sealing = new Promise<void>((r) => (paused = r));
    const gate = new Promise<void>((r) => (release = r));
    const keyring = c.keyring;
    const cipher: EvidenceCipher = {
      encryptMany: async (items) => {
        paused();
        await gate;
        return keyring.encryptMany(items);
      },
      decryptManyText: (items) => keyring.decryptManyText(items),
      keyedDigest: (text) => keyring.keyedDigest(text),
    };
    const tab = new ConsentLedger({ store: c.store, purposes: c.purposes, clock, cipher, audit: c.audit, events: c.outbox });
    const choice = tab.record([{ subjectId: s, purpose: 'marketing.advertising', decision: 'granted', jurisdiction: 'US-CA', method: 'privacy_center', evidence: { userAgent: 'test' } }], { actor: 'test', gpc: true });
    await sealing;
    clock.advance(5);
    expect((await c.ledger.applyGpc(s, { jurisdiction: 'US-CA', ...ctx })).purposes).toStrictEqual(OPT_OUT);
    release();
    await choice;
    // The person's grant, made with the signal present, is the deciding event; the opt-out precedes it.
    expect(await stateOf(s, 'marketing.advertising')).toMatchObject({ status: 'granted', method: 'privacy_center' });
    const history = (await eventsOf(s)).filter((e) => e.purpose === 'marketing.advertising');
    expect(history.map((e) => [e.decision, e.method])).toStrictEqual([['denied', 'gpc'], ['granted', 'privacy_center']]);
  });
});
