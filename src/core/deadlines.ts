/**
 * Deadlines for answering data subject requests, as rules with the provision each comes from, and the
 * calendar arithmetic to apply them. Times are UTC instants; a period keeps the time of day of its start.
 * Public holidays are not known to Custodian: pass them as ISO dates (`holidays`) where a rule counts
 * business days or moves to the next working day. Nothing here does I/O.
 */
import { CustodianError } from './errors.js';
import type { Regime, RequestType } from './rights.js';
import { addMonths, isIsoInstant, toIso } from './time.js';

const DAY_MS = 86_400_000;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A length of time as the law states it. Business days skip Saturdays, Sundays and the given holidays. */
export interface Period {
  readonly amount: number;
  readonly unit: 'months' | 'days' | 'business_days';
}

/** How far, and on what condition, a deadline may be extended. Notice is due before the original deadline. */
export interface ExtensionRule {
  readonly period: Period;
  readonly citation: string;
  readonly condition: string;
}

/** A deadline to confirm receipt of a request, counted from receipt. */
export interface AcknowledgementRule {
  readonly period: Period;
  readonly citation: string;
}

/** The deadline rule of one regime for some request types. */
export interface DeadlineRule {
  readonly regime: Regime;
  readonly types: readonly RequestType[];
  readonly period: Period;
  readonly citation: string;
  /** How the deadline is computed, in words. */
  readonly rule: string;
  /** False when the law sets no period and Custodian applies the stated default instead. */
  readonly statutory: boolean;
  readonly extension?: ExtensionRule;
  readonly acknowledge?: AcknowledgementRule;
  /** Whether the clock stands still while the controller awaits identity information or a clarification. */
  readonly pausesWhileAwaitingVerification: boolean;
  /** Whether a deadline on a Saturday, Sunday or given holiday moves to the next working day. */
  readonly movesToNextWorkingDay: boolean;
}

const GDPR_TYPES = ['access', 'portability', 'erasure', 'rectification', 'restriction', 'objection'] as const;
const MONTH_RULE =
  'One calendar month from receipt: the same date in the next month, or the last day of that month when it has no such date (Regulation (EEC, Euratom) No 1182/71 Art. 3(2)(c))';

/**
 * The deadline rules. Each (regime, request type) pair granted in `RIGHTS` has exactly one rule.
 * Where a rule can be read two ways, the earlier deadline is taken.
 */
