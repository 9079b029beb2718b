import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../database.js';
import { runMigrations } from '../migrations/run-migrations.js';
import { isRetryableConflict } from '../store-errors.js';
import type { Executor, MigrationReport, Store } from '../store.js';

const MAX_ATTEMPTS = 3;

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions {
  readonly connectionString: string;
  readonly maxConnections?: number;
}

/** The store for deployments at scale: PostgreSQL, shared by many `serve` replicas and workers. */
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly db: Kysely<Database>;
  readonly #pool: pg.Pool;

  constructor(options: PostgresStoreOptions) {
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: 10_000,
    });
    // An idle client losing its connection must not crash the process; the next checkout reconnects.
    this.#pool.on('error', () => undefined);
    this.db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: this.#pool }) });
  }

  /** Runs `fn` in a transaction, re-running it whole (up to 3 attempts) after a deadlock or serialization failure. */
  async transaction<T>(fn: (trx: Executor) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(fn);
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS || !isRetryableConflict(err)) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  async lock(trx: Executor, key: string): Promise<void> {
    await sql`select pg_advisory_xact_lock(hashtext(${key}))`.execute(trx);
  }

  migrate(): Promise<MigrationReport> {
    return runMigrations(this.db as Kysely<unknown>, 'postgres');
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
