import pg from 'pg';
import { CustodianError, type ErrorCode } from '../../core/index.js';
import { redactConnectionUrl } from '../open-schema-connector.js';
import { quotePostgresIdent } from '../postgres/postgres-schema-connector.js';
import { MAX_BATCH, type CheckedScan, type CollectionTarget, type DataConnector, type DueCondition, type KeyValue, type Row, type RowChange, type ScanPage } from './data-connector.js';
import { KeysetPaging, chunks, groupBySet, keysetPage, keysetStatement, normalize, type KeysetDialect } from './sql-shared.js';

/** Rows fetched from a PostgreSQL cursor per round trip, and so the largest batch {@link PostgresDataConnector.find} yields. */
export const POSTGRES_FETCH_ROWS = 1_000;

/** Options of {@link PostgresDataConnector}. */
export interface PostgresDataConnectorOptions {
  /** A `postgres://` / `postgresql://` URL. */
  readonly connectionString: string;
  /** Connections in the pool (default 8). */
  readonly poolSize?: number;
  /** Rows per cursor fetch (default {@link POSTGRES_FETCH_ROWS}). */
  readonly fetchRows?: number;
}

/** How values are compared with one column, from its type category. */
type Comparison = 'text' | 'integer' | 'numeric' | 'uuid' | 'other';

interface Column {
  readonly name: string;
  readonly comparison: Comparison;
  /** The type name (of the base type for domains), e.g. `timestamptz`. */
  readonly type: string;
}

interface Table {
  readonly schema: string;
  readonly name: string;
  /** `"schema"."table"`, quoted. */
  readonly from: string;
  readonly columns: ReadonlyMap<string, Column>;
}

const INTEGER = /^-?\d{1,19}$/;
const INT8_MAX = 9_223_372_036_854_775_807n;
const NUMERIC = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
// Dates and times stay text as stored (no time-zone shift through JS Date): date, time, timestamp, timestamptz, timetz.
const TEXT_OIDS = new Set([1082, 1083, 1114, 1184, 1266]);
const defaultParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => (value: string) => unknown;

/**
 * The values of `values` that can equal a value of a column compared as `comparison`, as text, deduplicated.
 * A value that cannot be of the column's type (e.g. `' OR 1=1 --` for an integer column) can match nothing,
 * so it is dropped here instead of making PostgreSQL fail the whole batch with 22P02.
 */
function comparable(comparison: Comparison, values: readonly KeyValue[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
    // Out of int8 range can match no integer column, and would fail the batch with 22003.
    if (comparison === 'integer' && (!INTEGER.test(s) || BigInt(s) > INT8_MAX || BigInt(s) < -INT8_MAX - 1n)) continue;
    if (comparison === 'numeric' && !NUMERIC.test(s)) continue;
    if (comparison === 'uuid' && !UUID.test(s)) continue;
    if (typeof v === 'number' && s === '') continue;
    out.add(s);
  }
  return [...out];
}

/** `column = any($n::type[])`: one array parameter per batch, so every batch size shares one statement shape. */
function predicate(column: Column, param: string): string {
  const c = quotePostgresIdent(column.name);
  switch (column.comparison) {
    case 'text':
      return `${c} = any(${param}::text[])`;
    case 'integer':
      return `${c} = any(${param}::int8[])`;
    case 'numeric':
      return `${c} = any(${param}::numeric[])`;
    case 'uuid':
      return `${c} = any(${param}::uuid[])`;
    default:
      // Types without a safe cast from arbitrary text (inet, enums, json…) are compared as text: exact, not indexed.
      return `${c}::text = any(${param}::text[])`;
  }
}

const CAST: Readonly<Record<Comparison, string>> = { text: 'text', integer: 'int8', numeric: 'numeric', uuid: 'uuid', other: 'text' };

/**
 * `age <op> $n` with `$n` a UTC instant as text, by the age column's type: timestamptz directly; timestamp and
 * date as UTC wall-clock time; numbers as seconds since the epoch; text as ISO-8601 UTC text (lexical order).
 */
function ageCompare(column: Column, op: '<' | '>=', param: string): string {
  const c = quotePostgresIdent(column.name);
  if (column.comparison === 'integer' || column.comparison === 'numeric') return `${c} ${op} extract(epoch from ${param}::timestamptz)`;
  if (column.comparison === 'text') return `${c} ${op} ${param}::text`;
  if (column.type === 'timestamp' || column.type === 'date') return `${c} ${op} (${param}::timestamptz at time zone 'UTC')`;
  return `${c} ${op} ${param}::timestamptz`;
}

/**
 * Keyset pages in PostgreSQL ({@link keysetStatement}): numbered parameters, the resume key cast to the key
 * column's type (`key > $n::int8`; types without a safe cast compare as text, in text order), a bound limit.
 */
