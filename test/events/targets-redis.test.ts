import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribeEvents, type BusSubscription } from '../../src/client/index.js';
import type { CustodianEvent } from '../../src/core/index.js';
import { redisStreamsTarget, redisTargetConfig } from '../../src/events/targets/redis-streams.js';
import { CI, REDIS_URL, fakeEvent, randomName, redisUp } from './targets-support.js';

const up = await redisUp();

async function take(sub: BusSubscription, n: number, ms = 10_000): Promise<CustodianEvent[]> {
  const out: CustodianEvent[] = [];
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    const r = await Promise.race([it.next(), new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), Math.max(0, left)))]);
    if (r === 'timeout' || r.done === true) throw new Error(`got ${out.length} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

describe.skipIf(!up && !CI)('Redis Streams target', () => {
  const prefix = `cst-test-${randomName()}:`;
  let admin: Redis;

  beforeAll(() => {
    admin = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
  });

  it('validates its configuration and fills the defaults', () => {
    expect(redisTargetConfig.parse({ url: 'redis://127.0.0.1:6379' })).toStrictEqual({ url: 'redis://127.0.0.1:6379', stream: 'custodian:events', maxLen: 1_000_000, timeoutMs: 5000 });
    expect(() => redisTargetConfig.parse({ url: 'nats://x' })).toThrow();
    expect(() => redisTargetConfig.parse({ url: 'redis://x', maxLen: 0 })).toThrow();
  });

  it('XADDs each event with id, type, subject and the CloudEvent, in order, and a subscriber reads them', async () => {
    const stream = `${prefix}events`;
    const sub = await subscribeEvents({ kind: 'redis', url: REDIS_URL, stream, blockMs: 200 });
    const target = redisStreamsTarget({ url: REDIS_URL, stream });
    try {
      const events = Array.from({ length: 300 }, (_, i) => fakeEvent(i % 3 === 0 ? 'subject.erased' : 'consent.granted', `s-${i % 11}`, {}, ['personalize']));
      const outcomes = await target.deliver(events);
      expect(outcomes).toHaveLength(events.length);
      expect(outcomes.every((o) => o.ok)).toBe(true);
      const entries = await admin.xrange(stream, '-', '+');
      expect(entries).toHaveLength(events.length);
      const [, fields] = entries[0]!;
      expect(fields).toEqual(['id', events[0]!.id, 'type', events[0]!.type, 'subject', 's-0', 'event', JSON.stringify(events[0])]);
      expect(entries.map(([, f]) => f[1])).toEqual(events.map((e) => e.id));

      const got = await take(sub, events.length);
      expect(got.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(sub.position).toBe(entries[entries.length - 1]![0]);
      expect(sub.staleness()).toBe(0);
    } finally {
      await sub.close();
      await target.close();
    }
  });

  it('caps the stream near maxLen (MAXLEN ~)', async () => {
    const stream = `${prefix}capped`;
    const target = redisStreamsTarget({ url: REDIS_URL, stream, maxLen: 100 });
    for (let i = 0; i < 10; i++) {
      const outcomes = await target.deliver(Array.from({ length: 100 }, (_, j) => fakeEvent('consent.denied', `c-${i}-${j}`)));
      expect(outcomes.every((o) => o.ok)).toBe(true);
    }
    const len = await admin.xlen(stream);
    // Approximate trimming removes whole stream nodes (100 entries each by default): never below the cap, far below 1,000.
    expect(len).toBeGreaterThanOrEqual(100);
    expect(len).toBeLessThanOrEqual(300);
    await target.close();
  });

  it('filters consent events and starts from a time', async () => {
    const stream = `${prefix}filtered`;
    const target = redisStreamsTarget({ url: REDIS_URL, stream });
    const from = new Date(Date.now() - 1).toISOString();
    const events = [fakeEvent('subject.erased', 'f-1'), fakeEvent('consent.denied', 'f-1'), fakeEvent('consent.granted', 'f-2')];
    expect((await target.deliver(events)).every((o) => o.ok)).toBe(true);
    const sub = await subscribeEvents({ kind: 'redis', url: REDIS_URL, stream, blockMs: 200 }, { filter: 'consent', start: { time: from } });
    try {
      expect((await take(sub, 2)).map((e) => e.type)).toEqual(['consent.denied', 'consent.granted']);
    } finally {
      await sub.close();
      await target.close();
    }
  });

  it('a wrong key type is a permanent failure; an unreachable server a retryable one', async () => {
    const key = `${prefix}not-a-stream`;
    await admin.set(key, 'x');
    const wrong = redisStreamsTarget({ url: REDIS_URL, stream: key });
    const outcomes = await wrong.deliver([fakeEvent('consent.granted', 'w-1'), fakeEvent('consent.granted', 'w-2')]);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ ok: false, retryable: false, error: 'ReplyError WRONGTYPE' });
    await wrong.close();

    const down = redisStreamsTarget({ url: 'redis://127.0.0.1:1', stream: `${prefix}x`, timeoutMs: 500 });
    const failed = await down.deliver([fakeEvent('consent.granted', 'u-1')]);
    expect(failed[0]).toMatchObject({ ok: false, retryable: true });
    expect(failed[0]!.error).not.toContain('127.0.0.1');
    await down.close();
  });
});
