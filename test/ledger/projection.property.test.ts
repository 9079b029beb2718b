import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ManualClock } from '../../src/core/index.js';
import { DECISIONS, foldHistory, statusAt, type ConsentEventInput, type StateRow } from '../../src/ledger/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

const PURPOSES = ['analytics.reporting', 'marketing.advertising', 'personalize', 'functional.service.improve'];

const eventArb = fc.record({
  subject: fc.integer({ min: 0, max: 2 }),
  purpose: fc.constantFrom(...PURPOSES),
  decision: fc.constantFrom(...DECISIONS),
  expiresInMs: fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined }),
});
const batchArb = fc.record({
  advanceMs: fc.integer({ min: 0, max: 3000 }),
  gpc: fc.boolean(),
  events: fc.array(eventArb, { minLength: 1, maxLength: 6 }),
});

const toMs = (v: string | Date | null) => (v === null ? null : v instanceof Date ? v.getTime() : Date.parse(v));

describe.each(STORE_KINDS)('projection invariants on %s', (kind) => {
  const clock = new ManualClock('2026-05-01T00:00:00.000Z');
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let run = 0;

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
  });
  afterAll(async () => cleanup());

  it('the stored state always equals the fold of the history, and as-of equals the fold of its prefix', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 8 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 4 }), async (batches, probes) => {
        const prefix = `prop-${++run}-`;
        const subjects = [0, 1, 2].map((i) => `${prefix}${i}`);
        const start = clock.now();
        for (const b of batches) {
          clock.advance(b.advanceMs);
          const events: ConsentEventInput[] = b.events.map((e) => ({
            subjectId: subjects[e.subject]!,
            purpose: e.purpose,
            decision: e.decision,
            jurisdiction: 'US-CA',
            ...(e.expiresInMs !== undefined && e.decision === 'granted' ? { expiresAt: new Date(clock.now() + e.expiresInMs).toISOString() } : {}),
          }));
          await c.ledger.record(events, { actor: 'prop', gpc: b.gpc });
        }
        clock.advance(1);
        const end = clock.now();

        const rows = await c.store.db.selectFrom('consent_events').selectAll().where('subject_id', 'in', subjects).orderBy('id').execute();
        const history = new Map<string, (StateRow & { subjectId: string })[]>();
        for (const r of rows) {
          const list = history.get(r.subject_id) ?? [];
          list.push({
            subjectId: r.subject_id, purpose: r.purpose, eventId: r.id, decision: r.decision as StateRow['decision'], method: r.method as StateRow['method'],
            jurisdiction: r.jurisdiction, gpc: Number(r.gpc) === 1, recordedAt: toMs(r.recorded_at)!, expiresAt: toMs(r.expires_at),
          });
          history.set(r.subject_id, list);
        }
        const stored = await c.store.db.selectFrom('consent_state').selectAll().where('subject_id', 'in', subjects).execute();
        for (const s of subjects) {
          const folded = foldHistory(history.get(s) ?? []);
          const mine = stored.filter((r) => r.subject_id === s);
          expect(mine.length).toBe(folded.size);
          for (const r of mine) {
            expect(r.event_id).toBe(folded.get(r.purpose)?.eventId);
            expect(r.decision).toBe(folded.get(r.purpose)?.decision);
          }
          // Current state and checks agree with the fold.
          const state = await c.ledger.state(s);
          for (const p of PURPOSES) expect(state.find((x) => x.purpose === p)?.status).toBe(statusAt(folded.get(p), end));
          // As-of at random instants equals the fold of the events recorded by then.
          for (const q of probes) {
            const t = Math.floor(start + q * (end - start));
            const expected = foldHistory((history.get(s) ?? []).filter((e) => e.recordedAt <= t));
            const asOf = await c.ledger.history(s, { asOf: new Date(t).toISOString() });
            for (const p of PURPOSES) {
              const got = asOf.state.find((x) => x.purpose === p);
              expect(got?.status).toBe(statusAt(expected.get(p), t));
              expect(got?.eventId ?? null).toBe(expected.get(p)?.eventId ?? null);
            }
          }
        }
      }),
      { numRuns: 25 },
    );
  });
});
