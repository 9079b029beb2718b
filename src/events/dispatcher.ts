import { hostname } from 'node:os';
import { backoffDelay, storedToIso, toIso, uuidv7, type AuditSink, type BackoffOptions, type Clock, type CustodianEvent } from '../core/index.js';
import { sql, type ExpressionBuilder } from 'kysely';
import type { ChangeWatch, Database, Executor, Store } from '../store/index.js';
import { toCloudEvent, type Outbox } from './outbox.js';
import { matchesFilter, type EventSubscriptions } from './subscriptions.js';
import { openTarget, type DeliveryOutcome, type DeliveryTarget, type TargetConfig } from './targets/index.js';

/** Settings of an {@link EventDispatcher}; the defaults suit production, tests shorten them. */
export interface EventDispatcherOptions {
  /** Longest pause between two looks at the store when nothing wakes the dispatcher. Default 1000 ms. */
  readonly pollMs?: number;
  /** How long a claim holds a delivery; must exceed a target's timeout. A killed dispatcher's claims expire after it. Default 60 s. */
  readonly leaseMs?: number;
  /**
   * Deliveries claimed per round; default `concurrency`, so a round is one wave of requests. The lease must cover
   * a round: ⌈batchSize / concurrency⌉ × the targets' timeout < `leaseMs`.
   */
  readonly batchSize?: number;
  /**
   * Deliveries to broker subscriptions (NATS, Redis Streams) claimed per round: one `deliver` call publishes them
   * in order, so a round can carry many more than a wave of webhooks. Default 256.
   */
  readonly brokerBatchSize?: number;
  /** Deliveries in flight at once (different subjects; webhooks one request each). Default 8. */
  readonly concurrency?: number;
  /** Retry backoff: full jitter over `baseMs · 2^(attempt−1)` capped at `capMs`. Default 1 s … 1 h. */
  readonly backoff?: BackoffOptions;
  /** How often `consent.expired` notices are produced (when an `announceExpiries` dependency is given). Default 60 s. */
  readonly expiryIntervalMs?: number;
  /** Opens a subscription's target; default {@link openTarget}. */
  readonly openTarget?: (config: TargetConfig) => DeliveryTarget;
  /** Told about faults of a round (the dispatcher carries on); receives ids and codes, never payloads. */
  readonly onError?: (err: unknown) => void;
  /** Name of this dispatcher in claims (host:pid by default). */
  readonly worker?: string;
  /** Randomness of the jitter (tests). */
  readonly random?: () => number;
}

/** Dependencies of an {@link EventDispatcher}. */
export interface EventDispatcherDeps {
  readonly store: Store;
  readonly outbox: Outbox;
  readonly subscriptions: EventSubscriptions;
  readonly clock: Clock;
  readonly audit?: AuditSink;
  /** Produces `consent.expired` events for grants past their expiry (the ledger's `announceExpiries`). */
  readonly announceExpiries?: () => Promise<number>;
}

/** What one round did. */
export interface DispatchReport {
  /** Delivery rows created from new outbox events. */
  readonly fannedOut: number;
  readonly delivered: number;
  /** Failed attempts that will be retried. */
  readonly retried: number;
  /** Deliveries given up (dead letters). */
  readonly dead: number;
}

/** Where a replay starts: an outbox position (inclusive) or an instant (inclusive). */
export type ReplayFrom = { readonly fromSeq: number } | { readonly fromTime: string };

interface Claimed {
  readonly subscriptionId: string;
  readonly seq: number;
  readonly eventId: string;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly kind: string;
}

interface Result {
  readonly claim: Claimed;
  /** undefined: not attempted (an earlier event of the same target call failed, or the dispatcher stopped). */
  readonly outcome: DeliveryOutcome | undefined;
}

const FANOUT_PAGE = 1000;
const LAST_ERROR_MAX = 500;
/** Shortest pause of an idle loop, so that deliveries due now but held by other dispatchers are not spun on. */
const MIN_PAUSE_MS = 10;

