import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { buildServer } from '../../src/server/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

describe.each(STORE_KINDS)('crypto API on %s', (kind) => {
  let c: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let crypto: string;
  let admin: string;
  let reader: string;
  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind));
    app = await buildServer(c, { logLevel: false });
    crypto = (await c.apiKeys.create({ name: 'svc', scopes: ['crypto'], createdBy: 'test' })).secret;
    admin = (await c.apiKeys.create({ name: 'admin', scopes: ['admin'], createdBy: 'test' })).secret;
    reader = (await c.apiKeys.create({ name: 'reader', scopes: ['consent:read'], createdBy: 'test' })).secret;
  });
  afterAll(async () => {
    await app.close();
    await cleanup();
  });
  const post = (url: string, body: unknown, key = crypto) => app.inject({ method: 'POST', url, payload: body as object, headers: { authorization: `Bearer ${key}` } });

  it('encrypts, decrypts, and tells a moved or altered value apart', async () => {
    const enc = await post('/v1/crypto/encrypt', { subjectId: 'api-1', plaintext: 'ada@example.com', context: 'crm.contacts.email:7' });
    expect(enc.statusCode).toBe(200);
    const { ciphertext } = enc.json<{ ciphertext: string }>();
    expect((await post('/v1/crypto/decrypt', { ciphertext, context: 'crm.contacts.email:7' })).json()).toEqual({ plaintext: 'ada@example.com' });
    const moved = await post('/v1/crypto/decrypt', { ciphertext, context: 'crm.contacts.email:8' });
    expect([moved.statusCode, moved.json<{ error: { code: string } }>().error.code]).toEqual([400, 'CST_ERR_CRYPTO_WRONG_CONTEXT']);
    const b = Buffer.from(ciphertext.slice(3), 'base64url');
    b[b.length - 1]! ^= 1;
    const altered = await post('/v1/crypto/decrypt', { ciphertext: 'c2.' + b.toString('base64url'), context: 'crm.contacts.email:7' });
    expect([altered.statusCode, altered.json<{ error: { code: string } }>().error.code]).toEqual([400, 'CST_ERR_CRYPTO_TAMPERED']);
  });

  it('shreds over HTTP (admin only); afterwards decrypt answers 410 and batch decrypt reports per item', async () => {
    const a = (await post('/v1/crypto/encrypt', { subjectId: 'api-shred', plaintext: 'x', context: 'c:1' })).json<{ ciphertext: string }>().ciphertext;
    const b = (await post('/v1/crypto/encrypt', { subjectId: 'api-keep', plaintext: 'y', context: 'c:2' })).json<{ ciphertext: string }>().ciphertext;
    expect((await post('/v1/subjects/api-shred/shred', { reason: 'erasure' })).statusCode).toBe(403);
    const shred = await post('/v1/subjects/api-shred/shred', { reason: 'erasure request 9' }, admin);
    expect(shred.statusCode).toBe(200);
    expect(shred.json()).toMatchObject({ keysDestroyed: 1 });
    const gone = await post('/v1/crypto/decrypt', { ciphertext: a, context: 'c:1' });
    expect([gone.statusCode, gone.json<{ error: { code: string } }>().error.code]).toEqual([410, 'CST_ERR_CRYPTO_SHREDDED']);
    const batch = await post('/v1/crypto/decrypt/batch', { items: [{ ciphertext: a, context: 'c:1' }, { ciphertext: b, context: 'c:2' }] });
    expect(batch.json()).toEqual({ results: [{ error: { code: 'CST_ERR_CRYPTO_SHREDDED', message: expect.any(String) as string } }, { plaintext: 'y' }] });
  });

  it('computes blind indexes single and batched, and defines new ones (admin)', async () => {
    const one = (await post('/v1/crypto/blind-index', { value: 'Ada@Example.com', index: 'email' })).json<{ blindIndex: string }>();
    const many = (await post('/v1/crypto/blind-index/batch', { items: [{ value: 'ada@example.com', index: 'email' }] })).json<{ results: Array<{ blindIndex: string }> }>();
    expect(many.results[0]!.blindIndex).toBe(one.blindIndex);
    const define = await app.inject({ method: 'PUT', url: '/v1/crypto/blind-indexes/loyalty_no', payload: { normaliser: 'trim', bits: 48 }, headers: { authorization: `Bearer ${admin}` } });
    expect(define.json()).toEqual({ name: 'loyalty_no', normaliser: 'trim', bits: 48 });
    expect((await post('/v1/crypto/blind-index', { value: '123', index: 'loyalty_no' })).json<{ blindIndex: string }>().blindIndex).toHaveLength(8);
    const unknown = await post('/v1/crypto/blind-index', { value: '1', index: 'nope' });
    expect([unknown.statusCode, unknown.json<{ error: { code: string } }>().error.code]).toEqual([400, 'CST_ERR_CRYPTO_UNKNOWN_INDEX']);
  });

  it('lists blind index definitions (crypto scope), built-in ones marked', async () => {
    const get = (key: string) => app.inject({ method: 'GET', url: '/v1/crypto/blind-indexes', headers: { authorization: `Bearer ${key}` } });
    expect((await get(reader)).statusCode).toBe(403);
    const listed = await get(crypto);
    expect(listed.statusCode).toBe(200);
    const { indexes } = listed.json<{ indexes: Array<{ name: string; builtIn: boolean; defined: boolean }> }>();
    expect(indexes.find((i) => i.name === 'loyalty_no')).toEqual({ name: 'loyalty_no', normaliser: 'trim', bits: 48, builtIn: false, defined: true });
    expect(indexes.find((i) => i.name === 'email')).toEqual({ name: 'email', normaliser: 'email', bits: 64, builtIn: true, defined: true });
    expect(indexes.find((i) => i.name === 'phone')).toMatchObject({ builtIn: true });
  });

  it("lists a subject's shreddings for an auditor (admin only), matching the receipts", async () => {
    const get = (id: string, key = admin) => app.inject({ method: 'GET', url: `/v1/subjects/${encodeURIComponent(id)}/shreddings`, headers: { authorization: `Bearer ${key}` } });
    await post('/v1/crypto/encrypt', { subjectId: 'api-history', plaintext: 'x', context: 'c:h' });
    const receipt = (await post('/v1/subjects/api-history/shred', { reason: 'erasure request 10' }, admin)).json<{ tombstoneId: string; subjectRef: string; shreddedAt: string; keyIds: string[] }>();
    expect((await get('api-history', crypto)).statusCode).toBe(403);
    const history = await get('api-history');
    expect(history.statusCode).toBe(200);
    expect(history.json()).toEqual({
      subjectRef: receipt.subjectRef,
      shreddings: [{ tombstoneId: receipt.tombstoneId, shreddedAt: receipt.shreddedAt, reason: 'erasure request 10', actor: expect.stringMatching(/^key:/) as string, keysDestroyed: 1, keyIds: receipt.keyIds }],
    });
    expect((await get('never-shredded')).json()).toMatchObject({ shreddings: [] });
    const bad = await get('a'.repeat(300));
    expect([bad.statusCode, bad.json<{ error: { code: string } }>().error.code]).toEqual([400, 'CST_ERR_VALIDATION']);
  });

  it('needs the crypto scope; status needs admin', async () => {
    expect((await post('/v1/crypto/encrypt', { subjectId: 's', plaintext: 'x', context: 'c' }, reader)).statusCode).toBe(403);
    const status = await app.inject({ method: 'GET', url: '/v1/crypto/status', headers: { authorization: `Bearer ${admin}` } });
    expect(status.json()).toMatchObject({ provider: 'local', primaryVersion: 1, shreddings: 2 });
    expect((await app.inject({ method: 'GET', url: '/v1/crypto/status', headers: { authorization: `Bearer ${crypto}` } })).statusCode).toBe(403);
  });
});
