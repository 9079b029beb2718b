import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import type { CustodianEvent } from '../core/index.js';
import { ensureStream } from '../events/targets/nats.js';

/** Where a service reads Custodian's events: the NATS JetStream stream or the Redis stream a subscription delivers to. */
export type BusOptions = NatsBusOptions | RedisBusOptions;

/** The NATS JetStream side of a `nats` subscription (same `stream` and `subjectPrefix` as its target). */
export interface NatsBusOptions {
  readonly kind: 'nats';
  /** Server URL(s), comma-separated for a cluster. */
  readonly url: string;
  /** Default `CUSTODIAN_EVENTS`. */
  readonly stream?: string;
  /** Default `custodian.events`. */
  readonly subjectPrefix?: string;
  /** Idle heartbeat of the consumer: a silent server is noticed after about two of them. Default 1,000 ms. */
  readonly heartbeatMs?: number;
}

/** The Redis side of a `redis` subscription (same `stream` as its target). */
export interface RedisBusOptions {
  readonly kind: 'redis';
  readonly url: string;
  /** Default `custodian:events`. */
  readonly stream?: string;
  /** How long one XREAD blocks waiting for entries. Default 1,000 ms. */
  readonly blockMs?: number;
  /** Entries per XREAD. Default 500. */
  readonly count?: number;
}

/** Where a subscription starts. */
export type BusStart =
  /** Only events published after the subscription is established (the default). */
  | 'new'
  /** Events published at or after this instant (ISO-8601), as far as the stream still holds them. */
  | { readonly time: string }
  /** After a position returned by {@link BusSubscription.position} (resuming). */
  | { readonly after: string };

/** Options of {@link subscribeEvents}. */
export interface SubscribeOptions {
  /**
   * `consent`: only `consent.*` events; `all` (default): every event. On NATS this is the consumer's subject filter
   * (one filter, so NATS 2.9 servers work); on Redis the stream holds every event and the filter runs here.
   */
  readonly filter?: 'all' | 'consent';
  readonly start?: BusStart;
}

/** What a subscription knows of its own health (see {@link BusSubscription.staleness}). */
export interface BusHealth {
  /** The connection to the bus is up. */
  readonly connected: boolean;
  /** Epoch ms of the last sign that the subscription is working: an event, a heartbeat, a read that returned. */
  readonly lastAliveAt: number;
  /** How long after {@link lastAliveAt} silence still counts as healthy (heartbeat or read interval with margin). */
  readonly graceMs: number;
}

/**
 * A running subscription: an async iterable of events in stream order (iterate it once), its position for
 * resuming, and its health. Events that are not valid JSON CloudEvents are skipped and counted.
 */
export interface BusSubscription extends AsyncIterable<CustodianEvent> {
  readonly kind: 'nats' | 'redis';
  /** The stream position of the last event yielded: a JetStream sequence or a Redis entry id (pass to `start: {after}`). */
  readonly position: string | null;
  /** Messages skipped because they were not CloudEvents. */
  readonly skipped: number;
  health(): BusHealth;
  /**
   * Milliseconds since the subscription was last known to be working and current: 0 while connected and heard
   * from within the grace period, otherwise the time since the last sign of life.
   */
  staleness(now?: number): number;
  /** Calls `listener` whenever {@link health} changes between healthy and not; returns the function that stops it. */
  onHealth(listener: (healthy: boolean) => void): () => void;
  /** Stops the subscription, ends the iteration and closes the connection. */
  close(): Promise<void>;
}

/** A single-consumer queue that an async iterator drains. */
class EventQueue implements AsyncIterable<CustodianEvent> {
  #items: CustodianEvent[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #ended = false;

