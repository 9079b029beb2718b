import pg from 'pg';
import { MAX_SAMPLED_CHARS, type ColumnInfo, type ColumnKind, type SampleBatch, type SampleOptions, type SchemaConnector, type TableInfo } from '../schema.js';

/** Options of {@link PostgresSchemaConnector}. */
export interface PostgresSchemaConnectorOptions {
  readonly connectionString: string;
  readonly displayUrl: string;
}

/** Double-quotes a PostgreSQL identifier, doubling embedded quotes. */
export function quotePostgresIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Maps an information_schema data_type / udt_name to a {@link ColumnKind}. */
export function postgresColumnKind(dataType: string, udt: string): ColumnKind {
  const t = dataType.toLowerCase();
  if (t === 'array' || t === 'user-defined') return udt === 'citext' ? 'text' : 'other';
  if (/char|text|name/.test(t)) return 'text';
  if (/^(smallint|integer|bigint)$/.test(t)) return 'integer';
  if (t === 'numeric') return 'decimal';
  if (/real|double/.test(t)) return 'float';
  if (t === 'boolean') return 'boolean';
  if (t === 'date') return 'date';
  if (t.startsWith('timestamp')) return 'timestamp';
  if (t.startsWith('time') || t === 'interval') return 'time';
  if (t === 'bytea') return 'binary';
  if (t === 'json' || t === 'jsonb' || t === 'xml') return 'json';
  if (t === 'inet' || t === 'cidr' || t === 'macaddr' || t === 'macaddr8') return 'network';
  if (t === 'uuid') return 'uuid';
  return 'other';
}

/**
 * PostgreSQL introspection (information_schema + pg_index statistics) and sampling with
 * `TABLESAMPLE SYSTEM (p) LIMIT n`, where p is chosen from the planner's row estimate so that about twice
 * the limit is drawn; small or never-analysed tables are read with a plain `LIMIT n`. SYSTEM sampling reads
 * only the chosen pages, so the cost is O(n) rows whatever the table size.
 */
export class PostgresSchemaConnector implements SchemaConnector {
  readonly engine = 'postgres' as const;
  readonly displayUrl: string;
  readonly #client: pg.Client;
  #connected: Promise<void> | undefined;

  constructor(options: PostgresSchemaConnectorOptions) {
    this.displayUrl = options.displayUrl;
    this.#client = new pg.Client({ connectionString: options.connectionString, application_name: 'custodian-scan', connectionTimeoutMillis: 10_000 });
    // A dropped connection must not crash the process; the next query reports it.
    this.#client.on('error', () => undefined);
  }

  /** Opens the connection (idempotent). */
  async connect(): Promise<void> {
    this.#connected ??= this.#client.connect().then(async () => {
      // Read-only and bounded: a scan never writes and never waits forever on a lock.
      await this.#client.query("set session characteristics as transaction read only; set statement_timeout = '60s'; set lock_timeout = '5s'");
    });
    return this.#connected;
  }

  async listTables(options: { schema?: string | undefined; signal?: AbortSignal | undefined } = {}): Promise<readonly TableInfo[]> {
    await this.connect();
    options.signal?.throwIfAborted();
    const schema = options.schema ?? 'public';
    const cols = await this.#client.query<{ table_name: string; column_name: string; data_type: string; udt_name: string; is_nullable: string }>(
      `select c.table_name, c.column_name, c.data_type, c.udt_name, c.is_nullable
         from information_schema.columns c
         join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
        where c.table_schema = $1 and t.table_type = 'BASE TABLE'
        order by c.table_name, c.ordinal_position`,
      [schema],
    );
    const idx = await this.#client.query<{ table_name: string; column_name: string; pk: boolean; uq: boolean; leading: boolean }>(
      `select cl.relname as table_name, a.attname as column_name,
              bool_or(i.indisprimary) as pk,
              bool_or(i.indisunique and i.indnatts = 1) as uq,
              bool_or(i.indkey[0] = a.attnum) as leading
         from pg_index i
         join pg_class cl on cl.oid = i.indrelid
         join pg_namespace n on n.oid = cl.relnamespace
         join pg_attribute a on a.attrelid = cl.oid and a.attnum = any(i.indkey)
        where n.nspname = $1
        group by cl.relname, a.attname`,
      [schema],
    );
    const est = await this.#client.query<{ relname: string; reltuples: number }>(
      `select c.relname, c.reltuples::float8 as reltuples from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relkind in ('r', 'p')`,
      [schema],
    );
    const index = new Map(idx.rows.map((r) => [`${r.table_name}\u0000${r.column_name}`, r]));
    const estimates = new Map(est.rows.map((r) => [r.relname, r.reltuples]));
    const tables = new Map<string, ColumnInfo[]>();
    for (const r of cols.rows) {
      const i = index.get(`${r.table_name}\u0000${r.column_name}`);
      const list = tables.get(r.table_name) ?? [];
      list.push({
        name: r.column_name,
        dataType: r.data_type === 'USER-DEFINED' || r.data_type === 'ARRAY' ? r.udt_name : r.data_type,
        kind: postgresColumnKind(r.data_type, r.udt_name),
        nullable: r.is_nullable === 'YES',
        primaryKey: i?.pk ?? false,
        indexed: i?.leading ?? false,
        unique: (i?.uq ?? false) || (i?.pk ?? false),
      });
      tables.set(r.table_name, list);
    }
    return [...tables.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, columns]) => {
        const e = estimates.get(name);
        // reltuples is -1 (PostgreSQL 14+) or 0 before the first ANALYZE: no estimate.
        return { schema, name, columns, estimatedRows: e !== undefined && e > 0 ? Math.round(e) : null };
      });
  }

  async *sample(table: TableInfo, columns: readonly string[], options: SampleOptions): AsyncIterable<SampleBatch> {
    await this.connect();
    options.signal?.throwIfAborted();
    if (columns.length === 0 || options.limit <= 0) return;
    const limit = Math.floor(options.limit);
    const list = columns.map((c) => `left(${quotePostgresIdent(c)}::text, ${MAX_SAMPLED_CHARS})`).join(', ');
    const from = `${quotePostgresIdent(table.schema)}.${quotePostgresIdent(table.name)}`;
    const est = table.estimatedRows;
    const run = async (sql: string): Promise<SampleBatch> => (await this.#client.query<(string | null)[]>({ text: sql, rowMode: 'array' })).rows;
    if (est !== null && est > limit * 4) {
      // Twice the limit in expectation, so that an unlucky page draw still fills the sample.
      const percent = Math.min(100, (200 * limit) / est);
      const rows = await run(`select ${list} from ${from} tablesample system (${percent.toFixed(6)}) limit ${limit}`);
      options.signal?.throwIfAborted();
      if (rows.length >= Math.min(limit, est) / 2) {
        yield rows;
        return;
      }
    }
    yield await run(`select ${list} from ${from} limit ${limit}`);
  }

  async close(): Promise<void> {
    if (this.#connected === undefined) return;
    await this.#client.end().catch(() => undefined);
  }
}
