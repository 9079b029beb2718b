import { addBusinessDays } from './deadlines.js';
import { addMonths, toIso } from './time.js';

/**
 * Personal data breach notification windows, as data with the provision each comes from. No I/O: the breach
 * module computes countdowns from these and the incident's awareness time (`detectedAt`).
 *
 * These are the rules Custodian ships; they are a starting point for counsel, not legal advice. Laws of the
 * US states change often (several added fixed day counts in 2023–2025): check the citation before relying on it.
 * Each rule says how far it was checked (`verification`, `sources`, `verificationNote`; docs/breach.md lists them):
 * most were confirmed only by secondary sources, and sub-section numbers no source showed are marked in the citation.
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
export type BreachPeriod = { readonly hours: number } | { readonly days: number } | { readonly businessDays: number } | { readonly months: number } | null;

/**
 * A duty counted from an earlier notification rather than from awareness (e.g. NIS2's final report: one month
 * after the incident notification): from the first recorded notification of the same jurisdiction to `audience`
 * at `stage`, or — until one is recorded — from that duty's own due time (the latest the notice may go).
 */
export interface BreachAfter {
  readonly audience: BreachAudience;
  readonly stage: BreachStage;
  readonly period: NonNullable<BreachPeriod>;
}

/**
 * How far a rule (window, trigger, citation) was checked against public text. Checked on
 * {@link BREACH_RULES_CHECKED_ON}; each rule lists the pages in `sources`.
 * - `law_text`: against the words of the provision itself (the official text or a verbatim reproduction of it);
 * - `secondary`: against secondary sources only (law-firm, regulator and trade summaries) that agree with each
 *   other; the provision's own words were not seen, so the sub-section numbers may be off (see `verificationNote`);
 * - `unverified`: no source found confirms it: a placeholder for counsel to check.
 */
export type BreachRuleVerification = 'law_text' | 'secondary' | 'unverified';

/** When the rules' citations were last checked against public sources (ISO date). */
export const BREACH_RULES_CHECKED_ON = '2026-11-22';

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
  /** The provision. Parts no source confirmed are marked in the text itself ("[… unverified]"). */
  readonly citation: string;
  /** How the rule was checked ({@link BreachRuleVerification}). */
  readonly verification: BreachRuleVerification;
  /** Public pages that state the rule, the closest to the law's own text first. Empty when unverified. */
  readonly sources: readonly string[];
  /** What the sources left open, contradict, or what the window approximates. */
  readonly verificationNote?: string;
  /** Counted from an earlier notification (then `period` is the fallback from awareness, for reference only). */
  readonly after?: BreachAfter;
}

