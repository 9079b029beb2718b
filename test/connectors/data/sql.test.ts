import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_BATCH,
  MysqlDataConnector,
  PostgresDataConnector,
  SqliteDataConnector,
  openDataConnector,
  type CollectionTarget,
  type DataConnector,
  type Row,
} from '../../../src/connectors/data/index.js';
import type { SqlEngine } from '../../../src/connectors/index.js';
import { isCustodianError } from '../../../src/core/index.js';
import { MYSQL_ADMIN_URL } from '../../scanner/labelled-db.js';
import { PG_ADMIN_URL, createPgDatabase } from '../../support/stores.js';
import { describeConformance, person, type ConformanceFixture } from './conformance.js';

/*
 * The SQL data connectors (PostgreSQL, MariaDB, SQLite) against real services, each test file run creating
 * and dropping its own databases. With CI=true an unreachable service fails the run; locally it skips.
 */

type Value = string | number | null;

/** A fresh database of one engine with a persistent admin handle for DDL and seeding. */
interface Harness {
  readonly engine: SqlEngine;
  readonly url: string;
  exec(sql: string, params?: readonly Value[]): Promise<void>;
  insert(table: string, columns: readonly string[], rows: readonly (readonly Value[])[], schema?: string): Promise<void>;
  cleanup(): Promise<void>;
}

const quote = (engine: SqlEngine, name: string): string => (engine === 'mysql' ? `\`${name.replace(/`/g, '``')}\`` : `"${name.replace(/"/g, '""')}"`);
const text = (engine: SqlEngine): string => (engine === 'mysql' ? 'varchar(255)' : 'text');

async function pgHarness(): Promise<Harness> {
  const db = await createPgDatabase('cst_test_data');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  return {
    engine: 'postgres',
    url: db.url,
    exec: async (sql, params = []) => void (await client.query(sql, [...params])),
    insert: async (table, columns, rows, schema = 'public') => {
      for (let i = 0; i < rows.length; i += 500) {
        const part = rows.slice(i, i + 500);
        const values = part.map((_, r) => `(${columns.map((__, c) => `$${r * columns.length + c + 1}`).join(', ')})`).join(', ');
        await client.query(`insert into ${quote('postgres', schema)}.${quote('postgres', table)} (${columns.map((c) => quote('postgres', c)).join(', ')}) values ${values}`, part.flat());
      }
    },
    cleanup: async () => {
      await client.end();
      await db.drop();
    },
  };
}

async function mysqlHarness(): Promise<Harness> {
  const name = `cst_test_data_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new URL(MYSQL_ADMIN_URL);
  const conn = await mysql.createConnection({ host: admin.hostname, port: Number(admin.port || 3306), user: decodeURIComponent(admin.username), password: decodeURIComponent(admin.password), charset: 'utf8mb4' });
  // The server's default collation (case- and accent-insensitive) is kept: the connector must still match exactly.
  await conn.query(`create database \`${name}\` character set utf8mb4`);
  await conn.query(`use \`${name}\``);
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    engine: 'mysql',
    url: url.toString(),
    exec: async (sql, params = []) => void (await conn.query(sql, [...params])),
    insert: async (table, columns, rows) => {
      for (let i = 0; i < rows.length; i += 500) {
        const part = rows.slice(i, i + 500);
        const values = part.map(() => `(${columns.map(() => '?').join(', ')})`).join(', ');
        await conn.query(`insert into ${quote('mysql', table)} (${columns.map((c) => quote('mysql', c)).join(', ')}) values ${values}`, part.flat());
      }
    },
    cleanup: async () => {
      await conn.query(`drop database if exists \`${name}\``);
      await conn.end();
    },
  };
}

