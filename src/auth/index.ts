export { ApiKeyService, SCOPES, MIN_CHOSEN_KEY_LENGTH, hasScope, type Scope, type ApiKeyPrincipal, type MintedApiKey } from './api-keys.js';
