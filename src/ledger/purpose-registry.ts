import {
  CustodianError,
  DEFAULT_PURPOSES,
  JURISDICTION_CODE_PATTERN,
  LEGAL_BASES,
  isPurposeKey,
  isFresh,
  type AuditSink,
  type Clock,
  type LegalBasis,
  type Purpose,
} from '../core/index.js';
import type { Executor, Store } from '../store/index.js';

/** A purpose as written through the API (the key comes from the path). */
export type PurposeInput = Omit<Purpose, 'key'>;

// Another process may add or change a purpose: an unknown key triggers a reload at most once a second, and
// any read after PURPOSE_TTL_MS refreshes in the background, so a change is seen everywhere within ~5 s.
const RELOAD_ON_MISS_MS = 1000;
/** How long purposes read from the store are trusted before a background refresh. */
export const PURPOSE_TTL_MS = 5000;

/**
 * The configured purposes, held in memory for the hot path and persisted in the store.
 * The first start seeds {@link DEFAULT_PURPOSES}.
 */
export class PurposeRegistry {
  readonly #store: Store;
  readonly #clock: Clock;
  #byKey = new Map<string, Purpose>();
  #loadedAt = -Infinity;
  #refreshing: Promise<void> | undefined;

  readonly #audit: AuditSink | undefined;

