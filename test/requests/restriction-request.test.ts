import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { runCli } from '../../src/cli/program.js';
import { buildServer } from '../../src/server/index.js';
import { STORE_KINDS, custodianFixture, type StoreFixture } from '../support/stores.js';

/* A restriction request end to end: runner → consent ledger → checks, events, HTTP and CLI lifting. */

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {} }, out: () => out.join(''), err: () => err.join('') };
}

describe.each(STORE_KINDS)('restriction requests on a %s store', (kind) => {
  let c: Custodian;
  let fixture: StoreFixture;
  let cleanup: () => Promise<void>;
  let n = 0;
  const user = () => `rr-${++n}-${Math.random().toString(36).slice(2, 8)}`;
  const events = async (subjectId: string) => (await c.outbox.read(0, 10_000)).filter((e) => e.subject === subjectId && !e.type.startsWith('consent.'));
  const restriction = (userId: string, jurisdiction = 'EU') => c.requests.create({ type: 'restriction', jurisdiction, identities: { userId }, authenticated: true, actor: 'app' });

  beforeAll(async () => {
    ({ custodian: c, fixture, cleanup } = await custodianFixture(kind));
  });
  afterAll(async () => cleanup());

  it('restricts the subject in the consent ledger and completes; a second request changes nothing more', async () => {
    const u = user();
    await c.ledger.record([{ subjectId: u, purpose: 'analytics.reporting', decision: 'granted' }], { actor: 'app' });
    expect((await c.ledger.check(u, 'analytics.reporting')).allowed).toBe(true);
    const r = await restriction(u);
    expect(r.status).toBe('in_progress');
    // No data map is needed: nothing is read from connected systems.
    expect(await c.runner.run(r.id, 'w-test')).toEqual({ id: r.id, status: 'completed', steps: 1 });
    const done = await c.requests.get(r.id);
    expect(done.outcome).toEqual({ restricted: 1, alreadyRestricted: 0, reason: 'subject_request' });
    expect(await c.ledger.check(u, 'analytics.reporting')).toMatchObject({ allowed: false, status: 'restricted' });
    expect(await c.ledger.restriction(u)).toMatchObject({ restricted: true, reason: 'subject_request', requestId: r.id });
    const got = await events(u);
    expect(got.map((e) => e.type)).toEqual(['subject.restricted', 'request.completed']);
    expect(got[0]!.data).toMatchObject({ requestId: r.id, reason: 'subject_request' });
    expect(got[1]!.data).toMatchObject({ requestId: r.id, requestType: 'restriction', status: 'completed' });

    // LGPD Art. 18, IV (bloqueio) goes the same way; the subject is already restricted: no second restriction event.
    const again = await restriction(u, 'BR');
    expect((await c.runner.run(again.id, 'w-test')).status).toBe('completed');
    expect((await c.requests.get(again.id)).outcome).toEqual({ restricted: 1, alreadyRestricted: 1, reason: 'subject_request' });
    expect((await events(u)).map((e) => e.type)).toEqual(['subject.restricted', 'request.completed', 'request.completed']);
    expect((await c.ledger.restriction(u)).requestId).toBe(r.id); // the restriction in force is still the first one
  });

  it('without a user id the request waits for the privacy team', async () => {
    const r = await c.requests.create({ type: 'restriction', jurisdiction: 'EU', identities: { email: 'ada@example.com' }, authenticated: true, actor: 'app' });
    expect((await c.runner.run(r.id, 'w-test')).status).toBe('awaiting_input');
    expect((await c.requests.history(r.id)).at(-1)!.reason).toContain('user_id');
  });

  it('reads and lifts restrictions over HTTP, with scopes, and never shows one subject another’s', async () => {
    const app = await buildServer(c, { logLevel: false });
    try {
      const admin = (await c.apiKeys.create({ name: 'officer', scopes: ['requests:admin', 'requests:read'], createdBy: 'test' })).secret;
      const reader = (await c.apiKeys.create({ name: 'dashboard', scopes: ['requests:read'], createdBy: 'test' })).secret;
      const consent = (await c.apiKeys.create({ name: 'app', scopes: ['consent:read'], createdBy: 'test' })).secret;
      const u = user();
      const other = user();
      const r = await restriction(u);
      await c.runner.run(r.id, 'w-http');
      const call = (method: 'GET' | 'POST', url: string, key: string, payload?: Record<string, unknown>) => app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, payload });

      const read = await call('GET', `/v1/restrictions/${u}`, reader);
      expect(read.statusCode).toBe(200);
      expect(read.json()).toMatchObject({ subjectId: u, restricted: true, reason: 'subject_request', requestId: r.id });
      expect((await call('GET', `/v1/restrictions/${other}`, reader)).json()).toEqual({ subjectId: other, restricted: false, reason: null, requestId: null, since: null, eventId: null, updatedAt: null });
      expect((await call('GET', `/v1/restrictions/${u}`, consent)).statusCode).toBe(403);
      expect((await app.inject({ method: 'GET', url: `/v1/restrictions/${u}` })).statusCode).toBe(401);

      // The check answers `restricted` over HTTP too (the response schema knows the status).
      const check = await call('GET', `/v1/consent/check?subjectId=${u}&purpose=personalize`, consent);
      expect([check.statusCode, check.json()]).toEqual([200, expect.objectContaining({ allowed: false, status: 'restricted', reason: 'processing restricted (GDPR Art. 18)' })]);

      expect((await call('POST', `/v1/restrictions/${u}/lift`, reader, { reason: 'subject_consent' })).statusCode).toBe(403);
      const bad = await call('POST', `/v1/restrictions/${u}/lift`, admin, { reason: 'because' });
      expect([bad.statusCode, bad.json<{ error: { code: string } }>().error.code]).toEqual([400, 'CST_ERR_VALIDATION']);
      const lifted = await call('POST', `/v1/restrictions/${u}/lift`, admin, { reason: 'subject_consent' });
      expect(lifted.statusCode).toBe(200);
      expect(lifted.json()).toMatchObject({ subjectId: u, restricted: false, changed: true, reason: 'subject_consent', since: null });
      expect((await call('POST', `/v1/restrictions/${u}/lift`, admin, { reason: 'subject_consent' })).json()).toMatchObject({ changed: false });
      expect((await events(u)).map((e) => e.type)).toEqual(['subject.restricted', 'request.completed', 'subject.restriction_lifted']);
      expect(await c.ledger.check(u, 'essential.service')).toMatchObject({ allowed: true });
      const audit = (await c.audit.list({ action: 'subject.restriction_lifted' })).entries;
      expect(audit.some((e) => e.actor.startsWith('key:'))).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('lifts from the CLI (`request lift-restriction`) and shows the restriction (`request restriction`)', async () => {
    const u = user();
    const r = await restriction(u);
    const args = ['--db', fixture.url, '--data-dir', fixture.dir];
    // `request run` without a terminal prints nothing per step here (no plan steps) and the request as JSON.
    const run = capture();
    expect(await runCli(['request', 'run', r.id, ...args], run.io)).toBe(0);
    expect(JSON.parse(run.out())).toMatchObject({ id: r.id, status: 'completed' });
    const show = capture();
    expect(await runCli(['request', 'restriction', u, ...args], show.io)).toBe(0);
    expect(JSON.parse(show.out())).toMatchObject({ subjectId: u, restricted: true });
    const bad = capture();
    expect(await runCli(['request', 'lift-restriction', u, '--reason', 'whatever', ...args], bad.io)).toBe(2);
    const lift = capture();
    expect(await runCli(['request', 'lift-restriction', u, '--reason', 'ground_not_established', ...args], lift.io)).toBe(0);
    expect(JSON.parse(lift.out())).toMatchObject({ subjectId: u, restricted: false, changed: true, reason: 'ground_not_established' });
    // The CLI process wrote to the same store: this process's cache hears it through the change feed or its TTL.
    expect((await c.ledger.restriction(u)).restricted).toBe(false);
    expect((await c.audit.list({ action: 'subject.restriction_lifted' })).entries.some((e) => e.actor === 'cli:operator')).toBe(true);
  });
});
