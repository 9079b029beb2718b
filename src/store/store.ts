import type { Kysely } from 'kysely';
import type { Database } from './database.js';

/** Which engine backs a store. */
export type StoreKind = 'sqlite' | 'postgres';

/** A query executor: the store's Kysely instance or a transaction of it. */
export type Executor = Kysely<Database>;

/** What a change notice is about: consent state of subjects, data keys (shredding, rotation), or new outbox events. */
export type ChangeTopic = 'consent' | 'keys' | 'events';

/**
 * Receives change notices from other processes: the topic and ids when known; `(null, null)` when anything
 * may have changed (a SQLite commit by another connection, a lost or overlong notice).
 */
export type ChangeListener = (topic: ChangeTopic | null, ids: readonly string[] | null) => void;

/** A running watch of changes. */
export interface ChangeWatch {
  /** False while the feed is down (e.g. the LISTEN connection is reconnecting). */
  readonly healthy: boolean;
  stop(): Promise<void>;
}

/** Outcome of running migrations. */
export interface MigrationReport {
  readonly applied: readonly string[];
  readonly current: readonly string[];
}

/**
 * Custodian's own persistence. Adapters: `sqlite:<path>` (default) and `postgres://…`.
 * Repositories write portable Kysely queries against {@link Store.db}; only DDL differs per engine.
 */
export interface Store {
  readonly kind: StoreKind;
  readonly db: Kysely<Database>;
  /** Runs `fn` in one write transaction; it commits when `fn` resolves and rolls back when it throws. */
  transaction<T>(fn: (trx: Executor) => Promise<T>): Promise<T>;
  /**
   * Inside a {@link Store.transaction}, waits for an exclusive lock named `key` held until the transaction ends
   * (PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE already makes every write transaction exclusive).
   */
  lock(trx: Executor, key: string): Promise<void>;
  /** {@link lock} for several keys in one round trip, taken in sorted order (so two callers cannot deadlock). */
  lockAll(trx: Executor, keys: readonly string[]): Promise<void>;
  /**
   * Inside a write transaction: tells other processes on this store, once it commits, that these ids changed
   * (PostgreSQL NOTIFY; a no-op on SQLite, whose commits other connections see by data_version).
   */
  announceChange(trx: Executor, topic: ChangeTopic, ids: readonly string[]): Promise<void>;
  /**
   * Calls `listener` when another connection or process committed announced changes. `healthy` says whether
   * changes are being watched at all; while it is false, callers must not rely on the feed.
   */
  watchChanges(listener: ChangeListener): Promise<ChangeWatch>;
  /**
   * A number that changes whenever another connection has committed, read synchronously (SQLite's
   * data_version), or undefined where no such cheap check exists (PostgreSQL: rely on {@link watchChanges}).
   */
  changeToken(): number | undefined;
  /**
   * Makes deleted rows unrecoverable from the store's own files where the engine allows: SQLite overwrites
   * deleted content (secure_delete) and this truncates the WAL; PostgreSQL keeps dead tuples until VACUUM and
   * its WAL until recycled (see docs/security.md).
   */
  purgeDeleted(): Promise<void>;
  /** Applies pending migrations (forward-only). */
  migrate(): Promise<MigrationReport>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
