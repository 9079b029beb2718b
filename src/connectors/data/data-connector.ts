/**
 * The port through which data subject requests and retention read and change personal data in the systems
 * where it lives (docs/requests.md). One adapter per system kind, chosen by the connection URL; every adapter
 * passes the shared conformance suite (test/connectors/data/conformance.ts).
 *
 * Rules every adapter keeps: identifiers are quoted (or validated) per engine and values are bound
 * parameters, never text built from input; lookups are batched (`IN` lists of at most {@link MAX_BATCH}
 * values) and streamed; connections are pooled and closed by {@link DataConnector.close}; errors are
 * CustodianErrors with codes CST_ERR_CONNECTOR_* and never contain values or secrets.
 */

import { CustodianError } from '../../core/index.js';

/** One row as read: field name → value (string, number, boolean, null, or a nested object for documents). */
export type Row = Readonly<Record<string, unknown>>;

/** A scalar a lookup can match: identity values and key values. */
export type KeyValue = string | number;

/** Largest number of values in one lookup or change statement. */
export const MAX_BATCH = 500;

/** Where a collection lives in its system, beyond its name: connector-specific settings from the data map. */
export interface CollectionTarget {
  /** The collection name from the data map (table, file, endpoint name…). */
  readonly name: string;
  /** `connector:` settings of the collection in the data map (e.g. Redis `keyPattern`, JSONL `file`, HTTP `path`). */
  readonly options: Readonly<Record<string, string>>;
}

/** New values for one row, found by its key: field → new value (null clears it). */
export interface RowChange {
  readonly key: KeyValue;
  readonly set: Readonly<Record<string, string | number | null>>;
}

/**
 * When a row is past due for a retention rule: its `ageField` holds an instant strictly before `cutoff`.
 * A row whose age field is null (or not an instant) is never due. Age fields may be date/time columns,
 * ISO-8601 text (no zone = UTC) or numbers of seconds since the Unix epoch.
 */
export interface DueCondition {
  readonly ageField: string;
  /** UTC ISO-8601 instant with milliseconds, e.g. `2026-01-01T00:00:00.000Z`. */
  readonly cutoff: string;
}

/** One page of rows past due (see {@link ScanQuery} for cursors and page order). */
export interface ExpiredQuery extends DueCondition {
  /** The collection's primary key field: every row comes with it (rows are then changed by it). */
  readonly keyField: string;
  /** The `next` of the previous page; undefined for the first page. */
  readonly cursor?: string | undefined;
  /** Largest number of rows in the page (at most {@link MAX_EXPIRED_PAGE}). */
  readonly limit: number;
  /** Fields to return besides the key (identity fields for holds, fields to anonymise). */
  readonly fields: readonly string[];
}

/** Largest page {@link DataConnector.findExpired} returns. */
export const MAX_EXPIRED_PAGE = 10_000;

