/** The privacy center for data subjects at `/privacy` (docs/privacy-center.md): sign-in, consent, own requests. */
export { PrivacyCenter, type PrivacyCenterDeps, type PrivacyCenterOptions, type SubjectLookup, type PrivacyPurposeView, type PrivacyConsentView, type PrivacyCallContext, type OpenedSession } from './privacy-center.js';
export { MemorySessionStore, type SessionStore, type SignInChallenge, type PrivacySession, type PutSessionOptions, type SessionWrite } from './session-store.js';
export { StoreSessionStore, type StoreSessionStoreDeps, type StoreSessionStoreOptions, type SessionCipher } from './store/store-session-store.js';
export { RECTIFIABLE_CATEGORY_ROOTS, categoryLabel, rectifiableFields, type RectifiableField } from './rectifiable-fields.js';
export { DEFAULT_BRANDING, PRIVACY_CENTER_LANGUAGES, brandingSchema, loadBranding, purposeTextIn, resolveBranding, type Branding, type PrivacyCenterLanguage, type PurposeText } from './branding.js';
