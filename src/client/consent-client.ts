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

/** A subject's restriction as stored in 2 bits: not known, not restricted, restricted. */
const R_UNKNOWN = 0;
const R_FREE = 1;
const R_RESTRICTED = 2;
const restrictionCode = (restricted: boolean | undefined): number => (restricted === undefined ? R_UNKNOWN : restricted ? R_RESTRICTED : R_FREE);
const restrictionOf = (code: number): boolean | undefined => (code === R_UNKNOWN ? undefined : code === R_RESTRICTED);

/** Decisions by their 2-bit code in a cell's meta word; {@link NO_DECISION} marks an answer learned over HTTP. */
const DECISIONS: readonly StateRow['decision'][] = ['granted', 'denied', 'withdrawn'];
const GRANTED = 0;
const NO_DECISION = 3;
/** Cell meta word: bits 0–1 decision, then these flags, then the purpose index from {@link PURPOSE_SHIFT}. */
const DECISION_BITS = 3;
/** Learned over HTTP (trusted for its TTL even while the bus is stale; no decision, the answer in HTTP_ALLOWED). */
const HTTP = 1 << 2;
const HTTP_ALLOWED = 1 << 3;
/**
 * Bits 4–5: the subject's restriction (R_*) when the answer was last computed. A decision keeps answering with it
 * until recomputed (a restriction event, a purposes reload), as the precomputed entries of earlier versions did;
 * only a restriction learned over HTTP updates the subject without recomputing its decisions.
 */
const BASIS_SHIFT = 4;
/** The deciding event id is not a canonical UUID: it is kept as a string beside the columns. */
const TEXT_ID = 1 << 6;
const PURPOSE_SHIFT = 7;
/** Subject flags: bits 0–1 restriction (R_*); COMPLETE: every in-scope purpose without a cell has no decision, not "unknown". */
const RESTRICTION_BITS = 3;
const COMPLETE = 1 << 2;

/** The words of the last id {@link parseId} accepted. */
const WORDS = new Uint32Array(4);

/**
 * Parses a canonical lower-case UUID (what Custodian's UUIDv7 event ids are) into {@link WORDS}, 8 hex digits per
 * word; false for any other string. Word order is the string's order: the digits are compared in the same places,
 * and '0'–'9' sort before 'a'–'f' in both.
 */
function parseId(id: string): boolean {
  if (id.length !== 36) return false;
  let w = 0;
  let digits = 0;
  for (let i = 0; i < 36; i++) {
    const ch = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (ch !== 45) return false;
      continue;
    }
    const nibble = ch >= 48 && ch <= 57 ? ch - 48 : ch >= 97 && ch <= 102 ? ch - 87 : -1;
    if (nibble < 0) return false;
    w = w * 16 + nibble;
    if (++digits % 8 === 0) {
      WORDS[digits / 8 - 1] = w;
      w = 0;
    }
  }
  return true;
}

const hex8 = (w: number): string => w.toString(16).padStart(8, '0');

/** A copy of `a` with room for `length` elements (fewer: cut). */
function resized<T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(a: T, length: number): T {
  const b = new (a.constructor as new (length: number) => T)(length);
  b.set(length >= a.length ? a : a.subarray(0, length));
  return b;
}

/** Room for `used` elements and a little more: columns grow by a quarter (amortised O(1), ≤ 25 % spare). */
const grown = (used: number): number => Math.max(64, used + (used >> 2));

/**
 * {@link ConsentMemory}'s "not filed" bucket. Buckets are minutes since 1970 in 32 unsigned bits, which reach past the
 * year 10000: every expiry an ISO-8601 time with a four-digit year can state is filed.
 */
const NOT_FILED = 0xffffffff;

