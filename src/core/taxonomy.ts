import { DATA_CATEGORIES } from './taxonomy/data-categories.js';
import { DATA_SUBJECTS } from './taxonomy/data-subjects.js';
import { DATA_USES } from './taxonomy/data-uses.js';
import type { TaxonomyEntry } from './taxonomy/entry.js';

/**
 * The fideslang default taxonomy (data categories, data uses, data subjects) as versioned data, plus the
 * GDPR classification Custodian adds on top: special categories (Art. 9(1), Art. 10) and other sensitive
 * categories. Keys are matched exactly; the data map validator uses {@link closestTaxonomyKeys} for hints.
 */

export type { TaxonomyEntry } from './taxonomy/entry.js';
export { DATA_CATEGORIES, DATA_USES, DATA_SUBJECTS };

/** The fideslang release the taxonomy data was copied from (ethyca/fideslang, tag 3.1.4). */
export const FIDESLANG_VERSION = '3.1.4';

/** The three taxonomies a key can belong to, named as in fideslang. */
export type TaxonomyKind = 'data_category' | 'data_use' | 'data_subject';

const byKind: Readonly<Record<TaxonomyKind, readonly TaxonomyEntry[]>> = {
  data_category: DATA_CATEGORIES,
  data_use: DATA_USES,
  data_subject: DATA_SUBJECTS,
};
const keySets: Readonly<Record<TaxonomyKind, ReadonlySet<string>>> = {
  data_category: new Set(DATA_CATEGORIES.map((e) => e.key)),
  data_use: new Set(DATA_USES.map((e) => e.key)),
  data_subject: new Set(DATA_SUBJECTS.map((e) => e.key)),
};

/** Whether `key` is a data category of the default taxonomy (exact match). */
export function isDataCategory(key: string): boolean {
  return keySets.data_category.has(key);
}

/** Whether `key` is a data use of the default taxonomy (exact match). */
export function isDataUse(key: string): boolean {
  return keySets.data_use.has(key);
}

/** Whether `key` is a data subject of the default taxonomy (exact match). */
export function isDataSubject(key: string): boolean {
  return keySets.data_subject.has(key);
}

/** Whether `key` belongs to the taxonomy of `kind` (exact match). */
export function isTaxonomyKey(kind: TaxonomyKind, key: string): boolean {
  return keySets[kind].has(key);
}

/** The entry for `key` in the taxonomy of `kind`, or undefined. */
export function taxonomyEntry(kind: TaxonomyKind, key: string): TaxonomyEntry | undefined {
  return byKind[kind].find((e) => e.key === key);
}

/** A data category that GDPR treats specially, with the provision it comes from. */
export interface SpecialCategory {
  /** The fideslang data category key; the key and every key under it are covered. */
  readonly key: string;
  /** The provision, e.g. `GDPR Art. 9(1)`. */
  readonly article: string;
  /** The ground in the words of the law. */
  readonly ground: string;
  /**
   * Set on keys that are not in the shipped taxonomy but in fideslang's announced 3.2.0 taxonomy, so
   * datasets already using them are classified correctly. Absent: the key is in {@link DATA_CATEGORIES}.
   */
  readonly fideslangVersion?: string;
}

/**
 * Special categories of personal data (GDPR Art. 9(1)) and data relating to criminal convictions and
 * offences (Art. 10), mapped to fideslang data category keys. Processing them needs an Art. 9(2) condition
 * (or Art. 10 authority) besides an Art. 6 legal basis, and usually a DPIA (Art. 35(3)(b)).
 *
 * fideslang 3.1.4 has no key for trade-union membership or philosophical beliefs; the 3.2.0 keys are listed so
 * that datasets which already use them (or an organisation's own extension with those keys) are caught.
 */
export const SPECIAL_CATEGORIES: readonly SpecialCategory[] = [
  { key: 'user.demographic.race_ethnicity', article: 'GDPR Art. 9(1)', ground: 'racial or ethnic origin' },
  { key: 'user.demographic.political_opinion', article: 'GDPR Art. 9(1)', ground: 'political opinions' },
  { key: 'user.demographic.religious_belief', article: 'GDPR Art. 9(1)', ground: 'religious or philosophical beliefs' },
  { key: 'user.demographic.philosophical_belief', article: 'GDPR Art. 9(1)', ground: 'religious or philosophical beliefs', fideslangVersion: '3.2.0' },
  { key: 'user.demographic.union_membership', article: 'GDPR Art. 9(1)', ground: 'trade union membership', fideslangVersion: '3.2.0' },
  { key: 'user.health_and_medical.genetic', article: 'GDPR Art. 9(1), Art. 4(13)', ground: 'genetic data' },
  { key: 'user.health.genetic', article: 'GDPR Art. 9(1), Art. 4(13)', ground: 'genetic data', fideslangVersion: '3.2.0' },
  // Biometric data is special only when processed to uniquely identify a person (Art. 9(1), Art. 4(14));
  // fideslang's biometric keys describe encoded characteristics and biometric credentials, i.e. that use.
  { key: 'user.biometric', article: 'GDPR Art. 9(1), Art. 4(14)', ground: 'biometric data for the purpose of uniquely identifying a natural person' },
  { key: 'user.authorization.biometric', article: 'GDPR Art. 9(1), Art. 4(14)', ground: 'biometric data for the purpose of uniquely identifying a natural person' },
  { key: 'user.biometrics', article: 'GDPR Art. 9(1), Art. 4(14)', ground: 'biometric data for the purpose of uniquely identifying a natural person', fideslangVersion: '3.2.0' },
  { key: 'user.authorization.biometrics', article: 'GDPR Art. 9(1), Art. 4(14)', ground: 'biometric data for the purpose of uniquely identifying a natural person', fideslangVersion: '3.2.0' },
  { key: 'user.health_and_medical', article: 'GDPR Art. 9(1), Art. 4(15)', ground: 'data concerning health' },
  { key: 'user.health', article: 'GDPR Art. 9(1), Art. 4(15)', ground: 'data concerning health', fideslangVersion: '3.2.0' },
  { key: 'user.demographic.sexual_orientation', article: 'GDPR Art. 9(1)', ground: "data concerning a natural person's sex life or sexual orientation" },
  { key: 'user.criminal_history', article: 'GDPR Art. 10', ground: 'personal data relating to criminal convictions and offences' },
];

