import { addBusinessDays } from './deadlines.js';
import { toIso } from './time.js';

/**
 * Personal data breach notification windows, as data with the provision each comes from. No I/O: the breach
 * module computes countdowns from these and the incident's awareness time (`detectedAt`).
 *
 * These are the rules Custodian ships; they are a starting point for counsel, not legal advice. Laws of the
 * US states change often (several added fixed day counts in 2023–2025): check the citation before relying on it.
 */

/** Who must be told. `csirt` is the NIS2 CSIRT or competent authority (NIS2 Art. 23(1)). */
export const BREACH_AUDIENCES = ['authority', 'individuals', 'csirt'] as const;
export type BreachAudience = (typeof BREACH_AUDIENCES)[number];

/** NIS2 reporting stages (Art. 23(4)); the other rules have one stage, `notification`. */
export const BREACH_STAGES = ['early_warning', 'notification', 'final_report'] as const;
export type BreachStage = (typeof BREACH_STAGES)[number];

/** The outcome of a breach risk assessment, ordered: each includes what the one before requires. */
export const BREACH_OUTCOMES = ['none', 'authority', 'authority_and_individuals'] as const;
export type BreachOutcome = (typeof BREACH_OUTCOMES)[number];

/** The rank of an outcome in {@link BREACH_OUTCOMES} (none 0 … authority_and_individuals 2). */
export function outcomeRank(outcome: BreachOutcome): number {
  return BREACH_OUTCOMES.indexOf(outcome);
}

/**
 * When a rule applies:
 * - `risk`: the assessment requires notifying the authority (GDPR-style "likely to result in a risk");
 * - `high_risk`: the assessment requires notifying individuals ("likely to result in a high risk");
 * - `nis2`: the incident is flagged as a significant incident under NIS2;
 * - `breach`: any breach of the covered personal information (US state statutes), unless the data was
 *   encrypted and the key was not compromised (the statutes' encryption safe harbour).
 */
export type BreachTrigger = 'risk' | 'high_risk' | 'nis2' | 'breach';

/** How long the notifier has, counted from awareness (discovery, determination). Null: no fixed period. */
export type BreachPeriod = { readonly hours: number } | { readonly days: number } | { readonly businessDays: number } | null;

/** One notification duty. */
export interface BreachDeadlineRule {
  /** Stable id, e.g. `EU.gdpr.authority`. */
  readonly id: string;
  /** Jurisdiction code as in `core/jurisdictions.ts` (EU, UK, BR, US-CA, …). */
  readonly jurisdiction: string;
  readonly regime: string;
  readonly audience: BreachAudience;
  readonly stage: BreachStage;
  readonly trigger: BreachTrigger;
  readonly period: BreachPeriod;
  /** The words of the law for the time limit, e.g. "without undue delay and, where feasible, not later than 72 hours". */
  readonly standard: string;
  /** Only when at least this many people (residents of the jurisdiction) are affected; the incident's estimate is used. */
  readonly minAffected?: number;
  readonly citation: string;
}

