import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConsentClient } from '../../src/client/index.js';
import { DEFAULT_PURPOSES, ManualClock, toIso, uuidv7, type LegalBasis, type Purpose } from '../../src/core/index.js';
import { evaluate, type StateRow } from '../../src/ledger/index.js';
import { retainedBytes } from '../support/memory.js';

// ConsentClient keeps its decisions in typed-array columns (one row per subject, one cell per decision, event ids
// as 4 × 32 bits when they are canonical UUIDs). These tests hold it to its memory budget and check what the compact
// form must not change: the newest event id wins in string order, whatever the ids look like, and purposes that
// disappear, come back or change their legal basis answer as the server would.

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const MINUTE = 60_000;

/** A fetch serving /v1/purposes and the snapshot (paged by `after` = row offset), as the server would. */
function server(source: () => { purposes: readonly Purpose[]; states: readonly SnapshotRow[]; restrictions: readonly { subjectId: string; eventId: string }[] }): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const world = source();
    if (url.pathname === '/v1/purposes') return Response.json({ purposes: world.purposes });
    const limit = Number(url.searchParams.get('limit'));
    const from = Number(url.searchParams.get('after') ?? 0);
    const states = world.states.slice(from, from + limit);
    const next = from + limit < world.states.length ? String(from + limit) : null;
    return Response.json({ states, restrictions: from === 0 ? world.restrictions : [], restrictionsComplete: true, next, sequence: '0' });
  });
}

/** A snapshot row to generate: `at` orders its id among the others (see `idOf`). */
interface RowSpec {
  readonly subject: number;
  readonly purpose: number;
  readonly decision: StateRow['decision'];
  readonly kind: string;
  readonly at: number;
  readonly expiresIn: number | null;
}

interface SnapshotRow {
  readonly subjectId: string;
  readonly purpose: string;
  readonly decision: StateRow['decision'];
  readonly eventId: string;
  readonly expiresAt: string | null;
}

