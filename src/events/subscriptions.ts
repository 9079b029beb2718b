import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CustodianError, EVENT_TYPE_KEYS, PURPOSE_KEY_PATTERN, isUuid, storedToIso, toIso, uuidv7, type AuditSink, type Clock, type EventType } from '../core/index.js';
import type { Executor, Store } from '../store/index.js';
import { targetConfig, type TargetConfig, type TargetKind } from './targets/index.js';
import { WEBHOOK_SECRET_PREFIX } from './webhook-verify.js';
import { natsTargetConfig } from './targets/nats.js';
import { redisTargetConfig } from './targets/redis-streams.js';

/** Default number of attempts before a delivery is dead-lettered. */
export const DEFAULT_MAX_ATTEMPTS = 12;

/** Statuses of a delivery: waiting (or being retried), done, or given up (dead letter). */
export const DELIVERY_STATUSES = ['pending', 'delivered', 'dead'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

const urlOf = (schemes: readonly string[]) =>
  z
    .string()
    .max(2000)
    .refine((u) => {
      try {
        return schemes.includes(new URL(u).protocol);
      } catch {
        return false;
      }
    }, `must be a ${schemes.map((s) => `${s}//`).join(' or ')} URL`);

/** What creating a subscription takes; a webhook secret is generated when not given (and answered once). */
export const subscriptionInput = z
  .object({
    name: z.string().min(1).max(200),
    target: z.discriminatedUnion('kind', [
      z
        .object({
          kind: z.literal('webhook'),
          url: urlOf(['http:', 'https:']),
          secret: z.string().min(16).max(200).optional().describe('Generated (whsec_…) when absent'),
          timeoutMs: z.number().int().min(100).max(30_000).optional(),
        })
        .strict(),
      // The brokers' own config schemas, so that a subscription accepted here always opens.
      natsTargetConfig.extend({ kind: z.literal('nats') }),
      redisTargetConfig.extend({ kind: z.literal('redis') }),
    ]),
    types: z.array(z.enum(EVENT_TYPE_KEYS as [EventType, ...EventType[]])).max(EVENT_TYPE_KEYS.length).optional().describe('Event types delivered; absent or empty = all'),
    purposes: z.array(z.string().min(1).max(128).regex(PURPOSE_KEY_PATTERN)).max(200).optional().describe('Purposes delivered; absent or empty = all'),
    maxAttempts: z.number().int().min(1).max(100).optional().describe(`Attempts before dead-lettering; default ${DEFAULT_MAX_ATTEMPTS}`),
  })
  .strict();
export type SubscriptionInput = z.input<typeof subscriptionInput>;

/** A subscription's target as shown: the URL without credentials, never the secret. */
export interface SubscriptionTarget {
  readonly kind: TargetKind;
  readonly url: string;
  readonly timeoutMs?: number;
  readonly stream?: string;
  readonly subjectPrefix?: string;
  readonly maxLen?: number;
}

/** A subscription as shown: never its secret, nor credentials in its URL. */
export interface Subscription {
  readonly id: string;
  readonly name: string;
  readonly kind: TargetKind;
  /** The target without secrets (`url` without user info). */
  readonly target: SubscriptionTarget;
  readonly types: readonly EventType[];
  readonly purposes: readonly string[];
  readonly maxAttempts: number;
  readonly createdAt: string;
  /** Set when the target answered 410 Gone: nothing is delivered any more. */
  readonly disabledAt: string | null;
  readonly disabledReason: string | null;
}

/** A new subscription; `secret` (webhooks) is answered here only, never again. */
export interface CreatedSubscription extends Subscription {
  readonly secret?: string;
}

/** One delivery of an event to a subscription. */
export interface Delivery {
  readonly seq: number;
  readonly eventId: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly nextAttemptAt: string | null;
  readonly lastError: string | null;
  readonly updatedAt: string;
  readonly deliveredAt: string | null;
}

/** One attempt of the append-only delivery log. */
export interface DeliveryAttempt {
  readonly id: string;
  readonly seq: number;
  readonly eventId: string;
  readonly attempt: number;
  readonly at: string;
  /** `delivered`, `failed` (will be retried) or `dead` (given up). */
  readonly outcome: string;
  readonly httpStatus: number | null;
  readonly error: string | null;
  readonly durationMs: number;
}

/** Delivery figures of one subscription. */
export interface SubscriptionMetrics {
  readonly id: string;
  readonly name: string;
  readonly pending: number;
  readonly delivered: number;
  readonly dead: number;
  /** Failed attempts so far (retried or dead-lettered). */
  readonly failures: number;
  /** Outbox positions not yet delivered: head − (lowest pending position − 1), or head − fanned-out position. */
  readonly lag: number;
  /** Age of the oldest pending delivery's event, in seconds (0 when none). */
  readonly oldestPendingSeconds: number;
}

/** What the subscriptions service seals target secrets with (the keyring's field encryption). */
export interface SubscriptionCipher {
  encryptField(subjectId: string, plaintext: string, context: string): Promise<string>;
  decryptFieldText(ciphertext: string, context: string): Promise<string>;
}

/** Dependencies of {@link EventSubscriptions}. */
export interface EventSubscriptionsDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly cipher: SubscriptionCipher;
  readonly audit?: AuditSink;
}

/** The filter of a subscription, as the dispatcher applies it. */
export interface SubscriptionFilter {
  readonly types: readonly string[];
  readonly purposes: readonly string[];
}

/**
 * Whether an event passes a subscription's filter: its type is listed (or none are), and it concerns a listed
 * purpose (or none are listed). An event about the subject as a whole (no purposes: `subject.erased`,
 * `subject.restricted`, a `request.completed`) passes every purpose filter, because it concerns every purpose.
 */
export function matchesFilter(event: { readonly type: string; readonly purposes: readonly string[] }, filter: SubscriptionFilter): boolean {
  if (filter.types.length > 0 && !filter.types.includes(event.type)) return false;
  if (filter.purposes.length === 0 || event.purposes.length === 0) return true;
  return event.purposes.some((p) => filter.purposes.includes(p));
}

/** The pseudo-subject whose data key seals a subscription's target (as requests seal identities under theirs). */
function sealSubject(id: string): string {
  return `event_subscription:${id}`;
}
const SEAL_CONTEXT = (id: string) => `event_subscriptions.target_sealed:${id}`;

/** `url` without user info (credentials). */
function publicUrl(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

interface SubscriptionRow {
  id: string;
  name: string;
  kind: string;
  target: string;
  filter_types: string;
  filter_purposes: string;
  max_attempts: number;
  created_at: string | Date;
  disabled_at: string | Date | null;
  disabled_reason: string | null;
}

function toSubscription(r: SubscriptionRow): Subscription {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind as TargetKind,
    target: JSON.parse(r.target) as SubscriptionTarget,
    types: JSON.parse(r.filter_types) as EventType[],
    purposes: JSON.parse(r.filter_purposes) as string[],
    maxAttempts: r.max_attempts,
    createdAt: storedToIso(r.created_at),
    disabledAt: r.disabled_at === null ? null : storedToIso(r.disabled_at),
    disabledReason: r.disabled_reason,
  };
}

const SUBSCRIPTION_COLUMNS = ['id', 'name', 'kind', 'target', 'filter_types', 'filter_purposes', 'max_attempts', 'created_at', 'disabled_at', 'disabled_reason'] as const;

/**
 * Event subscriptions: where events go (webhook, NATS JetStream, Redis Streams) and which (types, purposes).
 * A target's secrets — the webhook secret, credentials in a broker URL — are sealed under a data key of the
 * subscription and never stored or shown in clear; the generated webhook secret is answered once, on create.
 * Also answers the delivery log and delivery metrics. Delivery itself is the {@link EventDispatcher}'s.
 */
export class EventSubscriptions {
  readonly #d: EventSubscriptionsDeps;

  constructor(deps: EventSubscriptionsDeps) {
    this.#d = deps;
  }

  /** Creates a subscription from validated or raw input (validated here; CST_ERR_VALIDATION otherwise). */
  async create(input: SubscriptionInput, actor: string): Promise<CreatedSubscription> {
    const v = valid(subscriptionInput.safeParse(input));
    const now = this.#d.clock.now();
    const id = uuidv7(now);
    const generated = v.target.kind === 'webhook' && v.target.secret === undefined ? `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64')}` : undefined;
    // The adapter's own schema has the last word (and fills its defaults), so what is stored is what it accepts.
    const full: TargetConfig = valid(targetConfig.safeParse(v.target.kind === 'webhook' ? { ...v.target, secret: v.target.secret ?? generated } : v.target), 'target.');
    const { secret: _s, ...shown } = { ...full, url: publicUrl(full.url) } as Record<string, unknown> & { secret?: unknown };
    const sealed = await this.#d.cipher.encryptField(sealSubject(id), JSON.stringify(full), SEAL_CONTEXT(id));
    const types = [...new Set(v.types ?? [])];
    const purposes = [...new Set(v.purposes ?? [])];
    const maxAttempts = v.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    await this.#d.store.transaction(async (trx) => {
      // New subscriptions start at the current end of the outbox: they get events from now on (replay for older).
      const head = await trx.selectFrom('event_outbox').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
      await trx
        .insertInto('event_subscriptions')
        .values({
          id,
          name: v.name,
          kind: full.kind,
          target: JSON.stringify(shown),
          target_sealed: sealed,
          filter_types: JSON.stringify(types),
          filter_purposes: JSON.stringify(purposes),
          max_attempts: maxAttempts,
          created_at: toIso(now),
          created_by: actor.slice(0, 128),
          deleted_at: null,
          disabled_at: null,
          disabled_reason: null,
          materialised_through: Number(head?.seq ?? 0),
        })
        .execute();
      await this.#d.audit?.record(trx, [{ actor, action: 'event_subscription.created', targetType: 'event_subscription', targetId: id, details: { kind: full.kind, types, purposes, maxAttempts } }]);
    });
    const created = await this.get(id);
    return generated === undefined ? created : { ...created, secret: generated };
  }

  /** Live subscriptions (not deleted), oldest first. */
  async list(): Promise<Subscription[]> {
    const rows = await this.#d.store.db.selectFrom('event_subscriptions').select(SUBSCRIPTION_COLUMNS).where('deleted_at', 'is', null).orderBy('id').execute();
    return rows.map(toSubscription);
  }

  /** A live subscription; CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND otherwise. */
  async get(id: string, db: Executor = this.#d.store.db): Promise<Subscription> {
    if (!isUuid(id)) throw notFound(id);
    const row = await db.selectFrom('event_subscriptions').select(SUBSCRIPTION_COLUMNS).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
    if (row === undefined) throw notFound(id);
    return toSubscription(row);
  }

  /** Soft-deletes a subscription: nothing more is delivered to it; its delivery log stays. */
  async delete(id: string, actor: string): Promise<void> {
    if (!isUuid(id)) throw notFound(id);
    await this.#d.store.transaction(async (trx) => {
      const r = await trx.updateTable('event_subscriptions').set({ deleted_at: toIso(this.#d.clock.now()) }).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw notFound(id);
      await this.#d.audit?.record(trx, [{ actor, action: 'event_subscription.deleted', targetType: 'event_subscription', targetId: id }]);
    });
  }

  /** The full target configuration of a subscription, secrets unsealed: for the dispatcher only. */
  async targetConfig(id: string): Promise<TargetConfig> {
    if (!isUuid(id)) throw notFound(id);
    const row = await this.#d.store.db.selectFrom('event_subscriptions').select('target_sealed').where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw notFound(id);
    return JSON.parse(await this.#d.cipher.decryptFieldText(row.target_sealed, SEAL_CONTEXT(id))) as TargetConfig;
  }

  /** Deliveries of a subscription, newest position first, optionally of one status; `beforeSeq` pages on. */
  async deliveries(id: string, options: { status?: DeliveryStatus; limit?: number; beforeSeq?: number } = {}): Promise<Delivery[]> {
    await this.get(id);
    let q = this.#d.store.db.selectFrom('event_deliveries').selectAll().where('subscription_id', '=', id);
    if (options.status !== undefined) q = q.where('status', '=', options.status);
    if (options.beforeSeq !== undefined) q = q.where('seq', '<', options.beforeSeq);
    const rows = await q.orderBy('seq', 'desc').limit(clampLimit(options.limit)).execute();
    return rows.map((r) => ({
      seq: Number(r.seq),
      eventId: r.event_id,
      status: r.status as DeliveryStatus,
      attempts: r.attempts,
      nextAttemptAt: r.status === 'pending' ? storedToIso(r.next_attempt_at) : null,
      lastError: r.last_error,
      updatedAt: storedToIso(r.updated_at),
      deliveredAt: r.delivered_at === null ? null : storedToIso(r.delivered_at),
    }));
  }

  /** The attempt log of a subscription (optionally of one event), newest first. */
  async attempts(id: string, options: { eventId?: string; limit?: number } = {}): Promise<DeliveryAttempt[]> {
    await this.get(id);
    let q = this.#d.store.db.selectFrom('event_delivery_attempts').selectAll().where('subscription_id', '=', id);
    if (options.eventId !== undefined) q = q.where('event_id', '=', options.eventId);
    const rows = await q.orderBy('id', 'desc').limit(clampLimit(options.limit)).execute();
    return rows.map((r) => ({
      id: r.id,
      seq: Number(r.seq),
      eventId: r.event_id,
      attempt: r.attempt,
      at: storedToIso(r.at),
      outcome: r.outcome,
      httpStatus: r.http_status,
      error: r.error,
      durationMs: r.duration_ms,
    }));
  }

  /** Delivery figures of every live subscription (a few aggregate queries, whatever the number of events). */
  async metrics(): Promise<SubscriptionMetrics[]> {
    const db = this.#d.store.db;
    const subs = await db.selectFrom('event_subscriptions').select(['id', 'name', 'materialised_through']).where('deleted_at', 'is', null).orderBy('id').execute();
    if (subs.length === 0) return [];
    const ids = subs.map((s) => s.id);
    const head = await db.selectFrom('event_outbox').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    const headSeq = Number(head?.seq ?? 0);
    const counts = await db
      .selectFrom('event_deliveries')
      .select(['subscription_id', 'status', (eb) => eb.fn.countAll<string>().as('n'), (eb) => eb.fn.min('seq').as('min_seq')])
      .where('subscription_id', 'in', ids)
      .groupBy(['subscription_id', 'status'])
      .execute();
    const failures = await db
      .selectFrom('event_delivery_attempts')
      .select(['subscription_id', (eb) => eb.fn.countAll<string>().as('n')])
      .where('subscription_id', 'in', ids)
      .where('outcome', '!=', 'delivered')
      .groupBy('subscription_id')
      .execute();
    const oldest = await db
      .selectFrom('event_deliveries as d')
      .innerJoin('event_outbox as o', 'o.seq', 'd.seq')
      .select(['d.subscription_id', (eb) => eb.fn.min('o.time').as('time')])
      .where('d.subscription_id', 'in', ids)
      .where('d.status', '=', 'pending')
      .groupBy('d.subscription_id')
      .execute();
    const now = this.#d.clock.now();
    return subs.map((s) => {
      const of = (status: DeliveryStatus) => counts.find((c) => c.subscription_id === s.id && c.status === status);
      const pending = of('pending');
      const position = pending === undefined ? Number(s.materialised_through) : Number(pending.min_seq) - 1;
      const oldestTime = oldest.find((o) => o.subscription_id === s.id)?.time;
      return {
        id: s.id,
        name: s.name,
        pending: Number(pending?.n ?? 0),
        delivered: Number(of('delivered')?.n ?? 0),
        dead: Number(of('dead')?.n ?? 0),
        failures: Number(failures.find((f) => f.subscription_id === s.id)?.n ?? 0),
        lag: Math.max(0, headSeq - position),
        oldestPendingSeconds: oldestTime == null ? 0 : Math.max(0, Math.round((now - Date.parse(storedToIso(oldestTime))) / 1000)),
      };
    });
  }
}

/** The parsed value, or CST_ERR_VALIDATION with every issue's path (values are never echoed). */
function valid<T>(result: { success: true; data: T } | { success: false; error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> } }, prefix = ''): T {
  if (result.success) return result.data;
  throw new CustodianError('CST_ERR_VALIDATION', 'invalid subscription', { details: { issues: result.error.issues.map((i) => ({ path: prefix + i.path.map(String).join('.'), message: i.message })) } });
}

function clampLimit(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? 100, 1), 1000);
}

function notFound(id: string): CustodianError {
  return new CustodianError('CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND', 'no such event subscription', { details: { id } });
}
