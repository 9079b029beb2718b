import { CustodianError, isStorableText, systemClock, type Clock } from '../core/index.js';
import { LEDGER_LIMITS } from '../ledger/index.js';
import type { ChangeFeed, ConsentDecision, ConsentLookup } from './consent-lookup.js';

/**
 * Why a record was dropped:
 * - `no_consent`: the purpose needs consent and none was recorded (status `none`);
 * - `denied`, `withdrawn`, `expired`: the subject's deciding event (for purposes on legitimate interests or
 *   public task, `denied`/`withdrawn` is an objection, GDPR Art. 21);
 * - `not_allowed`: the lookup said no with another status;
 * - `missing_subject`: the record has no subject field, or its value is not a non-empty string (numbers are not coerced);
 * - `invalid_subject`: a string no subject id can be (over 256 characters, a NUL or a lone surrogate);
 * - `bad_line`: (CLI) a line that is not JSON, skipped with `--on-bad-line skip`.
 */
export const DROP_REASONS = ['no_consent', 'denied', 'withdrawn', 'expired', 'not_allowed', 'missing_subject', 'invalid_subject', 'bad_line'] as const;
/** One of {@link DROP_REASONS}. */
export type DropReason = (typeof DROP_REASONS)[number];

/** What a filter run did. */
export interface FilterSummary {
  /** Records read from the source (for the CLI: lines, including bad ones; blank lines are not records). */
  readonly read: number;
  readonly kept: number;
  /** Records dropped, by reason; every reason is present (0 when none). `read = kept + sum(dropped)`. */
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Calls to the lookup (each for up to `batchSize` distinct subjects). */
  readonly lookups: number;
  /** Subjects looked up, over all calls (a subject looked up again after `recheckMs` counts again). */
  readonly subjectsLookedUp: number;
  /** Time spent waiting for lookups. */
  readonly lookupMs: number;
  /** Wall time from the first read to the end (or to now, while running). */
  readonly durationMs: number;
}

/** The subject of a record: a field name, a dotted path into nested objects (`user.id`), or a function. */
export type SubjectField<R> = string | ((record: R) => unknown);

/** Options of {@link ConsentFilter} and {@link filterByConsent}. */
export interface FilterByConsentOptions<R> {
  /** The purpose key the records are about to be processed for, e.g. `train_ai_system`. */
  readonly purpose: string;
  /** Where each record names its subject. */
  readonly subjectField: SubjectField<R>;
  readonly lookup: ConsentLookup;
  /** Records read and decided together (the most read ahead of the consumer). Default 10,000. */
  readonly windowSize?: number;
  /** Distinct subjects per lookup call. Default 5,000; at most 10,000. */
  readonly batchSize?: number;
  /** Lookup calls of one window run concurrently (useful over HTTP). Default 2. */
  readonly maxInFlight?: number;
  /**
   * How long a decision that allows processing is reused before it is looked up again. It bounds how late a
   * withdrawal (or an expiry) recorded mid-run is honoured. Default 1,000 ms.
   */
  readonly recheckMs?: number;
  /**
   * How long a decision that refuses processing is reused. A grant recorded mid-run only makes the filter
   * keep more (never process data it should not), so this can be longer without weakening any guarantee.
   * Default: the larger of `recheckMs` and 60,000 ms.
   */
  readonly recheckDeniedMs?: number;
  /**
   * When the lookup has a healthy change feed (an in-process ledger that watches its store), decisions are
   * dropped as soon as a change names their subject — a withdrawal is honoured as fast as the feed reports it
   * (in-process: at once; other processes: PostgreSQL NOTIFY, SQLite's 50 ms poll) — and looked up again at the
   * latest after this safety net. Default 60,000 ms. Without a healthy feed `recheckMs` applies.
   */
  readonly watchedMaxAgeMs?: number;
  /** Decisions kept in memory (about 100 bytes each); the oldest go first. Default 1,000,000. */
  readonly maxCachedDecisions?: number;
  readonly signal?: AbortSignal;
  /** Clock of the recheck bound (tests). */
  readonly clock?: Clock;
}

