import { stat } from 'node:fs/promises';
import { sql } from 'kysely';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    expect(first.applied).toEqual(['0001_consent_ledger', '0002_consent_state_guard']);
    const second = await store.migrate();
    expect(second.applied).toEqual([]);
    expect(second.current).toEqual(['0001_consent_ledger', '0002_consent_state_guard']);
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

  if (kind === 'postgres') {
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
