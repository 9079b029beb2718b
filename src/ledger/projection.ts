import { LEGAL_BASES, type Purpose } from '../core/index.js';
import type { CollectionMethod, ConsentCheck, ConsentStatus, Decision, PurposeState } from './types.js';

/** The facts of the deciding event that the projection keeps per (subject, purpose). */
export interface StateRow {
  readonly purpose: string;
  readonly eventId: string;
  readonly decision: Decision;
  readonly method: CollectionMethod;
  readonly jurisdiction: string | null;
  readonly gpc: boolean;
  /** Epoch ms. */
  readonly recordedAt: number;
  /** Epoch ms, or null for no expiry. */
  readonly expiresAt: number | null;
}

/**
 * Folds an ordered history into the state per purpose: the latest event wins (events are ordered by id,
 * which is time-ordered). The stored projection must always equal this fold; a property test checks it.
 */
export function foldHistory(events: Iterable<StateRow>): Map<string, StateRow> {
  const out = new Map<string, StateRow>();
  for (const e of events) {
    const prev = out.get(e.purpose);
    if (prev === undefined || prev.eventId < e.eventId) out.set(e.purpose, e);
  }
  return out;
}

/** The status of a state row at instant `at` (ms): a grant past its expiry is `expired`. */
export function statusAt(row: StateRow | undefined, at: number): ConsentStatus {
  if (row === undefined) return 'none';
  if (row.expiresAt !== null && row.expiresAt <= at) return 'expired';
  return row.decision;
}

/** Renders a state row as the public {@link PurposeState}. */
export function toPurposeState(purpose: string, row: StateRow | undefined, at: number): PurposeState {
  return {
    purpose,
    status: statusAt(row, at),
    eventId: row?.eventId ?? null,
    decidedAt: row ? new Date(row.recordedAt).toISOString() : null,
    expiresAt: row?.expiresAt != null ? new Date(row.expiresAt).toISOString() : null,
    method: row?.method ?? null,
    jurisdiction: row?.jurisdiction ?? null,
  };
}

const REASONS = Object.fromEntries(
  Object.entries(LEGAL_BASES).map(([key, b]) => [
    key,
    {
      granted: `consent granted (${b.article})`,
      objected: `the subject objected to processing under ${key} (GDPR Art. 21)`,
      notRequired: `legal basis ${key} (${b.article}) does not require consent`,
      restrictedAllowed: `processing restricted (GDPR Art. 18); allowed under legal basis ${key} (${b.article}): storage and legal claims (GDPR Art. 18(2))`,
    },
  ]),
) as Record<string, { granted: string; objected: string; notRequired: string; restrictedAllowed: string }>;

/** The reason of a check refused because processing of the subject is restricted. */
export const RESTRICTED_REASON = 'processing restricted (GDPR Art. 18)';

function answer(subjectId: string, purpose: Purpose, status: ConsentCheck['status'], row: StateRow | undefined, allowed: boolean, reason: string): ConsentCheck {
  return { subjectId, purpose: purpose.key, status, legalBasis: purpose.legalBasis, eventId: row === undefined ? null : row.eventId, allowed, reason };
}

/**
 * Decides whether processing for `purpose` is allowed for a subject whose deciding event is `row`, at `at`.
 * Consent-gated purposes need a live, unexpired grant (GDPR Art. 6(1)(a), Art. 7(3)). Purposes on another
 * basis are allowed without one, except that an objection (a `denied`/`withdrawn` event) stops processing
 * based on public task or legitimate interests (GDPR Art. 21(1), and absolutely for direct marketing, Art. 21(3)).
 * When processing of the subject is `restricted` (GDPR Art. 18), only purposes based on a legal obligation are
 * allowed; every other purpose answers status `restricted`, whatever the consent state.
 */
export function evaluate(subjectId: string, purpose: Purpose, row: StateRow | undefined, at: number, restricted = false): ConsentCheck {
  const status = statusAt(row, at);
  const reasons = REASONS[purpose.legalBasis]!;
  // GDPR Art. 18(2) (LGPD Art. 18, IV): a restricted subject's data may only be stored, or processed for legal
  // claims, the rights of others or important public interest. Custodian lets through only purposes based on a
  // legal obligation (Art. 6(1)(c)), the statutory keeping and compliance such claims rest on; a consent given
  // before the restriction does not lift it (the restriction must be lifted: reason `subject_consent`).
  if (restricted) {
    if (purpose.legalBasis !== 'legal_obligation') return answer(subjectId, purpose, 'restricted', row, false, RESTRICTED_REASON);
    return answer(subjectId, purpose, status, row, true, reasons.restrictedAllowed);
  }
  if (purpose.consentRequired) {
    switch (status) {
      case 'granted':
        return answer(subjectId, purpose, status, row, true, reasons.granted);
      case 'expired':
        return answer(subjectId, purpose, status, row, false, 'consent expired; ask again');
      case 'withdrawn':
        return answer(subjectId, purpose, status, row, false, 'consent withdrawn (GDPR Art. 7(3))');
      case 'denied':
        return answer(subjectId, purpose, status, row, false, row?.method === 'gpc' ? 'opted out by Global Privacy Control signal' : 'consent denied');
      case 'none':
        return answer(subjectId, purpose, status, row, false, 'no consent recorded');
    }
  }
  if (LEGAL_BASES[purpose.legalBasis].objectable && (status === 'denied' || status === 'withdrawn')) {
    return answer(subjectId, purpose, status, row, false, reasons.objected);
  }
  return answer(subjectId, purpose, status, row, true, reasons.notRequired);
}
