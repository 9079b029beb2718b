import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BATCH, type CollectionTarget, type DataConnector, type KeyValue, type Row, type RowChange, type ScanPage, type ScanQuery } from '../../../src/connectors/data/data-connector.js';
import { isCustodianError } from '../../../src/core/index.js';

/*
 * The conformance suite every DataConnector adapter passes (SQL, Redis, JSONL, HTTP…), as Hono runs every
 * router through one case file. An adapter's test file calls `describeConformance(name, setup)`.
 *
 * The fixture holds one collection `people` with the fields `id` (the key, a string such as `p-0001`),
 * `email`, `name`, `note` (strings, `note` may be null) and `ref` (an integer). `seed(rows)` REPLACES the whole
 * content of `people` with `rows` (each row has all five fields; `note` may be null); every test seeds its own
 * rows. `target('people')` is the collection's target; `target('<other>')` names a collection that does not
 * exist (the suite asks for `no_such_collection` and expects CST_ERR_CONNECTOR_SCHEMA from find, deleteRows
 * and updateRows). Adapters without a declared schema (JSONL, Redis) must still know the collection's fields,
 * e.g. from its options, to report unknown fields.
 *
 * Value types: the suite compares `id`, `email`, `name` as strings and `ref` through Number(), so an adapter
 * storing every value as text (Redis hashes) passes; a missing value reads as null or undefined.
 * updateRows counts rows whose values actually changed: applying the same changes again resolves to 0.
 */

/** What an adapter's test provides to {@link describeConformance}. */
export interface ConformanceFixture {
  readonly connector: DataConnector;
  /** The target of a collection by name (`people`, or an unknown name). */
  readonly target: (collection: string) => CollectionTarget;
  /** Replaces the whole content of `people` with `rows`. */
  readonly seed: (rows: Array<Record<string, string | number | null>>) => Promise<void>;
  /** Drops everything the fixture created (database, files, keys) and closes the connector if still open. */
  readonly cleanup: () => Promise<void>;
  /**
   * Retention (findExpired, countExpired, deleteExpired, updateExpired): a collection `visits` with `id` (key,
   * string), `at` (the age field: a date-time type, or ISO-8601 text where the engine has none), `email` and
   * `note` (strings); `seed` REPLACES its content (`at` given as ISO-8601 UTC with milliseconds, or null).
   * Adapters that cannot find rows by age leave it out: the suite then expects CST_ERR_CONNECTOR_UNSUPPORTED.
   */
  /**
   * Breach scoping (`scan`): false for adapters that cannot enumerate a collection (HTTP services without the
   * scan operation); the suite then expects CST_ERR_CONNECTOR_UNSUPPORTED. Windows (`timeField`, `from`, `to`)
   * are tested on `visits`; adapters without `visits` must answer a window with CST_ERR_CONNECTOR_UNSUPPORTED
   * (Redis). `capabilities()` must say the same.
   */
  readonly scans?: boolean;
  /** Whether pages come in key order (SQL); otherwise the suite checks only that every row comes exactly once. */
  readonly pagesInKeyOrder?: boolean;
  /**
   * Whether a walk through the pages may return a row twice: Redis SCAN's documented guarantee is "at least
   * once" (a key comes twice when the key space is resized during the walk, as other clients' writes may cause).
   * The suite then checks every row at least once and no other row.
   */
  readonly pagesMayRepeat?: boolean;
  /**
   * What `scan` answers for an unknown collection: CST_ERR_CONNECTOR_SCHEMA by default. HTTP answers
   * CST_ERR_CONNECTOR_UNSUPPORTED: a service's 404 to the `capabilities` operation means "not implemented" as
   * well as "no such collection", and the operations are then not offered.
   */
  readonly unknownCollectionScan?: 'CST_ERR_CONNECTOR_SCHEMA' | 'CST_ERR_CONNECTOR_UNSUPPORTED';
  readonly visits?: {
    readonly target: CollectionTarget;
    readonly seed: (rows: Array<{ id: string; at: string | null; email: string; note: string | null }>) => Promise<void>;
  };
}

