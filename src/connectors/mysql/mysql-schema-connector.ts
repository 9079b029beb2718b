import mysql from 'mysql2/promise';
import { MAX_SAMPLED_CHARS, SAMPLE_WINDOWS, keyWindows, type ColumnInfo, type ColumnKind, type SampleBatch, type SampleOptions, type SchemaConnector, type TableInfo } from '../schema.js';

/** Options of {@link MysqlSchemaConnector}. */
export interface MysqlSchemaConnectorOptions {
  /** A `mysql://user:password@host:port/database` URL. */
  readonly uri: string;
  readonly displayUrl: string;
}

/** Back-quotes a MySQL/MariaDB identifier, doubling embedded back-quotes. */
export function quoteMysqlIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** Maps an information_schema DATA_TYPE to a {@link ColumnKind}. */
export function mysqlColumnKind(dataType: string, columnType: string): ColumnKind {
  const t = dataType.toLowerCase();
  if (t === 'tinyint' && /^tinyint\(1\)/i.test(columnType)) return 'boolean';
  if (/^(tinyint|smallint|mediumint|int|integer|bigint|year)$/.test(t)) return 'integer';
  if (t === 'decimal' || t === 'numeric') return 'decimal';
  if (t === 'float' || t === 'double' || t === 'real') return 'float';
  if (t === 'bit' || t === 'bool' || t === 'boolean') return 'boolean';
  if (/^(char|varchar|tinytext|text|mediumtext|longtext|enum|set)$/.test(t)) return 'text';
  if (t === 'date') return 'date';
  if (t === 'datetime' || t === 'timestamp') return 'timestamp';
  if (t === 'time') return 'time';
  if (/binary|blob/.test(t)) return 'binary';
  if (t === 'json') return 'json';
  if (t === 'inet4' || t === 'inet6') return 'network';
  if (t === 'uuid') return 'uuid';
  return 'other';
}

interface ColumnRow {
  TABLE_NAME: string;
  COLUMN_NAME: string;
  DATA_TYPE: string;
  COLUMN_TYPE: string;
  IS_NULLABLE: string;
}
interface IndexRow {
  TABLE_NAME: string;
  COLUMN_NAME: string;
  INDEX_NAME: string;
  NON_UNIQUE: number | string;
  SEQ_IN_INDEX: number | string;
  COLS: number | string;
}
interface TableRow {
  TABLE_NAME: string;
  TABLE_ROWS: number | string | null;
}

/**
 * MySQL / MariaDB introspection (information_schema) and sampling. A table with a single integer primary
 * key is sampled in {@link SAMPLE_WINDOWS} windows spread over its key range (`WHERE pk >= ? ORDER BY pk
 * LIMIT k`, each an index range read); any other table with a plain `LIMIT n`. Either way at most n rows.
 */
export class MysqlSchemaConnector implements SchemaConnector {
  readonly engine = 'mysql' as const;
  readonly displayUrl: string;
  readonly #uri: string;
  #conn: Promise<mysql.Connection> | undefined;

  constructor(options: MysqlSchemaConnectorOptions) {
    this.displayUrl = options.displayUrl;
    this.#uri = options.uri;
  }