const rules: BreachDeadlineRule[] = [
  // GDPR Art. 33(1): the controller notifies the supervisory authority without undue delay and, where feasible,
  // not later than 72 hours after having become aware of it, unless the breach is unlikely to result in a risk.
  { id: 'EU.gdpr.authority', jurisdiction: 'EU', regime: 'GDPR', audience: 'authority', stage: 'notification', trigger: 'risk', period: { hours: 72 }, standard: 'without undue delay and, where feasible, not later than 72 hours after having become aware of it', citation: 'GDPR Art. 33(1)' },
  // GDPR Art. 34(1): high risk → the data subjects without undue delay (no fixed number of hours).
  { id: 'EU.gdpr.individuals', jurisdiction: 'EU', regime: 'GDPR', audience: 'individuals', stage: 'notification', trigger: 'high_risk', period: null, standard: 'without undue delay', citation: 'GDPR Art. 34(1)' },
  { id: 'UK.ukgdpr.authority', jurisdiction: 'UK', regime: 'UK GDPR', audience: 'authority', stage: 'notification', trigger: 'risk', period: { hours: 72 }, standard: 'without undue delay and, where feasible, not later than 72 hours after having become aware of it (to the ICO)', citation: 'UK GDPR Art. 33(1)' },
  { id: 'UK.ukgdpr.individuals', jurisdiction: 'UK', regime: 'UK GDPR', audience: 'individuals', stage: 'notification', trigger: 'high_risk', period: null, standard: 'without undue delay', citation: 'UK GDPR Art. 34(1)' },
  // NIS2 Art. 23(4): significant incidents — early warning within 24 h, incident notification within 72 h of
  // becoming aware, final report within one month after the notification (approximated here as 30 days from awareness + 72 h).
  { id: 'EU.nis2.early_warning', jurisdiction: 'EU', regime: 'NIS2', audience: 'csirt', stage: 'early_warning', trigger: 'nis2', period: { hours: 24 }, standard: 'without undue delay and in any event within 24 hours of becoming aware of the significant incident', citation: 'Directive (EU) 2022/2555 (NIS2) Art. 23(4)(a)' },
  { id: 'EU.nis2.notification', jurisdiction: 'EU', regime: 'NIS2', audience: 'csirt', stage: 'notification', trigger: 'nis2', period: { hours: 72 }, standard: 'without undue delay and in any event within 72 hours of becoming aware of the significant incident', citation: 'Directive (EU) 2022/2555 (NIS2) Art. 23(4)(b)' },
  { id: 'EU.nis2.final_report', jurisdiction: 'EU', regime: 'NIS2', audience: 'csirt', stage: 'final_report', trigger: 'nis2', period: { hours: 72 + 30 * 24 }, standard: 'not later than one month after the submission of the incident notification', citation: 'Directive (EU) 2022/2555 (NIS2) Art. 23(4)(d)' },
  // LGPD Art. 48 with the ANPD's incident regulation: 3 business days from knowledge, to the ANPD and to the holders.
  { id: 'BR.lgpd.authority', jurisdiction: 'BR', regime: 'LGPD', audience: 'authority', stage: 'notification', trigger: 'risk', period: { businessDays: 3 }, standard: 'within 3 business days of becoming aware that the incident affected personal data', citation: 'LGPD Art. 48; Resolution CD/ANPD No. 15/2024, Art. 6' },
  { id: 'BR.lgpd.individuals', jurisdiction: 'BR', regime: 'LGPD', audience: 'individuals', stage: 'notification', trigger: 'risk', period: { businessDays: 3 }, standard: 'within 3 business days of becoming aware that the incident affected personal data', citation: 'LGPD Art. 48; Resolution CD/ANPD No. 15/2024, Art. 9' },
  // California: residents in the most expedient time possible and without unreasonable delay; SB 446 (2025)
  // added an outer limit of 30 calendar days from discovery, operative 2026-01-01. Attorney General: a sample
  // copy when more than 500 residents are notified.
  { id: 'US-CA.individuals', jurisdiction: 'US-CA', regime: 'Cal. Civ. Code §1798.82', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 30 }, standard: 'in the most expedient time possible and without unreasonable delay, within 30 calendar days of discovery', citation: 'Cal. Civ. Code §1798.82(a) (as amended by SB 446, 2025)' },
  { id: 'US-CA.authority', jurisdiction: 'US-CA', regime: 'Cal. Civ. Code §1798.82', audience: 'authority', stage: 'notification', trigger: 'breach', period: null, standard: 'a sample copy of the notice to the Attorney General when more than 500 California residents are notified', minAffected: 501, citation: 'Cal. Civ. Code §1798.82(f)' },
  // New York: 30 days after discovery since the December 2024 amendment; AG, Department of State and State Police notified too.
  { id: 'US-NY.individuals', jurisdiction: 'US-NY', regime: 'N.Y. Gen. Bus. Law §899-aa', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 30 }, standard: 'in the most expedient time possible and without unreasonable delay, within 30 days after discovery', citation: 'N.Y. Gen. Bus. Law §899-aa(2) (as amended 2024)' },
  { id: 'US-NY.authority', jurisdiction: 'US-NY', regime: 'N.Y. Gen. Bus. Law §899-aa', audience: 'authority', stage: 'notification', trigger: 'breach', period: null, standard: 'the Attorney General, the Department of State and the Division of State Police, as to timing, content and distribution of the notices', citation: 'N.Y. Gen. Bus. Law §899-aa(8)(a)' },
  // Texas: individuals within 60 days of determining the breach; the Attorney General within 30 days when ≥ 250 Texans.
  { id: 'US-TX.individuals', jurisdiction: 'US-TX', regime: 'Tex. Bus. & Com. Code §521.053', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 60 }, standard: 'without unreasonable delay and in each case not later than the 60th day after the date on which the breach was determined', citation: 'Tex. Bus. & Com. Code §521.053(b)' },
  { id: 'US-TX.authority', jurisdiction: 'US-TX', regime: 'Tex. Bus. & Com. Code §521.053', audience: 'authority', stage: 'notification', trigger: 'breach', period: { days: 30 }, standard: 'as soon as practicable and not later than the 30th day after the date on which the breach was determined, when at least 250 Texas residents are affected', minAffected: 250, citation: 'Tex. Bus. & Com. Code §521.053(i)' },
  // Colorado: residents and (≥ 500 residents) the Attorney General, not later than 30 days after determination.
  { id: 'US-CO.individuals', jurisdiction: 'US-CO', regime: 'C.R.S. §6-1-716', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 30 }, standard: 'in the most expedient time possible and without unreasonable delay, but not later than 30 days after the date of determination that a security breach occurred', citation: 'C.R.S. §6-1-716(2)(a)' },
  { id: 'US-CO.authority', jurisdiction: 'US-CO', regime: 'C.R.S. §6-1-716', audience: 'authority', stage: 'notification', trigger: 'breach', period: { days: 30 }, standard: 'not later than 30 days after the date of determination, when 500 or more Colorado residents are affected', minAffected: 500, citation: 'C.R.S. §6-1-716(2)(f)' },
  // Florida: individuals and (≥ 500) the Department of Legal Affairs, no later than 30 days after determination.
  { id: 'US-FL.individuals', jurisdiction: 'US-FL', regime: 'Fla. Stat. §501.171', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 30 }, standard: 'as expeditiously as practicable and without unreasonable delay, but no later than 30 days after the determination of a breach', citation: 'Fla. Stat. §501.171(4)(a)' },
  { id: 'US-FL.authority', jurisdiction: 'US-FL', regime: 'Fla. Stat. §501.171', audience: 'authority', stage: 'notification', trigger: 'breach', period: { days: 30 }, standard: 'as expeditiously as practicable, but no later than 30 days after the determination of the breach, when 500 or more Florida residents are affected', minAffected: 500, citation: 'Fla. Stat. §501.171(3)(a)' },
];

