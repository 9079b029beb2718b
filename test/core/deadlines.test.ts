import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEADLINE_RULES,
  REGIMES,
  REQUEST_TYPES,
  RIGHTS,
  addBusinessDays,
  computeDeadline,
  deadlineRule,
  extensionFor,
  isBusinessDay,
  isCustodianError,
  isDueSoon,
  isOverdue,
  nextBusinessDay,
  pausesWhileAwaitingVerification,
  totalPausedMs,
  type DeadlineOptions,
  type Regime,
  type RequestType,
} from '../../src/core/index.js';

const DAY = 86_400_000;

/** Every (regime, type) pair the regime grants. */
const granted: [Regime, RequestType][] = REGIMES.flatMap((regime) =>
  REQUEST_TYPES.filter((type) => RIGHTS[regime].entitlements[type].available).map((type): [Regime, RequestType] => [regime, type]),
);

describe('DEADLINE_RULES', () => {
  it('has exactly one rule for each granted request and none for others', () => {
    for (const regime of REGIMES) {
      for (const type of REQUEST_TYPES) {
        const matches = DEADLINE_RULES.filter((r) => r.regime === regime && r.types.includes(type));
        expect(matches.length, `${regime} ${type}`).toBe(RIGHTS[regime].entitlements[type].available ? 1 : 0);
      }
    }
  });

  it('cites a provision for every rule, extension and acknowledgement', () => {
    for (const r of DEADLINE_RULES) {
      expect(r.citation.length).toBeGreaterThan(5);
      expect(r.rule.length).toBeGreaterThan(20);
      if (r.extension) expect(r.extension.citation.length).toBeGreaterThan(5);
      if (r.acknowledge) expect(r.acknowledge.citation.length).toBeGreaterThan(5);
    }
  });
});