  /** Opens the connection (idempotent). */
  async connect(): Promise<mysql.Connection> {
    this.#conn ??= (async () => {
      const url = new URL(this.#uri);
      const conn = await mysql.createConnection({
        host: url.hostname,
        port: url.port === '' ? 3306 : Number(url.port),
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
        database: decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined,
        connectTimeout: 10_000,
        dateStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
      });
      conn.on('error', () => undefined);
      // A scan never writes.
      await conn.query('set session transaction read only');
      return conn;
    })();
    return this.#conn;
  }

  async listTables(options: { schema?: string | undefined; signal?: AbortSignal | undefined } = {}): Promise<readonly TableInfo[]> {
    const conn = await this.connect();
    options.signal?.throwIfAborted();
    const [[current]] = await conn.query<mysql.RowDataPacket[]>('select database() as db');
    const schema = options.schema ?? (current?.db as string | null) ?? '';
    if (schema === '') return [];
    const [cols] = await conn.query<(ColumnRow & mysql.RowDataPacket)[]>(
      `select c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE
         from information_schema.COLUMNS c
         join information_schema.TABLES t on t.TABLE_SCHEMA = c.TABLE_SCHEMA and t.TABLE_NAME = c.TABLE_NAME
        where c.TABLE_SCHEMA = ? and t.TABLE_TYPE = 'BASE TABLE'
        order by c.TABLE_NAME, c.ORDINAL_POSITION`,
      [schema],
    );
    const [idx] = await conn.query<(IndexRow & mysql.RowDataPacket)[]>(
      `select s.TABLE_NAME, s.COLUMN_NAME, s.INDEX_NAME, s.NON_UNIQUE, s.SEQ_IN_INDEX,
              (select count(*) from information_schema.STATISTICS s2
                where s2.TABLE_SCHEMA = s.TABLE_SCHEMA and s2.TABLE_NAME = s.TABLE_NAME and s2.INDEX_NAME = s.INDEX_NAME) as COLS
         from information_schema.STATISTICS s where s.TABLE_SCHEMA = ?`,
      [schema],
    );
    const [est] = await conn.query<(TableRow & mysql.RowDataPacket)[]>(`select TABLE_NAME, TABLE_ROWS from information_schema.TABLES where TABLE_SCHEMA = ? and TABLE_TYPE = 'BASE TABLE'`, [schema]);
    const flags = new Map<string, { pk: boolean; indexed: boolean; unique: boolean }>();
    for (const r of idx) {
      const k = `${r.TABLE_NAME}\u0000${r.COLUMN_NAME}`;
      const f = flags.get(k) ?? { pk: false, indexed: false, unique: false };
      if (r.INDEX_NAME === 'PRIMARY') f.pk = true;
      if (Number(r.SEQ_IN_INDEX) === 1) f.indexed = true;
      if (Number(r.NON_UNIQUE) === 0 && Number(r.COLS) === 1) f.unique = true;
      flags.set(k, f);
    }
    const estimates = new Map(est.map((r) => [r.TABLE_NAME, r.TABLE_ROWS === null ? null : Number(r.TABLE_ROWS)]));
    const tables = new Map<string, ColumnInfo[]>();
    for (const r of cols) {
      const f = flags.get(`${r.TABLE_NAME}\u0000${r.COLUMN_NAME}`);
      const list = tables.get(r.TABLE_NAME) ?? [];
      list.push({
        name: r.COLUMN_NAME,
        dataType: r.COLUMN_TYPE.toLowerCase(),
        kind: mysqlColumnKind(r.DATA_TYPE, r.COLUMN_TYPE),
        nullable: r.IS_NULLABLE === 'YES',
        primaryKey: f?.pk ?? false,
        indexed: f?.indexed ?? false,
        unique: f?.unique ?? false,
      });
      tables.set(r.TABLE_NAME, list);
    }
    return [...tables.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, columns]) => ({ schema, name, columns, estimatedRows: estimates.get(name) ?? null }));
  }

  async *sample(table: TableInfo, columns: readonly string[], options: SampleOptions): AsyncIterable<SampleBatch> {
    const conn = await this.connect();
    options.signal?.throwIfAborted();
    if (columns.length === 0 || options.limit <= 0) return;
    const limit = Math.floor(options.limit);
    const list = columns.map((c) => `left(cast(${quoteMysqlIdent(c)} as char), ${MAX_SAMPLED_CHARS})`).join(', ');
    const from = `${quoteMysqlIdent(table.schema)}.${quoteMysqlIdent(table.name)}`;
    const run = async (sql: string, params: unknown[] = []): Promise<SampleBatch> => {
      const [rows] = await conn.query<mysql.RowDataPacket[][]>({ sql, rowsAsArray: true }, params);
      return rows as unknown as SampleBatch;
    };
    const pks = table.columns.filter((c) => c.primaryKey);
    const pk = pks.length === 1 && pks[0]!.kind === 'integer' ? pks[0]! : undefined;
    if (pk !== undefined && (table.estimatedRows ?? 0) > limit * 2) {
      const key = quoteMysqlIdent(pk.name);
      const [[range]] = await conn.query<mysql.RowDataPacket[]>(`select min(${key}) as lo, max(${key}) as hi from ${from}`);
      const lo = Number(range?.lo);
      const hi = Number(range?.hi);
      if (Number.isSafeInteger(lo) && Number.isSafeInteger(hi) && hi - lo + 1 > limit * 2) {
        const per = Math.ceil(limit / SAMPLE_WINDOWS);
        let taken = 0;
        for (const start of keyWindows(lo, hi, SAMPLE_WINDOWS)) {
          options.signal?.throwIfAborted();
          const rows = await run(`select ${list} from ${from} where ${key} >= ? order by ${key} limit ${Math.min(per, limit - taken)}`, [start]);
          taken += rows.length;
          yield rows;
          if (taken >= limit) break;
        }
        return;
      }
    }
    yield await run(`select ${list} from ${from} limit ${limit}`);
  }

  async close(): Promise<void> {
    if (this.#conn === undefined) return;
    const conn = await this.#conn.catch(() => undefined);
    await conn?.end().catch(() => undefined);
  }
}
