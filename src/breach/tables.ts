import type { ColumnType, Kysely } from 'kysely';
import type { AuditEntriesTable, Executor, MailOutboxTable } from '../store/index.js';

/** A timestamp column: ISO text in SQLite, timestamptz in PostgreSQL (read back as Date). */
type Instant = ColumnType<string | Date, string, string>;
type NullableInstant = ColumnType<string | Date | null, string | null, string | null>;

/** Migration 0011: one row per incident; free text only sealed (`narrative_sealed`). */
export interface IncidentsTable {
  id: string;
  status: string;
  title: string;
  /** JSON {description, cause, containmentActions, overrideJustification}, sealed under the incident's key. */
  narrative_sealed: string;
  detected_at: Instant;
  occurred_at: NullableInstant;
  /** JSON arrays. */
  systems: string;
  collections: string;
  data_categories: string;
  jurisdictions: string;
  affected_count: number | null;
  records_count: number | null;
  encrypted: number;
  keys_compromised: number;
  nis2: number;
  override_outcome: string | null;
  subjects_count: number | null;
  /** `manual` or `detection:<rule>`. */
  source: string;
  created_by: string;
  created_at: Instant;
  updated_at: Instant;
  revision: number;
}

/** Append-only (database triggers): every change of an incident. */
export interface IncidentTimelineTable {
  id: string;
  incident_id: string;
  at: Instant;
  actor: string;
  kind: string;
  /** JSON: field names and non-personal values (statuses, counts, keys). */
  changes: string;
  /** Free text of the entry (e.g. an override's justification), sealed under the incident's key. */
  note_sealed: string | null;
}

/** One row per escalation raised: the primary key makes each raise happen once. */
export interface IncidentEscalationsTable {
  incident_id: string;
  rule_id: string;
  point: string;
  due_at: Instant;
  raised_at: Instant;
}

/** Append-only: who was notified when (recipients as keyed digests only). */
export interface IncidentNotificationsTable {
  id: string;
  incident_id: string;
  audience: string;
  stage: string;
  jurisdiction: string | null;
  recipient_digest: string;
  mail_id: string;
  actor: string;
  notified_at: Instant;
}

/** The breach module's tables as Kysely sees them. */
export type BreachTables = {
  incidents: IncidentsTable;
  incident_timeline: IncidentTimelineTable;
  incident_escalations: IncidentEscalationsTable;
  incident_notifications: IncidentNotificationsTable;
  mail_outbox: MailOutboxTable;
  audit_entries: Pick<AuditEntriesTable, 'id' | 'recorded_at' | 'actor' | 'action' | 'target_type' | 'target_ref' | 'outcome' | 'details'>;
};

/** The store's executor seen with the breach tables. */
export function breachDb(db: Executor): Kysely<BreachTables> {
  return db.withTables<BreachTables>();
}