/**
 * Delivers outbox events to subscriptions, at least once and in order per subject.
 *
 * - **Fan-out**: for each live subscription, outbox events after its `materialised_through` position that pass
 *   its filter become `pending` delivery rows, and the position advances, in one transaction under a lock of
 *   the subscription — so two dispatchers never fan out the same range twice, and positions (which follow commit
 *   order, see {@link Outbox}) are never skipped.
 * - **Claiming**: due pending deliveries are claimed with a lease (`claimed_until`), on PostgreSQL with
 *   `FOR UPDATE SKIP LOCKED`, so any number of dispatchers (serve replicas, workers) share the work and a killed
 *   dispatcher's claims are taken over once its lease expires. A delivery is claimable only while no earlier
 *   (lower position) delivery of the same subject to the same subscription is pending: the order per subject
 *   holds across retries and processes. Dead letters do not block later events (a subject's stream would
 *   otherwise stop for good); events without a subject are not ordered.
 * - **Delivering**: through the subscription's target, with bounded concurrency across subjects; every attempt
 *   is logged. Success marks the row delivered; a retryable failure reschedules it with exponential backoff and
 *   full jitter; a non-retryable one, or the last allowed attempt, dead-letters it (replay brings it back). A
 *   410 Gone from a webhook also disables the subscription.
 *
 * It wakes at once when this process commits events ({@link Outbox.onCommitted}) and when another process does
 * (store change topic `events`), with a fallback poll. Not started by `createCustodian`: `serve` and `worker` do.
 * Each round costs O(subscriptions) small queries for fan-out plus O(1) queries per batch of deliveries.
 */
