/**
 * Retention: the data map's retention rules applied to the connected systems in bounded, resumable batches,
 * with legal holds and open requests honoured, a stored and audited report, and a scheduler (docs/retention.md).
 */
export {
  RetentionService,
  RETENTION_BATCH_SIZE,
  RETENTION_LEASE_MS,
  RETENTION_REPORT_SCAN_ROWS,
  type RetentionServiceDeps,
  type RetentionServiceOptions,
  type RetentionRunInput,
  type RetentionRunView,
  type RetentionCollectionReport,
  type RetentionProgress,
  type RetentionReport,
  type RetentionReportRule,
  type HoldReason,
  type SkipReason,
} from './retention-service.js';
export { type LegalHoldView, type LegalHoldScope, type CreateLegalHoldInput } from './legal-holds.js';
export { startRetentionScheduler, DEFAULT_RETENTION_CRON, type RetentionScheduler, type RetentionSchedulerOptions } from './scheduler.js';
