import { sql } from 'kysely';
import { toIso, type Clock } from '../core/index.js';
import type { DataMap } from '../datamap/index.js';
import type { Store } from '../store/index.js';
import type { IncidentService, IncidentView } from './incident-service.js';
import { breachDb } from './tables.js';

/**
 * Audit actions that hand personal data to the caller, with how many items each entry stands for: a number
 * in `details` (e.g. `crypto.decrypted` → `details.count`) or 1 per entry. Each records in `details.purpose` the
 * purpose the caller stated (HTTP `Custodian-Purpose`), absent when none was stated.
 */
export const PERSONAL_DATA_READS: Readonly<Record<string, string | null>> = {
  'consent.history.read': null,
  'crypto.decrypted': 'count',
  'request.package_downloaded': null,
  'incident.subjects_read': 'count',
  'incident.narrative_read': 'count',
};

/** Settings of the detection rules. */
export interface DetectionOptions {
  /** read_volume: a key is flagged when its reads in the last 24 h exceed max(k × median of its previous days, floor). Default k = 5. */
  readonly volumeFactor?: number;
  /** read_volume: the floor (default 1,000 items a day), so that small keys are not flagged for small absolute numbers. */
  readonly volumeFloor?: number;
  /** read_volume: how many previous days make the baseline (default 14). */
  readonly baselineDays?: number;
  /** auth_failures: the window (default 10 minutes) … */
  readonly authWindowMs?: number;
  /** … and how many throttlings (`auth.throttled`) in it open a suspected incident (default 3). */
  readonly authThrottles?: number;
  /** purpose_mismatch: the window (default 24 h) … */
  readonly purposeWindowMs?: number;
  /**
   * … and how many reads outside a key's declared purposes in it open a suspected incident (default 1: each such
   * read may be processing for a purpose the data was not collected for, GDPR Art. 5(1)(b); the window keeps it
   * to one incident per key and day, however many reads).
   */
  readonly purposeMismatches?: number;
  /**
   * purpose_mismatch: also count a read under a purpose the key declares but the current data map does not
   * declare anywhere (its purposes, systems, collections, recipients), when a data map with purposes is stored
   * (default true: the data map is the record of processing, GDPR Art. 30).
   */
  readonly purposeInDataMap?: boolean;
}

/** The rules of {@link BreachDetector}. */
export type DetectionRule = 'read_volume' | 'auth_failures' | 'purpose_mismatch';

/** Why a read does not fit the declared purposes of the key that made it (see {@link judgePurpose}). */
export type PurposeMismatch = 'missing' | 'undeclared' | 'not_in_data_map';

/** One rule hit (ids and counts only). */
export interface DetectionHit {
  readonly rule: DetectionRule;
  /** The API key actor (`key:<id>`) for read_volume and purpose_mismatch; null for auth_failures. */
  readonly actor: string | null;
  /** Items (read_volume), throttlings (auth_failures) or mismatching read entries (purpose_mismatch). */
  readonly observed: number;
  readonly threshold: number;
  /** The suspected incident opened, or null when one for the same rule and actor is already open in the window. */
  readonly incidentId: string | null;
  /** purpose_mismatch: the mismatching reads by reason. */
  readonly mismatches?: Readonly<Record<PurposeMismatch, number>>;
}

/** What the detector needs of the API keys: the purposes each key is declared for (ApiKeyService). */
export interface DeclaredPurposesSource {
  /** Key id → declared purposes, for every key (revoked ones included) that declares any. */
  declaredPurposes(): Promise<ReadonlyMap<string, readonly string[]>>;
}

/**
 * Whether one personal-data read fits the purposes its API key is declared for, and if not why: no purpose
 * stated (`missing`), a purpose the key is not declared for (`undeclared`), or — when `dataMapPurposes` is given —
 * a declared purpose that the data map no longer declares anywhere (`not_in_data_map`). A key declared for no
 * purposes is not judged (null). O(1) with sets.
 *
 * @example
 * judgePurpose('marketing.advertising', new Set(['essential.service']), null); // 'undeclared'
 */
