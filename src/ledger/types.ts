import type { LegalBasis, RestrictionLiftReason, RestrictionReason } from '../core/index.js';

/** A consent decision. Withdrawal is a new event, never an edit. */
export const DECISIONS = ['granted', 'denied', 'withdrawn'] as const;
export type Decision = (typeof DECISIONS)[number];

/** The state of one (subject, purpose): the latest decision, or `expired` / `none`. */
export const CONSENT_STATUSES = ['granted', 'denied', 'withdrawn', 'expired', 'none'] as const;
export type ConsentStatus = (typeof CONSENT_STATUSES)[number];

/**
 * The status a check answers: the consent status, or `restricted` when processing of the subject is restricted
 * (GDPR Art. 18) and the purpose is not one a restriction allows.
 */
export const CHECK_STATUSES = [...CONSENT_STATUSES, 'restricted'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

/** How a decision was collected. `gpc` is set by Custodian when it applies a Global Privacy Control signal. */
export const COLLECTION_METHODS = ['api', 'banner', 'preference_center', 'privacy_center', 'cli', 'gpc', 'tcf', 'form', 'email', 'phone', 'paper', 'import'] as const;
export type CollectionMethod = (typeof COLLECTION_METHODS)[number];

/** Methods a caller may submit: `gpc` is recorded only by Custodian when it applies the signal. */
export const INPUT_METHODS = COLLECTION_METHODS.filter((m): m is Exclude<CollectionMethod, 'gpc'> => m !== 'gpc');
export type InputMethod = Exclude<CollectionMethod, 'gpc'>;

/** A decoded, validated IAB TCF v2 string's facts worth keeping beside the raw string. */
export interface TcfSummary {
  readonly version: number;
  readonly policyVersion: number;
  readonly cmpId: number;
  readonly cmpVersion: number;
  readonly vendorListVersion: number;
  readonly created: string | null;
  readonly lastUpdated: string | null;
  readonly purposeConsents: readonly number[];
  readonly purposeLegitimateInterests: readonly number[];
  readonly vendorConsentCount: number;
}

/** Evidence of how a decision was collected, minimised before it is stored. */
export interface Evidence {
  /** Truncated to /24 (IPv4) or /48 (IPv6) unless configured otherwise. */
  readonly ip?: string;
  readonly userAgent?: string;
  /** Scheme, host and path only: query strings and fragments often carry personal data. */
  readonly pageUrl?: string;
  readonly tcString?: string;
  readonly tcf?: TcfSummary;
  readonly gpc?: boolean;
  /** Set instead of the details when the subject was crypto-shredded: the event stays, its evidence is unreadable. */
  readonly shredded?: boolean;
}

/** One decision to record, as a caller submits it. */
export interface ConsentEventInput {
  /** The application's opaque user id (≤ 256 characters). Never an e-mail address. */
  readonly subjectId: string;
  readonly purpose: string;
  readonly decision: Decision;
  readonly jurisdiction?: string | null;
  readonly noticeVersion?: string | null;
  readonly method?: InputMethod;
  /** When the client says the decision was made (kept, never trusted for ordering). */
  readonly clientTime?: string | null;
  readonly expiresAt?: string | null;
  readonly evidence?: EvidenceInput | null;
  readonly idempotencyKey?: string | null;
}

/** Evidence as submitted, before minimisation. */
export interface EvidenceInput {
  readonly ip?: string;
  readonly userAgent?: string;
  readonly pageUrl?: string;
  readonly tcString?: string;
  readonly gpc?: boolean;
}

/** Who records a batch and which signals came with it. */
export interface RecordContext {
  /** The API key id or system component that records. */
  readonly actor: string;
  /** A Global Privacy Control signal (`Sec-GPC: 1` or `gpc: true`) came with the request. */
  readonly gpc?: boolean;
  /** The request id, recorded in the audit entry. */
  readonly requestId?: string;
}

/** Options of {@link ConsentLedger.applyGpc}: where the subject is and who applies the signal. */
export interface ApplyGpcOptions {
  /** The subject's jurisdiction: the signal opts out only where it honours GPC (or with `gpcEverywhere`). */
  readonly jurisdiction: string | null;
  /** The API key id or system component that applies the signal (e.g. the privacy center's session). */
  readonly actor: string;
  /** The request id, recorded in the audit entry. */
  readonly requestId?: string;
}

/** What {@link ConsentLedger.applyGpc} did. */
export interface GpcApplication {
  /** Whether the jurisdiction (or `gpcEverywhere`) makes the signal an opt-out. */
  readonly honoured: boolean;
  /** Purposes that got a GPC opt-out now, sorted; empty when the subject was opted out already. */
  readonly purposes: readonly string[];
  /** The batch holding the opt-outs, or null when nothing was recorded. */
  readonly batchId: string | null;
}

/** A stored consent event. */
export interface ConsentEvent {
  readonly id: string;
  readonly subjectId: string;
  readonly purpose: string;
  readonly decision: Decision;
  readonly legalBasis: LegalBasis;
  readonly jurisdiction: string | null;
  readonly noticeVersion: string | null;
  readonly method: CollectionMethod;
  readonly recordedAt: string;
  readonly clientTime: string | null;
  readonly expiresAt: string | null;
  readonly gpc: boolean;
  readonly evidence: Evidence | null;
  readonly idempotencyKey: string | null;
  readonly batchId: string;
  readonly actor: string;
}

/** A recorded event in the answer to a batch; `replayed` when its idempotency key was seen before. */
export interface RecordedEvent extends ConsentEvent {
  readonly replayed: boolean;
}

/** The answer to {@link ConsentLedger.record}. */
export interface RecordResult {
  readonly batchId: string;
  readonly events: readonly RecordedEvent[];
}

/** The state of one purpose for one subject. */
export interface PurposeState {
  readonly purpose: string;
  readonly status: ConsentStatus;
  readonly eventId: string | null;
  readonly decidedAt: string | null;
  readonly expiresAt: string | null;
  readonly method: CollectionMethod | null;
  readonly jurisdiction: string | null;
}

/** The answer to a consent check. */
export interface ConsentCheck {
  readonly subjectId: string;
  readonly purpose: string;
  readonly allowed: boolean;
  readonly status: CheckStatus;
  readonly legalBasis: LegalBasis;
  readonly reason: string;
  /** The deciding consent event, if any (also when the answer is `restricted`). */
  readonly eventId: string | null;
}

/** Whether processing of a subject is restricted (GDPR Art. 18; LGPD Art. 18, IV), and since when and why. */
export interface Restriction {
  readonly subjectId: string;
  readonly restricted: boolean;
  /** The reason code of the latest restriction or lifting, or null when the subject was never restricted. */
  readonly reason: RestrictionReason | RestrictionLiftReason | null;
  /** The data subject request that asked for the restriction in force, if any. */
  readonly requestId: string | null;
  /** When the restriction in force began; null when not restricted. */
  readonly since: string | null;
  /** The latest restriction event of the subject, or null. */
  readonly eventId: string | null;
  /** When the latest restriction event was recorded, or null. */
  readonly updatedAt: string | null;
}

/** The answer to a restriction or lifting: the restriction now, and whether this call changed it. */
export interface RestrictionChange extends Restriction {
  /** False when the subject already was in the requested state (nothing was recorded). */
  readonly changed: boolean;
}

/** Options of {@link ConsentLedger.restrict}. */
export interface RestrictOptions {
  readonly reason: RestrictionReason;
  /** The data subject request that asks for it. */
  readonly requestId?: string | null;
  /** The API key id, CLI operator or system component that restricts. */
  readonly actor: string;
  /** The HTTP request id, recorded in the audit entry. */
  readonly auditRequestId?: string;
}

/** Options of {@link ConsentLedger.liftRestriction}. */
export interface LiftRestrictionOptions {
  readonly reason: RestrictionLiftReason;
  readonly actor: string;
  /** The HTTP request id, recorded in the audit entry. */
  readonly auditRequestId?: string;
}

/** Options of {@link ConsentLedger.history}. */
export interface HistoryOptions {
  readonly purpose?: string;
  /** ISO instant: only events recorded at or before it, and the state as of it. */
  readonly asOf?: string;
  readonly limit?: number;
  /** Cursor: the last event id of the previous page. */
  readonly after?: string;
}

/** The answer to {@link ConsentLedger.history}. */
export interface HistoryResult {
  readonly subjectId: string;
  readonly asOf: string;
  readonly events: readonly ConsentEvent[];
  readonly state: readonly PurposeState[];
  readonly nextCursor: string | null;
}
