import { CustodianError, ERROR_CODES, systemClock, type Clock, type CustodianEvent, type ErrorCode, type Purpose } from '../core/index.js';
import { evaluate, type StateRow } from '../ledger/index.js';
import { subscribeEvents, type BusOptions, type BusSubscription } from './bus.js';

/** Options of {@link ConsentClient}. */
export interface ConsentClientOptions {
  /** The Custodian server, e.g. `https://custodian.example.com` (routes under `/v1`). */
  readonly baseUrl: string;
  /** An API key with the `consent:read` scope. */
  readonly apiKey: string;
  /**
   * The bus a Custodian subscription delivers to (same stream and prefix as its target), or undefined for a client
   * without live updates: then answers age from {@link ConsentClient.start} (or the last {@link ConsentClient.refresh})
   * and become "ask the server" after `maxStalenessMs`.
   */
  readonly bus?: BusOptions | undefined;
  /** Keep only these purposes (the snapshot is loaded for them, events of other purposes are ignored). Default: all. */
  readonly purposes?: readonly string[] | undefined;
  /**
   * How long answers from memory are trusted after the bus was last known healthy. Past it, `isAllowed` answers
   * `undefined` where it would answer `true` (a stale "no" is kept: it fails closed) and `check` asks the server.
   * Default 10,000 ms.
   */
  readonly maxStalenessMs?: number | undefined;
  /** How long an answer fetched over HTTP by {@link ConsentClient.check} is reused. Default 60,000 ms. */
  readonly httpCacheTtlMs?: number | undefined;
  /** Rows per snapshot page (1..10,000). Default 5,000. */
  readonly snapshotPageSize?: number | undefined;
  /** Per-request timeout of HTTP calls. Default 10,000 ms. */
  readonly timeoutMs?: number | undefined;
  /** How often the purposes (and their legal bases) are re-read. Default 300,000 ms; 0 = never. */
  readonly purposesRefreshMs?: number | undefined;
  /** A `fetch` implementation (default: the global one). */
  readonly fetch?: typeof fetch | undefined;
  /** The clock of expiry decisions (tests inject a manual one). Default: the system clock. */
  readonly clock?: Clock | undefined;
}

/** What changed in the client's memory (see {@link ConsentClient.onChange}). */
export interface ConsentChange {
  /** The event type that caused it, or `snapshot` / `http` for loads. */
  readonly cause: string;
  readonly subjectId: string;
  /** The purposes whose answer may have changed; empty = every purpose of the subject. */
  readonly purposes: readonly string[];
  /** The bus event's id, when an event caused it. */
  readonly eventId?: string;
}

/** The last bus event the client handled. */
export interface LastEvent {
  readonly id: string;
  readonly sequence: string;
  /** The event's own time (when Custodian committed it), ISO-8601. */
  readonly time: string;
  /** Epoch ms when the client applied it. */
  readonly appliedAt: number;
}

/** One (subject, purpose) in memory: the deciding event and the answer precomputed for before and after expiry. */
interface Entry {
  /** The deciding consent event id (UUIDv7, time-ordered); '' for "no decision" learned over HTTP. */
  readonly eventId: string;
  readonly decision: StateRow['decision'] | null;
  readonly expiresAt: number | null;
  /** The answer until {@link validUntil}; undefined when it cannot be told from memory (see restriction). */
  readonly allowed: boolean | undefined;
  /** Epoch ms (client clock) until which {@link allowed} holds: the grant's expiry, or the HTTP cache deadline. */
  readonly validUntil: number;
  /** The answer from then on (undefined: ask again). */
  readonly after: boolean | undefined;
  /** Learned over HTTP (trusted for its TTL even while the bus is stale). */
  readonly http: boolean;
}

/** One subject in memory: its entries by purpose (the Map itself, one pointer less per lookup) and its restriction. */
class SubjectState extends Map<string, Entry> {
  /** Processing restricted (GDPR Art. 18); undefined when not known (an answer that depends on it is undefined). */
  restricted: boolean | undefined;
  /** The restriction event the flag rests on; '' when known from a load without an event. */
  restrictionEventId = '';
  /** Every in-scope purpose without an entry has no decision (known from the snapshot or the bus), not "unknown". */
  readonly complete: boolean;
  /** The expiry bucket the subject is filed under in the client's packed index (Infinity: none). */
  unpackAt = Infinity;

