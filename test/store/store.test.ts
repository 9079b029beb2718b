import { stat } from 'node:fs/promises';
import { sql } from 'kysely';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { installErrorHandler } from '../../src/server/error-handler.js';
import { isRetryableConflict, openStore, storeUnavailableReason, type Store } from '../../src/store/index.js';
import { STORE_KINDS, storeFixture, type StoreFixture } from '../support/stores.js';

describe.each(STORE_KINDS)('store on %s', (kind) => {
  let fixture: StoreFixture;
  let store: Store;
  beforeAll(async () => {
    fixture = await storeFixture(kind);
    store = openStore(fixture.url);
  });
  afterAll(async () => {
    await store.close();
    await fixture.cleanup();
  });

  it('migrates forward once; a second run applies nothing', async () => {
    const first = await store.migrate();
    expect(first.applied).toEqual(['0001_consent_ledger', '0002_consent_state_guard', '0003_keyring', '0004_audit_log', '0005_datamap', '0006_requests', '0007_event_outbox', '0008_event_delivery', '0009_restrictions', '0010_retention', '0011_incidents', '0012_key_purposes', '0013_privacy_sessions']);
    const second = await store.migrate();
    expect(second.applied).toEqual([]);
    expect(second.current).toEqual(['0001_consent_ledger', '0002_consent_state_guard', '0003_keyring', '0004_audit_log', '0005_datamap', '0006_requests', '0007_event_outbox', '0008_event_delivery', '0009_restrictions', '0010_retention', '0011_incidents', '0012_key_purposes', '0013_privacy_sessions']);
  });

  it('rolls a failed transaction back', async () => {
    await expect(
      store.transaction(async (trx) => {
        await trx.insertInto('purposes').values({
          key: 'tx.test', title: 't', description: '', legal_basis: 'consent', consent_required: 1, default_expiry_months: null, jurisdictions: '["*"]', gpc_opt_out: 0,
          created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z',
        }).execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await store.db.selectFrom('purposes').select('key').where('key', '=', 'tx.test').executeTakeFirst()).toBeUndefined();
  });

  it('announces consent changes to other connections only when the transaction commits', async () => {
    await store.migrate();
    const seen: Array<readonly string[] | null> = [];
    const watch = await store.watchChanges((topic, ids) => seen.push(topic === null ? null : ids));
    try {
      expect(watch.healthy).toBe(true);
      seen.length = 0;
      const other = openStore(fixture.url); // another process's connection
      try {
        await other.transaction(async (trx) => {
          await other.announceChange(trx, 'consent', ['rolled-back']);
          await sql`insert into purposes (key, title, description, legal_basis, consent_required, jurisdictions, gpc_opt_out, created_at, updated_at)
            values ('x.rolled', 't', '', 'contract', 0, '[]', 0, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`.execute(trx);
          throw new Error('rollback');
        }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 150));
        expect(seen).toEqual([]);
        await other.transaction(async (trx) => {
          await other.announceChange(trx, 'consent', ['s-1', 's-2']);
          await sql`insert into purposes (key, title, description, legal_basis, consent_required, jurisdictions, gpc_opt_out, created_at, updated_at)
            values ('x.committed', 't', '', 'contract', 0, '[]', 0, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`.execute(trx);
        });
        // PostgreSQL names the subjects; SQLite only knows that another connection committed.
        await vi.waitFor(() => expect(seen).toContainEqual(kind === 'postgres' ? ['s-1', 's-2'] : null), { timeout: 2000, interval: 10 });
      } finally {
        await other.close();
      }
    } finally {
      await watch.stop();
    }
  });

  if (kind === 'postgres') {
    it('recovers the change feed after its connection is killed, telling the listener to distrust its cache', async () => {
      const seen: Array<readonly string[] | null> = [];
      const watch = await store.watchChanges((topic, ids) => seen.push(topic === null ? null : ids));
      try {
        seen.length = 0;
        await sql`select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and query like 'listen custodian_changes%' and pid <> pg_backend_pid()`.execute(store.db);
        await vi.waitFor(() => expect(seen).toContain(null), { timeout: 2000, interval: 10 });
        await vi.waitFor(() => expect(watch.healthy).toBe(true), { timeout: 5000, interval: 20 });
        seen.length = 0;
        await store.transaction(async (trx) => store.announceChange(trx, 'keys', ['after-reconnect']));
        await vi.waitFor(() => expect(seen).toContainEqual(['after-reconnect']), { timeout: 2000, interval: 10 });
      } finally {
        await watch.stop();
      }
    });

    it('lockAll holds every key until the transaction ends, taken in one order by every caller', async () => {
      const other = openStore(fixture.url);
      try {
        const order: string[] = [];
        let locked!: () => void;
        const held = new Promise<void>((r) => (locked = r));
        let finish!: () => void;
        const done = new Promise<void>((r) => (finish = r));
        const first = store.transaction(async (trx) => {
          await store.lockAll(trx, ['k:b', 'k:a', 'k:c', 'k:a']);
          locked();
          await done;
          order.push('first commits');
        });
        await held;
        // A single lock on one of the keys waits for the first transaction; so does a set in another order.
        const second = other.transaction(async (trx) => {
          await other.lock(trx, 'k:c');
          order.push('second has k:c');
        });
        const third = other.transaction(async (trx) => {
          await other.lockAll(trx, ['k:c', 'k:b']);
          order.push('third has k:b, k:c');
        });
        await new Promise((r) => setTimeout(r, 150));
        expect(order).toEqual([]);
        finish();
        await Promise.all([first, second, third]);
        expect(order[0]).toBe('first commits');
        expect(order).toHaveLength(3);
      } finally {
        await other.close();
      }
    });

    it('re-runs a transaction after a deadlock, and gives up after three attempts', async () => {
      let attempts = 0;
      const result = await store.transaction(async (trx) => {
        attempts++;
        await sql`select 1`.execute(trx);
        if (attempts < 3) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
        return 'done';
      });
      expect({ result, attempts }).toEqual({ result: 'done', attempts: 3 });
      attempts = 0;
      await expect(
        store.transaction(async () => {
          attempts++;
          throw Object.assign(new Error('could not serialize'), { code: '40001' });
        }),
      ).rejects.toThrow('could not serialize');
      expect(attempts).toBe(3);
    });
  }

  if (kind === 'sqlite') {
    it('keeps the database file and its WAL owner-only (0600)', async () => {
      await store.migrate();
      const path = fixture.url.slice('sqlite:'.length);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(`${path}-wal`)).mode & 0o777).toBe(0o600);
    });
  }
});

describe('store errors', () => {
  it('classifies unavailability and retryable conflicts', () => {
    expect(storeUnavailableReason(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(storeUnavailableReason(Object.assign(new Error('x'), { code: '08006' }))).toBe('08006');
    expect(storeUnavailableReason(Object.assign(new Error('x'), { code: 'SQLITE_BUSY' }))).toBe('SQLITE_BUSY');
    expect(storeUnavailableReason(new Error('timeout exceeded when trying to connect'))).toBe('connection');
    expect(storeUnavailableReason(Object.assign(new Error('x'), { code: '23505' }))).toBeUndefined();
    expect(isRetryableConflict({ code: '40P01' })).toBe(true);
    expect(isRetryableConflict({ code: '23505' })).toBe(false);
  });

  it('answers an unreachable store with 503 CST_ERR_UNAVAILABLE and Retry-After, never a 500', async () => {
    const app = Fastify();
    installErrorHandler(app);
    app.get('/down', async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    });
    const res = await app.inject({ method: 'GET', url: '/down' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toMatchObject({ error: { code: 'CST_ERR_UNAVAILABLE' } });
    expect(res.body).not.toContain('127.0.0.1');
    await app.close();
  });
});
