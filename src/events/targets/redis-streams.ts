import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { z } from 'zod';
import type { CustodianEvent } from '../../core/index.js';
import type { DeliveryOutcome, DeliveryTarget } from './target.js';

/** Configuration of the Redis Streams target (the subscription's `target` without its `kind`). */
export const redisTargetConfig = z
  .object({
    url: z.string().min(1).max(2048).regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL').describe('Redis URL'),
    stream: z.string().min(1).max(200).default('custodian:events').describe('Stream key'),
    maxLen: z.number().int().min(1).max(1_000_000_000).default(1_000_000).describe('Approximate cap of the stream (XADD MAXLEN ~)'),
    timeoutMs: z.number().int().min(100).max(60_000).default(5000).describe('Per-batch command timeout'),
  })
  .strict();

/** The parsed configuration of {@link redisStreamsTarget}. */
export type RedisTargetConfig = z.output<typeof redisTargetConfig>;

/** Redis error replies that mean "try again later" (the server is loading, busy, read-only during failover, out of memory). */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|OOM|NOREPLICAS)\b/;

/** A short, id-only description of a failure: the error class or reply prefix, never payloads or URLs. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown error';
  if (err.name === 'ReplyError') return `ReplyError ${err.message.split(' ')[0] ?? ''}`.trim();
  return err.name;
}

/** Whether trying again may succeed: connection and timeout errors and transient replies are, other replies (WRONGTYPE, syntax) are not. */
function isRetryable(err: unknown): boolean {
  if (err instanceof Error && err.name === 'ReplyError') return TRANSIENT_REPLY.test(err.message);
  return true;
}

/**
 * Delivers events to a Redis stream: per event
 * `XADD <stream> MAXLEN ~ <maxLen> * id <event id> type <type> subject <subject id> event <CloudEvent JSON>`,
 * a batch in one pipeline (Redis runs a connection's commands in order, so entries keep the batch's order).
 * Redis Streams do not de-duplicate: a retried event is appended again with the same `id` field, and consumers
 * skip ids they have applied (the ConsentClient does, by consent event id).
 */
export class RedisStreamsTarget implements DeliveryTarget {
  readonly kind = 'redis' as const;
  readonly #config: Readonly<RedisTargetConfig>;
  #redis: Redis | undefined;
  #closed = false;

  constructor(config: z.input<typeof redisTargetConfig>) {
    this.#config = Object.freeze(redisTargetConfig.parse(config));
  }

  async deliver(events: readonly CustodianEvent[], signal?: AbortSignal): Promise<DeliveryOutcome[]> {
    if (events.length === 0 || signal?.aborted === true) return [];
    const started = performance.now();
    if (this.#closed) return [{ ok: false, retryable: false, error: 'target closed', durationMs: 0 }];
    const { stream, maxLen } = this.#config;
    this.#redis ??= new Redis(this.#config.url, {
      lazyConnect: false,
      connectTimeout: 2000,
      commandTimeout: this.#config.timeoutMs,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 100, 2000),
    });
    // Errors are reported through outcomes; without a listener ioredis would log them.
    if (this.#redis.listenerCount('error') === 0) this.#redis.on('error', () => undefined);
    const pipeline = this.#redis.pipeline();
    const max = String(maxLen);
    for (const e of events) pipeline.xadd(stream, 'MAXLEN', '~', max, '*', 'id', e.id, 'type', e.type, 'subject', e.subject ?? '', 'event', JSON.stringify(e));
    let replies: Array<[Error | null, unknown]> | null;
    try {
      replies = await pipeline.exec();
    } catch (err) {
      return [{ ok: false, retryable: isRetryable(err), error: describe(err), durationMs: performance.now() - started }];
    }
    const durationMs = (performance.now() - started) / events.length;
    const outcomes: DeliveryOutcome[] = [];
    for (let i = 0; i < events.length; i++) {
      const [err] = replies?.[i] ?? [new Error('no reply')];
      if (err !== null) {
        outcomes.push({ ok: false, retryable: isRetryable(err), error: describe(err), durationMs });
        break;
      }
      outcomes.push({ ok: true, retryable: false, durationMs });
    }
    return outcomes;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const r = this.#redis;
    this.#redis = undefined;
    if (r === undefined) return;
    await r.quit().catch(() => r.disconnect());
  }
}

/** The Redis Streams delivery target (see {@link RedisStreamsTarget}). */
export function redisStreamsTarget(config: z.input<typeof redisTargetConfig>): DeliveryTarget {
  return new RedisStreamsTarget(config);
}