describe('ConsentClient memory', () => {
  it('holds 100,000 subjects with three decisions each in at most 400 bytes per subject (heap and typed arrays)', async () => {
    // ~250 bytes measured (docs/propagation.md, "Memory"); a Map and an entry object per decision took ~960.
    const N = 100_000;
    const expiresAt = toIso(T0 + 365 * 86_400_000);
    const rows = (from: number, to: number): SnapshotRow[] => {
      const out: SnapshotRow[] = [];
      for (let i = from; i < to; i++) {
        const subjectId = `u-${String(i).padStart(7, '0')}`;
        out.push({ subjectId, purpose: 'analytics.reporting', decision: 'granted', eventId: uuidv7(), expiresAt });
        out.push({ subjectId, purpose: 'personalize', decision: i % 2 === 0 ? 'granted' : 'denied', eventId: uuidv7(), expiresAt: null });
        out.push({ subjectId, purpose: 'marketing.advertising', decision: 'withdrawn', eventId: uuidv7(), expiresAt: null });
      }
      return out;
    };
    const fetchPages = (async (input: string | URL | Request) => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      if (url.pathname === '/v1/purposes') return Response.json({ purposes: DEFAULT_PURPOSES });
      const from = Number(url.searchParams.get('after') ?? 0);
      const to = Math.min(N, from + 3000);
      return Response.json({ states: rows(from, to), restrictions: [], restrictionsComplete: true, next: to < N ? String(to) : null, sequence: '0' });
    }) as typeof fetch;
    const used = retainedBytes;
    const before = used();
    const client = new ConsentClient({ baseUrl: 'http://custodian.test', apiKey: 'k', fetch: fetchPages, clock: new ManualClock(T0), snapshotPageSize: 9000, purposesRefreshMs: 0, maxStalenessMs: 365 * 86_400_000 });
    await client.start();
    try {
      const perSubject = (used() - before) / N;
      expect(client.memoryStats()).toEqual({ subjects: N, packed: N, buckets: 1, filed: N });
      expect(client.isAllowed('u-0000002', 'personalize')).toBe(true);
      expect(client.isAllowed('u-0000003', 'personalize')).toBe(false);
      expect(perSubject).toBeLessThan(400);
    } finally {
      await client.close();
    }
  });

  it('keeps the newest event id in string order, canonical UUID or not, across reloads and purposes that come, go and change basis', async () => {
    const SUBJECTS = ['s-0', 's-1', 's-2'] as const;
    const BASES: readonly LegalBasis[] = ['consent', 'contract', 'legal_obligation', 'legitimate_interests', 'public_task', 'vital_interests'];
    // 'analytics.reporting' is never dropped, and every subject has a row for it: the snapshot makes every subject known.
    const KEPT = 'analytics.reporting';
    const POOL: readonly Purpose[] = DEFAULT_PURPOSES;
    const hex = (n: number) => n.toString(16).padStart(32, '0');
    const uuid = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    const idKind = fc.constantFrom('uuid', 'high', 'upper', 'text');
    const rowArb = fc.record({ subject: fc.nat({ max: SUBJECTS.length - 1 }), purpose: fc.nat({ max: POOL.length - 1 }), decision: fc.constantFrom<StateRow['decision']>('granted', 'denied', 'withdrawn'), kind: idKind, at: fc.nat({ max: 40 }), expiresIn: fc.option(fc.integer({ min: -2 * MINUTE, max: 5 * MINUTE }), { nil: null }) });
    const reloadArb = fc.record({
      rows: fc.array(rowArb, { maxLength: 8 }),
      drop: fc.array(fc.nat({ max: POOL.length - 1 }), { maxLength: 3 }),
      rebase: fc.array(fc.tuple(fc.nat({ max: POOL.length - 1 }), fc.constantFrom(...BASES)), { maxLength: 2 }),
      restricted: fc.array(fc.nat({ max: SUBJECTS.length - 1 }), { maxLength: 1 }),
      advance: fc.integer({ min: 0, max: 3 * MINUTE }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(rowArb, { maxLength: 10 }), fc.array(reloadArb, { minLength: 1, maxLength: 5 }), fc.boolean(), async (initial, reloads, reverse) => {
        let unique = 0;
        // Distinct ids (a counter in the low bits) in four shapes; `at` orders them, differently per shape.
        const idOf = (kind: string, at: number): string => {
          const n = at * 4096 + ++unique;
          if (kind === 'uuid') return uuid(hex(n));
          if (kind === 'high') return uuid(`f${hex(n).slice(1)}`);
          if (kind === 'upper') return uuid(hex(n)).toUpperCase();
          return `0190${String(n).padStart(28, '0')}`;
        };
        const states: SnapshotRow[] = SUBJECTS.map((subjectId) => ({ subjectId, purpose: KEPT, decision: 'granted', eventId: idOf('uuid', 0), expiresAt: null }));
        let purposes: Purpose[] = [...POOL];
        let restrictions: readonly { subjectId: string; eventId: string }[] = [];
        const clock = new ManualClock(T0);
        const add = (rs: readonly RowSpec[]) => {
          for (const r of rs) {
            const expiresAt = r.expiresIn === null || r.decision !== 'granted' ? null : toIso(clock.now() + r.expiresIn);
            states.push({ subjectId: SUBJECTS[r.subject]!, purpose: POOL[r.purpose]!.key, decision: r.decision, eventId: idOf(r.kind, r.at), expiresAt });
          }
        };
        add(initial);
        // Every row, older ones included, in an order that is not the id order.
        const snapshot = () => ({ purposes, states: reverse ? [...states].reverse() : states, restrictions });
        const client = new ConsentClient({ baseUrl: 'http://custodian.test', apiKey: 'k', fetch: server(snapshot), clock, snapshotPageSize: 2, purposesRefreshMs: 0, maxStalenessMs: 365 * 86_400_000 });
        await client.start();
        try {
          const check = () => {
            for (const subjectId of SUBJECTS) {
              for (const p of POOL) {
                const current = purposes.find((q) => q.key === p.key);
                let newest: SnapshotRow | undefined;
                for (const s of states) if (s.subjectId === subjectId && s.purpose === p.key && (newest === undefined || s.eventId > newest.eventId)) newest = s;
                const row: StateRow | undefined = newest === undefined ? undefined : { purpose: p.key, eventId: newest.eventId, decision: newest.decision, method: 'api', jurisdiction: null, gpc: false, recordedAt: 0, expiresAt: newest.expiresAt === null ? null : Date.parse(newest.expiresAt) };
                const restricted = restrictions.some((r) => r.subjectId === subjectId);
                const want = current === undefined ? undefined : evaluate(subjectId, current, row, clock.now(), restricted).allowed;
                expect(client.isAllowed(subjectId, p.key), `${subjectId} ${p.key} newest ${newest?.eventId ?? 'none'}`).toBe(want);
              }
            }
          };
          check();
          for (const r of reloads) {
            add(r.rows);
            purposes = POOL.filter((p, i) => p.key === KEPT || !r.drop.includes(i)).map((p) => {
              const basis = r.rebase.find(([i]) => POOL[i]!.key === p.key)?.[1];
              return basis === undefined ? p : { ...p, legalBasis: basis, consentRequired: basis === 'consent' };
            });
            // A snapshot only adds restrictions (a lifting arrives on the bus), so they accumulate here.
            restrictions = [...restrictions, ...r.restricted.map((i) => ({ subjectId: SUBJECTS[i]!, eventId: idOf('uuid', 40) }))];
            clock.advance(r.advance);
            await client.refresh();
            check();
          }
        } finally {
          await client.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('files a grant that expires in the year 9999 and answers it until then', async () => {
    const expiresAt = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
    const clock = new ManualClock(T0);
    const states: SnapshotRow[] = [{ subjectId: 's-far', purpose: 'analytics.reporting', decision: 'granted', eventId: uuidv7(T0), expiresAt: toIso(expiresAt) }];
    const client = new ConsentClient({ baseUrl: 'http://custodian.test', apiKey: 'k', fetch: server(() => ({ purposes: DEFAULT_PURPOSES, states, restrictions: [] })), clock, purposesRefreshMs: 0, maxStalenessMs: 365 * 86_400_000 });
    await client.start();
    try {
      expect(client.isAllowed('s-far', 'analytics.reporting')).toBe(true);
      expect(client.memoryStats()).toMatchObject({ packed: 1, filed: 1 });
      clock.set(expiresAt - 1);
      expect(client.isAllowed('s-far', 'analytics.reporting')).toBe(true);
      clock.set(expiresAt);
      expect(client.isAllowed('s-far', 'analytics.reporting')).toBe(false);
      expect(client.memoryStats()).toMatchObject({ filed: 0 });
    } finally {
      await client.close();
    }
  });
});
