/**
 * Adequacy findings as dated data: which destinations receive personal data from the EEA (GDPR Art. 45) or
 * from the United Kingdom (UK GDPR Art. 45, DPA 2018 s. 17A) without further safeguards. Each entry cites the
 * decision or regulations it rests on, so a reviewer can check it against the Official Journal or
 * legislation.gov.uk. docs/datamap.md (Reports) says how to update the list.
 */

/**
 * The day the lists below were last checked against the European Commission's adequacy page, EUR-Lex and
 * legislation.gov.uk. Reports print it so a reader knows how fresh the transfer assessment is.
 */
export const ADEQUACY_LIST_AS_OF = '2026-11-22';

/** Whose transfer rules apply: the exporter's regime. */
export type AdequacyRegime = 'EU' | 'UK';

/**
 * - `eea`: inside the exporter's own area (the EEA under the EU regime); no transfer in the sense of Chapter V.
 * - `domestic`: the United Kingdom itself under the UK regime.
 * - `adequate`: an adequacy finding covers transfers to this destination generally (a scope note may apply).
 * - `partial`: an adequacy finding covers only some recipients or sectors (e.g. DPF-certified US organisations).
 * - `none`: no adequacy finding; a safeguard (Art. 46/47) or a derogation (Art. 49) is needed.
 */
export type AdequacyStatus = 'eea' | 'domestic' | 'adequate' | 'partial' | 'none';

/** One adequacy finding: a Commission decision (EU) or adequacy regulations / transitional provision (UK). */
export interface AdequacyDecision {
  /** ISO 3166-1 alpha-2 code of the destination, or `EPO` for the European Patent Organisation. */
  readonly code: string;
  readonly name: string;
  readonly status: 'adequate' | 'partial';
  /** The instrument, as cited: `Commission Implementing Decision (EU) 2019/419`. */
  readonly decision: string;
  /** Date of adoption (EU) or coming into force (UK), ISO 8601 date. */
  readonly date: string;
  /** What the finding covers when it does not cover every recipient, or what it excludes. */
  readonly scope?: string;
  /** Last day of validity when the instrument has a sunset clause. */
  readonly validUntil?: string;
}

/** The answer of {@link adequacyOf}. */
export interface AdequacyResult {
  readonly country: string;
  readonly regime: AdequacyRegime;
  readonly status: AdequacyStatus;
  readonly decision?: AdequacyDecision;
  /** The provision the status rests on, always present (for `none`: the article requiring a safeguard). */
  readonly citation: string;
  readonly note?: string;
}

/** EU member states (27) and the EEA EFTA states Iceland, Liechtenstein and Norway (EEA Agreement, Annex XI). */
export const EEA_COUNTRIES: Readonly<Record<string, string>> = Object.freeze({
  AT: 'Austria',
  BE: 'Belgium',
  BG: 'Bulgaria',
  HR: 'Croatia',
  CY: 'Cyprus',
  CZ: 'Czechia',
  DK: 'Denmark',
  EE: 'Estonia',
  FI: 'Finland',
  FR: 'France',
  DE: 'Germany',
  GR: 'Greece',
  HU: 'Hungary',
  IE: 'Ireland',
  IT: 'Italy',
  LV: 'Latvia',
  LT: 'Lithuania',
  LU: 'Luxembourg',
  MT: 'Malta',
  NL: 'Netherlands',
  PL: 'Poland',
  PT: 'Portugal',
  RO: 'Romania',
  SK: 'Slovakia',
  SI: 'Slovenia',
  ES: 'Spain',
  SE: 'Sweden',
  IS: 'Iceland',
  LI: 'Liechtenstein',
  NO: 'Norway',
});

/**
 * Territories with their own ISO code that are part of an EU member state for GDPR purposes (TFEU Art. 349 and
 * 355(1): outermost regions; Åland: Protocol No 2 to the 1994 Act of Accession, which does not touch data
 * protection). Mapped to the member state.
 */
const EEA_TERRITORIES: Readonly<Record<string, string>> = Object.freeze({
  AX: 'FI',
  GF: 'FR',
  GP: 'FR',
  MQ: 'FR',
  RE: 'FR',
  YT: 'FR',
  MF: 'FR',
});

/** Codes people write that are not the ISO 3166-1 code. */
const ALIASES: Readonly<Record<string, string>> = Object.freeze({ UK: 'GB', EL: 'GR' });

/**
 * Adequacy decisions of the European Commission in force (GDPR Art. 45(3); decisions under Directive 95/46/EC
 * Art. 25(6) stay in force by GDPR Art. 45(9)). Source: the Commission's "Adequacy decisions" page and EUR-Lex.
 */
