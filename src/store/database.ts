import type { ColumnType, Generated } from 'kysely';

/** A timestamp column: ISO-8601 text in SQLite, timestamptz in PostgreSQL (read back as Date). */
export type Instant = ColumnType<string | Date, string, string>;
export type NullableInstant = ColumnType<string | Date | null, string | null, string | null>;

/** Append-only: one row per consent decision. The database refuses UPDATE and DELETE. */
export interface ConsentEventsTable {
  id: string;
  subject_id: string;
  purpose: string;
  decision: string;
  legal_basis: string;
  jurisdiction: string | null;
  notice_version: string | null;
  method: string;
  recorded_at: Instant;
  client_time: NullableInstant;
  expires_at: NullableInstant;
  /** 0/1: whether a Global Privacy Control signal came with the event. */
  gpc: number;
  /** Evidence in the encoding named by `evidence_format` ('json' now; an AEAD envelope once subject keys exist). */
  evidence: string | null;
  evidence_format: string;
  idempotency_key: string | null;
  /** SHA-256 of the canonical request event, to tell a replay from a conflicting reuse of its key. */
  request_hash: string | null;
  batch_id: string;
  actor: string;
}

/** Projection: the latest event per (subject, purpose), kept in the transaction that appends it. */
export interface ConsentStateTable {
  subject_id: string;
  purpose: string;
  event_id: string;
  decision: string;
  legal_basis: string;
  method: string;
  jurisdiction: string | null;
  /** 0/1: whether the deciding event came with a GPC signal. */
  gpc: number;
  recorded_at: Instant;
  expires_at: NullableInstant;
}

export interface PurposesTable {
  key: string;
  title: string;
  description: string;
  legal_basis: string;
  consent_required: number;
  default_expiry_months: number | null;
  /** JSON array of jurisdiction codes. */
  jurisdictions: string;
  gpc_opt_out: number;
  created_at: Instant;
  updated_at: Instant;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  /** SHA-256 hex of the secret; the secret itself is never stored. */
  key_hash: string;
  /** JSON array of scopes. */
  scopes: string;
  /** Migration 0012: JSON array of the purpose keys the key is declared for (`[]`: none declared). */
  purposes: ColumnType<string, string | undefined, string>;
  created_at: Instant;
  created_by: string;
  revoked_at: NullableInstant;
}

export interface KekVersionsTable {
  version: number;
  provider: string;
  key_ref: string;
  /** A random canary wrapped under this version: unwrapping it at start proves the right master key is configured. */
  canary_wrapped: string;
  canary_hash: string;
  status: string;
  created_at: Instant;
  retired_at: NullableInstant;
}

/** Data keys, only ever stored wrapped. Deleting a subject's row is crypto-shredding. */
export interface DataKeysTable {
  /** 16 hex characters: the key id carried in every ciphertext. */
  id: string;
  kind: string;
  /** Subject reference (HMAC of the subject id), blind index name, or system key name. */
  owner: string;
  kek_version: number;
  /** base64 of the wrapped key. */
  wrapped: string;
  created_at: Instant;
}

export interface BlindIndexesTable {
  name: string;
  normaliser: string;
  bits: number;
  created_at: Instant;
}

/** Append-only: one row per shredding. */
export interface ShredTombstonesTable {
  id: string;
  subject_ref: string;
  reason: string;
  actor: string;
  keys_destroyed: number;
  shredded_at: Instant;
}

/** Append-only: ids of destroyed keys, so their ciphertexts fail with CST_ERR_CRYPTO_SHREDDED. */
export interface ShreddedKeysTable {
  key_id: string;
  tombstone_id: string;
}

export interface RewrapJobsTable {
  id: string;
  target_version: number;
  status: string;
  cursor: string;
  processed: number;
  total: number;
  started_at: Instant;
  updated_at: Instant;
  finished_at: NullableInstant;
}

/** Append-only: one row per audited action. */
export interface AuditEntriesTable {
  id: string;
  recorded_at: Instant;
  actor: string;
  action: string;
  target_type: string;
  /** Subject reference (HMAC of the subject id) or a resource id; never a subject id in clear. */
  target_ref: string | null;
  outcome: string;
  request_id: string | null;
  /** Canonical JSON of ids and counts, never personal data. */
  details: string;
  /** Personal details sealed under the subject key (field format c2.…), or null. */
  payload: string | null;
  leaf_hash: string;
}

/** Leaves waiting for the sequencer; drained as they are integrated. */
export interface LogQueueTable {
  tree: string;
  ref_id: string;
  leaf_hash: string;
}

/** Append-only: the sequenced leaves of each tree. */
export interface LogLeavesTable {
  tree: string;
  seq: number | string;
  ref_id: string;
  leaf_hash: string;
}

/** Append-only: hashes of complete aligned subtrees (level, idx covers leaves idx·2^level … (idx+1)·2^level − 1). */
export interface LogNodesTable {
  tree: string;
  level: number;
  idx: number | string;
  hash: string;
}

