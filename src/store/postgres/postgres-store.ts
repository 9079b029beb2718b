import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../database.js';
import { runMigrations } from '../migrations/run-migrations.js';
import type { Executor, MigrationReport, Store } from '../store.js';

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

  transaction<T>(fn: (trx: Executor) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
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