/**
 * The decisions a {@link ConsentClient} holds, as columns of typed arrays rather than a Map and an entry object
 * per decision: about 25 bytes per subject and 32 per decision, outside the JavaScript heap's object graph (with
 * the client's two Map entries and the subject id, ~220 bytes for a subject with three decisions instead of ~930;
 * docs/propagation.md, "Memory").
 *
 * - A subject is a row: its id (the same string as the client's Map key), restriction and completeness flags, its
 *   first decision cell, and its place in an expiry bucket — a doubly linked list threaded through the rows, so
 *   filing and unfiling are O(1) without a Set per bucket.
 * - A decision is a cell, linked from its subject's row: a meta word (purpose index, decision, flags), the expiry
 *   (epoch ms; Infinity for none, or the HTTP cache deadline) and the deciding event id, a canonical UUID as four
 *   32-bit words (order-preserving, see {@link parseId}), any other id as a string in a side Map.
 * - Answers are not stored: the client derives them from the decision, the expiry and the purpose's answer table.
 *
 * Rows and cells freed by an erasure or a dropped purpose go to free lists and are reused; full columns grow by
 * a quarter, and {@link trim} gives back the spare room after a load. Invariant: a row is under at most one bucket,
 * and `unpackAt[row]` names it ({@link NOT_FILED}: none).
 */
class ConsentMemory {
  // Subjects (rows).
  readonly #keys: string[] = [];
  #subjectFlags = new Uint8Array(64);
  /** First cell of a row (-1: none); on a free row, the next free row. */
  #head = new Int32Array(64);
  #unpackAt = new Uint32Array(64);
  #prevFiled = new Int32Array(64);
  #nextFiled = new Int32Array(64);
  #rows = 0;
  #freeRow = -1;
  /** The restriction event a row's flag rests on, when there is one (most subjects have none). */
  readonly #restrictionIds = new Map<number, string>();
  /** Expiry bucket → first row filed under it. */
  readonly #buckets = new Map<number, number>();
  #filed = 0;

  // Decisions (cells).
  #meta = new Uint32Array(256);
  #expires = new Float64Array(256);
  #ids = new Uint32Array(256 * 4);
  /** Next cell of the same subject (-1: last); on a free cell, the next free cell. */
  #next = new Int32Array(256);
  #cells = 0;
  #freeCell = -1;
  readonly #textIds = new Map<number, string>();

