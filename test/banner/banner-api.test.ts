import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { MintedApiKey } from '../../src/auth/index.js';
import { ERROR_CODES, JURISDICTION_CODE_PATTERN } from '../../src/core/index.js';
import { bannerOptionsFromEnv, jurisdictionFromGeo } from '../../src/ledger/index.js';
import { buildServer } from '../../src/server/index.js';
import { TokenBucketLimiter } from '../../src/server/token-bucket.js';
import { custodianFixture } from '../support/stores.js';

const SITE = 'https://shop.example.com';
const anon = () => `anon-${crypto.randomUUID()}`;

interface Experience {
  jurisdiction: string;
  type: string;
  noticeVersion: string;
  gpcHonoured: boolean;
  purposes: Array<{ key: string; gpcOptOut: boolean; defaultGranted: boolean; legalBasis: string }>;
  consentMode: Record<string, string[]>;
}

function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  expect(res.statusCode, res.body).toBe(status);
  const body = res.json<{ error: { code: string; message: string } }>();
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(ERROR_CODES[code as keyof typeof ERROR_CODES].status).toBe(status);
}

describe('banner API', () => {
  let custodian: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let writer: MintedApiKey;
  let reader: MintedApiKey;

  beforeAll(async () => {
    const banner = bannerOptionsFromEnv({
      CUSTODIAN_BANNER_ALLOWED_ORIGINS: `${SITE}, https://blog.example.com`,
      CUSTODIAN_BANNER_GEO_HEADER: 'CF-IPCountry',
      CUSTODIAN_BANNER_GEO_REGION_HEADER: 'cf-region-code',
      CUSTODIAN_BANNER_IP_HEADER: 'x-client-ip',
      CUSTODIAN_BANNER_RATE_LIMIT: '60',
      CUSTODIAN_BANNER_RATE_BURST: '5',
    });
    const f = await custodianFixture('sqlite', { config: { banner } });
    custodian = f.custodian;
    cleanup = f.cleanup;
    app = await buildServer(custodian, { logLevel: false });
    writer = await custodian.apiKeys.create({ name: 'app', scopes: ['consent:write'], createdBy: 'test' });
    reader = await custodian.apiKeys.create({ name: 'reader', scopes: ['consent:read'], createdBy: 'test' });
  });
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
  });

  // Each test uses its own client address, so the rate limit of one never bleeds into another.
  let ipSeq = 0;
  const client = () => ({ 'x-client-ip': `192.0.2.${++ipSeq}` });

  it('serves the experience without an API key, from the query, the geo header or the default', async () => {
    const h = client();
    const eu = await app.inject({ method: 'GET', url: '/v1/banner/experience', headers: h });
    expect(eu.statusCode, eu.body).toBe(200);
    const body = eu.json<Experience>();
    expect(body.jurisdiction).toBe('EU');
    expect(body.type).toBe('opt_in');
    expect(body.gpcHonoured).toBe(false);
    expect(body.noticeVersion).toMatch(/^auto-[0-9a-f]{16}$/);
    // Only purposes that need consent or allow an opt-out; contract and legitimate-interest ones are not asked.
    expect(body.purposes.map((p) => p.key)).toContain('analytics.reporting');
    expect(body.purposes.map((p) => p.key)).not.toContain('essential.service');
    expect(body.purposes.every((p) => p.legalBasis === 'consent' && p.defaultGranted === false)).toBe(true);
    expect(body.consentMode.analytics_storage).toEqual(['analytics']);
    expect(eu.headers['cache-control']).toBe('private, max-age=300');

    const ca = await app.inject({ method: 'GET', url: '/v1/banner/experience', headers: { ...h, 'cf-ipcountry': 'US', 'cf-region-code': 'CA' } });
    expect(ca.json<Experience>()).toMatchObject({ jurisdiction: 'US-CA', type: 'opt_out', gpcHonoured: true });
    expect(ca.json<Experience>().purposes.every((p) => p.defaultGranted)).toBe(true);
    const de = await app.inject({ method: 'GET', url: '/v1/banner/experience', headers: { ...h, 'cf-ipcountry': 'DE' } });
    expect(de.json<Experience>().jurisdiction).toBe('EU');
    const q = await app.inject({ method: 'GET', url: '/v1/banner/experience?jurisdiction=UK', headers: { ...h, 'cf-ipcountry': 'DE' } });
    expect(q.json<Experience>().jurisdiction).toBe('UK');
    // The notice version follows the content: another jurisdiction's notice differs.
    expect(ca.json<Experience>().noticeVersion).not.toBe(body.noticeVersion);
  });

  it('maps geo headers to jurisdictions', () => {
    expect(jurisdictionFromGeo('FR')).toBe('EU');
    expect(jurisdictionFromGeo('gb')).toBe('UK');
    expect(jurisdictionFromGeo('US', 'CO')).toBe('US-CO');
    expect(jurisdictionFromGeo('US', 'ZZ')).toBe('US');
    expect(jurisdictionFromGeo('US-CA')).toBe('US-CA');
    expect(jurisdictionFromGeo('XX')).toBeUndefined();
    expect(jurisdictionFromGeo('T1')).toBeUndefined();
    expect(jurisdictionFromGeo('not a code')).toBeUndefined();
    expect(jurisdictionFromGeo(undefined)).toBeUndefined();
  });

  it('refuses bad query and body input with typed errors', async () => {
    const h = client();
    expectError(await app.inject({ method: 'GET', url: '/v1/banner/experience?jurisdiction=eu', headers: h }), 400, 'CST_ERR_VALIDATION');
    expectError(await app.inject({ method: 'GET', url: '/v1/banner/experience?foo=1', headers: h }), 400, 'CST_ERR_VALIDATION');
    const h2 = client();
    const post = (payload: unknown, headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/v1/banner/consent', headers: { ...h2, ...headers }, payload: payload as Record<string, unknown> });
    const ok = { anonymousId: anon(), noticeVersion: 'v1', choices: { 'analytics.reporting': true } };
    // A known user id from an unauthenticated caller is refused: only anon-<uuid v4>.
    expectError(await post({ ...ok, anonymousId: 'user-42' }), 400, 'CST_ERR_VALIDATION');
    expectError(await post({ ...ok, anonymousId: 'anon-0190a000-0000-7000-8000-000000000000' }), 400, 'CST_ERR_VALIDATION');
    expectError(await post({ ...ok, choices: {} }), 400, 'CST_ERR_VALIDATION');
    expectError(await post({ ...ok, choices: { 'analytics.reporting': 'yes' } }), 400, 'CST_ERR_VALIDATION');
    expectError(await post({ ...ok, extra: 1 }), 400, 'CST_ERR_VALIDATION');
    const h3 = client();
    const post3 = (payload: unknown) => app.inject({ method: 'POST', url: '/v1/banner/consent', headers: h3, payload: payload as Record<string, unknown> });
    expectError(await post3({ ...ok, pageUrl: 'javascript:alert(1)' }), 400, 'CST_ERR_VALIDATION');
    expectError(await post3({ ...ok, choices: { 'essential.service': true } }), 400, 'CST_ERR_CONSENT_PURPOSE_NOT_OFFERED');
    expectError(await post3({ ...ok, choices: { 'no.such': true } }), 400, 'CST_ERR_CONSENT_PURPOSE_NOT_OFFERED');
    const raw = await app.inject({ method: 'POST', url: '/v1/banner/consent', headers: { ...client(), 'content-type': 'application/json' }, payload: '{"anonymousId":' });
    expectError(raw, 400, 'CST_ERR_BAD_JSON');
  });

  it('records the choice with method banner, minimised evidence and the GPC flag', async () => {
    const id = anon();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/banner/consent',
      headers: { ...client(), origin: SITE, 'user-agent': 'TestBrowser/1.0', 'sec-gpc': '1', 'cf-ipcountry': 'US', 'cf-region-code': 'CA' },
      payload: {
        anonymousId: id,
        noticeVersion: 'v7',
        choices: { 'analytics.reporting': true, 'marketing.advertising': false },
        pageUrl: 'https://shop.example.com/cart?email=ada@example.com#x',
        submissionId: crypto.randomUUID(),
      },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers['access-control-allow-origin']).toBe(SITE);
    const body = res.json<{ jurisdiction: string; events: Array<{ purpose: string; decision: string; method: string; gpc: boolean }> }>();
    expect(body.jurisdiction).toBe('US-CA');
    // GPC in California: the ledger adds its own opt-outs before the visitor's events.
    expect(body.events.filter((e) => e.method === 'banner').map((e) => [e.purpose, e.decision])).toEqual([
      ['analytics.reporting', 'granted'],
      ['marketing.advertising', 'denied'],
    ]);
    expect(body.events.some((e) => e.method === 'gpc')).toBe(true);
    const state = new Map((await custodian.ledger.state(id)).map((s) => [s.purpose, s]));
    expect(state.get('analytics.reporting')).toMatchObject({ status: 'granted', method: 'banner', jurisdiction: 'US-CA' });
    expect(state.get('marketing.advertising.third_party.targeted')?.status).toBe('denied');
    const history = await custodian.ledger.history(id);
    const grant = history.events.find((e) => e.purpose === 'analytics.reporting')!;
    expect(grant.noticeVersion).toBe('v7');
    expect(grant.actor).toBe('banner');
    expect(grant.evidence).toStrictEqual({ userAgent: 'TestBrowser/1.0', pageUrl: 'https://shop.example.com/cart', gpc: true });
    expect(grant.gpc).toBe(true);
  });

  it('records a refusal after a grant as a withdrawal, and a retried submission once', async () => {
    const id = anon();
    const h = client();
    const submit = (choices: Record<string, boolean>, submissionId: string) =>
      app.inject({ method: 'POST', url: '/v1/banner/consent', headers: h, payload: { anonymousId: id, noticeVersion: 'v1', choices, submissionId } });
    expect((await submit({ personalize: true }, crypto.randomUUID())).statusCode).toBe(201);
    const s2 = crypto.randomUUID();
    const first = await submit({ personalize: false }, s2);
    expect(first.json<{ events: Array<{ decision: string }> }>().events[0]!.decision).toBe('withdrawn');
    const retry = await submit({ personalize: false }, s2);
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.json<{ events: Array<{ id: string }> }>().events[0]!.id).toBe(first.json<{ events: Array<{ id: string }> }>().events[0]!.id);
    expect((await custodian.ledger.history(id)).events).toHaveLength(2);
  });

  it('answers CORS preflights for allowed origins and refuses other origins', async () => {
    const pre = await app.inject({ method: 'OPTIONS', url: '/v1/banner/consent', headers: { ...client(), origin: SITE, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(SITE);
    expect(pre.headers['access-control-allow-methods']).toContain('POST');
    expect(pre.headers['access-control-allow-headers']).toContain('content-type');
    expect(pre.headers.vary).toContain('Origin');
    expectError(await app.inject({ method: 'OPTIONS', url: '/v1/banner/consent', headers: { ...client(), origin: 'https://evil.example.net' } }), 403, 'CST_ERR_BANNER_ORIGIN_FORBIDDEN');
    const evil = await app.inject({ method: 'POST', url: '/v1/banner/consent', headers: { ...client(), origin: 'https://evil.example.net' }, payload: { anonymousId: anon(), noticeVersion: 'v1', choices: { personalize: true } } });
    expectError(evil, 403, 'CST_ERR_BANNER_ORIGIN_FORBIDDEN');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    expectError(await app.inject({ method: 'GET', url: '/v1/banner/experience', headers: { ...client(), origin: 'null' } }), 403, 'CST_ERR_BANNER_ORIGIN_FORBIDDEN');
    // The server's own origin (the demo page) is always allowed.
    const own = await app.inject({ method: 'GET', url: '/v1/banner/experience', headers: { ...client(), origin: 'http://localhost:80', host: 'localhost:80' } });
    expect(own.statusCode, own.body).toBe(200);
  });

  it('rate-limits per client address with a token bucket, 429 with Retry-After and CORS headers', async () => {
    const h = { ...client(), origin: SITE };
    const codes: number[] = [];
    let last: LightMyRequestResponse | undefined;
    for (let i = 0; i < 7; i++) {
      last = await app.inject({ method: 'GET', url: '/v1/banner/experience', headers: h });
      codes.push(last.statusCode);
    }
    expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expectError(last!, 429, 'CST_ERR_BANNER_RATE_LIMITED');
    expect(Number(last!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(last!.headers['access-control-allow-origin']).toBe(SITE); // the banner can read the error
    // Another address is not affected.
    expect((await app.inject({ method: 'GET', url: '/v1/banner/experience', headers: client() })).statusCode).toBe(200);
  });

  it('token bucket refills over time', () => {
    let now = 0;
    const limiter = new TokenBucketLimiter({ perMinute: 60, burst: 2, now: () => now, maxKeys: 2 });
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a')).toStrictEqual({ allowed: false, retryAfterSeconds: 1 });
    now += 1000;
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('b').allowed).toBe(true);
    expect(limiter.take('c').allowed).toBe(true); // evicts the least recently seen key (a)
    expect(limiter.take('a').allowed).toBe(true); // a starts afresh
  });

  it('token bucket: a key never gets more than burst + rate × elapsed (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.constantFrom('a', 'b', 'c')), { maxLength: 300 }),
        (perMinute, burst, steps) => {
          let now = 0;
          const limiter = new TokenBucketLimiter({ perMinute, burst, now: () => now });
          const allowed = new Map<string, number>();
          for (const [dt, key] of steps) {
            now += dt;
            const r = limiter.take(key);
            if (r.allowed) allowed.set(key, (allowed.get(key) ?? 0) + 1);
            else expect(r.retryAfterSeconds).toBeGreaterThanOrEqual(1);
          }
          for (const n of allowed.values()) expect(n).toBeLessThanOrEqual(burst + Math.floor((perMinute * now) / 60_000) + 1);
        },
      ),
    );
  });

  it('geo mapping yields a well-formed jurisdiction code or nothing (property)', () => {
    fc.assert(
      fc.property(fc.option(fc.string({ maxLength: 12 }), { nil: undefined }), fc.option(fc.string({ maxLength: 6 }), { nil: undefined }), (country, region) => {
        const j = jurisdictionFromGeo(country, region);
        if (j !== undefined) expect(j).toMatch(JURISDICTION_CODE_PATTERN);
      }),
    );
  });

  it('links an anonymous visitor to a user id (API key, consent:write), idempotently', async () => {
    const id = anon();
    const user = 'user-8d1f';
    const h = client();
    expect(
      (await app.inject({ method: 'POST', url: '/v1/banner/consent', headers: h, payload: { anonymousId: id, noticeVersion: 'n3', choices: { 'analytics.reporting': true, personalize: false }, pageUrl: 'https://shop.example.com/' } })).statusCode,
    ).toBe(201);
    const link = (auth: string | undefined, payload: unknown) =>
      app.inject({ method: 'POST', url: '/v1/consent/link', headers: auth === undefined ? {} : { authorization: `Bearer ${auth}` }, payload: payload as Record<string, unknown> });
    expectError(await link(undefined, { anonymousId: id, subjectId: user }), 401, 'CST_ERR_AUTH_MISSING');
    expectError(await link(reader.secret, { anonymousId: id, subjectId: user }), 403, 'CST_ERR_AUTH_FORBIDDEN');
    expectError(await link(writer.secret, { anonymousId: 'user-1', subjectId: user }), 400, 'CST_ERR_VALIDATION');
    expectError(await link(writer.secret, { anonymousId: id, subjectId: id }), 400, 'CST_ERR_VALIDATION');

    const res = await link(writer.secret, { anonymousId: id, subjectId: user });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ events: Array<{ purpose: string; decision: string; method: string; replayed: boolean }>; skipped: unknown[] }>();
    expect(body.events.map((e) => [e.purpose, e.decision, e.method, e.replayed])).toEqual([
      ['analytics.reporting', 'granted', 'banner', false],
      ['personalize', 'denied', 'banner', false],
    ]);
    const state = new Map((await custodian.ledger.state(user)).map((s) => [s.purpose, s]));
    expect(state.get('analytics.reporting')).toMatchObject({ status: 'granted', method: 'banner' });
    const history = await custodian.ledger.history(user);
    const copied = history.events.find((e) => e.purpose === 'analytics.reporting')!;
    const anonEvent = (await custodian.ledger.history(id)).events.find((e) => e.purpose === 'analytics.reporting')!;
    expect(copied.idempotencyKey).toMatch(new RegExp(`^link:${anonEvent.id}:[0-9a-f]{16}$`));
    expect(copied.noticeVersion).toBe('n3');
    expect(copied.expiresAt).toBe(anonEvent.expiresAt);
    expect(copied.evidence).toMatchObject({ pageUrl: 'https://shop.example.com/', gpc: false });

    // Linking again records nothing new.
    const again = await link(writer.secret, { anonymousId: id, subjectId: user });
    expect(again.json<{ events: Array<{ replayed: boolean }> }>().events.every((e) => e.replayed)).toBe(true);
    expect((await custodian.ledger.history(user)).events).toHaveLength(2);

    // A later choice of the user themselves is not overwritten by the older anonymous one.
    await custodian.ledger.record([{ subjectId: user, purpose: 'personalize', decision: 'granted' }], { actor: 'test' });
    const third = await link(writer.secret, { anonymousId: id, subjectId: user });
    expect(third.json<{ skipped: Array<{ purpose: string; reason: string }> }>().skipped).toContainEqual({ purpose: 'personalize', reason: 'subject_decided_later' });
    expect((await custodian.ledger.state(user)).find((s) => s.purpose === 'personalize')?.status).toBe('granted');
  });

  it('validates banner configuration', () => {
    expect(() => bannerOptionsFromEnv({ CUSTODIAN_BANNER_ALLOWED_ORIGINS: 'https://a.example.com/path' })).toThrow(/CUSTODIAN_BANNER_ALLOWED_ORIGINS/);
    expect(() => bannerOptionsFromEnv({ CUSTODIAN_BANNER_DEFAULT_JURISDICTION: 'europe' })).toThrow(/DEFAULT_JURISDICTION/);
    expect(() => bannerOptionsFromEnv({ CUSTODIAN_BANNER_RATE_LIMIT: '0' })).toThrow(/RATE_LIMIT/);
    expect(() => bannerOptionsFromEnv({ CUSTODIAN_BANNER_CONSENT_MODE: '{"ad_storage":"x"}' })).toThrow(/CONSENT_MODE/);
    expect(bannerOptionsFromEnv({ CUSTODIAN_BANNER_CONSENT_MODE: '{"ad_personalization":["personalize"]}' }).consentMode.ad_personalization).toEqual(['personalize']);
    expect(bannerOptionsFromEnv({})).toMatchObject({ allowedOrigins: [], defaultJurisdiction: 'EU', rateLimit: { perMinute: 60, burst: 30 } });
  });
});