/** Parses an age value as an instant (ms since the epoch): ISO-8601 text (no zone = UTC) or epoch seconds; undefined otherwise. */
export function instantOf(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(text);
  if (m === null) return undefined;
  const zone = m[3] === undefined ? 'Z' : m[3].toUpperCase() === 'Z' ? 'Z' : m[3].includes(':') ? m[3] : `${m[3].slice(0, 3)}:${m[3].slice(3)}`;
  const time = (m[2] ?? '00:00:00').replace(/(\.\d{3})\d+$/, '$1');
  const ms = Date.parse(`${m[1]}T${time}${zone}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * One page of a whole collection, for breach scoping (docs/breach.md), optionally only rows whose `timeField`
 * holds an instant in [`from`, `to`). Time values are read as {@link DueCondition} describes (date/time
 * columns, ISO-8601 text with no zone = UTC, epoch seconds); a row whose time field is null or not an instant
 * lies outside every window. Retention's {@link DataConnector.findExpired} is this query with `to` = the cutoff.
 *
 * **Cursors.** Pages are resumed with an opaque `cursor`: the {@link ScanPage.next} of the previous page (the
 * first page has none). What it holds is the connector's business: the last key of the page for SQL tables
 * (pages in key order), a byte offset for JSONL files (file order), the SCAN cursor for Redis (SCAN order), the
 * service's own cursor for HTTP. A cursor may be stored (retention keeps it to resume a run) and passed to
 * another instance of the same connector kind. A cursor the connector did not make is CST_ERR_VALIDATION.
 *
 * @example
 * ```ts
 * let cursor: string | undefined;
 * do {
 *   const page = await crm.scan(customers, { keyField: 'id', fields: ['email'], cursor, limit: 10_000 });
 *   for (const row of page.rows) console.log(row.email);
 *   cursor = page.next ?? undefined;
 * } while (cursor !== undefined);
 * ```
 */
export interface ScanQuery {
  /** The collection's primary key field: every row comes with it. */
  readonly keyField: string;
  /** Fields to return besides the key (the identity fields, for scoping). */
  readonly fields: readonly string[];
  /** The `next` of the previous page; undefined for the first page. */
  readonly cursor?: string | undefined;
  /** Largest number of rows in the page (at most {@link MAX_SCAN_PAGE}). */
  readonly limit: number;
  /** The field the time window applies to; required when `from` or `to` is given. */
  readonly timeField?: string | undefined;
  /** UTC ISO-8601 instant: only rows at or after it (inclusive). */
  readonly from?: string | undefined;
  /** UTC ISO-8601 instant: only rows strictly before it (exclusive). */
  readonly to?: string | undefined;
}

/**
 * One page of {@link DataConnector.scan} or {@link DataConnector.findExpired}. A page holds at most `limit`
 * rows, and may hold fewer — even none — while `next` is not null (a connector may end a page early to keep
 * its cost bounded): only `next === null` ends the collection. Paging from the first page until then yields
 * every row present for the whole walk (see each connector for rows changed meanwhile).
 */
export interface ScanPage {
  readonly rows: readonly Row[];
  /** Where the next page starts (pass it as `cursor`), or null when this page was the last. */
  readonly next: string | null;
}

/** Largest page {@link DataConnector.scan} returns. */
export const MAX_SCAN_PAGE = 10_000;

/** A {@link ScanQuery} checked: the page size clamped, the window bounds as UTC ISO instants with milliseconds. */
export interface CheckedScan {
  readonly keyField: string;
  readonly fields: readonly string[];
  readonly cursor: string | undefined;
  readonly limit: number;
  /** Present when the query has a window. */
  readonly window: { readonly field: string; readonly from: string | undefined; readonly to: string | undefined } | undefined;
}

/**
 * Checks a {@link ScanQuery} the same way for every adapter: `from`/`to` must be instants (CST_ERR_VALIDATION,
 * never passed on to the engine), a window needs `timeField`, the limit is clamped to [1, {@link MAX_SCAN_PAGE}].
 */
export function checkScan(query: ScanQuery): CheckedScan {
  const bound = (path: 'from' | 'to', value: string | undefined): string | undefined => {
    if (value === undefined) return undefined;
    const ms = instantOf(value);
    if (ms === undefined) throw new CustodianError('CST_ERR_VALIDATION', `the scan window's ${path} is not an instant`, { details: { issues: [{ path, message: 'must be an ISO-8601 instant' }] } });
    return new Date(ms).toISOString();
  };
  const from = bound('from', query.from);
  const to = bound('to', query.to);
  if ((from !== undefined || to !== undefined) && (query.timeField === undefined || query.timeField === '')) {
    throw new CustodianError('CST_ERR_VALIDATION', 'a scan window needs the time field it applies to', { details: { issues: [{ path: 'timeField', message: 'required with from or to' }] } });
  }
  return {
    keyField: query.keyField,
    fields: query.fields,
    cursor: query.cursor === undefined || query.cursor === '' ? undefined : query.cursor,
    limit: Math.max(1, Math.min(MAX_SCAN_PAGE, Math.floor(Number.isFinite(query.limit) ? query.limit : 1))),
    window: from === undefined && to === undefined ? undefined : { field: query.timeField!, from, to },
  };
}

/** The scan that finds one page of rows past due: retention's `findExpired` is a scan with `to` = cutoff. */
export function expiredScan(query: ExpiredQuery): ScanQuery {
  return { keyField: query.keyField, fields: query.fields, cursor: query.cursor, limit: query.limit, timeField: query.ageField, to: query.cutoff };
}

/** CST_ERR_VALIDATION for a cursor a connector did not make (or cannot read back); never passed on to the engine. */
export function malformedCursor(kind: string): never {
  throw new CustodianError('CST_ERR_VALIDATION', `the page cursor was not made by a ${kind} connector`, { details: { kind, issues: [{ path: 'cursor', message: 'not a cursor of this connector' }] } });
}

/**
 * What a connector can do with one collection besides `find`, `deleteRows` and `updateRows`, which every
 * connector does (Kysely's `supports*` flags). Callers may ask before they try; an operation a connector cannot
 * run still answers CST_ERR_CONNECTOR_UNSUPPORTED, so the flags and the operations never disagree.
 */
