import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../database.js';
import { runMigrations } from '../migrations/run-migrations.js';
import { isRetryableConflict } from '../store-errors.js';
import type { ChangeListener, ChangeTopic, ChangeWatch, Executor, MigrationReport, Store } from '../store.js';

const CHANNEL = 'custodian_changes';
const TOPICS: readonly ChangeTopic[] = ['consent', 'keys', 'events'];
// NOTIFY payloads must stay under 8000 bytes; larger change sets say "*" (everything may have changed).
const MAX_PAYLOAD = 7000;

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

  readonly #connectionString: string;

  constructor(options: PostgresStoreOptions) {
    this.#connectionString = options.connectionString;
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

  changeToken(): undefined {
    return undefined;
  }

  async announceChange(trx: Executor, topic: ChangeTopic, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    let payload = JSON.stringify({ t: topic, ids: [...new Set(ids)] });
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) payload = JSON.stringify({ t: topic, ids: null });
    // Delivered by PostgreSQL only if and when the transaction commits.
    await sql`select pg_notify(${CHANNEL}, ${payload})`.execute(trx);
  }

  /**
   * LISTENs on a dedicated connection. When it drops, the listener hears null, `healthy` turns false, and it
   * reconnects with backoff; once listening again the listener hears null once more (changes may have been missed).
   */
  async watchChanges(listener: ChangeListener): Promise<ChangeWatch> {
    let client: pg.Client | undefined;
    let healthy = false;
    let stopped = false;
    let retryMs = 100;
    let timer: NodeJS.Timeout | undefined;
    const onNotice = (msg: pg.Notification) => {
      if (msg.channel !== CHANNEL) return;
      try {
        const notice = JSON.parse(msg.payload ?? '') as { t?: unknown; ids?: unknown };
        const topic = TOPICS.find((t) => t === notice.t) ?? null;
        const ids = Array.isArray(notice.ids) && notice.ids.every((x) => typeof x === 'string') ? notice.ids : null;
        listener(topic, topic === null ? null : ids);
      } catch {
        listener(null, null);
      }
    };
    const lost = () => {
      if (!healthy && client === undefined) return;
      healthy = false;
      client?.removeAllListeners();
      client?.end().catch(() => undefined);
      client = undefined;
      listener(null, null);
      if (!stopped) {
        timer = setTimeout(() => void connect(), retryMs);
        timer.unref();
        retryMs = Math.min(retryMs * 2, 5000);
      }
    };
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.#connectionString });
      c.on('error', lost);
      c.on('end', lost);
      c.on('notification', onNotice);
      try {
        await c.connect();
        await c.query(`listen ${CHANNEL}`);
      } catch {
        c.removeAllListeners();
        await c.end().catch(() => undefined);
        if (!stopped) {
          timer = setTimeout(() => void connect(), retryMs);
          timer.unref();
          retryMs = Math.min(retryMs * 2, 5000);
        }
        return;
      }
      if (stopped) {
        c.removeAllListeners();
        await c.end().catch(() => undefined);
        return;
      }
      client = c;
      healthy = true;
      retryMs = 100;
      listener(null, null);
    };
    await connect();
    return {
      get healthy() {
        return healthy;
      },
      stop: async () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        const c = client;
        client = undefined;
        healthy = false;
        c?.removeAllListeners();
        await c?.end().catch(() => undefined);
      },
    };
  }

  async purgeDeleted(): Promise<void> {
    // Dead tuples are reclaimed by (auto)VACUUM; the bytes are useless without the master key in any case.
  }

  async lock(trx: Executor, key: string): Promise<void> {
    await sql`select pg_advisory_xact_lock(hashtext(${key}))`.execute(trx);
  }

  async lockAll(trx: Executor, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    if (keys.length === 1) return this.lock(trx, keys[0]!);
    // The sorted subquery fixes the order in which the locks are taken.
    const sorted = [...new Set(keys)].sort();
    await sql`select pg_advisory_xact_lock(hashtext(s.k)) from (select unnest(${sorted}::text[]) as k order by 1) as s`.execute(trx);
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
