import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { buildServer } from '../../src/server/index.js';
import { AuthFailureLimiter } from '../../src/server/auth.js';
import { custodianFixture } from '../support/stores.js';

describe('rate limiting of failed authentications', () => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let app: FastifyInstance;
  let key: string;

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture('sqlite'));
    key = (await c.apiKeys.create({ name: 'ok', scopes: ['incidents:read'], createdBy: 'test' })).secret;
    app = await buildServer(c, { logLevel: false, authFailuresPerMinute: 5 });
  });
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
  });

  const get = (remoteAddress: string, authorization?: string) => app.inject({ method: 'GET', url: '/v1/incidents', remoteAddress, headers: authorization === undefined ? {} : { authorization } });

  it('answers 429 CST_ERR_AUTH_RATE_LIMITED with Retry-After after N unknown keys a minute from one address, only for that address, and audits it once', async () => {
    for (let i = 0; i < 5; i++) expect((await get('203.0.113.7', 'Bearer cst_wrong')).statusCode).toBe(401);
    // Missing or malformed headers are client bugs, not guesses: answered 401 and not counted.
    expect((await get('203.0.113.7')).statusCode).toBe(401);
    const limited = await get('203.0.113.7', 'Bearer cst_wrong');
    expect(limited.statusCode).toBe(429);
    expect(limited.json<{ error: { code: string; details: { retryAfterSeconds: number } } }>().error).toMatchObject({ code: 'CST_ERR_AUTH_RATE_LIMITED', details: { retryAfterSeconds: 12 } });
    expect(limited.headers['retry-after']).toBe('12');
    // A valid key always passes, so that clients behind the same address are not locked out.
    expect((await get('203.0.113.7', `Bearer ${key}`)).statusCode).toBe(200);
    expect((await get('198.51.100.1', `Bearer ${key}`)).statusCode).toBe(200);
    expect((await get('198.51.100.1', 'Bearer cst_wrong')).statusCode).toBe(401);
    await expect.poll(async () => (await c.audit.list({ action: 'auth.throttled' })).entries.length).toBe(1);
    expect(JSON.stringify((await c.audit.list({ action: 'auth.throttled' })).entries)).not.toContain('203.0.113.7');
  });

  it('refills tokens over time (token bucket)', () => {
    const limiter = new AuthFailureLimiter(6);
    let now = 0;
    for (let i = 0; i < 5; i++) expect(limiter.fail('a', now)).toBe(false);
    expect(limiter.fail('a', now)).toBe(true);
    expect(limiter.retryAfter('a', now)).toBe(10);
    now += 10_000;
    expect(limiter.retryAfter('a', now)).toBe(0);
    expect(limiter.fail('a', now)).toBe(true);
    expect(limiter.fail('a', now)).toBe(false);
  });
});
