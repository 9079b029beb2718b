/**
 * Why processing of a subject is restricted: the grounds of GDPR Art. 18(1) (UK GDPR the same) and the blocking
 * of LGPD Art. 18, IV, as codes. Reasons are codes, never free text, so they can be stored, logged and
 * announced without carrying personal details.
 */
export const RESTRICTION_REASONS = {
  accuracy_contested: 'The subject contests the accuracy of the data, for the time needed to verify it (GDPR Art. 18(1)(a)).',
  unlawful_processing: 'The processing is unlawful and the subject asks for restriction instead of erasure (GDPR Art. 18(1)(b)).',
  legal_claims: 'The controller no longer needs the data but the subject needs it for legal claims (GDPR Art. 18(1)(c)).',
  objection_pending: 'The subject objected (Art. 21(1)), pending verification of whether the controller’s grounds override (GDPR Art. 18(1)(d)).',
  blocking: 'Blocking of unnecessary, excessive or unlawfully processed data (LGPD Art. 18, IV).',
  subject_request: 'A restriction request of the subject, the ground not (yet) established (GDPR Art. 18(1); LGPD Art. 18, IV).',
} as const;

/** A key of {@link RESTRICTION_REASONS}. */
export type RestrictionReason = keyof typeof RESTRICTION_REASONS;
export const RESTRICTION_REASON_KEYS = Object.keys(RESTRICTION_REASONS) as [RestrictionReason, ...RestrictionReason[]];

/**
 * Why a restriction ends. The subject must be told before it is lifted (GDPR Art. 18(3)); Custodian records the
 * lifting, the controller informs the subject.
 */
export const RESTRICTION_LIFT_REASONS = {
  accuracy_verified: 'The accuracy of the data was verified or the data corrected (ends an Art. 18(1)(a) restriction).',
  objection_decided: 'The objection was decided (ends an Art. 18(1)(d) restriction).',
  legal_claims_ended: 'The subject no longer needs the data for legal claims (ends an Art. 18(1)(c) restriction).',
  subject_consent: 'The subject consents to processing again, or asks for the restriction to end (GDPR Art. 18(2)).',
  ground_not_established: 'The ground of the restriction request was examined and is not established.',
  recorded_in_error: 'The restriction was recorded in error.',
} as const;

/** A key of {@link RESTRICTION_LIFT_REASONS}. */
export type RestrictionLiftReason = keyof typeof RESTRICTION_LIFT_REASONS;
export const RESTRICTION_LIFT_REASON_KEYS = Object.keys(RESTRICTION_LIFT_REASONS) as [RestrictionLiftReason, ...RestrictionLiftReason[]];