const rules: BreachDeadlineRule[] = [
  // GDPR Art. 33(1): the controller notifies the supervisory authority without undue delay and, where feasible,
  // not later than 72 hours after having become aware of it, unless the breach is unlikely to result in a risk.
  {
    id: 'EU.gdpr.authority', jurisdiction: 'EU', regime: 'GDPR', audience: 'authority', stage: 'notification', trigger: 'risk', period: { hours: 72 },
    standard: 'without undue delay and, where feasible, not later than 72 hours after having become aware of it', citation: 'GDPR Art. 33(1)',
    verification: 'law_text',
    sources: ['https://gdprlearninghub.com/article-33-gdpr/', 'https://www.legiscope.com/blog/gdpr-article-33-72-hours-eur-lex.html'],
  },
  // GDPR Art. 34(1): high risk → the data subjects without undue delay (no fixed number of hours).
  {
    id: 'EU.gdpr.individuals', jurisdiction: 'EU', regime: 'GDPR', audience: 'individuals', stage: 'notification', trigger: 'high_risk', period: null,
    standard: 'without undue delay', citation: 'GDPR Art. 34(1)',
    verification: 'law_text',
    sources: ['https://gdprlearninghub.com/?p=60972', 'https://overview.legal/laws/gdpr/art-34'],
  },
  {
    id: 'UK.ukgdpr.authority', jurisdiction: 'UK', regime: 'UK GDPR', audience: 'authority', stage: 'notification', trigger: 'risk', period: { hours: 72 },
    standard: 'without undue delay and, where feasible, not later than 72 hours after having become aware of it (to the ICO)', citation: 'UK GDPR Art. 33(1)',
    verification: 'secondary',
    sources: ['https://bifrostindex.ai/guides/united-kingdom/breach-notification', 'https://www.nibusinessinfo.co.uk/content/reporting-serious-breaches-personal-data', 'https://www.gdprledger.com/uk/guides/data-breach-notification-ico'],
    verificationNote: 'The UK GDPR text (legislation.gov.uk) and the ICO guide were not among the pages found; the summaries agree that Art. 33(1) mirrors the EU text with "the Commissioner" as the authority.',
  },
  {
    id: 'UK.ukgdpr.individuals', jurisdiction: 'UK', regime: 'UK GDPR', audience: 'individuals', stage: 'notification', trigger: 'high_risk', period: null,
    standard: 'without undue delay', citation: 'UK GDPR Art. 34(1)',
    verification: 'secondary',
    sources: ['https://www.nibusinessinfo.co.uk/content/reporting-serious-breaches-personal-data', 'https://cms2.cybermadesimple.co.uk/guides/uk-data-breach'],
    verificationNote: 'Secondary summaries confirm the high-risk threshold for telling individuals; the words "without undue delay" were seen only in the EU text of Art. 34(1).',
  },
  // NIS2 Art. 23(4): significant incidents — early warning within 24 h, incident notification within 72 h of
  // becoming aware, final report within one month after the submission of the incident notification.
  {
    id: 'EU.nis2.early_warning', jurisdiction: 'EU', regime: 'NIS2', audience: 'csirt', stage: 'early_warning', trigger: 'nis2', period: { hours: 24 },
    standard: 'without undue delay and in any event within 24 hours of becoming aware of the significant incident', citation: 'Directive (EU) 2022/2555 (NIS2) Art. 23(4)(a)',
    verification: 'law_text',
    sources: ['https://auditfront.pages.dev/frameworks/nis2/incident-reporting/art-23-4a', 'https://nis2-info.eu/article-23-reporting-obligations', 'https://www.sorena.io/artifacts/eu/nis2-directive/faq/24-hour-early-warning'],
    verificationNote: 'Member States transpose NIS2: the national law and the CSIRT route apply.',
  },
  {
    id: 'EU.nis2.notification', jurisdiction: 'EU', regime: 'NIS2', audience: 'csirt', stage: 'notification', trigger: 'nis2', period: { hours: 72 },
    standard: 'without undue delay and in any event within 72 hours of becoming aware of the significant incident', citation: 'Directive (EU) 2022/2555 (NIS2) Art. 23(4)(b)',
    verification: 'secondary',
    sources: ['https://docs.modulos.ai/frameworks/nis2/incident-reporting-and-communications', 'https://www.nis-2-templates.com/article-23-incident-notification/', 'https://intentgate.app/compliance/nis2'],
    verificationNote: 'The 72 hours from awareness and the point (b) are confirmed by summaries; the verbatim words of point (b) were not seen. Trust service providers: 24 hours (derogation in Art. 23(4)).',
  },
  {
    id: 'EU.nis2.final_report', jurisdiction: 'EU', regime: 'NIS2', audience: 'csirt', stage: 'final_report', trigger: 'nis2', period: { hours: 72 + 30 * 24 },
    after: { audience: 'csirt', stage: 'notification', period: { months: 1 } },
    standard: 'not later than one month after the submission of the incident notification', citation: 'Directive (EU) 2022/2555 (NIS2) Art. 23(4)(d)',
    verification: 'law_text',
    sources: ['https://auditfront.pages.dev/frameworks/nis2/incident-reporting/art-23-4d', 'https://docs.modulos.ai/frameworks/nis2/incident-reporting-and-communications'],
    verificationNote: 'The month runs from the recorded submission of the incident notification (until one is recorded, from its 72-hour deadline). Ongoing incidents: a progress report at that time and the final report within a month of handling the incident (Art. 23(4)(e)).',
  },
  // LGPD Art. 48 with the ANPD's incident regulation: 3 business days from knowledge, to the ANPD and to the holders.
  {
    id: 'BR.lgpd.authority', jurisdiction: 'BR', regime: 'LGPD', audience: 'authority', stage: 'notification', trigger: 'risk', period: { businessDays: 3 },
    standard: 'within 3 business days of the controller becoming aware that the incident affected personal data', citation: 'LGPD Art. 48; Resolution CD/ANPD No. 15/2024, Art. 6 [article number unverified]',
    verification: 'secondary',
    sources: ['https://trenchrossi.com/alertas-legais/regulamento-de-comunicacao-de-incidente-de-seguranca-e-publicado-pela-autoridade-nacional-de-protecao-de-dados-anpd', 'https://www.mattosfilho.com.br/unico/regulamento-incidente-seguranca/', 'https://bastilhocoelho.com.br/en/brazilian-dpa-publishes-a-resolution-on-the-notification-of-data-security-incidents/', 'https://mesquitabarros.com.br/lgpd-autoridade-nacional-aprovou-o-regulamento-de-comunicacao-de-incidente-de-seguranca', 'https://www.martinelli.adv.br/en/regulation-governing-the-reporting-of-security-incidents-by-anpd-national-data-protection-authority/', 'https://ppc.com.br/comunicacao-de-incidente-de-seguranca-regulamento-da-anpd'],
    verificationNote: 'Resolution of 24 April 2024, published and in force 26 April 2024. The article numbers were not seen in any source. Doubled (6 business days) for small processing agents; further information may follow within 20 business days. The duty applies only to incidents that may cause relevant risk or damage (Art. 5 of the regulation: significant effect on the holders plus sensitive, children\'s, elderly people\'s, financial, authentication, secret or large-scale data) — narrower than the GDPR-style outcome that triggers this rule.',
  },
  {
    id: 'BR.lgpd.individuals', jurisdiction: 'BR', regime: 'LGPD', audience: 'individuals', stage: 'notification', trigger: 'risk', period: { businessDays: 3 },
    standard: 'within 3 business days of the controller becoming aware that the incident affected personal data', citation: 'LGPD Art. 48; Resolution CD/ANPD No. 15/2024, Art. 9 [article number unverified]',
    verification: 'secondary',
    sources: ['https://cesconbarrieu.com.br/anpd-aprova-o-regulamento-de-comunicacao-de-incidente-de-seguranca', 'https://trenchrossi.com/alertas-legais/regulamento-de-comunicacao-de-incidente-de-seguranca-e-publicado-pela-autoridade-nacional-de-protecao-de-dados-anpd', 'https://bastilhocoelho.com.br/en/brazilian-dpa-publishes-a-resolution-on-the-notification-of-data-security-incidents/'],
    verificationNote: 'Same period as the notice to the ANPD; individual notice where the holders can be identified, otherwise a public notice for at least 3 months. The article number was not seen in any source; see BR.lgpd.authority for the narrower trigger.',
  },
  // California: residents within 30 calendar days of discovery or notification of the breach (SB 446, operative
  // 2026-01-01); the Attorney General gets a sample copy within 15 calendar days of notifying more than 500 residents.
  {
    id: 'US-CA.individuals', jurisdiction: 'US-CA', regime: 'Cal. Civ. Code §1798.82', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 30 },
    standard: 'in the most expedient time possible and without unreasonable delay, within 30 calendar days of discovery or notification of the breach', citation: 'Cal. Civ. Code §1798.82(a)(2) (as amended by SB 446, 2025; operative 2026-01-01)',
    verification: 'secondary',
    sources: ['https://dailyjournal.com/articles/388637-california-data-breach-law-tightens-with-30-day-deadline-raises-stakes-for-companies', 'https://www.lcwlegal.com/news/sb-446-requires-disclosure-of-data-breaches-to-consumers-within-30-days', 'https://www.dataprotectionreport.com/2025/11/california-tightens-data-breach-notification-timelines-imposes-30-day-notice-requirement/'],
    verificationNote: 'SB 446 signed 2025-10-03. The paragraph (a)(2) comes from one summary (Daily Journal). Delay is allowed for the legitimate needs of law enforcement and as necessary to determine the scope of the breach and restore the integrity of the system.',
  },
  {
    id: 'US-CA.authority', jurisdiction: 'US-CA', regime: 'Cal. Civ. Code §1798.82', audience: 'authority', stage: 'notification', trigger: 'breach', period: { days: 30 + 15 },
    after: { audience: 'individuals', stage: 'notification', period: { days: 15 } },
    standard: 'a sample copy of the notice to the Attorney General within 15 calendar days of notifying more than 500 California residents', minAffected: 501, citation: 'Cal. Civ. Code §1798.82(f) (as amended by SB 446, 2025; operative 2026-01-01)',
    verification: 'secondary',
    sources: ['https://www.lcwlegal.com/news/sb-446-requires-disclosure-of-data-breaches-to-consumers-within-30-days', 'https://dailyjournal.com/articles/388637-california-data-breach-law-tightens-with-30-day-deadline-raises-stakes-for-companies', 'https://vqis.net/californias-new-breach-notification-requirements-a-plain-language-overview/'],
    verificationNote: 'The 15 days run from the recorded notice to residents (until one is recorded, from its 30-day deadline).',
  },
  // New York: 30 days after discovery since the December 2024 amendment; AG, Department of State, State Police
  // (and, for DFS-covered entities, the Department of Financial Services) notified too.
  {
    id: 'US-NY.individuals', jurisdiction: 'US-NY', regime: 'N.Y. Gen. Bus. Law §899-aa', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 30 },
    standard: 'in the most expedient time possible and without unreasonable delay, provided that such notification shall be made within thirty days after the breach has been discovered', citation: 'N.Y. Gen. Bus. Law §899-aa(2) (as amended by S2659-B/A8872-A, effective 2024-12-21)',
    verification: 'secondary',
    sources: ['https://www.workplaceprivacyreport.com/2025/01/articles/data-breach-notification/new-york-enacts-immediate-updates-to-breach-notification-law/?utm_source=elinfonet', 'https://www.mondaq.com/unitedstates/security/1568554/new-yorks-newest-data-breach-notification-law-changes', 'https://www.covingtonblogs.com/2025/01/07/new-york-adopts-amendment-to-the-state-data-breach-notification-law/', 'https://proteuscyber.com/privacy-database/tag/ny-shield/law'],
    verificationNote: 'The amended words are quoted by a law-firm note; the subdivision 2 numbering is from the 2019 SHIELD Act text. Sources differ on the signing date (21 or 24 December 2024); effective on signing. Only the legitimate needs of law enforcement may now delay the notice (the scope/restore-integrity allowance was removed).',
  },
  {
    id: 'US-NY.authority', jurisdiction: 'US-NY', regime: 'N.Y. Gen. Bus. Law §899-aa', audience: 'authority', stage: 'notification', trigger: 'breach', period: null,
    standard: 'the state Attorney General, the Department of State and the Division of State Police (and the Department of Financial Services for entities it covers, under 23 NYCRR 500.17), as to the timing, content and distribution of the notices and the approximate number of affected persons', citation: 'N.Y. Gen. Bus. Law §899-aa(8)(a) (DFS added by S2659-B, 2024; limited to DFS-covered entities by S804, 2025)',
    verification: 'secondary',
    sources: ['https://docmagic.com/node/15518', 'https://www.bytebacklaw.com/2025/02/new-york-amends-its-data-breach-notification-law/', 'https://www.mondaq.com/unitedstates/security/1568554/new-yorks-newest-data-breach-notification-law-changes', 'https://proteuscyber.com/privacy-database/tag/ny-shield/law'],
    verificationNote: 'S804 signed 2025-02-14, retroactive to 2024-12-21. No separate period: the agencies are told when residents are notified. Paragraph 8(a) numbering is from the 2019 SHIELD Act text.',
  },
  // Texas: individuals within 60 days of determining the breach; the Attorney General within 30 days when ≥ 250 Texans.
  {
    id: 'US-TX.individuals', jurisdiction: 'US-TX', regime: 'Tex. Bus. & Com. Code §521.053', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 60 },
    standard: 'without unreasonable delay and in each case not later than the 60th day after the date on which the person determines that the breach occurred', citation: 'Tex. Bus. & Com. Code §521.053(b)',
    verification: 'law_text',
    sources: ['https://lawserver.com/law/state/texas/tx-codes/texas_business_and_commerce_code_521-053', 'https://www.county.org/Legal/Legal-Resources/LegalEase-FAQs-by-Subject/2020/What-are-the-notification-requirements'],
    verificationNote: 'Except as provided by Subsection (d) (law enforcement) or as necessary to determine the scope of the breach and restore the integrity of the data system. A 2023 bill to cut this to 30 days (HB 4761) was seen only as introduced.',
  },
  {
    id: 'US-TX.authority', jurisdiction: 'US-TX', regime: 'Tex. Bus. & Com. Code §521.053', audience: 'authority', stage: 'notification', trigger: 'breach', period: { days: 30 },
    standard: 'as soon as practicable and not later than the 30th day after the date on which the person determines that the breach occurred, if the breach involves at least 250 residents of this state (electronic form on the Attorney General\'s website)', minAffected: 250, citation: 'Tex. Bus. & Com. Code §521.053(i) (as amended by SB 768, 2023; effective 2023-09-01)',
    verification: 'law_text',
    sources: ['https://legiscan.com/TX/text/SB768/id/2808752/Texas-2023-SB768-Enrolled.html', 'https://www.dataguidance.com/news/texas-amendments-breach-notification-law-signed'],
  },
  // Colorado: residents and (≥ 500 residents) the Attorney General, not later than 30 days after determination.
  {
    id: 'US-CO.individuals', jurisdiction: 'US-CO', regime: 'C.R.S. §6-1-716', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 30 },
    standard: 'in the most expedient time possible and without unreasonable delay, but not later than 30 days after the date of determination that a security breach occurred', citation: 'C.R.S. §6-1-716(2)(a) [subsection unverified]',
    verification: 'secondary',
    sources: ['https://www.dwt.com/gcp/states/colorado', 'https://www.complianceiq.site/breach-notification/colorado', 'https://law.counselstack.com/statute/co/06/6-1-716'],
    verificationNote: '"Determination that a security breach occurred" is the point in time at which there is sufficient evidence to conclude that a breach has taken place (§6-1-716(1), definitions). The words of the 30-day clause were seen only in the parallel statute for government entities (C.R.S. §24-73-103); the subsection (2)(a) was not seen.',
  },
  {
    id: 'US-CO.authority', jurisdiction: 'US-CO', regime: 'C.R.S. §6-1-716', audience: 'authority', stage: 'notification', trigger: 'breach', period: { days: 30 },
    standard: 'not later than 30 days after the date of determination, when 500 or more Colorado residents are affected', minAffected: 500, citation: 'C.R.S. §6-1-716(2)(f) [subsection unverified]',
    verification: 'secondary',
    sources: ['https://coag.gov/resources/data-protection-laws/?os=fpn4c7ikwkinaag', 'https://www.complianceiq.site/breach-notification/colorado', 'https://www.dwt.com/colorado/'],
    verificationNote: 'The Attorney General\'s page confirms the 500-resident threshold (online reporting form); the 30 days come from summaries. The subsection (2)(f) was not seen.',
  },
  // Florida: individuals and (≥ 500) the Department of Legal Affairs, no later than 30 days after determination.
  {
    id: 'US-FL.individuals', jurisdiction: 'US-FL', regime: 'Fla. Stat. §501.171', audience: 'individuals', stage: 'notification', trigger: 'breach', period: { days: 30 },
    standard: 'as expeditiously as practicable and without unreasonable delay, but no later than 30 days after the determination of a breach', citation: 'Fla. Stat. §501.171(4)(a)',
    verification: 'secondary',
    sources: ['https://www.swlaw.com/data-breach-map/view/state/fl', 'https://www.mintz.com/mintz-matrix/florida', 'http://fl.elaws.us/law/501.171'],
    verificationNote: 'The 30 days were seen only in summaries; an unofficial reproduction of the statute shows the heading of subsection (4) and the opening of (4)(a), cut before the time limit. The period runs from the determination of the breach or reason to believe one occurred; 15 more days may be had for good cause given in writing to the Department (summaries differ on which notice that extends).',
  },
  {
    id: 'US-FL.authority', jurisdiction: 'US-FL', regime: 'Fla. Stat. §501.171', audience: 'authority', stage: 'notification', trigger: 'breach', period: { days: 30 },
    standard: 'as expeditiously as practicable, but no later than 30 days after the determination of the breach, when 500 or more Florida residents are affected', minAffected: 500, citation: 'Fla. Stat. §501.171(3)(a) [subsection unverified]',
    verification: 'secondary',
    sources: ['https://www.wordsbywit.com/florida', 'https://www.complianceiq.site/breach-notification/florida', 'https://www.csrps.com/privacy-regulations/florida/'],
    verificationNote: 'Summaries differ on the threshold ("500 or more" vs "more than 500"; 500 kept, the stricter reading) and one says the 30 days run from discovery rather than determination. The subsection (3)(a) was not seen.',
  },
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
  /** Notifications already sent (first per audience, stage and jurisdiction; null jurisdiction = all), for duties counted from one. */
  readonly notifications?: ReadonlyArray<{ readonly audience: string; readonly stage: string; readonly jurisdiction: string | null; readonly notifiedAt: string }>;
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
  /**
   * What `dueAt` counts from: `awareness` (detectedAt), `notification` (a recorded earlier notification, see
   * {@link BreachAfter}) or `notification_due` (the earlier notification's own deadline, none being recorded yet).
   */
  readonly countedFrom: 'awareness' | 'notification' | 'notification_due';
  readonly standard: string;
  readonly citation: string;
}