/** The cutoff of the retention cases: rows with `at` strictly before it are due. */
export const VISITS_CUTOFF = '2025-01-01T00:00:00.000Z';

/**
 * Visits v-00001…v-000n: odd numbers are due (2020…), even ones are not (2030…), every seventh has no age,
 * and two sit at the boundary: `v-90001` one millisecond before the cutoff (due), `v-90002` exactly at it (not due).
 */
export function visits(n: number): Array<{ id: string; at: string | null; email: string; note: string | null }> {
  const rows = Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    const at = i % 7 === 0 ? null : i % 2 === 1 ? `2020-0${1 + (i % 9)}-1${i % 10}T10:00:00.000Z` : `2030-0${1 + (i % 9)}-1${i % 10}T10:00:00.000Z`;
    return { id: `v-${String(i).padStart(5, '0')}`, at, email: `visitor${i}@example.com`, note: `note ${i}` };
  });
  rows.push({ id: 'v-90001', at: '2024-12-31T23:59:59.999Z', email: 'edge1@example.com', note: 'edge' });
  rows.push({ id: 'v-90002', at: VISITS_CUTOFF, email: 'edge2@example.com', note: 'edge' });
  return rows;
}

/** The ids of {@link visits} that are due, in key order. */
export function dueVisitIds(n: number): string[] {
  return visits(n)
    .filter((v) => v.at !== null && v.at < VISITS_CUTOFF)
    .map((v) => v.id)
    .sort();
}

/** A seeded person: deterministic, synthetic (example.com addresses). */
export function person(i: number, overrides: Partial<Record<'id' | 'email' | 'name' | 'note' | 'ref', string | number | null>> = {}): Record<string, string | number | null> {
  return {
    id: `p-${String(i).padStart(5, '0')}`,
    email: `person${i}@example.com`,
    name: `Person ${i}`,
    note: i % 3 === 0 ? null : `note ${i}`,
    ref: i % 10,
    ...overrides,
  };
}

/** Values that must be data, never syntax, in every engine's query language or path scheme. */
export const HOSTILE_VALUES: readonly string[] = [
  "' OR 1=1 --",
  "' OR '1'='1",
  '" OR ""="',
  '`; DROP TABLE people; --',
  "person1@example.com' --",
  '%',
  '%@example.com',
  '_',
  'p-0000_',
  '*',
  'person*',
  '?',
  '[a-z]',
  '[a-z]*',
  '../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '/people/p-00001',
  'p-00001/../p-00002',
  'p-00001\\',
  '\\',
  '$where',
  '{"$ne":null}',
  'null',
  'NULL',
  '',
  ' ',
  'PERSON1@EXAMPLE.COM',
  'person1@example.com ',
  ' person1@example.com',
  'Zoë 山田 😀 ',
  'zoë 山田 😀',
  'Zoe 山田 😀',
  'x'.repeat(10_000),
  '\\u0027 OR 1=1',
  'p-00001\r\nDEL people',
];

async function collect(iterable: AsyncIterable<readonly Row[]>): Promise<{ rows: Row[]; batches: number[] }> {
  const rows: Row[] = [];
  const batches: number[] = [];
  for await (const batch of iterable) {
    batches.push(batch.length);
    rows.push(...batch);
  }
  return { rows, batches };
}

