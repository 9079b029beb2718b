import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { MintedApiKey } from '../../src/auth/index.js';
import { DEFAULT_PURPOSES, ERROR_CODES, ManualClock, addMonths, toIso } from '../../src/core/index.js';
import { buildServer } from '../../src/server/index.js';
import { VERSION } from '../../src/version.js';
import { OPENAPI_PATH } from '../../scripts/openapi.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// Minimal structural types of the bodies the tests read; exact shapes are asserted with toStrictEqual.
interface ErrorResponse {
  error: { code: string; message: string; details?: unknown };
}
interface EventBody {
  id: string;
  subjectId: string;
  purpose: string;
  decision: string;
  method: string;
  recordedAt: string;
  expiresAt: string | null;
  gpc: boolean;
  batchId: string;
  replayed?: boolean;
  [k: string]: unknown;
}
interface RecordBody {
  batchId: string;
  events: EventBody[];
}
interface StateBody {
  subjectId: string;
  purposes: Array<{ purpose: string; status: string; eventId: string | null; [k: string]: unknown }>;
}
interface HistoryBody {
  subjectId: string;
  asOf: string;
  events: EventBody[];
  state: StateBody['purposes'];
  nextCursor: string | null;
}
interface CheckBody {
  subjectId: string;
  purpose: string;
  allowed: boolean;
  status: string;
  eventId: string | null;
  [k: string]: unknown;
}

/** Asserts `res` is an error of `status` whose body is exactly `{"error":{"code","message"[,"details"]}}` with a CST_ERR_ code. */
function expectError(res: LightMyRequestResponse, status: number, code?: string): ErrorResponse {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<ErrorResponse>();
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).every((k) => ['code', 'message', 'details'].includes(k))).toBe(true);
  expect(body.error.code).toMatch(/^CST_ERR_[A-Z_]+$/);
  expect(Object.keys(ERROR_CODES)).toContain(body.error.code);
  expect(ERROR_CODES[body.error.code as keyof typeof ERROR_CODES].status).toBe(status);
  expect(typeof body.error.message).toBe('string');
  if (code !== undefined) expect(body.error.code).toBe(code);
  return body;
}

/** Fields that exist in the store or in memory but must never leave through the API. */
const LEAKY_FIELDS = ['request_hash', 'requestHash', 'key_hash', 'keyHash', 'subject_id', 'evidence_format', 'created_by'];

function expectNoLeaks(res: LightMyRequestResponse): void {
  for (const f of LEAKY_FIELDS) expect(res.body).not.toContain(`"${f}"`);
}