const KEYSET: KeysetDialect<Column> = {
  quote: (column) => quotePostgresIdent(column.name),
  placeholder: (n) => `$${n}`,
  compareTime: (column, op, instant, param) => ({ sql: ageCompare(column, op, param), value: instant }),
  keyValue: (column, key) => comparable(column.comparison, [key])[0],
  after: (column, param) =>
    column.comparison === 'other' ? `${quotePostgresIdent(column.name)}::text > ${param}::text` : `${quotePostgresIdent(column.name)} > ${param}::${CAST[column.comparison]}`,
  order: (column) => (column.comparison === 'other' ? `${quotePostgresIdent(column.name)}::text` : quotePostgresIdent(column.name)),
  bindLimit: true,
};

/**
 * A {@link DataConnector} for PostgreSQL over a `pg` pool.
 *
 * - Collections are tables (or views) of `options.schema` (default `public`), introspected once from
 *   `pg_catalog` and cached; names are case-sensitive, quoted with double quotes (embedded quotes doubled).
 * - `find` runs one statement per batch of at most {@link MAX_BATCH} distinct values
 *   (`col = any($1::text[])`), through a server-side cursor in a read-only transaction, fetching
 *   {@link POSTGRES_FETCH_ROWS} rows at a time: memory is O(fetch size) whatever the number of matches.
 * - `deleteRows` runs one `DELETE … WHERE key = any($1)` per batch (its own transaction); `updateRows` one
 *   transaction per batch of {@link MAX_BATCH} changes, one `UPDATE` per distinct `set` in the batch, skipping
 *   rows already holding the new values (`is distinct from`), so counts are rows actually changed.
 */
export class PostgresDataConnector extends KeysetPaging implements DataConnector {
  readonly kind = 'postgres';
  readonly #pool: pg.Pool;
  readonly #fetchRows: number;
  readonly #displayUrl: string;
  readonly #tables = new Map<string, Promise<Table>>();
  #closed = false;