/** The keys of {@link SPECIAL_CATEGORIES}: a category equal to or under one of them is special. */
export const SPECIAL_CATEGORY_PREFIXES: readonly string[] = SPECIAL_CATEGORIES.map((c) => c.key);

/** A data category that is not special under GDPR but raises risk when exposed, with why. */
export interface SensitiveCategory {
  readonly key: string;
  readonly reason: string;
  /** As in {@link SpecialCategory.fideslangVersion}. */
  readonly fideslangVersion?: string;
}

/**
 * Categories that are not Art. 9 data but that DPIA screening (WP248 criterion 4, "sensitive data or data of a
 * highly personal nature"; criterion 7, vulnerable subjects) and breach risk assessment (EDPB Guidelines 9/2022
 * on Art. 33/34) weigh as high risk: financial data, credentials, government identifiers, precise location and
 * children's data (Recital 38, Art. 8).
 */
export const SENSITIVE_CATEGORIES: readonly SensitiveCategory[] = [
  { key: 'user.financial', reason: 'financial data: fraud and financial loss (WP248 criterion 4)' },
  { key: 'user.payment', reason: 'payment data: fraud and financial loss (WP248 criterion 4)' },
  { key: 'user.authorization', reason: 'credentials: account takeover (EDPB Guidelines 9/2022)' },
  { key: 'system.authentication', reason: 'authentication data: account takeover (EDPB Guidelines 9/2022)' },
  { key: 'user.government_id', reason: 'government identifiers: identity theft (WP248 criterion 4; GDPR Art. 87)' },
  { key: 'user.location.precise', reason: 'precise location: movements and habits (WP248 criterion 4)' },
  { key: 'user.childrens', reason: "children's data: vulnerable subjects (WP248 criterion 7; GDPR Recital 38, Art. 8)" },
  { key: 'user.children', reason: "children's data: vulnerable subjects (WP248 criterion 7; GDPR Recital 38, Art. 8)", fideslangVersion: '3.2.0' },
];

/** The keys of {@link SENSITIVE_CATEGORIES}. */
export const SENSITIVE_CATEGORY_PREFIXES: readonly string[] = SENSITIVE_CATEGORIES.map((c) => c.key);

function underAny(key: string, prefixes: readonly string[]): boolean {
  return prefixes.some((p) => key === p || key.startsWith(p + '.'));
}

/** Whether a data category is a special category (GDPR Art. 9(1)) or criminal-offence data (Art. 10): equal to or under one of {@link SPECIAL_CATEGORY_PREFIXES}. */
export function isSpecialCategory(key: string): boolean {
  return underAny(key, SPECIAL_CATEGORY_PREFIXES);
}

/** The special-category rule a data category falls under, or undefined. */
export function specialCategoryOf(key: string): SpecialCategory | undefined {
  return SPECIAL_CATEGORIES.find((c) => key === c.key || key.startsWith(c.key + '.'));
}

/** Whether a data category is sensitive (not special): equal to or under one of {@link SENSITIVE_CATEGORY_PREFIXES}. */
export function isSensitiveCategory(key: string): boolean {
  return underAny(key, SENSITIVE_CATEGORY_PREFIXES);
}

/**
 * Optimal string alignment distance (Levenshtein plus adjacent transposition, so `emial` is 1 from `email`).
 * O(|a|·|b|) time, O(|b|) memory.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

const lastSegment = (key: string) => key.slice(key.lastIndexOf('.') + 1);

/**
 * Up to `n` taxonomy keys of `kind` close to `key`, best first, for "did you mean" hints; empty when nothing is
 * close. A candidate's score is its edit distance to `key`, or — so that `user.email` finds `user.contact.email`
 * — one more than the distance between the last segments, whichever is smaller; a candidate that starts with a
 * dotted `key` (`user.device.ip` → `user.device.ip_address`) scores 1. Candidates scoring above
 * max(2, ⌊|key|/3⌋) are dropped. O(K·|key|·|candidate|) for K keys of the kind (≤ 100).
 *
 * @example closestTaxonomyKeys('user.contact.emial', 'data_category') // ['user.contact.email', …]
 */
export function closestTaxonomyKeys(key: string, kind: TaxonomyKind, n = 3): string[] {
  if (n <= 0) return [];
  const limit = Math.max(2, Math.floor(key.length / 3));
  const last = lastSegment(key);
  const scored: Array<{ key: string; score: number }> = [];
  for (const entry of byKind[kind]) {
    if (entry.key === key) continue;
    let score = editDistance(key, entry.key);
    if (key.includes('.') || entry.key.includes('.')) {
      const segment = editDistance(last, lastSegment(entry.key));
      if (segment <= Math.max(1, Math.floor(last.length / 4))) score = Math.min(score, segment + 1);
    }
    // A truncated key (`user.device.ip`, `user.health`) finds what it starts.
    if (key.includes('.') && entry.key.startsWith(key)) score = Math.min(score, 1);
    if (score <= limit) scored.push({ key: entry.key, score });
  }
  scored.sort((a, b) => a.score - b.score || a.key.length - b.key.length || (a.key < b.key ? -1 : 1));
  return scored.slice(0, n).map((s) => s.key);
}
