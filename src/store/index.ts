export type { Database, AuditEntriesTable, MailOutboxTable, ConsentEventsTable, ConsentStateTable, PurposesTable, ApiKeysTable, RequestsTable, SubjectRestrictionsEventsTable, SubjectRestrictionsTable } from './database.js';
export type { Store, StoreKind, Executor, MigrationReport, ChangeTopic, ChangeListener, ChangeWatch } from './store.js';
export { openStore, redactStoreUrl, DEFAULT_STORE_URL } from './open-store.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.js';
export { PostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.js';
export { storeUnavailableReason, isRetryableConflict } from './store-errors.js';
