export * from './manifest.js';
export * from './model.js';
export * from './issues.js';
export * from './load.js';
export { validateManifest, introspectionIssues, type IntrospectedTable } from './validate.js';
export * from './diff.js';
export * from './service.js';
export * from './fides.js';
