import type { LegalBasis } from './legal-bases.js';

/** A purpose of processing, as the ledger and later the data map know it. */
export interface Purpose {
  /** Stable key, a fideslang data use where one fits (`marketing.advertising`). */
  readonly key: string;
  readonly title: string;
  readonly description: string;
  readonly legalBasis: LegalBasis;
  /** Whether processing needs a live, unexpired grant. True only with legal basis `consent`. */
  readonly consentRequired: boolean;
  /** Grants expire after this many months unless an event says otherwise; null = no expiry. */
  readonly defaultExpiryMonths: number | null;
  /** Jurisdiction codes where the purpose is offered; `['*']` = everywhere. */
  readonly jurisdictions: readonly string[];
  /** Sale, sharing or targeted advertising: a GPC signal opts the subject out where the law says so. */
  readonly gpcOptOut: boolean;
}

export const PURPOSE_KEY_PATTERN = /^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*$/;
/** The longest purpose key. */
export const MAX_PURPOSE_KEY_LENGTH = 128;

/** Whether `value` is a purpose key: dotted lower-case words ({@link PURPOSE_KEY_PATTERN}), at most 128 characters. */
export function isPurposeKey(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_PURPOSE_KEY_LENGTH && PURPOSE_KEY_PATTERN.test(value);
}

// Grants last 13 months by default: CNIL guidance on cookies (délibération 2020-091) and common EDPB practice.
const CONSENT_MONTHS = 13;

/** Purposes shipped by default, keyed by fideslang data uses (fideslang 3.x `data_uses`). */
export const DEFAULT_PURPOSES: readonly Purpose[] = [
  { key: 'essential.service', title: 'Provide the service', description: 'Operate the service the person asked for: accounts, sessions, security.', legalBasis: 'contract', consentRequired: false, defaultExpiryMonths: null, jurisdictions: ['*'], gpcOptOut: false },
  { key: 'functional.service.improve', title: 'Improve the service', description: 'Measure and fix the service for everyone, without profiling individuals.', legalBasis: 'legitimate_interests', consentRequired: false, defaultExpiryMonths: null, jurisdictions: ['*'], gpcOptOut: false },
  { key: 'analytics.reporting', title: 'Analytics', description: 'Aggregate statistics on how the site is used.', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: CONSENT_MONTHS, jurisdictions: ['*'], gpcOptOut: false },
  { key: 'personalize', title: 'Personalisation', description: 'Tailor content and recommendations to the person.', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: CONSENT_MONTHS, jurisdictions: ['*'], gpcOptOut: false },
  { key: 'marketing.communications.email', title: 'Marketing e-mail', description: 'Send newsletters and offers by e-mail.', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: null, jurisdictions: ['*'], gpcOptOut: false },
  { key: 'marketing.advertising', title: 'Advertising', description: 'Show ads chosen using data about the person, and share it with ad partners.', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: CONSENT_MONTHS, jurisdictions: ['*'], gpcOptOut: true },
  { key: 'marketing.advertising.third_party.targeted', title: 'Sale or sharing for targeted advertising', description: 'Sell or share personal information with third parties for cross-context behavioural advertising.', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: CONSENT_MONTHS, jurisdictions: ['*'], gpcOptOut: true },
  { key: 'train_ai_system', title: 'Train AI models', description: 'Use the person\'s data to train machine-learning models.', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: CONSENT_MONTHS, jurisdictions: ['*'], gpcOptOut: false },
];
