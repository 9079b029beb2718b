export { LEDGER_LIMITS } from './limits.js';
export { ConsentLedger, SNAPSHOT_MAX_PAGE, type SnapshotOptions, type SnapshotPage, type EvidenceCipher, type ConsentLedgerOptions, type ConsentLedgerDeps } from './consent-ledger.js';
export { PurposeRegistry, validatePurpose, offeredIn, type PurposeInput } from './purpose-registry.js';
export { foldHistory, statusAt, evaluate, RESTRICTED_REASON, type StateRow } from './projection.js';
export { truncateIp, minimisePageUrl } from './evidence.js';
export { decodeTcString } from './tcf.js';
export * from './types.js';
export {
  ANONYMOUS_SUBJECT_PATTERN,
  CONSENT_MODE_SIGNALS,
  DEFAULT_CONSENT_MODE_MAPPING,
  bannerExperience,
  bannerOptionsFromEnv,
  experienceTypeFor,
  jurisdictionFromGeo,
  linkAnonymousChoices,
  recordBannerChoice,
  type BannerChoiceInput,
  type BannerExperience,
  type BannerOptions,
  type BannerPurpose,
  type ConsentModeSignal,
  type ExperienceType,
  type LinkResult,
} from './banner-experience.js';
export { purposeDefinitionSchema, purposesFileSchema, toPurposeInput } from './purpose-definition.js';