export const DEADLINE_RULES: readonly DeadlineRule[] = Object.freeze(
  (
    [
      {
        regime: 'GDPR',
        types: GDPR_TYPES,
        period: { amount: 1, unit: 'months' },
        citation: 'GDPR Art. 12(3)',
        rule: `${MONTH_RULE}; extendable by two further months counted from the original deadline. Weekends and holidays do not move the deadline (Reg. 1182/71 Art. 3(4) would; not applied, which is never later).`,
        statutory: true,
        extension: {
          period: { amount: 2, unit: 'months' },
          citation: 'GDPR Art. 12(3)',
          condition: 'Where necessary, taking into account the complexity and number of the requests; the person must be told, with reasons, within the first month.',
        },
        pausesWhileAwaitingVerification: false,
        movesToNextWorkingDay: false,
      },
      {
        regime: 'UK_GDPR',
        types: GDPR_TYPES,
        period: { amount: 1, unit: 'months' },
        citation: 'UK GDPR Art. 12(3), Art. 12A; ICO guidance on the right of access',
        rule: `${MONTH_RULE}, counted from the relevant time: receipt, moved on by the time spent awaiting identity information, a fee or a clarification. A deadline on a weekend or bank holiday moves to the next working day (ICO). Extendable by two further months counted from the original deadline.`,
        statutory: true,
        extension: {
          period: { amount: 2, unit: 'months' },
          citation: 'UK GDPR Art. 12A',
          condition: 'Where necessary by reason of the complexity or number of the requests; the person must be told, with reasons, within the first month.',
        },
        pausesWhileAwaitingVerification: true,
        movesToNextWorkingDay: true,
      },
      {
        regime: 'CCPA',
        types: ['access', 'portability', 'erasure', 'rectification'],
        period: { amount: 45, unit: 'days' },
        citation: 'Cal. Civ. Code §1798.130(a)(2)(A); 11 CCR §7021(b)',
        rule: '45 calendar days from the day the request is received, whatever the time needed to verify it; extendable once by 45 days (90 in total). Receipt must be confirmed within 10 business days.',
        statutory: true,
        extension: {
          period: { amount: 45, unit: 'days' },
          citation: 'Cal. Civ. Code §1798.130(a)(2)(A); 11 CCR §7021(b)',
          condition: 'Once, when reasonably necessary, with notice and an explanation within the first 45 days.',
        },
        acknowledge: { period: { amount: 10, unit: 'business_days' }, citation: '11 CCR §7021(a)' },
        pausesWhileAwaitingVerification: false,
        movesToNextWorkingDay: false,
      },
      {
        regime: 'CCPA',
        types: ['opt_out'],
        period: { amount: 15, unit: 'business_days' },
        citation: '11 CCR §7026(f); §7027(g)',
        rule: 'As soon as feasibly possible and no later than 15 business days from receipt; no extension.',
        statutory: true,
        pausesWhileAwaitingVerification: false,
        movesToNextWorkingDay: false,
      },
      {
        regime: 'VCDPA',
        types: ['access', 'portability', 'erasure', 'rectification', 'opt_out'],
        period: { amount: 45, unit: 'days' },
        citation: 'Va. Code Ann. §59.1-577(B)',
        rule: '45 calendar days from receipt; extendable once by 45 days (90 in total).',
        statutory: true,
        extension: {
          period: { amount: 45, unit: 'days' },
          citation: 'Va. Code Ann. §59.1-577(B)',
          condition: 'Once, when reasonably necessary given the complexity and number of requests, with notice and reasons within the first 45 days.',
        },
        pausesWhileAwaitingVerification: false,
        movesToNextWorkingDay: false,
      },
      {
        regime: 'LGPD',
        types: ['access'],
        period: { amount: 15, unit: 'days' },
        citation: 'LGPD Art. 19, II',
        rule: 'A complete declaration within 15 calendar days from the request (a simplified answer is due immediately, Art. 19, I; not modelled as a separate deadline). No extension.',
        statutory: true,
        pausesWhileAwaitingVerification: false,
        movesToNextWorkingDay: false,
      },
      {
        regime: 'LGPD',
        types: ['portability', 'erasure', 'rectification', 'restriction', 'objection'],
        period: { amount: 15, unit: 'days' },
        citation: 'LGPD Art. 18 §§4–5 (periods left to regulation); Art. 19, II applied by analogy',
        rule: 'No statutory period (Art. 18 §5 leaves it to regulation); Custodian applies the 15 calendar days of Art. 19, II. No extension.',
        statutory: false,
        pausesWhileAwaitingVerification: false,
        movesToNextWorkingDay: false,
      },
      {
        regime: 'PIPEDA',
        types: ['access', 'rectification'],
        period: { amount: 30, unit: 'days' },
        citation: 'PIPEDA s. 8(3); Sch. 1, Principle 4.9',
        rule: '30 calendar days from receipt; extendable by up to 30 more days, with notice within the first 30 days.',
        statutory: true,
        extension: {
          period: { amount: 30, unit: 'days' },
          citation: 'PIPEDA s. 8(4)',
          condition: 'Meeting the limit would unreasonably interfere with the organization’s activities, or necessary consultations make it impracticable; notice with reasons and the right to complain within the first 30 days. (Conversion to an alternative format, s. 8(4)(b)–(c), is not modelled.)',
        },
        pausesWhileAwaitingVerification: false,
        movesToNextWorkingDay: false,
      },
      {
        regime: 'PIPEDA',
        types: ['opt_out'],
        period: { amount: 30, unit: 'days' },
        citation: 'PIPEDA Sch. 1, Principle 4.3.8 (reasonable notice; no statutory period)',
        rule: 'No statutory period for acting on a withdrawal of consent; Custodian applies the 30 calendar days of s. 8(3). No extension.',
        statutory: false,
        pausesWhileAwaitingVerification: false,
        movesToNextWorkingDay: false,
      },
    ] satisfies DeadlineRule[]
  ).map((r) => Object.freeze(r)),
);

