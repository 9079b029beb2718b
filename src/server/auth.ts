import type { FastifyInstance, FastifyRequest } from 'fastify';
import { hasScope, type ApiKeyPrincipal, type ApiKeyService, type Scope } from '../auth/index.js';
import { CustodianError, isCustodianError, isPurposeKey } from '../core/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated API key, on routes that require one. */
    principal: ApiKeyPrincipal | null;
  }
  interface FastifyContextConfig {
    /** The scope a route requires (`authenticated`: any valid key, e.g. `GET /v1/me`); routes without one are public. */
    scope?: Scope | 'authenticated';
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
 * The purpose the caller states for this request in the `Custodian-Purpose` header (docs/api.md#purpose-of-access),
 * or undefined when none is sent. Routes that hand out personal data declare the header in their schema, which
 * answers 400 to a malformed key first; it is checked again here so that nothing else is ever recorded.
 */
export function statedPurpose(request: FastifyRequest): string | undefined {
  const value = request.headers['custodian-purpose'];
  if (value === undefined || value === '') return undefined;
  if (!isPurposeKey(value)) {
    throw new CustodianError('CST_ERR_VALIDATION', 'Custodian-Purpose must be one purpose key such as essential.service', { details: { issues: [{ path: 'headers.custodian-purpose', message: 'must be a purpose key' }] } });
  }
  return value;
}

/**
 * Who reads personal data in this request and why, for the audit entry of the read: the API key actor, the
 * request id and the stated purpose ({@link statedPurpose}) when there is one.
 */
export function readerOf(request: FastifyRequest): { actor: string; requestId: string; purpose?: string } {
  const purpose = statedPurpose(request);
  return { actor: actorOf(request), requestId: request.id, ...(purpose === undefined ? {} : { purpose }) };
}

/** Options of {@link installAuth}. */
export interface AuthOptions {
  /** Unknown API keys one client address may send per minute before 429 (default 30). */
  readonly failuresPerMinute?: number;
  /** Called once each time an address becomes throttled (e.g. to audit `auth.throttled`); never given the address. */
  readonly onThrottle?: (info: { failures: number }) => void;
  readonly now?: () => number;
}

/**
 * Per-address token buckets of failed authentications: each failure takes a token, tokens come back at
 * `perMinute` per minute, an empty bucket answers 429 until one is back. Memory is bounded: at most
 * {@link AuthFailureLimiter.MAX_TRACKED} addresses are tracked (full buckets are dropped first, then the oldest).
 */
export class AuthFailureLimiter {
  static readonly MAX_TRACKED = 10_000;
  readonly #perMinute: number;
  readonly #buckets = new Map<string, { tokens: number; at: number; throttled: boolean }>();

  constructor(perMinute: number) {
    this.#perMinute = Math.max(1, perMinute);
  }

  #refill(key: string, now: number): { tokens: number; at: number; throttled: boolean } | undefined {
    const b = this.#buckets.get(key);
    if (b === undefined) return undefined;
    b.tokens = Math.min(this.#perMinute, b.tokens + ((now - b.at) / 60_000) * this.#perMinute);
    b.at = now;
    if (b.tokens >= 1) b.throttled = false;
    return b;
  }

  /** Seconds until `key` may try again (0: now). */
  retryAfter(key: string, now: number): number {
    const b = this.#refill(key, now);
    if (b === undefined || b.tokens >= 1) return 0;
    return Math.max(1, Math.ceil(((1 - b.tokens) * 60) / this.#perMinute));
  }

  /** Records a failure of `key`; true when this failure empties the bucket (the address becomes throttled). */
  fail(key: string, now: number): boolean {
    let b = this.#refill(key, now);
    if (b === undefined) {
      if (this.#buckets.size >= AuthFailureLimiter.MAX_TRACKED) this.#prune(now);
      b = { tokens: this.#perMinute, at: now, throttled: false };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.max(0, b.tokens - 1);
    if (b.tokens < 1 && !b.throttled) {
      b.throttled = true;
      return true;
    }
    return false;
  }

  #prune(now: number): void {
    for (const key of [...this.#buckets.keys()]) if ((this.#refill(key, now)?.tokens ?? 0) >= this.#perMinute) this.#buckets.delete(key);
    while (this.#buckets.size >= AuthFailureLimiter.MAX_TRACKED) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}

/**
 * Authenticates `Authorization: Bearer <key>` before the body is read, on every route whose config names
 * a scope: 401 without a valid key, 403 without the scope. An address that sent more than `failuresPerMinute`
 * unknown keys in the last minute gets 429 (CST_ERR_AUTH_RATE_LIMITED, Retry-After) instead of 401 for further
 * unknown keys (see {@link AuthFailureLimiter}); requests with a valid key always pass.
 */
export function installAuth(app: FastifyInstance, apiKeys: ApiKeyService, options: AuthOptions = {}): void {
  const perMinute = options.failuresPerMinute ?? 30;
  const limiter = new AuthFailureLimiter(perMinute);
  const now = options.now ?? Date.now;
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request, reply) => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const header = request.headers.authorization;
    if (header === undefined || header === '') throw new CustodianError('CST_ERR_AUTH_MISSING', 'send Authorization: Bearer <api key>');
    const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
    if (!m) throw new CustodianError('CST_ERR_AUTH_INVALID', 'invalid API key');
    let principal: ApiKeyPrincipal;
    try {
      principal = await apiKeys.authenticate(m[1]!);
    } catch (err) {
      // Only keys that were looked up and not found count (guessing); a valid key is never throttled, so
      // clients sharing an address (NAT, a proxy without trustProxy) are not locked out by someone else.
      if (!isCustodianError(err, 'CST_ERR_AUTH_INVALID')) throw err;
      const at = now();
      const wait = limiter.retryAfter(request.ip, at);
      if (wait > 0) {
        void reply.header('retry-after', String(wait));
        throw new CustodianError('CST_ERR_AUTH_RATE_LIMITED', 'too many failed authentications from this address; retry later', { details: { retryAfterSeconds: wait } });
      }
      if (limiter.fail(request.ip, at)) options.onThrottle?.({ failures: perMinute });
      throw err;
    }
    if (scope !== 'authenticated' && !hasScope(principal, scope)) {
      throw new CustodianError('CST_ERR_AUTH_FORBIDDEN', 'the API key lacks the required scope', { details: { required: scope } });
    }
    request.principal = principal;
  });
}