// received → expected per regime and type. Weekdays of 2026: 1 Jan is a Thursday.
type Case = [label: string, options: DeadlineOptions, dueAt: string, extra?: { acknowledgeBy?: string; extendableTo?: string }];
const cases: Case[] = [
  ['GDPR 31 Jan → 28 Feb', { regime: 'GDPR', type: 'access', receivedAt: '2026-01-31T10:00:00.000Z' }, '2026-02-28T10:00:00.000Z', { extendableTo: '2026-04-28T10:00:00.000Z' }],
  ['GDPR 31 Jan of a leap year → 29 Feb', { regime: 'GDPR', type: 'access', receivedAt: '2028-01-31T10:00:00.000Z' }, '2028-02-29T10:00:00.000Z'],
  ['GDPR 30 Mar → 30 Apr', { regime: 'GDPR', type: 'erasure', receivedAt: '2026-03-30T08:15:00.000Z' }, '2026-04-30T08:15:00.000Z', { extendableTo: '2026-06-30T08:15:00.000Z' }],
  ['GDPR 31 Mar → 30 Apr', { regime: 'GDPR', type: 'objection', receivedAt: '2026-03-31T23:59:59.999Z' }, '2026-04-30T23:59:59.999Z'],
  ['GDPR 15 Dec → 15 Jan across the year', { regime: 'GDPR', type: 'portability', receivedAt: '2026-12-15T12:00:00.000Z' }, '2027-01-15T12:00:00.000Z'],
  ['GDPR extension adds two months to the original deadline', { regime: 'GDPR', type: 'access', receivedAt: '2026-01-31T10:00:00.000Z', extended: true }, '2026-04-28T10:00:00.000Z'],
  ['GDPR ignores a pause (the clock runs from receipt)', { regime: 'GDPR', type: 'access', receivedAt: '2026-03-02T09:00:00.000Z', pausedMs: 5 * DAY }, '2026-04-02T09:00:00.000Z'],
  ['UK 2 Mar → 2 Apr', { regime: 'UK_GDPR', type: 'access', receivedAt: '2026-03-02T09:00:00.000Z' }, '2026-04-02T09:00:00.000Z', { extendableTo: '2026-06-02T09:00:00.000Z' }],
  ['UK pause of 5 days shifts the due date by 5 days', { regime: 'UK_GDPR', type: 'access', receivedAt: '2026-03-02T09:00:00.000Z', pausedMs: 5 * DAY }, '2026-04-07T09:00:00.000Z'],
  ['UK 31 Jan → 28 Feb, a Saturday → Monday 2 Mar', { regime: 'UK_GDPR', type: 'access', receivedAt: '2026-01-31T08:00:00.000Z' }, '2026-03-02T08:00:00.000Z'],
  [
    'UK 25 Nov → 25 Dec, bank holidays 25 and 28 Dec → 29 Dec',
    { regime: 'UK_GDPR', type: 'erasure', receivedAt: '2026-11-25T08:00:00.000Z', holidays: ['2026-12-25', '2026-12-28'] },
    '2026-12-29T08:00:00.000Z',
  ],
  [
    'CCPA 45 days across two month ends',
    { regime: 'CCPA', type: 'access', receivedAt: '2026-01-20T15:30:00.000Z' },
    '2026-03-06T15:30:00.000Z',
    { acknowledgeBy: '2026-02-03T15:30:00.000Z', extendableTo: '2026-04-20T15:30:00.000Z' },
  ],
  ['CCPA 45 days across a leap day', { regime: 'CCPA', type: 'erasure', receivedAt: '2028-02-01T00:00:00.000Z' }, '2028-03-17T00:00:00.000Z'],
  ['CCPA extension: 90 days from receipt', { regime: 'CCPA', type: 'rectification', receivedAt: '2026-01-20T15:30:00.000Z', extended: true }, '2026-04-20T15:30:00.000Z'],
  ['CCPA ignores a pause for verification (11 CCR §7021(b))', { regime: 'CCPA', type: 'access', receivedAt: '2026-01-20T15:30:00.000Z', pausedMs: 9 * DAY }, '2026-03-06T15:30:00.000Z'],
  [
    'CCPA received Friday: acknowledge within 10 business days → Friday two weeks on',
    { regime: 'CCPA', type: 'access', receivedAt: '2026-01-02T16:00:00.000Z' },
    '2026-02-16T16:00:00.000Z',
    { acknowledgeBy: '2026-01-16T16:00:00.000Z' },
  ],
  [
    'CCPA received Saturday: acknowledgement counts from Monday',
    { regime: 'CCPA', type: 'portability', receivedAt: '2026-01-03T16:00:00.000Z' },
    '2026-02-17T16:00:00.000Z',
    { acknowledgeBy: '2026-01-16T16:00:00.000Z' },
  ],
  ['CCPA opt-out: 15 business days', { regime: 'CCPA', type: 'opt_out', receivedAt: '2026-11-16T12:00:00.000Z' }, '2026-12-07T12:00:00.000Z'],
  [
    'CCPA opt-out: 15 business days with Thanksgiving holidays',
    { regime: 'CCPA', type: 'opt_out', receivedAt: '2026-11-16T12:00:00.000Z', holidays: ['2026-11-26', '2026-11-27'] },
    '2026-12-09T12:00:00.000Z',
  ],
  ['Virginia model: 45 days', { regime: 'VCDPA', type: 'access', receivedAt: '2026-12-01T08:00:00.000Z' }, '2027-01-15T08:00:00.000Z', { extendableTo: '2027-03-01T08:00:00.000Z' }],
  ['Virginia model: opt-out 45 days', { regime: 'VCDPA', type: 'opt_out', receivedAt: '2026-12-01T08:00:00.000Z' }, '2027-01-15T08:00:00.000Z'],
  ['Virginia model: extended to 90 days', { regime: 'VCDPA', type: 'erasure', receivedAt: '2026-12-01T08:00:00.000Z', extended: true }, '2027-03-01T08:00:00.000Z'],
  ['LGPD access: 15 days', { regime: 'LGPD', type: 'access', receivedAt: '2026-02-20T08:00:00.000Z' }, '2026-03-07T08:00:00.000Z'],
  ['LGPD erasure: 15 days (default)', { regime: 'LGPD', type: 'erasure', receivedAt: '2026-12-20T08:00:00.000Z' }, '2027-01-04T08:00:00.000Z'],
  ['PIPEDA: 30 days', { regime: 'PIPEDA', type: 'access', receivedAt: '2026-02-10T08:00:00.000Z' }, '2026-03-12T08:00:00.000Z', { extendableTo: '2026-04-11T08:00:00.000Z' }],
  ['PIPEDA: 30 + 30 days', { regime: 'PIPEDA', type: 'rectification', receivedAt: '2026-02-10T08:00:00.000Z', extended: true }, '2026-04-11T08:00:00.000Z'],
  ['offsets are normalised to UTC', { regime: 'GDPR', type: 'access', receivedAt: '2026-01-31T01:00:00+02:00' }, '2026-02-28T23:00:00.000Z'],
];

