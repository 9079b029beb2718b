// Public library entry: `import { createCustodian, loadConfig } from 'custodian'`.
export * from './core/index.js';
export * from './app/index.js';
export { ConsentLedger, PurposeRegistry, LEDGER_LIMITS } from './ledger/index.js';
export type * from './ledger/types.js';
export { ApiKeyService, SCOPES, type Scope, type ApiKeyPrincipal } from './auth/index.js';
export { openStore, type Store } from './store/index.js';
export { buildServer } from './server/index.js';
export { RetentionService, startRetentionScheduler, DEFAULT_RETENTION_CRON, type RetentionRunView, type RetentionReport, type LegalHoldView, type RetentionScheduler } from './retention/index.js';
