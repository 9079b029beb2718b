import { CustodianError } from '../../core/index.js';
import { ALL_CAPABILITIES, checkScan, expiredScan, malformedCursor, type CheckedScan, type CollectionTarget, type ConnectorCapabilities, type ExpiredQuery, type KeyValue, type Row, type RowChange, type ScanPage, type ScanQuery } from './data-connector.js';

/* Helpers the SQL data connectors (PostgreSQL, MySQL/MariaDB, SQLite) share. */

/**
 * The paging operations every SQL connector offers the same way: `scan` and `findExpired` are one keyset page
 * each (validated here), and every capability is there. A connector supplies {@link pageByKey}.
 */
export abstract class KeysetPaging {
  async scan(target: CollectionTarget, query: ScanQuery, options: { readonly signal?: AbortSignal } = {}): Promise<ScanPage> {
    return this.pageByKey(target, checkScan(query), 'scan', options.signal);
  }

  async findExpired(target: CollectionTarget, query: ExpiredQuery, options: { readonly signal?: AbortSignal } = {}): Promise<ScanPage> {
    return this.pageByKey(target, checkScan(expiredScan(query)), 'findExpired', options.signal);
  }

  async capabilities(): Promise<ConnectorCapabilities> {
    return Promise.resolve(ALL_CAPABILITIES);
  }

  /** One keyset page in key order (the statement of {@link keysetStatement}); `operation` names it in errors. */
  protected abstract pageByKey(target: CollectionTarget, query: CheckedScan, operation: string, signal: AbortSignal | undefined): Promise<ScanPage>;
}

/** `items` in consecutive slices of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A driver row as the port returns it: binary values as base64 text (rows are JSON-serialisable). */
export function normalize(row: Record<string, unknown>): Row {
  for (const [k, v] of Object.entries(row)) if (Buffer.isBuffer(v)) row[k] = v.toString('base64');
  return row;
}

/**
 * Changes grouped by identical `set` (same fields, same values), so that the common case — the same
 * erasure strategy for every row — is one statement per batch. Keys that cannot match (`toKey` → undefined)
 * are dropped. O(n) over the batch.
 */
export function groupBySet(changes: readonly RowChange[], toKey: (key: KeyValue) => string | undefined): { set: Readonly<Record<string, string | number | null>>; keys: string[] }[] {
  const groups = new Map<string, { set: Readonly<Record<string, string | number | null>>; keys: string[] }>();
  for (const change of changes) {
    if (Object.keys(change.set).length === 0) continue;
    const key = toKey(change.key);
    if (key === undefined) continue;
    const signature = JSON.stringify(Object.entries(change.set).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const group = groups.get(signature) ?? { set: change.set, keys: [] };
    group.keys.push(key);
    groups.set(signature, group);
  }
  return [...groups.values()];
}

/**
 * How one SQL engine writes the parts of a keyset page ({@link keysetStatement}); `C` is the connector's own
 * description of a column (its name, and whatever its comparisons need).
 */
export interface KeysetDialect<C> {
  /** The column, quoted, for the select list. */
  readonly quote: (column: C) => string;
  /** The text of bound parameter number `n` (1-based): `$n` for PostgreSQL, `?` elsewhere. */
  readonly placeholder: (n: number) => string;
  /** `time <op> <placeholder>` for a UTC ISO instant, and the value to bind for it. */
  readonly compareTime: (column: C, op: '<' | '>=', instant: string, placeholder: string) => { readonly sql: string; readonly value: unknown };
  /** The resume key as bound for this key column, or undefined when it cannot be a key of the column. */
  readonly keyValue: (column: C, key: KeyValue) => unknown;
  /** `key > <placeholder>`, in the order of {@link KeysetDialect.order}. */
  readonly after: (column: C, placeholder: string) => string;
  /** The `order by` expression of the key column. */
  readonly order: (column: C) => string;
  /** Whether `limit` is a bound parameter; MySQL refuses one in prepared statements, so it gets the checked integer. */
  readonly bindLimit: boolean;
}

/**
 * The one statement of a keyset page (scan and findExpired, every SQL connector):
 * `select <key>, <fields> from <table> [where <time> >= :from and <time> < :to] [and <key> > :after] order by <key> limit :n`.
 * `column` resolves (and checks) a field; identifiers come quoted from the dialect, every value is bound.
 * Undefined when the cursor's key cannot be a key of the column (only a forged cursor): the page is empty.
 * With an index on the key (the primary key), a page costs O(limit · log rows).
 */
export function keysetStatement<C>(dialect: KeysetDialect<C>, kind: string, from: string, column: (field: string) => C, query: CheckedScan): { sql: string; params: unknown[] } | undefined {
  const key = column(query.keyField);
  const select = [...new Set([query.keyField, ...query.fields])].map((f) => dialect.quote(column(f))).join(', ');
  const params: unknown[] = [];
  const where: string[] = [];
  if (query.window !== undefined) {
    const time = column(query.window.field);
    for (const [op, bound] of [['>=', query.window.from], ['<', query.window.to]] as const) {
      if (bound === undefined) continue;
      const compare = dialect.compareTime(time, op, bound, dialect.placeholder(params.length + 1));
      params.push(compare.value);
      where.push(compare.sql);
    }
  }
  const after = keyOfCursor(kind, query.cursor);
  if (after !== undefined) {
    const value = dialect.keyValue(key, after);
    if (value === undefined) return undefined;
    params.push(value);
    where.push(dialect.after(key, dialect.placeholder(params.length)));
  }
  let limit = String(query.limit);
  if (dialect.bindLimit) {
    params.push(query.limit);
    limit = dialect.placeholder(params.length);
  }
  return { sql: `select ${select} from ${from}${where.length === 0 ? '' : ` where ${where.join(' and ')}`} order by ${dialect.order(key)} limit ${limit}`, params };
}

/** The key a SQL cursor holds (JSON of the last key of the previous page); CST_ERR_VALIDATION for anything else. */
export function keyOfCursor(kind: string, cursor: string | undefined): KeyValue | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(cursor);
  } catch {
    return malformedCursor(kind);
  }
  if (typeof key === 'string' || (typeof key === 'number' && Number.isFinite(key))) return key;
  return malformedCursor(kind);
}

/**
 * A keyset page as the port returns it: when the page is full, `next` is its last key as JSON (more rows may
 * follow); a shorter page is the last. A key that is not text or a number cannot be resumed after:
 * CST_ERR_CONNECTOR_FAILED rather than a page that would never move on.
 */
export function keysetPage(kind: string, rows: readonly Row[], keyField: string, limit: number): ScanPage {
  if (rows.length < limit) return { rows, next: null };
  const last = rows[rows.length - 1]![keyField];
  if (typeof last === 'string' || (typeof last === 'number' && Number.isFinite(last))) return { rows, next: JSON.stringify(last) };
  throw new CustodianError('CST_ERR_CONNECTOR_FAILED', `the key field ${keyField} cannot be paged by: its values are not text or numbers`, { details: { kind, field: keyField, reason: 'key_type' } });
}