  constructor(restricted: boolean | undefined, complete: boolean) {
    super();
    this.restricted = restricted;
    this.complete = complete;
  }
}

/** The statuses a stored decision can have at an instant (the `status` argument of the server's `evaluate`). */
const STATUSES = ['granted', 'denied', 'withdrawn', 'expired', 'none'] as const;
type Status = (typeof STATUSES)[number];

/**
 * Per purpose, whether processing is allowed for each status, unrestricted and restricted: `evaluate`'s answer
 * depends on nothing else, so it is computed once per purpose with the server's own function.
 */
type AnswerTable = Readonly<Record<Status, readonly [free: boolean, restricted: boolean]>>;

function answerTable(p: Purpose): AnswerTable {
  const row = (decision: StateRow['decision'], expiresAt: number | null): StateRow => ({ purpose: p.key, eventId: '', decision, method: 'api', jurisdiction: null, gpc: false, recordedAt: 0, expiresAt });
  const rows: Record<Status, StateRow | undefined> = { granted: row('granted', null), denied: row('denied', null), withdrawn: row('withdrawn', null), expired: row('granted', 0), none: undefined };
  return Object.fromEntries(STATUSES.map((st) => [st, [evaluate('', p, rows[st], 1, false).allowed, evaluate('', p, rows[st], 1, true).allowed] as const])) as unknown as AnswerTable;
}

/** The answer for `status` given what is known of the restriction: undefined when not known and it would matter. */
function answerOf(t: AnswerTable, status: Status, restricted: boolean | undefined): boolean | undefined {
  const [free, whenRestricted] = t[status];
  if (restricted === undefined) return free === whenRestricted ? free : undefined;
  return restricted ? whenRestricted : free;
}

const NOT_LEGAL_OBLIGATION = (p: Purpose) => p.legalBasis !== 'legal_obligation';

/** Refresh period of the cached system time used by lookups (expiry decisions). */
const COARSE_CLOCK_MS = 20;

/** Purposes answered by the packed index (2 bits each in a small integer: 15 × 2 = 30 bits, a V8 Smi). */
const PACKED_SLOTS = 15;

/** Width of the packed index's expiry buckets (see {@link ConsentClient.isAllowed}). */
const BUCKET_MS = 60_000;

/** How long an erased subject's tombstone keeps late events from re-creating it. */
const TOMBSTONE_MS = 3_600_000;

/**
 * A local, event-fed copy of Custodian's consent state for other Node services: synchronous `isAllowed` from
 * memory (millions of lookups per second), kept current by the event bus, with an HTTP fallback.
 *
 * Start-up: subscribe to the bus first (events are buffered), then load the purposes and page through
 * `GET /v1/consent/snapshot`, then apply the buffered events and go live. Every (subject, purpose) keeps its
 * deciding consent event id, and an event is applied only when its `consentEventId` is newer: applying is
 * idempotent and order-independent, so duplicates, redeliveries and the overlap between snapshot and buffer are
 * harmless.
 *
 * Answers mirror the server's `evaluate` (ledger/projection.ts): consent-based purposes need a live, unexpired
 * grant (expiry is decided by the clock, without waiting for `consent.expired`); other bases are allowed unless
 * objected (`denied`/`withdrawn`) where the basis allows objection; a restricted subject (GDPR Art. 18) is allowed
 * only purposes based on a legal obligation. `subject.erased` drops the subject.
 *
 * Staleness rule: when the bus has not been known healthy for more than `maxStalenessMs`, `isAllowed` answers
 * `undefined` instead of `true` (a stored `false` is still answered: failing closed is always safe) and `check`
 * asks the server. So a withdrawal reaches a connected client within the bus latency, and a disconnected client
 * stops saying "allowed" at most `maxStalenessMs` after the bus was last heard from.
 *
 * @example
 * const consent = new ConsentClient({ baseUrl, apiKey, bus: { kind: 'nats', url: 'nats://127.0.0.1:4222' } });
 * await consent.start();
 * if (consent.isAllowed(userId, 'marketing.email') ?? (await consent.check(userId, 'marketing.email'))) send();
 */
