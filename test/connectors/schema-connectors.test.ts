import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SQL_ENGINES, keyWindows, openSchemaConnector, redactConnectionUrl, sqlEngineOf, type SqlEngine } from '../../src/connectors/index.js';
import { isCustodianError } from '../../src/core/index.js';
import { createTempDatabase, type TempDatabase } from '../scanner/labelled-db.js';

/* One conformance suite for every schema connector: introspection, identifier quoting, bounded sampling. */

const WEIRD_TABLE = 'Odd "Table`s';
const WEIRD_COLUMN = 'e-mail "x`';

function ddl(engine: SqlEngine): string[] {
  const q = (s: string) => (engine === 'mysql' ? `\`${s.replace(/`/g, '``')}\`` : `"${s.replace(/"/g, '""')}"`);
  const text = engine === 'mysql' ? 'varchar(200)' : 'text';
  const rows = Array.from({ length: 500 }, (_, i) => `(${i + 1}, 'user${i}@example.com', ${i % 7 === 0 ? 'null' : `'note ${i}'`})`).join(', ');
  return [
    `create table ${q(WEIRD_TABLE)} (${q('id')} integer primary key, ${q(WEIRD_COLUMN)} ${text} not null, ${q('note')} ${text})`,
    `create index ${q('odd_note_idx')} on ${q(WEIRD_TABLE)} (${q('note')})`,
    `insert into ${q(WEIRD_TABLE)} values ${rows}`,
    `create table ${q('empty')} (${q('ssn')} ${text})`,
    `create view ${q('a_view')} as select ${q('id')} from ${q(WEIRD_TABLE)}`,
    ...(engine === 'postgres' ? ['analyze'] : []),
  ];
}

for (const engine of SQL_ENGINES) {
  describe(`${engine} schema connector`, () => {
    let db: TempDatabase | undefined;
    beforeAll(async () => {
      try {
        db = await createTempDatabase(engine);
        await db.exec(ddl(engine));
      } catch (err) {
        if (process.env.CI === 'true') throw err;
      }
    });
    afterAll(async () => {
      await db?.cleanup();
    });

    it('lists base tables (not views) with columns, keys and indexes, quoting any name', async (ctx) => {
      if (db === undefined) return ctx.skip();
      const c = await openSchemaConnector(db.url);
      try {
        expect(c.engine).toBe(engine);
        const tables = await c.listTables();
        expect(tables.map((t) => t.name).sort()).toEqual(['Odd "Table`s', 'empty'].sort());
        const odd = tables.find((t) => t.name === WEIRD_TABLE)!;
        expect(odd.columns.map((x) => x.name)).toEqual(['id', WEIRD_COLUMN, 'note']);
        expect(odd.columns[0]).toMatchObject({ primaryKey: true, indexed: true, kind: 'integer' });
        expect(odd.columns[1]).toMatchObject({ primaryKey: false, nullable: false, kind: 'text' });
        expect(odd.columns[2]).toMatchObject({ indexed: true, unique: false, nullable: true });
      } finally {
        await c.close();
      }
    });

    it('samples at most the limit, as text, null kept', async (ctx) => {
      if (db === undefined) return ctx.skip();
      const c = await openSchemaConnector(db.url);
      try {
        const odd = (await c.listTables()).find((t) => t.name === WEIRD_TABLE)!;
        const rows: (string | null)[][] = [];
        for await (const batch of c.sample(odd, [WEIRD_COLUMN, 'id', 'note'], { limit: 50 })) rows.push(...batch.map((r) => [...r]));
        expect(rows.length).toBeGreaterThan(0);
        expect(rows.length).toBeLessThanOrEqual(50);
        for (const [mail, id, note] of rows) {
          expect(mail).toMatch(/^user\d+@example\.com$/);
          expect(typeof id).toBe('string');
          if (Number(id) % 7 === 1) expect(note).toBeNull();
        }
        const empty = (await c.listTables()).find((t) => t.name === 'empty')!;
        let n = 0;
        for await (const batch of c.sample(empty, ['ssn'], { limit: 10 })) n += batch.length;
        expect(n).toBe(0);
      } finally {
        await c.close();
      }
    });
  });
}

describe('connection URLs', () => {
  it('names the engine of each scheme', () => {
    expect(sqlEngineOf('postgresql://h/db')).toBe('postgres');
    expect(sqlEngineOf('mariadb://h/db')).toBe('mysql');
    expect(sqlEngineOf('sqlite:x.db')).toBe('sqlite');
    expect(sqlEngineOf('redis://h')).toBeUndefined();
  });

  it('redacts passwords, also in query parameters', () => {
    expect(redactConnectionUrl('postgres://app:pa%40ss@db:5432/crm')).toBe('postgres://app:***@db:5432/crm');
    expect(redactConnectionUrl('mysql://app@db/shop?password=x&ssl=true')).toBe('mysql://app@db/shop?password=***&ssl=true');
    expect(redactConnectionUrl('postgres://app:secret@[bad')).not.toContain('secret');
  });

  it('rejects unsupported schemes and malformed URLs with codes, never echoing the password', async () => {
    const err = async (url: string) => openSchemaConnector(url).then(() => undefined, (e: unknown) => e);
    expect(isCustodianError(await err('redis://localhost:6379'), 'CST_ERR_SCAN_UNSUPPORTED')).toBe(true);
    expect(isCustodianError(await err('postgres://app:pw@/'), 'CST_ERR_SCAN_URL')).toBe(true);
    expect(isCustodianError(await err('sqlite:'), 'CST_ERR_SCAN_URL')).toBe(true);
    const refused = await err('mariadb://app:topsecret@127.0.0.1:1/x');
    expect(isCustodianError(refused, 'CST_ERR_SCAN_CONNECTION')).toBe(true);
    expect(JSON.stringify(refused) + String(refused)).not.toContain('topsecret');
  });

  it('spreads key windows over the key range', () => {
    expect(keyWindows(1, 800, 8)).toEqual([1, 101, 201, 301, 401, 501, 601, 701]);
    expect(keyWindows(5, 6, 8)).toEqual([5, 6]);
  });
});
