// PostgreSQL text cannot hold U+0000 and turns a lone surrogate into U+FFFD (merging distinct ids), so text
// stored in a column must be well-formed Unicode without NUL on every store.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `s` can be stored and read back unchanged by every store: no NUL, no lone surrogate. */
export function isStorableText(s: string): boolean {
  return !s.includes('\u0000') && !LONE_SURROGATE.test(s);
}
