import SQLite from 'better-sqlite3';
import { CustodianError, type ErrorCode } from '../../core/index.js';
import { quoteSqliteIdent } from '../sqlite/sqlite-schema-connector.js';
import { MAX_BATCH, type CheckedScan, type CollectionTarget, type DataConnector, type DueCondition, type KeyValue, type Row, type RowChange, type ScanPage } from './data-connector.js';
import { KeysetPaging, chunks, groupBySet, keysetPage, keysetStatement, normalize, type KeysetDialect } from './sql-shared.js';

/** Rows per page of {@link SqliteDataConnector.find} (one keyset-paginated statement each). */
export const SQLITE_FETCH_ROWS = 1_000;

/** Options of {@link SqliteDataConnector}. */
export interface SqliteDataConnectorOptions {
  /** Path of an existing database file (never created: erasing in a new empty file would prove nothing). */
  readonly path: string;
  /** How long a statement waits for another process's lock before CST_ERR_CONNECTOR_UNAVAILABLE (default 5,000 ms). */
  readonly busyTimeoutMs?: number;
  /** Rows per page (default {@link SQLITE_FETCH_ROWS}). */
  readonly fetchRows?: number;
}

interface Table {
  readonly name: string;
  readonly from: string;
  /** Columns by exact name. */
  readonly columns: ReadonlySet<string>;
  /** How pages are walked: the rowid, the primary key columns (WITHOUT ROWID), or offsets (views). */
  readonly order: { readonly kind: 'rowid' } | { readonly kind: 'pk'; readonly columns: readonly string[] } | { readonly kind: 'offset' };
}

function distinct(values: readonly KeyValue[]): KeyValue[] {
  return [...new Set(values.filter((v) => typeof v === 'string' || Number.isFinite(v)))];
}

/**
 * `column IN (…) AND column COLLATE BINARY IN (…)`: the first list lets an index on the column (in its own
 * collation) serve the look-up; the second keeps the match exact when the column is declared `COLLATE NOCASE`
 * or `RTRIM`. Column affinity applies to the bound values as usual (`'7'` equals `7` in an INTEGER column).
 */
function predicate(column: string, n: number): { sql: string; repeat: number } {
  const c = quoteSqliteIdent(column);
  const list = `(${new Array<string>(n).fill('?').join(', ')})`;
  return { sql: `${c} in ${list} and ${c} collate binary in ${list}`, repeat: 2 };
}

/**
 * `age <op> julianday(?)`: text ages are read by SQLite's date functions (ISO-8601, `Z` or offsets; no zone =
 * UTC), numbers as seconds since the epoch; anything else (null, blobs, unparsable text) compares as null, so
 * it is never due.
 */
function ageCompare(column: string, op: '<' | '>='): string {
  const c = quoteSqliteIdent(column);
  return `coalesce(julianday(case when typeof(${c}) = 'text' then ${c} end), julianday(case when typeof(${c}) in ('integer', 'real') then ${c} end, 'unixepoch')) ${op} julianday(?)`;
}

/**
 * Keyset pages in SQLite ({@link keysetStatement}): `?` parameters, the key compared with column affinity in
 * the column's own collation, a bound limit. Columns are their names (checked by the connector).
 */
const KEYSET: KeysetDialect<string> = {
  quote: quoteSqliteIdent,
  placeholder: () => '?',
  compareTime: (column, op, instant) => ({ sql: ageCompare(column, op), value: instant }),
  keyValue: (_column, key) => key,
  after: (column, param) => `${quoteSqliteIdent(column)} > ${param}`,
  order: quoteSqliteIdent,
  bindLimit: true,
};

/**
 * A {@link DataConnector} for an SQLite file (better-sqlite3), opened read-write with a busy timeout, so it
 * works beside the application writing the same file (WAL or rollback journal; the journal mode is left as
 * the application set it). Foreign keys are enforced on this connection, as the application declared them.
 *
 * - `find`: one statement per batch of at most {@link MAX_BATCH} distinct values, read in pages of
 *   {@link SQLITE_FETCH_ROWS} rows by keyset on the rowid (or the primary key of a WITHOUT ROWID table); no
 *   statement stays open between pages, so the consumer may delete or update while it reads.
 * - `deleteRows`: one `DELETE … WHERE key IN (…)` per batch; `updateRows`: one transaction (`BEGIN IMMEDIATE`)
 *   per batch, one `UPDATE` per distinct `set`, skipping rows that already hold the new values.
 * Table names follow SQLite's rules (case-insensitive); column names must match exactly as declared.
 */
export class SqliteDataConnector extends KeysetPaging implements DataConnector {
  readonly kind = 'sqlite';
  readonly #db: SQLite.Database;
  readonly #fetchRows: number;
  readonly #tables = new Map<string, Table>();

  constructor(options: SqliteDataConnectorOptions) {
    super();
    this.#fetchRows = Math.max(1, Math.floor(options.fetchRows ?? SQLITE_FETCH_ROWS));
    try {
      this.#db = new SQLite(options.path, { fileMustExist: true, timeout: options.busyTimeoutMs ?? 5_000 });
      this.#db.pragma('foreign_keys = on');
    } catch (err) {
      throw this.#error(err, 'open');
    }
  }

