/** Limits of one batch and one id, shared with the interfaces' schemas. */
export const LEDGER_LIMITS = {
  maxBatch: 1000,
  maxCheckBatch: 10_000,
  maxSubjectIdLength: 256,
  maxIdempotencyKeyLength: 256,
  maxNoticeVersionLength: 128,
  maxUserAgentLength: 1024,
  maxPageUrlLength: 2048,
  maxTcStringLength: 8192,
  maxHistoryPage: 1000,
} as const;
