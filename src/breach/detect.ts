import { toIso, type Clock } from '../core/index.js';
import type { Store } from '../store/index.js';
import type { IncidentService, IncidentView } from './incident-service.js';
import { breachDb } from './tables.js';

/**
 * Audit actions that hand personal data to the caller, with how many items each entry stands for: a number
 * in `details` (e.g. `crypto.decrypted` → `details.count`) or 1 per entry.
 */
export const PERSONAL_DATA_READS: Readonly<Record<string, string | null>> = {
  'consent.history.read': null,
  'crypto.decrypted': 'count',
  'request.package_downloaded': null,
  'incident.subjects_read': 'count',
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
}

/** One rule hit (ids and counts only). */
export interface DetectionHit {
  readonly rule: 'read_volume' | 'auth_failures';
  /** The API key actor (`key:<id>`) for read_volume; null for auth_failures. */
  readonly actor: string | null;
  readonly observed: number;
  readonly threshold: number;
  /** The suspected incident opened, or null when one for the same rule and actor is already open in the window. */
  readonly incidentId: string | null;
}

const DAY = 86_400_000;

/** The median of `values` (0 for none). O(n log n). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Detection rules over the audit log, meant to run every minute (serve or a worker): each hit opens a
 * *suspected* incident (source `detection:<rule>…`, audited, `incident.opened` event) unless one from the same
 * rule and actor was opened within the rule's window. Rules (docs/breach.md#detection-rules):
 * - `read_volume`: personal-data reads by one API key in the last 24 h above max(k × median of its own previous
 *   days, floor);
 * - `auth_failures`: repeated throttling of failed authentications (`auth.throttled`, raised by the HTTP server's
 *   per-address limiter) within a short window.
 * Access outside declared purposes is not detected: no audit entry records the purpose of an access yet.
 */
export class BreachDetector {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #incidents: IncidentService;
  readonly #o: Required<DetectionOptions>;

  constructor(deps: { store: Store; clock: Clock; incidents: IncidentService }, options: DetectionOptions = {}) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#incidents = deps.incidents;
    this.#o = { volumeFactor: options.volumeFactor ?? 5, volumeFloor: options.volumeFloor ?? 1000, baselineDays: options.baselineDays ?? 14, authWindowMs: options.authWindowMs ?? 10 * 60_000, authThrottles: options.authThrottles ?? 3 };
  }

  /** Runs every rule once. O(D) aggregate queries for D baseline days, plus one read per count-weighted entry. */
  async run(): Promise<DetectionHit[]> {
    return [...(await this.#readVolume()), ...(await this.#authFailures())];
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

  /** Items of personal data read per actor (API keys only) in (from, to]. */
  async #readsByActor(from: number, to: number): Promise<Map<string, number>> {
    const db = breachDb(this.#store.db);
    const out = new Map<string, number>();
    const plain = Object.entries(PERSONAL_DATA_READS).filter(([, f]) => f === null).map(([a]) => a);
    const weighted = Object.entries(PERSONAL_DATA_READS).filter(([, f]) => f !== null).map(([a]) => a);
    const rows = await db
      .selectFrom('audit_entries')
      .select(['actor'])
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('action', 'in', plain)
      .where('actor', 'like', 'key:%')
      .where('recorded_at', '>', toIso(from))
      .where('recorded_at', '<=', toIso(to))
      .groupBy('actor')
      .execute();
    for (const r of rows) out.set(r.actor, (out.get(r.actor) ?? 0) + Number(r.n));
    // Count-weighted entries: read in pages by id, summing details.count (JSON differs per engine; parsed here).
    let after: string | undefined;
    for (;;) {
      let q = db
        .selectFrom('audit_entries')
        .select(['id', 'actor', 'action', 'details'])
        .where('action', 'in', weighted)
        .where('actor', 'like', 'key:%')
        .where('recorded_at', '>', toIso(from))
        .where('recorded_at', '<=', toIso(to));
      if (after !== undefined) q = q.where('id', '>', after);
      const page = await q
        .orderBy('id')
        .limit(5000)
        .execute();
      for (const r of page) {
        const field = PERSONAL_DATA_READS[r.action]!;
        const n = Number((JSON.parse(r.details) as Record<string, unknown>)[field] ?? 1);
        out.set(r.actor, (out.get(r.actor) ?? 0) + (Number.isFinite(n) && n > 0 ? n : 1));
      }
      if (page.length < 5000) break;
      after = page[page.length - 1]!.id;
    }
    return out;
  }

  async #readVolume(): Promise<DetectionHit[]> {
    const now = this.#clock.now();
    const today = await this.#readsByActor(now - DAY, now);
    if (today.size === 0) return [];
    const history: Array<Map<string, number>> = [];
    for (let d = 1; d <= this.#o.baselineDays; d++) history.push(await this.#readsByActor(now - (d + 1) * DAY, now - d * DAY));
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

  /** Opens a suspected incident for `rule`/`actor` unless one was opened within `windowMs`. */
  async #open(rule: string, actor: string | null, windowMs: number, title: string, description: string): Promise<IncidentView | undefined> {
    const source = `detection:${rule}${actor === null ? '' : `:${actor}`}`.slice(0, 64);
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
 * const monitor = startBreachMonitoring({ incidents: c.incidents, detector: new BreachDetector({ store: c.store, clock: c.clock, incidents: c.incidents }) });
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
