import type { Kysely } from 'kysely';
import type { Database } from './database.js';

/** Which engine backs a store. */
export type StoreKind = 'sqlite' | 'postgres';

/** A query executor: the store's Kysely instance or a transaction of it. */
export type Executor = Kysely<Database>;

/** Receives consent change notices from other processes. */
export type ConsentChangeListener = (subjectIds: readonly string[] | null) => void;

/** A running watch of consent changes. */
export interface ConsentWatch {
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
  /**
   * Inside a write transaction: tells other processes on this store, once it commits, that these subjects'
   * consent changed (PostgreSQL NOTIFY; a no-op on SQLite, whose commits other connections see by data_version).
   */
  announceConsentChange(trx: Executor, subjectIds: readonly string[]): Promise<void>;
  /**
   * Calls `listener` when another connection or process committed consent changes: with the subject ids when
   * known, with null when any subject may have changed (SQLite commit, lost notification channel).
   * `healthy` says whether changes are being watched at all; while it is false, callers must not rely on the feed.
   */
  watchConsentChanges(listener: ConsentChangeListener): Promise<ConsentWatch>;
  /** Applies pending migrations (forward-only). */
  migrate(): Promise<MigrationReport>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