const ids = (rows: readonly Row[]): string[] => rows.map((r) => String(r.id)).sort();

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeDefined();
  expect(isCustodianError(err), `expected a CustodianError, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
}

/**
 * Registers the conformance cases for one adapter. `setup` runs once (beforeAll); when it throws, every case
 * fails: an unreachable service is a failure, never a skip (adapters decide before calling this whether a
 * local run without the service may skip).
 */
export function describeConformance(name: string, setup: () => Promise<ConformanceFixture>): void {
  describe(`${name} data connector (conformance)`, () => {
    let f: ConformanceFixture;
    beforeAll(async () => {
      f = await setup();
    });
    afterAll(async () => {
      await f?.cleanup();
    });
    const people = (): CollectionTarget => f.target('people');
    const all = (n: number): Array<Record<string, string | number | null>> => Array.from({ length: n }, (_, i) => person(i + 1));
    const allIds = async (n: number): Promise<Row[]> =>
      (
        await collect(
          f.connector.find(
            people(),
            'id',
            all(n).map((p) => p.id as string),
            ['id', 'email', 'name', 'note', 'ref'],
          ),
        )
      ).rows;

    it('pings', async () => {
      await expect(f.connector.ping()).resolves.toBeUndefined();
      expect(typeof f.connector.kind).toBe('string');
    });

    it('finds rows by exact value, with the asked fields and the lookup field', async () => {
      await f.seed(all(10));
      const { rows } = await collect(f.connector.find(people(), 'email', ['person2@example.com', 'person7@example.com'], ['id', 'name']));
      expect(ids(rows)).toEqual(['p-00002', 'p-00007']);
      for (const r of rows) {
        const i = Number(String(r.id).slice(2));
        expect(r.email).toBe(`person${i}@example.com`);
        expect(r.name).toBe(`Person ${i}`);
      }
    });

    it('finds by the key field and by an integer field, nulls kept, each row once', async () => {
      await f.seed(all(30));
      const byKey = (await collect(f.connector.find(people(), 'id', ['p-00003', 'p-00004', 'p-00003'], ['note', 'ref']))).rows;
      expect(ids(byKey)).toEqual(['p-00003', 'p-00004']);
      const three = byKey.find((r) => r.id === 'p-00003')!;
      expect(three.note ?? null).toBeNull();
      expect(Number(three.ref)).toBe(3);
      expect(byKey.find((r) => r.id === 'p-00004')!.note).toBe('note 4');
      const byRef = (await collect(f.connector.find(people(), 'ref', [7, 9], ['id']))).rows;
      expect(ids(byRef)).toEqual(['p-00007', 'p-00009', 'p-00017', 'p-00019', 'p-00027', 'p-00029']);
    });

    it('finds nothing when nothing matches, or when no values are given', async () => {
      await f.seed(all(5));
      expect((await collect(f.connector.find(people(), 'email', ['nobody@example.com'], ['id']))).rows).toEqual([]);
      expect((await collect(f.connector.find(people(), 'email', [], ['id']))).rows).toEqual([]);
      expect((await collect(f.connector.find(people(), 'ref', [42], ['id']))).rows).toEqual([]);
    });

    it(`looks up more values than MAX_BATCH (${MAX_BATCH}) in one call`, async () => {
      await f.seed(all(1_300));
      const wanted: KeyValue[] = [];
      for (let i = 1; i <= 1_100; i++) wanted.push(`person${i}@example.com`);
      for (let i = 0; i < 100; i++) wanted.push(`absent${i}@example.com`);
      const { rows } = await collect(f.connector.find(people(), 'email', wanted, ['id']));
      expect(rows.length).toBe(1_100);
      expect(new Set(ids(rows)).size).toBe(1_100);
      expect(ids(rows)).toEqual(all(1_100).map((p) => p.id).sort());
    });

    it('treats hostile values as data: they match nothing and change nothing', async () => {
      const seeded = [...all(20), person(21, { name: 'Zoë 山田 😀', email: 'zoe@example.com' })];
      await f.seed(seeded);
      const before = await allIds(21);
      expect(before.length).toBe(21);
      for (const field of ['email', 'name', 'id', 'note']) {
        const { rows } = await collect(f.connector.find(people(), field, HOSTILE_VALUES, ['id']));
        expect(rows.map((r) => r.id), `find by ${field}`).toEqual([]);
      }
      expect(await f.connector.deleteRows(people(), 'id', HOSTILE_VALUES)).toBe(0);
      expect(await f.connector.deleteRows(people(), 'email', HOSTILE_VALUES)).toBe(0);
      expect(await f.connector.updateRows(people(), 'id', HOSTILE_VALUES.map((key) => ({ key, set: { note: null, name: 'changed' } })))).toBe(0);
      const after = await allIds(21);
      const norm = (rows: Row[]) => rows.map((r) => [r.id, r.email, r.name, r.note ?? null, Number(r.ref)]).sort();
      expect(norm(after)).toEqual(norm(before));
      // Unicode is matched exactly: the same text matches, its case- or accent-folded forms do not.
      const zoe = (await collect(f.connector.find(people(), 'name', ['Zoë 山田 😀'], ['id']))).rows;
      expect(ids(zoe)).toEqual(['p-00021']);
    });

    it('deletes exactly the given keys, and deleting again deletes nothing', async () => {
      await f.seed(all(1_200));
      const gone = ['p-00002', 'p-00005', 'P-00006', 'p-00007 ', 'p-99999'];
      for (let i = 600; i <= 1_150; i++) gone.push(person(i).id as string);
      expect(await f.connector.deleteRows(people(), 'id', gone)).toBe(2 + 551);
      expect(await f.connector.deleteRows(people(), 'id', gone)).toBe(0);
      const left = await allIds(1_200);
      expect(left.length).toBe(1_200 - 553);
      const leftIds = new Set(left.map((r) => r.id));
      expect(leftIds.has('p-00002')).toBe(false);
      expect(leftIds.has('p-00006')).toBe(true);
      expect(leftIds.has('p-00007')).toBe(true);
      expect(leftIds.has('p-00600')).toBe(false);
      expect(leftIds.has('p-01151')).toBe(true);
      expect(await f.connector.deleteRows(people(), 'id', [])).toBe(0);
    });

    it('deletes by a non-key field', async () => {
      await f.seed(all(10));
      expect(await f.connector.deleteRows(people(), 'email', ['person4@example.com', 'person8@example.com'])).toBe(2);
      expect(ids(await allIds(10))).not.toContain('p-00004');
    });

    it('updates each row to its own values (null clears), counts changed rows, and is idempotent', async () => {
      await f.seed(all(1_100));
      const changes: RowChange[] = [
        { key: 'p-00001', set: { note: null, name: null } },
        { key: 'p-00002', set: { email: 'masked-2@example.invalid', note: null } },
        { key: 'p-00004', set: { name: 'Redacted' } },
        { key: 'p-99999', set: { name: 'Nobody' } },
        // Already null: counts as no change.
        { key: 'p-00003', set: { note: null } },
      ];
      for (let i = 100; i < 700; i++) changes.push({ key: person(i).id as string, set: { note: null, name: null } });
      // p-00001, p-00002, p-00004 and the 600 bulk rows (their name was set) change; p-00003 and p-99999 do not.
      expect(await f.connector.updateRows(people(), 'id', changes)).toBe(3 + 600);
      expect(await f.connector.updateRows(people(), 'id', changes)).toBe(0);
      const rows = new Map((await allIds(1_100)).map((r) => [r.id, r]));
      expect(rows.get('p-00001')!.name ?? null).toBeNull();
      expect(rows.get('p-00001')!.note ?? null).toBeNull();
      expect(rows.get('p-00001')!.email).toBe('person1@example.com');
      expect(rows.get('p-00002')!.email).toBe('masked-2@example.invalid');
      expect(rows.get('p-00002')!.name).toBe('Person 2');
      expect(rows.get('p-00004')!.name).toBe('Redacted');
      expect(rows.get('p-00005')!.name).toBe('Person 5');
      expect(rows.get('p-00650')!.name ?? null).toBeNull();
      expect(rows.get('p-00700')!.name).toBe('Person 700');
      expect(await f.connector.updateRows(people(), 'id', [])).toBe(0);
    });

    it('updates an integer field and matches keys exactly', async () => {
      await f.seed(all(10));
      expect(await f.connector.updateRows(people(), 'id', [{ key: 'p-00001', set: { ref: 42 } }, { key: 'P-00002', set: { ref: 42 } }])).toBe(1);
      expect(ids((await collect(f.connector.find(people(), 'ref', [42], ['id']))).rows)).toEqual(['p-00001']);
    });

    it('reports unknown collections and fields as CST_ERR_CONNECTOR_SCHEMA, naming them, never a driver error', async () => {
      await f.seed(all(3));
      const missing = f.target('no_such_collection');
      await expectCode(collect(f.connector.find(missing, 'id', ['p-00001'], ['id'])), 'CST_ERR_CONNECTOR_SCHEMA');
      await expectCode(f.connector.deleteRows(missing, 'id', ['p-00001']), 'CST_ERR_CONNECTOR_SCHEMA');
      await expectCode(f.connector.updateRows(missing, 'id', [{ key: 'p-00001', set: { name: null } }]), 'CST_ERR_CONNECTOR_SCHEMA');
      await expectCode(collect(f.connector.find(people(), 'no_such_field', ['x'], ['id'])), 'CST_ERR_CONNECTOR_SCHEMA');
      await expectCode(collect(f.connector.find(people(), 'email', ['person1@example.com'], ['id', 'no_such_field'])), 'CST_ERR_CONNECTOR_SCHEMA');
      await expectCode(f.connector.deleteRows(people(), 'no_such_field', ['x']), 'CST_ERR_CONNECTOR_SCHEMA');
      await expectCode(f.connector.updateRows(people(), 'id', [{ key: 'p-00001', set: { no_such_field: null } }]), 'CST_ERR_CONNECTOR_SCHEMA');
      const err = await collect(f.connector.find(people(), 'id', ['p-00001'], ['no_such_field'])).catch((e: unknown) => e);
      expect(JSON.stringify({ message: (err as Error).message, details: (err as { details?: unknown }).details })).toContain('no_such_field');
      // Nothing changed.
      expect((await allIds(3)).length).toBe(3);
    });

    it('never puts looked-up values in errors', async () => {
      await f.seed(all(3));
      const secret = 'secret-value-4711@example.com';
      const err = await collect(f.connector.find(f.target('no_such_collection'), 'email', [secret], ['id'])).catch((e: unknown) => e);
      expect(isCustodianError(err)).toBe(true);
      const text = JSON.stringify({ message: (err as Error).message, details: (err as { details?: unknown }).details, stack: (err as Error).stack });
      expect(text).not.toContain('secret-value-4711');
    });

    it('stops reading when the consumer stops early', async () => {
      await f.seed(all(50));
      let seen = 0;
      for await (const batch of f.connector.find(
        people(),
        'id',
        all(50).map((p) => p.id as string),
        ['id'],
      )) {
        seen += batch.length;
        break;
      }
      expect(seen).toBeGreaterThan(0);
      // The connector is still usable afterwards (resources were released).
      expect((await allIds(50)).length).toBe(50);
    });

    it('honours an aborted signal', async () => {
      await f.seed(all(5));
      const controller = new AbortController();
      controller.abort();
      await expect(collect(f.connector.find(people(), 'id', ['p-00001'], ['id'], { signal: controller.signal }))).rejects.toThrow();
    });

    describe('scan (breach scoping)', () => {
      /**
       * Every row of `target` through pages of `limit` resumed by cursor, until `next` is null; checks each page's
       * size and that the pages move on. Rows come in key order when the fixture says so, else sorted here.
       */
      const scanAll = async (target: CollectionTarget, query: Omit<ScanQuery, 'limit' | 'cursor'>, limit: number): Promise<Row[]> => {
        const rows: Row[] = [];
        let cursor: string | undefined;
        for (let n = 0; n < 1000; n++) {
          const page: ScanPage = await f.connector.scan(target, { ...query, cursor, limit });
          expect(page.rows.length).toBeLessThanOrEqual(limit);
          rows.push(...page.rows);
          if (page.next === null) {
            if (f.pagesInKeyOrder === true) return rows;
            const distinct = f.pagesMayRepeat === true ? [...new Map(rows.map((r) => [String(r[query.keyField]), r])).values()] : rows;
            return [...distinct].sort((a, b) => (String(a[query.keyField]) < String(b[query.keyField]) ? -1 : 1));
          }
          expect(page.next).not.toBe(cursor);
          cursor = page.next;
        }
        throw new Error('scan did not end');
      };

      it('says what it can do in its capabilities, as its operations do', async () => {
        const capabilities = await f.connector.capabilities(people());
        expect(capabilities).toEqual({ scan: f.scans !== false, scanWindow: f.scans !== false && f.visits !== undefined, retention: f.visits !== undefined });
      });

      it('pages through the whole collection, each row once, with the key and the asked fields', async () => {
        if (f.scans === false) {
          await expectCode(f.connector.scan(people(), { keyField: 'id', fields: ['email'], limit: 10 }), 'CST_ERR_CONNECTOR_UNSUPPORTED');
          return;
        }
        await f.seed(all(25));
        const rows = await scanAll(people(), { keyField: 'id', fields: ['email', 'name'] }, 7);
        expect(rows.map((r) => String(r.id))).toEqual(all(25).map((p) => String(p.id)));
        for (const r of rows) {
          const i = Number(String(r.id).slice(2));
          expect(r.email).toBe(`person${i}@example.com`);
          expect(r.name).toBe(`Person ${i}`);
        }
        await f.seed([]);
        expect(await f.connector.scan(people(), { keyField: 'id', fields: ['email'], limit: 10 })).toEqual({ rows: [], next: null });
      });

      it('property: whatever the collection and page sizes, the pages hold every row exactly once', async () => {
        if (f.scans === false) return;
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 25 }), async (n, limit) => {
            await f.seed(all(n));
            const rows = await scanAll(people(), { keyField: 'id', fields: ['email'] }, limit);
            expect(rows.map((r) => String(r.id))).toEqual(all(n).map((p) => String(p.id)));
          }),
          { numRuns: 12 },
        );
      });

      it('treats hostile cursors and window bounds as data, never as syntax', async () => {
        if (f.scans === false) return;
        await f.seed(all(5));
        for (const v of HOSTILE_VALUES) {
          for (const cursor of [v, JSON.stringify(v)]) {
            // A cursor the connector did not make is refused (CST_ERR_VALIDATION), or read as data: only real rows.
            const page = await f.connector.scan(people(), { keyField: 'id', fields: ['email'], cursor, limit: 50 }).catch((err: unknown) => {
              expect(isCustodianError(err, 'CST_ERR_VALIDATION'), String(err)).toBe(true);
              return { rows: [], next: null };
            });
            for (const r of page.rows) expect(all(5).map((p) => p.id)).toContain(String(r.id));
          }
        }
        expect((await f.connector.scan(people(), { keyField: 'id', fields: ['email'], limit: 50 })).rows).toHaveLength(5);
        for (const v of HOSTILE_VALUES.slice(0, 8)) {
          await expectCode(f.connector.scan(f.visits?.target ?? people(), { keyField: 'id', fields: ['email'], limit: 10, timeField: f.visits === undefined ? 'note' : 'at', from: v }), 'CST_ERR_VALIDATION');
          await expectCode(f.connector.scan(f.visits?.target ?? people(), { keyField: 'id', fields: ['email'], limit: 10, timeField: f.visits === undefined ? 'note' : 'at', to: v }), 'CST_ERR_VALIDATION');
        }
      });

      it('reports unknown collections and fields as CST_ERR_CONNECTOR_SCHEMA', async () => {
        if (f.scans === false) return;
        await expectCode(f.connector.scan(f.target('no_such_collection'), { keyField: 'id', fields: [], limit: 10 }), f.unknownCollectionScan ?? 'CST_ERR_CONNECTOR_SCHEMA');
        await expectCode(f.connector.scan(people(), { keyField: 'id', fields: ['no_such_field'], limit: 10 }), 'CST_ERR_CONNECTOR_SCHEMA');
      });

      it('applies a time window [from, to) to the time field; rows without a time are outside every window', async () => {
        if (f.scans === false) return;
        if (f.visits === undefined) {
          await expectCode(f.connector.scan(people(), { keyField: 'id', fields: ['email'], limit: 10, timeField: 'note', from: VISITS_CUTOFF }), 'CST_ERR_CONNECTOR_UNSUPPORTED');
          return;
        }
        await f.visits.seed(visits(40));
        const within = (from: string | undefined, to: string | undefined): string[] =>
          visits(40)
            // No bound at all is no window: rows without a time come too.
            .filter((v) => (from === undefined && to === undefined) || (v.at !== null && (from === undefined || v.at >= from) && (to === undefined || v.at < to)))
            .map((v) => v.id)
            .sort();
        const cases: Array<[string | undefined, string | undefined]> = [
          ['2020-03-01T00:00:00.000Z', VISITS_CUTOFF],
          [VISITS_CUTOFF, undefined],
          [undefined, VISITS_CUTOFF],
          ['2024-12-31T23:59:59.999Z', '2025-01-01T00:00:00.001Z'],
          ['2040-01-01T00:00:00.000Z', undefined],
        ];
        for (const [from, to] of cases) {
          const rows = await scanAll(f.visits.target, { keyField: 'id', fields: ['email'], timeField: 'at', from, to }, 4);
          expect(rows.map((r) => String(r.id)), `window [${from}, ${to})`).toEqual(within(from, to));
          for (const r of rows) expect(String(r.email)).toMatch(/@example\.com$/);
        }
        // Property: whatever the page size and window, keyset paging yields exactly the rows of the window, each
        // once, in key order (the model is the filter above).
        const instants = ['2020-01-01T00:00:00.000Z', '2020-05-15T00:00:00.000Z', '2024-12-31T23:59:59.999Z', VISITS_CUTOFF, '2030-04-01T00:00:00.000Z', '2031-01-01T00:00:00.000Z'];
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 12 }), fc.option(fc.constantFrom(...instants), { nil: undefined }), fc.option(fc.constantFrom(...instants), { nil: undefined }), async (limit, from, to) => {
            const rows = await scanAll(f.visits!.target, { keyField: 'id', fields: [], timeField: 'at', from, to }, limit);
            expect(rows.map((r) => String(r.id))).toEqual(within(from, to));
          }),
          { numRuns: 15 },
        );
        // Without a window every row comes, those without a time too.
        expect(await scanAll(f.visits.target, { keyField: 'id', fields: [] }, 16)).toHaveLength(visits(40).length);
      });
    });

    describe('retention', () => {
      const due = { ageField: 'at', cutoff: VISITS_CUTOFF };
      const page = (cursor: string | undefined, limit: number) => f.connector.findExpired(f.visits!.target, { ...due, keyField: 'id', cursor, limit, fields: ['email', 'note'] });

      it('pages through the rows past due, each once, with the asked fields', async () => {
        if (f.visits === undefined) {
          await expectCode(f.connector.findExpired(people(), { ...due, keyField: 'id', limit: 10, fields: [] }), 'CST_ERR_CONNECTOR_UNSUPPORTED');
          await expectCode(f.connector.countExpired(people(), due), 'CST_ERR_CONNECTOR_UNSUPPORTED');
          await expectCode(f.connector.deleteExpired(people(), 'id', ['p-00001'], due), 'CST_ERR_CONNECTOR_UNSUPPORTED');
          await expectCode(f.connector.updateExpired(people(), 'id', [{ key: 'p-00001', set: { note: null } }], due), 'CST_ERR_CONNECTOR_UNSUPPORTED');
          return;
        }
        await f.visits.seed(visits(40));
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let n = 0; n < 100; n++) {
          const { rows, next } = await page(cursor, 3);
          expect(rows.length).toBeLessThanOrEqual(3);
          for (const r of rows) {
            expect(String(r.email)).toMatch(/@example\.com$/);
            expect(r).toHaveProperty('note');
          }
          seen.push(...rows.map((r) => String(r.id)));
          if (next === null) break;
          cursor = next;
        }
        expect(f.pagesInKeyOrder === true ? seen : [...seen].sort()).toEqual(dueVisitIds(40));
      });

      it('counts rows past due, and those due within a window', async () => {
        if (f.visits === undefined) return;
        await f.visits.seed(visits(40));
        expect(await f.connector.countExpired(f.visits.target, due)).toBe(dueVisitIds(40).length);
        // Only the boundary row lies in [2024-06-01, cutoff).
        expect(await f.connector.countExpired(f.visits.target, due, { from: '2024-06-01T00:00:00.000Z' })).toBe(1);
        expect(await f.connector.countExpired(f.visits.target, { ageField: 'at', cutoff: '2031-01-01T00:00:00.000Z' }, { from: VISITS_CUTOFF })).toBe(
          visits(40).filter((v) => v.at !== null && v.at >= VISITS_CUTOFF).length,
        );
      });

      it('deletes only keys still past due (re-checked in the statement); deleting again deletes nothing', async () => {
        if (f.visits === undefined) return;
        await f.visits.seed(visits(20));
        const dueIds = dueVisitIds(20);
        const all = visits(20).map((v) => v.id);
        expect(await f.connector.deleteExpired(f.visits.target, 'id', [...all, ...HOSTILE_VALUES.slice(0, 10)], due)).toBe(dueIds.length);
        expect(await f.connector.deleteExpired(f.visits.target, 'id', all, due)).toBe(0);
        expect(await page(undefined, 100)).toEqual({ rows: [], next: null });
        const left = (await collect(f.connector.find(f.visits.target, 'id', all, ['id']))).rows.map((r) => String(r.id)).sort();
        expect(left).toEqual(all.filter((id) => !dueIds.includes(id)).sort());
      });

      it('updates only rows still past due, idempotently', async () => {
        if (f.visits === undefined) return;
        await f.visits.seed(visits(20));
        const dueIds = dueVisitIds(20);
        const changes = visits(20).map((v) => ({ key: v.id, set: { email: 'anonymised', note: null } }));
        expect(await f.connector.updateExpired(f.visits.target, 'id', changes, due)).toBe(dueIds.length);
        expect(await f.connector.updateExpired(f.visits.target, 'id', changes, due)).toBe(0);
        const rows = (await collect(f.connector.find(f.visits.target, 'id', visits(20).map((v) => v.id), ['id', 'email', 'note']))).rows;
        for (const r of rows) {
          if (dueIds.includes(String(r.id))) {
            expect(r.email).toBe('anonymised');
            expect(r.note ?? null).toBeNull();
          } else expect(r.email).not.toBe('anonymised');
        }
      });

      it('treats a hostile cursor as data', async () => {
        if (f.visits === undefined) return;
        await f.visits.seed(visits(10));
        for (const v of HOSTILE_VALUES.slice(0, 12)) {
          for (const cursor of [v, JSON.stringify(v)]) {
            // Refused as not a cursor of this connector, or read as data (collations differ): only due rows.
            const { rows } = await page(cursor, 50).catch((err: unknown) => {
              expect(isCustodianError(err, 'CST_ERR_VALIDATION'), String(err)).toBe(true);
              return { rows: [] as Row[] };
            });
            for (const r of rows) expect(dueVisitIds(10)).toContain(String(r.id));
          }
        }
      });
    });

    it('closes (last: the connector is unusable afterwards)', async () => {
      await expect(f.connector.close()).resolves.toBeUndefined();
    });
  });
}