/** The rule for `type` under `regime`, or undefined when the regime grants no such request. */
export function deadlineRule(regime: Regime, type: RequestType): DeadlineRule | undefined {
  return DEADLINE_RULES.find((r) => r.regime === regime && r.types.includes(type));
}

/** How far a request of `type` under `regime` may be extended, or undefined when it may not. */
export function extensionFor(regime: Regime, type: RequestType): ExtensionRule | undefined {
  return deadlineRule(regime, type)?.extension;
}

/**
 * Whether the regime's clock stands still while the controller awaits identity information (or a fee or a
 * clarification): true for the UK, where the month runs from the relevant time (UK GDPR Art. 12A). Elsewhere
 * it runs from receipt; California says so outright (11 CCR §7021(b)).
 */
export function pausesWhileAwaitingVerification(regime: Regime): boolean {
  return DEADLINE_RULES.some((r) => r.regime === regime && r.pausesWhileAwaitingVerification);
}

/** A time the clock stood still; `to` absent while it still does. */
export interface ClockPause {
  readonly from: string;
  readonly to?: string;
}

/**
 * The total time covered by `pauses` up to `now` (epoch ms), overlaps counted once: the `pausedMs` to pass to
 * {@link computeDeadline}. O(n log n) in the number of pauses.
 *
 * @example totalPausedMs([{ from: '2026-03-02T09:00:00.000Z', to: '2026-03-05T09:00:00.000Z' }], now) // 3 days
 */
export function totalPausedMs(pauses: readonly ClockPause[], now: number): number {
  const spans = pauses
    .map((p) => [instant(p.from, 'from'), p.to === undefined ? now : instant(p.to, 'to')] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    // Invariant: every instant before `end` is already counted in `total`.
    const start = Math.max(a, end);
    if (b > start) total += b - start;
    end = Math.max(end, b);
  }
  return total;
}

/** Options of {@link computeDeadline}. */
export interface DeadlineOptions {
  readonly regime: Regime;
  readonly type: RequestType;
  /** When the request was received: ISO-8601 instant. */
  readonly receivedAt: string;
  /** Time the clock stood still (see {@link totalPausedMs}); ignored where the regime's clock does not stop. */
  readonly pausedMs?: number;
  /** Whether the controller has extended the deadline (and given the notice the rule requires). */
  readonly extended?: boolean;
  /** Public holidays as ISO dates (`2026-12-25`), for business days and moves to the next working day. */
  readonly holidays?: readonly string[];
}

/** A computed deadline. */
export interface Deadline {
  /** The deadline in force: the extended one when `extended` was set. */
  readonly dueAt: string;
  /** When receipt must be confirmed, where the regime requires it. */
  readonly acknowledgeBy?: string;
  /** The latest the deadline may be extended to, where the rule allows an extension. */
  readonly extendableTo?: string;
  /** The last moment to tell the person about an extension (the original deadline). */
  readonly extensionNoticeBy?: string;
  readonly citation: string;
  readonly rule: string;
}

/**
 * The deadline of a request. Throws `CST_ERR_VALIDATION` for an unknown combination (check `mayRequest`
 * first), a malformed instant or holiday, a negative pause, or `extended` where no extension exists.
 *
 * @example computeDeadline({ regime: 'GDPR', type: 'access', receivedAt: '2028-01-31T10:00:00.000Z' }).dueAt
 * // '2028-02-29T10:00:00.000Z'
 */
export function computeDeadline(options: DeadlineOptions): Deadline {
  const { regime, type, receivedAt, pausedMs = 0, extended = false, holidays = [] } = options;
  const rule = deadlineRule(regime, type);
  if (rule === undefined) throw invalid(`No deadline rule: ${regime} grants no '${type}' request.`, { regime, type });
  const received = instant(receivedAt, 'receivedAt');
  if (!Number.isFinite(pausedMs) || pausedMs < 0) throw invalid('pausedMs must be a finite number ≥ 0.', { pausedMs });
  const offDays = holidayDates(holidays);
  if (extended && rule.extension === undefined) throw invalid(`${regime} allows no extension for '${type}'.`, { regime, type });

  const start = rule.pausesWhileAwaitingVerification ? received + pausedMs : received;
  const original = addPeriod(start, rule.period, offDays);
  // An extension runs from the original deadline, before any move to a working day: the earlier reading.
  const extendedEnd = rule.extension === undefined ? undefined : addPeriod(original, rule.extension.period, offDays);
  const settle = (ms: number): number => (rule.movesToNextWorkingDay ? nextBusinessDay(ms, offDays) : ms);

  const due = extended && extendedEnd !== undefined ? settle(extendedEnd) : settle(original);
  const citation = extended && rule.extension !== undefined && rule.extension.citation !== rule.citation ? `${rule.citation}; ${rule.extension.citation}` : rule.citation;
  return {
    dueAt: toIso(due),
    ...(rule.acknowledge === undefined ? {} : { acknowledgeBy: toIso(addPeriod(received, rule.acknowledge.period, offDays)) }),
    ...(extendedEnd === undefined ? {} : { extendableTo: toIso(settle(extendedEnd)), extensionNoticeBy: toIso(original) }),
    citation,
    rule: rule.rule,
  };
}

