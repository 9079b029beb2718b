import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConsentClient } from '../../src/client/index.js';
import { DEFAULT_PURPOSES, ManualClock, type Purpose } from '../../src/core/index.js';
import { evaluate, type StateRow } from '../../src/ledger/index.js';

// ConsentClient.isAllowed answers most lookups from a packed index (2 bits per purpose per subject) that holds
// time-dependent answers only until an expiry bucket is swept. These properties check it against the server's
// own `evaluate` over random states, restrictions, expiries around bucket boundaries, clock jumps and reloads.

const PURPOSES: readonly Purpose[] = DEFAULT_PURPOSES;
const SUBJECTS = ['s-0', 's-1', 's-2', 's-3', 's-4'] as const;
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);

interface StateSpec {
  readonly subject: number;
  readonly purpose: number;
  readonly decision: StateRow['decision'];
  /** Expiry offset from T0 in ms, or null. */
  readonly expiresIn: number | null;
}

interface World {
  states: Map<string, { eventId: string; decision: StateRow['decision']; expiresAt: number | null }>;
  restricted: Set<string>;
}

let seq = 0;
/** Time-ordered, distinct event ids (what the client compares to keep the newest). */
const nextEventId = () => `0190${String(++seq).padStart(28, '0')}`;

function apply(world: World, specs: readonly StateSpec[], restricted: readonly number[]): void {
  for (const s of specs) {
    // Only grants can expire (the ledger refuses an expiry on anything else: CST_ERR_CONSENT_BAD_EXPIRY).
    const expiresAt = s.expiresIn === null || s.decision !== 'granted' ? null : T0 + s.expiresIn;
    world.states.set(`${SUBJECTS[s.subject]!}|${PURPOSES[s.purpose]!.key}`, { eventId: nextEventId(), decision: s.decision, expiresAt });
  }
  for (const r of restricted) world.restricted.add(SUBJECTS[r]!);
}

/** A fetch serving /v1/purposes and one snapshot page of `world` (as the server would). */
function server(world: World): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    if (url.pathname === '/v1/purposes') return Response.json({ purposes: PURPOSES });
    const states = [...world.states].map(([k, v]) => {
      const [subjectId, purpose] = k.split('|') as [string, string];
      return { subjectId, purpose, decision: v.decision, eventId: v.eventId, expiresAt: v.expiresAt === null ? null : new Date(v.expiresAt).toISOString() };
    });
    const restrictions = [...world.restricted].map((subjectId) => ({ subjectId, eventId: nextEventId() }));
    return Response.json({ states, restrictions, restrictionsComplete: true, next: null, sequence: '0' });
  });
}

/** What the server answers for (subject, purpose) at `at`, or undefined where the client cannot know (never seen). */
function expected(world: World, subjectId: string, p: Purpose, at: number): boolean {
  const st = world.states.get(`${subjectId}|${p.key}`);
  const row: StateRow | undefined = st === undefined ? undefined : { purpose: p.key, eventId: st.eventId, decision: st.decision, method: 'api', jurisdiction: null, gpc: false, recordedAt: 0, expiresAt: st.expiresAt };
  return evaluate(subjectId, p, row, at, world.restricted.has(subjectId)).allowed;
}

const MINUTE = 60_000;
// Expiries cluster around bucket boundaries (whole minutes) and the instants the clock visits.
const offset = fc.oneof(fc.integer({ min: -3 * MINUTE, max: 10 * MINUTE }), fc.tuple(fc.integer({ min: 0, max: 10 }), fc.integer({ min: -2, max: 2 })).map(([m, d]) => m * MINUTE + d));
const spec = fc.record({
  subject: fc.nat({ max: SUBJECTS.length - 1 }),
  purpose: fc.nat({ max: PURPOSES.length - 1 }),
  decision: fc.constantFrom<StateRow['decision']>('granted', 'denied', 'withdrawn'),
  expiresIn: fc.option(offset, { nil: null }),
});
const step = fc.record({
  advance: fc.oneof(fc.integer({ min: 0, max: 2 * MINUTE }), fc.constantFrom(1, MINUTE, MINUTE - 1, 59 * MINUTE), fc.integer({ min: 0, max: 3 * 3_600_000 })),
  changes: fc.array(spec, { maxLength: 3 }),
  restrict: fc.array(fc.nat({ max: SUBJECTS.length - 1 }), { maxLength: 1 }),
});

describe('ConsentClient packed index', () => {
  it('answers exactly as the server would, at every instant, across expiries, bucket sweeps, clock jumps and reloads', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(spec, { maxLength: 12 }), fc.array(fc.nat({ max: SUBJECTS.length - 1 }), { maxLength: 2 }), fc.integer({ min: 0, max: MINUTE - 1 }), fc.array(step, { minLength: 1, maxLength: 8 }), async (initial, restricted, startWithin, steps) => {
        const world: World = { states: new Map(), restricted: new Set() };
        // Every subject has at least one state, so the snapshot makes it known (complete) to the client.
        apply(world, SUBJECTS.map((_, i) => ({ subject: i, purpose: 0, decision: 'granted', expiresIn: null })), []);
        apply(world, initial, restricted);
        const clock = new ManualClock(T0 - MINUTE + startWithin);
        const client = new ConsentClient({ baseUrl: 'http://custodian.test', apiKey: 'k', fetch: server(world), clock, maxStalenessMs: 365 * 86_400_000, purposesRefreshMs: 0 });
        await client.start();
        try {
          const check = () => {
            for (const subjectId of SUBJECTS) {
              for (const p of PURPOSES) {
                // Twice: the first lookup may sweep, the second must agree.
                expect(client.isAllowed(subjectId, p.key), `${subjectId} ${p.key} at T0${clock.now() - T0 >= 0 ? '+' : ''}${clock.now() - T0}`).toBe(expected(world, subjectId, p, clock.now()));
                expect(client.isAllowed(subjectId, p.key)).toBe(expected(world, subjectId, p, clock.now()));
              }
            }
          };
          check();
          for (const s of steps) {
            clock.advance(s.advance);
            check();
            if (s.changes.length > 0 || s.restrict.length > 0) {
              apply(world, s.changes, s.restrict);
              await client.refresh();
              check();
            }
          }
        } finally {
          await client.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('keeps a subject filed under one expiry bucket however often its grants change (bounded memory)', async () => {
    const world: World = { states: new Map(), restricted: new Set() };
    const clock = new ManualClock(T0);
    apply(world, [{ subject: 0, purpose: 2, decision: 'granted', expiresIn: 3_600_000 }], []);
    const client = new ConsentClient({ baseUrl: 'http://custodian.test', apiKey: 'k', fetch: server(world), clock, maxStalenessMs: 365 * 86_400_000, purposesRefreshMs: 0 });
    await client.start();
    try {
      for (let i = 1; i <= 50; i++) {
        apply(world, [{ subject: 0, purpose: 2, decision: 'granted', expiresIn: 3_600_000 + i * MINUTE }], []);
        await client.refresh();
      }
      expect(client.isAllowed('s-0', 'analytics.reporting')).toBe(true);
      // 50 renewals later the grant expires once, at its latest expiry, not at any earlier one.
      clock.advance(3_600_000 + 50 * MINUTE - 1);
      expect(client.isAllowed('s-0', 'analytics.reporting')).toBe(true);
      clock.advance(1);
      expect(client.isAllowed('s-0', 'analytics.reporting')).toBe(false);
      expect(client.memoryStats().filed).toBeLessThanOrEqual(1);
    } finally {
      await client.close();
    }
  });
});
