import { CustodianError } from '../../core/index.js';

/**
 * The states of a data subject request:
 *
 *   received → awaiting_verification → verified → (awaiting_approval →) in_progress → completed | partially_completed
 *                                                                                    ↘ failed
 *   in_progress ⇄ paused | awaiting_input;   every state before the end → rejected
 *
 * `received` and `verified` are passing states (recorded in the history; a request rests in the next one).
 */
export const REQUEST_STATUSES = [
  'received',
  'awaiting_verification',
  'verified',
  'awaiting_approval',
  'in_progress',
  'paused',
  'awaiting_input',
  'completed',
  'partially_completed',
  'rejected',
  'failed',
] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** States a request never leaves. */
export const FINAL_STATUSES: ReadonlySet<RequestStatus> = new Set(['completed', 'partially_completed', 'rejected', 'failed']);

const NEXT: Readonly<Record<RequestStatus, readonly RequestStatus[]>> = {
  received: ['awaiting_verification', 'verified', 'awaiting_approval', 'in_progress', 'rejected'],
  awaiting_verification: ['verified', 'awaiting_approval', 'in_progress', 'rejected'],
  verified: ['awaiting_approval', 'in_progress', 'rejected'],
  awaiting_approval: ['in_progress', 'rejected'],
  in_progress: ['completed', 'partially_completed', 'failed', 'paused', 'awaiting_input', 'rejected'],
  paused: ['in_progress', 'rejected'],
  awaiting_input: ['in_progress', 'rejected'],
  completed: [],
  partially_completed: [],
  rejected: [],
  failed: [],
};

/** Whether the lifecycle allows `from` → `to`. */
export function canTransition(from: RequestStatus, to: RequestStatus): boolean {
  return NEXT[from].includes(to);
}

/** Throws CST_ERR_REQUEST_INVALID_TRANSITION unless the lifecycle allows `from` → `to`. */
export function assertTransition(from: RequestStatus, to: RequestStatus): void {
  if (!canTransition(from, to)) throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', `a request that is ${from} cannot become ${to}`, { details: { status: from, to } });
}