/** Whether `dueAt` has passed at `now` (epoch ms or ISO instant). */
export function isOverdue(dueAt: string, now: number | string): boolean {
  return toMs(now, 'now') > instant(dueAt, 'dueAt');
}

/** Whether `dueAt` has not passed at `now` but falls within `withinMs` of it. */
export function isDueSoon(dueAt: string, now: number | string, withinMs: number): boolean {
  const left = instant(dueAt, 'dueAt') - toMs(now, 'now');
  return left >= 0 && left <= withinMs;
}

/** Whether the UTC day of `ms` is neither a Saturday, a Sunday nor one of `holidays` (ISO dates). */
export function isBusinessDay(ms: number, holidays: readonly string[] | ReadonlySet<string> = []): boolean {
  const set = holidaySet(holidays);
  const weekday = new Date(ms).getUTCDay();
  return weekday !== 0 && weekday !== 6 && !set.has(toIso(ms).slice(0, 10));
}

/**
 * `days` business days after `ms`, keeping the time of day; the day of `ms` itself is not counted.
 * O(days + holidays): each step moves one calendar day, and at most 2 of every 7 plus the holidays are skipped.
 */
export function addBusinessDays(ms: number, days: number, holidays: readonly string[] | ReadonlySet<string> = []): number {
  const set = holidaySet(holidays);
  let t = ms;
  for (let counted = 0; counted < days; ) {
    t += DAY_MS;
    if (isBusinessDay(t, set)) counted += 1;
  }
  return t;
}

/** `ms` itself when it falls on a business day, otherwise the same time on the next business day. */
export function nextBusinessDay(ms: number, holidays: readonly string[] | ReadonlySet<string> = []): number {
  const set = holidaySet(holidays);
  let t = ms;
  while (!isBusinessDay(t, set)) t += DAY_MS;
  return t;
}

function addPeriod(ms: number, period: Period, holidays: ReadonlySet<string>): number {
  switch (period.unit) {
    case 'months':
      return addMonths(ms, period.amount);
    case 'days':
      // UTC has no daylight saving: a calendar day is always 24 hours.
      return ms + period.amount * DAY_MS;
    case 'business_days':
      return addBusinessDays(ms, period.amount, holidays);
  }
}

function holidaySet(holidays: readonly string[] | ReadonlySet<string>): ReadonlySet<string> {
  return holidays instanceof Set ? (holidays as ReadonlySet<string>) : holidayDates(holidays as readonly string[]);
}

function holidayDates(holidays: readonly string[]): ReadonlySet<string> {
  for (const h of holidays) {
    if (!ISO_DATE.test(h) || !isIsoInstant(`${h}T00:00:00Z`)) throw invalid('Each holiday must be an ISO date (YYYY-MM-DD).', { holiday: h });
  }
  return new Set(holidays);
}

function instant(value: string, field: string): number {
  if (!isIsoInstant(value)) throw invalid(`${field} must be an ISO-8601 instant with an offset.`, { field });
  return Date.parse(value);
}

function toMs(value: number | string, field: string): number {
  if (typeof value === 'string') return instant(value, field);
  if (!Number.isFinite(value)) throw invalid(`${field} must be a finite epoch millisecond.`, { field });
  return value;
}

function invalid(message: string, details: Record<string, unknown>): CustodianError {
  return new CustodianError('CST_ERR_VALIDATION', message, { details });
}
