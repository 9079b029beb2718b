import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CollectionTarget, Row, ScanQuery } from '../../../src/connectors/data/data-connector.js';
import { REDIS_SCAN_CALLS_PER_PAGE, RedisDataConnector, openRedisDataConnector } from '../../../src/connectors/data/redis.js';
import { isCustodianError } from '../../../src/core/index.js';
import { describeConformance } from './conformance.js';

const URL = process.env.CUSTODIAN_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';

/** Deletes every key starting with `prefix` (a random test prefix, never input). */
async function dropPrefix(admin: Redis, prefix: string): Promise<void> {
  const match = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`) + '*';
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await admin.del(...keys);
  } while (cursor !== '0');
}

function randomPrefix(): string {
  return `cst-test-${randomBytes(6).toString('hex')}:`;
}

/** Every row of `target` through pages of `limit`, resumed by cursor until `next` is null. */
async function scanAll(connector: RedisDataConnector, target: CollectionTarget, query: Omit<ScanQuery, 'limit' | 'cursor'>, limit: number): Promise<Row[]> {
  const rows: Row[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < 10_000; n++) {
    const page = await connector.scan(target, { ...query, cursor, limit });
    rows.push(...page.rows);
    if (page.next === null) return rows;
    cursor = page.next;
  }
  throw new Error('scan did not end');
}

async function collect(iterable: AsyncIterable<readonly Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const batch of iterable) rows.push(...batch);
  return rows;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isCustodianError(err) ? err.code : `not a CustodianError: ${String(err)}`;
}

describeConformance('redis', async () => {
  const prefix = randomPrefix();
  const admin = new Redis(URL);
  const connector = await openRedisDataConnector(URL);
  const target = (collection: string): CollectionTarget =>
    collection === 'people' ? { name: 'people', options: { keyPattern: 'people:{id}', prefix, fields: 'id,email,name,note,ref' } } : { name: collection, options: { prefix } };
  return {
    connector,
    pagesMayRepeat: true,
    target,
    seed: async (rows) => {
      await dropPrefix(admin, `${prefix}people:`);
      for (let i = 0; i < rows.length; i += 1000) {
        const pipeline = admin.pipeline();
        for (const row of rows.slice(i, i + 1000)) {
          const fields = Object.entries(row).filter(([f, v]) => f !== 'id' && v !== null);
          pipeline.hset(`${prefix}people:${String(row.id)}`, Object.fromEntries(fields.map(([f, v]) => [f, String(v)])));
        }
        await pipeline.exec();
      }
    },
    cleanup: async () => {
      await connector.close();
      await dropPrefix(admin, prefix);
      await admin.quit();
    },
  };
});

describe('redis data connector', () => {
  let admin: Redis;
  let redis: RedisDataConnector;
  let prefix: string;
  const people = (options: Record<string, string> = {}): CollectionTarget => ({ name: 'people', options: { keyPattern: 'people:{id}', prefix, ...options } });

  beforeAll(async () => {
    admin = new Redis(URL);
    redis = new RedisDataConnector({ url: URL });
    await redis.connect();
    prefix = randomPrefix();
  });
  afterAll(async () => {
    await redis.close();
    await dropPrefix(admin, prefix);
    await admin.quit();
  });

  it('treats glob characters in values as data: exact keys only', async () => {
    for (const id of ['a*', 'a?', 'a[b]', 'a\\', 'abc', 'ab']) await admin.hset(`${prefix}people:${id}`, { email: `${id}@example.com` });
    expect((await collect(redis.find(people(), 'id', ['a*'], ['email']))).map((r) => r.id)).toEqual(['a*']);
    expect((await collect(redis.find(people(), 'id', ['a[b]', 'a\\', 'a?'], ['email']))).map((r) => r.id).sort()).toEqual(['a?', 'a[b]', 'a\\']);
    expect(await collect(redis.find(people(), 'id', ['*', '?', 'a[a-z]', '[a-z]*'], ['email']))).toEqual([]);
    expect(await redis.deleteRows(people(), 'id', ['*', 'a[a-z]', '?*'])).toBe(0);
    expect(await redis.deleteRows(people(), 'email', ['*', 'a*@example.com*'])).toBe(0);
    expect(await redis.deleteRows(people(), 'id', ['a*'])).toBe(1);
    expect(await admin.exists(`${prefix}people:abc`, `${prefix}people:ab`, `${prefix}people:a?`)).toBe(3);
    // A lookup by a hash field compares exactly too.
    expect((await collect(redis.find(people(), 'email', ['a?@example.com'], []))).map((r) => r.id)).toEqual(['a?']);
  });

  it('never reaches a key of another collection through a value containing a key separator', async () => {
    await admin.hset(`${prefix}people:x:meta`, { email: 'meta@example.com' });
    await admin.hset(`${prefix}people:x`, { email: 'x@example.com' });
    expect(await collect(redis.find(people(), 'id', ['x:meta'], ['email']))).toEqual([]);
    expect(await collect(redis.find(people(), 'email', ['meta@example.com'], ['id']))).toEqual([]);
    expect(await redis.deleteRows(people(), 'id', ['x:meta'])).toBe(0);
    expect(await redis.deleteRows(people(), 'email', ['meta@example.com'])).toBe(0);
    expect(await redis.updateRows(people(), 'id', [{ key: 'x:meta', set: { email: null } }])).toBe(0);
    expect(await admin.hget(`${prefix}people:x:meta`, 'email')).toBe('meta@example.com');
    // The separator rule comes from the pattern: `{id}` alone accepts any value.
    const bare: CollectionTarget = { name: 'bare', options: { keyPattern: '{id}', prefix: `${prefix}bare` } };
    await admin.hset(`${prefix}bare9:9`, { email: 'nine@example.com' });
    expect((await collect(redis.find(bare, 'id', ['9:9'], ['email'])))[0]?.email).toBe('nine@example.com');
  });

  it('keeps prefixes apart and never touches keys of another type', async () => {
    const other = randomPrefix();
    try {
      await admin.hset(`${prefix}people:same`, { email: 'same@example.com' });
      await admin.hset(`${other}people:same`, { email: 'same@example.com' });
      await admin.set(`${prefix}people:text`, 'not a hash');
      expect(await redis.deleteRows(people(), 'id', ['same', 'text'])).toBe(1);
      expect(await admin.exists(`${other}people:same`)).toBe(1);
      expect(await admin.get(`${prefix}people:text`)).toBe('not a hash');
      expect(await collect(redis.find(people(), 'id', ['text'], ['email']))).toEqual([]);
      expect(await redis.updateRows(people(), 'id', [{ key: 'text', set: { email: 'x' } }])).toBe(0);
      // A scan by a hash field skips the string key instead of failing.
      expect(await collect(redis.find(people(), 'email', ['not a hash'], ['id']))).toEqual([]);
    } finally {
      await dropPrefix(admin, other);
    }
  });

  it('keeps the TTL of a hash it updates, and deleting the last field removes the row', async () => {
    await admin.hset(`${prefix}people:ttl`, { email: 'ttl@example.com', name: 'T' });
    await admin.expire(`${prefix}people:ttl`, 1000);
    expect(await redis.updateRows(people(), 'id', [{ key: 'ttl', set: { name: 'Masked' } }])).toBe(1);
    expect(await admin.ttl(`${prefix}people:ttl`)).toBeGreaterThan(900);
    expect(await redis.updateRows(people(), 'id', [{ key: 'ttl', set: { name: null, email: null } }])).toBe(1);
    expect(await admin.exists(`${prefix}people:ttl`)).toBe(0);
  });

  it('maps string keys: the value is the field `value`', async () => {
    const sessions: CollectionTarget = { name: 'sessions', options: { type: 'string', keyPattern: 'session:{token}', prefix } };
    await admin.set(`${prefix}session:t1`, 'ada@example.com', 'EX', 1000);
    await admin.set(`${prefix}session:t2`, 'bob@example.com');
    expect(await collect(redis.find(sessions, 'token', ['t1', 't3'], ['value']))).toEqual([{ token: 't1', value: 'ada@example.com' }]);
    expect(await collect(redis.find(sessions, 'value', ['bob@example.com'], ['token']))).toEqual([{ token: 't2', value: 'bob@example.com' }]);
    expect(await redis.updateRows(sessions, 'token', [{ key: 't1', set: { value: 'masked' } }])).toBe(1);
    expect(await redis.updateRows(sessions, 'token', [{ key: 't1', set: { value: 'masked' } }])).toBe(0);
    expect(await admin.get(`${prefix}session:t1`)).toBe('masked');
    expect(await admin.ttl(`${prefix}session:t1`)).toBeGreaterThan(900);
    expect(await redis.deleteRows(sessions, 'value', ['bob@example.com'])).toBe(1);
    expect(await redis.updateRows(sessions, 'token', [{ key: 't1', set: { value: null } }])).toBe(1);
    expect(await admin.exists(`${prefix}session:t1`, `${prefix}session:t2`)).toBe(0);
    expect(await codeOf(collect(redis.find(sessions, 'token', ['t1'], ['other'])))).toBe('CST_ERR_CONNECTOR_SCHEMA');
  });

  it('maps a set: each member is a row', async () => {
    const suppressed: CollectionTarget = { name: 'suppressed', options: { type: 'set', key: 'suppressed', prefix } };
    await admin.sadd(`${prefix}suppressed`, 'a@example.com', 'b@example.com', '*');
    expect(await collect(redis.find(suppressed, 'member', ['a@example.com', 'c@example.com'], ['member']))).toEqual([{ member: 'a@example.com' }]);
    expect(await redis.updateRows(suppressed, 'member', [{ key: 'a@example.com', set: { member: 'hashed-a' } }])).toBe(1);
    expect(await redis.updateRows(suppressed, 'member', [{ key: 'a@example.com', set: { member: 'hashed-a' } }])).toBe(0);
    expect(await redis.deleteRows(suppressed, 'member', ['b@example.com', 'b@example.com', 'nobody'])).toBe(1);
    expect((await admin.smembers(`${prefix}suppressed`)).sort()).toEqual(['*', 'hashed-a']);
    expect(await codeOf(redis.deleteRows(suppressed, 'email', ['x']))).toBe('CST_ERR_CONNECTOR_SCHEMA');
  });

  it('refuses scans when the collection says scan: false, and key-field changes', async () => {
    expect(await codeOf(collect(redis.find(people({ scan: 'false' }), 'email', ['x@example.com'], ['id'])))).toBe('CST_ERR_CONNECTOR_UNSUPPORTED');
    expect(await codeOf(redis.updateRows(people(), 'id', [{ key: 'x', set: { id: 'y' } }]))).toBe('CST_ERR_CONNECTOR_UNSUPPORTED');
    expect(await codeOf(collect(redis.find({ name: 'bad', options: { keyPattern: 'a:{id}:{b}' } }, 'id', ['1'], [])))).toBe('CST_ERR_CONNECTOR_SCHEMA');
    expect(await codeOf(collect(redis.find({ name: 'bad', options: { type: 'list', keyPattern: 'a:{id}' } }, 'id', ['1'], [])))).toBe('CST_ERR_CONNECTOR_SCHEMA');
  });

  it('scans string and set collections and a key space holding other collections and other types', async () => {
    const sessions: CollectionTarget = { name: 'sessions', options: { type: 'string', keyPattern: 'scan-session:{token}', prefix } };
    for (const t of ['t3', 't1', 't2']) await admin.set(`${prefix}scan-session:${t}`, `${t}@example.com`);
    // Another collection's keys (separator in the variable part) and a key of another type are not rows.
    await admin.set(`${prefix}scan-session:t1:meta`, 'x');
    await admin.sadd(`${prefix}scan-session:t0`, 'not a string');
    const byToken = (rows: readonly Row[]) => [...rows].sort((a, b) => (String(a.token) < String(b.token) ? -1 : 1));
    expect(byToken(await scanAll(redis, sessions, { keyField: 'token', fields: ['value'] }, 10))).toEqual([
      { token: 't1', value: 't1@example.com' },
      { token: 't2', value: 't2@example.com' },
      { token: 't3', value: 't3@example.com' },
    ]);
    // Pages of one: a key of another type makes a page short, never the end; the cursor goes on.
    expect(byToken(await scanAll(redis, sessions, { keyField: 'token', fields: [] }, 1))).toEqual([{ token: 't1' }, { token: 't2' }, { token: 't3' }]);
    const suppressed: CollectionTarget = { name: 'suppressed', options: { type: 'set', key: 'scan-suppressed', prefix } };
    await admin.sadd(`${prefix}scan-suppressed`, 'b@example.com', 'a@example.com', 'c@example.com');
    // A small set comes whole in one SSCAN reply: what a page has no room for travels in the cursor.
    const first = await redis.scan(suppressed, { keyField: 'member', fields: [], limit: 1 });
    expect(first.rows).toHaveLength(1);
    expect(first.next).not.toBeNull();
    expect((await scanAll(redis, suppressed, { keyField: 'member', fields: [] }, 1)).map((r) => r.member).sort()).toEqual(['a@example.com', 'b@example.com', 'c@example.com']);
    // A hash field may serve as the key field: it is read like the other fields.
    await admin.hset(`${prefix}people:k1`, { email: 'k1@example.com' });
    expect((await scanAll(redis, people(), { keyField: 'email', fields: [] }, 10)).map((r) => r.email)).toContain('k1@example.com');
    expect(await codeOf(redis.scan(people({ scan: 'false' }), { keyField: 'id', fields: [], limit: 10 }))).toBe('CST_ERR_CONNECTOR_UNSUPPORTED');
    expect(await codeOf(redis.scan(people(), { keyField: 'id', fields: [], limit: 10, cursor: 'redis1.not-base64-json' }))).toBe('CST_ERR_VALIDATION');
    expect(await redis.capabilities(people({ scan: 'false' }))).toEqual({ scan: false, scanWindow: false, retention: false });
  });

  it('property: a page costs a bounded read (resumed with the SCAN cursor), and the pages hold every row', async () => {
    // A database of its own, so that other suites' keys do not weigh on the counts. SCAN's guarantee is "at least
    // once" (a key comes twice when the key space is resized mid-walk, as the drops between runs may cause), so
    // rows are compared as a set, and a repeat is allowed in the SCAN counts.
    const url = URL.replace(/\/\d*$/, '') + '/9';
    const own = new Redis(url);
    const scanned: number[] = [];
    const read: number[] = [];
    const counted = new RedisDataConnector({ url, hooks: { onScan: (n) => scanned.push(n), onRead: (n) => read.push(n) } });
    await counted.connect();
    const base = randomPrefix();
    try {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 1, max: 60 }), fc.constantFrom('hash' as const, 'set' as const), async (n, limit, type) => {
          const prefix = `${base}${randomBytes(3).toString('hex')}:`;
          const ids = Array.from({ length: n }, (_, i) => `id-${i}`);
          const pipeline = own.pipeline();
          if (type === 'hash') for (const id of ids) pipeline.hset(`${prefix}p:${id}`, { email: `${id}@example.com` });
          else if (n > 0) pipeline.sadd(`${prefix}members`, ...ids);
          // Another collection in the same key space: never read, never returned.
          pipeline.hset(`${prefix}q:other`, { email: 'other@example.com' });
          await pipeline.exec();
          const target: CollectionTarget = type === 'hash' ? { name: 'p', options: { keyPattern: 'p:{id}', prefix, fields: 'id,email' } } : { name: 'm', options: { type: 'set', key: 'members', prefix } };
          const keyField = type === 'hash' ? 'id' : 'member';
          scanned.length = 0;
          const seen: string[] = [];
          let cursor: string | undefined;
          for (let pages = 0; ; pages++) {
            expect(pages).toBeLessThan(n + 10);
            read.length = 0;
            const calls = scanned.length;
            const page = await counted.scan(target, { keyField, fields: type === 'hash' ? ['email'] : [], cursor, limit });
            expect(page.rows.length).toBeLessThanOrEqual(limit);
            // Bounded: at most `limit` keys read, at most REDIS_SCAN_CALLS_PER_PAGE SCAN calls, per page.
            expect(read.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(limit);
            expect(scanned.length - calls).toBeLessThanOrEqual(REDIS_SCAN_CALLS_PER_PAGE);
            seen.push(...page.rows.map((r) => String(r[keyField])));
            if (page.next === null) break;
            cursor = page.next;
          }
          expect([...new Set(seen)].sort()).toEqual([...ids].sort());
          // The whole walk is one pass over the key space: each key of the collection came back from SCAN once
          // (twice at worst, on a resize) — SCANning the collection anew per page would return n keys per page.
          const returned = scanned.reduce((a, b) => a + b, 0);
          expect(returned).toBeGreaterThanOrEqual(n);
          expect(returned).toBeLessThanOrEqual(2 * n);
          await dropPrefix(own, prefix);
        }),
        { numRuns: 25 },
      );
    } finally {
      await counted.close();
      await dropPrefix(own, base);
      await own.quit();
    }
  }, 60_000);

  it('reports malformed URLs and unreachable servers with connector codes, password hidden', async () => {
    expect(await codeOf(openRedisDataConnector('http://127.0.0.1:6379'))).toBe('CST_ERR_CONNECTOR_SCHEMA');
    const err = await openRedisDataConnector('redis://:hunter2@127.0.0.1:1/0').catch((e: unknown) => e);
    expect(isCustodianError(err, 'CST_ERR_CONNECTOR_UNAVAILABLE')).toBe(true);
    expect(JSON.stringify((err as { details: unknown }).details)).not.toContain('hunter2');
  });
});
