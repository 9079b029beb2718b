/**
 * The port through which every module records what it did, inside the transaction of the change itself
 * ("no change without its entry, no entry without its change"). Implemented by the audit log; modules below
 * it in the dependency order see only this interface. `trx` is the store transaction of the change.
 */
export interface AuditSink {
  /** Appends entries to the audit log within `trx`. */
  record(trx: unknown, entries: readonly AuditEntryInput[]): Promise<void>;
  /** Queues consent events, as inserted into `consent_events` in `trx` (column names), as leaves of the consent tree. */
  queueConsentEvents(trx: unknown, rows: readonly Readonly<Record<string, unknown>>[]): Promise<void>;
}

/** One audited action, as a module reports it. Details carry ids and counts only, never personal data. */
export interface AuditEntryInput {
  /** API key id (`key:<id>`), `cli:<name>` or a system component (`system:<name>`). */
  readonly actor: string;
  readonly action: string;
  readonly targetType: 'subject' | 'api_key' | 'purpose' | 'master_key' | 'consent_batch' | 'blind_index' | 'system' | 'datamap' | 'request' | 'event_subscription' | 'incident' | 'legal_hold' | 'retention_run' | 'privacy_sign_in';
  /** For subjects: the subject id (stored only as its keyed reference). For resources: their id. */
  readonly targetId: string | null;
  readonly outcome?: 'success' | 'failure' | 'denied';
  readonly requestId?: string | null;
  readonly details?: Readonly<Record<string, unknown>>;
  /** Personal details, already sealed under the subject key (field format), or null. */
  readonly sealedPayload?: string | null;
}

/**
 * Who reads personal data and why, for the audit entry of the read: the actor, the request id, and the purpose
 * the caller stated for it (over HTTP the `Custodian-Purpose` header; a purpose key, never personal data).
 */
export interface ReadContext {
  readonly actor: string;
  readonly requestId?: string | null;
  readonly purpose?: string;
}

/**
 * The `details` fields recording the stated purpose of a read: `{ purpose }`, or none when no purpose was stated
 * (the `purpose_mismatch` detection rule reads an absent `purpose` as "not stated").
 */
export function purposeDetails(ctx: { readonly purpose?: string } | undefined): { purpose?: string } {
  return ctx?.purpose === undefined ? {} : { purpose: ctx.purpose };
}
