/** Lawful bases for processing, GDPR Art. 6(1)(a)–(f) (LGPD Art. 7 and UK GDPR use the same set). */
export const LEGAL_BASES = {
  consent: { article: 'GDPR Art. 6(1)(a)', requiresConsent: true, objectable: false },
  contract: { article: 'GDPR Art. 6(1)(b)', requiresConsent: false, objectable: false },
  legal_obligation: { article: 'GDPR Art. 6(1)(c)', requiresConsent: false, objectable: false },
  vital_interests: { article: 'GDPR Art. 6(1)(d)', requiresConsent: false, objectable: false },
  // GDPR Art. 21(1): the data subject may object to processing based on (e) or (f).
  public_task: { article: 'GDPR Art. 6(1)(e)', requiresConsent: false, objectable: true },
  legitimate_interests: { article: 'GDPR Art. 6(1)(f)', requiresConsent: false, objectable: true },
} as const;

/** A key of {@link LEGAL_BASES}. */
export type LegalBasis = keyof typeof LEGAL_BASES;

export const LEGAL_BASIS_KEYS = Object.keys(LEGAL_BASES) as [LegalBasis, ...LegalBasis[]];