describe('computeDeadline: table of cases', () => {
  it.each(cases)('%s', (_label, options, dueAt, extra) => {
    const d = computeDeadline(options);
    expect(d.dueAt).toBe(dueAt);
    if (extra?.acknowledgeBy !== undefined) expect(d.acknowledgeBy).toBe(extra.acknowledgeBy);
    if (extra?.extendableTo !== undefined) expect(d.extendableTo).toBe(extra.extendableTo);
    expect(d.citation.length).toBeGreaterThan(5);
    expect(d.rule.length).toBeGreaterThan(20);
  });

  it('cites the article and describes the rule', () => {
    const d = computeDeadline({ regime: 'GDPR', type: 'access', receivedAt: '2026-03-30T00:00:00.000Z' });
    expect(d.citation).toBe('GDPR Art. 12(3)');
    expect(d.rule).toContain('1182/71');
    expect(computeDeadline({ regime: 'PIPEDA', type: 'access', receivedAt: '2026-03-30T00:00:00.000Z', extended: true }).citation).toBe('PIPEDA s. 8(3); Sch. 1, Principle 4.9; PIPEDA s. 8(4)');
  });

  it('gives the extension notice deadline as the original deadline, and no acknowledgement where none is required', () => {
    const d = computeDeadline({ regime: 'GDPR', type: 'access', receivedAt: '2026-01-31T10:00:00.000Z', extended: true });
    expect(d.extensionNoticeBy).toBe('2026-02-28T10:00:00.000Z');
    expect(d.acknowledgeBy).toBeUndefined();
    const optOut = computeDeadline({ regime: 'CCPA', type: 'opt_out', receivedAt: '2026-01-31T10:00:00.000Z' });
    expect(optOut.extendableTo).toBeUndefined();
    expect(optOut.acknowledgeBy).toBeUndefined();
  });

  it.each<[string, DeadlineOptions]>([
    ['a request the regime does not grant', { regime: 'GDPR', type: 'opt_out', receivedAt: '2026-01-01T00:00:00.000Z' }],
    ['a malformed instant', { regime: 'GDPR', type: 'access', receivedAt: '2026-01-01' }],
    ['an impossible date', { regime: 'GDPR', type: 'access', receivedAt: '2026-02-30T00:00:00.000Z' }],
    ['a negative pause', { regime: 'UK_GDPR', type: 'access', receivedAt: '2026-01-01T00:00:00.000Z', pausedMs: -1 }],
    ['a non-finite pause', { regime: 'UK_GDPR', type: 'access', receivedAt: '2026-01-01T00:00:00.000Z', pausedMs: Number.POSITIVE_INFINITY }],
    ['a malformed holiday', { regime: 'CCPA', type: 'opt_out', receivedAt: '2026-01-01T00:00:00.000Z', holidays: ['25/12/2026'] }],
    ['an extension where none exists', { regime: 'CCPA', type: 'opt_out', receivedAt: '2026-01-01T00:00:00.000Z', extended: true }],
  ])('refuses %s with CST_ERR_VALIDATION', (_label, options) => {
    expect(() => computeDeadline(options)).toThrow(expect.objectContaining({ code: 'CST_ERR_VALIDATION' }));
    try {
      computeDeadline(options);
    } catch (err) {
      expect(isCustodianError(err, 'CST_ERR_VALIDATION')).toBe(true);
    }
  });
});

