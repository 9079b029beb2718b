import { createHash } from 'node:crypto';
import {
  CustodianError,
  JURISDICTION_CODE_PATTERN,
  addMonths,
  honoursGpc,
  isFresh,
  isIsoInstant,
  isStorableText,
  isUuid,
  uuidv7Time,
  RESTRICTION_LIFT_REASON_KEYS,
  RESTRICTION_REASON_KEYS,
  purposeDetails,
  type AuditSink,
  type EventInput,
  type EventSink,
  toIso,
  uuidv7,
  type Clock,
  type LegalBasis,
  type Purpose,
  type ReadContext,
} from '../core/index.js';
import type { ChangeWatch, Executor, Store } from '../store/index.js';
import { consentRepository as repo, isoOrNull, type EventRow, type NewEventRow } from './consent-repository.js';
import { minimiseEvidence } from './evidence.js';
import { LEDGER_LIMITS } from './limits.js';
import { evaluate, statusAt, toPurposeState, type StateRow } from './projection.js';
import { restrictionRepository as restrictions, type ActiveRestriction, type RestrictionRow } from './restriction-repository.js';
import { offeredIn, type PurposeRegistry } from './purpose-registry.js';
import {
  DECISIONS,
  INPUT_METHODS,
  type ApplyGpcOptions,
  type CheckStatus,
  type CollectionMethod,
  type ConsentCheck,
  type ConsentStatus,
  type ConsentEvent,
  type ConsentEventInput,
  type Decision,
  type Evidence,
  type GpcApplication,
  type HistoryOptions,
  type HistoryResult,
  type LiftRestrictionOptions,
  type PurposeState,
  type RecordContext,
  type RecordResult,
  type RecordedEvent,
  type RestrictOptions,
  type Restriction,
  type RestrictionChange,
} from './types.js';

/** The most buckets one {@link ConsentLedger.rates} answer holds (a year and a day of days, or 30 years of months). */
export const CONSENT_RATES_MAX_BUCKETS = 366;

/** Options of {@link ConsentLedger.rates}. */
export interface ConsentRatesOptions {
  /** Start, inclusive (ISO-8601); default `to` minus 30 days. */
  readonly from?: string | undefined;
  /** End, exclusive (ISO-8601); default now. */
  readonly to?: string | undefined;
  /** UTC calendar day (`YYYY-MM-DD`) or month (`YYYY-MM`); default day. */
  readonly bucket?: 'day' | 'month' | undefined;
}

/** Decisions per purpose and bucket: what {@link ConsentLedger.rates} answers. */
export interface ConsentRates {
  readonly from: string;
  readonly to: string;
  readonly bucket: 'day' | 'month';
  /** Every bucket key in the range, oldest first. */
  readonly buckets: readonly string[];
  readonly purposes: ReadonlyArray<{
    readonly purpose: string;
    readonly series: ReadonlyArray<{
      readonly bucket: string; readonly granted: number; readonly denied: number; readonly withdrawn: number; readonly total: number;
      /** granted / total (0 when there is no decision), 4 decimals. */
      readonly grantRate: number;
      /** withdrawn / total, 4 decimals. */
      readonly withdrawRate: number;
    }>;
  }>;
}

/** The UTC bucket keys touched by `[from, to)`, oldest first; stops one past the cap. */
function bucketKeys(from: number, to: number, bucket: 'day' | 'month'): string[] {
  const keys: string[] = [];
  const d = new Date(from);
  let at = bucket === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  while (at < to && keys.length <= CONSENT_RATES_MAX_BUCKETS) {
    keys.push(new Date(at).toISOString().slice(0, bucket === 'day' ? 10 : 7));
    at = bucket === 'day' ? at + 86_400_000 : addMonths(at, 1);
  }
  return keys;
}

/** Options of {@link ConsentLedger}. */
export interface ConsentLedgerOptions {
  /** Truncate evidence IPs (IPv4 /24, IPv6 /48). Default true. */
  readonly truncateIp?: boolean;
  /**
   * How long a cached projection of a subject is trusted while no change feed is running (see
   * {@link ConsentLedger.watch}): it bounds how long another process's write can go unseen. Default 1000.
   */
  readonly cacheTtlMs?: number;
  /**
   * How long a cached projection is trusted while the change feed is healthy (other processes' writes arrive
   * as notices: PostgreSQL NOTIFY, SQLite data_version polled every 50 ms). A safety net only. Default 60,000.
   */
  readonly cacheMaxAgeMs?: number;
  /** Subjects kept in the in-process cache. Default 100,000. */
  readonly cacheMaxSubjects?: number;
  /** Apply GPC as an opt-out in every jurisdiction, not only where the law requires it. Default false. */
  readonly gpcEverywhere?: boolean;
}

/** Dependencies of {@link ConsentLedger}. */
export interface ConsentLedgerDeps {
  readonly store: Store;
  readonly purposes: PurposeRegistry;
  readonly clock: Clock;
  /** Seals evidence under per-subject keys (the keyring); without it evidence is stored as JSON. */
  readonly cipher?: EvidenceCipher;
  /** Receives the audit entry and the consent-tree leaves of every batch, in its transaction. */
  readonly audit?: AuditSink;
  /** Receives a `consent.<decision>` event per recorded event (and `consent.expired` notices), in its transaction. */
  readonly events?: EventSink;
}

/** What the ledger needs from the keyring to keep evidence encrypted under the subject's key. */
export interface EvidenceCipher {
  encryptMany(items: ReadonlyArray<{ subjectId: string; plaintext: string; context: string }>): Promise<string[]>;
  decryptManyText(items: ReadonlyArray<{ ciphertext: string; context: string }>): Promise<Array<{ plaintext: string } | { error: CustodianError }>>;
  /** HMAC-SHA-256 (hex) under a system key that is never shredded. */
  keyedDigest(text: string): string;
}

/** evidence_format of evidence sealed with the keyring's field format (AES-256-GCM under the subject key). */
const SEALED = 'aead-v1';

/** The encryption context of an event's evidence: its table, column and row id (never personal data). */
function evidenceContext(eventId: string): string {
  return `consent_events.evidence:${eventId}`;
}

/** What a check needs of one subject: the consent state per purpose and the restriction in force, if any. */
interface SubjectView {
  readonly states: Map<string, StateRow>;
  readonly restriction: ActiveRestriction | undefined;
}

interface CacheEntry extends SubjectView {
  readonly loadedAt: number;
  readonly checks?: Map<string, { check: ConsentCheck; purpose: Purpose; validUntil: number }>;
}

interface PreparedEvent {
  readonly input: ConsentEventInput;
  readonly purpose: Purpose;
  readonly evidence: Evidence | null;
  readonly gpc: boolean;
  readonly requestHash: string | null;
}

function invalid(path: string, message: string): never {
  throw new CustodianError('CST_ERR_VALIDATION', `${path}: ${message}`, { details: { issues: [{ path, message }] } });
}

/**
 * Thrown (and caught by {@link ConsentLedger.record}) when a GPC opt-out committed after this batch drew its event
 * ids: the batch is written again with fresh ids, so that it follows the opt-out instead of being overtaken by it.
 */
class OvertakenByGpc extends Error {}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * The consent ledger: an append-only history of decisions per subject and purpose, a projection of the
 * latest decision kept in the same transaction, checks against it, and as-of queries over the history.
 *
 * @example
 * const result = await ledger.record([{ subjectId: 'u-123', purpose: 'analytics.reporting', decision: 'granted' }], { actor: 'key-id' });
 * const { allowed } = await ledger.check('u-123', 'analytics.reporting');
 */
