import SQLite from 'better-sqlite3';
import { MAX_SAMPLED_CHARS, SAMPLE_WINDOWS, keyWindows, type ColumnInfo, type ColumnKind, type SampleBatch, type SampleOptions, type SchemaConnector, type TableInfo } from '../schema.js';

/** Options of {@link SqliteSchemaConnector}. */
export interface SqliteSchemaConnectorOptions {
  /** Path of an existing database file. */
  readonly path: string;
  readonly displayUrl: string;
}

/** Double-quotes an SQLite identifier, doubling embedded quotes. */
export function quoteSqliteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Maps a declared SQLite column type to a {@link ColumnKind} by the affinity rules (SQLite §3.1) and common names. */
export function sqliteColumnKind(declared: string): ColumnKind {
  const t = declared.toUpperCase();
  if (t === '') return 'other';
  if (/BOOL/.test(t)) return 'boolean';
  if (/^DATE$/.test(t)) return 'date';
  if (/DATETIME|TIMESTAMP/.test(t)) return 'timestamp';
  if (/^TIME$/.test(t)) return 'time';
  if (/JSON/.test(t)) return 'json';
  if (/UUID/.test(t)) return 'uuid';
  if (/INT/.test(t)) return 'integer';
  if (/CHAR|CLOB|TEXT/.test(t)) return 'text';
  if (/BLOB/.test(t)) return 'binary';
  if (/REAL|FLOA|DOUB/.test(t)) return 'float';
  if (/DEC|NUMERIC/.test(t)) return 'decimal';
  return 'other';
}

interface PragmaColumn {
  name: string;
  type: string;
  notnull: number;
  pk: number;
}

/**
 * SQLite introspection (`pragma table_list`, `table_info`, `index_list`, `index_info`) and sampling. A rowid
 * table is sampled in {@link SAMPLE_WINDOWS} rowid windows spread over [min(rowid), max(rowid)] (each a
 * B-tree seek, O(log n + k)); a `WITHOUT ROWID` table with a plain `LIMIT n`. The file is opened read-only.
 */
export class SqliteSchemaConnector implements SchemaConnector {
  readonly engine = 'sqlite' as const;
  readonly displayUrl: string;
  readonly #path: string;
  #db: SQLite.Database | undefined;
  readonly #withoutRowid = new Set<string>();

  constructor(options: SqliteSchemaConnectorOptions) {
    this.displayUrl = options.displayUrl;
    this.#path = options.path;
  }

  /** Opens the file read-only (idempotent); a missing file is an error, never a new empty database. */
  connect(): SQLite.Database {
    this.#db ??= new SQLite(this.#path, { readonly: true, fileMustExist: true, timeout: 5000 });
    return this.#db;
  }

  async listTables(options: { schema?: string | undefined; signal?: AbortSignal | undefined } = {}): Promise<readonly TableInfo[]> {
    const db = this.connect();
    options.signal?.throwIfAborted();
    const schema = options.schema ?? 'main';
    const q = quoteSqliteIdent(schema);
    const list = db.prepare(`pragma ${q}.table_list`).all() as { name: string; type: string; wr: number }[];
    const out: TableInfo[] = [];
    for (const t of list.filter((r) => r.type === 'table' && !r.name.startsWith('sqlite_')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (t.wr) this.#withoutRowid.add(`${schema}.${t.name}`);
      const cols = db.prepare(`pragma ${q}.table_info(${quoteSqliteIdent(t.name)})`).all() as PragmaColumn[];
      const indexed = new Set<string>();
      const unique = new Set<string>();
      const indexes = db.prepare(`pragma ${q}.index_list(${quoteSqliteIdent(t.name)})`).all() as { name: string; unique: number }[];
      for (const ix of indexes) {
        const parts = db.prepare(`pragma ${q}.index_info(${quoteSqliteIdent(ix.name)})`).all() as { seqno: number; name: string | null }[];
        const lead = parts.find((p) => p.seqno === 0)?.name;
        if (lead != null) indexed.add(lead);
        if (ix.unique && parts.length === 1 && lead != null) unique.add(lead);
      }
      const pkCount = cols.filter((c) => c.pk > 0).length;
      const columns: ColumnInfo[] = cols.map((c) => ({
        name: c.name,
        dataType: c.type.toLowerCase(),
        kind: sqliteColumnKind(c.type),
        nullable: c.notnull === 0 && c.pk === 0,
        primaryKey: c.pk > 0,
        // An INTEGER PRIMARY KEY is the rowid itself: indexed without an index of its own.
        indexed: indexed.has(c.name) || c.pk === 1,
        unique: unique.has(c.name) || (c.pk > 0 && pkCount === 1),
      }));
      let estimatedRows: number | null = null;
      if (!t.wr) {
        const r = db.prepare(`select min(rowid) as lo, max(rowid) as hi from ${q}.${quoteSqliteIdent(t.name)}`).get() as { lo: number | null; hi: number | null };
        estimatedRows = r.lo === null || r.hi === null ? 0 : r.hi - r.lo + 1;
      }
      out.push({ schema, name: t.name, columns, estimatedRows });
    }
    return out;
  }

  async *sample(table: TableInfo, columns: readonly string[], options: SampleOptions): AsyncIterable<SampleBatch> {
    const db = this.connect();
    options.signal?.throwIfAborted();
    if (columns.length === 0 || options.limit <= 0) return;
    const limit = Math.floor(options.limit);
    const list = columns
      .map((c) => {
        const q = quoteSqliteIdent(c);
        return `case when typeof(${q}) = 'blob' then null else substr(cast(${q} as text), 1, ${MAX_SAMPLED_CHARS}) end`;
      })
      .join(', ');
    const from = `${quoteSqliteIdent(table.schema)}.${quoteSqliteIdent(table.name)}`;
    const rowid = !this.#withoutRowid.has(`${table.schema}.${table.name}`);
    if (rowid && (table.estimatedRows ?? 0) > limit * 2) {
      const r = db.prepare(`select min(rowid) as lo, max(rowid) as hi from ${from}`).get() as { lo: number | null; hi: number | null };
      if (r.lo !== null && r.hi !== null) {
        const per = Math.ceil(limit / SAMPLE_WINDOWS);
        const stmt = db.prepare(`select ${list} from ${from} where rowid >= ? order by rowid limit ?`).raw(true);
        let taken = 0;
        for (const start of keyWindows(r.lo, r.hi, SAMPLE_WINDOWS)) {
          options.signal?.throwIfAborted();
          const rows = stmt.all(start, Math.min(per, limit - taken)) as (string | null)[][];
          taken += rows.length;
          yield rows;
          if (taken >= limit) break;
        }
        return;
      }
    }
    yield db.prepare(`select ${list} from ${from} limit ?`).raw(true).all(limit) as (string | null)[][];
  }

  async close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
  }
}
