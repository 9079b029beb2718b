import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribeEvents, type BusSubscription } from '../../src/client/index.js';
import type { CustodianEvent } from '../../src/core/index.js';
import { NatsTarget, natsTarget, natsTargetConfig } from '../../src/events/targets/nats.js';
import { CI, NATS_URL, fakeEvent, natsUp, randomName } from './targets-support.js';

const up = await natsUp();

/** Reads up to `n` events from a subscription, failing after `ms`. */
async function take(sub: BusSubscription, n: number, ms = 10_000): Promise<CustodianEvent[]> {
  const out: CustodianEvent[] = [];
  const it = sub[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} events`);
    const r = await Promise.race([it.next(), new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), left))]);
    if (r === 'timeout' || r.done === true) throw new Error(`got ${out.length} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

describe.skipIf(!up && !CI)('NATS JetStream target', () => {
  const stream = `CST_TEST_${randomName()}`;
  const prefix = `cst.test.${randomName()}`;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await jsm?.streams.delete(stream).catch(() => undefined);
    await nc?.close();
  });

  it('validates its configuration and fills the defaults', () => {
    expect(natsTargetConfig.parse({ url: 'nats://127.0.0.1:4222' })).toStrictEqual({
      url: 'nats://127.0.0.1:4222',
      stream: 'CUSTODIAN_EVENTS',
      subjectPrefix: 'custodian.events',
      ackTimeoutMs: 5000,
      maxInFlight: 64,
    });
    expect(() => natsTargetConfig.parse({ url: 'http://x' })).toThrow();
    expect(() => natsTargetConfig.parse({ url: 'nats://x', subjectPrefix: 'a.*' })).toThrow();
    expect(() => natsTargetConfig.parse({ url: 'nats://x', kind: 'nats' })).toThrow();
  });

  it('creates the stream, publishes one subject per event type with the event id as message id, in order', async () => {
    const target = natsTarget({ url: NATS_URL, stream, subjectPrefix: prefix, duplicateWindowMs: 60_000 });
    let sub: BusSubscription | undefined;
    try {
      const events = [
        fakeEvent('consent.granted', 's-1', { consentEventId: 'x' }, ['analytics.reporting']),
        fakeEvent('consent.withdrawn', 's-1', {}, ['analytics.reporting']),
        fakeEvent('subject.erased', 's-2'),
        ...Array.from({ length: 200 }, (_, i) => fakeEvent('consent.denied', `s-${i % 7}`, {}, ['personalize'])),
      ];
      const outcomes = await target.deliver(events);
      expect(outcomes).toHaveLength(events.length);
      expect(outcomes.every((o) => o.ok)).toBe(true);

      const info = await jsm.streams.info(stream);
      expect(info.config.subjects).toEqual([`${prefix}.>`]);
      expect(info.config.duplicate_window).toBe(60_000 * 1_000_000);
      expect(info.state.messages).toBe(events.length);
      const first = await jsm.streams.getMessage(stream, { seq: 1 });
      expect(first?.subject).toBe(`${prefix}.consent.granted`);
      expect(first?.header.get('Nats-Msg-Id')).toBe(events[0]!.id);
      expect(first?.json<CustodianEvent>()).toStrictEqual(events[0]);
      expect((await jsm.streams.getMessage(stream, { seq: 3 }))?.subject).toBe(`${prefix}.subject.erased`);

      // Resuming after position 0 replays the stream from its first message.
      sub = await subscribeEvents({ kind: 'nats', url: NATS_URL, stream, subjectPrefix: prefix }, { start: { after: '0' } });
      const received = await take(sub, events.length);
      expect(received.map((e) => e.id)).toEqual(events.map((e) => e.id));
      expect(sub.position).toBe(String(events.length));
    } finally {
      await sub?.close();
      await target.close();
    }
  });

  it('de-duplicates a redelivered event by its id (JetStream duplicate window)', async () => {
    const target = natsTarget({ url: NATS_URL, stream, subjectPrefix: prefix });
    const before = (await jsm.streams.info(stream)).state.messages;
    const events = Array.from({ length: 20 }, (_, i) => fakeEvent('consent.granted', `d-${i}`));
    expect((await target.deliver(events)).every((o) => o.ok)).toBe(true);
    // The dispatcher retries a batch whose acks were lost: the same ids again, plus new ones.
    const again = [...events, fakeEvent('consent.denied', 'd-new')];
    expect((await target.deliver(again)).every((o) => o.ok)).toBe(true);
    expect((await jsm.streams.info(stream)).state.messages).toBe(before + 21);
    await target.close();
  });

  it('a consumer filtered on consent.> sees consent events only', async () => {
    const target = natsTarget({ url: NATS_URL, stream, subjectPrefix: prefix });
    const sub = await subscribeEvents({ kind: 'nats', url: NATS_URL, stream, subjectPrefix: prefix }, { filter: 'consent' });
    try {
      const events = [fakeEvent('subject.erased', 'f-1'), fakeEvent('consent.denied', 'f-1'), fakeEvent('request.completed', 'f-1'), fakeEvent('consent.granted', 'f-2')];
      expect((await target.deliver(events)).every((o) => o.ok)).toBe(true);
      const got = await take(sub, 2);
      expect(got.map((e) => e.type)).toEqual(['consent.denied', 'consent.granted']);
      expect(sub.position).not.toBeNull();
      expect(sub.staleness()).toBe(0);
    } finally {
      await sub.close();
      await target.close();
    }
  });

  it('a consumer started from a time replays what the stream holds since then', async () => {
    const target = natsTarget({ url: NATS_URL, stream, subjectPrefix: prefix });
    const from = new Date().toISOString();
    const events = [fakeEvent('consent.denied', 't-1'), fakeEvent('consent.granted', 't-2')];
    expect((await target.deliver(events)).every((o) => o.ok)).toBe(true);
    const sub = await subscribeEvents({ kind: 'nats', url: NATS_URL, stream, subjectPrefix: prefix }, { start: { time: from } });
    try {
      expect((await take(sub, 2)).map((e) => e.id)).toEqual(events.map((e) => e.id));
    } finally {
      await sub.close();
      await target.close();
    }
  });

  it('answers a retryable failure when the server cannot be reached, and stops at the first failure', async () => {
    const target = new NatsTarget({ url: 'nats://127.0.0.1:1', stream, subjectPrefix: prefix });
    const outcomes = await target.deliver([fakeEvent('consent.granted', 'u-1'), fakeEvent('consent.granted', 'u-2')]);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ ok: false, retryable: true });
    expect(outcomes[0]!.error).not.toContain('127.0.0.1');
    await target.close();
    expect(await target.deliver([])).toEqual([]);
  });
});