describe('extensionFor and pauses', () => {
  it.each<[Regime, RequestType, string | undefined]>([
    ['GDPR', 'access', '2 months'],
    ['UK_GDPR', 'erasure', '2 months'],
    ['CCPA', 'access', '45 days'],
    ['CCPA', 'opt_out', undefined],
    ['VCDPA', 'opt_out', '45 days'],
    ['LGPD', 'access', undefined],
    ['PIPEDA', 'access', '30 days'],
    ['PIPEDA', 'opt_out', undefined],
    ['GDPR', 'opt_out', undefined],
  ])('%s %s extends by %s', (regime, type, expected) => {
    const e = extensionFor(regime, type);
    expect(e === undefined ? undefined : `${e.period.amount} ${e.period.unit}`).toBe(expected);
  });

  it('pauses the clock for identity checks in the UK only', () => {
    expect(REGIMES.filter(pausesWhileAwaitingVerification)).toEqual(['UK_GDPR']);
  });

  it('sums pauses, counting overlaps once and an open pause up to now', () => {
    const now = Date.parse('2026-03-20T00:00:00.000Z');
    expect(totalPausedMs([], now)).toBe(0);
    expect(
      totalPausedMs(
        [
          { from: '2026-03-02T00:00:00.000Z', to: '2026-03-05T00:00:00.000Z' },
          { from: '2026-03-04T00:00:00.000Z', to: '2026-03-06T00:00:00.000Z' },
          { from: '2026-03-18T00:00:00.000Z' },
        ],
        now,
      ),
    ).toBe(6 * DAY);
    expect(totalPausedMs([{ from: '2026-03-05T00:00:00.000Z', to: '2026-03-02T00:00:00.000Z' }], now)).toBe(0);
  });

  it('feeds computeDeadline: a UK request awaiting ID from day 0 to day 4 is due 4 days later', () => {
    const receivedAt = '2026-05-05T09:00:00.000Z';
    const paused = totalPausedMs([{ from: receivedAt, to: '2026-05-09T09:00:00.000Z' }], Date.parse('2026-05-20T00:00:00.000Z'));
    expect(computeDeadline({ regime: 'UK_GDPR', type: 'access', receivedAt, pausedMs: paused }).dueAt).toBe('2026-06-09T09:00:00.000Z');
  });
});

describe('isOverdue and isDueSoon', () => {
  const dueAt = '2026-04-30T08:15:00.000Z';
  it.each<[string, boolean, boolean]>([
    ['2026-04-20T08:15:00.000Z', false, false],
    ['2026-04-28T08:15:00.000Z', false, true],
    ['2026-04-30T08:15:00.000Z', false, true],
    ['2026-04-30T08:15:00.001Z', true, false],
  ])('at %s: overdue %s, due soon (3 days) %s', (now, overdue, soon) => {
    expect(isOverdue(dueAt, now)).toBe(overdue);
    expect(isOverdue(dueAt, Date.parse(now))).toBe(overdue);
    expect(isDueSoon(dueAt, now, 3 * DAY)).toBe(soon);
  });
});

describe('business days', () => {
  it('skips weekends and given holidays', () => {
    expect(isBusinessDay(Date.parse('2026-01-02T12:00:00.000Z'))).toBe(true);
    expect(isBusinessDay(Date.parse('2026-01-03T12:00:00.000Z'))).toBe(false);
    expect(isBusinessDay(Date.parse('2026-01-04T12:00:00.000Z'))).toBe(false);
    expect(isBusinessDay(Date.parse('2026-12-25T12:00:00.000Z'), ['2026-12-25'])).toBe(false);
    expect(new Date(addBusinessDays(Date.parse('2026-01-02T16:00:00.000Z'), 1)).toISOString()).toBe('2026-01-05T16:00:00.000Z');
    expect(new Date(nextBusinessDay(Date.parse('2026-01-03T16:00:00.000Z'))).toISOString()).toBe('2026-01-05T16:00:00.000Z');
  });
});

// 1990–2100: covers leap years including 2000 and 2100 (not a leap year).
const instantArb = fc.integer({ min: Date.parse('1990-01-01T00:00:00.000Z'), max: Date.parse('2100-12-31T23:59:59.999Z') }).map((ms) => new Date(ms).toISOString());
const grantedArb = fc.constantFrom(...granted);
const holidaysArb = fc.array(
  fc.integer({ min: Date.parse('1990-01-01T00:00:00.000Z'), max: Date.parse('2101-12-31T00:00:00.000Z') }).map((ms) => new Date(ms).toISOString().slice(0, 10)),
  { maxLength: 30 },
);
const pausedArb = fc.integer({ min: 0, max: 120 * DAY });