describe.each(STORE_KINDS)('HTTP API on %s', (kind) => {
  let custodian: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let admin: MintedApiKey;
  let reader: MintedApiKey;
  let writer: MintedApiKey;
  const clock = new ManualClock('2026-03-01T12:00:00.000Z');
  /** Every subject id the suite sends, to prove /metrics names none of them. */
  const subjects = new Set<string>();
  let seq = 0;

  /** A fresh, recognisable subject id. */
  function subject(label = 's'): string {
    const id = `${label}-${kind}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
    subjects.add(id);
    return id;
  }

  async function call(method: InjectOptions['method'], url: string, options: { key?: MintedApiKey | string | null; body?: unknown; headers?: Record<string, string> } = {}) {
    const key = options.key === undefined ? admin : options.key;
    const headers: Record<string, string> = { ...options.headers };
    if (key !== null) headers.authorization = `Bearer ${typeof key === 'string' ? key : key.secret}`;
    const res = await app.inject({ method, url, headers, ...(options.body === undefined ? {} : { payload: options.body as InjectOptions['payload'] }) });
    expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(500);
    if (res.statusCode >= 400) expectError(res, res.statusCode);
    expectNoLeaks(res);
    return res;
  }

  const record = (events: unknown[], options: { key?: MintedApiKey; headers?: Record<string, string>; gpc?: boolean } = {}) =>
    call('POST', '/v1/consent/events', { key: options.key ?? writer, body: { events, ...(options.gpc === undefined ? {} : { gpc: options.gpc }) }, headers: options.headers ?? {} });

  const purposeKeys = () => custodian.purposes.list().map((p) => p.key).sort();

  /** The state answer for a subject with decisions only on the purposes in `decided`. */
  function expectedState(decided: Record<string, Partial<StateBody['purposes'][number]>>): StateBody['purposes'] {
    return purposeKeys().map((purpose) => ({
      purpose,
      status: 'none',
      eventId: null,
      decidedAt: null,
      expiresAt: null,
      method: null,
      jurisdiction: null,
      ...decided[purpose],
    }));
  }

  beforeAll(async () => {
    const f = await custodianFixture(kind, { clock });
    custodian = f.custodian;
    cleanup = f.cleanup;
    app = await buildServer(custodian, { logLevel: false });
    admin = await custodian.apiKeys.create({ name: 'test admin', scopes: ['admin'], createdBy: 'test' });
    reader = await custodian.apiKeys.create({ name: 'test reader', scopes: ['consent:read'], createdBy: 'test' });
    writer = await custodian.apiKeys.create({ name: 'test writer', scopes: ['consent:write'], createdBy: 'test' });
  });

  afterAll(async () => {
    await app?.close();
    await cleanup?.();
  });

  // Each test records at its own instant, so as-of boundaries never collide.
  beforeEach(() => clock.advance(60_000));

  describe('consent', () => {
    it('records a batch: 201 with exactly the stored events', async () => {
      const s = subject();
      const now = clock.now();
      const res = await record([
        {
          subjectId: s,
          purpose: 'analytics.reporting',
          decision: 'granted',
          jurisdiction: 'EU',
          noticeVersion: '2026-01',
          method: 'banner',
          clientTime: '2026-03-01T11:59:58.5+01:00',
          evidence: { ip: '203.0.113.77', userAgent: 'Mozilla/5.0 (test)', pageUrl: 'https://shop.example.com/checkout?email=a@example.com#x' },
          idempotencyKey: `${s}-k1`,
        },
        { subjectId: s, purpose: 'essential.service', decision: 'denied' },
      ]);
      expect(res.statusCode).toBe(201);
      const body = res.json<RecordBody>();
      expect(body.batchId).toMatch(UUID);
      const [a, b] = body.events;
      expect(body).toStrictEqual({
        batchId: body.batchId,
        events: [
          {
            id: a!.id,
            subjectId: s,
            purpose: 'analytics.reporting',
            decision: 'granted',
            legalBasis: 'consent',
            jurisdiction: 'EU',
            noticeVersion: '2026-01',
            method: 'banner',
            recordedAt: toIso(now),
            clientTime: '2026-03-01T10:59:58.500Z',
            expiresAt: toIso(addMonths(now, 13)),
            gpc: false,
            evidence: { ip: '203.0.113.0', userAgent: 'Mozilla/5.0 (test)', pageUrl: 'https://shop.example.com/checkout' },
            idempotencyKey: `${s}-k1`,
            batchId: body.batchId,
            actor: `key:${writer.id}`,
            replayed: false,
          },
          {
            id: b!.id,
            subjectId: s,
            purpose: 'essential.service',
            decision: 'denied',
            legalBasis: 'contract',
            jurisdiction: null,
            noticeVersion: null,
            method: 'api',
            recordedAt: toIso(now),
            clientTime: null,
            expiresAt: null,
            gpc: false,
            evidence: null,
            idempotencyKey: null,
            batchId: body.batchId,
            actor: `key:${writer.id}`,
            replayed: false,
          },
        ],
      });
      expect(a!.id).toMatch(UUID);
      expect(b!.id).toMatch(UUID);
      expect(a!.id < b!.id).toBe(true);
    });

    it('replays an idempotent batch: the same events with replayed: true, nothing written twice', async () => {
      const s = subject();
      const events = [
        { subjectId: s, purpose: 'personalize', decision: 'granted', idempotencyKey: `${s}-a` },
        { subjectId: s, purpose: 'train_ai_system', decision: 'denied', idempotencyKey: `${s}-b` },
      ];
      const first = (await record(events)).json<RecordBody>();
      clock.advance(1000);
      const again = await record(events);
      expect(again.statusCode).toBe(201);
      const replay = again.json<RecordBody>();
      expect(replay.events).toStrictEqual(first.events.map((e) => ({ ...e, replayed: true })));
      expect(replay.batchId).toMatch(UUID);

      const history = (await call('GET', `/v1/subjects/${s}/consent/history`, { key: reader })).json<HistoryBody>();
      expect(history.events.map((e) => e.id)).toStrictEqual(first.events.map((e) => e.id));

      // The same key for a different event is a conflict, not a replay.
      const conflict = await record([{ ...events[0], decision: 'withdrawn' }]);
      expectError(conflict, 409, 'CST_ERR_CONSENT_IDEMPOTENCY_CONFLICT');
      const dup = await record([events[0], { ...events[1], idempotencyKey: events[0]!.idempotencyKey }]);
      expectError(dup, 400, 'CST_ERR_CONSENT_DUPLICATE_IDEMPOTENCY_KEY');
    });

    it('answers the current state of every purpose', async () => {
      const s = subject();
      const fresh = await call('GET', `/v1/subjects/${s}/consent`, { key: reader });
      expect(fresh.statusCode).toBe(200);
      expect(fresh.json()).toStrictEqual({ subjectId: s, purposes: expectedState({}) });

      const rec = (await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'UK', method: 'preference_center' }])).json<RecordBody>();
      const e = rec.events[0]!;
      const res = await call('GET', `/v1/subjects/${encodeURIComponent(s)}/consent`, { key: reader });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toStrictEqual({
        subjectId: s,
        purposes: expectedState({
          'analytics.reporting': { status: 'granted', eventId: e.id, decidedAt: e.recordedAt, expiresAt: e.expiresAt, method: 'preference_center', jurisdiction: 'UK' },
        }),
      });
    });

    it('answers history with pages, and asOf returns the earlier state', async () => {
      const s = subject();
      const t1 = clock.now();
      const granted = (await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted' }])).json<RecordBody>().events[0]!;
      clock.advance(3_600_000);
      const t2 = clock.now();
      const withdrawn = (await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'withdrawn' }])).json<RecordBody>().events[0]!;
      const strip = ({ replayed: _r, ...e }: EventBody) => e;

      const now = await call('GET', `/v1/subjects/${s}/consent/history?purpose=analytics.reporting`, { key: reader });
      expect(now.statusCode).toBe(200);
      expect(now.json()).toStrictEqual({
        subjectId: s,
        asOf: toIso(t2),
        events: [strip(granted), strip(withdrawn)],
        state: [{ purpose: 'analytics.reporting', status: 'withdrawn', eventId: withdrawn.id, decidedAt: toIso(t2), expiresAt: null, method: 'api', jurisdiction: null }],
        nextCursor: null,
      });

      const asOf = toIso(t1 + 1_800_000);
      const before = await call('GET', `/v1/subjects/${s}/consent/history?asOf=${encodeURIComponent(asOf)}`, { key: reader });
      expect(before.statusCode).toBe(200);
      expect(before.json()).toStrictEqual({
        subjectId: s,
        asOf,
        events: [strip(granted)],
        state: expectedState({
          'analytics.reporting': { status: 'granted', eventId: granted.id, decidedAt: toIso(t1), expiresAt: granted.expiresAt, method: 'api' },
        }),
        nextCursor: null,
      });

      // An offset instant is the same instant.
      const offset = await call('GET', `/v1/subjects/${s}/consent/history?asOf=${encodeURIComponent('2020-01-01T01:00:00+01:00')}`, { key: reader });
      expect(offset.json<HistoryBody>().asOf).toBe('2020-01-01T00:00:00.000Z');
      expect(offset.json<HistoryBody>().events).toStrictEqual([]);

      const page1 = (await call('GET', `/v1/subjects/${s}/consent/history?limit=1`, { key: reader })).json<HistoryBody>();
      expect(page1.events.map((e) => e.id)).toStrictEqual([granted.id]);
      expect(page1.nextCursor).toBe(granted.id);
      const page2 = (await call('GET', `/v1/subjects/${s}/consent/history?limit=1&after=${page1.nextCursor}`, { key: reader })).json<HistoryBody>();
      expect(page2.events.map((e) => e.id)).toStrictEqual([withdrawn.id]);
      expect(page2.nextCursor).toBeNull();
    });

    it('checks one pair (GET) and a batch (POST)', async () => {
      const s = subject();
      const t = await call('GET', '/v1/consent/check?subjectId=' + s + '&purpose=analytics.reporting', { key: reader });
      expect(t.statusCode).toBe(200);
      expect(t.json()).toStrictEqual({
        subjectId: s,
        purpose: 'analytics.reporting',
        allowed: false,
        status: 'none',
        legalBasis: 'consent',
        reason: 'no consent recorded',
        eventId: null,
      });
      const [g, w] = (
        await record([
          { subjectId: s, purpose: 'analytics.reporting', decision: 'granted' },
          { subjectId: s, purpose: 'personalize', decision: 'withdrawn' },
        ])
      ).json<RecordBody>().events;

      const one = await call('GET', `/v1/consent/check?subjectId=${s}&purpose=analytics.reporting`, { key: reader });
      expect(one.json()).toStrictEqual({
        subjectId: s,
        purpose: 'analytics.reporting',
        allowed: true,
        status: 'granted',
        legalBasis: 'consent',
        reason: 'consent granted (GDPR Art. 6(1)(a))',
        eventId: g!.id,
      });

      const other = subject();
      const batch = await call('POST', '/v1/consent/check', {
        key: reader,
        body: {
          checks: [
            { subjectId: s, purpose: 'analytics.reporting' },
            { subjectId: s, purpose: 'personalize' },
            { subjectId: other, purpose: 'analytics.reporting' },
            { subjectId: other, purpose: 'essential.service' },
          ],
        },
      });
      expect(batch.statusCode).toBe(200);
      expect(batch.json()).toStrictEqual({
        results: [
          { subjectId: s, purpose: 'analytics.reporting', allowed: true, status: 'granted', legalBasis: 'consent', reason: 'consent granted (GDPR Art. 6(1)(a))', eventId: g!.id },
          { subjectId: s, purpose: 'personalize', allowed: false, status: 'withdrawn', legalBasis: 'consent', reason: 'consent withdrawn (GDPR Art. 7(3))', eventId: w!.id },
          { subjectId: other, purpose: 'analytics.reporting', allowed: false, status: 'none', legalBasis: 'consent', reason: 'no consent recorded', eventId: null },
          {
            subjectId: other,
            purpose: 'essential.service',
            allowed: true,
            status: 'none',
            legalBasis: 'contract',
            reason: 'legal basis contract (GDPR Art. 6(1)(b)) does not require consent',
            eventId: null,
          },
        ],
      });

      expectError(await call('POST', '/v1/consent/check', { key: reader, body: { checks: [] } }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('GET', `/v1/consent/check?subjectId=${s}`, { key: reader }), 400, 'CST_ERR_VALIDATION');
    });
  });

  describe('purposes', () => {
    it('lists the configured purposes', async () => {
      const res = await call('GET', '/v1/purposes', { key: reader });
      expect(res.statusCode).toBe(200);
      const listed = res.json<{ purposes: Array<{ key: string }> }>().purposes;
      expect(Object.keys(res.json<object>())).toStrictEqual(['purposes']);
      for (const p of DEFAULT_PURPOSES) expect(listed).toContainEqual({ ...p, jurisdictions: [...p.jurisdictions] });
      expect(listed.map((p) => p.key)).toStrictEqual(custodian.purposes.list().map((p) => p.key));
    });

    it('PUT creates (201) then replaces (200); an unknown purpose is 400 CST_ERR_CONSENT_UNKNOWN_PURPOSE', async () => {
      const key = `custom.newsletter_${kind}`;
      const created = await call('PUT', `/v1/purposes/${key}`, { body: { title: 'Newsletter', legalBasis: 'consent', jurisdictions: ['EU', 'UK'] } });
      expect(created.statusCode).toBe(201);
      expect(created.json()).toStrictEqual({
        key,
        title: 'Newsletter',
        description: '',
        legalBasis: 'consent',
        consentRequired: true,
        defaultExpiryMonths: 13,
        jurisdictions: ['EU', 'UK'],
        gpcOptOut: false,
      });
      const replaced = await call('PUT', `/v1/purposes/${key}`, {
        body: { title: 'Weekly newsletter', description: 'Once a week.', legalBasis: 'consent', defaultExpiryMonths: null, jurisdictions: ['EU'] },
      });
      expect(replaced.statusCode).toBe(200);
      expect(replaced.json()).toStrictEqual({
        key,
        title: 'Weekly newsletter',
        description: 'Once a week.',
        legalBasis: 'consent',
        consentRequired: true,
        defaultExpiryMonths: null,
        jurisdictions: ['EU'],
        gpcOptOut: false,
      });
      const listed = (await call('GET', '/v1/purposes', { key: reader })).json<{ purposes: Array<{ key: string; title: string }> }>().purposes;
      expect(listed.find((p) => p.key === key)?.title).toBe('Weekly newsletter');

      // Recording against the new purpose works where it is offered, and only there.
      const s = subject();
      expect((await record([{ subjectId: s, purpose: key, decision: 'granted', jurisdiction: 'EU' }])).statusCode).toBe(201);
      expectError(await record([{ subjectId: s, purpose: key, decision: 'granted', jurisdiction: 'US-CA' }]), 400, 'CST_ERR_CONSENT_PURPOSE_NOT_OFFERED');

      const unknown = await record([{ subjectId: s, purpose: 'no.such.purpose', decision: 'granted' }]);
      const err = expectError(unknown, 400, 'CST_ERR_CONSENT_UNKNOWN_PURPOSE');
      expect(err.error.details).toMatchObject({ purpose: 'no.such.purpose' });
      expectError(await call('GET', `/v1/consent/check?subjectId=${s}&purpose=no.such.purpose`, { key: reader }), 400, 'CST_ERR_CONSENT_UNKNOWN_PURPOSE');
      expectError(await call('GET', `/v1/subjects/${s}/consent/history?purpose=no.such.purpose`, { key: reader }), 400, 'CST_ERR_CONSENT_UNKNOWN_PURPOSE');

      // Inconsistent definitions and bad keys are the caller's fault.
      expectError(await call('PUT', '/v1/purposes/custom.bad', { body: { title: 'x', legalBasis: 'consent', consentRequired: false } }), 400, 'CST_ERR_PURPOSE_INVALID');
      expectError(await call('PUT', '/v1/purposes/Not-A-Key', { body: { title: 'x', legalBasis: 'consent' } }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('PUT', `/v1/purposes/${key}`, { body: { title: 'x', legalBasis: 'vibes' } }), 400, 'CST_ERR_VALIDATION');
    });
  });

  describe('Global Privacy Control', () => {
    const gpcPurposes = () => custodian.purposes.list().filter((p) => p.gpcOptOut).map((p) => p.key);

    it('Sec-GPC: 1 records a gpc denial for gpcOptOut purposes in US-CA', async () => {
      const s = subject();
      const res = await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'US-CA' }], { headers: { 'sec-gpc': '1' } });
      expect(res.statusCode).toBe(201);
      const events = res.json<RecordBody>().events;
      const optOuts = gpcPurposes();
      expect(optOuts.length).toBeGreaterThan(0);
      expect(events.map((e) => [e.purpose, e.decision, e.method, e.gpc])).toStrictEqual([
        ...optOuts.map((p) => [p, 'denied', 'gpc', true]),
        ['analytics.reporting', 'granted', 'api', true],
      ]);
      for (const e of events.slice(0, -1)) expect(e).toMatchObject({ jurisdiction: 'US-CA', evidence: { gpc: true }, replayed: false });

      const check = (await call('GET', `/v1/consent/check?subjectId=${s}&purpose=marketing.advertising`, { key: reader })).json<CheckBody>();
      expect(check).toMatchObject({ allowed: false, status: 'denied', reason: 'opted out by Global Privacy Control signal' });
      const state = (await call('GET', `/v1/subjects/${s}/consent`, { key: reader })).json<StateBody>();
      for (const p of optOuts) expect(state.purposes.find((x) => x.purpose === p)).toMatchObject({ status: 'denied', method: 'gpc' });

      // The body flag means the same as the header.
      const s2 = subject();
      const viaBody = (await record([{ subjectId: s2, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'US-CA' }], { gpc: true })).json<RecordBody>();
      expect(viaBody.events.filter((e) => e.method === 'gpc').map((e) => e.purpose)).toStrictEqual(optOuts);
    });

    it('Sec-GPC: 1 records no gpc denial in the EU', async () => {
      const s = subject();
      const res = await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'EU' }], { headers: { 'sec-gpc': '1' } });
      expect(res.statusCode).toBe(201);
      const events = res.json<RecordBody>().events;
      expect(events.map((e) => [e.purpose, e.decision, e.method, e.gpc])).toStrictEqual([['analytics.reporting', 'granted', 'api', true]]);
      const state = (await call('GET', `/v1/subjects/${s}/consent`, { key: reader })).json<StateBody>();
      for (const p of gpcPurposes()) expect(state.purposes.find((x) => x.purpose === p)).toMatchObject({ status: 'none', eventId: null });

      // Without the header nothing happens in US-CA either.
      const s2 = subject();
      const plain = (await record([{ subjectId: s2, purpose: 'analytics.reporting', decision: 'granted', jurisdiction: 'US-CA' }], { headers: { 'sec-gpc': '0' } })).json<RecordBody>();
      expect(plain.events.map((e) => [e.purpose, e.gpc])).toStrictEqual([['analytics.reporting', false]]);
    });
  });

  describe('authentication and scopes', () => {
    const routes: Array<{ method: InjectOptions['method']; url: string; body?: unknown; scope: 'admin' | 'consent:read' | 'consent:write' }> = [
      { method: 'POST', url: '/v1/consent/events', body: { events: [{ subjectId: 'auth-probe', purpose: 'analytics.reporting', decision: 'granted' }] }, scope: 'consent:write' },
      { method: 'GET', url: '/v1/subjects/auth-probe/consent', scope: 'consent:read' },
      { method: 'GET', url: '/v1/subjects/auth-probe/consent/history', scope: 'consent:read' },
      { method: 'GET', url: '/v1/consent/check?subjectId=auth-probe&purpose=analytics.reporting', scope: 'consent:read' },
      { method: 'POST', url: '/v1/consent/check', body: { checks: [{ subjectId: 'auth-probe', purpose: 'analytics.reporting' }] }, scope: 'consent:read' },
      { method: 'GET', url: '/v1/purposes', scope: 'consent:read' },
      { method: 'PUT', url: '/v1/purposes/custom.auth_probe', body: { title: 'Probe', legalBasis: 'contract' }, scope: 'admin' },
      { method: 'POST', url: '/v1/api-keys', body: { name: 'probe', scopes: ['consent:read'] }, scope: 'admin' },
      { method: 'GET', url: '/v1/api-keys', scope: 'admin' },
      { method: 'DELETE', url: '/v1/api-keys/01a20242-6086-7002-be7c-d217c7c7f3fb', scope: 'admin' },
    ];

    it.each(routes)('$method $url: 401 without a key, 401 with a wrong key, 403 without the scope', async ({ method, url, body, scope }) => {
      expectError(await call(method, url, { key: null, body }), 401, 'CST_ERR_AUTH_MISSING');
      expectError(await call(method, url, { key: 'cst_not_a_real_key_0000000000000000000000000', body }), 401, 'CST_ERR_AUTH_INVALID');
      expectError(await call(method, url, { key: null, body, headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }), 401, 'CST_ERR_AUTH_INVALID');
      expectError(await call(method, url, { key: null, body, headers: { authorization: 'Bearer' } }), 401, 'CST_ERR_AUTH_INVALID');
      for (const k of [reader, writer]) {
        if (k.scopes.includes(scope)) continue;
        const res = await call(method, url, { key: k, body });
        const err = expectError(res, 403, 'CST_ERR_AUTH_FORBIDDEN');
        expect(err.error.details).toStrictEqual({ required: scope });
      }
    });

    it('a 403 on POST /v1/consent/events writes nothing', async () => {
      const s = subject();
      expectError(await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted' }], { key: reader }), 403, 'CST_ERR_AUTH_FORBIDDEN');
      const history = (await call('GET', `/v1/subjects/${s}/consent/history`, { key: reader })).json<HistoryBody>();
      expect(history.events).toStrictEqual([]);
    });

    it('mints, lists and revokes API keys; a revoked key fails at once', async () => {
      const created = await call('POST', '/v1/api-keys', { body: { name: 'ci reader', scopes: ['consent:read', 'consent:read'] } });
      expect(created.statusCode).toBe(201);
      const minted = created.json<{ id: string; secret: string }>();
      expect(minted).toStrictEqual({ id: minted.id, name: 'ci reader', scopes: ['consent:read'], purposes: [], createdAt: toIso(clock.now()), secret: minted.secret });
      expect(minted.id).toMatch(UUID);
      expect(minted.secret).toMatch(/^cst_/);

      // It works, and only within its scopes.
      expect((await call('GET', '/v1/purposes', { key: minted.secret })).statusCode).toBe(200);
      expectError(await call('GET', '/v1/api-keys', { key: minted.secret }), 403, 'CST_ERR_AUTH_FORBIDDEN');

      const list = await call('GET', '/v1/api-keys');
      expect(list.statusCode).toBe(200);
      const keys = list.json<{ apiKeys: Array<Record<string, unknown>> }>().apiKeys;
      expect(keys).toContainEqual({ id: minted.id, name: 'ci reader', scopes: ['consent:read'], purposes: [], createdAt: toIso(clock.now()), revokedAt: null });
      for (const k of keys) expect(Object.keys(k).sort()).toStrictEqual(['createdAt', 'id', 'name', 'purposes', 'revokedAt', 'scopes']);
      expect(list.body).not.toContain(minted.secret);
      expect(list.body).not.toContain(admin.secret);

      clock.advance(1000);
      const revoked = await call('DELETE', `/v1/api-keys/${minted.id}`);
      expect(revoked.statusCode).toBe(204);
      expect(revoked.body).toBe('');
      // The 5 s authentication cache was cleared by the revocation in this process.
      expectError(await call('GET', '/v1/purposes', { key: minted.secret }), 401, 'CST_ERR_AUTH_INVALID');
      const after = (await call('GET', '/v1/api-keys')).json<{ apiKeys: Array<{ id: string; revokedAt: string | null }> }>().apiKeys;
      expect(after.find((k) => k.id === minted.id)?.revokedAt).toBe(toIso(clock.now()));

      expectError(await call('DELETE', `/v1/api-keys/${minted.id}`), 404, 'CST_ERR_NOT_FOUND');
      expectError(await call('DELETE', '/v1/api-keys/not-a-uuid'), 400, 'CST_ERR_VALIDATION');
      expectError(await call('POST', '/v1/api-keys', { body: { name: 'x', scopes: ['root'] } }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('POST', '/v1/api-keys', { body: { name: 'x', scopes: [] } }), 400, 'CST_ERR_VALIDATION');
    });
  });

  describe('input faults', () => {
    /** Asserts the subject has no events and no decided purpose. */
    async function expectUntouched(s: string): Promise<void> {
      const history = (await call('GET', `/v1/subjects/${s}/consent/history`, { key: reader })).json<HistoryBody>();
      expect(history.events).toStrictEqual([]);
      const state = (await call('GET', `/v1/subjects/${s}/consent`, { key: reader })).json<StateBody>();
      expect(state.purposes.every((p) => p.status === 'none' && p.eventId === null)).toBe(true);
    }

    it('a batch with one bad event writes nothing', async () => {
      const s = subject();
      const good = { subjectId: s, purpose: 'analytics.reporting', decision: 'granted' };
      const prior = (await record([{ subjectId: s, purpose: 'personalize', decision: 'granted' }])).json<RecordBody>().events[0]!;
      const stateBefore = (await call('GET', `/v1/subjects/${s}/consent`, { key: reader })).json<StateBody>();

      const other = subject();
      const bad: Array<[unknown, string]> = [
        [{ subjectId: s, purpose: 'no.such.purpose', decision: 'granted' }, 'CST_ERR_CONSENT_UNKNOWN_PURPOSE'],
        [{ subjectId: s, purpose: 'analytics.reporting', decision: 'maybe' }, 'CST_ERR_VALIDATION'],
        [{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', evidence: { tcString: 'not-a-tcf-string' } }, 'CST_ERR_CONSENT_BAD_TCF'],
        [{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', expiresAt: '2020-01-01T00:00:00.000Z' }, 'CST_ERR_CONSENT_BAD_EXPIRY'],
        [{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', evidence: { ip: '999.1.1.1' } }, 'CST_ERR_VALIDATION'],
      ];
      for (const [event, code] of bad) {
        const res = await record([good, { subjectId: other, purpose: 'personalize', decision: 'denied' }, event]);
        expectError(res, 400, code);
      }
      expect((await call('GET', `/v1/subjects/${s}/consent`, { key: reader })).json()).toStrictEqual(stateBefore);
      const history = (await call('GET', `/v1/subjects/${s}/consent/history`, { key: reader })).json<HistoryBody>();
      expect(history.events.map((e) => e.id)).toStrictEqual([prior.id]);
      await expectUntouched(other);
    });

    it('rejects an oversize batch (1001 events) with 400, and accepts 1000', async () => {
      const s = subject();
      const events = Array.from({ length: 1001 }, (_, i) => ({ subjectId: s, purpose: 'analytics.reporting', decision: i % 2 === 0 ? 'granted' : 'denied' }));
      expectError(await record(events), 400, 'CST_ERR_VALIDATION');
      await expectUntouched(s);
      const ok = await record(events.slice(0, 1000));
      expect(ok.statusCode).toBe(201);
      expect(ok.json<RecordBody>().events).toHaveLength(1000);
    });

    it('rejects an overlong subjectId (257 characters) everywhere with 400', async () => {
      const long = 'x'.repeat(257);
      const max = 'y'.repeat(256);
      subjects.add(max);
      expectError(await record([{ subjectId: long, purpose: 'analytics.reporting', decision: 'granted' }]), 400, 'CST_ERR_VALIDATION');
      expectError(await call('GET', `/v1/subjects/${long}/consent`, { key: reader }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('GET', `/v1/subjects/${long}/consent/history`, { key: reader }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('GET', `/v1/consent/check?subjectId=${long}&purpose=analytics.reporting`, { key: reader }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('POST', '/v1/consent/check', { key: reader, body: { checks: [{ subjectId: long, purpose: 'analytics.reporting' }] } }), 400, 'CST_ERR_VALIDATION');
      expect((await record([{ subjectId: max, purpose: 'analytics.reporting', decision: 'granted' }])).statusCode).toBe(201);
      expect((await call('GET', `/v1/subjects/${max}/consent`, { key: reader })).statusCode).toBe(200);
    });

    it('rejects a bad TCF string with 400 CST_ERR_CONSENT_BAD_TCF', async () => {
      const s = subject();
      for (const tcString of ['not-a-tcf-string', 'COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAA!', 'AAAA']) {
        const res = await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', evidence: { tcString } }]);
        const err = expectError(res, 400, 'CST_ERR_CONSENT_BAD_TCF');
        expect(err.error.details).toMatchObject({ index: 0 });
      }
      await expectUntouched(s);
    });

    it('rejects bad timestamps with 400', async () => {
      const s = subject();
      for (const clientTime of ['2026-02-30T10:00:00Z', '2026-03-01T10:00:00', 'yesterday', '2026-03-01 10:00:00Z', 1_700_000_000_000]) {
        expectError(await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', clientTime }]), 400, 'CST_ERR_VALIDATION');
      }
      expectError(await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', expiresAt: '2026-13-01T00:00:00Z' }]), 400, 'CST_ERR_VALIDATION');
      for (const asOf of ['yesterday', '2026-02-30T00:00:00Z', '2026-03-01']) {
        expectError(await call('GET', `/v1/subjects/${s}/consent/history?asOf=${asOf}`, { key: reader }), 400, 'CST_ERR_VALIDATION');
      }
      await expectUntouched(s);
    });

    // Regression: PostgreSQL timestamptz has no year 0 and no five-digit years; such instants were a 500
    // there, and SQLite answered with expanded years ("+010000-…"), which are not the API's ISO-8601.
    it('rejects instants outside years 0001–9999 with 400 on every store', async () => {
      const s = subject();
      for (const instant of ['0000-01-01T00:00:00Z', '0001-01-01T00:30:00+01:00', '9999-12-31T23:59:59-05:00']) {
        expectError(await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', clientTime: instant }]), 400, 'CST_ERR_VALIDATION');
        expectError(await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', expiresAt: instant }]), 400, 'CST_ERR_VALIDATION');
        expectError(await call('GET', `/v1/subjects/${s}/consent/history?asOf=${encodeURIComponent(instant)}`, { key: reader }), 400, 'CST_ERR_VALIDATION');
      }
      const edge = await call('GET', `/v1/subjects/${s}/consent/history?asOf=${encodeURIComponent('9999-12-31T23:59:59.999Z')}`, { key: reader });
      expect(edge.json<HistoryBody>().asOf).toBe('9999-12-31T23:59:59.999Z');
      const early = await call('GET', `/v1/subjects/${s}/consent/history?asOf=0001-01-01T00:00:00Z`, { key: reader });
      expect(early.json<HistoryBody>().asOf).toBe('0001-01-01T00:00:00.000Z');
      await expectUntouched(s);
    });

    // Regression: PostgreSQL text cannot hold U+0000, and stores a lone surrogate as U+FFFD (so two distinct
    // ids would become one subject). Both were a 500 there; they are the caller's fault on every store.
    it('rejects NUL characters and lone surrogates in stored text with 400', async () => {
      const s = subject();
      const bad = ['a\u0000b', '\ud800', 'x\udc00y', '\udbff'];
      for (const v of bad) {
        expectError(await record([{ subjectId: v, purpose: 'analytics.reporting', decision: 'granted' }]), 400, 'CST_ERR_VALIDATION');
        expectError(await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', idempotencyKey: v }]), 400, 'CST_ERR_VALIDATION');
        expectError(await record([{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted', noticeVersion: v }]), 400, 'CST_ERR_VALIDATION');
        expectError(await call('POST', '/v1/consent/check', { key: reader, body: { checks: [{ subjectId: v, purpose: 'analytics.reporting' }] } }), 400, 'CST_ERR_VALIDATION');
        expectError(await call('PUT', '/v1/purposes/custom.nul', { body: { title: `t${v}`, legalBasis: 'contract' } }), 400, 'CST_ERR_VALIDATION');
        expectError(await call('PUT', '/v1/purposes/custom.nul', { body: { title: 't', description: v, legalBasis: 'contract' } }), 400, 'CST_ERR_VALIDATION');
        expectError(await call('POST', '/v1/api-keys', { body: { name: v, scopes: ['consent:read'] } }), 400, 'CST_ERR_VALIDATION');
      }
      expectError(await call('GET', '/v1/subjects/a%00b/consent', { key: reader }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('GET', '/v1/subjects/a%00b/consent/history', { key: reader }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('GET', '/v1/consent/check?subjectId=a%00b&purpose=analytics.reporting', { key: reader }), 400, 'CST_ERR_VALIDATION');
      // Well-formed astral characters are fine.
      const astral = `emoji-\u{1F600}-${kind}`;
      subjects.add(astral);
      expect((await record([{ subjectId: astral, purpose: 'analytics.reporting', decision: 'granted', noticeVersion: '\u{1F4DC}' }])).statusCode).toBe(201);
      expect((await call('GET', `/v1/consent/check?subjectId=${encodeURIComponent(astral)}&purpose=analytics.reporting`, { key: reader })).json<CheckBody>().allowed).toBe(true);
      await expectUntouched(s);
    });

    // Regression: the history cursor is an event id; any other string was a 500 on PostgreSQL (uuid column).
    it('rejects a history cursor that is not an event id with 400', async () => {
      const s = subject();
      for (const after of ['zzz', '1', "'; drop table consent_events; --"]) {
        expectError(await call('GET', `/v1/subjects/${s}/consent/history?after=${encodeURIComponent(after)}`, { key: reader }), 400, 'CST_ERR_VALIDATION');
      }
    });

    it('rejects a wrong content type with 415, invalid JSON with 400 CST_ERR_BAD_JSON', async () => {
      const s = subject();
      const json = JSON.stringify({ events: [{ subjectId: s, purpose: 'analytics.reporting', decision: 'granted' }] });
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
        expectError(await call('POST', '/v1/consent/events', { key: writer, body: json, headers: { 'content-type': contentType } }), 415, 'CST_ERR_UNSUPPORTED_MEDIA_TYPE');
      }
      for (const text of ['{', '{"events": [}', 'nul', "{'events': []}"]) {
        expectError(await call('POST', '/v1/consent/events', { key: writer, body: text, headers: { 'content-type': 'application/json' } }), 400, 'CST_ERR_BAD_JSON');
      }
      expectError(await call('POST', '/v1/consent/events', { key: writer, body: '', headers: { 'content-type': 'application/json' } }), 400);
      expectError(await call('POST', '/v1/consent/events', { key: writer, body: [] }), 400, 'CST_ERR_VALIDATION');
      expectError(await call('POST', '/v1/consent/events', { key: writer, body: { events: [], extra: 1 } }), 400, 'CST_ERR_VALIDATION');
      await expectUntouched(s);
    });

    // Regression: Fastify answers these before routing, with its own body ({"error":"Bad Request","statusCode":…}, or a 414).
    it('answers a malformed or overlong URL with a 400 in the error shape', async () => {
      for (const url of ['/v1/subjects/%ED%A0%80/consent', '/v1/subjects/%/consent/history', '/v1/purposes/%zz', '/v1/api-keys/%E2%82']) {
        expectError(await call('GET', url, { key: reader }), 400, 'CST_ERR_BAD_REQUEST');
      }
      // Past the router's 1024-character parameter limit (Fastify answered 414 in its own shape).
      expectError(await call('GET', `/v1/subjects/${'x'.repeat(1100)}/consent`, { key: reader }), 400, 'CST_ERR_BAD_REQUEST');
    });

    it('answers unknown routes with a 404 in the error shape', async () => {
      expectError(await call('GET', '/v1/nope'), 404, 'CST_ERR_NOT_FOUND');
      expectError(await call('GET', '/nope', { key: null }), 404, 'CST_ERR_NOT_FOUND');
      expectError(await call('POST', '/v1/subjects/x/consent', { body: {} }), 404, 'CST_ERR_NOT_FOUND');
      expectError(await call('DELETE', '/v1/purposes/analytics.reporting'), 404, 'CST_ERR_NOT_FOUND');
    });
  });

  describe('isolation', () => {
    // Ids that are prefixes, case variants, LIKE wildcards or look-alikes of one another.
    const tricky = fc.constantFrom('u', 'U', 'u1', 'u10', 'u_', 'u%', 'u ', ' u', 'ü', 'u\u0308', 'u/1', 'u.1', "u'", '%', '_');

    it('reading subject A never returns subject B’s events (state, history, check)', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.tuple(tricky, tricky).filter(([a, b]) => a !== b),
          fc.array(fc.tuple(fc.boolean(), fc.constantFrom('analytics.reporting', 'personalize', 'essential.service'), fc.constantFrom('granted', 'denied', 'withdrawn')), {
            minLength: 1,
            maxLength: 6,
          }),
          async ([sa, sb], plan) => {
            const run = `iso-${kind}-${++seq}-`;
            const a = run + sa;
            const b = run + sb;
            subjects.add(a).add(b);
            clock.advance(1000);
            const res = await record(plan.map(([toA, purpose, decision]) => ({ subjectId: toA ? a : b, purpose, decision })));
            expect(res.statusCode).toBe(201);
            const recorded = res.json<RecordBody>().events;
            for (const [self, other] of [
              [a, b],
              [b, a],
            ] as const) {
              const mine = recorded.filter((e) => e.subjectId === self);
              const history = (await call('GET', `/v1/subjects/${encodeURIComponent(self)}/consent/history`, { key: reader })).json<HistoryBody>();
              expect(history.subjectId).toBe(self);
              expect(history.events.map((e) => e.id)).toStrictEqual(mine.map((e) => e.id));
              expect(history.events.every((e) => e.subjectId === self)).toBe(true);

              const state = (await call('GET', `/v1/subjects/${encodeURIComponent(self)}/consent`, { key: reader })).json<StateBody>();
              const mineIds = new Set(mine.map((e) => e.id));
              for (const p of state.purposes) if (p.eventId !== null) expect(mineIds.has(p.eventId)).toBe(true);
              expect(state.purposes.filter((p) => p.eventId !== null).length).toBe(new Set(mine.map((e) => e.purpose)).size);

              const checks = (
                await call('POST', '/v1/consent/check', {
                  key: reader,
                  body: { checks: ['analytics.reporting', 'personalize'].flatMap((purpose) => [{ subjectId: self, purpose }, { subjectId: other, purpose }]) },
                })
              ).json<{ results: CheckBody[] }>().results;
              for (const r of checks) {
                const own = recorded.filter((e) => e.subjectId === r.subjectId && e.purpose === r.purpose);
                expect(r.eventId).toBe(own.length === 0 ? null : own[own.length - 1]!.id);
              }
              const one = (await call('GET', `/v1/consent/check?subjectId=${encodeURIComponent(self)}&purpose=personalize`, { key: reader })).json<CheckBody>();
              const own = mine.filter((e) => e.purpose === 'personalize');
              expect(one.eventId).toBe(own.length === 0 ? null : own[own.length - 1]!.id);
            }
          },
        ),
        { numRuns: 25 },
      );
    });
  });

  describe('system routes', () => {
    it('GET /healthz answers 200 ok without a key', async () => {
      const res = await call('GET', '/healthz', { key: null });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toStrictEqual({ status: 'ok', store: kind, version: VERSION });
    });

    it('GET /metrics counts requests and names no subject', async () => {
      const res = await call('GET', '/metrics', { key: null });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toContain('custodian_http_requests_total');
      expect(res.body).toMatch(/custodian_http_requests_total\{method="GET",route="\/v1\/subjects\/:subjectId\/consent",status="200"\} \d+/);
      expect(res.body).toContain('custodian_consent_events_total');
      expect(subjects.size).toBeGreaterThan(10);
      for (const s of subjects) expect(res.body).not.toContain(s);
      expect(res.body).not.toContain('auth-probe');
    });

    it('serves /openapi.json and /docs', async () => {
      const doc = await call('GET', '/openapi.json', { key: null });
      expect(doc.statusCode).toBe(200);
      // The served document is the committed one, whatever the store.
      expect(doc.json()).toStrictEqual(JSON.parse(await readFile(OPENAPI_PATH, 'utf8')));
      const docs = await app.inject({ method: 'GET', url: '/docs/' });
      expect(docs.statusCode).toBe(200);
      expect(docs.body).toContain('<html');
    });
  });
});