  constructor(deps: { store: Store; clock: Clock; audit?: AuditSink }) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#audit = deps.audit;
  }

  /** Loads purposes from the store, seeding the defaults into an empty table. */
  async load(): Promise<void> {
    const rows = await this.#store.db.selectFrom('purposes').selectAll().execute();
    if (rows.length === 0) {
      const now = new Date(this.#clock.now()).toISOString();
      await this.#store.transaction(async (trx) => {
        // Replicas starting together on an empty store seed once: check and insert under one lock.
        await this.#store.lock(trx, 'custodian:seed-purposes');
        const existing = await trx.selectFrom('purposes').select('key').executeTakeFirst();
        if (existing) return;
        await trx
          .insertInto('purposes')
          .values(DEFAULT_PURPOSES.map((p) => toRow(p, now, now)))
          .execute();
      });
      return this.load();
    }
    this.#byKey = new Map(rows.map((r) => [r.key, fromRow(r)]));
    this.#loadedAt = this.#clock.now();
  }

  /** The purpose with `key`, or undefined. Synchronous: the hot path of every check. */
  peek(key: string): Purpose | undefined {
    this.#refreshIfStale();
    return this.#byKey.get(key);
  }

  /** Starts one background reload when the in-memory copy is older than {@link PURPOSE_TTL_MS}. */
  #refreshIfStale(): void {
    if (this.#refreshing !== undefined || isFresh(this.#loadedAt, this.#clock.now(), PURPOSE_TTL_MS)) return;
    this.#loadedAt = this.#clock.now(); // one attempt per TTL even if the store is down
    this.#refreshing = this.load()
      .catch(() => undefined) // the next stale read retries; checks keep the last known definitions
      .finally(() => {
        this.#refreshing = undefined;
      });
  }

  /** The purpose with `key`, reloading once if unknown (it may have been added by another process). */
  async get(key: string): Promise<Purpose | undefined> {
    this.#refreshIfStale();
    const p = this.#byKey.get(key);
    if (p !== undefined) return p;
    if (!isFresh(this.#loadedAt, this.#clock.now(), RELOAD_ON_MISS_MS)) await this.load();
    return this.#byKey.get(key);
  }

  /** The purpose with `key`, or CST_ERR_CONSENT_UNKNOWN_PURPOSE. */
  async require(key: string, path?: string): Promise<Purpose> {
    const p = await this.get(key);
    if (p === undefined) {
      throw new CustodianError('CST_ERR_CONSENT_UNKNOWN_PURPOSE', 'unknown purpose', { details: { purpose: key, ...(path ? { path } : {}) } });
    }
    return p;
  }

  list(): Purpose[] {
    this.#refreshIfStale();
    return [...this.#byKey.values()].sort((a, b) => a.key.localeCompare(b.key));
  }

  /** Creates or replaces a purpose. Events already recorded keep the legal basis they were recorded under. */
  async put(key: string, input: PurposeInput, actor = 'system'): Promise<{ purpose: Purpose; created: boolean }> {
    return (await this.putMany([{ key, ...input }], actor))[0]!;
  }

  /** Creates or replaces several purposes in one transaction: all are validated first, then all are written. */
  async putMany(inputs: readonly Purpose[], actor = 'system'): Promise<Array<{ purpose: Purpose; created: boolean }>> {
    const results = await this.#store.transaction((trx) => this.putManyIn(trx, inputs, actor));
    for (const { purpose } of results) this.#byKey.set(purpose.key, purpose);
    return results;
  }

  /**
   * {@link putMany} inside the caller's transaction `trx` (e.g. a new data map version). The in-memory view
   * catches up at the next refresh, or at once with {@link load} after the commit.
   */
  async putManyIn(trx: Executor, inputs: readonly Purpose[], actor = 'system'): Promise<Array<{ purpose: Purpose; created: boolean }>> {
    const purposes = inputs.map(validatePurpose);
    const now = new Date(this.#clock.now()).toISOString();
    const out: Array<{ purpose: Purpose; created: boolean }> = [];
    const existingKeys = new Set<string>();
    for (let i = 0; i < purposes.length; i += 500) {
      const keys = purposes.slice(i, i + 500).map((p) => p.key);
      for (const r of await trx.selectFrom('purposes').select('key').where('key', 'in', keys).execute()) existingKeys.add(r.key);
    }
    for (const purpose of purposes) {
      const existing = existingKeys.has(purpose.key);
      const row = toRow(purpose, now, now);
      if (existing) {
        const { created_at: _created, key: _key, ...update } = row;
        await trx.updateTable('purposes').set(update).where('key', '=', purpose.key).execute();
      } else {
        await trx.insertInto('purposes').values(row).execute();
      }
      out.push({ purpose, created: !existing });
    }
    await this.#audit?.record(
      trx,
      out.map((r) => ({ actor, action: 'purpose.saved', targetType: 'purpose' as const, targetId: r.purpose.key, details: { created: r.created, legalBasis: r.purpose.legalBasis } })),
    );
    return out;
  }
}

/** Checks a purpose definition for consistency; throws CST_ERR_PURPOSE_INVALID. */
export function validatePurpose(p: Purpose): Purpose {
  const bad = (message: string, field: string): never => {
    throw new CustodianError('CST_ERR_PURPOSE_INVALID', message, { details: { field } });
  };
  if (!isPurposeKey(p.key)) bad('purpose key must be dotted lower-case words (fideslang style), at most 128 characters', 'key');
  if (!(p.legalBasis in LEGAL_BASES)) bad('unknown legal basis', 'legalBasis');
  // GDPR Art. 6(1)(a): a purpose based on consent cannot run without it, and consent gates only purposes based on it
  // (a check cites the basis it relies on, so the two must agree).
  if (p.consentRequired !== (p.legalBasis === 'consent')) bad('consentRequired must be true exactly when the legal basis is consent', 'consentRequired');
  if (p.defaultExpiryMonths !== null && (!Number.isInteger(p.defaultExpiryMonths) || p.defaultExpiryMonths < 1 || p.defaultExpiryMonths > 120)) {
    bad('defaultExpiryMonths must be a whole number of months from 1 to 120, or null', 'defaultExpiryMonths');
  }
  if (p.jurisdictions.length === 0) bad('jurisdictions must list at least one code, or "*"', 'jurisdictions');
  for (const j of p.jurisdictions) if (j !== '*' && !JURISDICTION_CODE_PATTERN.test(j)) bad('jurisdiction codes look like EU, UK, US-CA', 'jurisdictions');
  return Object.freeze({ ...p, jurisdictions: Object.freeze([...new Set(p.jurisdictions)]) });
}

/** Whether `purpose` is offered in `jurisdiction` (no jurisdiction given = offered). */
export function offeredIn(purpose: Purpose, jurisdiction: string | null | undefined): boolean {
  return jurisdiction == null || purpose.jurisdictions.includes('*') || purpose.jurisdictions.includes(jurisdiction);
}

function toRow(p: Purpose, createdAt: string, updatedAt: string) {
  return {
    key: p.key,
    title: p.title,
    description: p.description,
    legal_basis: p.legalBasis,
    consent_required: p.consentRequired ? 1 : 0,
    default_expiry_months: p.defaultExpiryMonths,
    jurisdictions: JSON.stringify(p.jurisdictions),
    gpc_opt_out: p.gpcOptOut ? 1 : 0,
    created_at: createdAt,
    updated_at: updatedAt,
  };
}

function fromRow(r: {
  key: string; title: string; description: string; legal_basis: string; consent_required: number; default_expiry_months: number | null; jurisdictions: string; gpc_opt_out: number;
}): Purpose {
  return Object.freeze({
    key: r.key,
    title: r.title,
    description: r.description,
    legalBasis: r.legal_basis as LegalBasis,
    consentRequired: Number(r.consent_required) === 1,
    defaultExpiryMonths: r.default_expiry_months === null ? null : Number(r.default_expiry_months),
    jurisdictions: Object.freeze(JSON.parse(r.jurisdictions) as string[]),
    gpcOptOut: Number(r.gpc_opt_out) === 1,
  });
}
