export * from './api-key-secret.js';
export * from './master-key.js';
