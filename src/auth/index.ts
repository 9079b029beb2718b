export { ApiKeyService, SCOPES, MIN_CHOSEN_KEY_LENGTH, MAX_KEY_PURPOSES, hasScope, type Scope, type ApiKeyPrincipal, type ApiKeyRecord, type MintedApiKey, type PurposeLookup } from './api-keys.js';
