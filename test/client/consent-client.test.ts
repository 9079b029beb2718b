import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { MintedApiKey } from '../../src/auth/index.js';
import { ConsentClient, type BusOptions } from '../../src/client/index.js';
import { ManualClock, uuidv7 } from '../../src/core/index.js';
import { natsTarget } from '../../src/events/targets/nats.js';
import { redisStreamsTarget } from '../../src/events/targets/redis-streams.js';
import type { DeliveryTarget } from '../../src/events/targets/target.js';
import type { ConsentEventInput } from '../../src/ledger/index.js';
import { buildServer } from '../../src/server/index.js';
import { custodianFixture } from '../support/stores.js';
import { CI, NATS_URL, PrivateNats, REDIS_URL, natsUp, randomName, redisUp } from '../events/targets-support.js';

const [natsOk, redisOk] = await Promise.all([natsUp(), redisUp()]);
const ANALYTICS = 'analytics.reporting';
const SERVICE = 'essential.service'; // contract basis
const IMPROVE = 'functional.service.improve'; // legitimate interests: objectable

/** A bus for one suite: the client's options, the target feeding it, and how to remove its stream afterwards. */
interface TestBus {
  readonly bus: BusOptions;
  readonly target: DeliveryTarget;
  readonly drop: () => Promise<void>;
}

