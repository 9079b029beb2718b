/** Google Consent Mode v2 signals the banner sets. */
export type ConsentModeSignal = 'ad_storage' | 'analytics_storage' | 'ad_user_data' | 'ad_personalization';

/** A purpose as `GET /v1/banner/experience` describes it. */
export interface BannerPurpose {
  readonly key: string;
  readonly title: string;
  readonly description: string;
  readonly legalBasis: string;
  readonly gpcOptOut: boolean;
  readonly expiryMonths: number | null;
  readonly defaultGranted: boolean;
}

/** The answer of `GET /v1/banner/experience`. */
export interface Experience {
  readonly jurisdiction: string;
  readonly type: 'opt_in' | 'opt_out';
  readonly noticeVersion: string;
  readonly gpcHonoured: boolean;
  readonly purposes: readonly BannerPurpose[];
  readonly consentMode: Readonly<Record<ConsentModeSignal, readonly string[]>>;
}

/** The visitor's choice, as stored in the `custodian_consent` cookie and returned by `custodian.consent.get()`. */
export interface ConsentChoice {
  /** Notice version the choice was made on. */
  readonly noticeVersion: string;
  /** Anonymous subject id (`anon-<uuid>`) the choice is recorded under in the ledger. */
  readonly anonymousId: string;
  readonly jurisdiction: string;
  /** Purpose key → granted. */
  readonly purposes: Readonly<Record<string, boolean>>;
  /** Consent Mode signal → granted, computed when the choice was made. */
  readonly consentMode: Readonly<Record<ConsentModeSignal, boolean>>;
  /** Epoch milliseconds. */
  readonly decidedAt: number;
  /** Epoch milliseconds after which the banner asks again. */
  readonly expiresAt: number;
  /** A Global Privacy Control signal was applied to the choice. */
  readonly gpcApplied: boolean;
  /** Set while the ledger has not confirmed the choice; it is resent on the next page load. */
  readonly pendingSubmission?: string;
}
