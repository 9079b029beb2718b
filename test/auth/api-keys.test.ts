import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { isCustodianError } from '../../src/core/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

describe.each(STORE_KINDS)('API keys on %s', (kind) => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind));
  });
  afterAll(async () => cleanup());

  it('stores only a digest of the secret and authenticates by it', async () => {
    const k = await c.apiKeys.create({ name: 'svc', scopes: ['consent:read'], createdBy: 'test' });
    expect(k.secret).toMatch(/^cst_[A-Za-z0-9_-]{43}$/);
    const rows = await c.store.db.selectFrom('api_keys').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(k.secret);
    expect(await c.apiKeys.authenticate(k.secret)).toEqual({ id: k.id, name: 'svc', scopes: ['consent:read'] });
    await expect(c.apiKeys.authenticate(k.secret + 'x')).rejects.toMatchObject({ code: 'CST_ERR_AUTH_INVALID' });
  });

  it('seeds the first admin once, and checks a chosen key on every start', async () => {
    const chosen = 'a-chosen-admin-key-of-enough-length';
    const first = await c.apiKeys.ensureAdmin(chosen);
    expect(first?.secret).toBe(chosen);
    expect(await c.apiKeys.ensureAdmin(chosen)).toBeNull();
    const err = await c.apiKeys.ensureAdmin('short').catch((e: unknown) => e);
    expect(isCustodianError(err, 'CST_ERR_CONFIG')).toBe(true);
  });

  // PostgreSQL only: several replicas share one PostgreSQL store; SQLite replicas are separate processes whose
  // BEGIN IMMEDIATE serialises them (better-sqlite3 blocks its thread, so in-process replicas cannot model them).
  if (kind === 'postgres') it('replicas bootstrapping together on an empty store mint exactly one admin key', async () => {
    const { createCustodian } = await import('../../src/app/index.js');
    const { storeFixture } = await import('../support/stores.js');
    const fresh = await storeFixture(kind);
    const replicas = await Promise.all([1, 2, 3].map(() => createCustodian({ ...c.config, dbUrl: fresh.url })));
    try {
      const minted = await Promise.all(replicas.map((r) => r.apiKeys.ensureAdmin()));
      expect(minted.filter((m) => m !== null)).toHaveLength(1);
      expect(await replicas[0]!.apiKeys.list()).toHaveLength(1);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
      await fresh.cleanup();
    }
  });

  it('a revoked key stops authenticating at once in this process', async () => {
    const k = await c.apiKeys.create({ name: 'tmp', scopes: ['consent:write'], createdBy: 'test' });
    await c.apiKeys.authenticate(k.secret);
    expect(await c.apiKeys.revoke(k.id)).toBe(true);
    expect(await c.apiKeys.revoke(k.id)).toBe(false);
    await expect(c.apiKeys.authenticate(k.secret)).rejects.toMatchObject({ code: 'CST_ERR_AUTH_INVALID' });
  });

  it('rejects empty or unknown scopes', async () => {
    await expect(c.apiKeys.create({ name: 'x', scopes: [], createdBy: 'test' })).rejects.toMatchObject({ code: 'CST_ERR_VALIDATION' });
    await expect(c.apiKeys.create({ name: 'x', scopes: ['root' as never], createdBy: 'test' })).rejects.toMatchObject({ code: 'CST_ERR_VALIDATION' });
  });
});