export interface ConnectorCapabilities {
  /** `scan`: whole-collection pages (breach scoping). */
  readonly scan: boolean;
  /** `scan` with a time window (`timeField`, `from`, `to`). */
  readonly scanWindow: boolean;
  /** `findExpired`, `countExpired`, `deleteExpired` and `updateExpired` (retention). */
  readonly retention: boolean;
}

/** The capabilities of the SQL and JSONL connectors: everything. */
export const ALL_CAPABILITIES: ConnectorCapabilities = Object.freeze({ scan: true, scanWindow: true, retention: true });

/** CST_ERR_CONNECTOR_UNSUPPORTED for a scan (breach scoping) a connector kind cannot run; `why` says what to do. */
export function scanUnsupported(kind: string, why: string): never {
  throw new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', `${kind} connectors cannot scan this collection: ${why}`, { details: { kind, operation: 'scan' } });
}

/** CST_ERR_CONNECTOR_UNSUPPORTED for a retention operation of a connector kind that cannot run it. */
export function retentionUnsupported(kind: string, operation: string): never {
  throw new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', `${kind} connectors do not support retention (${operation}): rows past due cannot be found by age there; declare no retention rule on this system's collections`, {
    details: { kind, operation },
  });
}

export interface DataConnector {
  /** `postgres` | `mysql` | `sqlite` | `redis` | `jsonl` | `http`. */
  readonly kind: string;
  /**
   * Rows of `target` whose `field` equals one of `values`, with the fields named in `fields` (and `field`
   * itself), streamed in batches. Matching is exact (no patterns, no case folding): `%`, `*`, `?`, quotes and
   * path characters in values are data, never syntax. Unknown collections or fields: CST_ERR_CONNECTOR_SCHEMA.
   */
  find(target: CollectionTarget, field: string, values: readonly KeyValue[], fields: readonly string[], options?: { readonly signal?: AbortSignal }): AsyncIterable<readonly Row[]>;
  /** Deletes the rows whose `keyField` is one of `keys`; resolves to how many went. Deleting again deletes 0. */
  deleteRows(target: CollectionTarget, keyField: string, keys: readonly KeyValue[]): Promise<number>;
  /** Applies each change to the row whose `keyField` equals its key; resolves to how many rows had a value change (applying the same changes again resolves to 0). */
  updateRows(target: CollectionTarget, keyField: string, changes: readonly RowChange[]): Promise<number>;
  /**
   * Retention: one page of the rows of `target` past due (see {@link ExpiredQuery}), with the key and
   * `fields`; resume with the page's `next` (see {@link ScanQuery} for cursors and order). One bounded
   * statement (or one bounded read) per page; no lock is held between pages. Connectors that cannot find rows
   * by age (Redis; HTTP services without the `retention` operation) answer CST_ERR_CONNECTOR_UNSUPPORTED.
   */
  findExpired(target: CollectionTarget, query: ExpiredQuery, options?: { readonly signal?: AbortSignal }): Promise<ScanPage>;
  /**
   * Breach scoping: one page of the rows of `target` (see {@link ScanQuery}), with the key and `fields`,
   * optionally within a time window; resume with the page's `next`. One bounded statement (or one bounded
   * read) per page; no lock is held between pages. Values (cursors, bounds) are bound parameters or compared
   * in Custodian, never text in a statement. Connectors that cannot enumerate a collection (HTTP services
   * without the `scan` operation), or cannot apply a window (Redis), answer CST_ERR_CONNECTOR_UNSUPPORTED.
   */
  scan(target: CollectionTarget, query: ScanQuery, options?: { readonly signal?: AbortSignal }): Promise<ScanPage>;
  /** What the connector can do with `target` besides find, delete and update (see {@link ConnectorCapabilities}). */
  capabilities(target: CollectionTarget, options?: { readonly signal?: AbortSignal }): Promise<ConnectorCapabilities>;
  /** Retention report: how many rows are past due (`age < cutoff`), or with `from`, how many have `from <= age < cutoff`. */
  countExpired(target: CollectionTarget, due: DueCondition, options?: { readonly from?: string; readonly signal?: AbortSignal }): Promise<number>;
  /**
   * Deletes the rows whose key is one of `keys` AND that are still past due (the condition is checked again in
   * the same statement, so a row updated meanwhile is kept); resolves to how many went.
   */
  deleteExpired(target: CollectionTarget, keyField: string, keys: readonly KeyValue[], due: DueCondition): Promise<number>;
  /** Like {@link DataConnector.updateRows}, only on rows still past due; resolves to how many rows had a value change. */
  updateExpired(target: CollectionTarget, keyField: string, changes: readonly RowChange[], due: DueCondition): Promise<number>;
  /** Checks that the system is reachable and the credentials work (e.g. `select 1`). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
