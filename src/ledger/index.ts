export { LEDGER_LIMITS } from './limits.js';
export { ConsentLedger, type EvidenceCipher, type ConsentLedgerOptions, type ConsentLedgerDeps } from './consent-ledger.js';
export { PurposeRegistry, validatePurpose, offeredIn, type PurposeInput } from './purpose-registry.js';
export { foldHistory, statusAt, evaluate, type StateRow } from './projection.js';
export { truncateIp, minimisePageUrl } from './evidence.js';
export { decodeTcString } from './tcf.js';
export * from './types.js';
export { purposeDefinitionSchema, purposesFileSchema, toPurposeInput } from './purpose-definition.js';
