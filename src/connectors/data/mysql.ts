import type { Connection as CoreConnection } from 'mysql2';
import mysql from 'mysql2/promise';
import { CustodianError, type ErrorCode } from '../../core/index.js';
import { redactConnectionUrl } from '../open-schema-connector.js';
import { quoteMysqlIdent } from '../mysql/mysql-schema-connector.js';
import { MAX_BATCH, type CheckedScan, type CollectionTarget, type DataConnector, type DueCondition, type KeyValue, type Row, type RowChange, type ScanPage } from './data-connector.js';
import { KeysetPaging, chunks, groupBySet, keysetPage, keysetStatement, normalize, type KeysetDialect } from './sql-shared.js';

/** Rows {@link MysqlDataConnector.find} puts in one yielded batch (read from a back-pressured row stream). */
export const MYSQL_FETCH_ROWS = 1_000;

/** Options of {@link MysqlDataConnector}. */
export interface MysqlDataConnectorOptions {
  /** A `mysql://` or `mariadb://` URL naming the database. */
  readonly url: string;
  /** Connections in the pool (default 8). */
  readonly poolSize?: number;
  /** Rows per yielded batch (default {@link MYSQL_FETCH_ROWS}). */
  readonly fetchRows?: number;
}

type Comparison = 'text' | 'integer' | 'numeric' | 'other';

interface Column {
  readonly name: string;
  readonly comparison: Comparison;
  /** information_schema DATA_TYPE, lower case (`datetime`, `varchar`…). */
  readonly type: string;
}

interface Table {
  readonly schema: string;
  readonly name: string;
  readonly from: string;
  readonly columns: ReadonlyMap<string, Column>;
}

const INTEGER = /^-?\d{1,20}$/;
const NUMERIC = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;
// Batches are padded to one of these sizes (repeating a value) so that few prepared statements exist per shape.
const SHAPES = [1, 8, 32, 128, MAX_BATCH];

function comparable(comparison: Comparison, values: readonly KeyValue[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    if (typeof v === 'number' && !Number.isFinite(v)) continue;
    const s = String(v);
    // MySQL would convert '7abc' to 7 when compared with a number column: values that are not numbers can match
    // nothing there, so they are dropped rather than compared.
    if (comparison === 'integer' && !INTEGER.test(s)) continue;
    if (comparison === 'numeric' && !NUMERIC.test(s)) continue;
    out.add(s);
  }
  return [...out];
}

function pad(batch: readonly string[]): string[] {
  const size = SHAPES.find((s) => s >= batch.length) ?? batch.length;
  const out = [...batch];
  while (out.length < size) out.push(batch[0]!);
  return out;
}

/** Exact text: the bytes as utf8mb4, compared as a binary string (no case, accent or trailing-space folding). */
const exact = (expr: string): string => `cast(convert(${expr} using utf8mb4) as binary)`;

/**
 * `WHERE` text matching `column` against `n` bound values exactly. Text columns use the column's own
 * collation first (so its index serves the look-up; that match is a superset of the exact one) and then
 * compare bytes, because default MySQL collations fold case, accents and trailing spaces.
 */
function predicate(column: Column, n: number): { sql: string; repeat: number } {
  const c = quoteMysqlIdent(column.name);
  const list = `(${new Array<string>(n).fill('?').join(', ')})`;
  if (column.comparison === 'text') return { sql: `${c} in ${list} and ${exact(c)} in ${list}`, repeat: 2 };
  if (column.comparison === 'other') return { sql: `${exact(c)} in ${list}`, repeat: 1 };
  return { sql: `${c} in ${list}`, repeat: 1 };
}

/**
 * `age <op> ?` and the bound value for a UTC instant, by the age column's type: DATE/DATETIME/TIMESTAMP get
 * `YYYY-MM-DD HH:MM:SS.fff` in UTC (TIMESTAMP columns are read in the session time zone, which should be
 * UTC); numbers are seconds since the epoch; text is compared with ISO-8601 UTC text.
 */
function ageCompare(column: Column, op: '<' | '>=', instant: string): { sql: string; value: string | number } {
  const c = quoteMysqlIdent(column.name);
  const ms = Date.parse(instant);
  if (Number.isNaN(ms)) throw new CustodianError('CST_ERR_VALIDATION', 'the retention cutoff is not an instant', { details: { issues: [{ path: 'cutoff', message: 'invalid' }] } });
  if (column.comparison === 'integer' || column.comparison === 'numeric') return { sql: `${c} ${op} ?`, value: ms / 1000 };
  if (column.comparison === 'text') return { sql: `${c} ${op} ?`, value: new Date(ms).toISOString() };
  return { sql: `${c} ${op} ?`, value: new Date(ms).toISOString().replace('T', ' ').replace('Z', '') };
}