/** Every rule, frozen. */
export const BREACH_DEADLINE_RULES: readonly BreachDeadlineRule[] = Object.freeze(rules.map((r) => Object.freeze(r)));

/** Jurisdiction codes with at least one breach rule. */
export const BREACH_JURISDICTIONS: readonly string[] = [...new Set(rules.map((r) => r.jurisdiction))];

/** What a deadline computation needs to know of an incident. */
export interface BreachDeadlineInput {
  readonly jurisdictions: readonly string[];
  /** When the controller became aware (ISO instant): every window runs from it. */
  readonly detectedAt: string;
  readonly outcome: BreachOutcome;
  readonly nis2: boolean;
  readonly encrypted: boolean;
  readonly keysCompromised: boolean;
  /** Estimated number of people affected, or null when unknown (thresholds then count as met). */
  readonly affectedCount: number | null;
  /** Public holidays (ISO dates) skipped by business-day periods. */
  readonly holidays?: readonly string[];
}

/** One applicable duty with its due time. */
export interface BreachDeadline {
  readonly ruleId: string;
  readonly jurisdiction: string;
  readonly regime: string;
  readonly audience: BreachAudience;
  readonly stage: BreachStage;
  /** Null: no fixed period ("without undue delay"): no countdown, but the duty stands. */
  readonly dueAt: string | null;
  readonly standard: string;
  readonly citation: string;
}

/** The due time of `period` from `fromMs`, or null. */
export function breachDueAt(fromMs: number, period: BreachPeriod, holidays: readonly string[] = []): number | null {
  if (period === null) return null;
  if ('hours' in period) return fromMs + period.hours * 3_600_000;
  if ('days' in period) return fromMs + period.days * 86_400_000;
  return addBusinessDays(fromMs, period.businessDays, holidays);
}

/** Whether `rule` applies to an incident described by `input`. */
export function breachRuleApplies(rule: BreachDeadlineRule, input: BreachDeadlineInput): boolean {
  if (!input.jurisdictions.includes(rule.jurisdiction)) return false;
  if (rule.minAffected !== undefined && input.affectedCount !== null && input.affectedCount < rule.minAffected) return false;
  switch (rule.trigger) {
    case 'risk':
      return outcomeRank(input.outcome) >= outcomeRank('authority');
    case 'high_risk':
      return input.outcome === 'authority_and_individuals';
    case 'nis2':
      return input.nis2;
    case 'breach':
      // Encryption safe harbour of the US statutes (e.g. Cal. Civ. Code §1798.82(a), C.R.S. §6-1-716(1)(g)).
      return !(input.encrypted && !input.keysCompromised) && (input.affectedCount === null || input.affectedCount > 0);
  }
}

/**
 * The notification duties of an incident with their due times, in due order (open-ended ones last).
 * O(R) for R rules (plus the business days counted).
 *
 * @example breachDeadlines({ jurisdictions: ['EU'], detectedAt: '2026-03-02T09:00:00.000Z', outcome: 'authority', nis2: false, encrypted: false, keysCompromised: false, affectedCount: 10 })
 * // [{ ruleId: 'EU.gdpr.authority', dueAt: '2026-03-05T09:00:00.000Z', … }]
 */
export function breachDeadlines(input: BreachDeadlineInput): BreachDeadline[] {
  const from = Date.parse(input.detectedAt);
  const out: BreachDeadline[] = [];
  for (const rule of BREACH_DEADLINE_RULES) {
    if (!breachRuleApplies(rule, input)) continue;
    const due = breachDueAt(from, rule.period, input.holidays);
    out.push({ ruleId: rule.id, jurisdiction: rule.jurisdiction, regime: rule.regime, audience: rule.audience, stage: rule.stage, dueAt: due === null ? null : toIso(due), standard: rule.standard, citation: rule.citation });
  }
  return out.sort((a, b) => (a.dueAt === null ? 1 : 0) - (b.dueAt === null ? 1 : 0) || (a.dueAt ?? '').localeCompare(b.dueAt ?? '') || a.ruleId.localeCompare(b.ruleId));
}

/** Default escalation points: raised when this much time is left before a due time (24 h and 6 h). */
export const DEFAULT_ESCALATION_POINTS_MS: readonly number[] = [24 * 3_600_000, 6 * 3_600_000];
