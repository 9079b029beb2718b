import type { KeyValue, Row, RowChange } from './data-connector.js';

/* Helpers the SQL data connectors (PostgreSQL, MySQL/MariaDB, SQLite) share. */

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