export class ConsentLedger {
  readonly #store: Store;
  readonly #purposes: PurposeRegistry;
  readonly #clock: Clock;
  readonly #cipher: EvidenceCipher | undefined;
  readonly #audit: AuditSink | undefined;
  readonly #events: EventSink | undefined;
  readonly #truncateIp: boolean;
  readonly #ttl: number;
  readonly #maxAge: number;
  #watch: ChangeWatch | undefined;
  readonly #maxSubjects: number;
  readonly #gpcEverywhere: boolean;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #changeListeners = new Set<(subjectIds: readonly string[] | null) => void>();
  #generation = 0;

  constructor(deps: ConsentLedgerDeps, options: ConsentLedgerOptions = {}) {
    this.#store = deps.store;
    this.#purposes = deps.purposes;
    this.#clock = deps.clock;
    this.#cipher = deps.cipher;
    this.#audit = deps.audit;
    this.#events = deps.events;
    this.#truncateIp = options.truncateIp ?? true;
    this.#ttl = options.cacheTtlMs ?? 1000;
    this.#maxAge = options.cacheMaxAgeMs ?? 60_000;
    this.#maxSubjects = options.cacheMaxSubjects ?? 100_000;
    this.#gpcEverywhere = options.gpcEverywhere ?? false;
  }

  /**
   * Starts listening for consent changes committed by other processes on the same store, so cached
   * projections are dropped when they change instead of after a fixed TTL. Idempotent.
   */
  async watch(): Promise<void> {
    if (this.#watch !== undefined) return;
    this.#watch = await this.#store.watchChanges((topic, subjectIds) => {
      if (topic === 'keys' || topic === 'events') return;
      if (subjectIds === null) {
        this.#generation++;
        this.#cache.clear();
        for (const l of this.#changeListeners) l(null);
      } else {
        this.#invalidate(subjectIds);
      }
    });
  }

  /**
   * Calls `listener` whenever the consent state of subjects may have changed: with their ids after a local write
   * or a notice naming them, with `null` when anything may have changed (a SQLite commit by another connection,
   * a lost notice). Only complete while {@link changeFeedHealthy}. Returns the function that stops it.
   */
  onChange(listener: (subjectIds: readonly string[] | null) => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Whether other processes' changes are being watched right now (see {@link watch}). */
  changeFeedHealthy(): boolean {
    return this.#watch?.healthy === true;
  }

  /** Stops the change feed started by {@link watch}. */
  async stopWatching(): Promise<void> {
    const w = this.#watch;
    this.#watch = undefined;
    await w?.stop();
  }

  /** How long a cache entry is trusted now: long while the change feed is healthy, short otherwise. */
  #cacheTtl(): number {
    return this.#watch?.healthy === true ? this.#maxAge : this.#ttl;
  }

