import { performance } from 'node:perf_hooks';
import { JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import type { CustodianEvent } from '../../core/index.js';
import type { DeliveryOutcome, DeliveryTarget } from './target.js';

/** JetStream API error code: the stream does not exist (deleted, or lost with a memory-only server). */
const STREAM_NOT_FOUND = 10059;

/** A NATS subject token or dotted prefix: no spaces, wildcards or empty tokens. */
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/**
 * Configuration of the NATS JetStream target (the subscription's `target` without its `kind`).
 * `url` is one server URL or a comma-separated list (`nats://a:4222,nats://b:4222`).
 */
export const natsTargetConfig = z
  .object({
    url: z.string().min(1).max(2048).regex(/^(nats|tls):\/\/[^\s]+$/, 'must be a nats:// or tls:// URL (comma-separated for a cluster)').describe('NATS server URL(s)'),
    stream: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('CUSTODIAN_EVENTS').describe('JetStream stream; created with subjects `<subjectPrefix>.>` when missing'),
    subjectPrefix: z.string().max(200).regex(SUBJECT_PREFIX).default('custodian.events').describe('Events go to `<subjectPrefix>.<event type>`'),
    duplicateWindowMs: z.number().int().min(1000).max(7 * 24 * 3_600_000).optional().describe('De-duplication window of a stream this target creates (JetStream default: 2 minutes)'),
    ackTimeoutMs: z.number().int().min(100).max(60_000).default(5000).describe('How long to wait for each PubAck'),
    maxInFlight: z.number().int().min(1).max(1024).default(64).describe('Publishes awaiting their PubAck at once; events of one subject never overlap'),
  })
  .strict();

/** The parsed configuration of {@link natsTarget}. */
export type NatsTargetConfig = z.output<typeof natsTargetConfig>;

/** The subject an event of `type` is published to. */
export function natsSubjectOf(prefix: string, type: string): string {
  return `${prefix}.${type}`;
}

interface Connection {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/** Whether `signal` has fired (a function, so the check is not narrowed away inside loops). */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** A short, id-only description of a failure: the error class and JetStream code, never payloads or URLs. */
function describe(err: unknown): string {
  if (err instanceof JetStreamApiError) return `${err.name} ${err.code}`;
  return err instanceof Error ? err.name : 'unknown error';
}

/**
 * Whether trying again may succeed. Connection loss, timeouts and "no responders" (JetStream not ready yet after a
 * restart) are transient; JetStream API rejections (wrong stream config, message too large) are not, except a
 * missing stream, which the next attempt re-creates.
 */
function isRetryable(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === STREAM_NOT_FOUND || err.status >= 500;
  if (err instanceof z.ZodError) return false;
  return true;
}

/**
 * Delivers events to NATS JetStream: one subject per event type (`custodian.events.consent.withdrawn`), the
 * CloudEvent as the JSON body and its id as the JetStream message id (`Nats-Msg-Id`), so a retried publish within
 * the stream's duplicate window is stored once. Every publish waits for its PubAck.
 *
 * Order: publishes go out in the order given on one connection, so the stream stores them in that order. Up to
 * `maxInFlight` PubAcks are awaited at once, but an event never starts before the previous event of the same
 * subject is acknowledged, so even after a failure the stream never holds a subject's events out of order.
 *
 * The connection is opened on first use and reconnects forever (publishes made while it is down fail as
 * retryable after `ackTimeoutMs`; the dispatcher retries them, and de-duplication absorbs those that did land).
 */
export class NatsTarget implements DeliveryTarget {
  readonly kind = 'nats' as const;
  readonly #config: Readonly<NatsTargetConfig>;
  #connecting: Promise<Connection> | undefined;
  #streamReady = false;
  #closed = false;

  constructor(config: z.input<typeof natsTargetConfig>) {
    this.#config = Object.freeze(natsTargetConfig.parse(config));
  }

  async deliver(events: readonly CustodianEvent[], signal?: AbortSignal): Promise<DeliveryOutcome[]> {
    if (events.length === 0 || signal?.aborted === true) return [];
    const started = performance.now();
    let js: JetStreamClient;
    try {
      js = await this.#ready();
    } catch (err) {
      return [{ ok: false, retryable: !this.#closed && isRetryable(err), error: describe(err), durationMs: performance.now() - started }];
    }
    const { subjectPrefix, ackTimeoutMs, maxInFlight } = this.#config;
    const inFlight: Array<Promise<DeliveryOutcome>> = [];
    const lastOfSubject = new Map<string, Promise<DeliveryOutcome>>();
    let stop = false;
    for (let i = 0; i < events.length && !stop; i++) {
      if (isAborted(signal)) break;
      const event = events[i]!;
      const key = event.subject ?? '';
      const previous = lastOfSubject.get(key);
      if (previous !== undefined && !(await previous).ok) break;
      if (i >= maxInFlight && !(await inFlight[i - maxInFlight]!).ok) break;
      const t0 = performance.now();
      const publish = js.publish(natsSubjectOf(subjectPrefix, event.type), JSON.stringify(event), { msgID: event.id, timeout: ackTimeoutMs }).then(
        (): DeliveryOutcome => ({ ok: true, retryable: false, durationMs: performance.now() - t0 }),
        (err: unknown): DeliveryOutcome => {
          if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) this.#streamReady = false;
          stop = true;
          return { ok: false, retryable: !this.#closed && isRetryable(err), error: describe(err), durationMs: performance.now() - t0 };
        },
      );
      inFlight.push(publish);
      lastOfSubject.set(key, publish);
    }
    const settled = await Promise.all(inFlight);
    const failed = settled.findIndex((o) => !o.ok);
    return failed === -1 ? settled : settled.slice(0, failed + 1);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const connecting = this.#connecting;
    this.#connecting = undefined;
    if (connecting === undefined) return;
    const conn = await connecting.catch(() => undefined);
    if (conn !== undefined && !conn.nc.isClosed()) await conn.nc.close();
  }

  /** The JetStream client, connecting and ensuring the stream first when needed. */
  async #ready(): Promise<JetStreamClient> {
    if (this.#closed) throw new Error('target closed');
    this.#connecting ??= this.#connect();
    let conn: Connection;
    try {
      conn = await this.#connecting;
    } catch (err) {
      this.#connecting = undefined;
      throw err;
    }
    if (!this.#streamReady) {
      await ensureStream(conn.jsm, this.#config);
      this.#streamReady = true;
    }
    return conn.js;
  }

  async #connect(): Promise<Connection> {
    const nc = await connect({
      servers: this.#config.url.split(',').map((s) => s.trim()),
      name: 'custodian-events',
      timeout: 2000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 10_000,
      maxPingOut: 2,
    });
    if (this.#closed) {
      await nc.close();
      throw new Error('target closed');
    }
    return { nc, js: jetstream(nc, { timeout: this.#config.ackTimeoutMs }), jsm: await jetstreamManager(nc, { timeout: this.#config.ackTimeoutMs }) };
  }
}

/**
 * Creates the stream when missing (file storage, limits retention, subjects `<prefix>.>`); when it exists, makes
 * sure it captures the prefix, adding the subject if not. Idempotent; safe when several processes race (the loser
 * of a concurrent create finds the stream on its next call).
 */
export async function ensureStream(jsm: JetStreamManager, config: Pick<NatsTargetConfig, 'stream' | 'subjectPrefix' | 'duplicateWindowMs'>): Promise<void> {
  const subject = `${config.subjectPrefix}.>`;
  try {
    const info = await jsm.streams.info(config.stream);
    const subjects = info.config.subjects ?? [];
    if (!subjects.includes(subject) && !subjects.includes('>')) {
      await jsm.streams.update(config.stream, { subjects: [...subjects, subject] });
    }
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND)) throw err;
    await jsm.streams.add({
      name: config.stream,
      subjects: [subject],
      ...(config.duplicateWindowMs === undefined ? {} : { duplicate_window: nanos(config.duplicateWindowMs) }),
    });
  }
}

/** The NATS JetStream delivery target (see {@link NatsTarget}). */
export function natsTarget(config: z.input<typeof natsTargetConfig>): DeliveryTarget {
  return new NatsTarget(config);
}
