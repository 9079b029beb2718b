/** Joins the values of a multi-valued cell. */
export const CSV_MULTI_VALUE_SEPARATOR = '; ';

/** One CSV field per RFC 4180 §2: quoted when it holds a quote, comma, CR or LF; quotes doubled. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/**
 * Renders rows as RFC 4180 CSV: CRLF after every record (the last one included), fields escaped by
 * {@link csvField}. The first row is the header.
 */
export function toCsv(rows: readonly (readonly string[])[]): string {
  return rows.map((r) => r.map(csvField).join(',') + '\r\n').join('');
}
