import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createPgDatabase, PG_ADMIN_URL } from '../support/stores.js';

/* An application database for retention tests: `events` (delete rule) and `profiles` (anonymise rule). */

export type AppEngine = 'sqlite' | 'postgres';

export interface EventRow {
  readonly id: string;
  readonly email: string;
  /** ISO-8601 UTC with milliseconds, or null (never due). */
  readonly at: string | null;
}

export interface ProfileRow {
  readonly id: number;
  readonly email: string;
  readonly name: string;
  readonly phone: string | null;
  readonly lastSeen: string;
}

export interface AppDatabase {
  readonly engine: AppEngine;
  readonly url: string;
  insertEvents(rows: readonly EventRow[]): Promise<void>;
  insertProfiles(rows: readonly ProfileRow[]): Promise<void>;
  /** Ids of `events`, sorted. */
  eventIds(): Promise<string[]>;
  profiles(): Promise<{ id: number; email: string; name: string; phone: string | null }[]>;
  /** Replaces the content of both tables. */
  clear(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

/** A fresh application database of `engine` with both tables, empty. */
export async function appDatabase(engine: AppEngine): Promise<AppDatabase> {
  if (engine === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'cst-retention-app-'));
    const path = join(dir, 'app.db');
    const db = new Database(path);
    db.pragma('journal_mode = wal');
    db.exec(`create table events (id text primary key, email text not null, at text, note text);
             create table profiles (id integer primary key, email text not null, name text, phone text, last_seen text not null);`);
    return {
      engine,
      url: `sqlite:${path}`,
      insertEvents: async (rows) => {
        const stmt = db.prepare('insert into events (id, email, at, note) values (?, ?, ?, ?)');
        db.transaction(() => rows.forEach((r) => stmt.run(r.id, r.email, r.at, 'n')))();
      },
      insertProfiles: async (rows) => {
        const stmt = db.prepare('insert into profiles (id, email, name, phone, last_seen) values (?, ?, ?, ?, ?)');
        db.transaction(() => rows.forEach((r) => stmt.run(r.id, r.email, r.name, r.phone, r.lastSeen)))();
      },
      eventIds: async () => (db.prepare('select id from events order by id').all() as { id: string }[]).map((r) => r.id),
      profiles: async () => db.prepare('select id, email, name, phone from profiles order by id').all() as { id: number; email: string; name: string; phone: string | null }[],
      clear: async () => void db.exec('delete from events; delete from profiles;'),
      cleanup: async () => {
        db.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  const created = await createPgDatabase('cst_test_retention_app');
  const client = new pg.Client({ connectionString: created.url });
  await client.connect();
  await client.query(`create table events (id text primary key, email text not null, at timestamptz(3), note text);
                      create table profiles (id integer primary key, email text not null, name text, phone text, last_seen timestamptz(3) not null);`);
  return {
    engine,
    url: created.url,
    insertEvents: async (rows) => {
      for (let i = 0; i < rows.length; i += 1000) {
        const part = rows.slice(i, i + 1000);
        await client.query('insert into events (id, email, at, note) select * from unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[])', [part.map((r) => r.id), part.map((r) => r.email), part.map((r) => r.at), part.map(() => 'n')]);
      }
    },
    insertProfiles: async (rows) => {
      if (rows.length === 0) return;
      await client.query('insert into profiles (id, email, name, phone, last_seen) select * from unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])', [
        rows.map((r) => r.id),
        rows.map((r) => r.email),
        rows.map((r) => r.name),
        rows.map((r) => r.phone),
        rows.map((r) => r.lastSeen),
      ]);
    },
    eventIds: async () => (await client.query<{ id: string }>('select id from events order by id collate "C"')).rows.map((r) => r.id),
    profiles: async () => (await client.query<{ id: number; email: string; name: string; phone: string | null }>('select id, email, name, phone from profiles order by id')).rows,
    clear: async () => void (await client.query('delete from events; delete from profiles;')),
    cleanup: async () => {
      await client.end();
      await created.drop();
    },
  };
}

/** The data map of the application database (app-data.ts): events deleted after 30 days, profiles anonymised after a year. */
export { retentionManifest } from './app-data.js';
