import { CustodianError, isFresh, isPurposeKey, toIso, uuidv7, type AuditSink, type Clock } from '../core/index.js';
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
  /** The purposes of use the key is declared for (`[]`: none declared, reads are not judged against purposes). */
  readonly purposes: readonly string[];
  readonly secret: string;
  readonly createdAt: string;
}

/** A key as listed: never its secret or digest. */
export interface ApiKeyRecord extends ApiKeyPrincipal {
  readonly purposes: readonly string[];
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

/** Where declared purposes are looked up: the purpose registry, which holds the data map's purposes too. */
export interface PurposeLookup {
  /** The purpose with `key`, or undefined when none is configured. */
  get(key: string): Promise<{ readonly key: string } | undefined>;
}

/** At most this many declared purposes per key (a data map declares at most 100 per system). */
export const MAX_KEY_PURPOSES = 100;

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
  readonly #purposes: PurposeLookup;

  constructor(deps: { store: Store; clock: Clock; audit?: AuditSink; purposes: PurposeLookup }) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#audit = deps.audit;
    this.#purposes = deps.purposes;
  }

  /**
   * Mints a key with `scopes` and, optionally, the `purposes` of use it is declared for (configured purpose
   * keys: CST_ERR_VALIDATION when malformed, CST_ERR_AUTH_UNKNOWN_PURPOSE when not configured). Declared purposes
   * do not gate requests; the `purpose_mismatch` detection rule judges the key's personal-data reads against
   * them (docs/breach.md#detection-rules). `secret` lets an operator choose it (seeding); otherwise it is random.
   */
  async create(input: { name: string; scopes: readonly Scope[]; purposes?: readonly string[]; createdBy: string; secret?: string }): Promise<MintedApiKey> {
    const scopes = [...new Set(input.scopes)];
    if (scopes.length === 0 || scopes.some((s) => !SCOPES.includes(s))) {
      throw new CustodianError('CST_ERR_VALIDATION', `scopes must be a non-empty list of ${SCOPES.join(', ')}`, {
        details: { issues: [{ path: 'scopes', message: 'invalid scopes' }] },
      });
    }
    const purposes = await this.#checkPurposes(input.purposes ?? []);
    if (input.secret !== undefined) validateChosenSecret(input.secret);
    return this.#store.transaction((trx) => this.#insert(trx, { ...input, scopes, purposes, secret: input.secret ?? generateApiKeySecret() }));
  }

  /** `purposes` without duplicates, each a well-formed key of a configured purpose. */
  async #checkPurposes(input: readonly string[]): Promise<string[]> {
    const purposes = [...new Set(input)];
    const issues = purposes.flatMap((p, i) => (isPurposeKey(p) ? [] : [{ path: `purposes.${i}`, message: 'must be a purpose key such as marketing.email' }]));
    if (purposes.length > MAX_KEY_PURPOSES) issues.push({ path: 'purposes', message: `at most ${MAX_KEY_PURPOSES} purposes` });
    if (issues.length > 0) throw new CustodianError('CST_ERR_VALIDATION', 'purposes must be a list of purpose keys', { details: { issues } });
    const unknown: string[] = [];
    for (const p of purposes) if ((await this.#purposes.get(p)) === undefined) unknown.push(p);
    if (unknown.length > 0) {
      throw new CustodianError('CST_ERR_AUTH_UNKNOWN_PURPOSE', 'an API key can only be declared for configured purposes', { details: { purposes: unknown } });
    }
    return purposes;
  }

  async #insert(db: Executor, input: { name: string; scopes: readonly Scope[]; purposes: readonly string[]; createdBy: string; secret: string }): Promise<MintedApiKey> {
    const { secret, scopes, purposes } = input;
    const now = this.#clock.now();
    const id = uuidv7(now);
    const name = input.name.slice(0, 200);
    await db
      .insertInto('api_keys')
      .values({ id, name, key_hash: hashApiKeySecret(secret), scopes: JSON.stringify(scopes), purposes: JSON.stringify(purposes), created_at: toIso(now), created_by: input.createdBy, revoked_at: null })
      .execute();
    await this.#audit?.record(db, [{ actor: input.createdBy, action: 'api_key.created', targetType: 'api_key', targetId: id, details: { scopes: [...scopes], ...(purposes.length > 0 ? { purposes: [...purposes] } : {}) } }]);
    return { id, name, scopes, purposes, secret, createdAt: toIso(now) };
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
      return this.#insert(trx, { name: 'initial admin', scopes: ['admin'], purposes: [], createdBy: 'system:bootstrap', secret: chosen ?? generateApiKeySecret() });
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

  /** Every key's id, name, scopes, declared purposes and dates (never secrets). */
  async list(): Promise<ApiKeyRecord[]> {
    const rows = await this.#store.db.selectFrom('api_keys').select(['id', 'name', 'scopes', 'purposes', 'created_at', 'revoked_at']).orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      scopes: JSON.parse(r.scopes) as Scope[],
      purposes: JSON.parse(r.purposes) as string[],
      createdAt: new Date(r.created_at).toISOString(),
      revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at).toISOString(),
    }));
  }

  /**
   * The declared purposes of every key that declares some, revoked keys included (their earlier reads are still
   * judged), by key id: what the `purpose_mismatch` detection rule judges reads against. One query; O(K) for the
   * K keys that declare purposes (keys are few: they are minted by hand).
   */
  async declaredPurposes(): Promise<ReadonlyMap<string, readonly string[]>> {
    const rows = await this.#store.db.selectFrom('api_keys').select(['id', 'purposes']).where('purposes', '<>', '[]').execute();
    return new Map(rows.map((r) => [r.id, Object.freeze(JSON.parse(r.purposes) as string[])] as const).filter(([, p]) => p.length > 0));
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
