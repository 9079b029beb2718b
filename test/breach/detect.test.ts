import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { BreachDetector, median } from '../../src/breach/index.js';
import { ManualClock } from '../../src/core/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

const DAY = 86_400_000;

for (const kind of STORE_KINDS) {
  describe(`detection rules on ${kind}`, () => {
    let c: Custodian;
    let cleanup: () => Promise<void>;
    const clock = new ManualClock('2026-03-01T00:00:00.000Z');

    beforeAll(async () => {
      ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
    });
    afterAll(async () => {
      await cleanup?.();
    });

    /** `n` decryptions of `count` values by `key` at the clock's time. */
    async function reads(key: string, n: number, count: number): Promise<void> {
      await c.audit.recordNow(Array.from({ length: n }, () => ({ actor: `key:${key}`, action: 'crypto.decrypted', targetType: 'system' as const, targetId: null, details: { count } })));
    }

    it('opens one suspected incident when a key reads far more than its own baseline, with an event', async () => {
      const detector = new BreachDetector({ store: c.store, clock, incidents: c.incidents, apiKeys: c.apiKeys }, { volumeFactor: 5, volumeFloor: 100, baselineDays: 7 });
      // Seven days of ~50 values a day for both keys.
      for (let d = 0; d < 7; d++) {
        await reads('steady', 5, 10);
        await reads('spiky', 5, 10);
        await sql`select 1`.execute(c.store.db);
        clock.advance(DAY);
      }
      await reads('steady', 6, 10); // 60: normal
      await reads('spiky', 40, 25); // 1,000 > max(5 × 50, 100)
      await c.audit.recordNow([{ actor: 'key:spiky', action: 'consent.history.read', targetType: 'subject', targetId: 'user-1', details: { events: 3 } }]);
      const hits = await detector.run();
      expect(hits).toEqual([expect.objectContaining({ rule: 'read_volume', actor: 'key:spiky', observed: 1001, threshold: 250 })]);
      const incident = await c.incidents.get(hits[0]!.incidentId!);
      expect(incident).toMatchObject({ status: 'suspected', source: 'detection:read_volume:key:spiky' });
      expect(incident.deadlines).toEqual([]);
      const again = await detector.run();
      expect(again[0]!.incidentId).toBeNull();
      const events = await sql<{ data: string }>`select data from event_outbox where type = 'incident.opened'`.execute(c.store.db);
      expect(events.rows.filter((e) => e.data.includes(incident.id))).toHaveLength(1);
    });

    it('read_volume counts each read in its own day, only the baseline days and the last 24 h: older reads, however many, change neither the baseline nor the hit', async () => {
      const detector = new BreachDetector({ store: c.store, clock, incidents: c.incidents, apiKeys: c.apiKeys }, { volumeFactor: 5, volumeFloor: 10, baselineDays: 3 });
      const now = clock.now() + 40 * DAY;
      /** `items` read by key:aged at `at`: one count-weighted entry and one entry that counts 1. */
      const read = async (at: number, items: number) => {
        clock.set(at);
        await c.audit.recordNow([
          { actor: 'key:aged', action: 'crypto.decrypted', targetType: 'system', targetId: null, details: { count: items - 1 } },
          { actor: 'key:aged', action: 'consent.history.read', targetType: 'subject', targetId: 'user-aged', details: {} },
        ]);
      };
      await read(now - 40 * DAY, 10_000); // long before the baseline
      await read(now - 4 * DAY, 10_000); // the baseline's lower bound, which (from, to] leaves out
      await read(now - 4 * DAY + 1, 30); // day 3's first millisecond …
      await read(now - 3 * DAY, 40); // … and its last
      await read(now - 2 * DAY + 3_600_000, 50); // day 2
      await read(now - DAY, 100); // day 1's last millisecond, not the last 24 h's
      await read(now - 3_600_000, 400);
      clock.set(now);
      const hits = (await detector.run()).filter((h) => h.actor === 'key:aged');
      // max(5 × median(100, 50, 70), 10) = 350. Counting either 10,000 gives 500 (no hit); losing day 3's first
      // millisecond 250; moving a day's last millisecond into the next day 450 (day 3's) or 250 (day 1's, observed 500).
      expect(hits).toEqual([expect.objectContaining({ rule: 'read_volume', observed: 400, threshold: 350 })]);
    });

    it('read_volume observes and thresholds exactly the fold of the reads recorded in each 24-hour period', async () => {
      const baselineDays = 3;
      const detector = new BreachDetector({ store: c.store, clock, incidents: c.incidents, apiKeys: c.apiKeys }, { volumeFactor: 2, volumeFloor: 1, baselineDays });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          // Reads up to six days back, on day boundaries as often as not, and one in the last 24 h.
          fc.array(fc.record({ ago: fc.oneof(fc.integer({ min: 0, max: 6 * DAY }), fc.integer({ min: 0, max: 6 }).map((d) => d * DAY)), items: fc.integer({ min: 1, max: 50 }) }), { maxLength: 12 }),
          fc.integer({ min: 0, max: DAY - 1 }),
          async (earlier, lastAgo) => {
            const key = `prop-${kind}-${run++}`;
            const now = clock.now() + 10 * DAY;
            const reads = [...earlier, { ago: lastAgo, items: 1 }].sort((a, b) => b.ago - a.ago);
            for (const r of reads) {
              clock.set(now - r.ago);
              // A count-weighted entry, or as many entries as items of an action that counts one per entry.
              await c.audit.recordNow(
                r.ago % 2 === 0
                  ? [{ actor: `key:${key}`, action: 'crypto.decrypted', targetType: 'system', targetId: null, details: { count: r.items } }]
                  : Array.from({ length: r.items }, () => ({ actor: `key:${key}`, action: 'request.package_downloaded', targetType: 'system' as const, targetId: null })),
              );
            }
            clock.set(now);
            // The model: period p holds the reads with ago in [p days, (p + 1) days), i.e. recorded in (now − (p + 1) days, now − p days].
            const period = (p: number) => reads.filter((r) => r.ago >= p * DAY && r.ago < (p + 1) * DAY).reduce((sum, r) => sum + r.items, 0);
            const observed = period(0);
            const threshold = Math.max(2 * median(Array.from({ length: baselineDays }, (_, d) => period(d + 1))), 1);
            const hits = (await detector.run()).filter((h) => h.actor === `key:${key}`);
            expect(hits).toEqual(observed > threshold ? [expect.objectContaining({ rule: 'read_volume', observed, threshold })] : []);
          },
        ),
        { numRuns: 25 },
      );
    });

    it('opens a suspected incident on bursts of throttled authentication failures', async () => {
      const detector = new BreachDetector({ store: c.store, clock, incidents: c.incidents, apiKeys: c.apiKeys }, { authThrottles: 3, authWindowMs: 600_000 });
      await c.audit.recordNow([1, 2].map(() => ({ actor: 'system:auth', action: 'auth.throttled', targetType: 'system' as const, targetId: null, details: { failures: 30 } })));
      expect((await detector.run()).filter((h) => h.rule === 'auth_failures')).toEqual([]);
      await c.audit.recordNow([{ actor: 'system:auth', action: 'auth.throttled', targetType: 'system', targetId: null, details: { failures: 30 } }]);
      const hit = (await detector.run()).find((h) => h.rule === 'auth_failures')!;
      expect(hit).toMatchObject({ observed: 3, threshold: 3 });
      expect((await c.incidents.get(hit.incidentId!)).status).toBe('suspected');
      clock.advance(11 * 60_000);
      expect((await detector.run()).filter((h) => h.rule === 'auth_failures')).toEqual([]);
    });
  });
}

describe('median', () => {
  it.each([[[], 0], [[3], 3], [[1, 9, 2], 2], [[4, 1, 3, 2], 2.5]] as const)('of %j is %d', (values, m) => expect(median(values)).toBe(m));
});

describe('startBreachMonitoring', () => {
  it('runs the sweep and the detector on every tick until stopped, reporting failures', async () => {
    const { startBreachMonitoring } = await import('../../src/breach/index.js');
    let sweeps = 0;
    let runs = 0;
    const errors: unknown[] = [];
    const incidents = { sweep: async () => { sweeps++; if (sweeps === 2) throw new Error('boom'); return { raised: 0 }; } };
    const detector = { run: async () => { runs++; return []; } };
    const monitor = startBreachMonitoring({ incidents: incidents as never, detector: detector as never }, { everyMs: 10, onError: (e) => errors.push(e) });
    await expect.poll(() => sweeps, { timeout: 2000 }).toBeGreaterThanOrEqual(3);
    await monitor.stop();
    const after = sweeps;
    await new Promise((r) => setTimeout(r, 50));
    expect(sweeps).toBe(after);
    expect(errors).toHaveLength(1);
    expect(runs).toBeGreaterThanOrEqual(1);
  });
});
