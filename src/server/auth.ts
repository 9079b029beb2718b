import type { FastifyInstance, FastifyRequest } from 'fastify';
import { hasScope, type ApiKeyPrincipal, type ApiKeyService, type Scope } from '../auth/index.js';
import { CustodianError } from '../core/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated API key, on routes that require one. */
    principal: ApiKeyPrincipal | null;
  }
  interface FastifyContextConfig {
    /** The scope a route requires; routes without one are public. */
    scope?: Scope;
  }
}

/** The authenticated principal of a route that declares a scope. */
export function principalOf(request: FastifyRequest): ApiKeyPrincipal {
  if (request.principal === null) throw new CustodianError('CST_ERR_AUTH_MISSING', 'authentication required');
  return request.principal;
}

/** The actor recorded for a request in the ledger and the audit log: `key:<api key id>`. */
export function actorOf(request: FastifyRequest): string {
  return `key:${principalOf(request).id}`;
}

/**
 * Authenticates `Authorization: Bearer <key>` before the body is read, on every route whose config names
 * a scope: 401 without a valid key, 403 without the scope.
 */
export function installAuth(app: FastifyInstance, apiKeys: ApiKeyService): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const header = request.headers.authorization;
    if (header === undefined || header === '') throw new CustodianError('CST_ERR_AUTH_MISSING', 'send Authorization: Bearer <api key>');
    const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
    if (!m) throw new CustodianError('CST_ERR_AUTH_INVALID', 'invalid API key');
    const principal = await apiKeys.authenticate(m[1]!);
    if (!hasScope(principal, scope)) {
      throw new CustodianError('CST_ERR_AUTH_FORBIDDEN', 'the API key lacks the required scope', { details: { required: scope } });
    }
    request.principal = principal;
  });
}