  push(e: CustodianEvent): void {
    this.#items.push(e);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<CustodianEvent> {
    for (;;) {
      while (this.#head < this.#items.length) {
        const e = this.#items[this.#head]!;
        this.#items[this.#head++] = undefined as unknown as CustodianEvent;
        if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
          this.#items = this.#items.slice(this.#head);
          this.#head = 0;
        }
        yield e;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}

/** The parts every subscription shares: the queue, the health bookkeeping and the listeners. */
abstract class BaseSubscription implements BusSubscription {
  abstract readonly kind: 'nats' | 'redis';
  protected readonly queue = new EventQueue();
  protected connected = false;
  protected lastAliveAt = Date.now();
  protected abstract readonly graceMs: number;
  #position: string | null = null;
  #skipped = 0;
  #healthy = false;
  readonly #listeners = new Set<(healthy: boolean) => void>();

  get position(): string | null {
    return this.#position;
  }

  get skipped(): number {
    return this.#skipped;
  }

  health(): BusHealth {
    return { connected: this.connected, lastAliveAt: this.lastAliveAt, graceMs: this.graceMs };
  }

  staleness(now = Date.now()): number {
    const silent = now - this.lastAliveAt;
    return this.connected && silent <= this.graceMs ? 0 : Math.max(0, silent);
  }

  onHealth(listener: (healthy: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  [Symbol.asyncIterator](): AsyncIterator<CustodianEvent> {
    return this.queue[Symbol.asyncIterator]();
  }

  abstract close(): Promise<void>;

  protected alive(): void {
    this.lastAliveAt = Date.now();
    this.setHealthy(this.connected);
  }

  protected setConnected(up: boolean): void {
    this.connected = up;
    // Reconnected is not yet working: health returns with the next event, heartbeat or read.
    if (!up) this.setHealthy(false);
  }

  protected setHealthy(healthy: boolean): void {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    for (const l of this.#listeners) l(healthy);
  }

  /** Parses one message body and queues it; a body that is not a CloudEvent is counted and skipped. */
  protected accept(body: string, position: string, consentOnly: boolean): void {
    this.#position = position;
    let e: CustodianEvent;
    try {
      e = JSON.parse(body) as CustodianEvent;
    } catch {
      this.#skipped++;
      return;
    }
    if (e === null || typeof e !== 'object' || typeof e.id !== 'string' || typeof e.type !== 'string' || typeof e.data !== 'object' || e.data === null) {
      this.#skipped++;
      return;
    }
    if (consentOnly && !e.type.startsWith('consent.')) return;
    this.queue.push(e);
  }
}

class NatsSubscription extends BaseSubscription {
  readonly kind = 'nats' as const;
  protected readonly graceMs: number;
  #nc: NatsConnection | undefined;
  #messages: ConsumerMessages | undefined;
  #closed = false;

  constructor(heartbeatMs: number) {
    super();
    this.graceMs = heartbeatMs * 3;
  }

  async start(options: NatsBusOptions, sub: SubscribeOptions): Promise<void> {
    const stream = options.stream ?? 'CUSTODIAN_EVENTS';
    const prefix = options.subjectPrefix ?? 'custodian.events';
    const heartbeatMs = options.heartbeatMs ?? 1000;
    const nc = await connect({
      servers: options.url.split(',').map((s) => s.trim()),
      name: 'custodian-consumer',
      timeout: 2000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 5000,
      maxPingOut: 2,
    });
    this.#nc = nc;
    try {
      const jsm = await jetstreamManager(nc);
      // The consumer may start before any dispatcher created the stream.
      await ensureStream(jsm, { stream, subjectPrefix: prefix, duplicateWindowMs: undefined });
      const start = sub.start ?? 'new';
      const position: { opt_start_seq: number } | { opt_start_time: string } =
        start === 'new'
          ? // "Deliver new" is pinned to a sequence: an ordered consumer re-created before its first message would
            // otherwise restart from the beginning of the stream.
            { opt_start_seq: (await jsm.streams.info(stream)).state.last_seq + 1 }
          : 'time' in start
            ? { opt_start_time: new Date(Date.parse(start.time)).toISOString() }
            : { opt_start_seq: Number(start.after) + 1 };
      const consumer = await jetstream(nc).consumers.get(stream, {
        filter_subjects: sub.filter === 'consent' ? `${prefix}.consent.>` : `${prefix}.>`,
        ...position,
      });
      const consentOnly = sub.filter === 'consent';
      this.#messages = await consumer.consume({
        max_messages: 1000,
        expires: Math.max(1000, heartbeatMs * 5),
        idle_heartbeat: heartbeatMs,
        callback: (m) => {
          this.alive();
          this.accept(m.string(), String(m.seq), consentOnly);
        },
      });
      this.setConnected(true);
      this.alive();
      void this.#watchStatus(nc, this.#messages);
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw err;
    }
  }

  async #watchStatus(nc: NatsConnection, messages: ConsumerMessages): Promise<void> {
    const connection = (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.setConnected(false);
        else if (s.type === 'reconnect') this.setConnected(true);
      }
    })();
    const consumer = (async () => {
      for await (const s of messages.status()) {
        if (s.type === 'heartbeat' || s.type === 'ordered_consumer_recreated') this.alive();
        else if (s.type === 'heartbeats_missed') this.setHealthy(false);
      }
    })();
    await Promise.allSettled([connection, consumer]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.setConnected(false);
    await this.#messages?.close().catch(() => undefined);
    await this.#nc?.close().catch(() => undefined);
    this.queue.end();
  }
}

class RedisSubscription extends BaseSubscription {
  readonly kind = 'redis' as const;
  protected readonly graceMs: number;
  readonly #redis: Redis;
  readonly #stream: string;
  readonly #blockMs: number;
  readonly #count: number;
  #closed = false;
  #loop: Promise<void> | undefined;

