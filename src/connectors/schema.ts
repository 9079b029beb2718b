/**
 * The schema port of connectors: what the data-map scanner needs from a system holding personal data —
 * its tables and columns, and a bounded sample of values. One adapter per engine, one folder each
 * (`postgres/`, `mysql/`, `sqlite/`); {@link openSchemaConnector} picks one by URL.
 */

/** Database engines the scanner introspects. */
export const SQL_ENGINES = ['postgres', 'mysql', 'sqlite'] as const;
export type SqlEngine = (typeof SQL_ENGINES)[number];

/** The broad storage type of a column, mapped from the engine's type name. */
export type ColumnKind = 'text' | 'integer' | 'decimal' | 'float' | 'boolean' | 'date' | 'timestamp' | 'time' | 'binary' | 'json' | 'network' | 'uuid' | 'other';

/** A column as the engine declares it. */
export interface ColumnInfo {
  readonly name: string;
  /** The engine's own type name, lower case (`character varying`, `varchar(255)`, `TEXT`, `inet`…). */
  readonly dataType: string;
  readonly kind: ColumnKind;
  readonly nullable: boolean;
  readonly primaryKey: boolean;
  /** The column leads some index, so lookups by it are indexed. */
  readonly indexed: boolean;
  /** Some single-column unique index or constraint covers it. */
  readonly unique: boolean;
}

/** A base table (views are not scanned: they hold no data of their own). */
export interface TableInfo {
  /** PostgreSQL schema, MySQL database, or `main` for SQLite. */
  readonly schema: string;
  readonly name: string;
  readonly columns: readonly ColumnInfo[];
  /** The engine's row estimate (statistics, not a count), or null when it has none. */
  readonly estimatedRows: number | null;
}

/** Options of {@link SchemaConnector.sample}. */
export interface SampleOptions {
  /** At most this many rows are read from the table. */
  readonly limit: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * One batch of sampled rows: each row holds the sampled columns' values in the order asked, as text
 * (dates as `YYYY-MM-DD`, numbers in decimal), cut to {@link MAX_SAMPLED_CHARS}, or null.
 */
export type SampleBatch = readonly (readonly (string | null)[])[];

/** Values longer than this are cut by the database before they are sent (enough for every detector). */
export const MAX_SAMPLED_CHARS = 512;

/** The largest per-table sample a caller may ask for. */
export const MAX_SAMPLE_ROWS = 100_000;

/** Introspection and bounded sampling of one database. */
export interface SchemaConnector {
  readonly engine: SqlEngine;
  /** The connection URL with any password replaced, safe to print. */
  readonly displayUrl: string;
  /** Base tables of `schema` (PostgreSQL: default `public`; MySQL: the URL's database; SQLite: `main`), sorted by name. */
  listTables(options?: { readonly schema?: string | undefined; readonly signal?: AbortSignal | undefined }): Promise<readonly TableInfo[]>;
  /**
   * Streams at most `options.limit` rows of `columns` of `table`, spread over the table where the engine
   * allows (PostgreSQL `TABLESAMPLE SYSTEM`, key windows on MySQL and SQLite), never reading it whole.
   */
  sample(table: TableInfo, columns: readonly string[], options: SampleOptions): AsyncIterable<SampleBatch>;
  close(): Promise<void>;
}

/**
 * Start keys of `windows` evenly spread windows over the integer key range [min, max]; each window then
 * reads `ceil(limit / windows)` rows from its start in key order. O(windows).
 */
export function keyWindows(min: number, max: number, windows: number): number[] {
  const span = max - min + 1;
  const out: number[] = [];
  for (let i = 0; i < windows; i++) out.push(min + Math.floor((span * i) / windows));
  return [...new Set(out)];
}

/** Number of key windows a sample of `limit` rows is spread over. */
export const SAMPLE_WINDOWS = 8;
