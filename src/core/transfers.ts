/**
 * Mechanisms for transfers of personal data to third countries (GDPR Chapter V; UK GDPR the same articles).
 * `adequacy` and `dpf` rest on a decision about the destination; the others are safeguards or derogations the
 * exporter puts in place.
 */
export const TRANSFER_MECHANISMS = {
  adequacy: { article: 'GDPR Art. 45', label: 'Adequacy decision' },
  dpf: { article: 'GDPR Art. 45; Commission Implementing Decision (EU) 2023/1795', label: 'EU-U.S. Data Privacy Framework (certified recipient)' },
  scc: { article: 'GDPR Art. 46(2)(c); Commission Implementing Decision (EU) 2021/914', label: 'Standard contractual clauses' },
  bcr: { article: 'GDPR Art. 47', label: 'Binding corporate rules' },
  code_of_conduct: { article: 'GDPR Art. 46(2)(e)', label: 'Approved code of conduct with binding commitments' },
  certification: { article: 'GDPR Art. 46(2)(f)', label: 'Approved certification mechanism with binding commitments' },
  derogation_consent: { article: 'GDPR Art. 49(1)(a)', label: 'Derogation: explicit consent after being informed of the risks' },
  derogation_contract: { article: 'GDPR Art. 49(1)(b)', label: 'Derogation: necessary for a contract with the data subject' },
  derogation_public_interest: { article: 'GDPR Art. 49(1)(d)', label: 'Derogation: important reasons of public interest' },
  derogation_legal_claims: { article: 'GDPR Art. 49(1)(e)', label: 'Derogation: establishment, exercise or defence of legal claims' },
  derogation_vital_interests: { article: 'GDPR Art. 49(1)(f)', label: 'Derogation: vital interests' },
} as const;

export type TransferMechanism = keyof typeof TRANSFER_MECHANISMS;
export const TRANSFER_MECHANISM_KEYS = Object.keys(TRANSFER_MECHANISMS) as [TransferMechanism, ...TransferMechanism[]];

/** Conditions lifting the ban on special categories of personal data, GDPR Art. 9(2)(a)–(j). */
export const SPECIAL_CATEGORY_CONDITIONS = {
  explicit_consent: { article: 'GDPR Art. 9(2)(a)' },
  employment_social_security: { article: 'GDPR Art. 9(2)(b)' },
  vital_interests: { article: 'GDPR Art. 9(2)(c)' },
  not_for_profit_body: { article: 'GDPR Art. 9(2)(d)' },
  made_public_by_subject: { article: 'GDPR Art. 9(2)(e)' },
  legal_claims: { article: 'GDPR Art. 9(2)(f)' },
  substantial_public_interest: { article: 'GDPR Art. 9(2)(g)' },
  health_or_social_care: { article: 'GDPR Art. 9(2)(h)' },
  public_health: { article: 'GDPR Art. 9(2)(i)' },
  archiving_research_statistics: { article: 'GDPR Art. 9(2)(j)' },
} as const;

export type SpecialCategoryCondition = keyof typeof SPECIAL_CATEGORY_CONDITIONS;
export const SPECIAL_CATEGORY_CONDITION_KEYS = Object.keys(SPECIAL_CATEGORY_CONDITIONS) as [SpecialCategoryCondition, ...SpecialCategoryCondition[]];

/** ISO 3166-1 alpha-2 country code, upper case. */
export const COUNTRY_CODE_PATTERN = /^[A-Z]{2}$/;

/**
 * An ISO 8601 duration of whole years, months, weeks or days (`P2Y`, `P13M`, `P30D`, `P1Y6M`), the form used
 * for every retention period in the data map.
 */
export const RETENTION_PERIOD_PATTERN = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$/;

/** Parses a {@link RETENTION_PERIOD_PATTERN} duration; undefined when malformed. */
export function parseRetentionPeriod(text: string): { years: number; months: number; days: number } | undefined {
  const m = RETENTION_PERIOD_PATTERN.exec(text);
  if (m === null) return undefined;
  const n = (s: string | undefined) => (s === undefined ? 0 : Number.parseInt(s, 10));
  return { years: n(m[1]), months: n(m[2]), days: n(m[3]) * 7 + n(m[4]) };
}

/** The instant `period` before `now` (calendar arithmetic in UTC; month ends clamp, as in `2024-03-31 − P1M = 2024-02-29`). */
export function subtractPeriod(now: Date, period: { years: number; months: number; days: number }): Date {
  const y = now.getUTCFullYear() - period.years;
  const totalMonths = y * 12 + now.getUTCMonth() - period.months;
  const year = Math.floor(totalMonths / 12);
  const month = totalMonths - year * 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const d = new Date(Date.UTC(year, month, Math.min(now.getUTCDate(), lastDay), now.getUTCHours(), now.getUTCMinutes(), now.getUTCSeconds(), now.getUTCMilliseconds()));
  d.setUTCDate(d.getUTCDate() - period.days);
  return d;
}
