/**
 * The closed vocabulary of audit actions. Each names what happened, in the words of the domain; an entry's
 * `details` carry ids and counts only, and personal details go into the entry's sealed payload.
 */
export const AUDIT_ACTIONS = {
  'consent.recorded': 'A batch of consent events was recorded (details: batch id, event count, purposes).',
  'consent.history.read': "A subject's consent history with evidence was read (details: events returned, the purpose stated for the read).",
  'consent.expiries_announced': 'Grants past their expiry were announced as consent.expired events (details: count).',
  'purpose.saved': 'A purpose was created or replaced.',
  'api_key.created': 'An API key was minted (details: key id, scopes, declared purposes).',
  'api_key.revoked': 'An API key was revoked.',
  'keys.rotated': 'A new master-key version became primary.',
  'keys.retired': 'A master-key version was retired.',
  'subject.shredded': "A subject's data keys were destroyed (crypto-shredding).",
  'subject.restricted': 'Processing of a subject was restricted (GDPR Art. 18; details: reason code, restriction event id, data subject request id).',
  'subject.restriction_lifted': 'A restriction of processing of a subject was lifted (GDPR Art. 18(3); details: reason code, restriction event id).',
  'datamap.updated': 'A new data map version was stored (details: version, SHA-256, counts of what changed).',
  'request.created': 'A data subject request was received (details: type, regime, status, identity kinds — never identity values).',
  'request.status_changed': 'A request moved in its lifecycle (details: from, to); the reason is in the request history.',
  'request.extended': 'A request deadline was extended (details: the new due time).',
  'request.verification_failed': 'A wrong verification code was given (details: attempts so far).',
  'request.package_created': 'The access package of a request was built and stored sealed (details: its SHA-256).',
  'request.certificate_issued': 'A signed erasure certificate was issued (details: its SHA-256).',
  'request.package_downloaded': 'The access package of a request was downloaded (details: the purpose stated for the download).',
  'request.overdue': 'An open request passed its legal deadline (raised once per deadline).',
  'request.due_soon': 'An open request is due within the alert window (raised once per deadline).',
  'request.rectified': 'Corrections of a rectification request were written (details: collections, field names, row counts — never values).',
  'event_subscription.created': 'An event subscription was created (details: kind, filters; never its secret or credentials).',
  'event_subscription.deleted': 'An event subscription was deleted (soft delete: its delivery log stays).',
  'events.replayed': 'Events were queued again for delivery to a subscription (details: from, count).',
  'incident.opened': 'A breach incident was recorded (details: status, source, counts — the description is sealed, never in the log).',
  'incident.updated': 'A breach incident changed (details: the names of the fields changed, the new status).',
  'incident.assessment_overridden': 'The risk assessment of an incident was overridden (details: computed and chosen outcome; the justification is in the sealed timeline).',
  'incident.escalated': 'A breach notification deadline reached an escalation point (details: rule id, point, due time; raised once).',
  'incident.scoped': 'The people affected by an incident were identified from the data map and connectors (details: collections, count — never identities).',
  'incident.subjects_read': 'The identities of the people affected by an incident were read (details: count, the purpose stated for the read).',
  'incident.narrative_read': "Incidents' sealed free text (description, cause, containment actions, timeline notes; it may hold personal data) was read (target: the incident, or none for a list; details: count of incidents, the purpose stated for the read).",
  'incident.notified': 'Breach notifications were queued in the mail outbox (details: audience, stage, jurisdiction, recipient count).',
  'auth.throttled': 'A client address was throttled after repeated failed authentications (details: failures in the window; never the address).',
  'retention.run_started': 'A retention run (or dry run) started or resumed (details: run id, dry run, data map version, system filter).',
  'retention.run_completed': 'A retention run ended (details: status, per-collection counts matched, deleted, anonymised, skipped by reason — never values).',
  'legal_hold.created': 'A legal hold was placed (details: scope, system or collection, identity kind, until — a subject only as a keyed digest, never its identity).',
  'legal_hold.released': 'A legal hold was released before its end.',
  'crypto.decrypted': 'Field ciphertexts were decrypted over the API (details: count, the purpose stated for the read).',
  'privacy_center.code_sent': 'A privacy center sign-in code was asked for (target: the challenge id; details: the address as its `email` blind index, whether the code was sent or held back by the per-address limit — never the address).',
  'privacy_center.verification_succeeded': 'A privacy center sign-in code was right and a session opened (target: the subject; details: challenge id, session reference).',
  'privacy_center.verification_failed': 'A privacy center sign-in code was wrong, expired or used up (target: the challenge id; details: reason code, attempts left).',
  'privacy_center.session_ended': 'A privacy center session ended (target: the subject; details: session reference, reason: signed_out or expired).',
} as const;

/** An action of {@link AUDIT_ACTIONS}. */
export type AuditAction = keyof typeof AUDIT_ACTIONS;
export const AUDIT_ACTION_KEYS = Object.keys(AUDIT_ACTIONS) as [AuditAction, ...AuditAction[]];

/** How an audited operation ended. */
export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];