async function sqliteHarness(): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'custodian-data-'));
  const path = join(dir, 'app.db');
  const db = new SQLite(path);
  // The application's own settings: WAL, as most applications using SQLite concurrently do.
  db.pragma('journal_mode = wal');
  return {
    engine: 'sqlite',
    url: `sqlite:${path}`,
    exec: async (sql, params = []) => void (params.length === 0 ? db.exec(sql) : db.prepare(sql).run(...params)),
    insert: async (table, columns, rows) => {
      const stmt = db.prepare(`insert into ${quote('sqlite', table)} (${columns.map((c) => quote('sqlite', c)).join(', ')}) values (${columns.map(() => '?').join(', ')})`);
      db.transaction(() => {
        for (const r of rows) stmt.run(...r);
      })();
    },
    cleanup: async () => {
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const HARNESSES: Record<SqlEngine, () => Promise<Harness>> = { postgres: pgHarness, mysql: mysqlHarness, sqlite: sqliteHarness };

async function reachable(engine: SqlEngine): Promise<boolean> {
  if (engine === 'sqlite') return true;
  try {
    if (engine === 'postgres') {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3_000 });
      await c.connect();
      await c.end();
    } else {
      const u = new URL(MYSQL_ADMIN_URL);
      const c = await mysql.createConnection({ host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), connectTimeout: 3_000 });
      await c.end();
    }
    return true;
  } catch {
    return false;
  }
}

const PEOPLE_COLUMNS = ['id', 'email', 'name', 'note', 'ref'] as const;

async function createPeople(h: Harness, table = 'people', schema?: string): Promise<void> {
  const q = (n: string) => quote(h.engine, n);
  const from = schema === undefined ? q(table) : `${q(schema)}.${q(table)}`;
  const key = h.engine === 'mysql' ? 'varchar(64)' : 'text';
  await h.exec(`create table ${from} (${q('id')} ${key} primary key, ${q('email')} ${text(h.engine)}, ${q('name')} ${text(h.engine)}, ${q('note')} ${text(h.engine)}, ${q('ref')} integer)`);
  const ix = quote(h.engine, `${table}_email_idx`);
  await h.exec(h.engine === 'postgres' && schema !== undefined ? `create index ${ix} on ${from} (${q('email')})` : `create index ${ix} on ${from} (${q('email')})`);
  await h.exec(`create index ${quote(h.engine, `${table}_ref_idx`)} on ${from} (${q('ref')})`);
}

const rowValues = (rows: readonly Record<string, Value>[]): Value[][] => rows.map((r) => PEOPLE_COLUMNS.map((c) => r[c] ?? null));