export class ConsentClient {
  readonly #base: string;
  readonly #apiKey: string;
  readonly #bus: BusOptions | undefined;
  readonly #scope: ReadonlySet<string> | undefined;
  readonly #maxStaleness: number;
  readonly #httpTtl: number;
  readonly #pageSize: number;
  readonly #timeoutMs: number;
  readonly #purposesRefreshMs: number;
  readonly #fetch: typeof fetch;
  readonly #clock: Clock;

  readonly #subjects = new Map<string, SubjectState>();
  readonly #tombstones = new Map<string, { eventId: string; at: number }>();
  #purposes = new Map<string, Purpose>();
  /** Answers per purpose and status (see {@link answerTable}). */
  #answers = new Map<string, AnswerTable>();
  /**
   * The packed index, derived from {@link #subjects}: per subject one small integer with 2 bits per purpose slot
   * (0 = ask the full path, 1 = false, 2 = true). Time-dependent answers (grants with an expiry) are packed only
   * while their expiry falls in a later bucket than the current one, and are filed under their expiry's bucket,
   * which {@link #sweep} unpacks when the clock enters it; {@link #fastUntil} is the instant up to which every packed answer is known to hold.
   */
  readonly #packed = new Map<string, number>();
  /** Purpose → slot (the first {@link PACKED_SLOTS} purposes in scope). */
  #slots = new Map<string, number>();
  /** Expiry bucket → subjects with an answer packed until then. */
  readonly #buckets = new Map<number, Set<string>>();
  /** Every bucket up to this one has been unpacked. */
  #sweptBucket = -Infinity;
  #fastUntil = -Infinity;
  #restrictionsKnown = false;
  #sub: BusSubscription | undefined;
  #consume: Promise<void> | undefined;
  #buffer: CustodianEvent[] | undefined = [];
  /** Memory is too stale to answer `true` (see the staleness rule); kept by a timer and the bus health, so lookups read a flag. */
  #stale = true;
  #freshnessTimer: NodeJS.Timeout | undefined;
  /** With the system clock: the time, refreshed every {@link COARSE_CLOCK_MS} by a timer (see {@link #now}). */
  #coarseNow = Date.now();
  #coarseTimer: NodeJS.Timeout | undefined;
  #loadedAt = 0;
  #lastEvent: LastEvent | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  readonly #listeners = new Set<(change: ConsentChange) => void>();

