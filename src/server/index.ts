export { buildServer, type BuildServerOptions } from './build-server.js';