/** Verdict codes: 0 keeps, the others index {@link DROP_REASONS} + 1. */
const KEEP = 0;
const REASON_CODE = Object.fromEntries(DROP_REASONS.map((r, i) => [r, i + 1])) as Record<DropReason, number>;
const PENDING = 255;
/** Decisions are cached as one number, `at * CODE_SPACE + code`: no object per subject. */
const CODE_SPACE = 16;

function codeOf(d: ConsentDecision | undefined): number {
  if (d === undefined) return REASON_CODE.no_consent;
  if (d.allowed === true) return KEEP;
  switch (d.status) {
    case 'none':
      return REASON_CODE.no_consent;
    case 'denied':
      return REASON_CODE.denied;
    case 'withdrawn':
      return REASON_CODE.withdrawn;
    case 'expired':
      return REASON_CODE.expired;
    default:
      return REASON_CODE.not_allowed;
  }
}

function subjectAccessor<R>(field: SubjectField<R>): (record: R) => unknown {
  if (typeof field === 'function') return field;
  if (typeof field !== 'string' || field.length === 0) {
    throw new CustodianError('CST_ERR_VALIDATION', 'subjectField: must be a field name, a dotted path or a function', { details: { issues: [{ path: 'subjectField', message: 'required' }] } });
  }
  const path = field.split('.');
  if (path.length === 1) {
    return (r) => (r !== null && typeof r === 'object' ? (r as Record<string, unknown>)[field] : undefined);
  }
  return (r) => {
    let v: unknown = r;
    for (const key of path) {
      if (v === null || typeof v !== 'object') return undefined;
      v = (v as Record<string, unknown>)[key];
    }
    return v;
  };
}

function positive(name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new CustodianError('CST_ERR_VALIDATION', `${name}: must be a whole number from 0 to ${max}`, { details: { issues: [{ path: name, message: 'out of range' }] } });
  }
  return value;
}

/**
 * The engine of {@link filterByConsent}: decides windows of records against a {@link ConsentLookup} with one
 * lookup per `batchSize` distinct, unknown subjects, and counts what it decided. Use it directly to drive
 * your own I/O without a promise per record (the CLI does).
 *
 * Per window of n records: O(n) map operations plus ⌈u / batchSize⌉ lookups for the u distinct subjects
 * whose cached decision is missing or older than its recheck bound. Invariant: a record is kept only on a
 * decision that allowed processing, taken at most `recheckMs` before the window was decided.
 */
export class ConsentFilter<R> {
  readonly purpose: string;
  readonly windowSize: number;
  readonly #lookup: ConsentLookup;
  readonly #subjectOf: (record: R) => unknown;
  readonly #batchSize: number;
  readonly #maxInFlight: number;
  readonly #recheckMs: number;
  readonly #recheckDeniedMs: number;
  readonly #maxCached: number;
  readonly #signal: AbortSignal | undefined;
  readonly #clock: Clock;
  readonly #watchedMaxAgeMs: number;
  readonly #feed: ChangeFeed | undefined;
  /** Bumped by every change notice: a lookup that overlapped one is not cached. */
  #generation = 0;
  /** subject → at * CODE_SPACE + verdict code, in order of lookup (oldest first). */
  readonly #cache = new Map<string, number>();
  /** Per window: distinct subjects to look up → their verdict once known. */
  readonly #pending = new Map<string, number>();
  #subjects: Array<string | undefined> = [];
  readonly #counts = new Float64Array(DROP_REASONS.length + 1);
  #lookups = 0;
  #subjectsLookedUp = 0;
  #lookupMs = 0;
  #startedAt: number | undefined;
  #endedAt: number | undefined;
  #busy = false;

