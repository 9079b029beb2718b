import type { ColumnInfo } from '../connectors/index.js';
import { DETECTORS, DETECTOR_CATEGORIES, nameSignal, nameTokens, nationalIdKind, type ColumnContext, type Detector, type DetectorKind, type NameSignal } from './detectors.js';
import type { NationalIdKind } from './validators.js';

/** What the scanner concluded about one column. Carries counts only, never a sampled value. */
export interface ColumnFinding {
  readonly kind: DetectorKind;
  /** The proposed fideslang data category. */
  readonly category: string;
  /** 0–1: how sure the scanner is (see docs/datamap.md (Scanning databases) for the formula). */
  readonly confidence: number;
  /** What the decision rests on. */
  readonly basis: 'name' | 'values' | 'name+values';
  /** Non-empty values that passed the detector's test. */
  readonly matched: number;
  /** Non-empty values sampled. */
  readonly sampled: number;
  /** For national identifiers: the scheme most values matched (`nl_bsn`, `us_ssn`, …). */
  readonly scheme?: NationalIdKind | undefined;
}

/** Options of {@link ColumnClassifier}. */
export interface ColumnClassifierOptions {
  /** "Today", for plausible birth dates (injected for tests). */
  readonly now?: Date | undefined;
}

/** Values after which hopeless detectors stop being tested (see {@link ColumnClassifier}). */
export const PRUNE_AFTER = 65;

interface Candidate {
  readonly detector: Detector;
  readonly ctx: ColumnContext;
  matched: number;
}

/**
 * Classifies one column from its name, its table's name, its storage kind and a stream of sampled values,
 * fed one by one with {@link add}. Memory is O(detectors), whatever the sample size; each value costs one
 * test per applicable detector (all O(value length)).
 *
 * The decision, per detector (docs/datamap.md (Scanning databases)):
 * - a negative name token (`email_template`, `phone_model`) rules the detector out unless nearly all values
 *   pass its strict test;
 * - `strict` detectors (checksums, exact syntax) fire on values alone when a large enough share of at
 *   least a few non-empty values pass, or on half of them when the name agrees;
 * - `named` detectors (names, addresses, birth dates) need the name signal and 60 % of values passing;
 * - an empty column is judged by its name alone, with confidence 0.5.
 * The detector with the highest confidence wins; ties go to the more specific detector.
 */
export class ColumnClassifier {
  readonly column: ColumnInfo;
  readonly #candidates: Candidate[];
  #active: Candidate[];
  readonly #schemes = new Map<NationalIdKind, number>();
  #sampled = 0;

  constructor(tableName: string, column: ColumnInfo, options: ColumnClassifierOptions = {}) {
    this.column = column;
    const tokens = nameTokens(column.name);
    const tableTokens = nameTokens(tableName);
    const now = options.now ?? new Date();
    this.#candidates = DETECTORS.filter((d) => d.kinds.includes(column.kind))
      .map((detector) => {
        const signal: NameSignal = nameSignal(detector, tokens, tableTokens);
        return { detector, ctx: { tokens, tableTokens, kind: column.kind, signal, now }, matched: 0 };
      })
      // A `named` detector cannot fire without its name: no value need be tested for it.
      .filter((c) => c.detector.evidence === 'strict' || c.ctx.signal === 'strong');
    this.#active = [...this.#candidates];
  }

  /** True when no detector applies to the column's storage kind: it need not be sampled. */
  get skipped(): boolean {
    return this.#candidates.length === 0;
  }