  constructor(options: ConsentClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#bus = options.bus;
    this.#scope = options.purposes === undefined ? undefined : new Set(options.purposes);
    this.#maxStaleness = options.maxStalenessMs ?? 10_000;
    this.#httpTtl = options.httpCacheTtlMs ?? 60_000;
    this.#pageSize = Math.min(Math.max(options.snapshotPageSize ?? 5000, 1), 10_000);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#purposesRefreshMs = options.purposesRefreshMs ?? 300_000;
    this.#fetch = options.fetch ?? fetch;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Subscribes to the bus, loads the purposes and the snapshot, applies what arrived meanwhile, and goes live.
   * Fails (and closes the subscription) when the server or the bus cannot be reached.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error('ConsentClient already started');
    this.#started = true;
    try {
      if (this.#bus !== undefined) {
        this.#sub = await subscribeEvents(this.#bus, { filter: 'all', start: 'new' });
        this.#sub.onHealth(() => this.#checkFreshness());
        this.#consume = this.#run(this.#sub);
      }
      await this.#loadPurposes();
      await this.#loadSnapshot();
      const buffered = this.#buffer ?? [];
      this.#buffer = undefined;
      for (const e of buffered) this.#apply(e);
      this.#checkFreshness();
      if (this.#clock === systemClock) {
        this.#coarseTimer = setInterval(() => (this.#coarseNow = Date.now()), COARSE_CLOCK_MS);
        this.#coarseTimer.unref();
      }
      if (this.#purposesRefreshMs > 0) {
        this.#timer = setInterval(() => void this.#refreshPurposes().catch(() => undefined), this.#purposesRefreshMs);
        this.#timer.unref();
      }
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Reloads the snapshot (for a client without a bus, or after a long outage); events keep applying meanwhile. */
  async refresh(): Promise<void> {
    await this.#loadPurposes();
    await this.#loadSnapshot();
    this.#checkFreshness();
  }

  /** Stops the subscription and the timers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#freshnessTimer !== undefined) clearTimeout(this.#freshnessTimer);
    if (this.#coarseTimer !== undefined) clearInterval(this.#coarseTimer);
    this.#stale = true;
    await this.#sub?.close();
    await this.#consume;
  }

  /**
   * Whether `subjectId`'s data may be processed for `purpose` now, from memory: `true`/`false`, or `undefined`
   * when memory cannot tell (unknown subject or purpose, a purpose outside the client's scope, an HTTP answer
   * past its TTL, or `true` while the bus is stale); then call {@link check}. O(1): two Map lookups.
   */
  isAllowed(subjectId: string, purpose: string): boolean | undefined {
    // Fast path: one Map lookup of a small integer (no object to follow), then a bit test. At 500,000 subjects
    // the nested Map the full path reads costs ~3 cache misses more per lookup (bench/propagation-bus.ts).
    let v = this.#packed.get(subjectId);
    if (v !== undefined && !this.#stale) {
      if (this.#now() >= this.#fastUntil) {
        this.#sweep();
        v = this.#packed.get(subjectId) ?? 0;
      }
      const slot = this.#slots.get(purpose);
      if (slot !== undefined) {
        const code = (v >> (slot << 1)) & 3;
        if (code !== 0) return code === 2;
      }
    }
    return this.#lookup(subjectId, purpose);
  }

  /** {@link isAllowed} from the full state (the packed index is derived from it). */
  #lookup(subjectId: string, purpose: string): boolean | undefined {
    const s = this.#subjects.get(subjectId);
    if (s === undefined) return undefined;
    const e = s.get(purpose);
    if (e !== undefined) {
      // Only answers that can change with time read the clock (grants with an expiry, HTTP answers).
      const answer = e.validUntil === Infinity || this.#now() < e.validUntil ? e.allowed : e.after;
      return answer === true && this.#stale && !e.http ? undefined : answer;
    }
    if (!s.complete) return undefined;
    const t = this.#answers.get(purpose);
    if (t === undefined) return undefined;
    const answer = answerOf(t, 'none', s.restricted);
    return answer === true && this.#stale ? undefined : answer;
  }

  /**
   * Re-packs `subjectId` after any change of its state. A slot is packed when its answer cannot change before
   * the current bucket ends: answers without expiry, and grants that expire in a later bucket (filed under it;
   * {@link #sweep} unpacks them when the clock gets there). HTTP answers and answers that depend on an unknown
   * restriction stay unpacked. O(P) for P purposes in scope.
   */
  #pack(subjectId: string, s: SubjectState | undefined): void {
    if (s === undefined) {
      this.#packed.delete(subjectId);
      return;
    }
    const current = Math.max(Math.floor(this.#now() / BUCKET_MS), this.#sweptBucket);
    let v = 0;
    let unpackAt = Infinity;
    for (const [purpose, slot] of this.#slots) {
      const e = s.get(purpose);
      let answer: boolean | undefined;
      if (e === undefined) answer = s.complete ? answerOf(this.#answers.get(purpose)!, 'none', s.restricted) : undefined;
      else if (e.http) answer = undefined;
      else if (e.validUntil === Infinity) answer = e.allowed;
      else {
        // Invariant: a packed time-dependent answer is unpacked in bucket d = ⌊validUntil / B⌋, and d is later
        // than every swept bucket, so validUntil ≥ d·B ≥ (swept + 1)·B = fastUntil: it holds whenever the fast path runs.
        const d = Math.floor(e.validUntil / BUCKET_MS);
        if (d > current) {
          answer = e.allowed;
          unpackAt = Math.min(unpackAt, d);
        }
      }
      if (answer !== undefined) v |= (answer ? 2 : 1) << (slot << 1);
    }
    // One bucket per subject, its earliest: the sweep re-packs the whole subject, which files the later ones.
    if (s.unpackAt !== unpackAt) {
      if (s.unpackAt !== Infinity) this.#buckets.get(s.unpackAt)?.delete(subjectId);
      if (unpackAt !== Infinity) {
        const set = this.#buckets.get(unpackAt);
        if (set === undefined) this.#buckets.set(unpackAt, new Set([subjectId]));
        else set.add(subjectId);
      }
      s.unpackAt = unpackAt;
    }
    if (v === 0) this.#packed.delete(subjectId);
    else this.#packed.set(subjectId, v);
  }

  /**
   * Unpacks the subjects of every bucket up to the current one and moves {@link #fastUntil} to that bucket's end.
   * Runs from a lookup at most once per bucket (a minute of the clock); O(due subjects + min(buckets skipped,
   * buckets held)).
   */
  #sweep(): void {
    const current = Math.floor(this.#now() / BUCKET_MS);
    const from = this.#sweptBucket;
    this.#sweptBucket = Math.max(from, current);
    const due: number[] = [];
    if (Number.isFinite(from) && current - from <= this.#buckets.size) {
      for (let d = from + 1; d <= current; d++) if (this.#buckets.has(d)) due.push(d);
    } else {
      for (const d of this.#buckets.keys()) if (d <= current) due.push(d);
    }
    for (const d of due) {
      const set = this.#buckets.get(d)!;
      this.#buckets.delete(d);
      for (const id of set) {
        const s = this.#subjects.get(id);
        if (s !== undefined && s.unpackAt === d) s.unpackAt = Infinity;
        this.#pack(id, s);
      }
    }
    this.#fastUntil = (this.#sweptBucket + 1) * BUCKET_MS;
  }

  /** Re-packs every subject (the purposes or their slots changed). O(subjects × purposes). */
  #repackAll(): void {
    this.#buckets.clear();
    for (const s of this.#subjects.values()) s.unpackAt = Infinity;
    this.#slots = new Map([...this.#purposes.keys()].slice(0, PACKED_SLOTS).map((k, i) => [k, i]));
    for (const [id, s] of this.#subjects) this.#pack(id, s);
  }

  /**
   * The instant of expiry decisions in lookups. With the system clock, a time cached by a {@link COARSE_CLOCK_MS}
   * timer: reading it costs a field load instead of a clock call, and a grant's expiry (months away) is decided
   * within 20 ms — or, inside one long synchronous block, as of when the block began.
   */
  #now(): number {
    return this.#coarseTimer === undefined ? this.#clock.now() : this.#coarseNow;
  }

  /**
   * {@link isAllowed}, or on a miss the server's answer (`GET /v1/consent/check`), which is then kept for
   * `httpCacheTtlMs` (or until a newer event replaces it). Fails with the server's error code (e.g.
   * `CST_ERR_CONSENT_UNKNOWN_PURPOSE`), or `CST_ERR_UNAVAILABLE` when the server cannot be reached.
   */
  async check(subjectId: string, purpose: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const local = this.isAllowed(subjectId, purpose);
    if (local !== undefined) return local;
    const query = new URLSearchParams({ subjectId, purpose });
    const r = (await this.#get(`/v1/consent/check?${query.toString()}`, options.signal)) as { allowed: boolean; status: string; eventId: string | null };
    if (typeof r?.allowed !== 'boolean') throw new CustodianError('CST_ERR_UNAVAILABLE', 'the check answer has no decision', { details: { status: 200 } });
    this.#cacheHttp(subjectId, purpose, r);
    return r.allowed;
  }

  /** Milliseconds since the bus was last known healthy and current (0 when it is); without a bus, since the last load. */
  staleness(): number {
    if (this.#sub === undefined) return this.#loadedAt === 0 ? Infinity : Date.now() - this.#loadedAt;
    return this.#sub.staleness();
  }

  /** The last bus event handled (applied, or ignored as old or out of scope), or undefined before the first. */
  get lastEvent(): LastEvent | undefined {
    return this.#lastEvent;
  }

  /** Subjects held in memory. */
  get size(): number {
    return this.#subjects.size;
  }

  /**
   * What the client holds in memory: subjects, subjects with a packed answer, and expiry buckets with the
   * subjects filed under them (each subject at most once). For metrics and capacity planning.
   */
  memoryStats(): { subjects: number; packed: number; buckets: number; filed: number } {
    let filed = 0;
    for (const set of this.#buckets.values()) filed += set.size;
    return { subjects: this.#subjects.size, packed: this.#packed.size, buckets: this.#buckets.size, filed };
  }

  /** Calls `listener` after each change of the memory (an applied event, a load); returns the function that stops it. */
  onChange(listener: (change: ConsentChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // -------------------------------------------------------------------------------------------------------
  // Loading

  async #run(sub: BusSubscription): Promise<void> {
    for await (const e of sub) {
      if (this.#buffer !== undefined) this.#buffer.push(e);
      else this.#apply(e);
    }
  }

  /**
   * Re-reads the purposes; a purpose that appeared since has its snapshot loaded (events of a purpose not yet
   * known were not kept, so the snapshot is what makes it complete).
   */
  async #refreshPurposes(): Promise<void> {
    const added = await this.#loadPurposes();
    if (added.length > 0) await this.#loadSnapshot(added);
  }

  /** Loads the purposes in scope; answers the keys that were not known before (all of them on the first load). */
  async #loadPurposes(): Promise<string[]> {
    const body = (await this.#get('/v1/purposes')) as { purposes?: Purpose[] };
    if (!Array.isArray(body.purposes)) throw new CustodianError('CST_ERR_UNAVAILABLE', 'the purposes answer has no list', { details: { status: 200 } });
    const changed = this.#purposes.size > 0;
    const before = this.#purposes;
    this.#purposes = new Map(body.purposes.filter((p) => this.#scope === undefined || this.#scope.has(p.key)).map((p) => [p.key, p]));
    this.#answers = new Map([...this.#purposes.values()].map((p) => [p.key, answerTable(p)]));
    // A purpose's legal basis changed: every precomputed answer is recomputed.
    if (changed) for (const [id, s] of this.#subjects) this.#recompute(id, s);
    this.#repackAll();
    return [...this.#purposes.keys()].filter((k) => !before.has(k));
  }

  /** Pages through the snapshot: of every purpose (or those in scope), or of `only`. */
  async #loadSnapshot(only?: readonly string[]): Promise<void> {
    const loadedAt = Date.now();
    const scopes = only ?? (this.#scope === undefined ? [undefined] : [...this.#scope]);
    for (const purpose of scopes) {
      let after: string | null | undefined;
      do {
        const q = new URLSearchParams({ limit: String(this.#pageSize) });
        if (purpose !== undefined) q.set('purpose', purpose);
        if (after != null) q.set('after', after);
        const page = (await this.#get(`/v1/consent/snapshot?${q.toString()}`)) as SnapshotBody;
        if (after == null) {
          this.#restrictionsKnown = page.restrictionsComplete;
          for (const r of page.restrictions) this.#restrict(r.subjectId, true, r.eventId, 'snapshot');
        }
        for (const row of page.states) {
          if (this.#tombstoned(row.subjectId, row.eventId)) continue;
          this.#setEntry(row.subjectId, row.purpose, row.eventId, row.decision, row.expiresAt === null ? null : Date.parse(row.expiresAt), 'snapshot');
        }
        after = page.next;
      } while (after !== null);
    }
    this.#loadedAt = loadedAt;
  }

  // -------------------------------------------------------------------------------------------------------
  // Applying events

  #apply(e: CustodianEvent): void {
    this.#lastEvent = { id: e.id, sequence: e.sequence, time: e.time, appliedAt: Date.now() };
    const subjectId = e.subject ?? (typeof e.data.subjectId === 'string' ? e.data.subjectId : undefined);
    if (subjectId === undefined) return;
    switch (e.type) {
      case 'consent.granted':
      case 'consent.denied':
      case 'consent.withdrawn': {
        const purpose = e.data.purposes[0];
        const id = e.data.consentEventId;
        if (purpose === undefined || typeof id !== 'string' || !this.#purposes.has(purpose) || this.#tombstoned(subjectId, id)) return;
        const expiresAt = typeof e.data.expiresAt === 'string' ? Date.parse(e.data.expiresAt) : null;
        this.#setEntry(subjectId, purpose, id, e.type.slice('consent.'.length) as StateRow['decision'], expiresAt, e.type, e.id);
        return;
      }
      case 'consent.expired': {
        // Announces the expiry of the grant we may hold (same consent event id): expire it now, even if this
        // client's clock is behind the server's.
        const purpose = e.data.purposes[0];
        const held = purpose === undefined ? undefined : this.#subjects.get(subjectId)?.get(purpose);
        if (held === undefined || held.eventId !== e.data.consentEventId || held.decision !== 'granted') return;
        this.#setEntry(subjectId, purpose!, held.eventId, 'granted', Math.min(held.expiresAt ?? Infinity, this.#clock.now()), e.type, e.id, true);
        return;
      }
      case 'subject.erased': {
        const gone = this.#subjects.get(subjectId);
        if (gone !== undefined) this.#buckets.get(gone.unpackAt)?.delete(subjectId);
        this.#subjects.delete(subjectId);
        this.#pack(subjectId, undefined);
        const now = Date.now();
        for (const [id, t] of this.#tombstones) if (now - t.at > TOMBSTONE_MS) this.#tombstones.delete(id);
        this.#tombstones.set(subjectId, { eventId: e.id, at: now });
        this.#emit({ cause: e.type, subjectId, purposes: [], eventId: e.id });
        return;
      }
      case 'subject.restricted':
      case 'subject.restriction_lifted': {
        const id = typeof e.data.restrictionEventId === 'string' ? e.data.restrictionEventId : e.id;
        this.#restrict(subjectId, e.type === 'subject.restricted', id, e.type, e.id);
        return;
      }
      default:
        // subject.objected comes with consent.withdrawn events for the same purposes; request.completed changes nothing here.
        return;
    }
  }

  /** Events and rows older than the subject's erasure must not bring it back. */
  #tombstoned(subjectId: string, eventId: string): boolean {
    const t = this.#tombstones.get(subjectId);
    return t !== undefined && eventId <= t.eventId;
  }

  #subject(subjectId: string, complete: boolean): SubjectState {
    let s = this.#subjects.get(subjectId);
    if (s === undefined) {
      s = new SubjectState(this.#restrictionsKnown ? false : undefined, complete);
      this.#subjects.set(subjectId, s);
    }
    return s;
  }

  /** Keeps `eventId` as the deciding event of (subject, purpose) if it is newer than the one held (or `force`). */
  #setEntry(subjectId: string, purpose: string, eventId: string, decision: StateRow['decision'], expiresAt: number | null, cause: string, busEventId?: string, force = false): void {
    const p = this.#purposes.get(purpose);
    if (p === undefined) return;
    const s = this.#subject(subjectId, true);
    const held = s.get(purpose);
    if (!force && held !== undefined && !held.http && held.eventId >= eventId) return;
    if (!force && held !== undefined && held.http && held.eventId > eventId) return;
    s.set(purpose, this.#entry(p, s, eventId, decision, expiresAt));
    this.#pack(subjectId, s);
    this.#emit({ cause, subjectId, purposes: [purpose], ...(busEventId === undefined ? {} : { eventId: busEventId }) });
  }

  #entry(p: Purpose, s: SubjectState, eventId: string, decision: StateRow['decision'], expiresAt: number | null): Entry {
    const t = this.#answers.get(p.key)!;
    const allowed = answerOf(t, decision, s.restricted);
    // statusAt: a grant is `expired` from its expiresAt on; other decisions do not expire.
    const after = expiresAt === null || decision !== 'granted' ? allowed : answerOf(t, 'expired', s.restricted);
    return { eventId, decision, expiresAt, allowed, validUntil: expiresAt ?? Infinity, after, http: false };
  }

  #restrict(subjectId: string, restricted: boolean, eventId: string, cause: string, busEventId?: string): void {
    if (this.#tombstoned(subjectId, eventId)) return;
    const s = this.#subject(subjectId, true);
    if (s.restrictionEventId !== '' && s.restrictionEventId >= eventId) return;
    s.restricted = restricted;
    s.restrictionEventId = eventId;
    this.#recompute(subjectId, s);
    this.#pack(subjectId, s);
    this.#emit({ cause, subjectId, purposes: [], ...(busEventId === undefined ? {} : { eventId: busEventId }) });
  }

  #recompute(_subjectId: string, s: SubjectState): void {
    for (const [key, e] of s) {
      const p = this.#purposes.get(key);
      if (p === undefined) s.delete(key);
      else if (!e.http && e.decision !== null) s.set(key, this.#entry(p, s, e.eventId, e.decision, e.expiresAt));
    }
  }

  #cacheHttp(subjectId: string, purpose: string, r: { allowed: boolean; status: string; eventId: string | null }): void {
    const p = this.#purposes.get(purpose);
    if (p === undefined) return;
    const s = this.#subject(subjectId, false);
    if (s.restricted === undefined && (r.status === 'restricted' || NOT_LEGAL_OBLIGATION(p))) s.restricted = r.status === 'restricted';
    const held = s.get(purpose);
    const eventId = r.eventId ?? '';
    // A bus-fed entry at least as new stays (while the bus is stale, `check` keeps asking the server).
    if (held !== undefined && !held.http && held.eventId >= eventId) return;
    s.set(purpose, { eventId, decision: null, expiresAt: null, allowed: r.allowed, validUntil: this.#clock.now() + this.#httpTtl, after: undefined, http: true });
    this.#pack(subjectId, s);
    this.#emit({ cause: 'http', subjectId, purposes: [purpose] });
  }

  #emit(change: ConsentChange): void {
    if (this.#listeners.size === 0) return;
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch {
        // A listener's fault must not stop the client applying events.
      }
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Staleness

  /**
   * Sets {@link #stale} from the bus health (or the last load, without a bus) and arms a timer for the instant
   * it would turn stale; the timer re-checks then, so a bus that keeps sending heartbeats keeps it fresh. The
   * flag is as precise as the event loop's timers: a lookup inside a long synchronous block sees the flag as it
   * was when the block began.
   */
  #checkFreshness(): void {
    if (this.#closed) return;
    let freshUntil: number;
    if (this.#sub === undefined) {
      freshUntil = this.#loadedAt + this.#maxStaleness;
    } else {
      const h = this.#sub.health();
      freshUntil = h.lastAliveAt + (h.connected ? Math.max(h.graceMs, this.#maxStaleness) : this.#maxStaleness);
    }
    const left = freshUntil - Date.now();
    this.#stale = left <= 0;
    if (this.#freshnessTimer !== undefined) clearTimeout(this.#freshnessTimer);
    this.#freshnessTimer = setTimeout(() => this.#checkFreshness(), Math.max(left, 100) + 1);
    this.#freshnessTimer.unref();
  }

  // -------------------------------------------------------------------------------------------------------
  // HTTP

  async #get(path: string, signal?: AbortSignal): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let res: Response;
    try {
      res = await this.#fetch(`${this.#base}${path}`, {
        headers: { authorization: `Bearer ${this.#apiKey}`, accept: 'application/json' },
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
    } catch (err) {
      signal?.throwIfAborted();
      const e = err as { name?: string; cause?: { code?: string } };
      throw new CustodianError('CST_ERR_UNAVAILABLE', 'the Custodian server did not answer; retry later', {
        details: { reason: e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name ?? 'network error') },
      });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CustodianError('CST_ERR_UNAVAILABLE', 'the server answered with something that is not JSON', { details: { status: res.status } });
    }
    if (res.status >= 400) {
      const err = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const code = typeof err?.code === 'string' && Object.hasOwn(ERROR_CODES, err.code) ? (err.code as ErrorCode) : res.status >= 500 ? 'CST_ERR_UNAVAILABLE' : 'CST_ERR_BAD_REQUEST';
      throw new CustodianError(code, typeof err?.message === 'string' ? err.message : 'the server refused the request', { details: { status: res.status } });
    }
    return json;
  }
}

interface SnapshotBody {
  readonly states: ReadonlyArray<{ subjectId: string; purpose: string; decision: StateRow['decision']; eventId: string; expiresAt: string | null }>;
  readonly restrictions: ReadonlyArray<{ subjectId: string; eventId: string }>;
  readonly restrictionsComplete: boolean;
  readonly next: string | null;
  readonly sequence: string;
}
