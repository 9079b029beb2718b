export * from './errors.js';
export * from './clock.js';
export * from './time.js';
export * from './ids.js';
export * from './legal-bases.js';
export * from './jurisdictions.js';
export * from './purposes.js';
export * from './text.js';