  /** Feeds one sampled value (null and blank values count as empty). */
  add(value: string | null | undefined): void {
    if (value === null || value === undefined) return;
    const v = value.trim();
    if (v === '') return;
    this.#sampled++;
    if (this.#sampled === PRUNE_AFTER) this.#prune();
    for (const c of this.#active) {
      if (c.detector.test(v, c.ctx)) {
        c.matched++;
        if (c.detector.kind === 'national_id') {
          const scheme = nationalIdKind(v, c.ctx);
          if (scheme !== undefined) this.#schemes.set(scheme, (this.#schemes.get(scheme) ?? 0) + 1);
        }
      }
    }
  }

  /**
   * Stops testing detectors that, without a name signal, matched under a quarter of the share they need in
   * the first {@link PRUNE_AFTER} values: on a random sample they cannot plausibly reach it. Their counts
   * freeze, so they stay below the threshold. This keeps the cost per value near one or two tests.
   */
  #prune(): void {
    const n = this.#sampled - 1;
    this.#active = this.#active.filter((c) => c.ctx.signal === 'strong' || c.matched / n >= (c.detector.valueOnlyRatio ?? 0.8) / 4);
  }

  /** The finding, or null when the column does not look personal. */
  result(): ColumnFinding | null {
    let best: ColumnFinding | null = null;
    for (const c of this.#candidates) {
      const f = this.#judge(c);
      if (f !== null && (best === null || f.confidence > best.confidence)) best = f;
    }
    return best;
  }

  #judge(c: Candidate): ColumnFinding | null {
    const { detector, ctx, matched } = c;
    const n = this.#sampled;
    const finding = (confidence: number, basis: ColumnFinding['basis']): ColumnFinding => ({
      kind: detector.kind,
      category: DETECTOR_CATEGORIES[detector.kind],
      confidence: Math.round(Math.min(0.99, Math.max(0, confidence)) * 100) / 100,
      basis,
      matched,
      sampled: n,
      ...(detector.kind === 'national_id' ? { scheme: topScheme(this.#schemes) } : {}),
    });
    if (n === 0) return ctx.signal === 'strong' ? finding(0.5, 'name') : null;
    const ratio = matched / n;
    // Few values say less: up to -0.1 below 10 values.
    const smallSample = n < 10 ? 0.1 * (1 - n / 10) : 0;
    if (detector.evidence === 'named') {
      if (ctx.signal !== 'strong' || ratio < 0.6) return null;
      return finding(0.45 + 0.5 * ratio - smallSample, 'name+values');
    }
    if (ctx.signal === 'strong') {
      if (ratio < (detector.namedRatio ?? 0.5)) return null;
      const support = detector.kind === 'free_text' ? Math.min(1, ratio * 2) : ratio;
      return finding(0.55 + 0.44 * support - smallSample, 'name+values');
    }
    const need = detector.valueOnlyRatio ?? 0.8;
    const minSamples = detector.valueOnlyMinSamples ?? 3;
    if (n < minSamples) return null;
    if (ctx.signal === 'negative') {
      // A look-alike name is overruled only by values that are unmistakably of the kind.
      if (detector.kind === 'free_text' || ratio < Math.max(need, 0.95)) return null;
      return finding(0.5 + 0.4 * ratio - smallSample, 'values');
    }
    if (ratio < need) return null;
    const base = detector.kind === 'free_text' ? 0.5 + 0.3 * Math.min(1, ratio) : 0.5 + 0.45 * ratio;
    return finding(base - smallSample, 'values');
  }
}

function topScheme(counts: ReadonlyMap<NationalIdKind, number>): NationalIdKind | undefined {
  let best: NationalIdKind | undefined;
  let max = 0;
  for (const [k, v] of counts) {
    if (v > max) {
      best = k;
      max = v;
    }
  }
  return best;
}

/**
 * Classifies a column from values already at hand (a convenience over {@link ColumnClassifier}).
 *
 * @example
 * classifyColumn('customers', { name: 'contact', kind: 'text', … }, ['ada@example.com', 'bob@example.org', …])
 * // → { kind: 'email', category: 'user.contact.email', confidence: 0.95, basis: 'values', … }
 */
export function classifyColumn(tableName: string, column: ColumnInfo, values: Iterable<string | null>, options: ColumnClassifierOptions = {}): ColumnFinding | null {
  const c = new ColumnClassifier(tableName, column, options);
  for (const v of values) c.add(v);
  return c.result();
}