/**
 * Keyset pages in MySQL / MariaDB ({@link keysetStatement}): `?` parameters, the key compared in the column's
 * own collation (the order its index keeps), and the checked page size written as the limit (MySQL 8 refuses a
 * bound LIMIT in prepared statements).
 */
const KEYSET: KeysetDialect<Column> = {
  quote: (column) => quoteMysqlIdent(column.name),
  placeholder: () => '?',
  compareTime: (column, op, instant) => ageCompare(column, op, instant),
  keyValue: (column, key) => comparable(column.comparison, [key])[0],
  after: (column, param) => `${quoteMysqlIdent(column.name)} > ${param}`,
  order: (column) => quoteMysqlIdent(column.name),
  bindLimit: false,
};

/**
 * A {@link DataConnector} for MySQL and MariaDB over a `mysql2` pool, with server-side prepared statements
 * (`execute`), so values are always bound, never escaped into text.
 *
 * - Collections are tables of the URL's database (or `options.schema`), introspected once from
 *   information_schema and cached; identifiers are back-quoted (embedded back-quotes doubled). Names match
 *   exactly as information_schema reports them.
 * - `find` runs one statement per batch of at most {@link MAX_BATCH} distinct values and reads the rows as a
 *   stream with back-pressure (the socket is paused while the consumer holds a batch), yielding
 *   {@link MYSQL_FETCH_ROWS} rows at a time: memory is O(batch) whatever the number of matches.
 * - `deleteRows`: one `DELETE … WHERE key IN (…)` per batch; `updateRows`: one transaction per batch of
 *   changes, one `UPDATE` per distinct `set`, skipping rows already holding the new values.
 */
export class MysqlDataConnector extends KeysetPaging implements DataConnector {
  readonly kind = 'mysql';
  readonly #pool: mysql.Pool;
  readonly #fetchRows: number;
  readonly #displayUrl: string;
  readonly #database: string;
  readonly #tables = new Map<string, Promise<Table>>();
  #closed = false;

