import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ManualClock, isCustodianError } from '../../src/core/index.js';
import { buildServer } from '../../src/server/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isCustodianError(err) ? err.code : String(err);
  }
}

/** The six-digit code of the latest verification mail of a request, read from the dev mail sink. */
async function codeFor(c: Custodian, id: string): Promise<string> {
  const mail = await c.requests.outbox(id);
  return /\b(\d{6})\b/.exec(mail.at(-1)!.body)![1]!;
}

describe.each(STORE_KINDS)('data subject requests on %s', (kind) => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let app: FastifyInstance;
  const clock = new ManualClock('2026-01-31T09:00:00.000Z');
  let writer: string;
  let admin: string;
  let reader: string;

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
    app = await buildServer(c, { logLevel: false });
    writer = (await c.apiKeys.create({ name: 'privacy center', scopes: ['requests:write', 'requests:read'], createdBy: 'test' })).secret;
    admin = (await c.apiKeys.create({ name: 'privacy team', scopes: ['requests:admin', 'requests:read'], createdBy: 'test' })).secret;
    reader = (await c.apiKeys.create({ name: 'dashboard', scopes: ['requests:read'], createdBy: 'test' })).secret;
  });
  afterAll(async () => {
    await app.close();
    await cleanup();
  });

  it('takes an access request, sends a code, verifies it, and keeps the identities sealed', async () => {
    const r = await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: ' Ada@Example.COM ' }, actor: 'test' });
    expect(r).toMatchObject({ status: 'awaiting_verification', regime: 'GDPR', identityKinds: ['email'], receivedAt: '2026-01-31T09:00:00.000Z', extended: false, overdue: false });
    // GDPR Art. 12(3): one month; 31 January has no 31 February, so the last day of February.
    expect(r.dueAt.slice(0, 10)).toBe('2026-02-28');
    const mail = await c.requests.outbox(r.id);
    expect(mail).toEqual([expect.objectContaining({ template: 'verification_code', to: 'ada@example.com' })]);
    // Nothing of the identity or the code is stored in clear.
    const rows = JSON.stringify(await sql`select * from requests`.execute(c.store.db)) + JSON.stringify(await sql`select * from mail_outbox`.execute(c.store.db)) + JSON.stringify(await sql`select * from verification_codes`.execute(c.store.db));
    expect(rows).not.toContain('ada@example.com');
    expect(rows).not.toContain(await codeFor(c, r.id));
    const verified = await c.requests.verify(r.id, await codeFor(c, r.id), 'test');
    expect(verified).toMatchObject({ status: 'in_progress', verifiedAt: '2026-01-31T09:00:00.000Z' });
    expect(await c.requests.identitiesOf(r.id)).toEqual({ email: ['ada@example.com'] });
    expect((await c.requests.history(r.id)).map((h) => [h.from, h.to])).toEqual([
      [null, 'received'],
      ['received', 'awaiting_verification'],
      ['awaiting_verification', 'in_progress'],
    ]);
  });

  it('closes a request after five wrong codes, and refuses an expired code', async () => {
    const r = await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: 'bob@example.com' }, actor: 'test' });
    const good = await codeFor(c, r.id);
    const wrong = good === '000000' ? '111111' : '000000';
    for (let i = 0; i < 4; i++) expect(await codeOf(c.requests.verify(r.id, wrong, 'test'))).toBe('CST_ERR_REQUEST_VERIFICATION_FAILED');
    expect(await codeOf(c.requests.verify(r.id, 'abc', 'test'))).toBe('CST_ERR_REQUEST_VERIFICATION_LOCKED');
    expect((await c.requests.get(r.id)).status).toBe('rejected');
    expect(await codeOf(c.requests.verify(r.id, good, 'test'))).toBe('CST_ERR_REQUEST_INVALID_TRANSITION');

    const late = await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: 'carol@example.com' }, actor: 'test' });
    const code = await codeFor(c, late.id);
    clock.advance(16 * 60_000);
    expect(await codeOf(c.requests.verify(late.id, code, 'test'))).toBe('CST_ERR_REQUEST_VERIFICATION_EXPIRED');
  });

  it('skips verification for authenticated requests and for CCPA opt-outs; erasure waits for approval', async () => {
    const authed = await c.requests.create({ type: 'erasure', jurisdiction: 'EU', identities: { userId: 'u-1' }, authenticated: true, actor: 'app' });
    expect(authed).toMatchObject({ status: 'awaiting_approval', channel: 'authenticated', identityKinds: ['user_id'] });
    expect(await c.requests.outbox(authed.id)).toEqual([]);
    const optOut = await c.requests.create({ type: 'opt_out', jurisdiction: 'US-CA', identities: { email: 'dan@example.com' }, actor: 'web' });
    expect(optOut).toMatchObject({ status: 'in_progress', regime: 'CCPA' });
    expect(await codeOf(c.requests.approve(optOut.id, 'officer'))).toBe('CST_ERR_REQUEST_INVALID_TRANSITION');
    expect((await c.requests.approve(authed.id, 'officer', 'checked')).status).toBe('in_progress');
  });

  it('refuses rights a jurisdiction lacks and malformed or unknown identities, without echoing values', async () => {
    expect(await codeOf(c.requests.create({ type: 'access', jurisdiction: 'XX', identities: { email: 'e@example.com' }, actor: 't' }))).toBe('CST_ERR_REQUEST_RIGHT_NOT_AVAILABLE');
    expect(await codeOf(c.requests.create({ type: 'portability', jurisdiction: 'CA', identities: { email: 'e@example.com' }, actor: 't' }))).toBe('CST_ERR_REQUEST_RIGHT_NOT_AVAILABLE');
    for (const identities of [{ email: "x' OR 1=1 --" }, { shoeSize: '42' }, { phone: 'call me maybe' }, {}, { email: [] }]) {
      let err: unknown;
      try {
        await c.requests.create({ type: 'access', jurisdiction: 'EU', identities, actor: 't' });
      } catch (e) {
        err = e;
      }
      expect(isCustodianError(err) && err.code).toBe('CST_ERR_REQUEST_BAD_IDENTITY');
      expect(JSON.stringify(err) + (err as Error).message).not.toMatch(/OR 1=1|call me maybe/);
    }
  });

  it('extends once within the deadline as the regime allows; rejects with a reason; lists by deadline', async () => {
    const r = await c.requests.create({ type: 'access', jurisdiction: 'US-CA', identities: { userId: 'u-2' }, authenticated: true, actor: 'app' });
    const due = Date.parse(r.dueAt);
    expect(due - Date.parse(r.receivedAt)).toBe(45 * 86_400_000); // CCPA §1798.130(a)(2)
    const extended = await c.requests.extend(r.id, 'officer', 'a complex request across many systems');
    expect(Date.parse(extended.dueAt) - due).toBe(45 * 86_400_000);
    expect(await codeOf(c.requests.extend(r.id, 'officer', 'again'))).toBe('CST_ERR_REQUEST_INVALID_TRANSITION');
    expect(await codeOf(c.requests.reject(r.id, 'officer', ' '))).toBe('CST_ERR_VALIDATION');
    expect((await c.requests.reject(r.id, 'officer', 'manifestly unfounded')).status).toBe('rejected');

    const open = await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { userId: 'u-3' }, authenticated: true, actor: 'app' });
    expect((await c.requests.list({ overdue: true })).map((x) => x.id)).not.toContain(open.id);
    clock.advance(40 * 86_400_000);
    const overdue = await c.requests.list({ overdue: true });
    expect(overdue.map((x) => x.id)).toContain(open.id);
    expect(overdue.every((x) => x.overdue)).toBe(true);
    const dues = (await c.requests.list({})).map((x) => x.dueAt);
    expect(dues).toEqual([...dues].sort());
  });

  it('raises each deadline alert once: due soon, then overdue', async () => {
    const r = await c.requests.create({ type: 'access', jurisdiction: 'US-CA', identities: { userId: 'u-alert' }, authenticated: true, actor: 'app' });
    const mine = async () => (await c.requests.sweepDeadlines()).filter((a) => a.id === r.id).map((a) => a.alert);
    expect(await mine()).toEqual([]);
    clock.advance(40 * 86_400_000); // CCPA 45 days: 5 left
    expect(await mine()).toEqual(['due_soon']);
    expect(await mine()).toEqual([]); // once
    clock.advance(6 * 86_400_000);
    expect(await mine()).toEqual(['overdue']);
    expect(await mine()).toEqual([]);
    const actions = (await c.audit.list({ action: 'request.overdue' })).entries.filter((e) => e.targetRef === r.id);
    expect(actions).toHaveLength(1);
  });

  it('keeps the lifecycle append-only in the database itself', async () => {
    await expect(sql`update request_events set reason = 'rewritten'`.execute(c.store.db)).rejects.toThrow(/append-only|request_events/);
    await expect(sql`delete from request_events`.execute(c.store.db)).rejects.toThrow(/append-only|request_events/);
  });

  it('serves the lifecycle over HTTP with the requests scopes', async () => {
    const post = (url: string, key: string, payload: Record<string, unknown>) => app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${key}` }, payload });
    const created = await post('/v1/requests', writer, { type: 'erasure', jurisdiction: 'UK', identities: { email: 'erin@example.com' } });
    expect(created.statusCode).toBe(201);
    const r = created.json<{ id: string; status: string; regime: string }>();
    expect(r).toMatchObject({ status: 'awaiting_verification', regime: 'UK_GDPR' });
    expect(created.body).not.toContain('erin@example.com');
    expect((await post(`/v1/requests/${r.id}/verify`, writer, { code: await codeFor(c, r.id) })).json<{ status: string }>().status).toBe('awaiting_approval');
    expect((await post(`/v1/requests/${r.id}/approve`, writer, {})).statusCode).toBe(403);
    expect((await post(`/v1/requests/${r.id}/approve`, admin, { reason: 'identity checked' })).json<{ status: string }>().status).toBe('in_progress');
    const got = await app.inject({ method: 'GET', url: `/v1/requests/${r.id}`, headers: { authorization: `Bearer ${reader}` } });
    expect(got.json<{ history: Array<{ to: string; actor: string }> }>().history.map((h) => h.to)).toEqual(['received', 'awaiting_verification', 'awaiting_approval', 'in_progress']);
    const missing = await app.inject({ method: 'GET', url: '/v1/requests/0190a000-0000-7000-8000-000000000000', headers: { authorization: `Bearer ${reader}` } });
    expect([missing.statusCode, missing.json<{ error: { code: string } }>().error.code]).toEqual([404, 'CST_ERR_REQUEST_NOT_FOUND']);
    const bad = await post('/v1/requests', writer, { type: 'access', jurisdiction: 'EU', identities: { email: 'not-an-address' } });
    expect([bad.statusCode, bad.json<{ error: { code: string } }>().error.code]).toEqual([400, 'CST_ERR_REQUEST_BAD_IDENTITY']);
    expect(bad.body).not.toContain('not-an-address');
    const list = await app.inject({ method: 'GET', url: '/v1/requests?status=in_progress', headers: { authorization: `Bearer ${reader}` } });
    expect(list.json<{ requests: Array<{ status: string }> }>().requests.every((x) => x.status === 'in_progress')).toBe(true);
  });
});