export class EventDispatcher {
  readonly #d: EventDispatcherDeps;
  readonly #pollMs: number;
  readonly #leaseMs: number;
  readonly #batchSize: number;
  readonly #brokerBatchSize: number;
  #analyzedAt = -Infinity;
  readonly #concurrency: number;
  readonly #backoff: BackoffOptions;
  readonly #expiryIntervalMs: number;
  readonly #open: (config: TargetConfig) => DeliveryTarget;
  #onError: (err: unknown) => void;
  readonly #random: () => number;
  readonly worker: string;
  readonly #targets = new Map<string, Promise<DeliveryTarget>>();
  #running: Promise<void> | undefined;
  #abort: AbortController | undefined;
  #wakeUp: (() => void) | undefined;
  #woken = false;
  #unsubscribe: (() => void) | undefined;
  #watch: ChangeWatch | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(deps: EventDispatcherDeps, options: EventDispatcherOptions = {}) {
    this.#d = deps;
    this.#pollMs = options.pollMs ?? 1000;
    this.#leaseMs = options.leaseMs ?? 60_000;
    this.#concurrency = options.concurrency ?? 8;
    this.#batchSize = options.batchSize ?? this.#concurrency;
    this.#brokerBatchSize = options.brokerBatchSize ?? Math.max(256, this.#batchSize);
    this.#backoff = Object.freeze({ ...(options.backoff ?? { baseMs: 1000, capMs: 3_600_000 }) });
    this.#expiryIntervalMs = options.expiryIntervalMs ?? 60_000;
    this.#open = options.openTarget ?? openTarget;
    this.#onError = options.onError ?? (() => undefined);
    this.#random = options.random ?? Math.random;
    this.worker = (options.worker ?? `${hostname()}:${process.pid}`).slice(0, 64);
  }

  /** Whether the loop is running. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Starts delivering in the background (idempotent); `onError` replaces the constructor's (e.g. the server's logger). */
  async start(options: { onError?: (err: unknown) => void } = {}): Promise<void> {
    if (this.#running !== undefined) return;
    if (options.onError !== undefined) this.#onError = options.onError;
    const abort = new AbortController();
    this.#abort = abort;
    this.#unsubscribe = this.#d.outbox.onCommitted(() => this.wake());
    try {
      this.#watch = await this.#d.store.watchChanges((topic) => {
        if (topic === 'events' || topic === null) this.wake();
      });
    } catch (err) {
      // The fallback poll still delivers; only the wake-up from other processes is lost.
      this.#onError(err);
    }
    if (this.#d.announceExpiries !== undefined) {
      const announce = this.#d.announceExpiries;
      this.#expiryTimer = setInterval(() => void announce().catch((err: unknown) => this.#onError(err)), this.#expiryIntervalMs);
      this.#expiryTimer.unref();
    }
    this.#running = this.#loop(abort.signal);
  }

  /** Stops the loop: deliveries in flight are aborted and their claims released (nothing is counted for them). */
  async stop(): Promise<void> {
    const running = this.#running;
    if (running === undefined) return;
    this.#abort?.abort(new Error('dispatcher stopping'));
    this.wake();
    if (this.#expiryTimer !== undefined) clearInterval(this.#expiryTimer);
    this.#expiryTimer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await running;
    this.#running = undefined;
    await this.#watch?.stop().catch(() => undefined);
    this.#watch = undefined;
    const targets = [...this.#targets.values()];
    this.#targets.clear();
    await Promise.all(targets.map((t) => t.then((x) => x.close()).catch(() => undefined)));
  }

  /** Asks the loop to look at the store now. */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /** One round, without the loop: fan out, then claim and deliver one batch. For tests and `--once` runs. */
  async runOnce(signal?: AbortSignal): Promise<DispatchReport> {
    const fannedOut = await this.fanOut();
    const delivered = await this.#dispatch(signal);
    return { fannedOut, ...delivered };
  }

  /** Turns outbox events not yet fanned out into pending deliveries, for every live subscription; returns how many. */
  async fanOut(): Promise<number> {
    const subs = await this.#d.store.db.selectFrom('event_subscriptions').select(['id', 'materialised_through']).where('deleted_at', 'is', null).where('disabled_at', 'is', null).execute();
    if (subs.length === 0) return 0;
    const head = await this.#d.outbox.head();
    let total = 0;
    for (const s of subs) if (Number(s.materialised_through) < head) total += await this.#fanOutOne(s.id);
    // PostgreSQL plans the per-subject ordering check from table statistics; on a table that just grew from
    // nothing, stale ones make it scan every pending delivery per candidate (seconds per round at a few thousand).
    // Refresh them after a large fan-out, at most once a minute (autovacuum does it too, but later).
    if (this.#d.store.kind === 'postgres' && total >= 500 && performance.now() - this.#analyzedAt > 60_000) {
      this.#analyzedAt = performance.now();
      await sql`analyze event_deliveries`.execute(this.#d.store.db);
    }
    return total;
  }

  async #fanOutOne(id: string): Promise<number> {
    let total = 0;
    for (;;) {
      const page = await this.#d.store.transaction(async (trx) => {
        await this.#d.store.lock(trx, `custodian:event_fanout:${id}`);
        const sub = await trx.selectFrom('event_subscriptions').select(['materialised_through', 'filter_types', 'filter_purposes', 'deleted_at']).where('id', '=', id).executeTakeFirst();
        if (sub === undefined || sub.deleted_at !== null) return { read: 0, created: 0 };
        const filter = { types: JSON.parse(sub.filter_types) as string[], purposes: JSON.parse(sub.filter_purposes) as string[] };
        const events = await this.#d.outbox.read(Number(sub.materialised_through), FANOUT_PAGE, trx);
        if (events.length === 0) return { read: 0, created: 0 };
        const rows = events.filter((e) => matchesFilter({ type: e.type, purposes: e.data.purposes }, filter));
        await this.#insertPending(trx, id, rows, false);
        await trx.updateTable('event_subscriptions').set({ materialised_through: Number(events.at(-1)!.sequence) }).where('id', '=', id).execute();
        return { read: events.length, created: rows.length };
      });
      total += page.created;
      if (page.read < FANOUT_PAGE) return total;
    }
  }

  /** Inserts pending deliveries; `reset` makes existing ones pending again with fresh attempts (replay). */
  async #insertPending(trx: Executor, subscriptionId: string, events: readonly CustodianEvent[], reset: boolean): Promise<void> {
    const now = toIso(this.#d.clock.now());
    for (let i = 0; i < events.length; i += 500) {
      const values = events.slice(i, i + 500).map((e) => ({
        subscription_id: subscriptionId,
        seq: Number(e.sequence),
        event_id: e.id,
        subject_id: e.subject ?? null,
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        claimed_until: null,
        claimed_by: null,
        last_error: null,
        updated_at: now,
        delivered_at: null,
      }));
      await trx
        .insertInto('event_deliveries')
        .values(values)
        .onConflict((oc) =>
          reset
            ? oc.columns(['subscription_id', 'seq']).doUpdateSet({ status: 'pending', attempts: 0, next_attempt_at: now, claimed_until: null, claimed_by: null, last_error: null, updated_at: now, delivered_at: null })
            : oc.columns(['subscription_id', 'seq']).doNothing(),
        )
        .execute();
    }
  }

  /**
   * Queues a subscription's past events again (those passing its filter, from `from` on) as new pending
   * deliveries with fresh attempts — dead letters included. Events keep their ids, so consumers de-duplicate.
   * Events pruned from the outbox cannot be replayed. Returns how many deliveries were queued.
   */
  async replay(subscriptionId: string, from: ReplayFrom, actor: string): Promise<number> {
    const sub = await this.#d.subscriptions.get(subscriptionId);
    await this.#fanOutOne(subscriptionId);
    const row = await this.#d.store.db.selectFrom('event_subscriptions').select('materialised_through').where('id', '=', subscriptionId).executeTakeFirstOrThrow();
    const through = Number(row.materialised_through);
    const filter = { types: sub.types, purposes: sub.purposes };
    let after = 'fromSeq' in from ? Math.max(from.fromSeq - 1, 0) : 0;
    let count = 0;
    for (;;) {
      const page = 'fromSeq' in from ? await this.#d.outbox.read(after, FANOUT_PAGE) : await this.#d.outbox.readFromTime(from.fromTime, after, FANOUT_PAGE);
      const inRange = page.filter((e) => Number(e.sequence) <= through);
      const rows = inRange.filter((e) => matchesFilter({ type: e.type, purposes: e.data.purposes }, filter));
      if (rows.length > 0) await this.#d.store.transaction((trx) => this.#insertPending(trx, subscriptionId, rows, true));
      count += rows.length;
      if (page.length < FANOUT_PAGE || inRange.length < page.length) break;
      after = Number(page.at(-1)!.sequence);
    }
    await this.#d.store.transaction((trx) =>
      this.#d.audit?.record(trx, [{ actor, action: 'events.replayed', targetType: 'event_subscription', targetId: subscriptionId, details: { ...from, count } }]) ?? Promise.resolve(),
    );
    this.wake();
    return count;
  }

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.#woken = false;
      let busy = false;
      try {
        const report = await this.runOnce(signal);
        busy = report.delivered + report.retried + report.dead > 0;
      } catch (err) {
        if (signal.aborted) break;
        this.#onError(err);
      }
      if (signal.aborted) break;
      if (busy || this.#woken) {
        // SQLite answers synchronously: without a turn of the event loop, a busy loop would starve timers and I/O.
        await new Promise((r) => setImmediate(r));
        continue;
      }
      let pause = this.#pollMs;
      try {
        pause = Math.min(pause, await this.#untilNextDue());
      } catch (err) {
        this.#onError(err);
      }
      await this.#sleep(Math.max(pause, MIN_PAUSE_MS));
    }
  }

  /**
   * Milliseconds until the next delivery may become claimable: the earliest retry time among deliveries at the
   * head of their subject's queue, or the earliest lease to expire (the poll interval when there is neither).
   */
  async #untilNextDue(): Promise<number> {
    const now = toIso(this.#d.clock.now());
    const db = this.#d.store.db;
    const retry = await db
      .selectFrom('event_deliveries as d')
      .innerJoin('event_subscriptions as s', 's.id', 'd.subscription_id')
      .select((eb) => eb.fn.min('d.next_attempt_at').as('at'))
      .where('s.deleted_at', 'is', null)
      .where('s.disabled_at', 'is', null)
      .where('d.status', '=', 'pending')
      .where((eb) => eb.or([eb('d.claimed_until', 'is', null), eb('d.claimed_until', '<', now)]))
      .where(headOfSubject)
      .executeTakeFirst();
    const lease = await db.selectFrom('event_deliveries').select((eb) => eb.fn.min('claimed_until').as('at')).where('status', '=', 'pending').where('claimed_until', '>=', now).executeTakeFirst();
    const times = [retry?.at, lease?.at].filter((t): t is string | Date => t != null).map((t) => Date.parse(storedToIso(t)));
    if (times.length === 0) return this.#pollMs;
    return Math.max(0, Math.min(...times) - this.#d.clock.now());
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeUp = () => {
        this.#wakeUp = undefined;
        done();
      };
      if (this.#woken) this.#wakeUp();
    });
  }

  /** Claims one batch of due deliveries and delivers it. */
  async #dispatch(signal: AbortSignal | undefined): Promise<Omit<DispatchReport, 'fannedOut'>> {
    const token = uuidv7(this.#d.clock.now());
    const claimed = await this.#claim(token);
    if (claimed.length === 0) return { delivered: 0, retried: 0, dead: 0 };
    const events = await this.#events(claimed.map((c) => c.seq));
    const results: Result[] = [];
    const units: Array<() => Promise<void>> = [];
    const bySubscription = new Map<string, Claimed[]>();
    for (const c of claimed) bySubscription.set(c.subscriptionId, [...(bySubscription.get(c.subscriptionId) ?? []), c]);
    for (const [subscriptionId, claims] of bySubscription) {
      const present = claims.filter((c) => events.has(c.seq));
      // An event pruned from the outbox before it was delivered can never be: dead-lettered with the reason.
      for (const c of claims) if (!events.has(c.seq)) results.push({ claim: c, outcome: { ok: false, retryable: false, error: 'event pruned from the outbox', durationMs: 0 } });
      if (present.length === 0) continue;
      const send = async (group: Claimed[]) => {
        let outcomes: DeliveryOutcome[];
        try {
          const target = await this.#target(subscriptionId);
          outcomes = await target.deliver(
            group.map((c) => events.get(c.seq)!),
            signal,
          );
        } catch (err) {
          if (signal?.aborted === true) {
            for (const c of group) results.push({ claim: c, outcome: undefined });
            return;
          }
          // The target could not be opened or threw: a retryable failure of the first event, named by code only.
          this.#targets.delete(subscriptionId);
          outcomes = [{ ok: false, retryable: true, error: `target failed: ${codeOf(err)}`, durationMs: 0 }];
        }
        group.forEach((c, i) => results.push({ claim: c, outcome: outcomes[i] }));
      };
      // Webhooks: one request per event, in parallel across subjects. Brokers: one call per subscription batch
      // (the batch holds at most one event per subject, so order within it does not matter for ordering).
      if (claims[0]!.kind === 'webhook') for (const c of present) units.push(() => send([c]));
      else units.push(() => send(present));
    }
    await pool(units, this.#concurrency);
    return this.#record(token, results);
  }

  async #claim(token: string): Promise<Claimed[]> {
    const nowMs = this.#d.clock.now();
    const now = toIso(nowMs);
    return this.#d.store.transaction(async (trx) => {
      let q = trx
        .selectFrom('event_deliveries as d')
        .innerJoin('event_subscriptions as s', 's.id', 'd.subscription_id')
        .select(['d.subscription_id', 'd.seq', 'd.event_id', 'd.attempts', 's.max_attempts', 's.kind'])
        .where('d.status', '=', 'pending')
        .where('d.next_attempt_at', '<=', now)
        .where((eb) => eb.or([eb('d.claimed_until', 'is', null), eb('d.claimed_until', '<', now)]))
        .where('s.deleted_at', 'is', null)
        .where('s.disabled_at', 'is', null)
        // Order per subject: an earlier pending delivery of the same subject (claimed or not) blocks this one.
        .where(headOfSubject)
        .orderBy('d.seq')
        .limit(Math.max(this.#batchSize, this.#brokerBatchSize));
      // PostgreSQL: rows another dispatcher is claiming right now are skipped, not waited for. SQLite: write
      // transactions are exclusive already.
      if (this.#d.store.kind === 'postgres') q = q.forUpdate('d').skipLocked();
      // At most `batchSize` webhook deliveries (one wave must fit the lease) and `brokerBatchSize` broker ones; the
      // rest stay pending, unclaimed, and block later events of their subjects as before.
      let webhooks = 0;
      let brokers = 0;
      const rows = (await q.execute()).filter((r) => (r.kind === 'webhook' ? ++webhooks <= this.#batchSize : ++brokers <= this.#brokerBatchSize));
      if (rows.length === 0) return [];
      const until = toIso(nowMs + this.#leaseMs);
      for (const [subscriptionId, seqs] of groupSeqs(rows)) {
        await trx.updateTable('event_deliveries').set({ claimed_until: until, claimed_by: token }).where('subscription_id', '=', subscriptionId).where('seq', 'in', seqs).execute();
      }
      return rows.map((r) => ({ subscriptionId: r.subscription_id, seq: Number(r.seq), eventId: r.event_id, attempts: r.attempts, maxAttempts: r.max_attempts, kind: r.kind }));
    });
  }

  async #events(seqs: readonly number[]): Promise<Map<number, CustodianEvent>> {
    const unique = [...new Set(seqs)];
    const rows = await this.#d.store.db.selectFrom('event_outbox').selectAll().where('seq', 'in', unique).execute();
    return new Map(rows.map((r) => [Number(r.seq), toCloudEvent(r)]));
  }

  #target(subscriptionId: string): Promise<DeliveryTarget> {
    let t = this.#targets.get(subscriptionId);
    if (t === undefined) {
      t = this.#d.subscriptions.targetConfig(subscriptionId).then((config) => this.#open(config));
      this.#targets.set(subscriptionId, t);
    }
    return t;
  }

  /** Writes the outcomes of a batch in one transaction; only rows this claim still holds are changed. */
  async #record(token: string, results: readonly Result[]): Promise<Omit<DispatchReport, 'fannedOut'>> {
    const nowMs = this.#d.clock.now();
    const now = toIso(nowMs);
    let delivered = 0;
    let retried = 0;
    let dead = 0;
    const gone = new Set<string>();
    await this.#d.store.transaction(async (trx) => {
      const attempts = [];
      // The common outcomes (delivered on the first attempt, released unattempted) are written with one statement
      // per subscription, not one per event: a round of 256 deliveries is a few statements, not 256 round trips.
      const released = new Map<string, number[]>();
      const deliveredFirst = new Map<string, number[]>();
      for (const { claim, outcome } of results) {
        const row = trx.updateTable('event_deliveries').where('subscription_id', '=', claim.subscriptionId).where('seq', '=', claim.seq).where('claimed_by', '=', token).where('status', '=', 'pending');
        if (outcome === undefined) {
          released.set(claim.subscriptionId, [...(released.get(claim.subscriptionId) ?? []), claim.seq]);
          continue;
        }
        const attempt = claim.attempts + 1;
        const error = outcome.ok ? null : (outcome.error ?? (outcome.status === undefined ? 'failed' : `HTTP ${outcome.status}`)).slice(0, LAST_ERROR_MAX);
        let status: 'delivered' | 'failed' | 'dead';
        if (outcome.ok) {
          status = 'delivered';
          if (attempt === 1) deliveredFirst.set(claim.subscriptionId, [...(deliveredFirst.get(claim.subscriptionId) ?? []), claim.seq]);
          else await row.set({ status: 'delivered', attempts: attempt, delivered_at: now, claimed_until: null, claimed_by: null, last_error: null, updated_at: now }).execute();
          delivered++;
        } else if (outcome.retryable && attempt < claim.maxAttempts) {
          status = 'failed';
          const delay = backoffDelay(attempt, this.#backoff, outcome.retryAfterMs ?? 0, this.#random);
          await row.set({ attempts: attempt, next_attempt_at: toIso(nowMs + delay), claimed_until: null, claimed_by: null, last_error: error, updated_at: now }).execute();
          retried++;
        } else {
          status = 'dead';
          await row.set({ status: 'dead', attempts: attempt, claimed_until: null, claimed_by: null, last_error: error, updated_at: now }).execute();
          dead++;
          if (outcome.gone === true) gone.add(claim.subscriptionId);
        }
        attempts.push({
          id: uuidv7(nowMs),
          subscription_id: claim.subscriptionId,
          seq: claim.seq,
          event_id: claim.eventId,
          attempt,
          at: now,
          outcome: status,
          http_status: outcome.status ?? null,
          error,
          duration_ms: Math.max(0, Math.round(outcome.durationMs)),
        });
      }
      const held = (subscriptionId: string, seqs: readonly number[]) =>
        trx.updateTable('event_deliveries').where('subscription_id', '=', subscriptionId).where('seq', 'in', seqs).where('claimed_by', '=', token).where('status', '=', 'pending');
      for (const [subscriptionId, seqs] of released) {
        for (let i = 0; i < seqs.length; i += 1000) await held(subscriptionId, seqs.slice(i, i + 1000)).set({ claimed_until: null, claimed_by: null }).execute();
      }
      for (const [subscriptionId, seqs] of deliveredFirst) {
        for (let i = 0; i < seqs.length; i += 1000) {
          await held(subscriptionId, seqs.slice(i, i + 1000)).set({ status: 'delivered', attempts: 1, delivered_at: now, claimed_until: null, claimed_by: null, last_error: null, updated_at: now }).execute();
        }
      }
      for (let i = 0; i < attempts.length; i += 500) await trx.insertInto('event_delivery_attempts').values(attempts.slice(i, i + 500)).execute();
      for (const id of gone) {
        await trx.updateTable('event_subscriptions').set({ disabled_at: now, disabled_reason: 'the target answered 410 Gone' }).where('id', '=', id).where('disabled_at', 'is', null).execute();
      }
    });
    return { delivered, retried, dead };
  }
}

/**
 * `d` (a delivery) is the head of its subject's queue: no earlier delivery of the same subject to the same
 * subscription is pending. Deliveries without a subject are never blocked (NULL never equals NULL).
 */
function headOfSubject(eb: ExpressionBuilder<Database & { d: Database['event_deliveries'] }, 'd'>) {
  return eb.not(
    eb.exists(
      eb
        .selectFrom('event_deliveries as p')
        .select('p.seq')
        .whereRef('p.subscription_id', '=', 'd.subscription_id')
        .whereRef('p.subject_id', '=', 'd.subject_id')
        .where('p.status', '=', 'pending')
        .whereRef('p.seq', '<', 'd.seq'),
    ),
  );
}

function groupSeqs(rows: ReadonlyArray<{ subscription_id: string; seq: number | string }>): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const r of rows) m.set(r.subscription_id, [...(m.get(r.subscription_id) ?? []), Number(r.seq)]);
  return m;
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code.slice(0, 64) : err instanceof Error ? err.name : 'error';
}

/** Runs `tasks` with at most `limit` at once. */
async function pool(tasks: ReadonlyArray<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
}
