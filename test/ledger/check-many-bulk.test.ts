import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ConsentLedger, type ConsentEventInput } from '../../src/ledger/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

// Bulk checks and decideMany (the consent filter's paths) read only the asked purposes and leave the ledger's cache alone:
// their answers must be exactly those of ordinary checks, whatever the other purposes and restrictions hold.
const PURPOSES = ['analytics.reporting', 'personalize', 'functional.service.improve', 'essential.service', 'train_ai_system'] as const;

describe.each(STORE_KINDS)('checkMany in bulk mode (%s)', (kind) => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let run = 0;

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind));
  });
  afterAll(async () => cleanup?.());

  /** A ledger of its own over the same store, so its cache starts empty. */
  const freshLedger = () => new ConsentLedger({ store: c.store, purposes: c.purposes, clock: c.clock });

  it('answers as ordinary checks do, for every pair, and caches nothing', { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ subject: fc.nat({ max: 5 }), purpose: fc.constantFrom(...PURPOSES), decision: fc.constantFrom<ConsentEventInput['decision']>('granted', 'denied', 'withdrawn') }), { maxLength: 15 }),
        fc.subarray([0, 1, 2, 3, 4, 5]),
        fc.subarray([...PURPOSES], { minLength: 1 }),
        async (events, restricted, asked) => {
          const prefix = `bulk-${kind}-${++run}`;
          const subject = (i: number) => `${prefix}-${i}`;
          if (events.length > 0) await c.ledger.record(events.map((e) => ({ subjectId: subject(e.subject), purpose: e.purpose, decision: e.decision })), { actor: 'test' });
          for (const i of restricted) await c.ledger.restrict(subject(i), { reason: 'accuracy_contested', actor: 'test' });
          const pairs = [0, 1, 2, 3, 4, 5, 6].flatMap((i) => asked.map((purpose) => ({ subjectId: subject(i), purpose })));
          const bulkLedger = freshLedger();
          const bulk = await bulkLedger.checkMany(pairs, { bulk: true });
          expect(bulkLedger.cachedSubjects).toBe(0);
          const ordinary = await freshLedger().checkMany(pairs);
          expect(bulk.map((r) => [r.subjectId, r.purpose, r.allowed, r.status])).toEqual(ordinary.map((r) => [r.subjectId, r.purpose, r.allowed, r.status]));
          // decideMany (one purpose, many subjects), from the store and then partly from a warm cache.
          const ids = [0, 1, 2, 3, 4, 5, 6, 3, 0].map(subject);
          const warm = freshLedger();
          await warm.checkMany([0, 2, 4].map((i) => ({ subjectId: subject(i), purpose: asked[0]! })));
          for (const ledger of [freshLedger(), warm]) {
            for (const purpose of asked) {
              const decided = await ledger.decideMany(ids, purpose);
              expect(decided.size).toBe(7);
              for (const r of ordinary.filter((o) => o.purpose === purpose)) expect(decided.get(r.subjectId), `${r.subjectId} ${purpose}`).toEqual({ allowed: r.allowed, status: r.status });
            }
          }
        },
      ),
      { numRuns: kind === 'postgres' ? 25 : 60 },
    );
  });

  it('uses subjects already cached, and a later ordinary check caches them', async () => {
    const ledger = freshLedger();
    const s = `bulk-${kind}-cached`;
    await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted' }], { actor: 'test' });
    await ledger.checkMany([{ subjectId: s, purpose: 'analytics.reporting' }], { bulk: true });
    expect(ledger.cachedSubjects).toBe(0);
    await ledger.checkMany([{ subjectId: s, purpose: 'analytics.reporting' }]);
    expect(ledger.cachedSubjects).toBe(1);
    const [r] = await ledger.checkMany([{ subjectId: s, purpose: 'analytics.reporting' }], { bulk: true });
    expect(r!.allowed).toBe(true);
    expect(ledger.cachedSubjects).toBe(1);
  });
});
