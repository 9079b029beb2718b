import { CustodianError, storedToIso, toIso, uuidv7, type AuditSink, type Clock } from '../core/index.js';
import type { DataMap } from '../datamap/index.js';
import type { Executor, Store } from '../store/index.js';
import { identityDigestText, normaliseIdentityValue } from './holds.js';

/** What a legal hold covers: one subject (by an identity), a whole system, or one collection. */
export type LegalHoldScope = 'subject' | 'system' | 'collection';

/** A legal hold as the API shows it: a subject hold names only the identity kind, never the value. */
export interface LegalHoldView {
  readonly id: string;
  readonly scope: LegalHoldScope;
  readonly system: string | null;
  /** `<dataset>.<collection>` for collection holds. */
  readonly collection: string | null;
  readonly identityKind: string | null;
  readonly reason: string;
  readonly until: string | null;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly releasedBy: string | null;
  readonly releasedAt: string | null;
  /** Not released and not past `until`. */
  readonly active: boolean;
}

/** Input of {@link LegalHolds.create}. */
export interface CreateLegalHoldInput {
  readonly scope: LegalHoldScope;
  /** Subject holds: the identity (kind as in the data map, e.g. `email`, and value), kept only as a keyed digest. */
  readonly identity?: { readonly kind: string; readonly value: string } | undefined;
  readonly system?: string | undefined;
  readonly collection?: string | undefined;
  /** Why (a case number, a litigation reference): free text, must not contain personal data. */
  readonly reason: string;
  /** When the hold ends by itself (UTC ISO-8601); none = until released. */
  readonly until?: string | undefined;
  readonly actor: string;
}

/** The legal holds that apply now, ready for matching rows. */
export interface ActiveHolds {
  readonly subjectDigests: ReadonlySet<string>;
  readonly systems: ReadonlySet<string>;
  readonly collections: ReadonlySet<string>;
}

export interface LegalHoldsDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly audit?: AuditSink | undefined;
  readonly digest: (text: string) => string;
  readonly dataMap: () => Promise<{ map: DataMap; version: number } | undefined>;
}

type Row = {
  id: string;
  scope: string;
  system_key: string | null;
  collection: string | null;
  identity_kind: string | null;
  reason: string;
  until: string | Date | null;
  created_by: string;
  created_at: string | Date;
  released_by: string | null;
  released_at: string | Date | null;
};

function invalid(path: string, message: string): CustodianError {
  return new CustodianError('CST_ERR_LEGAL_HOLD_INVALID', `${path} ${message}`, { details: { issues: [{ path, message }] } });
}

/**
 * Legal holds (GDPR Art. 17(3)(e): data needed for legal claims is kept): retention skips the rows they cover
 * while they are active. A subject is held by one identity value, stored only as the keyed digest requests use
 * (`identity:<kind>:<value>`), so the store never holds the value and matching needs no decryption.
 */
export class LegalHolds {
  readonly #d: LegalHoldsDeps;

  constructor(deps: LegalHoldsDeps) {
    this.#d = deps;
  }