  /**
   * Records a batch of 1..1000 decisions atomically: all events, their projection updates and any GPC
   * opt-outs commit together or not at all. An event whose idempotency key was recorded before is not
   * recorded again: the answer repeats the stored event with `replayed: true`; the same key with a
   * different event is CST_ERR_CONSENT_IDEMPOTENCY_CONFLICT.
   *
   * GPC rule (documented in docs/consent.md): when the request carries a GPC signal and the subject's
   * jurisdiction honours it, every purpose marked `gpcOptOut` gets a `denied` event with method `gpc`,
   * ordered before the batch's explicit events, unless the subject is already opted out or the deciding
   * event is an explicit grant made while the signal was present. State follows the latest event.
   */
  async record(events: readonly ConsentEventInput[], ctx: RecordContext): Promise<RecordResult> {
    const list: unknown = events;
    if (!Array.isArray(list) || events.length === 0 || events.length > LEDGER_LIMITS.maxBatch) {
      invalid('events', `a batch holds 1 to ${LEDGER_LIMITS.maxBatch} events`);
    }
    const prepared: PreparedEvent[] = [];
    const seenKeys = new Set<string>();
    for (let i = 0; i < events.length; i++) {
      const p = await this.#prepare(events[i]!, i, ctx);
      const key = p.input.idempotencyKey;
      if (key != null) {
        if (seenKeys.has(key)) {
          throw new CustodianError('CST_ERR_CONSENT_DUPLICATE_IDEMPOTENCY_KEY', 'an idempotency key appears twice in the batch', { details: { index: i } });
        }
        seenKeys.add(key);
      }
      prepared.push(p);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#write(prepared, ctx);
      } catch (err) {
        // A concurrent writer committed the same idempotency key first: run again to answer with its event.
        if (isUniqueViolation(err) && attempt === 1) continue;
        // A GPC opt-out (applyGpc) committed between drawing our ids and our transaction: draw them again.
        if (err instanceof OvertakenByGpc && attempt < 5) continue;
        throw err;
      }
    }
  }

  async #prepare(e: ConsentEventInput, i: number, ctx: RecordContext): Promise<PreparedEvent> {
    if (e === null || typeof e !== 'object') invalid(`events.${i}`, 'must be an object');
    checkSubjectId(e.subjectId, `events.${i}.subjectId`);
    if (typeof e.purpose !== 'string') invalid(`events.${i}.purpose`, 'must be a string');
    if (!DECISIONS.includes(e.decision)) invalid(`events.${i}.decision`, `must be one of ${DECISIONS.join(', ')}`);
    if (e.method !== undefined && !INPUT_METHODS.includes(e.method)) invalid(`events.${i}.method`, 'unknown collection method (gpc is reserved to Custodian)');
    if (e.jurisdiction != null && !JURISDICTION_CODE_PATTERN.test(e.jurisdiction)) invalid(`events.${i}.jurisdiction`, 'must look like EU, UK, US-CA');
    if (e.noticeVersion != null && (typeof e.noticeVersion !== 'string' || e.noticeVersion.length > LEDGER_LIMITS.maxNoticeVersionLength || !isStorableText(e.noticeVersion))) {
      invalid(`events.${i}.noticeVersion`, `must be at most ${LEDGER_LIMITS.maxNoticeVersionLength} characters`);
    }
    if (e.clientTime != null && !isIsoInstant(e.clientTime)) invalid(`events.${i}.clientTime`, 'must be an ISO-8601 instant with a time zone');
    if (e.expiresAt != null && !isIsoInstant(e.expiresAt)) invalid(`events.${i}.expiresAt`, 'must be an ISO-8601 instant with a time zone');
    // Only grants expire: an expiring denial or objection would silently allow processing again.
    if (e.expiresAt != null && e.decision !== 'granted') {
      throw new CustodianError('CST_ERR_CONSENT_BAD_EXPIRY', 'only grants can expire', { details: { index: i, path: `events.${i}.expiresAt` } });
    }
    if (
      e.idempotencyKey != null &&
      (typeof e.idempotencyKey !== 'string' || e.idempotencyKey.length === 0 || e.idempotencyKey.length > LEDGER_LIMITS.maxIdempotencyKeyLength || !isStorableText(e.idempotencyKey))
    ) {
      invalid(`events.${i}.idempotencyKey`, `must be 1 to ${LEDGER_LIMITS.maxIdempotencyKeyLength} characters`);
    }
    const purpose = await this.#purposes.require(e.purpose, `events.${i}.purpose`);
    if (!offeredIn(purpose, e.jurisdiction)) {
      throw new CustodianError('CST_ERR_CONSENT_PURPOSE_NOT_OFFERED', 'purpose is not offered in this jurisdiction', {
        details: { index: i, purpose: purpose.key, jurisdiction: e.jurisdiction },
      });
    }
    const evidence = minimiseEvidence(e.evidence, { truncateIp: this.#truncateIp }, i);
    const requestHash = e.idempotencyKey == null ? null : this.#hashRequest(e, evidence);
    return { input: e, purpose, evidence, gpc: ctx.gpc === true || e.evidence?.gpc === true, requestHash };
  }

  async #write(prepared: readonly PreparedEvent[], ctx: RecordContext): Promise<RecordResult> {
    const now = this.#clock.now();
    const recordedAt = toIso(now);
    const batchId = uuidv7(now);
    // Ids are drawn before the transaction so evidence can be sealed to its row outside it. GPC opt-outs must
    // sort before the batch's explicit events, so their candidate ids are drawn first (unused ones are skipped).
    const gpcIds = Array.from({ length: this.#gpcCandidateCount(prepared) }, () => uuidv7(now));
    const ids = prepared.map(() => uuidv7(now));
    const sealed = await this.#sealEvidence(prepared, ids);
    const result = await this.#store.transaction(async (trx) => {
      await this.#serialiseWithGpc(trx, prepared, ids);
      const keys = prepared.flatMap((p) => (p.input.idempotencyKey == null ? [] : [p.input.idempotencyKey]));
      const existing = new Map<string, EventRow>();
      if (keys.length > 0) for (const r of await repo.findByIdempotencyKeys(trx, keys)) existing.set(r.idempotency_key!, r);

      const gpcRows = await this.#gpcOptOuts(trx, prepared, existing, now, batchId, ctx.actor, gpcIds);
      const rows: NewEventRow[] = [...gpcRows];
      const answer: Array<{ row: EventRow | NewEventRow; evidence?: Evidence | null; replayed: boolean }> = gpcRows.map((row) => ({ row, replayed: false }));
      for (let i = 0; i < prepared.length; i++) {
        const p = prepared[i]!;
        const prior = p.input.idempotencyKey == null ? undefined : existing.get(p.input.idempotencyKey);
        if (prior !== undefined) {
          if (prior.request_hash !== p.requestHash) {
            throw new CustodianError('CST_ERR_CONSENT_IDEMPOTENCY_CONFLICT', 'idempotency key was used for a different event', {
              details: { index: i, eventId: prior.id },
            });
          }
          answer.push({ row: prior, replayed: true });
          continue;
        }
        const row = this.#row(p, ids[i]!, sealed[i] ?? null, now, recordedAt, batchId, ctx.actor, i);
        rows.push(row);
        answer.push({ row, evidence: p.evidence, replayed: false });
      }
      if (rows.length > 0) {
        await this.#append(trx, rows, gpcRows.length, batchId, ctx);
        return { batchId, answer };
      }
      // A whole replay of one earlier batch answers with that batch's id, as the first answer did.
      const earlier = new Set(answer.map((e) => e.row.batch_id));
      return { batchId: earlier.size === 1 ? [...earlier][0]! : batchId, answer };
    });
    this.#invalidate(result.answer.map((e) => e.row.subject_id));
    this.#events?.committed();
    // Replayed events carry stored (sealed) evidence: open it now, outside the transaction.
    const opened = await this.#toEvents(result.answer.filter((a) => a.evidence === undefined).map((a) => a.row));
    let k = 0;
    const events: RecordedEvent[] = result.answer.map((a) =>
      a.evidence === undefined ? { ...opened[k++]!, replayed: a.replayed } : { ...toEvent(a.row, a.evidence), replayed: a.replayed },
    );
    return { batchId: result.batchId, events };
  }

  /**
   * A batch touching a `gpcOptOut` purpose takes the subject's GPC lock (the one {@link applyGpc} holds), in
   * subject order, and fails with {@link OvertakenByGpc} when a GPC opt-out of one of its pairs committed with a
   * newer id than the batch's own: its ids were drawn before that opt-out, and the state follows the newest id,
   * so the person's explicit choice would otherwise lose to a signal processed after it. Ids drawn again are
   * newer. Batches without such purposes pay nothing.
   */
  async #serialiseWithGpc(trx: Executor, prepared: readonly PreparedEvent[], ids: readonly string[]): Promise<void> {
    const mine = new Map<string, string>();
    for (let i = 0; i < prepared.length; i++) {
      const p = prepared[i]!;
      if (!p.purpose.gpcOptOut) continue;
      const key = `${p.input.subjectId}\u0000${p.purpose.key}`;
      const held = mine.get(key);
      if (held === undefined || ids[i]! < held) mine.set(key, ids[i]!);
    }
    if (mine.size === 0) return;
    const subjects = [...new Set(prepared.filter((p) => p.purpose.gpcOptOut).map((p) => p.input.subjectId))].sort();
    await this.#store.lockAll(trx, subjects.map((s) => `custodian:gpc:${s}`));
    for (const r of await repo.gpcStates(trx, subjects)) {
      const id = mine.get(`${r.subject_id}\u0000${r.purpose}`);
      if (id !== undefined && r.event_id > id) throw new OvertakenByGpc();
    }
  }

  /**
   * Appends new event rows in `trx`: the events, the projection, the change notice, the consent-tree leaves and
   * one `consent.recorded` audit entry, and a `consent.<decision>` outbox event per row. Every write path ends here.
   */
  async #append(trx: Executor, rows: readonly NewEventRow[], gpcOptOuts: number, batchId: string, ctx: { readonly actor: string; readonly requestId?: string | undefined }): Promise<void> {
    await repo.insertEvents(trx, rows);
    await repo.upsertState(trx, latestPerPair(rows));
    await this.#store.announceChange(trx, 'consent', rows.map((r) => r.subject_id));
    if (this.#audit !== undefined) {
      await this.#audit.queueConsentEvents(trx, rows);
      await this.#audit.record(trx, [
        {
          actor: ctx.actor,
          action: 'consent.recorded',
          targetType: 'consent_batch',
          targetId: batchId,
          requestId: ctx.requestId ?? null,
          details: { events: rows.length, gpcOptOuts, subjects: new Set(rows.map((r) => r.subject_id)).size, purposes: [...new Set(rows.map((r) => r.purpose))].sort() },
        },
      ]);
    }
    await this.#events?.emit(trx, rows.map(consentEvent));
  }

  /**
   * Applies a Global Privacy Control signal that came without a choice (a signed-in person's visit to the privacy
   * center with `Sec-GPC: 1`): the GPC rule of {@link record}, for one subject, with no explicit event. Where the
   * jurisdiction honours GPC, every `gpcOptOut` purpose offered there whose deciding event is not an opt-out gets a
   * `denied` event with method `gpc` — unless that event is a grant the subject made while the signal was present
   * (11 CCR §7025(c)(3): after the business has shown the conflict, the consumer's consent may be honoured). So it
   * is idempotent: a second visit finds everything opted out and writes nothing. The opt-outs go through the one
   * write path: one batch, one `consent.recorded` audit entry, one `consent.denied` outbox event per purpose.
   *
   * Cost: one projection read (usually cached) per call; a transaction only when something changes.
   *
   * @example
   * const { purposes } = await ledger.applyGpc('u-123', { jurisdiction: 'US-CA', actor: 'privacy_center:…' });
   */
  async applyGpc(subjectId: string, options: ApplyGpcOptions): Promise<GpcApplication> {
    checkSubjectId(subjectId);
    const jurisdiction = options.jurisdiction ?? null;
    if (jurisdiction !== null && !JURISDICTION_CODE_PATTERN.test(jurisdiction)) invalid('jurisdiction', 'must look like EU, UK, US-CA');
    const honoured = this.#gpcEverywhere || honoursGpc(jurisdiction);
    const candidates = honoured ? this.#purposes.list().filter((p) => p.gpcOptOut && offeredIn(p, jurisdiction)) : [];
    if (candidates.length === 0) return { honoured, purposes: [], batchId: null };
    const now = this.#clock.now();
    // The usual visit changes nothing: decide that from the (cached) projection before opening a transaction.
    const { states } = await this.#subject(subjectId, now);
    if (!candidates.some((p) => needsGpcOptOut(states.get(p.key), false))) return { honoured, purposes: [], batchId: null };
    const batchId = uuidv7(now);
    const rows = await this.#store.transaction(async (trx) => {
      // Two tabs opening the page at once must not both record the opt-outs; a batch of explicit choices for
      // these purposes takes the same lock (see #serialiseWithGpc). Ids are drawn under the lock.
      await this.#store.lock(trx, `custodian:gpc:${subjectId}`);
      const ids = candidates.map(() => uuidv7(this.#clock.now()));
      const subjects = new Map([[subjectId, { jurisdiction, explicit: new Set<string>() }]]);
      const gpcRows = await this.#gpcDenials(trx, subjects, now, batchId, options.actor, ids);
      if (gpcRows.length > 0) await this.#append(trx, gpcRows, gpcRows.length, batchId, options);
      return gpcRows;
    });
    if (rows.length > 0) {
      this.#invalidate([subjectId]);
      this.#events?.committed();
    }
    return { honoured, purposes: rows.map((r) => r.purpose).sort(), batchId: rows.length > 0 ? batchId : null };
  }

  /**
   * A stable digest of what a caller submitted, to tell a replay from a conflicting reuse of its key. It covers
   * the minimised evidence (what is stored), and is keyed by the keyring when one is configured, so the digest
   * outlives shredding without letting anyone holding the database confirm guessed evidence.
   */
  #hashRequest(e: ConsentEventInput, evidence: Evidence | null): string {
    const canonical = JSON.stringify([
      e.subjectId, e.purpose, e.decision, e.jurisdiction ?? null, e.noticeVersion ?? null, e.method ?? 'api',
      e.clientTime == null ? null : toIso(Date.parse(e.clientTime)),
      e.expiresAt == null ? null : toIso(Date.parse(e.expiresAt)),
      evidence === null ? null : [evidence.ip ?? null, evidence.userAgent ?? null, evidence.pageUrl ?? null, evidence.tcString ?? null, evidence.gpc ?? null],
    ]);
    return this.#cipher === undefined ? createHash('sha256').update(canonical).digest('hex') : this.#cipher.keyedDigest(`consent-request:${canonical}`);
  }

  /** Upper bound of GPC opt-out events a batch can need: subjects with the signal × opt-out purposes. */
  #gpcCandidateCount(prepared: readonly PreparedEvent[]): number {
    const subjects = new Set(prepared.filter((p) => p.gpc).map((p) => p.input.subjectId));
    return subjects.size === 0 ? 0 : subjects.size * this.#purposes.list().filter((p) => p.gpcOptOut).length;
  }

  /** Seals each event's evidence under its subject's key, bound to the event's row; JSON when no cipher is configured. */
  async #sealEvidence(prepared: readonly PreparedEvent[], ids: readonly string[]): Promise<Array<string | null>> {
    const out: Array<string | null> = prepared.map((p) => (p.evidence === null ? null : JSON.stringify(p.evidence)));
    if (this.#cipher === undefined) return out;
    const items = prepared.flatMap((p, i) => (p.evidence === null ? [] : [{ i, subjectId: p.input.subjectId, plaintext: out[i]!, context: evidenceContext(ids[i]!) }]));
    if (items.length === 0) return out;
    const sealed = await this.#cipher.encryptMany(items);
    items.forEach((item, n) => (out[item.i] = sealed[n]!));
    return out;
  }

  /** Stored rows as events, sealed evidence opened; evidence of a shredded subject reads `{ shredded: true }`. */
  async #toEvents(rows: ReadonlyArray<EventRow | NewEventRow>): Promise<ConsentEvent[]> {
    const sealed = rows.flatMap((r, i) => (r.evidence_format === SEALED && r.evidence != null ? [{ i, ciphertext: r.evidence, context: evidenceContext(r.id) }] : []));
    const evidence = new Map<number, Evidence>();
    if (sealed.length > 0) {
      if (this.#cipher === undefined) throw new CustodianError('CST_ERR_INTERNAL', 'sealed evidence but no keyring configured');
      const opened = await this.#cipher.decryptManyText(sealed);
      opened.forEach((o, n) => {
        if ('plaintext' in o) evidence.set(sealed[n]!.i, JSON.parse(o.plaintext) as Evidence);
        else if (o.error.code === 'CST_ERR_CRYPTO_SHREDDED') evidence.set(sealed[n]!.i, { shredded: true });
        else throw o.error;
      });
    }
    return rows.map((r, i) => toEvent(r, r.evidence_format === SEALED ? (evidence.get(i) ?? null) : r.evidence == null ? null : (JSON.parse(r.evidence) as Evidence)));
  }

  #row(p: PreparedEvent, id: string, evidence: string | null, now: number, recordedAt: string, batchId: string, actor: string, index: number): NewEventRow {
    const e = p.input;
    let expiresAt: string | null = null;
    if (e.expiresAt != null) {
      const ms = Date.parse(e.expiresAt);
      if (ms <= now) throw new CustodianError('CST_ERR_CONSENT_BAD_EXPIRY', 'expiresAt must be after the recorded time', { details: { index } });
      expiresAt = toIso(ms);
    } else if (e.decision === 'granted' && p.purpose.consentRequired && p.purpose.defaultExpiryMonths !== null) {
      expiresAt = toIso(addMonths(now, p.purpose.defaultExpiryMonths));
    }
    return {
      id,
      subject_id: e.subjectId,
      purpose: p.purpose.key,
      decision: e.decision,
      legal_basis: p.purpose.legalBasis,
      jurisdiction: e.jurisdiction ?? null,
      notice_version: e.noticeVersion ?? null,
      method: e.method ?? 'api',
      recorded_at: recordedAt,
      client_time: e.clientTime == null ? null : toIso(Date.parse(e.clientTime)),
      expires_at: expiresAt,
      gpc: p.gpc ? 1 : 0,
      evidence,
      evidence_format: evidence === null || this.#cipher === undefined ? 'json' : SEALED,
      idempotency_key: e.idempotencyKey ?? null,
      request_hash: p.requestHash,
      batch_id: batchId,
      actor,
    };
  }

  /** GPC opt-out events for the batch, per the rule documented on {@link record}. */
  async #gpcOptOuts(
    trx: Executor,
    prepared: readonly PreparedEvent[],
    existing: ReadonlyMap<string, EventRow>,
    now: number,
    batchId: string,
    actor: string,
    ids: readonly string[],
  ): Promise<NewEventRow[]> {
    const bySubject = new Map<string, { jurisdiction: string | null; explicit: Set<string> }>();
    for (const p of prepared) {
      if (!p.gpc) continue;
      if (p.input.idempotencyKey != null && existing.has(p.input.idempotencyKey)) continue;
      const s = bySubject.get(p.input.subjectId) ?? { jurisdiction: null, explicit: new Set<string>() };
      s.jurisdiction ??= p.input.jurisdiction ?? null;
      s.explicit.add(p.purpose.key);
      bySubject.set(p.input.subjectId, s);
    }
    return this.#gpcDenials(trx, bySubject, now, batchId, actor, ids);
  }

  /** The GPC denials for subjects with the signal (and the purposes of their explicit events in the batch), read in `trx`. */
  async #gpcDenials(
    trx: Executor,
    bySubject: ReadonlyMap<string, { jurisdiction: string | null; explicit: ReadonlySet<string> }>,
    now: number,
    batchId: string,
    actor: string,
    ids: readonly string[],
  ): Promise<NewEventRow[]> {
    let nextId = 0;
    const optOutPurposes = this.#purposes.list().filter((p) => p.gpcOptOut);
    if (bySubject.size === 0 || optOutPurposes.length === 0) return [];
    const subjects = [...bySubject.entries()].filter(([, s]) => this.#gpcEverywhere || honoursGpc(s.jurisdiction));
    if (subjects.length === 0) return [];
    const current = await repo.loadStates(trx, subjects.map(([id]) => id));
    const rows: NewEventRow[] = [];
    for (const [subjectId, s] of subjects) {
      for (const purpose of optOutPurposes) {
        if (!offeredIn(purpose, s.jurisdiction)) continue;
        if (!needsGpcOptOut(current.get(subjectId)?.get(purpose.key), s.explicit.has(purpose.key))) continue;
        rows.push({
          id: ids[nextId++]!,
          subject_id: subjectId,
          purpose: purpose.key,
          decision: 'denied',
          legal_basis: purpose.legalBasis,
          jurisdiction: s.jurisdiction,
          notice_version: null,
          method: 'gpc',
          recorded_at: toIso(now),
          client_time: null,
          expires_at: null,
          gpc: 1,
          evidence: JSON.stringify({ gpc: true }),
          evidence_format: 'json',
          idempotency_key: null,
          request_hash: null,
          batch_id: batchId,
          actor,
        });
      }
    }
    return rows;
  }

  /** Current state of every configured purpose (and any retired purpose with a decision) for a subject. */
  async state(subjectId: string): Promise<PurposeState[]> {
    checkSubjectId(subjectId);
    const now = this.#clock.now();
    const { states } = await this.#subject(subjectId, now);
    const keys = new Set([...this.#purposes.list().map((p) => p.key), ...states.keys()]);
    return [...keys].sort().map((k) => toPurposeState(k, states.get(k), now));
  }

  /**
   * Grant, denial and withdrawal counts and rates per purpose and UTC time bucket over `[from, to)` (default: the
   * last 30 days), for dashboards: aggregates only, no subject. Buckets without decisions are filled with zeros.
   * At most {@link CONSENT_RATES_MAX_BUCKETS} buckets.
   */
  async rates(options: ConsentRatesOptions = {}): Promise<ConsentRates> {
    const bucket = options.bucket ?? 'day';
    const to = options.to === undefined ? this.#clock.now() : Date.parse(options.to);
    const from = options.from === undefined ? to - 30 * 86_400_000 : Date.parse(options.from);
    if (!Number.isFinite(from)) invalid('from', 'must be an ISO-8601 instant');
    if (!Number.isFinite(to)) invalid('to', 'must be an ISO-8601 instant');
    if (from >= to) invalid('from', 'must be before to');
    const keys = bucketKeys(from, to, bucket);
    if (keys.length > CONSENT_RATES_MAX_BUCKETS) invalid('from', `the range spans more than ${CONSENT_RATES_MAX_BUCKETS} ${bucket} buckets`);
    const rows = await repo.decisionCounts(this.#store.db, { from: toIso(from), to: toIso(to), bucket });
    const byPurpose = new Map<string, Map<string, Record<Decision, number>>>();
    for (const r of rows) {
      let buckets = byPurpose.get(r.purpose);
      if (buckets === undefined) byPurpose.set(r.purpose, (buckets = new Map<string, Record<Decision, number>>()));
      let counts = buckets.get(r.bucket);
      if (counts === undefined) buckets.set(r.bucket, (counts = { granted: 0, denied: 0, withdrawn: 0 }));
      if ((DECISIONS as readonly string[]).includes(r.decision)) counts[r.decision] += r.count;
    }
    const ratio = (n: number, d: number) => (d === 0 ? 0 : Math.round((n / d) * 10_000) / 10_000);
    return {
      from: toIso(from),
      to: toIso(to),
      bucket,
      buckets: keys,
      purposes: [...byPurpose.keys()].sort().map((purpose) => ({
        purpose,
        series: keys.map((key) => {
          const c = byPurpose.get(purpose)!.get(key) ?? { granted: 0, denied: 0, withdrawn: 0 };
          const total = c.granted + c.denied + c.withdrawn;
          return { bucket: key, ...c, total, grantRate: ratio(c.granted, total), withdrawRate: ratio(c.withdrawn, total) };
        }),
      })),
    };
  }

  /**
   * The subject's events (recording order, paged) and the state as of `asOf` (default now): the state a
   * processor could rely on at that instant, to show processing was lawful when it happened.
   */
  async history(subjectId: string, options: HistoryOptions = {}, ctx?: ReadContext): Promise<HistoryResult> {
    checkSubjectId(subjectId);
    const at = options.asOf === undefined ? this.#clock.now() : Date.parse(options.asOf);
    if (options.asOf !== undefined && !isIsoInstant(options.asOf)) invalid('asOf', 'must be an ISO-8601 instant with a time zone');
    if (options.purpose !== undefined) await this.#purposes.require(options.purpose, 'purpose');
    const limit = Math.min(Math.max(options.limit ?? 100, 1), LEDGER_LIMITS.maxHistoryPage);
    const asOf = toIso(at);
    const rows = await repo.listEvents(this.#store.db, subjectId, { purpose: options.purpose, until: asOf, after: options.after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const asOfStates = await repo.statesAsOf(this.#store.db, subjectId, asOf, options.purpose);
    const keys = options.purpose !== undefined ? [options.purpose] : [...new Set([...this.#purposes.list().map((p) => p.key), ...asOfStates.keys()])].sort();
    // Reading evidence returns personal data: audited when an actor is named (every interface names one).
    if (ctx !== undefined && this.#audit !== undefined) {
      await this.#store.transaction((trx) =>
        this.#audit!.record(trx, [{ actor: ctx.actor, action: 'consent.history.read', targetType: 'subject', targetId: subjectId, requestId: ctx.requestId ?? null, details: { events: page.length, ...purposeDetails(ctx) } }]),
      );
    }
    return {
      subjectId,
      asOf,
      events: await this.#toEvents(page),
      state: keys.map((k) => toPurposeState(k, asOfStates.get(k), at)),
      nextCursor: rows.length > limit ? page[page.length - 1]!.id : null,
    };
  }

  /** One stored event by id (evidence opened, or marked shredded), or null. */
  async event(id: string, ctx?: ReadContext): Promise<ConsentEvent | null> {
    const row = await this.#store.db.selectFrom('consent_events').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) return null;
    if (ctx !== undefined && this.#audit !== undefined) {
      await this.#store.transaction((trx) =>
        this.#audit!.record(trx, [{ actor: ctx.actor, action: 'consent.history.read', targetType: 'subject', targetId: row.subject_id, requestId: ctx.requestId ?? null, details: { events: 1, ...purposeDetails(ctx) } }]),
      );
    }
    return (await this.#toEvents([row]))[0]!;
  }

  /**
   * Announces grants that have passed their expiry: one `consent.expired` event per (subject, purpose) whose
   * deciding event is a grant with `expires_at` at or before now, once per grant (recorded in
   * `consent_expiry_notices` in the same transaction). The state already reads such grants as expired; this
   * makes connected services hear it. Runs in batches of at most `limit`; returns how many it announced.
   */
  async announceExpiries(options: { limit?: number; actor?: string } = {}): Promise<number> {
    const limit = Math.min(Math.max(options.limit ?? 1000, 1), 10_000);
    const now = toIso(this.#clock.now());
    const announced = await this.#store.transaction(async (trx) => {
      await this.#store.lock(trx, 'custodian:consent_expiry');
      const due = await trx
        .selectFrom('consent_state as s')
        .leftJoin('consent_expiry_notices as n', 'n.event_id', 's.event_id')
        .select(['s.subject_id', 's.purpose', 's.event_id', 's.legal_basis', 's.expires_at', 's.recorded_at', 's.jurisdiction'])
        .where('s.decision', '=', 'granted')
        .where('s.expires_at', 'is not', null)
        .where('s.expires_at', '<=', now)
        .where('n.event_id', 'is', null)
        .orderBy('s.expires_at')
        .limit(limit)
        .execute();
      if (due.length === 0) return 0;
      await trx.insertInto('consent_expiry_notices').values(due.map((d) => ({ event_id: d.event_id, announced_at: now }))).execute();
      await this.#events?.emit(
        trx,
        due.map((d) => ({
          type: 'consent.expired' as const,
          subjectId: d.subject_id,
          purposes: [d.purpose],
          data: { consentEventId: d.event_id, decision: 'granted', legalBasis: d.legal_basis, jurisdiction: d.jurisdiction, recordedAt: isoOrNull(d.recorded_at), expiresAt: isoOrNull(d.expires_at) },
        })),
      );
      await this.#audit?.record(trx, [
        { actor: options.actor ?? 'system:consent-expiry', action: 'consent.expiries_announced', targetType: 'system', targetId: null, details: { grants: due.length } },
      ]);
      return due.length;
    });
    if (announced > 0) this.#events?.committed();
    return announced;
  }

  /**
   * Restricts processing of a subject (GDPR Art. 18; LGPD Art. 18, IV blocking): from the commit on, every check
   * of the subject answers `restricted` (not allowed) except for purposes based on a legal obligation (see
   * {@link evaluate}). Idempotent: restricting a restricted subject records nothing and answers `changed: false`.
   * The event, the projection, the audit entry and the `subject.restricted` outbox event commit together, and
   * caches in other processes are told (change notice on the `consent` topic).
   */
  async restrict(subjectId: string, options: RestrictOptions): Promise<RestrictionChange> {
    checkSubjectId(subjectId);
    if (!(RESTRICTION_REASON_KEYS as readonly string[]).includes(options.reason)) invalid('reason', `must be one of ${RESTRICTION_REASON_KEYS.join(', ')}`);
    if (options.requestId != null && (typeof options.requestId !== 'string' || !isUuid(options.requestId))) invalid('requestId', 'must be a request id (UUID)');
    return this.#changeRestriction(subjectId, 'restricted', options.reason, options.requestId ?? null, options);
  }

  /**
   * Lifts the restriction of processing of a subject (GDPR Art. 18(3): the subject must be told before; that is
   * the controller's part). Idempotent: lifting when no restriction is in force records nothing (`changed: false`).
   * Emits `subject.restriction_lifted` in the same transaction.
   */
  async liftRestriction(subjectId: string, options: LiftRestrictionOptions): Promise<RestrictionChange> {
    checkSubjectId(subjectId);
    if (!(RESTRICTION_LIFT_REASON_KEYS as readonly string[]).includes(options.reason)) invalid('reason', `must be one of ${RESTRICTION_LIFT_REASON_KEYS.join(', ')}`);
    return this.#changeRestriction(subjectId, 'lifted', options.reason, null, options);
  }

  /** The restriction of processing of a subject as stored now (read from the store, not the cache). */
  async restriction(subjectId: string): Promise<Restriction> {
    checkSubjectId(subjectId);
    return toRestriction(subjectId, await restrictions.current(this.#store.db, subjectId));
  }

  async #changeRestriction(
    subjectId: string,
    action: 'restricted' | 'lifted',
    reason: string,
    requestId: string | null,
    ctx: { readonly actor: string; readonly auditRequestId?: string },
  ): Promise<RestrictionChange> {
    const now = this.#clock.now();
    const at = toIso(now);
    const drawn = uuidv7(now);
    const result = await this.#store.transaction(async (trx) => {
      // One writer per subject: two concurrent restrictions must not both see "not restricted" and both record.
      await this.#store.lock(trx, `custodian:restriction:${subjectId}`);
      const current = await restrictions.current(trx, subjectId);
      if ((Number(current?.restricted ?? 0) === 1) === (action === 'restricted')) return { row: current, changed: false };
      // The projection only moves to a later event id: behind a clock step (or another replica's clock), the id
      // takes the millisecond after the current event's, so the history's order stays the order of the changes.
      const eventId = current !== undefined && drawn <= current.event_id ? uuidv7(uuidv7Time(current.event_id) + 1) : drawn;
      const event = { id: eventId, subject_id: subjectId, action, reason, request_id: requestId, actor: ctx.actor.slice(0, 128), at };
      await restrictions.append(trx, event, action === 'restricted' ? at : null, current !== undefined);
      await this.#store.announceChange(trx, 'consent', [subjectId]);
      await this.#audit?.record(trx, [
        {
          actor: ctx.actor,
          action: action === 'restricted' ? 'subject.restricted' : 'subject.restriction_lifted',
          targetType: 'subject',
          targetId: subjectId,
          requestId: ctx.auditRequestId ?? null,
          details: { reason, restrictionEventId: eventId, subjectRequestId: requestId },
        },
      ]);
      await this.#events?.emit(trx, [
        {
          type: action === 'restricted' ? 'subject.restricted' : 'subject.restriction_lifted',
          subjectId,
          purposes: [],
          data: { restrictionEventId: eventId, reason, requestId, at },
        },
      ]);
      const row: RestrictionRow = { subject_id: subjectId, restricted: action === 'restricted' ? 1 : 0, reason, request_id: requestId, since: action === 'restricted' ? at : null, event_id: eventId, updated_at: at };
      return { row, changed: true };
    });
    if (result.changed) {
      this.#invalidate([subjectId]);
      this.#events?.committed();
    }
    return { ...toRestriction(subjectId, result.row), changed: result.changed };
  }

  /**
   * One page of the current projection (every subject's deciding event per purpose), in (subject, purpose) order,
   * for clients that keep a local copy (the ConsentClient's cold start). `sequence` is the event outbox position
   * read before the first page and carried in the cursor: every event at or before it is reflected in every page,
   * so a client that subscribed to the bus before asking loses nothing; later events may be reflected too, which
   * a client applying events by consent event id absorbs.
   */
  async snapshot(options: SnapshotOptions, deps: { head: () => Promise<number> }): Promise<SnapshotPage> {
    const limit = Math.min(Math.max(options.limit ?? 1000, 1), SNAPSHOT_MAX_PAGE);
    if (options.purpose !== undefined) await this.#purposes.require(options.purpose, 'purpose');
    let after: { subjectId: string; purpose: string } | undefined;
    let sequence: number;
    if (options.after === undefined) {
      sequence = await deps.head();
    } else {
      const c = decodeSnapshotCursor(options.after);
      after = { subjectId: c.subjectId, purpose: c.purpose };
      sequence = c.sequence;
    }
    const rows = await repo.snapshotPage(this.#store.db, { purpose: options.purpose, after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    // Restrictions are few (GDPR Art. 18 requests, and temporary): the first page lists them all, up to a cap.
    const restricted = options.after === undefined ? await repo.restrictedSubjects(this.#store.db, SNAPSHOT_MAX_RESTRICTIONS + 1) : [];
    return {
      restrictions: restricted.slice(0, SNAPSHOT_MAX_RESTRICTIONS).map((r) => ({ subjectId: r.subject_id, eventId: r.event_id })),
      restrictionsComplete: restricted.length <= SNAPSHOT_MAX_RESTRICTIONS,
      states: page.map((r) => ({
        subjectId: r.subject_id,
        purpose: r.purpose,
        decision: r.decision as Decision,
        eventId: r.event_id,
        expiresAt: isoOrNull(r.expires_at),
      })),
      next: rows.length > limit && last !== undefined ? encodeSnapshotCursor({ subjectId: last.subject_id, purpose: last.purpose, sequence }) : null,
      sequence: String(sequence),
    };
  }

  /** Whether processing `subjectId`'s data for `purpose` is allowed now, and why. */
  async check(subjectId: string, purposeKey: string): Promise<ConsentCheck> {
    const purpose = this.#purposes.peek(purposeKey) ?? (await this.#purposes.require(purposeKey, 'purpose'));
    const now = this.#clock.now();
    const entry = this.#cache.get(subjectId);
    if (entry !== undefined && isFresh(entry.loadedAt, now, this.#cacheTtl())) {
      const memo = entry.checks?.get(purposeKey);
      if (memo !== undefined && memo.purpose === purpose && now < memo.validUntil) return memo.check;
      const row = entry.states.get(purposeKey);
      const check = Object.freeze(evaluate(subjectId, purpose, row, now, entry.restriction !== undefined));
      entry.checks?.set(purposeKey, { check, purpose, validUntil: row?.expiresAt ?? Infinity });
      return check;
    }
    checkSubjectId(subjectId);
    const subject = await this.#subject(subjectId, now);
    return evaluate(subjectId, purpose, subject.states.get(purposeKey), now, subject.restriction !== undefined);
  }

  /** Subjects whose consent state is held in this ledger's cache (for metrics and tests). */
  get cachedSubjects(): number {
    return this.#cache.size;
  }

  /**
   * Checks many (subject, purpose) pairs with one store read per chunk of uncached subjects.
   *
   * `bulk`: the caller is scanning many subjects (a consent filter over a dataset): cached subjects are used,
   * but the others are read for the asked purposes only and not cached — a scan would otherwise evict the
   * subjects that point checks keep hot, and pay for filling a cache it will not read again.
   */
  async checkMany(pairs: readonly { subjectId: string; purpose: string }[], options: { bulk?: boolean } = {}): Promise<ConsentCheck[]> {
    if (pairs.length > LEDGER_LIMITS.maxCheckBatch) invalid('checks', `at most ${LEDGER_LIMITS.maxCheckBatch} pairs`);
    const purposes = new Map<string, Purpose>();
    for (let i = 0; i < pairs.length; i++) {
      const { subjectId, purpose } = pairs[i]!;
      checkSubjectId(subjectId, `checks.${i}.subjectId`);
      if (!purposes.has(purpose)) purposes.set(purpose, await this.#purposes.require(purpose, `checks.${i}.purpose`));
    }
    const now = this.#clock.now();
    // Cached states are taken now, before the await below: a change notice arriving meanwhile may evict
    // them, and a subject whose entry vanished must not read as "no consent recorded".
    const cached = new Map<string, SubjectView>();
    const missing: string[] = [];
    for (const s of new Set(pairs.map((p) => p.subjectId))) {
      const e = this.#cache.get(s);
      if (e !== undefined && isFresh(e.loadedAt, now, this.#cacheTtl())) cached.set(s, e);
      else missing.push(s);
    }
    const loaded = missing.length === 0 ? new Map<string, SubjectView>() : options.bulk === true ? await this.#read(missing, [...purposes.keys()]) : await this.#load(missing, now);
    return pairs.map(({ subjectId, purpose }) => {
      const subject = loaded.get(subjectId) ?? cached.get(subjectId);
      return evaluate(subjectId, purposes.get(purpose)!, subject?.states.get(purpose), now, subject?.restriction !== undefined);
    });
  }

  /**
   * The decision for `purpose` of each of `subjectIds` (ids may repeat), for scans over many subjects (the
   * consent filter): cached subjects are answered from the cache, the others read in bulk — their state for
   * this purpose and their restriction only, not cached. Same answers as {@link checkMany}: each is one of a
   * handful of shared frozen `{ allowed, status }` values, computed with `evaluate` once per call.
   * O(n) map operations plus ⌈u / 500⌉ queries for u uncached subjects.
   */
  async decideMany(subjectIds: readonly string[], purposeKey: string): Promise<Map<string, { readonly allowed: boolean; readonly status: CheckStatus }>> {
    if (subjectIds.length > LEDGER_LIMITS.maxCheckBatch) invalid('subjectIds', `at most ${LEDGER_LIMITS.maxCheckBatch} subjects`);
    const purpose = await this.#purposes.require(purposeKey, 'purpose');
    for (let i = 0; i < subjectIds.length; i++) checkSubjectId(subjectIds[i]!, `subjectIds.${i}`);
    const now = this.#clock.now();
    const answers = answerTable(purpose, now);
    const out = new Map<string, { readonly allowed: boolean; readonly status: CheckStatus }>();
    const missing: string[] = [];
    const ttl = this.#cacheTtl();
    for (const id of subjectIds) {
      if (out.has(id)) continue;
      const e = this.#cache.get(id);
      if (e !== undefined && isFresh(e.loadedAt, now, ttl)) out.set(id, answers(statusAt(e.states.get(purposeKey), now), e.restriction !== undefined));
      else {
        out.set(id, answers('none', false));
        missing.push(id);
      }
    }
    if (missing.length === 0) return out;
    const restricted = new Set<string>();
    const status = new Map<string, ConsentStatus>();
    await repo.decisionsOf(this.#store.db, missing, purposeKey, (id, decision, expiresAt, isRestriction) => {
      if (isRestriction) restricted.add(id);
      else status.set(id, expiresAt !== null && expiresAt <= now ? 'expired' : (decision as ConsentStatus));
    });
    for (const id of missing) {
      const st = status.get(id);
      const r = restricted.has(id);
      if (st !== undefined || r) out.set(id, answers(st ?? 'none', r));
    }
    return out;
  }

  async #subject(subjectId: string, now: number): Promise<SubjectView> {
    const entry = this.#cache.get(subjectId);
    if (entry !== undefined && isFresh(entry.loadedAt, now, this.#cacheTtl())) return entry;
    return (await this.#load([subjectId], now)).get(subjectId)!;
  }

  /**
   * Reads subjects' consent states (of `purposes` only, when given) and restrictions, one query per chunk of
   * ids, without caching them: a view of some purposes only must never be cached as the subject's.
   */
  async #read(subjectIds: readonly string[], purposes?: readonly string[]): Promise<Map<string, SubjectView>> {
    const rows = await repo.loadSubjects(this.#store.db, subjectIds, purposes);
    const loaded = new Map<string, SubjectView>();
    for (const [id, r] of rows) loaded.set(id, { states: r.states, restriction: r.restrictionEventId === undefined ? undefined : { eventId: r.restrictionEventId } });
    return loaded;
  }

  /** Loads subjects' consent states and restrictions (one query per chunk of ids) and caches them. */
  async #load(subjectIds: readonly string[], now: number): Promise<Map<string, SubjectView>> {
    const generation = this.#generation;
    const loaded = await this.#read(subjectIds);
    // A write that committed while we read has invalidated; caching our read would resurrect old state.
    if (generation === this.#generation && this.#ttl > 0) {
      for (const [id, view] of loaded) {
        this.#cache.delete(id);
        this.#cache.set(id, { loadedAt: now, states: view.states, restriction: view.restriction, checks: new Map() });
      }
      // Evict the oldest entries through one iterator: a fresh iterator per eviction would step over every
      // entry deleted before it (Map iteration skips holes), making a full cache quadratic to refill.
      if (this.#cache.size > this.#maxSubjects) {
        const oldest = this.#cache.keys();
        while (this.#cache.size > this.#maxSubjects) this.#cache.delete(oldest.next().value!);
      }
    }
    return loaded;
  }

  #invalidate(subjectIds: readonly string[]): void {
    this.#generation++;
    for (const id of subjectIds) this.#cache.delete(id);
    for (const l of this.#changeListeners) l(subjectIds);
  }
}

/** Largest page of {@link ConsentLedger.snapshot}. */
export const SNAPSHOT_MAX_PAGE = 10_000;
/** Most restricted subjects listed by the first page of {@link ConsentLedger.snapshot}. */
export const SNAPSHOT_MAX_RESTRICTIONS = 100_000;

/** Options of {@link ConsentLedger.snapshot}. */
export interface SnapshotOptions {
  /** Only this purpose. */
  readonly purpose?: string | undefined;
  /** The `next` cursor of the previous page. */
  readonly after?: string | undefined;
  /** Rows per page, 1..10,000; default 1,000. */
  readonly limit?: number | undefined;
}

/** One page of {@link ConsentLedger.snapshot}. */
export interface SnapshotPage {
  readonly states: ReadonlyArray<{
    subjectId: string;
    purpose: string;
    decision: Decision;
    eventId: string;
    expiresAt: string | null;
  }>;
  /** First page only (empty on later pages): every subject whose processing is restricted (GDPR Art. 18), with the restriction event. */
  readonly restrictions: ReadonlyArray<{ subjectId: string; eventId: string }>;
  /** False when there were more than {@link SNAPSHOT_MAX_RESTRICTIONS} restricted subjects and the list was cut. */
  readonly restrictionsComplete: boolean;
  readonly next: string | null;
  /** The event outbox position the snapshot covers at least (decimal string, like CloudEvents `sequence`). */
  readonly sequence: string;
}

function encodeSnapshotCursor(c: { subjectId: string; purpose: string; sequence: number }): string {
  return Buffer.from(JSON.stringify([c.subjectId, c.purpose, c.sequence]), 'utf8').toString('base64url');
}

function decodeSnapshotCursor(cursor: string): { subjectId: string; purpose: string; sequence: number } {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 3 && typeof v[0] === 'string' && typeof v[1] === 'string' && Number.isSafeInteger(v[2]) && (v[2] as number) >= 0) {
      return { subjectId: v[0], purpose: v[1], sequence: v[2] as number };
    }
  } catch {
    // reported below
  }
  invalid('after', 'not a cursor returned by this route');
}

function checkSubjectId(subjectId: string, path = 'subjectId'): void {
  if (typeof subjectId !== 'string' || subjectId.length === 0 || subjectId.length > LEDGER_LIMITS.maxSubjectIdLength || !isStorableText(subjectId)) {
    invalid(path, `must be 1 to ${LEDGER_LIMITS.maxSubjectIdLength} characters of well-formed Unicode without NUL`);
  }
}


/**
 * Whether the GPC rule adds an opt-out over the current deciding event `cur` (docs/consent.md#global-privacy-control):
 * nothing decided, or a grant made without the signal (11 CCR §7025(c)(1), (c)(3): the signal is processed as an
 * opt-out even where it conflicts with an earlier setting). Not over an opt-out, nor over a grant made while the
 * signal was present unless the batch has its own event for the purpose (`explicitInBatch`).
 */
function needsGpcOptOut(cur: StateRow | undefined, explicitInBatch: boolean): boolean {
  if (cur === undefined) return true;
  if (cur.decision !== 'granted') return false;
  return explicitInBatch || !cur.gpc;
}

/** The last row per (subject, purpose) in a batch; rows are in id order. */
/** The outbox event announcing one recorded consent event (ids, decision and times only; never evidence). */
function consentEvent(r: NewEventRow): EventInput {
  return {
    type: `consent.${r.decision as Decision}`,
    subjectId: r.subject_id,
    purposes: [r.purpose],
    data: {
      consentEventId: r.id,
      decision: r.decision,
      legalBasis: r.legal_basis,
      method: r.method,
      jurisdiction: r.jurisdiction,
      gpc: r.gpc === 1,
      recordedAt: r.recorded_at,
      expiresAt: r.expires_at,
    },
  };
}

/** Renders a projection row (or its absence) as the public {@link Restriction}. */
function toRestriction(subjectId: string, row: RestrictionRow | undefined): Restriction {
  return {
    subjectId,
    restricted: Number(row?.restricted ?? 0) === 1,
    reason: (row?.reason ?? null) as Restriction['reason'],
    requestId: row?.request_id ?? null,
    since: isoOrNull(row?.since ?? null),
    eventId: row?.event_id ?? null,
    updatedAt: isoOrNull(row?.updated_at ?? null),
  };
}

function latestPerPair(rows: readonly NewEventRow[]): NewEventRow[] {
  const last = new Map<string, NewEventRow>();
  for (const r of rows) last.set(`${r.subject_id}\u0000${r.purpose}`, r);
  return [...last.values()];
}

function toEvent(r: EventRow | NewEventRow, evidence: Evidence | null): ConsentEvent {
  return {
    id: r.id,
    subjectId: r.subject_id,
    purpose: r.purpose,
    decision: r.decision as Decision,
    legalBasis: r.legal_basis as LegalBasis,
    jurisdiction: r.jurisdiction ?? null,
    noticeVersion: r.notice_version ?? null,
    method: r.method as CollectionMethod,
    recordedAt: isoOrNull(r.recorded_at)!,
    clientTime: isoOrNull(r.client_time ?? null),
    expiresAt: isoOrNull(r.expires_at ?? null),
    gpc: Number(r.gpc) === 1,
    evidence,
    idempotencyKey: r.idempotency_key ?? null,
    batchId: r.batch_id,
    actor: r.actor,
  };
}

/**
 * `evaluate`'s `{ allowed, status }` for `purpose` per stored status and restriction, computed once: the answer
 * depends on nothing else (the ledger's {@link ConsentLedger.decideMany} and the client's cache rely on it).
 */
function answerTable(purpose: Purpose, now: number): (status: ConsentStatus, restricted: boolean) => { readonly allowed: boolean; readonly status: CheckStatus } {
  const row = (decision: Decision, expiresAt: number | null): StateRow => ({ purpose: purpose.key, eventId: '', decision, method: 'api', jurisdiction: null, gpc: false, recordedAt: 0, expiresAt });
  const rows: Record<ConsentStatus, StateRow | undefined> = { granted: row('granted', null), denied: row('denied', null), withdrawn: row('withdrawn', null), expired: row('granted', now), none: undefined };
  const table = new Map<string, { readonly allowed: boolean; readonly status: CheckStatus }>();
  for (const st of Object.keys(rows) as ConsentStatus[]) {
    for (const r of [false, true]) {
      const c = evaluate('', purpose, rows[st], now, r);
      table.set(`${st}|${r ? 1 : 0}`, Object.freeze({ allowed: c.allowed, status: c.status }));
    }
  }
  return (status, restricted) => table.get(`${status}|${restricted ? 1 : 0}`)!;
}
