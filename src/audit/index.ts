export { AuditLog, type AuditLogOptions, type TreeHead, type ProofBundle, type VerifyReport, type AuditPage } from './audit-log.js';
export { AUDIT_ACTIONS, AUDIT_ACTION_KEYS, AUDIT_OUTCOMES, type AuditAction, type AuditOutcome } from './actions.js';
export { canonicalJson, canonicalBytes } from './canonical.js';
export { auditLeaf, consentLeaf, TREES, type Tree } from './leaves.js';
