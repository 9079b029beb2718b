import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { Database } from '../database.js';
import { runMigrations } from '../migrations/run-migrations.js';
import type { ChangeListener, ChangeWatch, Executor, MigrationReport, Store } from '../store.js';

/** How often another process's commits are looked for (PRAGMA data_version). */
export const SQLITE_CHANGE_POLL_MS = 50;

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** File path, or `:memory:`. */
  readonly path: string;
  /** `full` (default) survives power loss; `normal` survives process crashes only. */
  readonly synchronous?: 'full' | 'normal';
  readonly busyTimeoutMs?: number;
}

/**
 * The embedded store: one SQLite file in WAL mode. Write transactions start with BEGIN IMMEDIATE, so
 * a second process (the CLI beside `serve`) waits on the busy timeout instead of failing mid-transaction.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly db: Kysely<Database>;
  readonly #raw: SQLite.Database;

  constructor(options: SqliteStoreOptions) {
    if (options.path !== ':memory:') {
      mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
      // Create the file owner-only before SQLite does; its -wal and -shm files inherit the mode.
      closeSync(openSync(options.path, 'a', 0o600));
    }
    this.#raw = new SQLite(options.path);
    this.#raw.pragma('journal_mode = WAL');
    this.#raw.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    this.#raw.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    this.#raw.pragma('foreign_keys = ON');
    // Deleted content (shredded keys) is overwritten with zeros instead of lingering in free pages.
    this.#raw.pragma('secure_delete = ON');
    const raw = this.#raw;
    const cache = new Map<string, SQLite.Statement>();
    const database = {
      close: () => raw.close(),
      prepare: (text: string) => {
        let stmt = cache.get(text);
        if (stmt === undefined || stmt.busy) {
          stmt = raw.prepare(text);
          if (cache.size >= 200) cache.delete(cache.keys().next().value!);
          cache.set(text, stmt);
        }
        return stmt;
      },
    };
    this.db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  }

  async transaction<T>(fn: (trx: Executor) => Promise<T>): Promise<T> {
    return this.db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        const result = await fn(conn);
        await sql`commit`.execute(conn);
        return result;
      } catch (err) {
        if (this.#raw.inTransaction) await sql`rollback`.execute(conn);
        throw err;
      }
    });
  }

  #dataVersion: SQLite.Statement | undefined;

  changeToken(): number {
    this.#dataVersion ??= this.#raw.prepare('pragma data_version').pluck();
    return this.#dataVersion.get() as number;
  }

  async announceChange(): Promise<void> {
    // Other connections notice commits through PRAGMA data_version; nothing to send.
  }

  /**
   * Polls PRAGMA data_version, which changes only when another connection commits: any such commit may have
   * changed any subject, so the listener hears null. Costs one header read every {@link SQLITE_CHANGE_POLL_MS}.
   */
  async watchChanges(listener: ChangeListener): Promise<ChangeWatch> {
    const read = () => this.changeToken();
    let last = read();
    const timer = setInterval(() => {
      try {
        const now = read();
        if (now !== last) {
          last = now;
          listener(null, null);
        }
      } catch {
        listener(null, null); // closed or failing: make the reader distrust its cache
      }
    }, SQLITE_CHANGE_POLL_MS);
    timer.unref();
    return { healthy: true, stop: async () => clearInterval(timer) };
  }

  async purgeDeleted(): Promise<void> {
    // Copies the WAL into the database file and truncates it, so old frames holding deleted rows are gone. A reader
    // in another process can hold frames back: retry briefly; the next checkpoint completes it otherwise.
    for (let attempt = 0; attempt < 5; attempt++) {
      const [result] = this.#raw.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      if (result?.busy === 0) return;
      await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
    }
  }

  async lock(): Promise<void> {
    // BEGIN IMMEDIATE already holds the database's single write lock.
  }

  async lockAll(): Promise<void> {
    // As lock(): the write transaction is exclusive already.
  }

  /**
   * Kysely runs SQLite migrations without a transaction; running them inside BEGIN IMMEDIATE makes each run
   * atomic and keeps two processes from migrating the same file at once.
   */
  migrate(): Promise<MigrationReport> {
    return this.transaction((trx) => runMigrations(trx as Kysely<unknown>, 'sqlite'));
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
