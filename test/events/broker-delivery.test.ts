import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { CustodianEvent } from '../../src/core/index.js';
import { EventDispatcher } from '../../src/events/index.js';
import { custodianFixture } from '../support/stores.js';
import { until } from './webhook-receiver.js';

/*
 * The dispatcher with a broker target (one `deliver` call per subscription batch instead of one request per
 * event): Redis Streams on the local Redis (CUSTODIAN_TEST_REDIS, default redis://127.0.0.1:6379). Redis being
 * unreachable is a failure, never a skip.
 */

const REDIS_URL = process.env.CUSTODIAN_TEST_REDIS ?? 'redis://127.0.0.1:6379';

describe('event delivery to a Redis stream (postgres store)', () => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let redis: Redis;
  const stream = `custodian-test:events:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture('postgres'));
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  afterAll(async () => {
    await redis?.del(stream);
    redis?.disconnect();
    await cleanup?.();
  });

  it('delivers every event once acknowledged, in order per subject', async () => {
    const sub = await c.subscriptions.create({ name: 'stream', target: { kind: 'redis', url: REDIS_URL, stream } }, 'test');
    const d = new EventDispatcher({ store: c.store, outbox: c.outbox, subscriptions: c.subscriptions, clock: c.clock }, { pollMs: 50, backoff: { baseMs: 20, capMs: 200 } });
    await d.start();
    try {
      const ids = Array.from({ length: 5 }, (_, i) => `redis-${i}-${Math.random().toString(36).slice(2, 8)}`);
      const from = await c.outbox.head();
      for (let r = 0; r < 4; r++) await c.ledger.record(ids.map((subjectId) => ({ subjectId, purpose: 'personalize', decision: r % 2 === 0 ? ('granted' as const) : ('withdrawn' as const) })), { actor: 'test' });
      const expected = await c.outbox.read(from, 1000);
      await until(async () => (await c.subscriptions.metrics()).some((m) => m.id === sub.id && m.pending === 0 && m.lag === 0), 15_000, 'the stream');
      const entries = await redis.xrange(stream, '-', '+');
      const events = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('event') + 1]!) as CustodianEvent);
      expect(new Set(events.map((e) => e.id))).toEqual(new Set(expected.map((e) => e.id)));
      for (const s of ids) {
        const seqs = events.filter((e) => e.subject === s).map((e) => Number(e.sequence));
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(seqs).toHaveLength(4);
      }
      expect((await c.subscriptions.deliveries(sub.id, { limit: 100 })).every((x) => x.status === 'delivered' && x.attempts === 1)).toBe(true);
    } finally {
      await d.stop();
    }
  });
});