  constructor(options: FilterByConsentOptions<R>) {
    if (typeof options.purpose !== 'string' || options.purpose.length === 0) {
      throw new CustodianError('CST_ERR_VALIDATION', 'purpose: required', { details: { issues: [{ path: 'purpose', message: 'required' }] } });
    }
    this.purpose = options.purpose;
    this.#lookup = options.lookup;
    this.#subjectOf = subjectAccessor(options.subjectField);
    this.windowSize = Math.max(1, positive('windowSize', options.windowSize, 10_000));
    this.#batchSize = Math.max(1, positive('batchSize', options.batchSize, 5000, LEDGER_LIMITS.maxCheckBatch));
    this.#maxInFlight = Math.max(1, positive('maxInFlight', options.maxInFlight, 2, 64));
    this.#recheckMs = positive('recheckMs', options.recheckMs, 1000);
    this.#recheckDeniedMs = positive('recheckDeniedMs', options.recheckDeniedMs, Math.max(this.#recheckMs, 60_000));
    this.#maxCached = positive('maxCachedDecisions', options.maxCachedDecisions, 1_000_000);
    this.#signal = options.signal;
    this.#clock = options.clock ?? systemClock;
    this.#watchedMaxAgeMs = positive('watchedMaxAgeMs', options.watchedMaxAgeMs, 60_000);
    // With a healthy change feed a cached decision holds until a change names its subject (or anyone's).
    this.#feed = this.#lookup.watchChanges?.((ids) => {
      this.#generation++;
      if (ids === null) this.#cache.clear();
      else for (const id of ids) this.#cache.delete(id);
    });
  }

  /** Checks the purpose with the lookup, when it can (fails with `CST_ERR_CONSENT_UNKNOWN_PURPOSE`). */
  async assertPurpose(): Promise<void> {
    await this.#lookup.assertPurpose?.(this.purpose, { signal: this.#signal });
  }

  /**
   * Decides `records[0..count)`: writes 0 (keep) or a drop code into `verdicts` (see {@link dropReasonOf}),
   * counts them, and resolves to the number kept. Synchronous except for the lookups it needs. One call at a
   * time: the next window is decided after this one settles (calling again sooner throws).
   */
  async decide(records: ArrayLike<R>, count: number, verdicts: Uint8Array): Promise<number> {
    if (this.#busy) throw new CustodianError('CST_ERR_VALIDATION', 'ConsentFilter.decide: one window at a time', { details: { issues: [{ path: 'decide', message: 'called again before the previous call settled' }] } });
    this.#busy = true;
    try {
      return await this.#decide(records, count, verdicts);
    } finally {
      this.#busy = false;
    }
  }

  async #decide(records: ArrayLike<R>, count: number, verdicts: Uint8Array): Promise<number> {
    this.#signal?.throwIfAborted();
    this.#startedAt ??= performance.now();
    if (this.#subjects.length < count) this.#subjects = new Array<string | undefined>(count);
    const subjects = this.#subjects;
    const cache = this.#cache;
    const pending = this.#pending;
    const now = this.#clock.now();
    const watched = this.#feed?.healthy() === true;
    const recheck = watched ? Math.max(this.#recheckMs, this.#watchedMaxAgeMs) : this.#recheckMs;
    const recheckDenied = watched ? Math.max(this.#recheckDeniedMs, this.#watchedMaxAgeMs) : this.#recheckDeniedMs;
    let waiting = 0;
    for (let i = 0; i < count; i++) {
      const s = this.#subjectOf(records[i]!);
      if (typeof s !== 'string' || s.length === 0) {
        verdicts[i] = REASON_CODE.missing_subject;
        continue;
      }
      const packed = cache.get(s);
      if (packed !== undefined) {
        const code = packed % CODE_SPACE;
        const age = now - (packed - code) / CODE_SPACE;
        if (age >= 0 && age < (code === KEEP ? recheck : recheckDenied)) {
          verdicts[i] = code;
          continue;
        }
      }
      if (s.length > LEDGER_LIMITS.maxSubjectIdLength || !isStorableText(s)) {
        verdicts[i] = REASON_CODE.invalid_subject;
        continue;
      }
      verdicts[i] = PENDING;
      subjects[i] = s;
      waiting++;
      if (!pending.has(s)) pending.set(s, PENDING);
    }
    if (waiting > 0) {
      try {
        await this.#lookUp(now);
        for (let i = 0; i < count; i++) {
          if (verdicts[i] === PENDING) {
            verdicts[i] = pending.get(subjects[i]!)!;
            subjects[i] = undefined;
          }
        }
      } finally {
        pending.clear();
      }
    }
    const counts = this.#counts;
    let kept = 0;
    for (let i = 0; i < count; i++) {
      const v = verdicts[i]!;
      counts[v]!++;
      if (v === KEEP) kept++;
    }
    return kept;
  }

  /** Looks up every subject of `#pending`, in chunks, `maxInFlight` at a time, and caches the decisions. */
  async #lookUp(decidedAt: number): Promise<void> {
    const ids = [...this.#pending.keys()];
    const started = performance.now();
    // Cached with the time the window was decided, before the query: the recheck bound is never stretched.
    const stamp = Math.floor(decidedAt) * CODE_SPACE;
    const generation = this.#generation;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const chunk = ids.slice(next, next + this.#batchSize);
        next += chunk.length;
        this.#lookups++;
        this.#subjectsLookedUp += chunk.length;
        const decisions = await this.#lookup.checkMany(chunk, this.purpose, { signal: this.#signal });
        for (const id of chunk) {
          const code = codeOf(decisions.get(id));
          this.#pending.set(id, code);
          this.#cache.delete(id);
          // A change noticed while this lookup ran may postdate its answer: use it for this window only.
          if (generation === this.#generation) this.#cache.set(id, stamp + code);
        }
      }
    };
    const workers = Math.min(this.#maxInFlight, Math.ceil(ids.length / this.#batchSize));
    await Promise.all(Array.from({ length: workers }, worker));
    const cache = this.#cache;
    if (cache.size > this.#maxCached) {
      const it = cache.keys();
      for (let excess = cache.size - this.#maxCached; excess > 0; excess--) cache.delete(it.next().value!);
    }
    this.#lookupMs += performance.now() - started;
  }

  /** Counts `n` lines that were not records (CLI `--on-bad-line skip`). */
  countBadLines(n = 1): void {
    this.#startedAt ??= performance.now();
    this.#counts[REASON_CODE.bad_line]! += n;
  }

  /** Marks the end of the run: later summaries keep this duration. */
  finish(): FilterSummary {
    this.#endedAt ??= performance.now();
    this.#feed?.stop();
    return this.summary();
  }

  /** What the filter decided so far. */
  summary(): FilterSummary {
    const c = this.#counts;
    const dropped = Object.fromEntries(DROP_REASONS.map((r, i) => [r, c[i + 1]!])) as Record<DropReason, number>;
    let read = 0;
    for (const n of c) read += n;
    const start = this.#startedAt;
    const durationMs = start === undefined ? 0 : (this.#endedAt ?? performance.now()) - start;
    return { read, kept: c[KEEP]!, dropped, lookups: this.#lookups, subjectsLookedUp: this.#subjectsLookedUp, lookupMs: Math.round(this.#lookupMs), durationMs: Math.round(durationMs) };
  }
}

/** The drop reason of a verdict code written by {@link ConsentFilter.decide}, or undefined for "keep". */
export function dropReasonOf(code: number): DropReason | undefined {
  return code === KEEP ? undefined : DROP_REASONS[code - 1];
}

/** A result whose `summary` never counts as an unhandled rejection when nobody awaits it. */
function settledLater<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** The result of {@link filterByConsent}. */
export interface FilterByConsentResult<R> {
  /** The records that may be processed, in input order. Single use: iterate it once. */
  readonly records: AsyncIterable<R>;
  /** Settles when `records` has been iterated to its end (or abandoned, or failed, then it rejects with the same error). */
  readonly summary: Promise<FilterSummary>;
}

/**
 * Filters records down to those whose subject allows processing for `purpose`, in input order.
 *
 * Reads a window of at most `windowSize` records, looks up the distinct subjects it has no fresh decision
 * for (one lookup per `batchSize` subjects), then hands the kept records out; the next window is read only
 * when the consumer has taken them all, so no more than one window is ever held or read ahead (pull-based
 * back-pressure). Decisions are cached (at most `maxCachedDecisions`) and looked up again after `recheckMs`,
 * so a withdrawal recorded mid-run stops records read more than `recheckMs` (plus the lookup's own staleness)
 * after it. Dropped records are counted by {@link DropReason} in the summary.
 *
 * @example
 * const { records, summary } = filterByConsent(events, { purpose: 'train_ai_system', subjectField: 'user_id', lookup: ledgerLookup(custodian.ledger) });
 * for await (const e of records) train(e);
 * console.log(await summary); // { read, kept, dropped: { no_consent, withdrawn, … }, lookups, durationMs, … }
 */
export function filterByConsent<R>(records: AsyncIterable<R> | Iterable<R>, options: FilterByConsentOptions<R>): FilterByConsentResult<R> {
  const filter = new ConsentFilter<R>(options);
  const done = settledLater<FilterSummary>();
  let started = false;
  async function* run(): AsyncGenerator<R, void, undefined> {
    if (started) throw new CustodianError('CST_ERR_VALIDATION', 'filterByConsent: records can be iterated once', { details: { issues: [{ path: 'records', message: 'already iterated' }] } });
    started = true;
    const window = new Array<R>(filter.windowSize);
    const verdicts = new Uint8Array(filter.windowSize);
    const isAsync = typeof (records as AsyncIterable<R>)[Symbol.asyncIterator] === 'function';
    const asyncIt = isAsync ? (records as AsyncIterable<R>)[Symbol.asyncIterator]() : undefined;
    const syncIt = isAsync ? undefined : (records as Iterable<R>)[Symbol.iterator]();
    let exhausted = false;
    try {
      await filter.assertPurpose();
      while (!exhausted) {
        let n = 0;
        while (n < window.length) {
          const r = asyncIt !== undefined ? await asyncIt.next() : syncIt!.next();
          if (r.done === true) {
            exhausted = true;
            break;
          }
          window[n++] = r.value;
        }
        if (n === 0) break;
        await filter.decide(window, n, verdicts);
        for (let i = 0; i < n; i++) {
          const r = window[i]!;
          window[i] = undefined as R;
          if (verdicts[i] === KEEP) yield r;
        }
      }
      done.resolve(filter.finish());
    } catch (err) {
      done.reject(err);
      throw err;
    } finally {
      // Abandoned by the consumer (break) or failed: release the source, and settle the summary with what was done.
      if (!exhausted) {
        await (asyncIt?.return?.() ?? syncIt?.return?.());
      }
      done.resolve(filter.finish());
    }
  }
  return { records: { [Symbol.asyncIterator]: () => run() }, summary: done.promise };
}

/** The result of {@link filterBatchesByConsent}. */
export interface FilterBatchesByConsentResult<R> {
  /** Batches of kept records, in input order (an input batch yields at most ⌈size / windowSize⌉ batches). */
  readonly batches: AsyncIterable<R[]>;
  readonly summary: Promise<FilterSummary>;
}

/**
 * {@link filterByConsent} for sources that already come in batches (database pages, parsed chunks): no
 * promise per record on either side. Each input batch is decided in windows of `windowSize`; the next batch
 * is read only when the consumer has taken the output of this one.
 */
export function filterBatchesByConsent<R>(batches: AsyncIterable<readonly R[]> | Iterable<readonly R[]>, options: FilterByConsentOptions<R>): FilterBatchesByConsentResult<R> {
  const filter = new ConsentFilter<R>(options);
  const done = settledLater<FilterSummary>();
  async function* run(): AsyncGenerator<R[], void, undefined> {
    const verdicts = new Uint8Array(filter.windowSize);
    try {
      await filter.assertPurpose();
      for await (const batch of batches) {
        for (let from = 0; from < batch.length; from += filter.windowSize) {
          const slice = from === 0 && batch.length <= filter.windowSize ? batch : batch.slice(from, from + filter.windowSize);
          const kept = await filter.decide(slice, slice.length, verdicts);
          if (kept === 0) continue;
          const out = new Array<R>(kept);
          let k = 0;
          for (let i = 0; i < slice.length; i++) if (verdicts[i] === KEEP) out[k++] = slice[i]!;
          yield out;
        }
      }
      done.resolve(filter.finish());
    } catch (err) {
      done.reject(err);
      throw err;
    } finally {
      done.resolve(filter.finish());
    }
  }
  return { batches: { [Symbol.asyncIterator]: () => run() }, summary: done.promise };
}