describe('computeDeadline: properties', () => {
  it('the due date is always after receipt, and the acknowledgement before or at it', () => {
    fc.assert(
      fc.property(grantedArb, instantArb, pausedArb, fc.boolean(), holidaysArb, ([regime, type], receivedAt, pausedMs, wantExtension, holidays) => {
        const extended = wantExtension && extensionFor(regime, type) !== undefined;
        const d = computeDeadline({ regime, type, receivedAt, pausedMs, extended, holidays });
        expect(Date.parse(d.dueAt)).toBeGreaterThan(Date.parse(receivedAt));
        if (d.acknowledgeBy !== undefined) {
          expect(Date.parse(d.acknowledgeBy)).toBeGreaterThan(Date.parse(receivedAt));
          expect(Date.parse(d.acknowledgeBy)).toBeLessThanOrEqual(Date.parse(d.dueAt));
        }
        expect(d.dueAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      }),
    );
  });

  it('an extension never shortens the deadline', () => {
    fc.assert(
      fc.property(grantedArb, instantArb, pausedArb, holidaysArb, ([regime, type], receivedAt, pausedMs, holidays) => {
        const base = computeDeadline({ regime, type, receivedAt, pausedMs, holidays });
        if (base.extendableTo === undefined) return;
        const ext = computeDeadline({ regime, type, receivedAt, pausedMs, holidays, extended: true });
        expect(Date.parse(base.extendableTo)).toBeGreaterThan(Date.parse(base.dueAt));
        expect(ext.dueAt).toBe(base.extendableTo);
        expect(Date.parse(base.extensionNoticeBy!)).toBeLessThanOrEqual(Date.parse(base.dueAt));
      }),
    );
  });

  it('a pause never shortens the deadline, and moves it only where the clock stops', () => {
    fc.assert(
      fc.property(grantedArb, instantArb, pausedArb, ([regime, type], receivedAt, pausedMs) => {
        const base = Date.parse(computeDeadline({ regime, type, receivedAt }).dueAt);
        const paused = Date.parse(computeDeadline({ regime, type, receivedAt, pausedMs }).dueAt);
        expect(paused).toBeGreaterThanOrEqual(base);
        if (!pausesWhileAwaitingVerification(regime)) expect(paused).toBe(base);
      }),
    );
  });

  it('business-day results never fall on a weekend or a given holiday', () => {
    fc.assert(
      fc.property(instantArb, holidaysArb, fc.constantFrom<RequestType>('access', 'erasure', 'opt_out'), (receivedAt, holidays, type) => {
        const ccpa = computeDeadline({ regime: 'CCPA', type, receivedAt, holidays });
        const uk = computeDeadline({ regime: 'UK_GDPR', type: 'access', receivedAt, holidays, extended: true });
        const businessDayResults = [ccpa.acknowledgeBy, type === 'opt_out' ? ccpa.dueAt : undefined, uk.dueAt];
        for (const at of businessDayResults) {
          if (at === undefined) continue;
          const day = new Date(at).getUTCDay();
          expect(day).not.toBe(0);
          expect(day).not.toBe(6);
          expect(holidays).not.toContain(at.slice(0, 10));
        }
      }),
    );
  });

  it('the month rule lands in the next month on a day no later than the day of receipt, at the same time', () => {
    fc.assert(
      fc.property(instantArb, fc.constantFrom<RequestType>('access', 'erasure', 'objection'), (receivedAt, type) => {
        const r = new Date(receivedAt);
        const d = new Date(computeDeadline({ regime: 'GDPR', type, receivedAt }).dueAt);
        expect(d.getUTCDate()).toBeLessThanOrEqual(r.getUTCDate());
        expect((d.getUTCFullYear() * 12 + d.getUTCMonth()) - (r.getUTCFullYear() * 12 + r.getUTCMonth())).toBe(1);
        expect(d.toISOString().slice(10)).toBe(r.toISOString().slice(10));
        // Only a shorter month clamps the day: otherwise it is the same date.
        const daysInTarget = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
        expect(d.getUTCDate()).toBe(Math.min(r.getUTCDate(), daysInTarget));
      }),
    );
  });

  it('a UK pause counts the month from receipt plus the pause; within one month it shifts the deadline by the pause', () => {
    fc.assert(
      fc.property(instantArb, fc.integer({ min: 0, max: 60 }), (receivedAt, days) => {
        const r = new Date(receivedAt);
        const shifted = new Date(r.getTime() + days * DAY);
        const plain = Date.parse(computeDeadline({ regime: 'GDPR', type: 'access', receivedAt }).dueAt);
        const plainShifted = Date.parse(computeDeadline({ regime: 'GDPR', type: 'access', receivedAt: shifted.toISOString() }).dueAt);
        const uk = Date.parse(computeDeadline({ regime: 'UK_GDPR', type: 'access', receivedAt, pausedMs: days * DAY }).dueAt);
        expect(uk).toBe(nextBusinessDay(plainShifted));
        expect(uk).toBeGreaterThanOrEqual(plain);
        if (shifted.getUTCMonth() === r.getUTCMonth() && shifted.getUTCDate() <= 28) expect(plainShifted - plain).toBe(days * DAY);
      }),
    );
  });

  it('every granted request has a rule', () => {
    for (const [regime, type] of granted) expect(deadlineRule(regime, type)).toBeDefined();
  });
});
