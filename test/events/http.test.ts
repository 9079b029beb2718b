import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { MintedApiKey } from '../../src/auth/index.js';
import { buildServer } from '../../src/server/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

describe.each(STORE_KINDS)('events HTTP API on %s', (kind) => {
  let c: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let admin: MintedApiKey;
  let reader: MintedApiKey;
  let other: MintedApiKey;
  const auth = (k: MintedApiKey) => ({ authorization: `Bearer ${k.secret}` });

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind));
    app = await buildServer(c, { logLevel: false });
    admin = await c.apiKeys.create({ name: 'events admin', scopes: ['events:admin', 'events:read'], createdBy: 'test' });
    reader = await c.apiKeys.create({ name: 'events reader', scopes: ['events:read'], createdBy: 'test' });
    other = await c.apiKeys.create({ name: 'consent', scopes: ['consent:read'], createdBy: 'test' });
  });
  afterAll(async () => {
    await app.close();
    await cleanup();
  });

  it('needs a key (401) with the events scopes (403)', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/events/subscriptions' })).statusCode).toBe(401);
    const forbidden = await app.inject({ method: 'GET', url: '/v1/events', headers: auth(other) });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toMatchObject({ error: { code: 'CST_ERR_AUTH_FORBIDDEN', details: { required: 'events:read' } } });
    const create = await app.inject({ method: 'POST', url: '/v1/events/subscriptions', headers: auth(reader), payload: { name: 'x', target: { kind: 'webhook', url: 'https://example.com' } } });
    expect(create.statusCode).toBe(403);
  });

  it('creates (secret once), lists, gets, queries deliveries, replays and deletes', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/events/subscriptions', headers: auth(admin), payload: { name: 'crm', target: { kind: 'webhook', url: 'https://user:pw@hooks.example.com/in' }, types: ['consent.granted'] } });
    expect(res.statusCode).toBe(201);
    const created = res.json<{ id: string; secret: string; target: { url: string } }>();
    expect(created.secret).toMatch(/^whsec_/);
    expect(created.target.url).toBe('https://hooks.example.com/in');
    const list = await app.inject({ method: 'GET', url: '/v1/events/subscriptions', headers: auth(reader) });
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(created.secret);
    expect(list.body).not.toContain('pw@');
    const one = await app.inject({ method: 'GET', url: `/v1/events/subscriptions/${created.id}`, headers: auth(reader) });
    expect(one.json()).toMatchObject({ id: created.id, name: 'crm', kind: 'webhook', types: ['consent.granted'], purposes: [], maxAttempts: 12 });
    expect(one.json()).not.toHaveProperty('secret');

    await c.ledger.record([{ subjectId: 'http-subject-1', purpose: 'personalize', decision: 'granted' }], { actor: 'test' });
    const head = await c.outbox.head();
    await c.dispatcher.fanOut();
    const deliveries = await app.inject({ method: 'GET', url: `/v1/events/subscriptions/${created.id}/deliveries?status=pending`, headers: auth(reader) });
    expect(deliveries.statusCode).toBe(200);
    expect(deliveries.json()).toMatchObject({ deliveries: [{ seq: head, status: 'pending', attempts: 0 }] });

    const events = await app.inject({ method: 'GET', url: `/v1/events?after=${head - 1}&limit=10`, headers: auth(reader) });
    expect(events.json()).toMatchObject({ events: [{ specversion: '1.0', type: 'consent.granted', subject: 'http-subject-1', sequence: String(head) }], next: null });

    const replay = await app.inject({ method: 'POST', url: `/v1/events/subscriptions/${created.id}/replay`, headers: auth(admin), payload: { fromSeq: 1 } });
    expect(replay.statusCode).toBe(202);
    expect(replay.json()).toEqual({ queued: 1 });
    const both = await app.inject({ method: 'POST', url: `/v1/events/subscriptions/${created.id}/replay`, headers: auth(admin), payload: { fromSeq: 1, fromTime: '2026-01-01T00:00:00.000Z' } });
    expect(both.statusCode).toBe(400);
    expect(both.json()).toMatchObject({ error: { code: 'CST_ERR_VALIDATION' } });

    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain(`custodian_event_deliveries_pending{subscription="${created.id}"} 1`);
    expect(metrics.body).toContain(`custodian_event_subscription_lag{subscription="${created.id}"} 1`);

    expect((await app.inject({ method: 'DELETE', url: `/v1/events/subscriptions/${created.id}`, headers: auth(admin) })).statusCode).toBe(204);
    const gone = await app.inject({ method: 'GET', url: `/v1/events/subscriptions/${created.id}`, headers: auth(reader) });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toMatchObject({ error: { code: 'CST_ERR_EVENT_SUBSCRIPTION_NOT_FOUND' } });
  });

  it('never answers 5xx to random subscriptions, queries and replays', async () => {
    const url = fc.oneof(fc.constantFrom('https://hooks.example.com/x', 'nats://127.0.0.1:4222', 'redis://:pw@127.0.0.1:6379/0', 'nats://a b', 'redis://', 'http://', 'ftp://x'), fc.webUrl(), fc.string({ maxLength: 30 }));
    const body = fc.record(
      {
        name: fc.string({ maxLength: 210 }),
        target: fc.record({ kind: fc.constantFrom('webhook', 'nats', 'redis', 'x'), url, secret: fc.string({ maxLength: 40 }), timeoutMs: fc.integer({ min: -1, max: 100_000 }), stream: fc.string({ maxLength: 80 }), subjectPrefix: fc.string({ maxLength: 20 }), maxLen: fc.oneof(fc.integer({ min: -1, max: 10 }), fc.constant(1e12)) }, { requiredKeys: ['kind', 'url'] }),
        types: fc.array(fc.constantFrom('consent.granted', 'nope'), { maxLength: 3 }),
        purposes: fc.array(fc.string({ maxLength: 12 }), { maxLength: 2 }),
        maxAttempts: fc.integer({ min: -1, max: 200 }),
      },
      { requiredKeys: ['name', 'target'] },
    );
    const num = fc.oneof(fc.constantFrom('0', '1', '-1', '1e3', '999999999999999', '99999999999999999999', 'x', ''), fc.nat().map(String));
    await fc.assert(
      fc.asyncProperty(body, num, num, async (payload, after, limit) => {
        const created = await app.inject({ method: 'POST', url: '/v1/events/subscriptions', headers: auth(admin), payload });
        expect(created.statusCode, created.body).toBeLessThan(500);
        const read = await app.inject({ method: 'GET', url: `/v1/events?after=${encodeURIComponent(after)}&limit=${encodeURIComponent(limit)}`, headers: auth(reader) });
        expect(read.statusCode, read.body).toBeLessThan(500);
        const id = created.statusCode === 201 ? created.json<{ id: string }>().id : '0190a000-0000-7000-8000-000000000000';
        const deliveries = await app.inject({ method: 'GET', url: `/v1/events/subscriptions/${id}/deliveries?before=${encodeURIComponent(after)}`, headers: auth(reader) });
        expect(deliveries.statusCode, deliveries.body).toBeLessThan(500);
        const replay = await app.inject({ method: 'POST', url: `/v1/events/subscriptions/${id}/replay`, headers: auth(admin), payload: { fromSeq: Number(after) } });
        expect(replay.statusCode, replay.body).toBeLessThan(500);
      }),
      { numRuns: 60 },
    );
  });

  it('answers typed validation errors for bad subscriptions', async () => {
    for (const payload of [
      { name: 'x', target: { kind: 'webhook', url: 'ftp://example.com' } },
      { name: 'x', target: { kind: 'nats', url: 'https://example.com' } },
      { name: 'x', target: { kind: 'webhook', url: 'https://example.com' }, types: ['consent.nope'] },
      { name: 'x', target: { kind: 'webhook', url: 'https://example.com' }, extra: 1 },
    ]) {
      const res = await app.inject({ method: 'POST', url: '/v1/events/subscriptions', headers: auth(admin), payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'CST_ERR_VALIDATION' } });
    }
    const missing = await app.inject({ method: 'GET', url: '/v1/events/subscriptions/0190a000-0000-7000-8000-000000000000/deliveries', headers: auth(reader) });
    expect(missing.statusCode).toBe(404);
  });
});