export function judgePurpose(stated: string | null, declared: ReadonlySet<string>, dataMapPurposes: ReadonlySet<string> | null): PurposeMismatch | null {
  if (declared.size === 0) return null;
  if (stated === null) return 'missing';
  if (!declared.has(stated)) return 'undeclared';
  if (dataMapPurposes !== null && !dataMapPurposes.has(stated)) return 'not_in_data_map';
  return null;
}

/** Every purpose key the data map declares anywhere: its purposes and those of its systems, recipients and collections. O(size of the map). */
export function dataMapPurposeKeys(map: DataMap): Set<string> {
  const keys = new Set(map.purposes.map((p) => p.key));
  for (const s of map.systems) {
    for (const p of s.purposes) keys.add(p);
    for (const r of s.recipients) for (const p of r.purposes) keys.add(p);
  }
  for (const c of map.collections()) for (const p of c.collection.purposes) keys.add(p);
  return keys;
}

const DAY = 86_400_000;

/** The smallest UUIDv7 of millisecond `ms` (ids of entries recorded from then on sort above it). */
function idFloor(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

/** A window for people: whole hours, otherwise minutes. */
function spanText(ms: number): string {
  return ms >= 3_600_000 && ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : `${Math.max(1, Math.round(ms / 60_000))} minutes`;
}

/** At most 10 of `items`, comma-separated, so that a description stays within an incident's 10,000 characters. */
function some(items: readonly string[]): string {
  return items.length <= 10 ? items.join(', ') : `${items.slice(0, 10).join(', ')} and ${items.length - 10} more`;
}

/** The median of `values` (0 for none). O(n log n). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** What {@link BreachDetector} works with. */
export interface BreachDetectorDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly incidents: IncidentService;
  /** The declared purposes of API keys (the `ApiKeyService`). */
  readonly apiKeys: DeclaredPurposesSource;
  /** The current data map, for purpose_mismatch's data map check; without it that check is skipped. */
  readonly dataMap?: () => Promise<{ map: DataMap } | undefined>;
}

/**
 * Detection rules over the audit log, meant to run every minute (serve or a worker): each hit opens a
 * *suspected* incident (source `detection:<rule>…`, audited, `incident.opened` event) unless one from the same
 * rule and actor was opened within the rule's window. Rules (docs/breach.md#detection-rules):
 * - `read_volume`: personal-data reads by one API key in the last 24 h above max(k × median of its own previous
 *   days, floor);
 * - `auth_failures`: repeated throttling of failed authentications (`auth.throttled`, raised by the HTTP server's
 *   per-address limiter) within a short window;
 * - `purpose_mismatch`: personal-data reads by an API key declared for purposes, with no stated purpose or one
 *   outside them (see {@link judgePurpose}), at least N in the window. Keys declared for no purposes are not judged.
 *
 * @example
 * const detector = new BreachDetector({ store: c.store, clock: c.clock, incidents: c.incidents, apiKeys: c.apiKeys, dataMap: () => c.datamap.currentView() });
 * const hits = await detector.run();
 */
export class BreachDetector {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #incidents: IncidentService;
  readonly #apiKeys: DeclaredPurposesSource;
  readonly #dataMap: (() => Promise<{ map: DataMap } | undefined>) | undefined;
  readonly #o: Required<DetectionOptions>;