export const EU_ADEQUACY_DECISIONS: readonly AdequacyDecision[] = Object.freeze([
  { code: 'AD', name: 'Andorra', status: 'adequate', decision: 'Commission Decision 2010/625/EU', date: '2010-10-19' },
  { code: 'AR', name: 'Argentina', status: 'adequate', decision: 'Commission Decision 2003/490/EC', date: '2003-06-30' },
  { code: 'BR', name: 'Brazil', status: 'adequate', decision: 'Commission Implementing Decision (EU) 2026/179', date: '2026-01-26', scope: 'Recipients subject to the LGPD (Lei 13.709/2018). For exporters in Iceland, Liechtenstein and Norway it applies once incorporated into the EEA Agreement.' },
  {
    code: 'CA',
    name: 'Canada',
    status: 'partial',
    decision: 'Commission Decision 2002/2/EC',
    date: '2001-12-20',
    scope: 'Only recipients subject to PIPEDA (commercial organisations); not provincial public bodies or employee data outside PIPEDA.',
  },
  { code: 'FO', name: 'Faroe Islands', status: 'adequate', decision: 'Commission Decision 2010/146/EU', date: '2010-03-05' },
  { code: 'GG', name: 'Guernsey', status: 'adequate', decision: 'Commission Decision 2003/821/EC', date: '2003-11-21' },
  { code: 'IL', name: 'Israel', status: 'adequate', decision: 'Commission Decision 2011/61/EU', date: '2011-01-31', scope: 'Automated international transfers and, where non-automated, processing subject to Israeli law.' },
  { code: 'IM', name: 'Isle of Man', status: 'adequate', decision: 'Commission Decision 2004/411/EC', date: '2004-04-28' },
  {
    code: 'JP',
    name: 'Japan',
    status: 'partial',
    decision: 'Commission Implementing Decision (EU) 2019/419',
    date: '2019-01-23',
    scope: 'Only personal information handling business operators under the APPI, applying the Supplementary Rules; not the public sector.',
  },
  { code: 'JE', name: 'Jersey', status: 'adequate', decision: 'Commission Decision 2008/393/EC', date: '2008-05-08' },
  { code: 'NZ', name: 'New Zealand', status: 'adequate', decision: 'Commission Implementing Decision 2013/65/EU', date: '2012-12-19' },
  {
    code: 'KR',
    name: 'Republic of Korea',
    status: 'adequate',
    decision: 'Commission Implementing Decision (EU) 2022/254',
    date: '2021-12-17',
    scope: 'Recipients subject to PIPA; excludes personal credit information processed under the Credit Information Act by entities supervised by the Financial Services Commission, and processing by religious organisations and political parties for their own activities.',
  },
  { code: 'CH', name: 'Switzerland', status: 'adequate', decision: 'Commission Decision 2000/518/EC', date: '2000-07-26' },
  {
    code: 'GB',
    name: 'United Kingdom',
    status: 'adequate',
    decision: 'Commission Implementing Decision (EU) 2021/1772',
    date: '2021-06-28',
    validUntil: '2031-12-27',
    scope: 'Renewed by the Commission on 19 December 2025. Not Gibraltar. The 2021 decision excluded transfers for United Kingdom immigration control; check the renewed decision for that exclusion.',
  },
  { code: 'UY', name: 'Uruguay', status: 'adequate', decision: 'Commission Implementing Decision 2012/484/EU', date: '2012-08-21' },
  {
    code: 'US',
    name: 'United States',
    status: 'partial',
    decision: 'Commission Implementing Decision (EU) 2023/1795 (EU-U.S. Data Privacy Framework)',
    date: '2023-07-10',
    scope: 'Only organisations on the Data Privacy Framework List (dataprivacyframework.gov) whose certification covers the data transferred (HR data needs the HR certification).',
  },
  {
    code: 'EPO',
    name: 'European Patent Organisation',
    status: 'adequate',
    decision: 'Commission Implementing Decision (EU) 2025/1382',
    date: '2025-07-15',
    scope: 'An international organisation (GDPR Art. 4(26)), not a country.',
  },
] satisfies AdequacyDecision[]);

// DPA 2018 Sch. 21 paras. 4 and 5 keep as UK adequacy regulations the EEA states, Gibraltar, EU institutions and
// the countries covered by Commission adequacy decisions in force at the end of the transition period (31 December
// 2020); later decisions of the Commission (Korea, the United States, Brazil, EPO) do not carry over.
const UK_TRANSITIONAL = 'Data Protection Act 2018, Schedule 21, paragraphs 4 and 5';
const carriedOver = ['AD', 'AR', 'CA', 'FO', 'GG', 'IL', 'IM', 'JP', 'JE', 'NZ', 'CH', 'UY'];

