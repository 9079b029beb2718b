/**
 * Jurisdictions known to Custodian, as data with the article each rule comes from.
 * A jurisdiction code is an ISO 3166-1 alpha-2 country (or `EU` for the EEA under GDPR), optionally
 * followed by an ISO 3166-2 subdivision: `EU`, `UK`, `US-CA`, `BR`.
 */
export interface JurisdictionRule {
  readonly code: string;
  readonly name: string;
  readonly regime: string;
  /** Whether a universal opt-out signal such as Global Privacy Control must be honoured as an opt-out. */
  readonly honoursGpc: boolean;
  readonly gpcCitation?: string;
}

export const JURISDICTION_CODE_PATTERN = /^(?:[A-Z]{2}(?:-[A-Z0-9]{1,3})?)$/;

const rules: JurisdictionRule[] = [
  { code: 'EU', name: 'European Economic Area', regime: 'GDPR', honoursGpc: false },
  { code: 'UK', name: 'United Kingdom', regime: 'UK GDPR', honoursGpc: false },
  { code: 'CH', name: 'Switzerland', regime: 'revFADP', honoursGpc: false },
  { code: 'BR', name: 'Brazil', regime: 'LGPD', honoursGpc: false },
  { code: 'CA', name: 'Canada', regime: 'PIPEDA', honoursGpc: false },
  { code: 'US', name: 'United States (no state law)', regime: 'none', honoursGpc: false },
  { code: 'US-CA', name: 'California', regime: 'CCPA/CPRA', honoursGpc: true, gpcCitation: 'Cal. Civ. Code §1798.135(e); 11 CCR §7025' },
  { code: 'US-CO', name: 'Colorado', regime: 'CPA', honoursGpc: true, gpcCitation: 'C.R.S. §6-1-1306(1)(a)(IV); 4 CCR 904-3 Rule 5' },
  { code: 'US-CT', name: 'Connecticut', regime: 'CTDPA', honoursGpc: true, gpcCitation: 'Conn. Gen. Stat. §42-520(e)(1)(A)(ii)' },
  { code: 'US-TX', name: 'Texas', regime: 'TDPSA', honoursGpc: true, gpcCitation: 'Tex. Bus. & Com. Code §541.055(e)' },
  { code: 'US-MT', name: 'Montana', regime: 'MCDPA', honoursGpc: true, gpcCitation: 'Mont. Code §30-14-2808(1)(a)(ii)' },
  { code: 'US-OR', name: 'Oregon', regime: 'OCPA', honoursGpc: true, gpcCitation: 'ORS 646A.578(1)(b)(B)' },
  { code: 'US-DE', name: 'Delaware', regime: 'DPDPA', honoursGpc: true, gpcCitation: '6 Del. C. §12D-106(a)(6)' },
  { code: 'US-NH', name: 'New Hampshire', regime: 'NHPA', honoursGpc: true, gpcCitation: 'RSA 507-H:6(I)(e)' },
  { code: 'US-NJ', name: 'New Jersey', regime: 'NJDPA', honoursGpc: true, gpcCitation: 'N.J.S.A. 56:8-166.11(a)(7)' },
  { code: 'US-MN', name: 'Minnesota', regime: 'MCDPA', honoursGpc: true, gpcCitation: 'Minn. Stat. §325M.11(e)' },
  { code: 'US-MD', name: 'Maryland', regime: 'MODPA', honoursGpc: true, gpcCitation: 'Md. Code Com. Law §14-4605(b)(2)' },
  { code: 'US-VA', name: 'Virginia', regime: 'VCDPA', honoursGpc: false },
  { code: 'US-UT', name: 'Utah', regime: 'UCPA', honoursGpc: false },
];

/** The rule table, keyed by code. */
export const JURISDICTIONS: ReadonlyMap<string, JurisdictionRule> = new Map(rules.map((r) => [r.code, Object.freeze(r)]));

/** The rule for `code`, or undefined for a well-formed but unlisted jurisdiction (treated as honouring nothing). */
export function jurisdictionRule(code: string): JurisdictionRule | undefined {
  return JURISDICTIONS.get(code);
}

/** Whether a GPC signal is a legally binding opt-out in `code`. */
export function honoursGpc(code: string | null | undefined): boolean {
  return code != null && (JURISDICTIONS.get(code)?.honoursGpc ?? false);
}