/** Polls `fn` until it returns true, failing after `ms`. */
async function until(fn: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('consent snapshot route and ConsentClient', () => {
  let custodian: Custodian;
  let cleanup: () => Promise<void>;
  let app: FastifyInstance;
  let baseUrl: string;
  let reader: MintedApiKey;
  let writer: MintedApiKey;
  const run = randomName();
  let n = 0;
  const subject = (label: string) => `${label}-${run}-${++n}`;

  beforeAll(async () => {
    const f = await custodianFixture('sqlite');
    custodian = f.custodian;
    cleanup = f.cleanup;
    app = await buildServer(custodian, { logLevel: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    reader = await custodian.apiKeys.create({ name: 'client', scopes: ['consent:read'], createdBy: 'test' });
    writer = await custodian.apiKeys.create({ name: 'writer', scopes: ['consent:write'], createdBy: 'test' });
  });

  afterAll(async () => {
    await app?.close();
    await cleanup?.();
  });

  const record = (events: ConsentEventInput[]) => custodian.ledger.record(events, { actor: 'test' });

  /** Delivers every outbox event after `cursor.seq` through `target`, as the dispatcher would. */
  async function pump(target: DeliveryTarget, cursor: { seq: number }): Promise<number> {
    let sent = 0;
    for (;;) {
      const events = await custodian.outbox.read(cursor.seq, 500);
      if (events.length === 0) return sent;
      const outcomes = await target.deliver(events);
      expect(outcomes.every((o) => o.ok)).toBe(true);
      cursor.seq = Number(events[events.length - 1]!.sequence);
      sent += events.length;
    }
  }

  describe('GET /v1/consent/snapshot', () => {
    it('pages the projection in (subject, purpose) order with a stable sequence, and filters by purpose', async () => {
      const a = subject('snap-a');
      const b = subject('snap-b');
      await record([
        { subjectId: a, purpose: ANALYTICS, decision: 'granted' },
        { subjectId: a, purpose: 'personalize', decision: 'denied' },
        { subjectId: b, purpose: ANALYTICS, decision: 'withdrawn' },
      ]);
      const get = (url: string, key: MintedApiKey | null = reader) =>
        app.inject({ method: 'GET', url, headers: key === null ? {} : { authorization: `Bearer ${key.secret}` } });
      const head = await custodian.outbox.head();
      const rows: Array<{ subjectId: string; purpose: string; decision: string; eventId: string; expiresAt: string | null }> = [];
      let after: string | null = null;
      let sequence: string | undefined;
      do {
        const res = await get(`/v1/consent/snapshot?limit=1${after === null ? '' : `&after=${after}`}`);
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json<{ states: typeof rows; next: string | null; sequence: string; restrictions: unknown[]; restrictionsComplete: boolean }>();
        expect(body.states.length).toBeLessThanOrEqual(1);
        sequence ??= body.sequence;
        expect(body.sequence).toBe(sequence);
        expect(body.restrictionsComplete).toBe(true);
        rows.push(...body.states);
        after = body.next;
      } while (after !== null);
      expect(sequence).toBe(String(head));
      const ours = rows.filter((r) => r.subjectId === a || r.subjectId === b);
      expect(ours.map((r) => [r.subjectId, r.purpose, r.decision])).toEqual([
        [a, ANALYTICS, 'granted'],
        [a, 'personalize', 'denied'],
        [b, ANALYTICS, 'withdrawn'],
      ]);
      expect(ours[0]!.expiresAt).toMatch(/Z$/);
      const keys = rows.map((r) => `${r.subjectId}\u0000${r.purpose}`);
      expect([...keys].sort()).toEqual(keys);

      const filtered = (await get(`/v1/consent/snapshot?purpose=personalize&limit=10000`)).json<{ states: typeof rows }>();
      expect(filtered.states.every((r) => r.purpose === 'personalize')).toBe(true);
      expect(filtered.states.some((r) => r.subjectId === a)).toBe(true);

      expect((await get('/v1/consent/snapshot?after=not-a-cursor')).statusCode).toBe(400);
      expect((await get('/v1/consent/snapshot?limit=10001')).statusCode).toBe(400);
      expect((await get('/v1/consent/snapshot?purpose=nope.nope')).statusCode).toBe(400);
      expect((await get('/v1/consent/snapshot', null)).statusCode).toBe(401);
      expect((await get('/v1/consent/snapshot', writer)).statusCode).toBe(403);
    });

    it('lists restricted subjects on the first page', async () => {
      const r = subject('snap-r');
      await record([{ subjectId: r, purpose: ANALYTICS, decision: 'granted' }]);
      await custodian.ledger.restrict(r, { reason: 'accuracy_contested', actor: 'test' });
      const res = await app.inject({ method: 'GET', url: '/v1/consent/snapshot?limit=1', headers: { authorization: `Bearer ${reader.secret}` } });
      const body = res.json<{ restrictions: Array<{ subjectId: string; eventId: string }>; next: string }>();
      expect(body.restrictions.map((x) => x.subjectId)).toContain(r);
      const page2 = await app.inject({ method: 'GET', url: `/v1/consent/snapshot?limit=1&after=${body.next}`, headers: { authorization: `Bearer ${reader.secret}` } });
      expect(page2.json<{ restrictions: unknown[] }>().restrictions).toEqual([]);
      await custodian.ledger.liftRestriction(r, { reason: 'accuracy_verified', actor: 'test' });
    });
  });

  describe.each([
    ['nats', natsOk, (): TestBus => {
      const stream = `CST_CLIENT_${randomName()}`;
      const subjectPrefix = `cst.client.${randomName()}`;
      return {
        bus: { kind: 'nats', url: NATS_URL, stream, subjectPrefix },
        target: natsTarget({ url: NATS_URL, stream, subjectPrefix }),
        drop: async () => {
          const nc = await connect({ servers: NATS_URL });
          await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
          await nc.close();
        },
      };
    }],
    ['redis', redisOk, (): TestBus => {
      const stream = `cst-test-${randomName()}:events`;
      return {
        bus: { kind: 'redis', url: REDIS_URL, stream, blockMs: 200 },
        target: redisStreamsTarget({ url: REDIS_URL, stream }),
        drop: async () => {
          const r = new Redis(REDIS_URL);
          await r.del(stream);
          r.disconnect();
        },
      };
    }],
  ] as const)('ConsentClient over %s', (_kind, reachable, makeBus) => {
    const ready = reachable || CI;
    let client: ConsentClient;
    let target: DeliveryTarget;
    let drop: (() => Promise<void>) | undefined;
    const cursor = { seq: 0 };
    const before = { granted: '', denied: '', objected: '' };

    beforeAll(async () => {
      if (!ready) return;
      const bus = makeBus();
      target = bus.target;
      drop = bus.drop;
      before.granted = subject('cold-granted');
      before.denied = subject('cold-denied');
      before.objected = subject('cold-objected');
      await record([
        { subjectId: before.granted, purpose: ANALYTICS, decision: 'granted' },
        { subjectId: before.denied, purpose: ANALYTICS, decision: 'denied' },
        { subjectId: before.objected, purpose: IMPROVE, decision: 'withdrawn' },
      ]);
      cursor.seq = await custodian.outbox.head();
      client = new ConsentClient({ baseUrl, apiKey: reader.secret, bus: bus.bus, snapshotPageSize: 2 });
      await client.start();
    });

    afterAll(async () => {
      await client?.close();
      await target?.close();
      await drop?.();
    });

    it.skipIf(!ready)('cold start: answers from the snapshot, mirroring the server for every legal basis', async () => {
      expect(client.isAllowed(before.granted, ANALYTICS)).toBe(true);
      expect(client.isAllowed(before.denied, ANALYTICS)).toBe(false);
      // No decision on a contract purpose: allowed; an objection on legitimate interests: not allowed.
      expect(client.isAllowed(before.granted, SERVICE)).toBe(true);
      expect(client.isAllowed(before.granted, 'personalize')).toBe(false);
      expect(client.isAllowed(before.objected, IMPROVE)).toBe(false);
      expect(client.isAllowed(before.objected, SERVICE)).toBe(true);
      // Unknown subject or purpose: memory cannot tell.
      expect(client.isAllowed(subject('never-seen'), ANALYTICS)).toBeUndefined();
      expect(client.isAllowed(before.granted, 'no.such.purpose')).toBeUndefined();
      for (const s of Object.values(before)) {
        for (const p of [ANALYTICS, SERVICE, IMPROVE, 'personalize']) {
          expect(client.isAllowed(s, p), `${s} ${p}`).toBe((await custodian.ledger.check(s, p)).allowed);
        }
      }
      expect(client.staleness()).toBe(0);
    });

    it.skipIf(!ready)('a recorded withdrawal reaches the client: isAllowed flips to false', async () => {
      const changes: string[] = [];
      const stop = client.onChange((c) => changes.push(c.cause));
      await record([{ subjectId: before.granted, purpose: ANALYTICS, decision: 'withdrawn' }]);
      const sentAt = Date.now();
      await pump(target, cursor);
      await until(() => client.isAllowed(before.granted, ANALYTICS) === false, 5000, 'the withdrawal');
      const latency = Date.now() - sentAt;
      expect(latency).toBeLessThan(2000);
      expect(changes).toContain('consent.withdrawn');
      expect(client.lastEvent?.sequence).toBe(String(cursor.seq));
      stop();
    });

    it.skipIf(!ready)('events are applied only when newer: redelivery and older events change nothing', async () => {
      const s = subject('order');
      await record([{ subjectId: s, purpose: ANALYTICS, decision: 'granted' }]);
      const grant = await custodian.outbox.read(cursor.seq, 10);
      await record([{ subjectId: s, purpose: ANALYTICS, decision: 'withdrawn' }]);
      await pump(target, cursor);
      await until(() => client.isAllowed(s, ANALYTICS) === false, 5000, 'the withdrawal');
      // The grant again (a redelivery, or an out-of-order arrival): older than the held withdrawal.
      expect((await target.deliver(grant)).every((o) => o.ok)).toBe(true);
      const marker = subject('marker');
      await record([{ subjectId: marker, purpose: ANALYTICS, decision: 'granted' }]);
      await pump(target, cursor);
      await until(() => client.isAllowed(marker, ANALYTICS) === true, 5000, 'the marker');
      expect(client.isAllowed(s, ANALYTICS)).toBe(false);
    });

    it.skipIf(!ready)('a miss falls back to GET /v1/consent/check and caches the answer until a newer event', async () => {
      const s = subject('http');
      await record([{ subjectId: s, purpose: ANALYTICS, decision: 'granted' }]);
      // Not delivered yet: memory does not know the subject.
      expect(client.isAllowed(s, ANALYTICS)).toBeUndefined();
      expect(await client.check(s, ANALYTICS)).toBe(true);
      expect(client.isAllowed(s, ANALYTICS)).toBe(true);
      // Another purpose of a subject known only over HTTP is still unknown.
      expect(client.isAllowed(s, 'personalize')).toBeUndefined();
      await expect(client.check(s, 'no.such.purpose')).rejects.toMatchObject({ code: 'CST_ERR_CONSENT_UNKNOWN_PURPOSE' });
      await record([{ subjectId: s, purpose: ANALYTICS, decision: 'withdrawn' }]);
      await pump(target, cursor);
      await until(() => client.isAllowed(s, ANALYTICS) === false, 5000, 'the withdrawal');
    });

    it.skipIf(!ready)('subject.erased drops the subject; restriction allows no purpose but legal obligations', async () => {
      const erased = subject('erased');
      const restricted = subject('restricted');
      await record([
        { subjectId: erased, purpose: ANALYTICS, decision: 'granted' },
        { subjectId: restricted, purpose: ANALYTICS, decision: 'granted' },
      ]);
      await pump(target, cursor);
      await until(() => client.isAllowed(erased, ANALYTICS) === true && client.isAllowed(restricted, ANALYTICS) === true, 5000, 'the grants');

      await custodian.store.transaction((trx) =>
        custodian.outbox.emit(trx, [{ type: 'subject.erased', subjectId: erased, purposes: [], data: { requestId: uuidv7(), status: 'completed' } }]),
      );
      await custodian.ledger.restrict(restricted, { reason: 'accuracy_contested', actor: 'test' });
      await pump(target, cursor);
      await until(() => client.isAllowed(erased, ANALYTICS) === undefined, 5000, 'the erasure');
      await until(() => client.isAllowed(restricted, ANALYTICS) === false, 5000, 'the restriction');
      expect(client.isAllowed(restricted, SERVICE)).toBe(false);
      expect(client.isAllowed(restricted, SERVICE)).toBe((await custodian.ledger.check(restricted, SERVICE)).allowed);

      await custodian.ledger.liftRestriction(restricted, { reason: 'accuracy_verified', actor: 'test' });
      await pump(target, cursor);
      await until(() => client.isAllowed(restricted, ANALYTICS) === true, 5000, 'the lifting');
      expect(client.isAllowed(restricted, SERVICE)).toBe(true);
    });

    it.skipIf(!ready)('memory freed by subject.erased is reused without the erased decisions reaching the next subject', async () => {
      const gone = subject('reuse-gone');
      await record([
        { subjectId: gone, purpose: ANALYTICS, decision: 'granted' },
        { subjectId: gone, purpose: 'personalize', decision: 'granted' },
        { subjectId: gone, purpose: IMPROVE, decision: 'withdrawn' },
      ]);
      await pump(target, cursor);
      await until(() => client.isAllowed(gone, 'personalize') === true, 5000, 'the grants');
      const held = client.memoryStats().subjects;
      await custodian.store.transaction((trx) =>
        custodian.outbox.emit(trx, [{ type: 'subject.erased', subjectId: gone, purposes: [], data: { requestId: uuidv7(), status: 'completed' } }]),
      );
      await pump(target, cursor);
      await until(() => client.isAllowed(gone, ANALYTICS) === undefined, 5000, 'the erasure');
      expect(client.memoryStats().subjects).toBe(held - 1);

      // The next subject takes the freed row and cells: it must answer its own decisions only.
      const next = subject('reuse-next');
      await record([{ subjectId: next, purpose: ANALYTICS, decision: 'denied' }]);
      await pump(target, cursor);
      await until(() => client.isAllowed(next, ANALYTICS) === false, 5000, 'the next subject');
      expect(client.memoryStats().subjects).toBe(held);
      for (const p of [ANALYTICS, 'personalize', IMPROVE, SERVICE]) {
        expect(client.isAllowed(next, p), p).toBe((await custodian.ledger.check(next, p)).allowed);
      }
      for (const p of [ANALYTICS, 'personalize', IMPROVE]) expect(client.isAllowed(gone, p), p).toBeUndefined();
    });
  });

  it('expiry is decided by the clock, without waiting for consent.expired; a client without a bus ages', async () => {
    const s = subject('expiry');
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    await record([{ subjectId: s, purpose: ANALYTICS, decision: 'granted', expiresAt }]);
    const clock = new ManualClock(Date.now());
    const client = new ConsentClient({ baseUrl, apiKey: reader.secret, clock, maxStalenessMs: 60_000, purposes: [ANALYTICS, SERVICE] });
    await client.start();
    try {
      expect(client.isAllowed(s, ANALYTICS)).toBe(true);
      // Purposes outside the client's scope are not answered from memory.
      expect(client.isAllowed(s, 'personalize')).toBeUndefined();
      clock.advance(3_600_000);
      expect(client.isAllowed(s, ANALYTICS)).toBe(false);
      expect(client.staleness()).toBeLessThan(60_000);
    } finally {
      await client.close();
    }
  });

  it.skipIf(!CI && !natsOk)('fails closed when the bus is gone longer than maxStalenessMs, and recovers', { timeout: 60_000 }, async () => {
    const nats = await PrivateNats.start();
    const bus: BusOptions = { kind: 'nats', url: nats.url, heartbeatMs: 500 };
    const target = natsTarget({ url: nats.url, ackTimeoutMs: 1000 });
    const client = new ConsentClient({ baseUrl, apiKey: reader.secret, bus, maxStalenessMs: 1000 });
    try {
      const yes = subject('stale-yes');
      const no = subject('stale-no');
      await record([
        { subjectId: yes, purpose: ANALYTICS, decision: 'granted' },
        { subjectId: no, purpose: ANALYTICS, decision: 'denied' },
      ]);
      await client.start();
      expect(client.isAllowed(yes, ANALYTICS)).toBe(true);
      await nats.down();
      await until(() => client.staleness() > 1000, 10_000, 'staleness');
      // The stale "yes" is withheld; the "no" stays: failing closed.
      await until(() => client.isAllowed(yes, ANALYTICS) === undefined, 5000, 'fail closed');
      expect(client.isAllowed(no, ANALYTICS)).toBe(false);
      // check() asks the server instead.
      expect(await client.check(yes, ANALYTICS)).toBe(true);
      await nats.up();
      const cursor = { seq: await custodian.outbox.head() };
      await record([{ subjectId: yes, purpose: ANALYTICS, decision: 'withdrawn' }]);
      await pump(target, cursor);
      await until(() => client.isAllowed(yes, ANALYTICS) === false, 15_000, 'the withdrawal after the restart');
      await until(() => client.staleness() === 0, 5000, 'healthy again');
    } finally {
      await client.close();
      await target.close();
      await nats.stop();
    }
  });
});
