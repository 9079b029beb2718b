import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { CustodianEvent } from '../../src/core/index.js';
import { EventDispatcher, type EventDispatcherOptions } from '../../src/events/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';
import { checkDelivery, startWebhookReceiver, until, type WebhookReceiver } from './webhook-receiver.js';

/*
 * Reliability of webhook delivery against a real local receiver: down (connection refused), slow (beyond the
 * webhook timeout), failing (HTTP 500), then healthy. Every event must arrive, in order per subject, with
 * duplicates only of the same event (same id, same body), and every request correctly signed.
 */

const FAST: EventDispatcherOptions = { pollMs: 50, leaseMs: 3000, batchSize: 16, concurrency: 4, backoff: { baseMs: 20, capMs: 250 } };
const PURPOSES = ['personalize', 'analytics.reporting', 'marketing.advertising'] as const;
const DECISIONS = ['granted', 'withdrawn', 'denied'] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(STORE_KINDS)('event delivery on %s', (kind) => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let receiver: WebhookReceiver;
  let secret: string | undefined;
  const dispatchers: EventDispatcher[] = [];
  const dispatcher = (options: EventDispatcherOptions = {}) => {
    const d = new EventDispatcher({ store: c.store, outbox: c.outbox, subscriptions: c.subscriptions, clock: c.clock, audit: c.audit }, { ...FAST, ...options });
    dispatchers.push(d);
    return d;
  };
  const subjects = (label: string, count: number) => Array.from({ length: count }, (_, i) => `${label}-${i}-${Math.random().toString(36).slice(2, 8)}`);
  /** Records `rounds` batches of consent changes for `ids`; answers the events they produced. */
  const produce = async (ids: readonly string[], rounds: number): Promise<CustodianEvent[]> => {
    const from = await c.outbox.head();
    for (let r = 0; r < rounds; r++) {
      await c.ledger.record(
        ids.map((subjectId, i) => ({ subjectId, purpose: PURPOSES[(r + i) % PURPOSES.length]!, decision: DECISIONS[r % DECISIONS.length]! })),
        { actor: 'test' },
      );
    }
    return (await c.outbox.read(from, 10_000)).filter((e) => e.subject !== undefined && ids.includes(e.subject));
  };
  const settled = async (subscriptionId: string) => {
    const m = (await c.subscriptions.metrics()).find((x) => x.id === subscriptionId)!;
    // lag 0: everything up to the outbox head was fanned out and nothing is pending.
    return m.pending === 0 && m.lag === 0;
  };

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind));
    receiver = await startWebhookReceiver(() => secret);
  });
  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((d) => d.stop()));
    for (const s of await c.subscriptions.list()) await c.subscriptions.delete(s.id, 'test');
    receiver.mode = { kind: 'ok' };
    receiver.received.length = 0;
  });
  afterAll(async () => {
    await receiver.close();
    await cleanup();
  });

  it('survives a receiver that is down, then slow, then failing, then healthy: all delivered, in order per subject', async () => {
    const sub = await c.subscriptions.create({ name: 'flaky', target: { kind: 'webhook', url: receiver.url, timeoutMs: 150 }, maxAttempts: 100 }, 'test');
    secret = sub.secret;
    await receiver.down();
    // Two dispatchers share the work, as two processes would.
    await dispatcher().start();
    await dispatcher().start();
    const ids = subjects('flaky', 6);
    const first = await produce(ids, 3);
    await sleep(400);
    await receiver.up();
    receiver.mode = { kind: 'slow', ms: 250 };
    const second = await produce(ids, 2);
    await sleep(400);
    receiver.mode = { kind: 'status', status: 500 };
    const third = await produce(ids, 2);
    await sleep(400);
    receiver.mode = { kind: 'ok' };
    const expected = [...first, ...second, ...third];
    expect(expected.length).toBe(6 * 7);
    await until(() => settled(sub.id), 25_000, 'every delivery settled');
    const { duplicates } = checkDelivery(receiver.received, expected);
    const deliveries = await c.subscriptions.deliveries(sub.id, { limit: 1000 });
    expect(deliveries).toHaveLength(expected.length);
    expect(deliveries.every((d) => d.status === 'delivered')).toBe(true);
    // Failures happened and were logged; content type is the CloudEvents structured one.
    const attempts = await c.subscriptions.attempts(sub.id, { limit: 1000 });
    expect(attempts.some((a) => a.outcome === 'failed' && a.httpStatus === 500)).toBe(true);
    expect(attempts.some((a) => a.outcome === 'failed' && a.httpStatus === null)).toBe(true);
    expect(attempts.filter((a) => a.outcome === 'delivered')).toHaveLength(expected.length);
    expect(receiver.received.every((r) => r.contentType === 'application/cloudevents+json')).toBe(true);
    expect(duplicates).toBeGreaterThanOrEqual(0);
    const m = (await c.subscriptions.metrics()).find((x) => x.id === sub.id)!;
    expect(m).toMatchObject({ pending: 0, dead: 0, lag: 0, delivered: expected.length });
    expect(m.failures).toBeGreaterThan(0);
  });

  it('dead-letters after maxAttempts without blocking the subject, and replay delivers it again with the same id', async () => {
    const sub = await c.subscriptions.create({ name: 'dead', target: { kind: 'webhook', url: receiver.url }, maxAttempts: 3 }, 'test');
    secret = sub.secret;
    receiver.mode = { kind: 'status', status: 503 };
    const [s] = subjects('dead', 1);
    const from = await c.outbox.head();
    await c.ledger.record([{ subjectId: s!, purpose: 'personalize', decision: 'granted' }], { actor: 'test' });
    const d = dispatcher();
    await d.start();
    await until(async () => (await c.subscriptions.deliveries(sub.id, { status: 'dead' })).length === 1, 10_000, 'a dead letter');
    const [dead] = await c.subscriptions.deliveries(sub.id, { status: 'dead' });
    expect(dead).toMatchObject({ attempts: 3, lastError: 'HTTP 503', seq: from + 1 });
    const log = await c.subscriptions.attempts(sub.id, { eventId: dead!.eventId });
    expect(log.map((a) => [a.attempt, a.outcome, a.httpStatus])).toEqual([
      [3, 'dead', 503],
      [2, 'failed', 503],
      [1, 'failed', 503],
    ]);
    // A later event of the same subject is not held back by the dead letter.
    receiver.mode = { kind: 'ok' };
    await c.ledger.record([{ subjectId: s!, purpose: 'personalize', decision: 'withdrawn' }], { actor: 'test' });
    await until(async () => (await c.subscriptions.deliveries(sub.id, { status: 'delivered' })).length === 1, 10_000, 'the later event');
    expect(receiver.received.filter((r) => r.status === 200).map((r) => r.seq)).toEqual([from + 2]);
    // Replay from the dead letter's position: both events again, in order, same ids.
    expect(await d.replay(sub.id, { fromSeq: from + 1 }, 'test')).toBe(2);
    await until(async () => (await c.subscriptions.deliveries(sub.id, { status: 'delivered' })).length === 2, 10_000, 'the replay');
    const ok = receiver.received.filter((r) => r.status === 200);
    expect(ok.map((r) => r.seq)).toEqual([from + 2, from + 1, from + 2]);
    expect(ok[0]!.id).toBe(ok[2]!.id);
    expect(ok[1]!.id).toBe(dead!.eventId);
    // Replay by time works too (everything since the first event).
    const firstTime = (await c.outbox.get(dead!.eventId))!.time;
    expect(await d.replay(sub.id, { fromTime: firstTime }, 'test')).toBe(2);
    await until(() => receiver.received.filter((r) => r.status === 200).length === 5, 10_000, 'the time replay');
  });

  it('a 4xx other than 408/429 is not retried; 410 Gone disables the subscription', async () => {
    const sub = await c.subscriptions.create({ name: 'refusing', target: { kind: 'webhook', url: receiver.url }, maxAttempts: 5 }, 'test');
    secret = sub.secret;
    receiver.mode = { kind: 'status', status: 400 };
    const [s] = subjects('refused', 1);
    await c.ledger.record([{ subjectId: s!, purpose: 'personalize', decision: 'granted' }], { actor: 'test' });
    const d = dispatcher();
    for (let i = 0; i < 5; i++) await d.runOnce();
    expect(await c.subscriptions.deliveries(sub.id)).toMatchObject([{ status: 'dead', attempts: 1, lastError: 'HTTP 400' }]);
    receiver.mode = { kind: 'status', status: 410 };
    await c.ledger.record([{ subjectId: s!, purpose: 'personalize', decision: 'withdrawn' }], { actor: 'test' });
    for (let i = 0; i < 5; i++) await d.runOnce();
    expect((await c.subscriptions.get(sub.id)).disabledReason).toBe('the target answered 410 Gone');
    receiver.mode = { kind: 'ok' };
    const before = receiver.received.length;
    await c.ledger.record([{ subjectId: s!, purpose: 'personalize', decision: 'granted' }], { actor: 'test' });
    for (let i = 0; i < 5; i++) await d.runOnce();
    expect(receiver.received.length).toBe(before);
  });

  it('wakes at once when this process commits events (no poll wait)', async () => {
    const sub = await c.subscriptions.create({ name: 'prompt', target: { kind: 'webhook', url: receiver.url } }, 'test');
    secret = sub.secret;
    await dispatcher({ pollMs: 60_000 }).start();
    await sleep(100);
    const [s] = subjects('prompt', 1);
    const started = Date.now();
    await c.ledger.record([{ subjectId: s!, purpose: 'personalize', decision: 'granted' }], { actor: 'test' });
    await until(() => receiver.received.length === 1, 5000, 'the event');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
