/** The privacy center for data subjects at `/privacy` (docs/privacy-center.md): sign-in, consent, own requests. */
export { PrivacyCenter, type PrivacyCenterDeps, type PrivacyCenterOptions, type SubjectLookup, type PrivacyPurposeView, type PrivacyConsentView, type OpenedSession } from './privacy-center.js';
export { MemorySessionStore, type SessionStore, type SignInChallenge, type PrivacySession } from './session-store.js';
export { DEFAULT_BRANDING, PRIVACY_CENTER_LANGUAGES, brandingSchema, loadBranding, resolveBranding, type Branding, type PrivacyCenterLanguage } from './branding.js';