  /** Opens the file at `path` and checks that it is a readable database. */
  static async open(path: string, options: Omit<SqliteDataConnectorOptions, 'path'> = {}): Promise<SqliteDataConnector> {
    const connector = new SqliteDataConnector({ ...options, path });
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
    const table = this.#table(target, 'find');
    this.#column(table, field);
    const wanted = [...new Set([field, ...fields])];
    for (const f of wanted) this.#column(table, f);
    const select = wanted.map(quoteSqliteIdent).join(', ');
    for (const batch of chunks(distinct(values), MAX_BATCH)) {
      const where = predicate(field, batch.length);
      const params: unknown[] = new Array<KeyValue[]>(where.repeat).fill(batch).flat();
      const order = table.order;
      try {
        if (order.kind === 'offset') {
          const stmt = this.#db.prepare(`select ${select} from ${table.from} where ${where.sql} limit ? offset ?`);
          for (let offset = 0; ; offset += this.#fetchRows) {
            options.signal?.throwIfAborted();
            const rows = stmt.all(...params, this.#fetchRows, offset) as Record<string, unknown>[];
            if (rows.length > 0) yield rows.map(normalize);
            if (rows.length < this.#fetchRows) break;
          }
          continue;
        }
        // Keyset pagination: each page is a fresh statement starting after the last key seen.
        const keys = order.kind === 'rowid' ? ['rowid'] : order.columns;
        const keyList = keys.map((k, i) => (k === 'rowid' ? 'rowid' : quoteSqliteIdent(k)) + ` as "__k${i}"`).join(', ');
        const tuple = `(${keys.map((k) => (k === 'rowid' ? 'rowid' : quoteSqliteIdent(k))).join(', ')})`;
        const first = this.#db.prepare(`select ${keyList}, ${select} from ${table.from} where ${where.sql} order by ${tuple.slice(1, -1)} limit ?`);
        const next = this.#db.prepare(
          `select ${keyList}, ${select} from ${table.from} where ${where.sql} and ${tuple} > (${keys.map(() => '?').join(', ')}) order by ${tuple.slice(1, -1)} limit ?`,
        );
        let after: unknown[] | undefined;
        for (;;) {
          options.signal?.throwIfAborted();
          const rows = (after === undefined ? first.all(...params, this.#fetchRows) : next.all(...params, ...after, this.#fetchRows)) as Record<string, unknown>[];
          if (rows.length === 0) break;
          const last = rows[rows.length - 1]!;
          after = keys.map((_, i) => last[`__k${i}`]);
          yield rows.map((r) => {
            const out: Record<string, unknown> = {};
            for (const f of wanted) out[f] = r[f];
            return normalize(out);
          });
          if (rows.length < this.#fetchRows) break;
        }
      } catch (err) {
        throw this.#error(err, 'find', table);
      }
    }
  }

  /** One keyset page (scan and findExpired), in key order: the statement of {@link keysetStatement}. */
  protected async pageByKey(target: CollectionTarget, query: CheckedScan, operation: string, signal: AbortSignal | undefined): Promise<ScanPage> {
    signal?.throwIfAborted();
    const table = this.#table(target, operation);
    const column = (f: string): string => {
      this.#column(table, f);
      return f;
    };
    const statement = keysetStatement(KEYSET, this.kind, table.from, column, query);
    if (statement === undefined) return { rows: [], next: null };
    try {
      const rows = this.#db.prepare(statement.sql).all(...statement.params) as Record<string, unknown>[];
      return keysetPage(this.kind, rows.map(normalize), query.keyField, query.limit);
    } catch (err) {
      throw this.#error(err, operation, table);
    }
  }

  async countExpired(target: CollectionTarget, due: DueCondition, options: { readonly from?: string; readonly signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted();
    const table = this.#table(target, 'countExpired');
    this.#column(table, due.ageField);
    const from = options.from === undefined ? '' : ` and ${ageCompare(due.ageField, '>=')}`;
    try {
      const row = this.#db.prepare(`select count(*) as n from ${table.from} where ${ageCompare(due.ageField, '<')}${from}`).get(due.cutoff, ...(options.from === undefined ? [] : [options.from])) as { n: number };
      return row.n;
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
    const table = this.#table(target, 'delete');
    this.#column(table, keyField);
    if (due !== undefined) this.#column(table, due.ageField);
    let deleted = 0;
    try {
      for (const batch of chunks(distinct(keys), MAX_BATCH)) {
        const where = predicate(keyField, batch.length);
        const params: unknown[] = new Array<KeyValue[]>(where.repeat).fill(batch).flat();
        const sql = `delete from ${table.from} where ${where.sql}${due === undefined ? '' : ` and ${ageCompare(due.ageField, '<')}`}`;
        deleted += this.#db.prepare(sql).run(...params, ...(due === undefined ? [] : [due.cutoff])).changes;
      }
    } catch (err) {
      throw this.#error(err, 'delete', table);
    }
    return deleted;
  }

  async #update(target: CollectionTarget, keyField: string, changes: readonly RowChange[], due: DueCondition | undefined): Promise<number> {
    const table = this.#table(target, 'update');
    this.#column(table, keyField);
    if (due !== undefined) this.#column(table, due.ageField);
    const dueSql = due === undefined ? '' : ` and ${ageCompare(due.ageField, '<')}`;
    const dueParams = due === undefined ? [] : [due.cutoff];
    for (const change of changes) for (const f of Object.keys(change.set)) this.#column(table, f);
    let changed = 0;
    try {
      for (const batch of chunks(changes, MAX_BATCH)) {
        const groups = groupBySet(batch, (k) => (typeof k === 'number' && !Number.isFinite(k) ? undefined : String(k)));
        const run = this.#db.transaction(() => {
          let n = 0;
          for (const { set, keys } of groups) {
            const entries = Object.entries(set);
            // The original key values (numbers stay numbers for INTEGER keys through affinity; text stays text).
            const where = predicate(keyField, keys.length);
            const assignments = entries.map(([f]) => `${quoteSqliteIdent(f)} = ?`).join(', ');
            const same = entries.map(([f]) => `${quoteSqliteIdent(f)} collate binary is ?`).join(' and ');
            const values = entries.map(([, v]) => v);
            n += this.#db.prepare(`update ${table.from} set ${assignments} where ${where.sql} and not (${same})${dueSql}`).run(...values, ...new Array<string[]>(where.repeat).fill(keys).flat(), ...values, ...dueParams).changes;
          }
          return n;
        });
        changed += run.immediate();
      }
    } catch (err) {
      throw this.#error(err, 'update', table);
    }
    return changed;
  }

  async ping(): Promise<void> {
    try {
      this.#db.prepare('select count(*) from sqlite_schema').get();
    } catch (err) {
      throw this.#error(err, 'ping');
    }
  }

  async close(): Promise<void> {
    if (this.#db?.open) this.#db.close();
  }

  #table(target: CollectionTarget, operation: string): Table {
    const cached = this.#tables.get(target.name);
    if (cached !== undefined) return cached;
    let list: { type: string; wr: number }[];
    let info: { name: string; pk: number }[];
    try {
      list = this.#db.prepare("select type, wr from pragma_table_list where schema = 'main' and name = ?").all(target.name) as { type: string; wr: number }[];
      info = this.#db.prepare("select name, pk from pragma_table_info(?, 'main')").all(target.name) as { name: string; pk: number }[];
    } catch (err) {
      throw this.#error(err, operation);
    }
    const kind = list[0];
    if (kind === undefined || info.length === 0 || target.name.toLowerCase().startsWith('sqlite_')) {
      throw new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `no table "${target.name}"`, { details: { kind: this.kind, collection: target.name } });
    }
    const pk = info
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    const table: Table = {
      name: target.name,
      from: `main.${quoteSqliteIdent(target.name)}`,
      columns: new Set(info.map((c) => c.name)),
      order: kind.type === 'table' && kind.wr === 0 ? { kind: 'rowid' } : kind.type === 'table' && pk.length > 0 ? { kind: 'pk', columns: pk } : { kind: 'offset' },
    };
    this.#tables.set(target.name, table);
    return table;
  }

  #column(table: Table, field: string): void {
    if (!table.columns.has(field)) {
      throw new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `no column "${field}" in table "${table.name}"`, { details: { kind: this.kind, collection: table.name, field } });
    }
  }