/** The due time of `period` from `fromMs`, or null. */
export function breachDueAt(fromMs: number, period: BreachPeriod, holidays: readonly string[] = []): number | null {
  if (period === null) return null;
  if ('hours' in period) return fromMs + period.hours * 3_600_000;
  if ('days' in period) return fromMs + period.days * 86_400_000;
  if ('months' in period) return addMonths(fromMs, period.months);
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
  const applicable = BREACH_DEADLINE_RULES.filter((rule) => breachRuleApplies(rule, input));
  for (const rule of applicable) {
    let due: number | null;
    let countedFrom: BreachDeadline['countedFrom'] = 'awareness';
    if (rule.after === undefined) {
      due = breachDueAt(from, rule.period, input.holidays);
    } else {
      const after = rule.after;
      const sent = (input.notifications ?? [])
        .filter((n) => n.audience === after.audience && n.stage === after.stage && (n.jurisdiction === null || n.jurisdiction === rule.jurisdiction))
        .map((n) => Date.parse(n.notifiedAt))
        .sort((a, b) => a - b)[0];
      const before = applicable.find((r) => r.jurisdiction === rule.jurisdiction && r.audience === after.audience && r.stage === after.stage && r.after === undefined);
      const beforeDue = before === undefined ? null : breachDueAt(from, before.period, input.holidays);
      if (sent !== undefined) {
        due = breachDueAt(sent, after.period, input.holidays);
        countedFrom = 'notification';
      } else if (beforeDue !== null) {
        due = breachDueAt(beforeDue, after.period, input.holidays);
        countedFrom = 'notification_due';
      } else {
        due = breachDueAt(from, rule.period, input.holidays);
      }
    }
    out.push({ ruleId: rule.id, jurisdiction: rule.jurisdiction, regime: rule.regime, audience: rule.audience, stage: rule.stage, dueAt: due === null ? null : toIso(due), countedFrom, standard: rule.standard, citation: rule.citation });
  }
  return out.sort((a, b) => (a.dueAt === null ? 1 : 0) - (b.dueAt === null ? 1 : 0) || (a.dueAt ?? '').localeCompare(b.dueAt ?? '') || a.ruleId.localeCompare(b.ruleId));
}

/** Default escalation points: raised when this much time is left before a due time (24 h and 6 h). */
export const DEFAULT_ESCALATION_POINTS_MS: readonly number[] = [24 * 3_600_000, 6 * 3_600_000];