  constructor(options: RedisBusOptions) {
    super();
    this.#stream = options.stream ?? 'custodian:events';
    this.#blockMs = options.blockMs ?? 1000;
    this.#count = options.count ?? 500;
    this.graceMs = this.#blockMs + 2000;
    // A dedicated connection: XREAD BLOCK holds it. Commands fail fast while it is down; the loop retries.
    this.#redis = new Redis(options.url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 100, 1000) });
    this.#redis.on('error', () => undefined);
    this.#redis.on('close', () => this.setConnected(false));
    this.#redis.on('ready', () => this.setConnected(true));
  }

  async start(sub: SubscribeOptions): Promise<void> {
    await this.#redis.connect();
    this.setConnected(true);
    const start = sub.start ?? 'new';
    let after: string;
    if (start === 'new') {
      // '$' must be pinned to the current last id once: a loop re-reading with '$' loses entries added between reads.
      const last = await this.#redis.xrevrange(this.#stream, '+', '-', 'COUNT', 1);
      after = last[0]?.[0] ?? '0-0';
    } else if ('time' in start) {
      const ms = Date.parse(start.time);
      after = ms > 0 ? `${ms - 1}-18446744073709551615` : '0-0';
    } else {
      after = start.after;
    }
    this.alive();
    this.#loop = this.#run(after, sub.filter === 'consent');
  }

  async #run(initial: string, consentOnly: boolean): Promise<void> {
    let after = initial;
    while (!this.#closed) {
      try {
        const res = await this.#redis.xread('COUNT', this.#count, 'BLOCK', this.#blockMs, 'STREAMS', this.#stream, after);
        this.alive();
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            after = id;
            const i = fields.indexOf('event');
            this.accept(i >= 0 && i % 2 === 0 ? (fields[i + 1] ?? '') : '', id, consentOnly);
          }
        }
      } catch {
        if (this.#closed) break;
        this.setHealthy(false);
        await sleep(250);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.setConnected(false);
    this.#redis.disconnect();
    await this.#loop?.catch(() => undefined);
    this.queue.end();
  }
}

/**
 * Subscribes to Custodian's events on the bus a subscription delivers to, and resolves once the subscription is
 * established: events published after that are all seen (on NATS, an ordered ephemeral JetStream consumer that
 * re-creates itself after a server restart and resumes after the last sequence it saw; on Redis, XREAD BLOCK from
 * the stream's last id). Events may repeat (a dispatcher retry outside the JetStream duplicate window, or any retry
 * on Redis): de-duplicate by `id`, or apply idempotently as the ConsentClient does.
 *
 * @example
 * const sub = await subscribeEvents({ kind: 'nats', url: 'nats://127.0.0.1:4222' }, { filter: 'consent' });
 * for await (const event of sub) if (event.type === 'consent.withdrawn') stopProcessing(event.subject!, event.data.purposes);
 */
export async function subscribeEvents(bus: BusOptions, options: SubscribeOptions = {}): Promise<BusSubscription> {
  if (bus.kind === 'nats') {
    const sub = new NatsSubscription(bus.heartbeatMs ?? 1000);
    await sub.start(bus, options);
    return sub;
  }
  const sub = new RedisSubscription(bus);
  try {
    await sub.start(options);
  } catch (err) {
    await sub.close();
    throw err;
  }
  return sub;
}
