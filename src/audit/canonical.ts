/**
 * Canonical JSON for leaves of the audit and consent trees: RFC 8785 (JCS) restricted to the values Custodian
 * puts in a leaf — objects, arrays, strings, booleans, null and safe integers. Object keys are sorted by UTF-16
 * code units, no white space, strings escaped as JSON.stringify does (which JCS adopts). Any verifier can
 * recompute the bytes from the entry's fields.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError('canonical JSON carries only safe integers');
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot carry ${typeof value}`);
}

/** The canonical bytes of a value: UTF-8 of {@link canonicalJson}. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}