/** Countries the UK treats as adequate (UK GDPR Art. 45; DPA 2018 s. 17A and Sch. 21), the EEA states apart. */
export const UK_ADEQUACY_REGULATIONS: readonly AdequacyDecision[] = Object.freeze([
  { code: 'GI', name: 'Gibraltar', status: 'adequate', decision: UK_TRANSITIONAL, date: '2020-12-31' },
  ...EU_ADEQUACY_DECISIONS.filter((d) => carriedOver.includes(d.code)).map(
    (d): AdequacyDecision => ({ ...d, decision: `${UK_TRANSITIONAL} (recognising ${d.decision})`, date: '2020-12-31' }),
  ),
  {
    code: 'KR',
    name: 'Republic of Korea',
    status: 'adequate',
    decision: 'The Data Protection (Adequacy) (Republic of Korea) Regulations 2022 (SI 2022/1213)',
    date: '2022-12-19',
    scope: 'Recipients subject to PIPA; unlike the EU decision, includes personal credit information.',
  },
  {
    code: 'US',
    name: 'United States',
    status: 'partial',
    decision: 'The Data Protection (Adequacy) (United States of America) Regulations 2023 (SI 2023/1028), the UK-US data bridge',
    date: '2023-10-12',
    scope: 'Only organisations on the Data Privacy Framework List participating in the UK Extension to the EU-U.S. Data Privacy Framework.',
  },
] satisfies AdequacyDecision[]);

const euByCode = new Map(EU_ADEQUACY_DECISIONS.map((d) => [d.code, d]));
const ukByCode = new Map(UK_ADEQUACY_REGULATIONS.map((d) => [d.code, d]));

/** The ISO code for `country` (upper-cased, `UK` → `GB`, `EL` → `GR`), or the input upper-cased. */
export function normaliseCountry(country: string): string {
  const c = country.trim().toUpperCase();
  return ALIASES[c] ?? c;
}

/** Whether `country` is in the EEA (member states, their outermost regions and Åland, IS, LI, NO). */
export function isEeaCountry(country: string): boolean {
  const c = normaliseCountry(country);
  return c in EEA_COUNTRIES || c in EEA_TERRITORIES;
}

/**
 * Whether transfers from the exporter's area (EEA for `EU`, the UK for `UK`) to `country` rest on an adequacy
 * finding, and which. Pure data lookup: it cannot tell whether a given US recipient is DPF-certified or a
 * Canadian one is subject to PIPEDA; `partial` says that check is needed.
 *
 * @example
 * adequacyOf('US').status            // 'partial' — only DPF-certified organisations
 * adequacyOf('DE', 'UK').status      // 'adequate' — DPA 2018 Sch. 21
 * adequacyOf('IN').status            // 'none' — safeguards needed (GDPR Art. 46)
 */
export function adequacyOf(country: string, regime: AdequacyRegime = 'EU'): AdequacyResult {
  const code = normaliseCountry(country);
  const memberState = EEA_TERRITORIES[code];
  if (regime === 'EU') {
    if (code in EEA_COUNTRIES || memberState !== undefined) {
      return {
        country: code,
        regime,
        status: 'eea',
        citation: 'GDPR Art. 1(3), Art. 44; EEA Agreement Annex XI',
        note: memberState === undefined ? 'Within the EEA: no transfer mechanism needed.' : `Part of ${EEA_COUNTRIES[memberState]} for GDPR purposes: no transfer mechanism needed.`,
      };
    }
    const decision = euByCode.get(code);
    if (decision !== undefined) return found(code, regime, decision, 'GDPR Art. 45(1)');
    return { country: code, regime, status: 'none', citation: 'GDPR Art. 44, Art. 46', note: 'No adequacy decision: appropriate safeguards (Art. 46/47) or a derogation (Art. 49) are needed.' };
  }
  if (code === 'GB') return { country: code, regime, status: 'domestic', citation: 'UK GDPR Art. 3', note: 'Within the United Kingdom: no transfer.' };
  if (code in EEA_COUNTRIES || memberState !== undefined) {
    return {
      country: code,
      regime,
      status: 'adequate',
      decision: { code, name: EEA_COUNTRIES[memberState ?? code] ?? code, status: 'adequate', decision: UK_TRANSITIONAL, date: '2020-12-31' },
      citation: `UK GDPR Art. 45(1); ${UK_TRANSITIONAL}`,
      note: 'EEA state: adequate under the UK transitional provisions.',
    };
  }
  const decision = ukByCode.get(code);
  if (decision !== undefined) return found(code, regime, decision, 'UK GDPR Art. 45(1); DPA 2018 s. 17A');
  return { country: code, regime, status: 'none', citation: 'UK GDPR Art. 44, Art. 46', note: 'No UK adequacy regulations: the IDTA, the UK Addendum to the EU SCCs, BCRs or an Art. 49 derogation are needed.' };
}

function found(country: string, regime: AdequacyRegime, decision: AdequacyDecision, article: string): AdequacyResult {
  const note = [decision.scope, decision.validUntil === undefined ? undefined : `Valid until ${decision.validUntil}.`].filter((s) => s !== undefined).join(' ');
  return { country, regime, status: decision.status, decision, citation: `${article}; ${decision.decision} (${decision.date})`, ...(note === '' ? {} : { note }) };
}
