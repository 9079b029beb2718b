import { isSensitiveCategory, isSpecialCategory, outcomeRank, specialCategoryOf, SENSITIVE_CATEGORIES, type BreachOutcome } from '../core/index.js';

/** What the risk assessment looks at. */
export interface RiskInput {
  /** fideslang data category keys of the breached data. */
  readonly dataCategories: readonly string[];
  /** Estimated number of people affected; null when unknown. */
  readonly affectedCount: number | null;
  /** The data was encrypted (state of the art) when it was breached. */
  readonly encrypted: boolean;
  /** The key (or the means to decrypt) was compromised or lost too. */
  readonly keysCompromised: boolean;
}

/** One reason of an assessment, with the provision or guidance it rests on. */
export interface RiskReason {
  readonly code: string;
  readonly text: string;
  readonly citation: string;
}

/** The outcome of {@link assessRisk}: who must be notified, and why. */
export interface RiskAssessment {
  readonly outcome: BreachOutcome;
  /** 0 (no personal data) … 3 (special categories). */
  readonly severity: number;
  /** Severity + volume + identifiability points: ≥ 3 is high risk. */
  readonly score: number;
  readonly reasons: readonly RiskReason[];
}

/** Categories that identify a person directly (names, contact details, government and unique ids). */
const DIRECT_IDENTIFIERS = ['user.name', 'user.contact', 'user.government_id', 'user.unique_id', 'user.account', 'user.authorization.credentials', 'user.biometric'];
/** Volume thresholds (people): each crossed adds a point. */
export const VOLUME_THRESHOLDS: readonly number[] = [100_000, 1_000_000];
/** Score from which a breach is treated as likely to result in a high risk to people (Art. 34(1)). */
export const HIGH_RISK_SCORE = 3;

const EDPB = 'EDPB Guidelines 9/2022 on personal data breach notification under GDPR';
const EDPB_EXAMPLES = 'EDPB Guidelines 01/2021 on examples regarding personal data breach notification';

const under = (key: string, prefixes: readonly string[]) => prefixes.some((p) => key === p || key.startsWith(p + '.'));

/**
 * Assesses a personal data breach: whether it must be notified to the supervisory authority (GDPR Art. 33(1):
 * unless unlikely to result in a risk) and to the people affected (Art. 34(1): likely high risk), with the reasons.
 *
 * Rules (docs/breach.md): severity from the data categories — special categories and criminal-offence data
 * (Art. 9(1), Art. 10) 3; financial, payment, credentials, government ids, precise location, children's data 2;
 * other personal data 1; no personal data 0 — plus a point per volume threshold crossed ({@link VOLUME_THRESHOLDS})
 * plus a point when the data identifies people directly. Personal data (severity ≥ 1) → authority; score ≥
 * {@link HIGH_RISK_SCORE} → individuals too. Data encrypted with a key that was not compromised is
 * unintelligible (Art. 34(3)(a)): nobody need be notified, the breach is documented (Art. 33(5)).
 *
 * Monotone by construction: adding a category or raising the volume never lowers the outcome; encryption with
 * an uncompromised key never requires notifying individuals. Pure; O(C·P) for C categories and P prefixes.
 */
export function assessRisk(input: RiskInput): RiskAssessment {
  const reasons: RiskReason[] = [];
  const categories = [...new Set(input.dataCategories)].sort();
  const special = categories.filter(isSpecialCategory);
  const sensitive = categories.filter((c) => !isSpecialCategory(c) && isSensitiveCategory(c));
  const personal = categories.filter((c) => c.startsWith('user.'));
  const severity = special.length > 0 ? 3 : sensitive.length > 0 ? 2 : personal.length > 0 ? 1 : 0;
  const identifiable = categories.some((c) => under(c, DIRECT_IDENTIFIERS));
  const count = input.affectedCount;
  const volume = count === null ? 0 : VOLUME_THRESHOLDS.filter((t) => count >= t).length;
  const score = severity + volume + (identifiable ? 1 : 0);

  for (const c of special) {
    const rule = specialCategoryOf(c)!;
    reasons.push({ code: 'special_category', text: `${c}: ${rule.ground}`, citation: `${rule.article}; ${EDPB}, section IV.B (nature, sensitivity and volume of personal data)` });
  }
  for (const c of sensitive) {
    const rule = SENSITIVE_CATEGORIES.find((s) => c === s.key || c.startsWith(s.key + '.'))!;
    reasons.push({ code: 'sensitive_category', text: `${c}: ${rule.reason}`, citation: `${EDPB}, section IV.B (nature, sensitivity and volume of personal data); ${EDPB_EXAMPLES}` });
  }
  if (volume > 0) reasons.push({ code: 'volume', text: `about ${count} people affected (≥ ${VOLUME_THRESHOLDS[volume - 1]})`, citation: `${EDPB}, section IV.B (number of affected individuals)` });
  if (identifiable) reasons.push({ code: 'identifiable', text: 'the data identifies people directly (names, contact details or identifiers)', citation: `${EDPB}, section IV.B (ease of identification of individuals)` });

  if (input.encrypted && !input.keysCompromised) {
    reasons.push({ code: 'encrypted', text: 'the data was encrypted and the key was not compromised: it is unintelligible to anyone not authorised to access it', citation: `GDPR Art. 34(3)(a); ${EDPB_EXAMPLES}, case 1; GDPR Art. 33(5) (document the breach)` });
    return { outcome: 'none', severity, score, reasons };
  }
  if (input.encrypted) reasons.push({ code: 'keys_compromised', text: 'the data was encrypted but the key was compromised: encryption gives no protection', citation: `GDPR Art. 34(3)(a); ${EDPB}, section III.D (conditions where communication to individuals is not required)` });

  if (severity === 0 || count === 0) {
    reasons.push({ code: 'no_personal_data', text: count === 0 ? 'no people are affected' : 'no personal data categories are affected', citation: 'GDPR Art. 33(1) (unless unlikely to result in a risk); GDPR Art. 33(5)' });
    return { outcome: 'none', severity, score, reasons };
  }
  reasons.push({ code: 'risk', text: 'a breach of personal data that is not unlikely to result in a risk to people: notify the supervisory authority within 72 hours of awareness', citation: `GDPR Art. 33(1); ${EDPB}, section II.A (when to notify)` });
  let outcome: BreachOutcome = 'authority';
  if (score >= HIGH_RISK_SCORE) {
    outcome = 'authority_and_individuals';
    reasons.push({ code: 'high_risk', text: `likely high risk (score ${score} ≥ ${HIGH_RISK_SCORE}): tell the people affected without undue delay`, citation: `GDPR Art. 34(1); ${EDPB}, section IV (assessing risk and high risk)` });
  }
  return { outcome, severity, score, reasons };
}

/** The more demanding of two outcomes. */
export function maxOutcome(a: BreachOutcome, b: BreachOutcome): BreachOutcome {
  return outcomeRank(a) >= outcomeRank(b) ? a : b;
}