  /** A driver error as a CustodianError: SQLite's result code only, never its message. */
  #error(err: unknown, operation: string, table?: Table): unknown {
    if (err instanceof CustodianError) return err;
    if (err instanceof Error && err.name === 'AbortError') return err;
    const code = (err as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : 'unknown';
    const details = { kind: this.kind, operation, reason, ...(table === undefined ? {} : { collection: table.name }) };
    let errorCode: ErrorCode;
    let message: string;
    if (reason === 'SQLITE_ERROR' && table !== undefined && /no such (table|column)/.test((err as Error).message ?? '')) {
      this.#tables.delete(table.name);
      errorCode = 'CST_ERR_CONNECTOR_SCHEMA';
      message = 'the collection or a field no longer exists';
    } else if (/^SQLITE_(READONLY|PERM|AUTH)/.test(reason)) {
      errorCode = 'CST_ERR_CONNECTOR_PERMISSION';
      message = `the SQLite file cannot be written (${operation})`;
    } else if (/^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|NOTADB|FULL)/.test(reason) || (err instanceof TypeError && /not open/i.test(err.message))) {
      errorCode = 'CST_ERR_CONNECTOR_UNAVAILABLE';
      message = 'the SQLite file cannot be opened or stayed locked';
    } else {
      errorCode = 'CST_ERR_CONNECTOR_FAILED';
      message = `SQLite failed the ${operation}`;
    }
    return new CustodianError(errorCode, message, { details, cause: { name: (err as Error).name ?? 'Error', code: reason } });
  }
}
