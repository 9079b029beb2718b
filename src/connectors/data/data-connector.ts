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
  /** Checks that the system is reachable and the credentials work (e.g. `select 1`). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
