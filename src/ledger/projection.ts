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

/**
 * Decides whether processing for `purpose` is allowed for a subject whose deciding event is `row`, at `at`.
 * Consent-gated purposes need a live, unexpired grant (GDPR Art. 6(1)(a), Art. 7(3)). Purposes on another
 * basis are allowed without one, except that an objection (a `denied`/`withdrawn` event) stops processing
 * based on public task or legitimate interests (GDPR Art. 21(1), and absolutely for direct marketing, Art. 21(3)).
 */
const REASONS = Object.fromEntries(
  Object.entries(LEGAL_BASES).map(([key, b]) => [
    key,
    {
      granted: `consent granted (${b.article})`,
      objected: `the subject objected to processing under ${key} (GDPR Art. 21)`,
      notRequired: `legal basis ${key} (${b.article}) does not require consent`,
    },
  ]),
) as Record<string, { granted: string; objected: string; notRequired: string }>;

function answer(subjectId: string, purpose: Purpose, status: ConsentCheck['status'], row: StateRow | undefined, allowed: boolean, reason: string): ConsentCheck {
  return { subjectId, purpose: purpose.key, status, legalBasis: purpose.legalBasis, eventId: row === undefined ? null : row.eventId, allowed, reason };
}

export function evaluate(subjectId: string, purpose: Purpose, row: StateRow | undefined, at: number): ConsentCheck {
  const status = statusAt(row, at);
  const reasons = REASONS[purpose.legalBasis]!;
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