/** Append-only: signed tree heads (C2SP checkpoints). */
export interface LogHeadsTable {
  tree: string;
  size: number | string;
  root_hash: string;
  checkpoint: string;
  created_at: Instant;
}

/** Custodian's own schema, as Kysely sees it. */
export interface DatamapVersionsTable {
  version: number;
  manifest: string;
  sha256: string;
  created_at: Instant;
  actor: string;
  comment: string | null;
}

export interface RequestsTable {
  id: string;
  type: string;
  status: string;
  jurisdiction: string;
  regime: string;
  channel: string;
  /** Comma-separated identity kinds given (email, phone_number, …): kinds only, never values. */
  identity_kinds: string;
  /** The identities, sealed under the request's key (field format). */
  identities_sealed: string;
  /** Rectification: the corrected values by field address, sealed like the identities. */
  corrections_sealed: string | null;
  /** JSON array of blind indexes of the identities, to find requests by identity without decrypting. */
  identity_digests: string;
  received_at: Instant;
  due_at: Instant;
  acknowledge_by: NullableInstant;
  extended: number;
  paused_ms: number | string;
  paused_since: NullableInstant;
  verified_at: NullableInstant;
  completed_at: NullableInstant;
  /** JSON: counts and reasons, never personal data. */
  outcome: string | null;
  created_by: string;
  updated_at: Instant;
  revision: number;
  lease_owner: string | null;
  lease_until: NullableInstant;
  /** The executor's context (identity and key values), sealed under the request's key. */
  context_sealed: string | null;
  datamap_version: number | null;
}

export interface RequestArtifactsTable {
  request_id: string;
  /** `package` (sealed) or `certificate` (signed JSON, no personal data). */
  kind: string;
  content: string;
  sha256: string;
  created_at: Instant;
}

/** Append-only: every status change of a request. */
export interface RequestEventsTable {
  id: string;
  request_id: string;
  at: Instant;
  from_status: string | null;
  to_status: string;
  actor: string;
  reason: string | null;
}

export interface RequestTasksTable {
  request_id: string;
  seq: number;
  phase: string;
  target: string;
  status: string;
  attempts: number;
  lease_owner: string | null;
  lease_until: NullableInstant;
  result: string | null;
  error: string | null;
  updated_at: Instant;
}

export interface VerificationCodesTable {
  request_id: string;
  /** HMAC of the code under the system reference key: the code itself is never stored. */
  code_digest: string;
  expires_at: Instant;
  attempts: number;
  sent_at: Instant;
}

export interface MailOutboxTable {
  id: string;
  request_id: string | null;
  template: string;
  to_sealed: string;
  body_sealed: string;
  created_at: Instant;
  /** A dispatcher is sending it until then (another may take over afterwards). */
  claimed_until: NullableInstant;
  sent_at: NullableInstant;
}

/** The transactional outbox (UPDATE refused; pruning deletes old rows). */
export interface EventOutboxTable {
  seq: Generated<number | string>;
  id: string;
  type: string;
  subject_id: string | null;
  /** JSON array of purpose keys. */
  purposes: string;
  time: Instant;
  /** JSON object: the event's data without subjectId/purposes. */
  data: string;
}

/** Grants whose expiry was announced as `consent.expired`. */
export interface ConsentExpiryNoticesTable {
  event_id: string;
  announced_at: Instant;
}

/** Where a subscription's events go and which; soft-deleted. */
export interface EventSubscriptionsTable {
  id: string;
  name: string;
  kind: string;
  /** JSON: the target without secrets (for display). */
  target: string;
  /** The full target configuration (URL with credentials, webhook secret), sealed (field format). */
  target_sealed: string;
  /** JSON array of event types; empty = all. */
  filter_types: string;
  /** JSON array of purpose keys; empty = all. */
  filter_purposes: string;
  max_attempts: number;
  created_at: Instant;
  created_by: string;
  deleted_at: NullableInstant;
  disabled_at: NullableInstant;
  disabled_reason: string | null;
  /** The outbox position through which events were fanned out into deliveries. */
  materialised_through: number | string;
}

/** One event to deliver to one subscription. */
export interface EventDeliveriesTable {
  subscription_id: string;
  seq: number | string;
  event_id: string;
  subject_id: string | null;
  /** pending | delivered | dead */
  status: string;
  attempts: number;
  next_attempt_at: Instant;
  /** A dispatcher is delivering it until then (lease); another may take over afterwards. */
  claimed_until: NullableInstant;
  claimed_by: string | null;
  last_error: string | null;
  updated_at: Instant;
  delivered_at: NullableInstant;
}

/** Append-only: every delivery attempt. */
export interface EventDeliveryAttemptsTable {
  id: string;
  subscription_id: string;
  seq: number | string;
  event_id: string;
  attempt: number;
  at: Instant;
  /** delivered | failed | dead */
  outcome: string;
  http_status: number | null;
  error: string | null;
  duration_ms: number;
}

