import type { CollectionEntry, DataMap } from '../datamap/index.js';

/** A field of a collection that identifies the subject of a row, with the identity kind it holds. */
export interface IdentityField {
  readonly field: string;
  readonly kind: string;
}

/**
 * The identity value as requests normalise it before digesting (rights/engine/identities.ts): e-mail trimmed and
 * lower-cased, phone reduced to `+digits`, anything else trimmed. Numbers (integer user ids) become their text.
 * Undefined for values that cannot be an identity (null, objects).
 */
export function normaliseIdentityValue(kind: string, value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (kind === 'email') return v.toLowerCase();
  if (kind === 'phone_number') return (v.startsWith('+') ? '+' : '') + v.replace(/\D/g, '');
  return v;
}

/** The text whose keyed digest requests store for an identity (`identity:<kind>:<value>`); legal holds use the same. */
export function identityDigestText(kind: string, normalisedValue: string): string {
  return `identity:${kind}:${normalisedValue}`;
}

/**
 * The top-level fields of `entry` that identify a row's subject: fields carrying an identity marker, and fields
 * that reference (in either direction) a field carrying one — `orders.customer_email → customers.email` makes
 * `customer_email` an `email` identity. One hop only: rows reachable only through longer chains cannot be
 * matched to a subject hold (docs/retention.md). O(fields + references).
 */
export function identityFieldsOf(map: DataMap, entry: CollectionEntry): IdentityField[] {
  const out = new Map<string, string>();
  for (const f of entry.collection.fields) {
    if (f.identity !== undefined) out.set(f.name, f.identity);
  }
  for (const edge of map.referenceEdges()) {
    for (const [mine, other] of [
      [edge.from, edge.to],
      [edge.to, edge.from],
    ] as const) {
      const a = map.field(mine);
      const b = map.field(other);
      if (a === undefined || b === undefined || a.path.length !== 1) continue;
      if (`${a.dataset.key}.${a.collection.name}` !== entry.address) continue;
      if (b.field.identity !== undefined && !out.has(a.field.name)) out.set(a.field.name, b.field.identity);
    }
  }
  return [...out].map(([field, kind]) => ({ field, kind }));
}