  constructor(options: MysqlDataConnectorOptions) {
    super();
    this.#displayUrl = redactConnectionUrl(options.url);
    this.#fetchRows = Math.max(1, Math.floor(options.fetchRows ?? MYSQL_FETCH_ROWS));
    const url = new URL(options.url);
    this.#database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    this.#pool = mysql.createPool({
      host: url.hostname,
      port: url.port === '' ? 3306 : Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: this.#database,
      connectionLimit: options.poolSize ?? 8,
      connectTimeout: 10_000,
      charset: 'utf8mb4',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      // LRU of prepared statements per connection (each closed when evicted), far below max_prepared_stmt_count.
      maxPreparedStatements: 64,
    });
  }

  /** Opens a pooled connector for `url` and checks that it answers. */
  static async open(url: string, options: Omit<MysqlDataConnectorOptions, 'url'> = {}): Promise<MysqlDataConnector> {
    const connector = new MysqlDataConnector({ ...options, url });
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
    const select = [...new Set([field, ...fields])].map((f) => quoteMysqlIdent(this.#column(table, f).name)).join(', ');
    for (const raw of chunks(comparable(key.comparison, values), MAX_BATCH)) {
      options.signal?.throwIfAborted();
      const batch = pad(raw);
      const where = predicate(key, batch.length);
      const params = new Array<string[]>(where.repeat).fill(batch).flat();
      const conn = await this.#connect('find', table);
      let finished = false;
      try {
        // The callback-style connection under the promise wrapper: only it exposes row streams.
        const core = (conn as unknown as { connection: CoreConnection }).connection;
        const stream = core.execute(`select ${select} from ${table.from} where ${where.sql}`, params).stream({ highWaterMark: this.#fetchRows });
        let rows: Row[] = [];
        for await (const row of stream as AsyncIterable<Record<string, unknown>>) {
          rows.push(normalize(row));
          if (rows.length >= this.#fetchRows) {
            options.signal?.throwIfAborted();
            yield rows;
            rows = [];
          }
        }
        if (rows.length > 0) yield rows;
        finished = true;
      } catch (err) {
        throw this.#error(err, 'find', table);
      } finally {
        // A result set left half-read makes the connection unusable: destroy it rather than return it.
        if (finished) conn.release();
        else conn.destroy();
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
      const [rows] = await this.#pool.execute<mysql.RowDataPacket[]>(statement.sql, statement.params as (string | number)[]);
      return keysetPage(
        this.kind,
        rows.map((r) => normalize({ ...r })),
        query.keyField,
        query.limit,
      );
    } catch (err) {
      throw this.#error(err, operation, table);
    }
  }

  async countExpired(target: CollectionTarget, due: DueCondition, options: { readonly from?: string; readonly signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted();
    const table = await this.#table(target, 'countExpired');
    const column = this.#column(table, due.ageField);
    const before = ageCompare(column, '<', due.cutoff);
    const from = options.from === undefined ? undefined : ageCompare(column, '>=', options.from);
    try {
      const [rows] = await this.#pool.execute<mysql.RowDataPacket[]>(
        `select count(*) as n from ${table.from} where ${before.sql}${from === undefined ? '' : ` and ${from.sql}`}`,
        from === undefined ? [before.value] : [before.value, from.value],
      );
      return Number(rows[0]?.n ?? 0);
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
    const age = due === undefined ? undefined : ageCompare(this.#column(table, due.ageField), '<', due.cutoff);
    let deleted = 0;
    for (const raw of chunks(comparable(key.comparison, keys), MAX_BATCH)) {
      const batch = pad(raw);
      const where = predicate(key, batch.length);
      try {
        const params: (string | number)[] = new Array<string[]>(where.repeat).fill(batch).flat();
        if (age !== undefined) params.push(age.value);
        const [res] = await this.#pool.execute<mysql.ResultSetHeader>(`delete from ${table.from} where ${where.sql}${age === undefined ? '' : ` and ${age.sql}`}`, params);
        deleted += res.affectedRows;
      } catch (err) {
        throw this.#error(err, 'delete', table);
      }
    }
    return deleted;
  }

  async #update(target: CollectionTarget, keyField: string, changes: readonly RowChange[], due: DueCondition | undefined): Promise<number> {
    const table = await this.#table(target, 'update');
    const key = this.#column(table, keyField);
    const age = due === undefined ? undefined : ageCompare(this.#column(table, due.ageField), '<', due.cutoff);
    for (const change of changes) for (const f of Object.keys(change.set)) this.#column(table, f);
    let changed = 0;
    for (const batch of chunks(changes, MAX_BATCH)) {
      const groups = groupBySet(batch, (k) => comparable(key.comparison, [k])[0]);
      if (groups.length === 0) continue;
      const conn = await this.#connect('update', table);
      let broken = false;
      try {
        await conn.beginTransaction();
        for (const { set, keys } of groups) {
          const entries = Object.entries(set);
          const padded = pad(keys);
          const where = predicate(key, padded.length);
          const assignments = entries.map(([f]) => `${quoteMysqlIdent(f)} = ?`).join(', ');
          // Null-safe and exact (bytes for text): only rows whose value would change are touched and counted.
          const same = entries
            .map(([f]) => {
              const c = quoteMysqlIdent(f);
              return this.#column(table, f).comparison === 'text' || this.#column(table, f).comparison === 'other' ? `${exact(c)} <=> ${exact('?')}` : `${c} <=> ?`;
            })
            .join(' and ');
          const values = entries.map(([, v]) => (v === null ? null : String(v)));
          const [res] = await conn.execute<mysql.ResultSetHeader>(`update ${table.from} set ${assignments} where ${where.sql} and not (${same})${age === undefined ? '' : ` and ${age.sql}`}`, [
            ...values,
            ...new Array<string[]>(where.repeat).fill(padded).flat(),
            ...values,
            ...(age === undefined ? [] : [age.value]),
          ]);
          changed += res.affectedRows;
        }
        await conn.commit();
      } catch (err) {
        await conn.rollback().catch(() => (broken = true));
        throw this.#error(err, 'update', table);
      } finally {
        if (broken) conn.destroy();
        else conn.release();
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

  async #connect(operation: string, table: Table): Promise<mysql.PoolConnection> {
    try {
      return await this.#pool.getConnection();
    } catch (err) {
      throw this.#error(err, operation, table);
    }
  }

  async #table(target: CollectionTarget, operation: string): Promise<Table> {
    const schema = target.options.schema ?? this.#database;
    const cacheKey = `${schema}\u0000${target.name}`;
    let table = this.#tables.get(cacheKey);
    if (table === undefined) {
      table = this.#introspect(schema, target.name, operation);
      this.#tables.set(cacheKey, table);
      table.catch(() => this.#tables.delete(cacheKey));
    }
    return table;
  }

  async #introspect(schema: string, name: string, operation: string): Promise<Table> {
    let rows: { TABLE_NAME: string; COLUMN_NAME: string; DATA_TYPE: string }[];
    try {
      [rows] = await this.#pool.query<(mysql.RowDataPacket & { TABLE_NAME: string; COLUMN_NAME: string; DATA_TYPE: string })[]>(
        'select TABLE_NAME, COLUMN_NAME, DATA_TYPE from information_schema.COLUMNS where TABLE_SCHEMA = ? and TABLE_NAME = ? order by ORDINAL_POSITION',
        [schema, name],
      );
    } catch (err) {
      throw this.#error(err, operation);
    }
    // information_schema compares names without case; table names are case-sensitive on Linux: keep exact ones.
    rows = rows.filter((r) => r.TABLE_NAME === name);
    if (rows.length === 0) {
      throw new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `no table \`${name}\` in database \`${schema}\``, { details: { kind: this.kind, schema, collection: name } });
    }
    const columns = new Map<string, Column>();
    for (const r of rows) {
      const t = r.DATA_TYPE.toLowerCase();
      const comparison: Comparison = /^(char|varchar|tinytext|text|mediumtext|longtext|enum|set)$/.test(t)
        ? 'text'
        : /^(tinyint|smallint|mediumint|int|integer|bigint|year)$/.test(t)
          ? 'integer'
          : /^(decimal|numeric|float|double|real)$/.test(t)
            ? 'numeric'
            : 'other';
      columns.set(r.COLUMN_NAME, { name: r.COLUMN_NAME, comparison, type: t });
    }
    return { schema, name, from: `${quoteMysqlIdent(schema)}.${quoteMysqlIdent(name)}`, columns };
  }

  #column(table: Table, field: string): Column {
    const column = table.columns.get(field);
    if (column === undefined) {
      throw new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `no column \`${field}\` in table \`${table.name}\``, { details: { kind: this.kind, schema: table.schema, collection: table.name, field } });
    }
    return column;
  }

  /** A driver error as a CustodianError: the driver's code only, never its message (it may quote values). */
  #error(err: unknown, operation: string, table?: Table): unknown {
    if (err instanceof CustodianError) return err;
    if (err instanceof Error && err.name === 'AbortError') return err;
    const code = (err as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : 'unknown';
    const where = table === undefined ? {} : { schema: table.schema, collection: table.name };
    const details = { kind: this.kind, operation, reason, url: this.#displayUrl, ...where };
    let errorCode: ErrorCode;
    let message: string;
    if (reason === 'ER_NO_SUCH_TABLE' || reason === 'ER_BAD_FIELD_ERROR') {
      if (table !== undefined) this.#tables.delete(`${table.schema}\u0000${table.name}`);
      errorCode = 'CST_ERR_CONNECTOR_SCHEMA';
      message = 'the collection or a field no longer exists';
    } else if (/ACCESS_DENIED|DENIED_ERROR|ER_SPECIFIC_ACCESS|ER_OPTION_PREVENTS_STATEMENT|ER_CANT_EXECUTE_IN_READ_ONLY/.test(reason)) {
      errorCode = 'CST_ERR_CONNECTOR_PERMISSION';
      message = `MySQL refused the connector's credentials or privileges for ${operation}`;
    } else if (
      /^E[A-Z]+$/.test(reason) ||
      ['PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CON_COUNT_ERROR', 'ER_TOO_MANY_USER_CONNECTIONS', 'ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK', 'ER_SERVER_SHUTDOWN', 'ER_BAD_DB_ERROR', 'ER_QUERY_TIMEOUT', 'unknown'].includes(reason)
    ) {
      errorCode = 'CST_ERR_CONNECTOR_UNAVAILABLE';
      message = 'MySQL is not reachable or did not answer in time';
    } else {
      errorCode = 'CST_ERR_CONNECTOR_FAILED';
      message = `MySQL failed the ${operation}`;
    }
    return new CustodianError(errorCode, message, { details, cause: { name: (err as Error).name ?? 'Error', code: reason } });
  }
}
