import { isAbsolute, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { CustodianError } from '../../core/index.js';
import type { CollectionEntry } from '../../datamap/index.js';
import type { ScannedRow } from '../incident-service.js';

/** Rows read per page. */
export const SCAN_PAGE_ROWS = 1000;

/** Parses a timestamp value (Date, ISO-8601 text with or without zone — UTC assumed —, epoch seconds) to ms. */
export function instantValue(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return Number.isFinite(value) ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(value.trim());
  if (m === null) return undefined;
  const zone = m[3] === undefined || m[3].toUpperCase() === 'Z' ? 'Z' : m[3].includes(':') ? m[3] : `${m[3].slice(0, 3)}:${m[3].slice(3)}`;
  const ms = Date.parse(`${m[1]}T${(m[2] ?? '00:00:00').replace(/(\.\d{3})\d+$/, '$1')}${zone}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Whole-collection reads for breach scoping on SQL systems (`sqlite:`, `postgres://`): pages of
 * {@link SCAN_PAGE_ROWS} rows in primary-key order (keyset pagination; offset pages when the data map declares
 * no primary key), identifiers quoted by Kysely, the time window applied to the parsed timestamp so that text,
 * `timestamp` and epoch columns behave alike. Rows whose timestamp is null fall outside any window.
 *
 * The data connector port has no whole-collection read yet; this belongs there as a `scan` capability
 * (docs/breach.md). Other system kinds are reported as not scannable.
 */
export async function* scanSqlCollection(url: string, entry: CollectionEntry, fields: readonly string[], window: { field: string; from?: string; to?: string } | undefined, options: { signal?: AbortSignal } = {}): AsyncGenerator<readonly ScannedRow[]> {
  let db: Kysely<unknown>;
  try {
    db = openKysely(url);
  } catch (err) {
    if (err instanceof CustodianError) throw err;
    throw new CustodianError('CST_ERR_CONNECTOR_UNAVAILABLE', 'the system to scope could not be opened', { details: { collection: entry.address, reason: (err as { code?: string }).code ?? 'error' } });
  }
  try {
    const pk = entry.collection.fields.find((f) => f.primaryKey === true)?.name;
    const wanted = [...new Set([...fields, ...(pk ? [pk] : []), ...(window ? [window.field] : [])])];
    const from = window?.from === undefined ? undefined : Date.parse(window.from);
    const to = window?.to === undefined ? undefined : Date.parse(window.to);
    let after: unknown;
    let offset = 0;
    for (;;) {
      options.signal?.throwIfAborted();
      const columns = sql.join(wanted.map((f) => sql.ref(f)));
      const table = sql.table(entry.collection.name);
      const query =
        pk === undefined
          ? sql<Record<string, unknown>>`select ${columns} from ${table} limit ${SCAN_PAGE_ROWS} offset ${offset}`
          : after === undefined
            ? sql<Record<string, unknown>>`select ${columns} from ${table} order by ${sql.ref(pk)} limit ${SCAN_PAGE_ROWS}`
            : sql<Record<string, unknown>>`select ${columns} from ${table} where ${sql.ref(pk)} > ${after} order by ${sql.ref(pk)} limit ${SCAN_PAGE_ROWS}`;
      let rows: Record<string, unknown>[];
      try {
        rows = (await query.execute(db)).rows;
      } catch (err) {
        throw new CustodianError('CST_ERR_CONNECTOR_FAILED', 'reading the collection for scoping failed', { details: { collection: entry.address, reason: (err as { code?: string }).code ?? 'error' } });
      }
      if (rows.length === 0) return;
      offset += rows.length;
      if (pk !== undefined) after = rows[rows.length - 1]![pk];
      const inWindow = window === undefined ? rows : rows.filter((r) => {
        const at = instantValue(r[window.field]);
        return at !== undefined && (from === undefined || at >= from) && (to === undefined || at < to);
      });
      if (inWindow.length > 0) yield inWindow;
      if (rows.length < SCAN_PAGE_ROWS) return;
    }
  } finally {
    await db.destroy();
  }
}

/** Whether {@link scanSqlCollection} reads systems at this connection URL. */
export function isScannableUrl(url: string): boolean {
  return /^(sqlite:|postgres(ql)?:\/\/)/i.test(url);
}

function openKysely(url: string): Kysely<unknown> {
  if (/^sqlite:/i.test(url)) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    return new Kysely({ dialect: new SqliteDialect({ database: new SQLite(isAbsolute(path) ? path : resolve(path), { readonly: true, fileMustExist: true }) }) });
  }
  if (/^postgres(ql)?:\/\//i.test(url)) return new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) });
  throw new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', 'scoping reads only sqlite: and postgres:// systems so far', { details: { scheme: (/^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1] ?? '').slice(0, 20) } });
}
