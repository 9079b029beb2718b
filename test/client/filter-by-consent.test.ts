import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import {
  DROP_REASONS,
  filterBatchesByConsent,
  filterByConsent,
  httpLookup,
  ledgerLookup,
  type ConsentDecision,
  type ConsentLookup,
  type DropReason,
  type FilterSummary,
} from '../../src/client/index.js';
import { ManualClock, isCustodianError, toIso } from '../../src/core/index.js';
import { buildServer } from '../../src/server/index.js';
import { custodianFixture } from '../support/stores.js';

/* filterByConsent and its lookups, against a real Custodian on SQLite (and a real server for httpLookup). */

interface Rec {
  readonly i: number;
  readonly user_id?: unknown;
}

const PURPOSE = 'train_ai_system';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function zeroDrops(): Record<DropReason, number> {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
}

/** A lookup answering from a fixed table, recording every call. */
function tableLookup(table: ReadonlyMap<string, ConsentDecision>): ConsentLookup & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    async checkMany(ids) {
      calls.push([...ids]);
      const out = new Map<string, ConsentDecision>();
      for (const id of ids) out.set(id, table.get(id) ?? { allowed: false, status: 'none' });
      return out;
    },
  };
}

describe('filterByConsent', () => {
  const clock = new ManualClock('2026-03-01T12:00:00.000Z');
  let custodian: Custodian;
  let cleanup: () => Promise<void>;
  let seq = 0;
  const fresh = (label: string): string => `${label}-${++seq}`;

  async function decide(subjectId: string, purpose: string, decision: 'granted' | 'denied' | 'withdrawn', expiresAt?: string): Promise<void> {
    await custodian.ledger.record([{ subjectId, purpose, decision, method: 'api', ...(expiresAt ? { expiresAt } : {}) }], { actor: 'test' });
  }

  beforeAll(async () => {
    const f = await custodianFixture('sqlite', { clock });
    custodian = f.custodian;
    cleanup = f.cleanup;
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it('keeps only consented records, in order, and counts each drop reason', async () => {
    const [granted, denied, withdrawn, expiring, none] = ['g', 'd', 'w', 'e', 'n'].map(fresh) as [string, string, string, string, string];
    await decide(granted, PURPOSE, 'granted');
    await decide(denied, PURPOSE, 'denied');
    await decide(withdrawn, PURPOSE, 'granted');
    await decide(withdrawn, PURPOSE, 'withdrawn');
    await decide(expiring, PURPOSE, 'granted', toIso(clock.now() + 60_000));
    clock.advance(120_000);
    const input: Rec[] = [
      { i: 0, user_id: granted },
      { i: 1, user_id: denied },
      { i: 2, user_id: withdrawn },
      { i: 3, user_id: expiring },
      { i: 4, user_id: none },
      { i: 5 },
      { i: 6, user_id: 42 },
      { i: 7, user_id: '' },
      { i: 8, user_id: null },
      { i: 9, user_id: 'x'.repeat(257) },
      { i: 10, user_id: 'nul\u0000id' },
      { i: 11, user_id: granted },
    ];
    const { records, summary } = filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup: ledgerLookup(custodian.ledger, { purposes: custodian.purposes }), clock });
    expect((await collect(records)).map((r) => r.i)).toEqual([0, 11]);
    const s = await summary;
    expect(s).toMatchObject({ read: 12, kept: 2, lookups: 1, subjectsLookedUp: 5 });
    expect(s.dropped).toStrictEqual({ ...zeroDrops(), denied: 1, withdrawn: 1, expired: 1, no_consent: 1, missing_subject: 4, invalid_subject: 2 });
    expect(s.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('reads a nested subject field through a dotted path, or a function', async () => {
    const granted = fresh('nested');
    await decide(granted, PURPOSE, 'granted');
    const input = [{ user: { id: granted } }, { user: { id: 'nobody' } }, { user: 'flat' }, {}];
    const byPath = filterByConsent(input, { purpose: PURPOSE, subjectField: 'user.id', lookup: ledgerLookup(custodian.ledger), clock });
    expect(await collect(byPath.records)).toEqual([input[0]]);
    expect((await byPath.summary).dropped).toMatchObject({ no_consent: 1, missing_subject: 2 });
    const byFn = filterByConsent(input, { purpose: PURPOSE, subjectField: (r) => (r.user as { id?: string } | undefined)?.id, lookup: ledgerLookup(custodian.ledger), clock });
    expect(await collect(byFn.records)).toEqual([input[0]]);
  });

  it('follows the legal basis: contract purposes need no consent; legitimate interests stop on an objection', async () => {
    const [silent, objected, withdrew] = ['s', 'o', 'w'].map(fresh) as [string, string, string];
    await decide(objected, 'functional.service.improve', 'denied');
    await decide(withdrew, 'functional.service.improve', 'withdrawn');
    const input = [silent, objected, withdrew].map((user_id, i) => ({ i, user_id }));
    const contract = filterByConsent(input, { purpose: 'essential.service', subjectField: 'user_id', lookup: ledgerLookup(custodian.ledger), clock });
    expect((await collect(contract.records)).map((r) => r.i)).toEqual([0, 1, 2]);
    const li = filterByConsent(input, { purpose: 'functional.service.improve', subjectField: 'user_id', lookup: ledgerLookup(custodian.ledger), clock });
    expect((await collect(li.records)).map((r) => r.i)).toEqual([0]);
    expect((await li.summary).dropped).toMatchObject({ denied: 1, withdrawn: 1 });
  });

  it('rejects an unknown purpose before reading any record', async () => {
    let pulled = 0;
    function* source(): Generator<Rec> {
      pulled++;
      yield { i: 0, user_id: 'a' };
    }
    const { records, summary } = filterByConsent(source(), { purpose: 'no.such.purpose', subjectField: 'user_id', lookup: ledgerLookup(custodian.ledger, { purposes: custodian.purposes }) });
    const err = await collect(records).catch((e: unknown) => e);
    expect(isCustodianError(err, 'CST_ERR_CONSENT_UNKNOWN_PURPOSE')).toBe(true);
    await expect(summary).rejects.toBe(err);
    expect(pulled).toBe(0);
  });

  it('looks up the distinct unknown subjects of a window in one call, and reuses fresh decisions', async () => {
    const lookup = tableLookup(new Map([['a', { allowed: true, status: 'granted' }]]));
    const input = ['a', 'b', 'a', 'c', 'a', 'b'].map((user_id, i) => ({ i, user_id }));
    const { records, summary } = filterByConsent([...input, ...input], { purpose: PURPOSE, subjectField: 'user_id', lookup, windowSize: 6, clock });
    expect((await collect(records)).map((r) => r.i)).toEqual([0, 2, 4, 0, 2, 4]);
    expect(lookup.calls).toEqual([['a', 'b', 'c']]);
    expect(await summary).toMatchObject({ read: 12, kept: 6, lookups: 1, subjectsLookedUp: 3 });
  });

  it('splits a lookup into calls of at most batchSize subjects', async () => {
    const lookup = tableLookup(new Map());
    const input = Array.from({ length: 25 }, (_, i) => ({ i, user_id: `u${i}` }));
    await collect(filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup, windowSize: 25, batchSize: 10, clock }).records);
    expect(lookup.calls.map((c) => c.length)).toEqual([10, 10, 5]);
  });

  it('never reads more than one window ahead of the consumer (async and sync sources)', async () => {
    const W = 7;
    const lookup = tableLookup(new Map(Array.from({ length: 100 }, (_, i) => [`u${i}`, { allowed: i % 3 !== 0, status: i % 3 !== 0 ? 'granted' : 'denied' }])));
    let pulled = 0;
    async function* asyncSource(): AsyncGenerator<Rec> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield { i, user_id: `u${i}` };
      }
    }
    function* syncSource(): Generator<Rec> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield { i, user_id: `u${i}` };
      }
    }
    for (const source of [asyncSource, syncSource]) {
      pulled = 0;
      let maxAhead = 0;
      const seen: number[] = [];
      for await (const r of filterByConsent<Rec>(source(), { purpose: PURPOSE, subjectField: 'user_id', lookup, windowSize: W, clock }).records) {
        maxAhead = Math.max(maxAhead, pulled - r.i);
        seen.push(r.i);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(maxAhead).toBeLessThanOrEqual(W);
      expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 3 !== 0));
    }
  });

  it('stops reading the source and settles the summary when the consumer stops early', async () => {
    let pulled = 0;
    let released = false;
    async function* source(): AsyncGenerator<Rec> {
      try {
        for (let i = 0; ; i++) {
          pulled++;
          yield { i, user_id: 'a' };
        }
      } finally {
        released = true;
      }
    }
    const { records, summary } = filterByConsent(source(), { purpose: PURPOSE, subjectField: 'user_id', lookup: tableLookup(new Map([['a', { allowed: true, status: 'granted' }]])), windowSize: 5, clock });
    for await (const r of records) if (r.i === 2) break;
    expect(released).toBe(true);
    expect(pulled).toBe(5);
    expect(await summary).toMatchObject({ read: 5, kept: 5 });
  });

  it('with the ledger change feed, honours a withdrawal from the next window on, without waiting for recheckMs', async () => {
    const subject = fresh('mid-run-feed');
    await decide(subject, PURPOSE, 'granted');
    const input = Array.from({ length: 50 }, (_, i) => ({ i, user_id: subject }));
    const kept: number[] = [];
    const lookup = ledgerLookup(custodian.ledger);
    expect('watchChanges' in lookup).toBe(true);
    const { records, summary } = filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup, windowSize: 10, recheckMs: 60_000, clock });
    for await (const r of records) {
      kept.push(r.i);
      if (r.i === 15) await decide(subject, PURPOSE, 'withdrawn');
    }
    // Windows 0–9 and 10–19 were decided before the withdrawal; its change notice dropped the cached grant, so
    // the window 20–29 is looked up again and dropped, although the recheck bound (60 s) had not elapsed.
    expect(kept).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const s = await summary;
    expect(s).toMatchObject({ read: 50, kept: 20, lookups: 2 });
    expect(s.dropped.withdrawn).toBe(30);
  });

  it('without a change feed, honours a withdrawal recorded mid-run once the decision is older than recheckMs', async () => {
    const subject = fresh('mid-run');
    await decide(subject, PURPOSE, 'granted');
    const W = 10;
    const RECHECK = 1000;
    const input = Array.from({ length: 50 }, (_, i) => ({ i, user_id: subject }));
    const kept: number[] = [];
    const withFeed = ledgerLookup(custodian.ledger);
    const timerOnly: ConsentLookup = { checkMany: (ids, purpose, options) => withFeed.checkMany(ids, purpose, options) };
    const { records, summary } = filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup: timerOnly, windowSize: W, recheckMs: RECHECK, clock });
    for await (const r of records) {
      kept.push(r.i);
      if (r.i === 15) {
        await decide(subject, PURPOSE, 'withdrawn');
        // Still inside the recheck bound: the next window reuses the cached grant.
      }
      if (r.i === 25) clock.advance(RECHECK);
    }
    // Windows 0–9 and 10–19 were decided before the withdrawal; 20–29 within the bound (cached grant);
    // the window read after the bound elapsed (30–39) is looked up again and dropped, and all after it.
    expect(kept).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const s = await summary;
    expect(s).toMatchObject({ read: 50, kept: 30, lookups: 2 });
    expect(s.dropped.withdrawn).toBe(20);
  });

  it('a withdrawal seen through another Custodian on the same store (another process) is honoured too', async () => {
    const subject = fresh('other-process');
    await decide(subject, PURPOSE, 'granted');
    // The same store opened a second time stands for another process: its ledger has its own cache.
    const { createCustodian, loadConfig } = await import('../../src/app/index.js');
    const second = await createCustodian(loadConfig({}, { dbUrl: custodian.config.dbUrl, dataDir: custodian.config.dataDir, logLevel: 'silent' }), { clock });
    try {
      const input = Array.from({ length: 30 }, (_, i) => ({ i, user_id: subject }));
      const kept: number[] = [];
      const { records } = filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup: ledgerLookup(second.ledger), windowSize: 10, recheckMs: 500, clock });
      for await (const r of records) {
        kept.push(r.i);
        if (r.i === 5) {
          await decide(subject, PURPOSE, 'withdrawn');
          // Past our recheck bound and the second ledger's own cache TTL (1 s without its change feed).
          clock.advance(1000);
          await new Promise((resolve) => setTimeout(resolve, 150));
        }
      }
      expect(kept).toEqual(Array.from({ length: 10 }, (_, i) => i));
    } finally {
      await second.close();
    }
  });

  it('output = input filtered by the consent oracle, in order, whatever the windows and batches (property)', async () => {
    const subjects = ['a', 'b', 'c', 'd', 'e', 'f'];
    const statuses = ['granted', 'denied', 'withdrawn', 'expired', 'none'] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...statuses), { minLength: subjects.length, maxLength: subjects.length }),
        fc.array(fc.oneof(fc.constantFrom(...subjects), fc.constantFrom(undefined, '', 7, 'x'.repeat(300))), { maxLength: 200 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        async (st, ids, windowSize, batchSize, batched) => {
          const oracle = new Map(subjects.map((s, k) => [s, { allowed: st[k] === 'granted', status: st[k]! }]));
          const lookup = tableLookup(oracle);
          const input = ids.map((user_id, i) => ({ i, user_id }));
          const expected = input.filter((r) => typeof r.user_id === 'string' && oracle.get(r.user_id)?.allowed === true);
          let out: Rec[];
          let summary: FilterSummary;
          const options = { purpose: PURPOSE, subjectField: 'user_id', lookup, windowSize, batchSize, clock } as const;
          if (batched) {
            const pages = [input.slice(0, 13), input.slice(13, 90), input.slice(90)];
            const r = filterBatchesByConsent<Rec>(pages, options);
            out = (await collect(r.batches)).flat();
            summary = await r.summary;
          } else {
            const r = filterByConsent<Rec>(input, options);
            out = await collect(r.records);
            summary = await r.summary;
          }
          expect(out).toEqual(expected);
          for (const call of lookup.calls) {
            expect(call.length).toBeLessThanOrEqual(batchSize);
            expect(new Set(call).size).toBe(call.length);
          }
          const reasons: Record<string, DropReason> = { denied: 'denied', withdrawn: 'withdrawn', expired: 'expired', none: 'no_consent' };
          const drops = zeroDrops();
          for (const r of input) {
            if (typeof r.user_id !== 'string' || r.user_id === '') drops.missing_subject++;
            else if (r.user_id.length > 256) drops.invalid_subject++;
            else if (!oracle.get(r.user_id)!.allowed) drops[reasons[oracle.get(r.user_id)!.status]!]++;
          }
          expect(summary).toMatchObject({ read: input.length, kept: expected.length, dropped: drops });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('matches ledger.check record by record on the real ledger (property)', async () => {
    const pool = Array.from({ length: 8 }, () => fresh('p'));
    const decisions = ['granted', 'denied', 'withdrawn'] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...pool), fc.constantFrom(...decisions)), { maxLength: 6 }),
        fc.array(fc.constantFrom(...pool), { maxLength: 60 }),
        async (events, ids) => {
          for (const [s, d] of events) await decide(s, PURPOSE, d);
          clock.advance(5000);
          const input = ids.map((user_id, i) => ({ i, user_id }));
          const expected: number[] = [];
          for (const r of input) if ((await custodian.ledger.check(r.user_id, PURPOSE)).allowed) expected.push(r.i);
          const { records } = filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup: ledgerLookup(custodian.ledger), windowSize: 9, clock });
          expect((await collect(records)).map((r) => r.i)).toEqual(expected);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('fails the iteration and the summary when a lookup fails, and honours an abort signal', async () => {
    const boom = new Error('lookup down');
    const failing: ConsentLookup = {
      async checkMany() {
        throw boom;
      },
    };
    const r = filterByConsent([{ user_id: 'a' }], { purpose: PURPOSE, subjectField: 'user_id', lookup: failing });
    await expect(collect(r.records)).rejects.toBe(boom);
    await expect(r.summary).rejects.toBe(boom);

    const ac = new AbortController();
    const input = Array.from({ length: 100 }, (_, i) => ({ i, user_id: 'a' }));
    const aborted = filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup: tableLookup(new Map([['a', { allowed: true, status: 'granted' }]])), windowSize: 10, signal: ac.signal });
    const seen: number[] = [];
    const err = await (async () => {
      for await (const x of aborted.records) {
        seen.push(x.i);
        if (x.i === 12) ac.abort();
      }
    })().catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(seen.length).toBe(20);
  });

  it('rejects bad options with CST_ERR_VALIDATION', () => {
    const lookup = tableLookup(new Map());
    for (const bad of [{ windowSize: -1 }, { batchSize: 10_001 }, { recheckMs: 1.5 }, { subjectField: '' }, { purpose: '' }]) {
      let err: unknown;
      try {
        filterByConsent([], { purpose: PURPOSE, subjectField: 'user_id', lookup, ...bad });
      } catch (e) {
        err = e;
      }
      expect(isCustodianError(err, 'CST_ERR_VALIDATION'), JSON.stringify(bad)).toBe(true);
    }
  });

  describe('httpLookup against a real server', () => {
    let app: FastifyInstance;
    let baseUrl: string;
    let reader: string;
    let writerOnly: string;
    const subjects: string[] = [];

    beforeAll(async () => {
      app = await buildServer(custodian, { logLevel: false });
      await app.listen({ host: '127.0.0.1', port: 0 });
      baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      reader = (await custodian.apiKeys.create({ name: 'filter reader', scopes: ['consent:read'], createdBy: 'test' })).secret;
      writerOnly = (await custodian.apiKeys.create({ name: 'filter writer', scopes: ['consent:write'], createdBy: 'test' })).secret;
      for (let k = 0; k < 12; k++) subjects.push(fresh('http'));
      for (let k = 0; k < 12; k++) if (k % 3 !== 2) await decide(subjects[k]!, PURPOSE, k % 3 === 0 ? 'granted' : 'denied');
    });
    afterAll(async () => {
      await app?.close();
    });

    it('gives the same records as ledgerLookup, over several chunks', async () => {
      const input = Array.from({ length: 60 }, (_, i) => ({ i, user_id: subjects[(i * 7) % subjects.length]! }));
      const viaLedger = await collect(filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup: ledgerLookup(custodian.ledger), windowSize: 20 }).records);
      const r = filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup: httpLookup({ baseUrl, apiKey: reader, chunkSize: 5 }), windowSize: 20, batchSize: 7 });
      expect(await collect(r.records)).toEqual(viaLedger);
      expect(viaLedger.length).toBe(20);
      expect((await r.summary).dropped).toMatchObject({ denied: 20, no_consent: 20 });
    });

    it('fails with the server’s code on a 4xx: unknown purpose, bad key, missing scope', async () => {
      const input = [{ user_id: subjects[0]! }];
      const codeOf = async (lookup: ConsentLookup, purpose = PURPOSE): Promise<string | undefined> => {
        const err = await collect(filterByConsent(input, { purpose, subjectField: 'user_id', lookup }).records).catch((e: unknown) => e);
        return isCustodianError(err) ? err.code : String(err);
      };
      expect(await codeOf(httpLookup({ baseUrl, apiKey: reader }), 'no.such')).toBe('CST_ERR_CONSENT_UNKNOWN_PURPOSE');
      expect(await codeOf(httpLookup({ baseUrl, apiKey: 'cst_not_a_key_0000000000000000' }))).toBe('CST_ERR_AUTH_INVALID');
      expect(await codeOf(httpLookup({ baseUrl, apiKey: writerOnly }))).toBe('CST_ERR_AUTH_FORBIDDEN');
    });

    it('retries network errors and 5xx answers with backoff, then gives up with CST_ERR_UNAVAILABLE', async () => {
      let calls = 0;
      const flaky: typeof fetch = async (input, init) => {
        calls++;
        if (calls === 1) throw new TypeError('fetch failed');
        if (calls === 2) return new Response('{"error":{"code":"CST_ERR_UNAVAILABLE","message":"x"}}', { status: 503 });
        return fetch(input, init);
      };
      const input = subjects.map((user_id, i) => ({ i, user_id }));
      const ok = await collect(filterByConsent(input, { purpose: PURPOSE, subjectField: 'user_id', lookup: httpLookup({ baseUrl, apiKey: reader, fetch: flaky, backoffMs: 1 }) }).records);
      expect(ok.map((r) => r.i)).toEqual([0, 3, 6, 9]);
      expect(calls).toBe(4); // purposes (after two failures) + one check

      const down: typeof fetch = async () => new Response('busy', { status: 502 });
      const err = await httpLookup({ baseUrl, apiKey: reader, fetch: down, backoffMs: 1, attempts: 3 })
        .checkMany(['a'], PURPOSE)
        .catch((e: unknown) => e);
      expect(isCustodianError(err, 'CST_ERR_UNAVAILABLE')).toBe(true);
      expect((err as { details: unknown }).details).toStrictEqual({ attempts: 3, status: 502, reason: 'server error' });

      const html: typeof fetch = async () => new Response('<html>', { status: 404 });
      const bad = await httpLookup({ baseUrl, apiKey: reader, fetch: html }).checkMany(['a'], PURPOSE).catch((e: unknown) => e);
      expect(isCustodianError(bad, 'CST_ERR_CLIENT_BAD_RESPONSE')).toBe(true);
      // Errors never carry the ids sent.
      expect(JSON.stringify((bad as { details: unknown }).details)).not.toContain('"a"');
    });
  });
});