/** Append-only: every restriction of processing of a subject and every lifting of one (GDPR Art. 18). */
export interface SubjectRestrictionsEventsTable {
  id: string;
  subject_id: string;
  /** restricted | lifted */
  action: string;
  /** A code of RESTRICTION_REASONS (restricted) or RESTRICTION_LIFT_REASONS (lifted); never free text. */
  reason: string;
  /** The data subject request that asked for it, if any. */
  request_id: string | null;
  actor: string;
  at: Instant;
}

/** Projection: the current restriction state per subject (the latest event), kept in the transaction that appends it. */
export interface SubjectRestrictionsTable {
  subject_id: string;
  /** 0/1 */
  restricted: number;
  reason: string;
  request_id: string | null;
  /** When the restriction in force began; null once lifted. */
  since: NullableInstant;
  /** The latest event of the subject in subject_restrictions_events. */
  event_id: string;
  updated_at: Instant;
}

/** A legal hold (docs/retention.md): retention skips what it covers while it is active (not released, not past `until`). */
export interface LegalHoldsTable {
  id: string;
  /** subject | system | collection */
  scope: string;
  system_key: string | null;
  /** `<dataset>.<collection>` for collection holds. */
  collection: string | null;
  identity_kind: string | null;
  /** Keyed digest of `identity:<kind>:<value>` (as requests store theirs); never the value. */
  subject_digest: string | null;
  reason: string;
  until: NullableInstant;
  created_by: string;
  created_at: Instant;
  released_by: string | null;
  released_at: NullableInstant;
}

/** One retention run (or dry run); its report is the sum of its retention_progress rows. */
export interface RetentionRunsTable {
  id: string;
  /** running | completed | failed */
  status: string;
  /** 0/1 */
  dry_run: number;
  system_key: string | null;
  datamap_version: number;
  /** The instant cutoffs are computed from (`as_of - period`), kept so a resumed run uses the same ones. */
  as_of: Instant;
  actor: string;
  started_at: Instant;
  finished_at: NullableInstant;
  resumed: number;
  error: string | null;
}

/** Progress and counts of one rule of one collection in a run; `cursor` is the last key processed (JSON). */
export interface RetentionProgressTable {
  run_id: string;
  collection: string;
  rule: number;
  system_key: string;
  action: string;
  cutoff: Instant;
  cursor: string | null;
  /** pending | running | done | skipped | failed */
  state: string;
  matched: number;
  deleted: number;
  anonymised: number;
  /** JSON: reason → count. */
  skipped: string;
  error: string | null;
  updated_at: Instant;
}

/** The lease that keeps one retention run at a time across processes. */
/** A privacy center session (docs/privacy-center.md): keyed by the SHA-256 of its cookie token, never the token. */
export interface PrivacySessionsTable {
  token_hash: string;
  subject_id: string;
  user_id: string | null;
  /** The verified address, sealed under a keyring key (context `privacy_sessions.email:<token_hash>`). */
  email_sealed: string;
  created_at: Instant;
  expires_at: Instant;
}

/** A privacy center sign-in code: keyed digests only; the address sealed while the code is open. */
export interface PrivacySignInChallengesTable {
  id: string;
  email_digest: string;
  /** Null once the code is used up or used (the row stays for the per-address send limit). */
  email_sealed: string | null;
  code_digest: string;
  attempts: number;
  consumed: number;
  created_at: Instant;
  expires_at: Instant;
}

export interface RetentionLeaseTable {
  name: string;
  owner: string;
  run_id: string | null;
  until: Instant;
}

export interface Database {
  legal_holds: LegalHoldsTable;
  retention_runs: RetentionRunsTable;
  retention_progress: RetentionProgressTable;
  retention_lease: RetentionLeaseTable;
  privacy_sessions: PrivacySessionsTable;
  privacy_sign_in_challenges: PrivacySignInChallengesTable;
  subject_restrictions_events: SubjectRestrictionsEventsTable;
  subject_restrictions: SubjectRestrictionsTable;
  event_subscriptions: EventSubscriptionsTable;
  event_deliveries: EventDeliveriesTable;
  event_delivery_attempts: EventDeliveryAttemptsTable;
  event_outbox: EventOutboxTable;
  consent_expiry_notices: ConsentExpiryNoticesTable;
  requests: RequestsTable;
  request_events: RequestEventsTable;
  request_tasks: RequestTasksTable;
  request_artifacts: RequestArtifactsTable;
  verification_codes: VerificationCodesTable;
  mail_outbox: MailOutboxTable;
  datamap_versions: DatamapVersionsTable;
  audit_entries: AuditEntriesTable;
  log_queue: LogQueueTable;
  log_leaves: LogLeavesTable;
  log_nodes: LogNodesTable;
  log_heads: LogHeadsTable;
  kek_versions: KekVersionsTable;
  data_keys: DataKeysTable;
  blind_indexes: BlindIndexesTable;
  shred_tombstones: ShredTombstonesTable;
  shredded_keys: ShreddedKeysTable;
  rewrap_jobs: RewrapJobsTable;
  consent_events: ConsentEventsTable;
  consent_state: ConsentStateTable;
  purposes: PurposesTable;
  api_keys: ApiKeysTable;
}
