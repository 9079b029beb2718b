import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { EVENT_SOURCE, EVENT_TYPE_KEYS, ManualClock, isCustodianError, isIsoInstant, type ErrorCode } from '../../src/core/index.js';
import { EventDispatcher, matchesFilter, type DeliveryTarget, type TargetConfig } from '../../src/events/index.js';
import type { CustodianEvent } from '../../src/core/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

const DAY = 86_400_000;
let n = 0;
const subject = (label: string) => `${label}-${++n}-${Math.random().toString(36).slice(2, 8)}`;

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isCustodianError(err) ? err.code : err).toBe(code);
}

/** A target that records what it is given, in memory. */
function memoryTarget(sink: CustodianEvent[]): DeliveryTarget {
  return {
    kind: 'webhook',
    async deliver(events) {
      sink.push(...events);
      return events.map(() => ({ ok: true, retryable: false, durationMs: 0 }));
    },
    async close() {},
  };
}

describe.each(STORE_KINDS)('events on %s', (kind) => {
  const clock = new ManualClock('2026-03-01T09:00:00.000Z');
  let c: Custodian;
  let cleanup: () => Promise<void>;
  const ctx = { actor: 'test' };

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
  });
  afterAll(async () => cleanup());

  describe('outbox emission', () => {
    it('a consent grant writes one consent.granted event with the CloudEvents attributes', async () => {
      const s = subject('grant');
      const before = await c.outbox.head();
      const { events } = await c.ledger.record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'EU' }], ctx);
      const out = await c.outbox.read(before, 100);
      expect(out).toHaveLength(1);
      const e = out[0]!;
      expect(e).toMatchObject({ specversion: '1.0', source: EVENT_SOURCE, type: 'consent.granted', subject: s, datacontenttype: 'application/json', schemaversion: 1 });
      expect(Number(e.sequence)).toBe(before + 1);
      expect(isIsoInstant(e.time)).toBe(true);
      expect(e.time).toBe('2026-03-01T09:00:00.000Z');
      expect(e.data).toMatchObject({ subjectId: s, purposes: ['analytics.reporting'] });
      expect(JSON.stringify(e.data)).toContain(events[0]!.id);
      expect(await c.outbox.get(e.id)).toEqual(e);
    });

    it('a rolled-back transaction leaves no event', async () => {
      const before = await c.outbox.head();
      await expect(
        c.store.transaction(async (trx) => {
          await c.outbox.emit(trx, [{ type: 'subject.erased', subjectId: subject('rollback'), purposes: [], data: {} }]);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await c.outbox.head()).toBe(before);
      // A failing ledger write (unknown purpose) emits nothing either.
      await expectCode(c.ledger.record([{ subjectId: subject('bad'), purpose: 'no.such.purpose', decision: 'granted' }], ctx), 'CST_ERR_CONSENT_UNKNOWN_PURPOSE');
      expect(await c.outbox.head()).toBe(before);
    });

    it('announceExpiries emits consent.expired once per expired grant', async () => {
      const s = subject('expiry');
      await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'granted', expiresAt: new Date(clock.now() + DAY).toISOString() }], ctx);
      const before = await c.outbox.head();
      clock.advance(2 * DAY);
      try {
        expect(await c.ledger.announceExpiries()).toBeGreaterThanOrEqual(1);
        const expired = (await c.outbox.read(before, 1000)).filter((e) => e.type === 'consent.expired' && e.subject === s);
        expect(expired).toHaveLength(1);
        expect(expired[0]!.data.purposes).toEqual(['personalize']);
        const head = await c.outbox.head();
        expect(await c.ledger.announceExpiries()).toBe(0);
        expect(await c.outbox.head()).toBe(head);
      } finally {
        clock.advance(-2 * DAY);
      }
    });
  });

  describe('subscriptions', () => {
    it('creates a webhook subscription, answers the generated secret once and never stores it in clear', async () => {
      const created = await c.subscriptions.create({ name: 'crm', target: { kind: 'webhook', url: 'https://hooks.example.com/custodian' } }, 'test');
      expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(created).toMatchObject({ name: 'crm', kind: 'webhook', target: { kind: 'webhook', url: 'https://hooks.example.com/custodian' }, types: [], purposes: [], maxAttempts: 12, disabledAt: null });
      expect(JSON.stringify(created.target)).not.toContain(created.secret!);
      const got = await c.subscriptions.get(created.id);
      expect(got).not.toHaveProperty('secret');
      expect(JSON.stringify(await c.subscriptions.list())).not.toContain(created.secret!);
      // Nothing in the row holds the secret (nor its base64 key bytes) in clear.
      const row = await c.store.db.selectFrom('event_subscriptions').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
      const raw = JSON.stringify(row);
      expect(raw).not.toContain(created.secret!);
      expect(raw).not.toContain(created.secret!.slice('whsec_'.length, 30));
      expect(row.target_sealed.startsWith('c2.')).toBe(true);
      // The dispatcher gets it back.
      expect(await c.subscriptions.targetConfig(created.id)).toMatchObject({ kind: 'webhook', secret: created.secret });
    });

    it('keeps a chosen secret and URL credentials sealed, showing the URL without them', async () => {
      const created = await c.subscriptions.create({ name: 'bus', target: { kind: 'redis', url: 'redis://:hunter2-password@cache.internal:6379/0', stream: 'custodian' } }, 'test');
      expect(created.secret).toBeUndefined();
      expect(created.target).toMatchObject({ kind: 'redis', url: 'redis://cache.internal:6379/0', stream: 'custodian' });
      const row = await c.store.db.selectFrom('event_subscriptions').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
      expect(JSON.stringify(row)).not.toContain('hunter2');
      expect((await c.subscriptions.targetConfig(created.id)).url).toBe('redis://:hunter2-password@cache.internal:6379/0');
      const chosen = await c.subscriptions.create({ name: 'chosen', target: { kind: 'webhook', url: 'http://127.0.0.1:9/x', secret: 'a-chosen-secret-of-24-chars' } }, 'test');
      expect(chosen.secret).toBeUndefined();
      const chosenRow = await c.store.db.selectFrom('event_subscriptions').selectAll().where('id', '=', chosen.id).executeTakeFirstOrThrow();
      expect(JSON.stringify(chosenRow)).not.toContain('a-chosen-secret');
    });

    it('validates URLs, event types, purposes and attempts', async () => {
      const bad = [
        { name: 'x', target: { kind: 'webhook', url: 'ftp://example.com/hook' } },
        { name: 'x', target: { kind: 'webhook', url: 'not a url' } },
        { name: 'x', target: { kind: 'nats', url: 'http://nats.example.com' } },
        { name: 'x', target: { kind: 'redis', url: 'nats://localhost:4222' } },
        { name: 'x', target: { kind: 'webhook', url: 'https://example.com', secret: 'short' } },
        { name: 'x', target: { kind: 'smtp', url: 'smtp://example.com' } },
        { name: 'x', target: { kind: 'webhook', url: 'https://example.com' }, types: ['consent.granted', 'consent.exploded'] },
        { name: 'x', target: { kind: 'webhook', url: 'https://example.com' }, purposes: ['Not A Key!'] },
        { name: 'x', target: { kind: 'webhook', url: 'https://example.com' }, maxAttempts: 0 },
        { name: '', target: { kind: 'webhook', url: 'https://example.com' } },
      ];
      for (const input of bad) await expectCode(c.subscriptions.create(input as never, 'test'), 'CST_ERR_VALIDATION');
      const ok = await c.subscriptions.create({ name: 'typed', target: { kind: 'nats', url: 'nats://127.0.0.1:4222' }, types: [...EVENT_TYPE_KEYS], purposes: ['personalize'], maxAttempts: 3 }, 'test');
      expect(ok).toMatchObject({ kind: 'nats', types: EVENT_TYPE_KEYS, purposes: ['personalize'], maxAttempts: 3 });
    });

    it('lists, gets and soft-deletes; unknown ids are CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND', async () => {
      const a = await c.subscriptions.create({ name: 'to-delete', target: { kind: 'webhook', url: 'https://example.com/a' } }, 'test');
      expect((await c.subscriptions.list()).map((s) => s.id)).toContain(a.id);
      await c.subscriptions.delete(a.id, 'test');
      expect((await c.subscriptions.list()).map((s) => s.id)).not.toContain(a.id);
      await expectCode(c.subscriptions.get(a.id), 'CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND');
      await expectCode(c.subscriptions.delete(a.id, 'test'), 'CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND');
      await expectCode(c.subscriptions.get('not-a-uuid'), 'CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND');
      await expectCode(c.subscriptions.deliveries('0190a0b0-0000-7000-8000-000000000000'), 'CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND');
      // The row stays (soft delete), with its delivery log.
      expect(await c.store.db.selectFrom('event_subscriptions').select('deleted_at').where('id', '=', a.id).executeTakeFirst()).toBeDefined();
    });
  });

  describe('filters', () => {
    it('matchesFilter: types, purposes, and subject-wide events pass purpose filters', () => {
      expect(matchesFilter({ type: 'consent.granted', purposes: ['a'] }, { types: [], purposes: [] })).toBe(true);
      expect(matchesFilter({ type: 'consent.granted', purposes: ['a'] }, { types: ['consent.denied'], purposes: [] })).toBe(false);
      expect(matchesFilter({ type: 'consent.granted', purposes: ['a'] }, { types: [], purposes: ['b'] })).toBe(false);
      expect(matchesFilter({ type: 'consent.granted', purposes: ['a', 'b'] }, { types: [], purposes: ['b'] })).toBe(true);
      expect(matchesFilter({ type: 'subject.erased', purposes: [] }, { types: [], purposes: ['b'] })).toBe(true);
    });

    it('delivers only the events a subscription filters for, starting from its creation', async () => {
      const older = subject('older');
      await c.ledger.record([{ subjectId: older, purpose: 'personalize', decision: 'granted' }], ctx);
      const sub = await c.subscriptions.create({ name: 'filtered', target: { kind: 'webhook', url: 'https://example.com/f' }, types: ['consent.granted', 'consent.withdrawn', 'subject.erased'], purposes: ['personalize'] }, 'test');
      const got: CustodianEvent[] = [];
      // Only this subscription is delivered to by this dispatcher's memory target; the others get the same target too.
      const dispatcher = new EventDispatcher({ store: c.store, outbox: c.outbox, subscriptions: c.subscriptions, clock: c.clock }, { openTarget: (_: TargetConfig) => memoryTarget(got) });
      const s = subject('filtered');
      await c.ledger.record(
        [
          { subjectId: s, purpose: 'personalize', decision: 'granted' },
          { subjectId: s, purpose: 'analytics.reporting', decision: 'granted' },
          { subjectId: s, purpose: 'marketing.advertising', decision: 'denied' },
        ],
        ctx,
      );
      await c.ledger.record([{ subjectId: s, purpose: 'personalize', decision: 'withdrawn' }], ctx);
      await c.store.transaction((trx) => c.outbox.emit(trx, [{ type: 'subject.erased', subjectId: s, purposes: [], data: {} }]));
      for (let i = 0; i < 10; i++) await dispatcher.runOnce();
      const deliveries = await c.subscriptions.deliveries(sub.id);
      const mine = await Promise.all(deliveries.map(async (d) => (await c.outbox.get(d.eventId))!));
      expect(mine.map((e) => e.type).sort()).toEqual(['consent.granted', 'consent.withdrawn', 'subject.erased']);
      expect(mine.every((e) => e.subject === s)).toBe(true);
      expect(deliveries.every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
      expect(got.some((e) => e.subject === older && deliveries.some((d) => d.eventId === e.id))).toBe(false);
      const metrics = (await c.subscriptions.metrics()).find((m) => m.id === sub.id)!;
      expect(metrics).toMatchObject({ pending: 0, delivered: 3, dead: 0, failures: 0, lag: 0 });
    });
  });
});
