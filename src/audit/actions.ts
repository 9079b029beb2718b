/**
 * The closed vocabulary of audit actions. Each names what happened, in the words of the domain; an entry's
 * `details` carry ids and counts only, and personal details go into the entry's sealed payload.
 */
export const AUDIT_ACTIONS = {
  'consent.recorded': 'A batch of consent events was recorded (details: batch id, event count, purposes).',
  'consent.history.read': "A subject's consent history with evidence was read.",
  'consent.expiries_announced': 'Grants past their expiry were announced as consent.expired events (details: count).',
  'purpose.saved': 'A purpose was created or replaced.',
  'api_key.created': 'An API key was minted (details: key id, scopes).',
  'api_key.revoked': 'An API key was revoked.',
  'keys.rotated': 'A new master-key version became primary.',
  'keys.retired': 'A master-key version was retired.',
  'subject.shredded': "A subject's data keys were destroyed (crypto-shredding).",
  'datamap.updated': 'A new data map version was stored (details: version, SHA-256, counts of what changed).',
  'request.created': 'A data subject request was received (details: type, regime, status, identity kinds — never identity values).',
  'request.status_changed': 'A request moved in its lifecycle (details: from, to); the reason is in the request history.',
  'request.extended': 'A request deadline was extended (details: the new due time).',
  'request.verification_failed': 'A wrong verification code was given (details: attempts so far).',
  'request.package_created': 'The access package of a request was built and stored sealed (details: its SHA-256).',
  'request.certificate_issued': 'A signed erasure certificate was issued (details: its SHA-256).',
  'request.package_downloaded': 'The access package of a request was downloaded.',
  'request.overdue': 'An open request passed its legal deadline (raised once per deadline).',
  'request.due_soon': 'An open request is due within the alert window (raised once per deadline).',
  'request.rectified': 'Corrections of a rectification request were written (details: collections, field names, row counts — never values).',
  'crypto.decrypted': 'Field ciphertexts were decrypted over the API (details: count).',
} as const;

/** An action of {@link AUDIT_ACTIONS}. */
export type AuditAction = keyof typeof AUDIT_ACTIONS;
export const AUDIT_ACTION_KEYS = Object.keys(AUDIT_ACTIONS) as [AuditAction, ...AuditAction[]];

/** How an audited operation ended. */
export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];