  async create(input: CreateLegalHoldInput): Promise<LegalHoldView> {
    const now = this.#d.clock.now();
    const reason = input.reason.trim();
    if (reason === '' || reason.length > 1000) throw invalid('reason', 'must be 1 to 1000 characters');
    let until: string | null = null;
    if (input.until !== undefined) {
      const ms = Date.parse(input.until);
      if (Number.isNaN(ms)) throw invalid('until', 'must be an ISO-8601 instant');
      if (ms <= now) throw invalid('until', 'must be in the future');
      until = toIso(ms);
    }
    const current = await this.#d.dataMap();
    let system: string | null = null;
    let collection: string | null = null;
    let kind: string | null = null;
    let digest: string | null = null;
    if (input.scope === 'subject') {
      if (input.identity === undefined) throw invalid('identity', 'is required for a subject hold');
      kind = input.identity.kind;
      if (!/^[a-z][a-z0-9_]{0,63}$/.test(kind)) throw invalid('identity.kind', 'must be an identity kind such as email or user_id');
      const kinds = current?.map.identityKinds() ?? [];
      if (kinds.length > 0 && !kinds.includes(kind)) throw invalid('identity.kind', `is not an identity of the data map; known: ${kinds.join(', ')}`);
      if (input.identity.value.length > 320) throw invalid('identity.value', 'must be at most 320 characters');
      const value = normaliseIdentityValue(kind, input.identity.value);
      if (value === undefined) throw invalid('identity.value', 'must not be empty');
      digest = this.#d.digest(identityDigestText(kind, value));
    } else if (input.scope === 'system') {
      if (input.system === undefined) throw invalid('system', 'is required for a system hold');
      if (current !== undefined && current.map.system(input.system) === undefined) throw invalid('system', 'is not a system of the data map');
      system = input.system;
    } else {
      if (input.collection === undefined) throw invalid('collection', 'is required for a collection hold (<dataset>.<collection>)');
      const entry = current?.map.collection(input.collection);
      if (current !== undefined && entry === undefined) throw invalid('collection', 'is not a collection of the data map');
      collection = input.collection;
      system = entry?.system.key ?? null;
    }
    const id = uuidv7(now);
    const row = {
      id,
      scope: input.scope,
      system_key: system,
      collection,
      identity_kind: kind,
      subject_digest: digest,
      reason,
      until,
      created_by: input.actor.slice(0, 128),
      created_at: toIso(now),
      released_by: null,
      released_at: null,
    };
    await this.#d.store.transaction(async (trx) => {
      await trx.insertInto('legal_holds').values(row).execute();
      await this.#d.audit?.record(trx, [
        { actor: input.actor, action: 'legal_hold.created', targetType: 'legal_hold', targetId: id, details: { scope: input.scope, system, collection, identityKind: kind, until } },
      ]);
    });
    return this.#view(row, now);
  }

  /** Holds, newest first; `active` only those in force now. */
  async list(options: { active?: boolean; limit?: number } = {}): Promise<LegalHoldView[]> {
    const now = this.#d.clock.now();
    let q = this.#d.store.db.selectFrom('legal_holds').select(['id', 'scope', 'system_key', 'collection', 'identity_kind', 'reason', 'until', 'created_by', 'created_at', 'released_by', 'released_at']);
    if (options.active === true) q = q.where('released_at', 'is', null).where((eb) => eb.or([eb('until', 'is', null), eb('until', '>', toIso(now))]));
    const rows = await q
      .orderBy('id', 'desc')
      .limit(Math.min(1000, options.limit ?? 1000))
      .execute();
    return rows.map((r) => this.#view(r, now));
  }

  /** Releases an active hold; CST_ERR_LEGAL_HOLD_NOT_FOUND when there is none with this id or it was released. */
  async release(id: string, actor: string): Promise<LegalHoldView> {
    const now = this.#d.clock.now();
    return this.#d.store.transaction(async (trx) => {
      const n = await trx.updateTable('legal_holds').set({ released_at: toIso(now), released_by: actor.slice(0, 128) }).where('id', '=', id).where('released_at', 'is', null).executeTakeFirst();
      if (Number(n.numUpdatedRows) === 0) throw new CustodianError('CST_ERR_LEGAL_HOLD_NOT_FOUND', 'no such legal hold, or it was already released', { details: { id } });
      await this.#d.audit?.record(trx, [{ actor, action: 'legal_hold.released', targetType: 'legal_hold', targetId: id }]);
      const row = await trx.selectFrom('legal_holds').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      return this.#view(row, now);
    });
  }

  /** The holds in force now, as sets to match against. */
  async active(db: Executor = this.#d.store.db): Promise<ActiveHolds> {
    const now = toIso(this.#d.clock.now());
    const rows = await db
      .selectFrom('legal_holds')
      .select(['scope', 'system_key', 'collection', 'subject_digest'])
      .where('released_at', 'is', null)
      .where((eb) => eb.or([eb('until', 'is', null), eb('until', '>', now)]))
      .execute();
    const subjectDigests = new Set<string>();
    const systems = new Set<string>();
    const collections = new Set<string>();
    for (const r of rows) {
      if (r.scope === 'subject' && r.subject_digest !== null) subjectDigests.add(r.subject_digest);
      else if (r.scope === 'system' && r.system_key !== null) systems.add(r.system_key);
      else if (r.scope === 'collection' && r.collection !== null) collections.add(r.collection);
    }
    return { subjectDigests, systems, collections };
  }

  #view(r: Row, now: number): LegalHoldView {
    const until = r.until === null ? null : storedToIso(r.until);
    const releasedAt = r.released_at === null ? null : storedToIso(r.released_at);
    return {
      id: r.id,
      scope: r.scope as LegalHoldScope,
      system: r.system_key,
      collection: r.collection,
      identityKind: r.identity_kind,
      reason: r.reason,
      until,
      createdBy: r.created_by,
      createdAt: storedToIso(r.created_at),
      releasedBy: r.released_by,
      releasedAt,
      active: releasedAt === null && (until === null || Date.parse(until) > now),
    };
  }
}
