import { CustodianError, isFresh, toIso, uuidv7, type AuditSink, type Clock } from '../core/index.js';
import { digestsEqual, generateApiKeySecret, hashApiKeySecret } from '../crypto/index.js';
import type { Executor, Store } from '../store/index.js';

/** Scopes an API key can carry. `admin` implies every other scope. */
export const SCOPES = ['admin', 'consent:read', 'consent:write', 'crypto', 'audit:read', 'datamap:read', 'datamap:write', 'requests:read', 'requests:write', 'requests:admin', 'incidents:read', 'incidents:write', 'events:read', 'events:admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** An authenticated API key (never its secret). */
export interface ApiKeyPrincipal {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
}

/** A newly minted key: the secret is shown once and never stored. */
export interface MintedApiKey extends ApiKeyPrincipal {
  readonly secret: string;
  readonly createdAt: string;
}

/** Minimum length of an admin-chosen key (CUSTODIAN_ADMIN_KEY): short keys could be guessed from their hash. */
export const MIN_CHOSEN_KEY_LENGTH = 24;

// Authenticated keys are cached briefly so a request costs no store read; revocation takes effect within this.
const AUTH_CACHE_MS = 5000;
const AUTH_CACHE_MAX = 10_000;

/** Mints, authenticates and lists API keys. Keys are stored as SHA-256 digests only. */
export class ApiKeyService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #cache = new Map<string, { at: number; principal: ApiKeyPrincipal }>();

  readonly #audit: AuditSink | undefined;

  constructor(deps: { store: Store; clock: Clock; audit?: AuditSink }) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#audit = deps.audit;
  }

  /** Mints a key with `scopes`. `secret` lets an operator choose it (seeding); otherwise it is random. */
  async create(input: { name: string; scopes: readonly Scope[]; createdBy: string; secret?: string }): Promise<MintedApiKey> {
    const scopes = [...new Set(input.scopes)];
    if (scopes.length === 0 || scopes.some((s) => !SCOPES.includes(s))) {
      throw new CustodianError('CST_ERR_VALIDATION', `scopes must be a non-empty list of ${SCOPES.join(', ')}`, {
        details: { issues: [{ path: 'scopes', message: 'invalid scopes' }] },
      });
    }
    if (input.secret !== undefined) validateChosenSecret(input.secret);
    return this.#store.transaction((trx) => this.#insert(trx, { ...input, scopes, secret: input.secret ?? generateApiKeySecret() }));
  }

  async #insert(db: Executor, input: { name: string; scopes: readonly Scope[]; createdBy: string; secret: string }): Promise<MintedApiKey> {
    const { secret, scopes } = input;
    const now = this.#clock.now();
    const id = uuidv7(now);
    const name = input.name.slice(0, 200);
    await db
      .insertInto('api_keys')
      .values({ id, name, key_hash: hashApiKeySecret(secret), scopes: JSON.stringify(scopes), created_at: toIso(now), created_by: input.createdBy, revoked_at: null })
      .execute();
    await this.#audit?.record(db, [{ actor: input.createdBy, action: 'api_key.created', targetType: 'api_key', targetId: id, details: { scopes: [...scopes] } }]);
    return { id, name, scopes, secret, createdAt: toIso(now) };
  }

  /** Whether any unrevoked admin key exists. */
  async hasAdmin(db: Executor = this.#store.db): Promise<boolean> {
    const rows = await db.selectFrom('api_keys').select('scopes').where('revoked_at', 'is', null).execute();
    return rows.some((r) => (JSON.parse(r.scopes) as string[]).includes('admin'));
  }

  /**
   * Seeds the first admin key when the store has none: `chosen` (CUSTODIAN_ADMIN_KEY) or a random one.
   * Returns the minted key, or null when an admin key already exists. Replicas starting together on an empty
   * store mint exactly one: the check and the insert run under one lock.
   */
  async ensureAdmin(chosen?: string): Promise<MintedApiKey | null> {
    // A bad CUSTODIAN_ADMIN_KEY is reported on every start, not only the first.
    if (chosen !== undefined) validateChosenSecret(chosen);
    return this.#store.transaction(async (trx) => {
      await this.#store.lock(trx, 'custodian:bootstrap-admin');
      if (await this.hasAdmin(trx)) return null;
      return this.#insert(trx, { name: 'initial admin', scopes: ['admin'], createdBy: 'system:bootstrap', secret: chosen ?? generateApiKeySecret() });
    });
  }

  /** The key behind `secret`, or CST_ERR_AUTH_INVALID. */
  async authenticate(secret: string): Promise<ApiKeyPrincipal> {
    const digest = hashApiKeySecret(secret);
    const now = this.#clock.now();
    const hit = this.#cache.get(digest);
    if (hit !== undefined && isFresh(hit.at, now, AUTH_CACHE_MS)) return hit.principal;
    const row = await this.#store.db
      .selectFrom('api_keys')
      .select(['id', 'name', 'key_hash', 'scopes', 'revoked_at'])
      .where('key_hash', '=', digest)
      .executeTakeFirst();
    if (row === undefined || row.revoked_at !== null || !digestsEqual(row.key_hash, digest)) {
      this.#cache.delete(digest);
      throw new CustodianError('CST_ERR_AUTH_INVALID', 'invalid API key');
    }
    const principal: ApiKeyPrincipal = Object.freeze({ id: row.id, name: row.name, scopes: Object.freeze(JSON.parse(row.scopes) as Scope[]) });
    if (this.#cache.size >= AUTH_CACHE_MAX) this.#cache.clear();
    this.#cache.set(digest, { at: now, principal });
    return principal;
  }

  /** Revokes a key; it stops working within the authentication cache time (5 s). */
  async revoke(id: string, actor = 'system'): Promise<boolean> {
    const done = await this.#store.transaction(async (trx) => {
      const r = await trx.updateTable('api_keys').set({ revoked_at: toIso(this.#clock.now()) }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      const revoked = Number(r.numUpdatedRows) > 0;
      if (revoked) await this.#audit?.record(trx, [{ actor, action: 'api_key.revoked', targetType: 'api_key', targetId: id }]);
      return revoked;
    });
    this.#cache.clear();
    return done;
  }

  /** Every key's id, name, scopes and dates (never secrets). */
  async list(): Promise<Array<ApiKeyPrincipal & { createdAt: string; revokedAt: string | null }>> {
    const rows = await this.#store.db.selectFrom('api_keys').select(['id', 'name', 'scopes', 'created_at', 'revoked_at']).orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      scopes: JSON.parse(r.scopes) as Scope[],
      createdAt: new Date(r.created_at).toISOString(),
      revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at).toISOString(),
    }));
  }
}

function validateChosenSecret(secret: string): void {
  if (secret.length < MIN_CHOSEN_KEY_LENGTH || secret.length > 256 || /\s/.test(secret)) {
    throw new CustodianError('CST_ERR_CONFIG', `a chosen API key must be ${MIN_CHOSEN_KEY_LENGTH} to 256 characters without spaces`, {
      details: { setting: 'CUSTODIAN_ADMIN_KEY' },
    });
  }
}

/** Whether `principal` holds `scope` (admin holds all). */
export function hasScope(principal: ApiKeyPrincipal, scope: Scope): boolean {
  return principal.scopes.includes('admin') || principal.scopes.includes(scope);
}
