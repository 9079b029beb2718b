export * from './api-key-secret.js';
export * from './master-key.js';
export * from './aead.js';
export * from './blind-index.js';
export type { KekProvider } from './kek-provider.js';
export { LocalKekProvider } from './local/local-kek-provider.js';
export { Keyring, type KeyringDeps, type ShredReceipt, type ShredHistory, type RewrapProgress, type KeyringStatus } from './keyring.js';
export { HttpKmsKekProvider, parseKmsKeys, type HttpKmsKekProviderOptions } from './http-kms/http-kms-kek-provider.js';