async function collect(iterable: AsyncIterable<readonly Row[]>): Promise<{ rows: Row[]; batches: number[] }> {
  const rows: Row[] = [];
  const batches: number[] = [];
  for await (const batch of iterable) {
    batches.push(batch.length);
    rows.push(...batch);
  }
  return { rows, batches };
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

const target = (name: string, options: Record<string, string> = {}): CollectionTarget => ({ name, options });

for (const engine of ['postgres', 'mysql', 'sqlite'] as const) {
  const up = await reachable(engine);
  if (!up && process.env.CI !== 'true') {
    describe.skip(`${engine} data connector (service not reachable; CI=true fails instead)`, () => {
      it('skipped', () => undefined);
    });
    continue;
  }

  describeConformance(engine, async (): Promise<ConformanceFixture> => {
    const h = await HARNESSES[engine]();
    await createPeople(h);
    // Retention: the age column in each engine's own date-time type (SQLite: ISO-8601 text).
    const at = engine === 'postgres' ? 'timestamptz(3)' : engine === 'mysql' ? 'datetime(3)' : 'text';
    await h.exec(`create table ${quote(engine, 'visits')} (${quote(engine, 'id')} ${engine === 'mysql' ? 'varchar(64)' : 'text'} primary key, ${quote(engine, 'at')} ${at}, ${quote(engine, 'email')} ${text(engine)}, ${quote(engine, 'note')} ${text(engine)})`);
    const connector = await openDataConnector(h.url);
    return {
      connector,
      pagesInKeyOrder: true,
      target: (collection) => target(collection),
      visits: {
        target: target('visits'),
        seed: async (rows) => {
          await h.exec(`delete from ${quote(engine, 'visits')}`);
          const when = (v: string | null) => (v === null || engine !== 'mysql' ? v : v.replace('T', ' ').replace('Z', ''));
          await h.insert('visits', ['id', 'at', 'email', 'note'], rows.map((r) => [r.id, when(r.at), r.email, r.note]));
        },
      },
      seed: async (rows) => {
        await h.exec(`delete from ${quote(engine, 'people')}`);
        await h.insert('people', PEOPLE_COLUMNS, rowValues(rows));
      },
      cleanup: async () => {
        await connector.close();
        await h.cleanup();
      },
    };
  });

  describe(`${engine} data connector (SQL)`, () => {
    let h: Harness;
    let connector: DataConnector;
    beforeAll(async () => {
      h = await HARNESSES[engine]();
      connector = await openDataConnector(h.url);
    });
    afterAll(async () => {
      await connector?.close();
      await h?.cleanup();
    });

    it('is the adapter its URL names', () => {
      const classes = { postgres: PostgresDataConnector, mysql: MysqlDataConnector, sqlite: SqliteDataConnector };
      expect(connector).toBeInstanceOf(classes[engine]);
      expect(connector.kind).toBe(engine);
    });

    it('quotes mixed-case and odd table and column names', async () => {
      const table = engine === 'mysql' ? 'Mixed Case `People' : 'Mixed Case "People';
      const column = engine === 'mysql' ? 'E-Mail `Address' : 'E-Mail "Address';
      const q = (n: string) => quote(engine, n);
      await h.exec(`create table ${q(table)} (${q('Id')} integer primary key, ${q(column)} ${text(engine)}, ${q('Note')} ${text(engine)})`);
      await h.insert(table, ['Id', column, 'Note'], [
        [1, 'ada@example.com', 'first'],
        [2, 'grace@example.com', null],
        [3, 'ADA@example.com', 'upper'],
      ]);
      const t = target(table);
      expect((await collect(connector.find(t, column, ['ada@example.com'], ['Id', 'Note']))).rows).toEqual([{ Id: 1, [column]: 'ada@example.com', Note: 'first' }]);
      expect(await connector.updateRows(t, 'Id', [{ key: 2, set: { Note: 'changed' } }])).toBe(1);
      expect(await connector.deleteRows(t, 'Id', [1, '3'])).toBe(2);
      expect((await collect(connector.find(t, 'Id', [1, 2, 3], ['Note']))).rows).toEqual([{ Id: 2, Note: 'changed' }]);
      // Column names are matched exactly as declared.
      const err = await errorOf(collect(connector.find(t, 'id', [2], [])));
      expect(isCustodianError(err, 'CST_ERR_CONNECTOR_SCHEMA')).toBe(true);
      if (engine !== 'sqlite') {
        // PostgreSQL and MySQL (on Linux) table names are case-sensitive; SQLite's are not, by design.
        const other = await errorOf(collect(connector.find(target(table.toLowerCase()), 'Id', [2], [])));
        expect(isCustodianError(other, 'CST_ERR_CONNECTOR_SCHEMA')).toBe(true);
      }
    });

    it('streams a 20,000-row match in bounded batches', async () => {
      await createPeople(h, 'crowd');
      const rows = Array.from({ length: 20_000 }, (_, i) => person(i + 1, { ref: 1 }));
      await h.insert('crowd', PEOPLE_COLUMNS, rowValues(rows));
      let seen = 0;
      let batches = 0;
      let largest = 0;
      for await (const batch of connector.find(target('crowd'), 'ref', [1], ['id', 'email'])) {
        batches++;
        seen += batch.length;
        largest = Math.max(largest, batch.length);
      }
      expect(seen).toBe(20_000);
      expect(largest).toBeLessThanOrEqual(1_000);
      expect(batches).toBeGreaterThanOrEqual(20);
      // Deleting them all goes in batches of at most MAX_BATCH keys, and is exact.
      expect(await connector.deleteRows(target('crowd'), 'id', rows.slice(0, 2 * MAX_BATCH + 7).map((r) => r.id!))).toBe(2 * MAX_BATCH + 7);
    });

    it('lets the consumer change rows while it reads them', async () => {
      await createPeople(h, 'busy');
      const rows = Array.from({ length: 2_500 }, (_, i) => person(i + 1, { ref: 5 }));
      await h.insert('busy', PEOPLE_COLUMNS, rowValues(rows));
      let seen = 0;
      let deleted = 0;
      for await (const batch of connector.find(target('busy'), 'ref', [5], ['id'])) {
        seen += batch.length;
        deleted += await connector.deleteRows(
          target('busy'),
          'id',
          batch.map((r) => String(r.id)),
        );
      }
      expect(seen).toBe(2_500);
      expect(deleted).toBe(2_500);
    });

    it('fails a NOT NULL violation as CST_ERR_CONNECTOR_FAILED without the value', async () => {
      const q = (n: string) => quote(engine, n);
      await h.exec(`create table ${q('strict_people')} (${q('id')} integer primary key, ${q('email')} ${text(engine)} not null)`);
      await h.insert('strict_people', ['id', 'email'], [[1, 'kept@example.com']]);
      const err = await errorOf(connector.updateRows(target('strict_people'), 'id', [{ key: 1, set: { email: null } }]));
      expect(isCustodianError(err, 'CST_ERR_CONNECTOR_FAILED')).toBe(true);
      expect(JSON.stringify({ m: (err as Error).message, d: (err as { details: unknown }).details })).not.toContain('kept@example.com');
      expect((await collect(connector.find(target('strict_people'), 'id', [1], ['email']))).rows).toEqual([{ id: 1, email: 'kept@example.com' }]);
    });

    if (engine === 'postgres') {
      it('reads the schema named in the target options (default public)', async () => {
        await h.exec('create schema "CRM Data"');
        await createPeople(h, 'people', 'CRM Data');
        await createPeople(h, 'people');
        await h.insert('people', PEOPLE_COLUMNS, rowValues([person(1, { name: 'In CRM' })]), 'CRM Data');
        await h.insert('people', PEOPLE_COLUMNS, rowValues([person(1, { name: 'In public' })]));
        const inCrm = await collect(connector.find(target('people', { schema: 'CRM Data' }), 'id', ['p-00001'], ['name']));
        expect(inCrm.rows).toEqual([{ id: 'p-00001', name: 'In CRM' }]);
        const inPublic = await collect(connector.find(target('people'), 'id', ['p-00001'], ['name']));
        expect(inPublic.rows).toEqual([{ id: 'p-00001', name: 'In public' }]);
        expect(await connector.deleteRows(target('people', { schema: 'CRM Data' }), 'id', ['p-00001'])).toBe(1);
        expect((await collect(connector.find(target('people'), 'id', ['p-00001'], ['name']))).rows).toHaveLength(1);
        const err = await errorOf(collect(connector.find(target('people', { schema: 'no_such_schema' }), 'id', ['p-00001'], [])));
        expect(isCustodianError(err, 'CST_ERR_CONNECTOR_SCHEMA')).toBe(true);
        expect((err as { details: { schema: string } }).details.schema).toBe('no_such_schema');
      });

      it('reports a read-only role erasing as CST_ERR_CONNECTOR_PERMISSION, and lets it read', async () => {
        await createPeople(h, 'guarded');
        await createPeople(h, 'hidden');
        await h.insert('guarded', PEOPLE_COLUMNS, rowValues([person(1), person(2)]));
        const role = `cst_ro_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
        const dbName = new URL(h.url).pathname.slice(1);
        await h.exec(`create role ${role} login`);
        let ro: DataConnector | undefined;
        try {
          await h.exec(`grant connect on database ${dbName} to ${role}`);
          await h.exec(`grant usage on schema public to ${role}`);
          await h.exec(`grant select on guarded to ${role}`);
          const url = new URL(h.url);
          url.username = role;
          url.password = 'never-shown-4711';
          ro = await openDataConnector(url.toString());
          expect((await collect(ro.find(target('guarded'), 'id', ['p-00001'], ['email']))).rows).toEqual([{ id: 'p-00001', email: 'person1@example.com' }]);
          const del = await errorOf(ro.deleteRows(target('guarded'), 'id', ['p-00001']));
          expect(isCustodianError(del, 'CST_ERR_CONNECTOR_PERMISSION')).toBe(true);
          expect((del as { status: number }).status).toBe(502);
          expect((del as { details: unknown }).details).toMatchObject({ operation: 'delete', collection: 'guarded', reason: '42501' });
          expect(JSON.stringify((del as { details: unknown }).details)).not.toContain('never-shown-4711');
          const upd = await errorOf(ro.updateRows(target('guarded'), 'id', [{ key: 'p-00001', set: { note: null } }]));
          expect(isCustodianError(upd, 'CST_ERR_CONNECTOR_PERMISSION')).toBe(true);
          const read = await errorOf(collect(ro.find(target('hidden'), 'id', ['p-00001'], [])));
          expect(isCustodianError(read, 'CST_ERR_CONNECTOR_PERMISSION')).toBe(true);
          expect((await collect(connector.find(target('guarded'), 'id', ['p-00001', 'p-00002'], []))).rows).toHaveLength(2);
        } finally {
          await ro?.close();
          await h.exec(`revoke all on all tables in schema public from ${role}`);
          await h.exec(`revoke all on schema public from ${role}`);
          await h.exec(`revoke all on database ${dbName} from ${role}`);
          await h.exec(`drop role ${role}`);
        }
      });

      it('holds one cursor page in memory: a small fetch size gives small batches', async () => {
        await createPeople(h, 'paged');
        await h.insert('paged', PEOPLE_COLUMNS, rowValues(Array.from({ length: 1_000 }, (_, i) => person(i + 1, { ref: 2 }))));
        const small = await PostgresDataConnector.open(h.url, { fetchRows: 64 });
        try {
          const { rows, batches } = await collect(small.find(target('paged'), 'ref', [2], ['id']));
          expect(rows).toHaveLength(1_000);
          expect(Math.max(...batches)).toBeLessThanOrEqual(64);
        } finally {
          await small.close();
        }
      });
    }
  });
}

describe('openDataConnector', () => {
  it('refuses schemes no adapter handles, and malformed URLs', async () => {
    for (const url of ['gopher://127.0.0.1:70', 'ftp://example.com/x', 'nonsense', '']) {
      const err = await errorOf(openDataConnector(url));
      expect(isCustodianError(err, 'CST_ERR_CONNECTOR_UNSUPPORTED'), url).toBe(true);
      expect((err as { status: number }).status).toBe(400);
    }
    for (const url of ['postgres://user:hunter2@', 'mysql://user:hunter2@127.0.0.1:3306/', 'sqlite:', 'sqlite::memory:']) {
      const err = await errorOf(openDataConnector(url));
      expect(isCustodianError(err, 'CST_ERR_CONNECTOR_UNSUPPORTED'), url).toBe(true);
      expect(JSON.stringify((err as { details: unknown }).details)).not.toContain('hunter2');
    }
  });

  it('reports unreachable systems as CST_ERR_CONNECTOR_UNAVAILABLE (503), never with the password', async () => {
    for (const url of ['postgres://user:hunter2@127.0.0.1:1/db', 'mariadb://user:hunter2@127.0.0.1:1/db', `sqlite:${join(tmpdir(), 'custodian-no-such-dir', 'missing.db')}`]) {
      const err = await errorOf(openDataConnector(url));
      expect(isCustodianError(err, 'CST_ERR_CONNECTOR_UNAVAILABLE'), url).toBe(true);
      expect((err as { status: number }).status).toBe(503);
      const shown = JSON.stringify({ m: (err as Error).message, d: (err as { details: unknown }).details, c: (err as Error).cause });
      expect(shown).not.toContain('hunter2');
    }
  });
});