  constructor(options: PostgresDataConnectorOptions) {
    super();
    this.#displayUrl = redactConnectionUrl(options.connectionString);
    this.#fetchRows = Math.max(1, Math.floor(options.fetchRows ?? POSTGRES_FETCH_ROWS));
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 8,
      application_name: 'custodian-connector',
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      // Bounded: a request never waits forever on a lock or a runaway statement.
      statement_timeout: 60_000,
      lock_timeout: 10_000,
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (TEXT_OIDS.has(oid) ? (v: string) => v : defaultParser(oid, format))) as typeof pg.types.getTypeParser },
    });
    // An idle connection dropped by the server must not crash the process; the next query reports it.
    this.#pool.on('error', () => undefined);
  }

  /** Opens a pooled connector for `url` and checks that it answers (CST_ERR_CONNECTOR_UNAVAILABLE / _PERMISSION otherwise). */
  static async open(url: string, options: Omit<PostgresDataConnectorOptions, 'connectionString'> = {}): Promise<PostgresDataConnector> {
    const connector = new PostgresDataConnector({ ...options, connectionString: url });
    try {
      await connector.ping();
    } catch (err) {
      await connector.close();
      throw err;
    }
    return connector;
  }

  async *find(target: CollectionTarget, field: string, values: readonly KeyValue[], fields: readonly string[], options: { readonly signal?: AbortSignal } = {}): AsyncIterable<readonly Row[]> {
    options.signal?.throwIfAborted();
    const table = await this.#table(target, 'find');
    const key = this.#column(table, field);
    const select = [...new Set([field, ...fields])].map((f) => quotePostgresIdent(this.#column(table, f).name)).join(', ');
    const sql = `declare custodian_find no scroll cursor for select ${select} from ${table.from} where ${predicate(key, '$1')}`;
    for (const batch of chunks(comparable(key.comparison, values), MAX_BATCH)) {
      options.signal?.throwIfAborted();
      const client = await this.#connect('find', table);
      let open = false;
      let broken = false;
      try {
        await client.query('begin read only');
        open = true;
        await client.query(sql, [batch]);
        for (;;) {
          options.signal?.throwIfAborted();
          const res = await client.query<Record<string, unknown>>(`fetch ${this.#fetchRows} from custodian_find`);
          if (res.rows.length > 0) yield res.rows.map(normalize);
          if (res.rows.length < this.#fetchRows) break;
        }
        await client.query('commit');
        open = false;
      } catch (err) {
        broken = true;
        throw this.#error(err, 'find', table);
      } finally {
        // Also reached when the consumer stops early: end the transaction (closing the cursor) before reuse.
        if (open) await client.query('rollback').catch(() => (broken = true));
        client.release(broken);
      }
    }
  }

  /** One keyset page (scan and findExpired), in key order: the statement of {@link keysetStatement}. */
  protected async pageByKey(target: CollectionTarget, query: CheckedScan, operation: string, signal: AbortSignal | undefined): Promise<ScanPage> {
    signal?.throwIfAborted();
    const table = await this.#table(target, operation);
    const statement = keysetStatement(KEYSET, this.kind, table.from, (f) => this.#column(table, f), query);
    if (statement === undefined) return { rows: [], next: null };
    try {
      const res = await this.#pool.query<Record<string, unknown>>(statement.sql, statement.params);
      return keysetPage(this.kind, res.rows.map(normalize), query.keyField, query.limit);
    } catch (err) {
      throw this.#error(err, operation, table);
    }
  }

  async countExpired(target: CollectionTarget, due: DueCondition, options: { readonly from?: string; readonly signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted();
    const table = await this.#table(target, 'countExpired');
    const age = this.#column(table, due.ageField);
    const params: unknown[] = [due.cutoff];
    let where = ageCompare(age, '<', '$1');
    if (options.from !== undefined) {
      params.push(options.from);
      where += ` and ${ageCompare(age, '>=', '$2')}`;
    }
    try {
      const res = await this.#pool.query<{ n: string }>(`select count(*) as n from ${table.from} where ${where}`, params);
      return Number(res.rows[0]?.n ?? 0);
    } catch (err) {
      throw this.#error(err, 'countExpired', table);
    }
  }

  async deleteExpired(target: CollectionTarget, keyField: string, keys: readonly KeyValue[], due: DueCondition): Promise<number> {
    return this.#delete(target, keyField, keys, due);
  }

  async updateExpired(target: CollectionTarget, keyField: string, changes: readonly RowChange[], due: DueCondition): Promise<number> {
    return this.#update(target, keyField, changes, due);
  }

  async deleteRows(target: CollectionTarget, keyField: string, keys: readonly KeyValue[]): Promise<number> {
    return this.#delete(target, keyField, keys, undefined);
  }

  async updateRows(target: CollectionTarget, keyField: string, changes: readonly RowChange[]): Promise<number> {
    return this.#update(target, keyField, changes, undefined);
  }

  async #delete(target: CollectionTarget, keyField: string, keys: readonly KeyValue[], due: DueCondition | undefined): Promise<number> {
    const table = await this.#table(target, 'delete');
    const key = this.#column(table, keyField);
    const age = due === undefined ? undefined : this.#column(table, due.ageField);
    const sql = `delete from ${table.from} where ${predicate(key, '$1')}${age === undefined ? '' : ` and ${ageCompare(age, '<', '$2')}`}`;
    let deleted = 0;
    for (const batch of chunks(comparable(key.comparison, keys), MAX_BATCH)) {
      try {
        deleted += (await this.#pool.query(sql, due === undefined ? [batch] : [batch, due.cutoff])).rowCount ?? 0;
      } catch (err) {
        throw this.#error(err, 'delete', table);
      }
    }
    return deleted;
  }

  async #update(target: CollectionTarget, keyField: string, changes: readonly RowChange[], due: DueCondition | undefined): Promise<number> {
    const table = await this.#table(target, 'update');
    const key = this.#column(table, keyField);
    const age = due === undefined ? undefined : this.#column(table, due.ageField);
    for (const change of changes) for (const f of Object.keys(change.set)) this.#column(table, f);
    let changed = 0;
    for (const batch of chunks(changes, MAX_BATCH)) {
      const groups = groupBySet(batch, (k) => comparable(key.comparison, [k])[0]);
      if (groups.length === 0) continue;
      const client = await this.#connect('update', table);
      let broken = false;
      try {
        await client.query('begin');
        for (const { set, keys } of groups) {
          const entries = Object.entries(set);
          const assignments = entries.map(([f], i) => `${quotePostgresIdent(f)} = $${i + 2}`).join(', ');
          const differs = entries.map(([f], i) => `${quotePostgresIdent(f)} is distinct from $${i + 2}`).join(' or ');
          const dueParam = `$${entries.length + 2}`;
          const sql = `update ${table.from} set ${assignments} where ${predicate(key, '$1')} and (${differs})${age === undefined ? '' : ` and ${ageCompare(age, '<', dueParam)}`}`;
          const values = [keys, ...entries.map(([, v]) => (v === null ? null : String(v)))];
          changed += (await client.query(sql, due === undefined ? values : [...values, due.cutoff])).rowCount ?? 0;
        }
        await client.query('commit');
      } catch (err) {
        await client.query('rollback').catch(() => (broken = true));
        throw this.#error(err, 'update', table);
      } finally {
        client.release(broken);
      }
    }
    return changed;
  }

  async ping(): Promise<void> {
    try {
      await this.#pool.query('select 1');
    } catch (err) {
      throw this.#error(err, 'ping');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end().catch(() => undefined);
  }

  async #connect(operation: string, table: Table): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (err) {
      throw this.#error(err, operation, table);
    }
  }

  /** The introspected table `target` names, cached; CST_ERR_CONNECTOR_SCHEMA when it does not exist. */
  async #table(target: CollectionTarget, operation: string): Promise<Table> {
    const schema = target.options.schema ?? 'public';
    const cacheKey = `${schema}\u0000${target.name}`;
    let table = this.#tables.get(cacheKey);
    if (table === undefined) {
      table = this.#introspect(schema, target.name, operation);
      this.#tables.set(cacheKey, table);
      // A failed look-up (unknown table, outage) is not cached: the next call asks again.
      table.catch(() => this.#tables.delete(cacheKey));
    }
    return table;
  }

  async #introspect(schema: string, name: string, operation: string): Promise<Table> {
    let rows: { name: string; typname: string; typcategory: string }[];
    try {
      // pg_catalog, not information_schema: it lists tables the role may not read, so a missing privilege is
      // reported as such (42501 on use) instead of as an unknown table.
      rows = (
        await this.#pool.query<{ name: string; typname: string; typcategory: string }>(
          `select a.attname as name, coalesce(bt.typname, t.typname) as typname, coalesce(bt.typcategory, t.typcategory) as typcategory
             from pg_catalog.pg_attribute a
             join pg_catalog.pg_class c on c.oid = a.attrelid
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace
             join pg_catalog.pg_type t on t.oid = a.atttypid
             left join pg_catalog.pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
            where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p', 'v', 'm', 'f')
              and a.attnum > 0 and not a.attisdropped
            order by a.attnum`,
          [schema, name],
        )
      ).rows;
    } catch (err) {
      throw this.#error(err, operation);
    }
    if (rows.length === 0) {
      throw new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `no table "${name}" in schema "${schema}"`, { details: { kind: this.kind, schema, collection: name } });
    }
    const columns = new Map<string, Column>();
    for (const r of rows) {
      const comparison: Comparison =
        r.typcategory === 'S'
          ? 'text'
          : /^int[248]$/.test(r.typname)
            ? 'integer'
            : r.typcategory === 'N' && r.typname !== 'money' && r.typname !== 'oid'
              ? 'numeric'
              : r.typname === 'uuid'
                ? 'uuid'
                : 'other';
      columns.set(r.name, { name: r.name, comparison, type: r.typname });
    }
    return { schema, name, from: `${quotePostgresIdent(schema)}.${quotePostgresIdent(name)}`, columns };
  }

  #column(table: Table, field: string): Column {
    const column = table.columns.get(field);
    if (column === undefined) {
      throw new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `no column "${field}" in table "${table.name}"`, {
        details: { kind: this.kind, schema: table.schema, collection: table.name, field },
      });
    }
    return column;
  }

  /** A driver error as a CustodianError: the SQLSTATE or network code only, never the driver's message (it may quote values). */
  #error(err: unknown, operation: string, table?: Table): unknown {
    if (err instanceof CustodianError) return err;
    if (err instanceof Error && err.name === 'AbortError') return err;
    const code = (err as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : 'unknown';
    const where = table === undefined ? {} : { schema: table.schema, collection: table.name };
    const details = { kind: this.kind, operation, reason, url: this.#displayUrl, ...where };
    let errorCode: ErrorCode;
    let message: string;
    if (reason === '42P01' || reason === '42703' || reason === '3F000') {
      // The table or a column went away since it was introspected: forget it.
      if (table !== undefined) this.#tables.delete(`${table.schema}\u0000${table.name}`);
      errorCode = 'CST_ERR_CONNECTOR_SCHEMA';
      message = 'the collection or a field no longer exists';
    } else if (reason === '42501' || reason.startsWith('28')) {
      errorCode = 'CST_ERR_CONNECTOR_PERMISSION';
      message = `PostgreSQL refused the connector's credentials or privileges for ${operation}`;
    } else if (reason.startsWith('08') || reason.startsWith('57P') || ['53300', '53400', '55P03', '57014', '40001', '40P01', '3D000'].includes(reason) || /^E[A-Z]+$/.test(reason) || reason === 'unknown') {
      // Connection faults, shutdowns, too many connections, lock/statement timeouts, serialization conflicts.
      errorCode = 'CST_ERR_CONNECTOR_UNAVAILABLE';
      message = 'PostgreSQL is not reachable or did not answer in time';
    } else {
      errorCode = 'CST_ERR_CONNECTOR_FAILED';
      message = `PostgreSQL failed the ${operation}`;
    }
    return new CustodianError(errorCode, message, { details, cause: { name: (err as Error).name ?? 'Error', code: reason } });
  }
}