  constructor(deps: BreachDetectorDeps, options: DetectionOptions = {}) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#incidents = deps.incidents;
    this.#apiKeys = deps.apiKeys;
    this.#dataMap = deps.dataMap;
    this.#o = Object.freeze({
      volumeFactor: options.volumeFactor ?? 5,
      volumeFloor: options.volumeFloor ?? 1000,
      baselineDays: options.baselineDays ?? 14,
      authWindowMs: options.authWindowMs ?? 10 * 60_000,
      authThrottles: options.authThrottles ?? 3,
      purposeWindowMs: options.purposeWindowMs ?? DAY,
      purposeMismatches: Math.max(1, options.purposeMismatches ?? 1),
      purposeInDataMap: options.purposeInDataMap ?? true,
    });
  }

  /**
   * Runs every rule once. read_volume: two aggregate queries and the count-weighted entries in pages of 5,000,
   * over the R personal-data reads of the last D + 1 days for D baseline days (O(R), not the whole log);
   * purpose_mismatch: one query for the K keys declared for purposes, then the R reads of
   * those keys in its window in pages of 5,000 (O(R) time, O(K × P) memory for P distinct stated purposes).
   */
  async run(): Promise<DetectionHit[]> {
    return [...(await this.#readVolume()), ...(await this.#authFailures()), ...(await this.#purposeMismatch())];
  }

  /**
   * Runs {@link run} every `everyMs` (default one minute) until stopped; a failed run is reported to `onError`
   * and retried at the next tick. The lead wires this (and {@link IncidentService.sweep}) into serve/worker.
   */
  start(options: { everyMs?: number; onError?: (err: unknown) => void } = {}): { stop: () => Promise<void> } {
    let running: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      running = this.run().catch((err: unknown) => options.onError?.(err));
    }, options.everyMs ?? 60_000);
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await running;
      },
    };
  }

  /**
   * Items of personal data read per actor (API keys only) in each of `days` consecutive 24-hour periods ending at
   * `to`: element `b` covers (to − (b + 1) days, to − b days]. Entry ids are UUIDv7 of the recording time, so
   * starting above the span's first id (less a second, as in purpose_mismatch) lets the (action, id) index serve
   * the entries recorded since the span began instead of the whole history; `recorded_at` alone decides what
   * counts. One aggregate query for the actions that count one item per entry, then the count-weighted entries in
   * pages of 5,000: O(R) entries read for the R personal-data reads recorded since `to − days`, O(A × days)
   * memory for A actors.
   */
  async #readsByActor(to: number, days: number): Promise<Array<Map<string, number>>> {
    if (!(days >= 1)) return [];
    const out = Array.from({ length: days }, () => new Map<string, number>());
    const from = to - days * DAY;
    const floor = idFloor(from - 1000);
    // The period of an entry, compared in SQL exactly as the span's bounds are (text in SQLite, timestamptz in PostgreSQL).
    const whens = Array.from({ length: days - 1 }, (_, b) => sql`when recorded_at > ${toIso(to - (b + 1) * DAY)} then ${sql.lit(b)}`);
    const period = whens.length === 0 ? sql<number>`${sql.lit(0)}` : sql<number>`case ${sql.join(whens, sql` `)} else ${sql.lit(days - 1)} end`;
    const add = (p: number | string, actor: string, n: number) => {
      const m = out[Number(p)]!;
      m.set(actor, (m.get(actor) ?? 0) + n);
    };
    const db = breachDb(this.#store.db);
    const span = (actions: readonly string[]) =>
      db
        .selectFrom('audit_entries')
        .where('action', 'in', actions)
        .where('actor', 'like', 'key:%')
        .where('id', '>', floor)
        .where('recorded_at', '>', toIso(from))
        .where('recorded_at', '<=', toIso(to));
    const plain = Object.entries(PERSONAL_DATA_READS).filter(([, f]) => f === null).map(([a]) => a);
    const weighted = Object.entries(PERSONAL_DATA_READS).filter(([, f]) => f !== null).map(([a]) => a);
    // Grouped in a derived table: PostgreSQL would not match a parameterised CASE in GROUP BY to the one selected.
    const rows = await db
      .selectFrom(span(plain).select(['actor', period.as('period')]).as('r'))
      .select(['r.actor', 'r.period'])
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .groupBy(['r.actor', 'r.period'])
      .execute();
    for (const r of rows) add(r.period, r.actor, Number(r.n));
    // Count-weighted entries: read in pages by id, summing details.count (JSON differs per engine; parsed here).
    let after = floor;
    for (;;) {
      const page = await span(weighted)
        .select(['id', 'actor', 'action', 'details', period.as('period')])
        .where('id', '>', after)
        .orderBy('id')
        .limit(5000)
        .execute();
      for (const r of page) {
        const field = PERSONAL_DATA_READS[r.action]!;
        const n = Number((JSON.parse(r.details) as Record<string, unknown>)[field] ?? 1);
        add(r.period, r.actor, Number.isFinite(n) && n > 0 ? n : 1);
      }
      if (page.length < 5000) break;
      after = page[page.length - 1]!.id;
    }
    return out;
  }

  /**
   * read_volume: each key's reads in the last 24 h against its own previous `baselineDays` days. Bounded by the
   * window, not the log: two passes over the personal-data read entries recorded in the last D + 1 days (the
   * second only when something was read in the last 24 h), O(R) entries for R such reads and O(A × D) memory for
   * A keys, whatever the length of the history. Invariant: a key's count for a period is exactly the items of its
   * entries whose `recorded_at` falls in that period; older entries never count.
   */
  async #readVolume(): Promise<DetectionHit[]> {
    const now = this.#clock.now();
    const today = (await this.#readsByActor(now, 1))[0]!;
    if (today.size === 0) return [];
    const history = await this.#readsByActor(now - DAY, Math.floor(this.#o.baselineDays));
    const hits: DetectionHit[] = [];
    for (const [actor, observed] of today) {
      const threshold = Math.max(this.#o.volumeFactor * median(history.map((h) => h.get(actor) ?? 0)), this.#o.volumeFloor);
      if (observed <= threshold) continue;
      const opened = await this.#open('read_volume', actor, DAY, `Unusual volume of personal data read by API key ${actor.slice(4)}`, `${observed} items of personal data read in 24 h; threshold ${threshold} (max(${this.#o.volumeFactor} × median of the previous ${this.#o.baselineDays} days, ${this.#o.volumeFloor})).`);
      hits.push({ rule: 'read_volume', actor, observed, threshold, incidentId: opened?.id ?? null });
    }
    return hits;
  }

  async #authFailures(): Promise<DetectionHit[]> {
    const now = this.#clock.now();
    const row = await breachDb(this.#store.db)
      .selectFrom('audit_entries')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('action', '=', 'auth.throttled')
      .where('recorded_at', '>', toIso(now - this.#o.authWindowMs))
      .executeTakeFirst();
    const observed = Number(row?.n ?? 0);
    if (observed < this.#o.authThrottles) return [];
    const opened = await this.#open('auth_failures', null, this.#o.authWindowMs, 'Bursts of failed authentications (possible credential stuffing)', `${observed} client addresses were throttled for failed authentications within ${Math.round(this.#o.authWindowMs / 60_000)} minutes.`);
    return [{ rule: 'auth_failures', actor: null, observed, threshold: this.#o.authThrottles, incidentId: opened?.id ?? null }];
  }

  /**
   * purpose_mismatch: personal-data reads in the window by keys declared for purposes, counted per key and stated
   * purpose (absent = none stated), then judged per (key, purpose) with {@link judgePurpose}. Invariant: a key's
   * `observed` is exactly the number of its read entries in the window that {@link judgePurpose} does not accept;
   * no read counts towards two incidents (a new one opens only after the window of the last one has passed, and
   * the reads counted then are all younger than that incident).
   */
  async #purposeMismatch(): Promise<DetectionHit[]> {
    const declared = await this.#apiKeys.declaredPurposes();
    if (declared.size === 0) return [];
    const now = this.#clock.now();
    const from = now - this.#o.purposeWindowMs;
    const actors = [...declared.keys()].map((id) => `key:${id}`);
    const db = breachDb(this.#store.db);
    // actor → stated purpose ('' = none stated) → read entries.
    const counts = new Map<string, Map<string, number>>();
    for (let i = 0; i < actors.length; i += 500) {
      const chunk = actors.slice(i, i + 500);
      // Entry ids are UUIDv7 of the recording time: starting above the window's first id (less a second for ids
      // borrowed from the next millisecond) lets the (action, id) index serve the window instead of all history.
      let after = idFloor(from - 1000);
      for (;;) {
        const page = await db
          .selectFrom('audit_entries')
          .select(['id', 'actor', 'details'])
          .where('action', 'in', Object.keys(PERSONAL_DATA_READS))
          .where('actor', 'in', chunk)
          .where('id', '>', after)
          .where('recorded_at', '>', toIso(from))
          .where('recorded_at', '<=', toIso(now))
          .orderBy('id')
          .limit(5000)
          .execute();
        for (const r of page) {
          const stated = (JSON.parse(r.details) as { purpose?: unknown }).purpose;
          const purpose = typeof stated === 'string' ? stated : '';
          const byPurpose = counts.get(r.actor) ?? new Map<string, number>();
          byPurpose.set(purpose, (byPurpose.get(purpose) ?? 0) + 1);
          counts.set(r.actor, byPurpose);
        }
        if (page.length < 5000) break;
        after = page[page.length - 1]!.id;
      }
    }
    if (counts.size === 0) return [];
    let dataMapPurposes: Set<string> | null = null;
    if (this.#o.purposeInDataMap && this.#dataMap !== undefined) {
      const current = await this.#dataMap();
      const keys = current === undefined ? undefined : dataMapPurposeKeys(current.map);
      if (keys !== undefined && keys.size > 0) dataMapPurposes = keys;
    }
    const hits: DetectionHit[] = [];
    for (const [actor, byPurpose] of counts) {
      const purposes = declared.get(actor.slice(4)) ?? [];
      const declaredSet = new Set(purposes);
      const mismatches: Record<PurposeMismatch, number> = { missing: 0, undeclared: 0, not_in_data_map: 0 };
      const outside: string[] = [];
      for (const [stated, n] of byPurpose) {
        const why = judgePurpose(stated === '' ? null : stated, declaredSet, dataMapPurposes);
        if (why === null) continue;
        mismatches[why] += n;
        if (stated !== '') outside.push(`${stated} (${n})`);
      }
      const observed = mismatches.missing + mismatches.undeclared + mismatches.not_in_data_map;
      if (observed < this.#o.purposeMismatches) continue;
      const opened = await this.#open(
        'purpose_mismatch',
        actor,
        this.#o.purposeWindowMs,
        `Personal data read outside the declared purposes of API key ${actor.slice(4)}`,
        `${observed} reads of personal data within ${spanText(this.#o.purposeWindowMs)} did not fit the purposes the key is declared for (${some(purposes)}): ` +
          `${mismatches.missing} stated no purpose, ${mismatches.undeclared} stated a purpose the key is not declared for, ${mismatches.not_in_data_map} stated one the data map does not declare` +
          `${outside.length > 0 ? `; purposes stated: ${some(outside.sort())}` : ''}. Threshold ${this.#o.purposeMismatches} (GDPR Art. 5(1)(b), purpose limitation).`,
      );
      hits.push({ rule: 'purpose_mismatch', actor, observed, threshold: this.#o.purposeMismatches, incidentId: opened?.id ?? null, mismatches });
    }
    return hits;
  }

  /** Opens a suspected incident for `rule`/`actor` unless one was opened within `windowMs`. */
  async #open(rule: DetectionRule, actor: string | null, windowMs: number, title: string, description: string): Promise<IncidentView | undefined> {
    // incidents.source holds 128 characters (migration 0012): `detection:purpose_mismatch:key:<uuid>` fits whole.
    const source = `detection:${rule}${actor === null ? '' : `:${actor}`}`.slice(0, 128);
    const now = this.#clock.now();
    const recent = await breachDb(this.#store.db).selectFrom('incidents').select('id').where('source', '=', source).where('created_at', '>=', toIso(now - windowMs)).executeTakeFirst();
    if (recent !== undefined) return undefined;
    return this.#incidents.create({ title, description, status: 'suspected', detectedAt: toIso(now), jurisdictions: [] }, { actor: `system:detect`, source });
  }
}

/**
 * Runs the deadline sweep ({@link IncidentService.sweep}) and the detection rules every `everyMs` (default one
 * minute) until stopped: what `serve` and `worker` start. Failures go to `onError` (ids and codes only) and are
 * retried at the next tick; a tick is skipped while the previous one still runs.
 *
 * @example
 * const monitor = startBreachMonitoring({ incidents: c.incidents, detector: new BreachDetector({ store: c.store, clock: c.clock, incidents: c.incidents, apiKeys: c.apiKeys }) });
 * // … on shutdown:
 * await monitor.stop();
 */
export function startBreachMonitoring(deps: { incidents: IncidentService; detector?: BreachDetector }, options: { everyMs?: number; onError?: (err: unknown) => void } = {}): { stop: () => Promise<void> } {
  let running: Promise<void> | undefined;
  const tick = () => {
    if (running !== undefined) return;
    running = (async () => {
      try {
        await deps.incidents.sweep();
        await deps.detector?.run();
      } catch (err) {
        options.onError?.(err);
      } finally {
        running = undefined;
      }
    })();
  };
  const timer = setInterval(tick, options.everyMs ?? 60_000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