  /** A new subject's row. */
  add(key: string, restriction: number, complete: boolean): number {
    let row = this.#freeRow;
    if (row !== -1) {
      this.#freeRow = this.#head[row]!;
      this.#keys[row] = key;
    } else {
      row = this.#rows++;
      if (row === this.#head.length) this.#resizeRows(grown(row));
      this.#keys.push(key);
    }
    this.#subjectFlags[row] = restriction | (complete ? COMPLETE : 0);
    this.#head[row] = -1;
    this.#unpackAt[row] = NOT_FILED;
    this.#prevFiled[row] = -1;
    this.#nextFiled[row] = -1;
    return row;
  }

  /** Frees a subject's row and cells (after unfiling it). */
  remove(row: number): void {
    this.file(row, NOT_FILED);
    for (let c = this.#head[row]!; c !== -1; ) {
      const next = this.#next[c]!;
      this.#freeCellAt(c);
      c = next;
    }
    this.#restrictionIds.delete(row);
    this.#keys[row] = '';
    this.#head[row] = this.#freeRow;
    this.#freeRow = row;
  }

  key(row: number): string {
    return this.#keys[row]!;
  }

  complete(row: number): boolean {
    return (this.#subjectFlags[row]! & COMPLETE) !== 0;
  }

  restriction(row: number): number {
    return this.#subjectFlags[row]! & RESTRICTION_BITS;
  }

  setRestriction(row: number, code: number): void {
    this.#subjectFlags[row] = (this.#subjectFlags[row]! & ~RESTRICTION_BITS) | code;
  }

  /** The restriction event the flag rests on; '' when none (known from a load without an event, or not known). */
  restrictionId(row: number): string {
    return this.#restrictionIds.get(row) ?? '';
  }

  setRestrictionId(row: number, eventId: string): void {
    if (eventId === '') this.#restrictionIds.delete(row);
    else this.#restrictionIds.set(row, eventId);
  }

  first(row: number): number {
    return this.#head[row]!;
  }

  next(cell: number): number {
    return this.#next[cell]!;
  }

  /** The cell of `purpose` (an index), or -1. O(decisions of the subject). */
  find(row: number, purpose: number): number {
    let c = this.#head[row]!;
    while (c !== -1 && this.#meta[c]! >>> PURPOSE_SHIFT !== purpose) c = this.#next[c]!;
    return c;
  }

  meta(cell: number): number {
    return this.#meta[cell]!;
  }

  expires(cell: number): number {
    return this.#expires[cell]!;
  }

  /** A new cell of `row`, to be filled by {@link set}. */
  addCell(row: number): number {
    let c = this.#freeCell;
    if (c !== -1) {
      this.#freeCell = this.#next[c]!;
    } else {
      c = this.#cells++;
      if (c === this.#next.length) this.#resizeCells(grown(c));
    }
    this.#meta[c] = 0;
    this.#next[c] = this.#head[row]!;
    this.#head[row] = c;
    return c;
  }

  /** Fills a cell: `meta` without {@link TEXT_ID} (set here when the id is not a canonical UUID). */
  set(cell: number, meta: number, expires: number, eventId: string): void {
    if ((this.#meta[cell]! & TEXT_ID) !== 0) this.#textIds.delete(cell);
    if (parseId(eventId)) {
      this.#ids.set(WORDS, cell * 4);
    } else {
      meta |= TEXT_ID;
      this.#textIds.set(cell, eventId);
    }
    this.#meta[cell] = meta;
    this.#expires[cell] = expires;
  }

  /** The cell's deciding event id. */
  eventId(cell: number): string {
    if ((this.#meta[cell]! & TEXT_ID) !== 0) return this.#textIds.get(cell)!;
    const i = cell * 4;
    const h = hex8(this.#ids[i]!) + hex8(this.#ids[i + 1]!) + hex8(this.#ids[i + 2]!) + hex8(this.#ids[i + 3]!);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** The sign of the cell's event id compared with `id`, in string order (as `<` and `>` on the strings). */
  compareId(cell: number, id: string): number {
    if ((this.#meta[cell]! & TEXT_ID) === 0 && parseId(id)) {
      for (let i = 0, j = cell * 4; i < 4; i++, j++) {
        const a = this.#ids[j]!;
        const b = WORDS[i]!;
        if (a !== b) return a < b ? -1 : 1;
      }
      return 0;
    }
    const held = this.eventId(cell);
    return held < id ? -1 : held > id ? 1 : 0;
  }

  /**
   * After the subject's restriction or the purposes changed: drops the cells of purposes `keep` refuses, and makes
   * the current restriction the basis of every decision's answer (answers learned over HTTP stay as they were).
   */
  recompute(row: number, keep: (purpose: number) => boolean): void {
    const basis = (this.#subjectFlags[row]! & RESTRICTION_BITS) << BASIS_SHIFT;
    let prev = -1;
    for (let c = this.#head[row]!; c !== -1; ) {
      const next = this.#next[c]!;
      const meta = this.#meta[c]!;
      if (!keep(meta >>> PURPOSE_SHIFT)) {
        if (prev === -1) this.#head[row] = next;
        else this.#next[prev] = next;
        this.#freeCellAt(c);
      } else {
        if ((meta & HTTP) === 0) this.#meta[c] = (meta & ~(RESTRICTION_BITS << BASIS_SHIFT)) | basis;
        prev = c;
      }
      c = next;
    }
  }

  /**
   * Gives back the columns' spare room beyond a little headroom: after a snapshot load, which is the bulk of what
   * the client holds, the columns are sized to it rather than to their last quarter-step of growth. O(rows + cells).
   */
  trim(): void {
    const rows = this.#rows + (this.#rows >> 5);
    if (rows + 64 < this.#head.length) this.#resizeRows(Math.max(64, rows));
    const cells = this.#cells + (this.#cells >> 5);
    if (cells + 256 < this.#next.length) this.#resizeCells(Math.max(256, cells));
  }

  #resizeRows(n: number): void {
    this.#subjectFlags = resized(this.#subjectFlags, n);
    this.#head = resized(this.#head, n);
    this.#unpackAt = resized(this.#unpackAt, n);
    this.#prevFiled = resized(this.#prevFiled, n);
    this.#nextFiled = resized(this.#nextFiled, n);
  }

  #resizeCells(n: number): void {
    this.#meta = resized(this.#meta, n);
    this.#expires = resized(this.#expires, n);
    this.#ids = resized(this.#ids, n * 4);
    this.#next = resized(this.#next, n);
  }

  #freeCellAt(cell: number): void {
    if ((this.#meta[cell]! & TEXT_ID) !== 0) this.#textIds.delete(cell);
    this.#meta[cell] = 0;
    this.#next[cell] = this.#freeCell;
    this.#freeCell = cell;
  }

  // Expiry buckets.

  /** The bucket `row` is filed under, or {@link NOT_FILED}. */
  unpackAt(row: number): number {
    return this.#unpackAt[row]!;
  }

  /** Files `row` under bucket `d` ({@link NOT_FILED}: under none), leaving the one it was under. O(1). */
  file(row: number, d: number): void {
    const was = this.#unpackAt[row]!;
    if (was === d) return;
    if (was !== NOT_FILED) {
      const prev = this.#prevFiled[row]!;
      const next = this.#nextFiled[row]!;
      if (prev !== -1) this.#nextFiled[prev] = next;
      else if (next !== -1) this.#buckets.set(was, next);
      else this.#buckets.delete(was);
      if (next !== -1) this.#prevFiled[next] = prev;
      this.#filed--;
    }
    this.#unpackAt[row] = d;
    this.#prevFiled[row] = -1;
    this.#nextFiled[row] = -1;
    if (d === NOT_FILED) return;
    const first = this.#buckets.get(d);
    if (first !== undefined) {
      this.#nextFiled[row] = first;
      this.#prevFiled[first] = row;
    }
    this.#buckets.set(d, row);
    this.#filed++;
  }

  /** Unfiles every row of bucket `d` and answers them. */
  takeBucket(d: number): number[] {
    const rows: number[] = [];
    let row = this.#buckets.get(d) ?? -1;
    this.#buckets.delete(d);
    while (row !== -1) {
      rows.push(row);
      const next = this.#nextFiled[row]!;
      this.#unpackAt[row] = NOT_FILED;
      this.#prevFiled[row] = -1;
      this.#nextFiled[row] = -1;
      this.#filed--;
      row = next;
    }
    return rows;
  }

  /** Unfiles every row. */
  unfileAll(): void {
    this.#buckets.clear();
    this.#unpackAt.fill(NOT_FILED);
    this.#prevFiled.fill(-1);
    this.#nextFiled.fill(-1);
    this.#filed = 0;
  }

  hasBucket(d: number): boolean {
    return this.#buckets.has(d);
  }

  buckets(): IterableIterator<number> {
    return this.#buckets.keys();
  }

  get bucketCount(): number {
    return this.#buckets.size;
  }

  /** Rows filed under a bucket. */
  get filed(): number {
    return this.#filed;
  }
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

  /** Subject id → its row in {@link #memory}. */
  readonly #subjects = new Map<string, number>();
  readonly #memory = new ConsentMemory();
  readonly #tombstones = new Map<string, { eventId: string; at: number }>();
  #purposes = new Map<string, Purpose>();
  /** Purpose key → its index in {@link #tables} and in the memory's cells (never reused for another key). */
  readonly #purposeIds = new Map<string, number>();
  /** Answers per purpose index and status (see {@link answerTable}); undefined for a purpose no longer loaded. */
  #tables: (AnswerTable | undefined)[] = [];
  /**
   * The packed index, derived from {@link #memory}: per subject one small integer with 2 bits per purpose slot
   * (0 = ask the full path, 1 = false, 2 = true). Time-dependent answers (grants with an expiry) are packed only
   * while their expiry falls in a later bucket than the current one, and are filed under their expiry's bucket,
   * which {@link #sweep} unpacks when the clock enters it; {@link #fastUntil} is the instant up to which every packed answer is known to hold.
   */
  readonly #packed = new Map<string, number>();
  /** Purpose → slot (the first {@link PACKED_SLOTS} purposes in scope). */
  #slots = new Map<string, number>();
  /** Purpose index → slot, or undefined/-1. */
  #slotOf: number[] = [];
  /** Per restriction code (R_*): the packed answers of a complete subject that has no decision at all. */
  #nonePacked: readonly number[] = [0, 0, 0];
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
   * past its TTL, or `true` while the bus is stale); then call {@link check}. O(1): one Map lookup in the common
   * case (the packed index); else two and a walk over the subject's few decisions.
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
    const row = this.#subjects.get(subjectId);
    if (row === undefined) return undefined;
    const m = this.#memory;
    const id = this.#purposeIds.get(purpose);
    const c = id === undefined ? -1 : m.find(row, id);
    if (c !== -1) {
      const meta = m.meta(c);
      const until = m.expires(c);
      // Only answers that can change with time read the clock (grants with an expiry, HTTP answers).
      const answer = this.#answer(meta, !(until === Infinity || this.#now() < until));
      return answer === true && this.#stale && (meta & HTTP) === 0 ? undefined : answer;
    }
    if (!m.complete(row)) return undefined;
    const t = id === undefined ? undefined : this.#tables[id];
    if (t === undefined) return undefined;
    const answer = answerOf(t, 'none', restrictionOf(m.restriction(row)));
    return answer === true && this.#stale ? undefined : answer;
  }

  /**
   * The answer of a cell (its meta word), before or after its expiry (`later`): an HTTP answer holds until its
   * deadline and then says "ask again"; a grant turns `expired`; other decisions do not change.
   */
  #answer(meta: number, later: boolean): boolean | undefined {
    if ((meta & HTTP) !== 0) return later ? undefined : (meta & HTTP_ALLOWED) !== 0;
    const decision = meta & DECISION_BITS;
    const status = later && decision === GRANTED ? 'expired' : DECISIONS[decision]!;
    return answerOf(this.#tables[meta >>> PURPOSE_SHIFT]!, status, restrictionOf((meta >>> BASIS_SHIFT) & RESTRICTION_BITS));
  }

  /**
   * Re-packs `subjectId` after any change of its state. A slot is packed when its answer cannot change before
   * the current bucket ends: answers without expiry, and grants that expire in a later bucket (filed under it;
   * {@link #sweep} unpacks them when the clock gets there). HTTP answers and answers that depend on an unknown
   * restriction stay unpacked. O(P) for P purposes in scope.
   */
  #pack(subjectId: string, row: number | undefined): void {
    if (row === undefined) {
      this.#packed.delete(subjectId);
      return;
    }
    const m = this.#memory;
    const current = Math.max(Math.floor(this.#now() / BUCKET_MS), this.#sweptBucket);
    let v = 0;
    /** The slots (2 bits each) that have a cell: the others read "no decision" when the subject is complete. */
    let covered = 0;
    let unpackAt = NOT_FILED;
    for (let c = m.first(row); c !== -1; c = m.next(c)) {
      const meta = m.meta(c);
      const slot = this.#slotOf[meta >>> PURPOSE_SHIFT] ?? -1;
      if (slot < 0) continue;
      const shift = slot << 1;
      covered |= 3 << shift;
      if ((meta & HTTP) !== 0) continue;
      const until = m.expires(c);
      let answer: boolean | undefined;
      if (until === Infinity) answer = this.#answer(meta, false);
      else {
        // Invariant: a packed time-dependent answer is unpacked in bucket d = ⌊until / B⌋, and d is later
        // than every swept bucket, so until ≥ d·B ≥ (swept + 1)·B = fastUntil: it holds whenever the fast path runs.
        // (A grant outside the bucket column's range, before 1970 or after the year 10000, is left to the full path.)
        const d = Math.floor(until / BUCKET_MS);
        if (d > current && d >= 0 && d < NOT_FILED) {
          answer = this.#answer(meta, false);
          unpackAt = Math.min(unpackAt, d);
        }
      }
      if (answer !== undefined) v |= (answer ? 2 : 1) << shift;
    }
    if (m.complete(row)) v |= this.#nonePacked[m.restriction(row)]! & ~covered;
    // One bucket per subject, its earliest: the sweep re-packs the whole subject, which files the later ones.
    if (m.unpackAt(row) !== unpackAt) m.file(row, unpackAt);
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
    const m = this.#memory;
    const due: number[] = [];
    if (Number.isFinite(from) && current - from <= m.bucketCount) {
      for (let d = from + 1; d <= current; d++) if (m.hasBucket(d)) due.push(d);
    } else {
      for (const d of m.buckets()) if (d <= current) due.push(d);
    }
    for (const d of due) for (const row of m.takeBucket(d)) this.#pack(m.key(row), row);
    this.#fastUntil = (this.#sweptBucket + 1) * BUCKET_MS;
  }

  /** Re-packs every subject (the purposes or their slots changed). O(subjects × purposes). */
  #repackAll(): void {
    this.#memory.unfileAll();
    this.#slots = new Map([...this.#purposes.keys()].slice(0, PACKED_SLOTS).map((k, i) => [k, i]));
    this.#slotOf = [];
    for (const [key, slot] of this.#slots) this.#slotOf[this.#purposeIds.get(key)!] = slot;
    this.#nonePacked = [R_UNKNOWN, R_FREE, R_RESTRICTED].map((code) => {
      let v = 0;
      for (const [key, slot] of this.#slots) {
        const answer = answerOf(this.#tables[this.#purposeIds.get(key)!]!, 'none', restrictionOf(code));
        if (answer !== undefined) v |= (answer ? 2 : 1) << (slot << 1);
      }
      return v;
    });
    for (const [id, row] of this.#subjects) this.#pack(id, row);
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
    return { subjects: this.#subjects.size, packed: this.#packed.size, buckets: this.#memory.bucketCount, filed: this.#memory.filed };
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
    this.#tables = [];
    for (const p of this.#purposes.values()) {
      let id = this.#purposeIds.get(p.key);
      if (id === undefined) this.#purposeIds.set(p.key, (id = this.#purposeIds.size));
      this.#tables[id] = answerTable(p);
    }
    // A purpose's legal basis changed, or a purpose is gone: every decision is recomputed.
    if (changed) for (const row of this.#subjects.values()) this.#recompute(row);
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
    this.#memory.trim();
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
        const id = e.data.consentEventId;
        const row = this.#subjects.get(subjectId);
        const purposeId = purpose === undefined ? undefined : this.#purposeIds.get(purpose);
        const held = row === undefined || purposeId === undefined ? -1 : this.#memory.find(row, purposeId);
        if (held === -1 || typeof id !== 'string' || this.#memory.compareId(held, id) !== 0 || (this.#memory.meta(held) & DECISION_BITS) !== GRANTED) return;
        this.#setEntry(subjectId, purpose!, id, 'granted', Math.min(this.#memory.expires(held), this.#clock.now()), e.type, e.id, true);
        return;
      }
      case 'subject.erased': {
        const gone = this.#subjects.get(subjectId);
        if (gone !== undefined) {
          this.#memory.remove(gone);
          this.#subjects.delete(subjectId);
        }
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

  /** The subject's row, created when new. */
  #subject(subjectId: string, complete: boolean): number {
    let row = this.#subjects.get(subjectId);
    if (row === undefined) {
      row = this.#memory.add(subjectId, restrictionCode(this.#restrictionsKnown ? false : undefined), complete);
      this.#subjects.set(subjectId, row);
    }
    return row;
  }

  /** Keeps `eventId` as the deciding event of (subject, purpose) if it is newer than the one held (or `force`). */
  #setEntry(subjectId: string, purpose: string, eventId: string, decision: StateRow['decision'], expiresAt: number | null, cause: string, busEventId?: string, force = false): void {
    const purposeId = this.#purposeIds.get(purpose);
    if (purposeId === undefined || this.#tables[purposeId] === undefined) return;
    const code = DECISIONS.indexOf(decision);
    if (code < 0) throw new CustodianError('CST_ERR_UNAVAILABLE', 'a consent state has an unknown decision', { details: { status: 200 } });
    const m = this.#memory;
    const row = this.#subject(subjectId, true);
    let c = m.find(row, purposeId);
    if (c !== -1 && !force) {
      const order = m.compareId(c, eventId);
      if ((m.meta(c) & HTTP) === 0 ? order >= 0 : order > 0) return;
    }
    if (c === -1) c = m.addCell(row);
    // statusAt: a grant is `expired` from its expiresAt on; other decisions do not expire.
    m.set(c, (purposeId << PURPOSE_SHIFT) | (m.restriction(row) << BASIS_SHIFT) | code, expiresAt ?? Infinity, eventId);
    this.#pack(subjectId, row);
    this.#emit({ cause, subjectId, purposes: [purpose], ...(busEventId === undefined ? {} : { eventId: busEventId }) });
  }

  #restrict(subjectId: string, restricted: boolean, eventId: string, cause: string, busEventId?: string): void {
    if (this.#tombstoned(subjectId, eventId)) return;
    const m = this.#memory;
    const row = this.#subject(subjectId, true);
    const held = m.restrictionId(row);
    if (held !== '' && held >= eventId) return;
    m.setRestriction(row, restricted ? R_RESTRICTED : R_FREE);
    m.setRestrictionId(row, eventId);
    this.#recompute(row);
    this.#pack(subjectId, row);
    this.#emit({ cause, subjectId, purposes: [], ...(busEventId === undefined ? {} : { eventId: busEventId }) });
  }

  #recompute(row: number): void {
    this.#memory.recompute(row, (purposeId) => this.#tables[purposeId] !== undefined);
  }

  #cacheHttp(subjectId: string, purpose: string, r: { allowed: boolean; status: string; eventId: string | null }): void {
    const p = this.#purposes.get(purpose);
    if (p === undefined) return;
    const m = this.#memory;
    const row = this.#subject(subjectId, false);
    if (m.restriction(row) === R_UNKNOWN && (r.status === 'restricted' || NOT_LEGAL_OBLIGATION(p))) m.setRestriction(row, restrictionCode(r.status === 'restricted'));
    const purposeId = this.#purposeIds.get(purpose)!;
    let c = m.find(row, purposeId);
    const eventId = r.eventId ?? '';
    // A bus-fed entry at least as new stays (while the bus is stale, `check` keeps asking the server).
    if (c !== -1 && (m.meta(c) & HTTP) === 0 && m.compareId(c, eventId) >= 0) return;
    if (c === -1) c = m.addCell(row);
    m.set(c, (purposeId << PURPOSE_SHIFT) | HTTP | (r.allowed ? HTTP_ALLOWED : 0) | NO_DECISION, this.#clock.now() + this.#httpTtl, eventId);
    this.#pack(subjectId, row);
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
    // setTimeout takes at most 2^31 - 1 ms (longer delays fire at once): re-check then at the latest.
    this.#freshnessTimer = setTimeout(() => this.#checkFreshness(), Math.min(Math.max(left, 100) + 1, 2 ** 31 - 1));
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
