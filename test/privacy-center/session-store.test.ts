import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustodian, loadConfig, type Custodian } from '../../src/app/index.js';
import { ManualClock } from '../../src/core/index.js';
import { MemorySessionStore, StoreSessionStore } from '../../src/privacy-center/index.js';
import { buildServer } from '../../src/server/index.js';
import { codeFor, sessionOf } from '../support/privacy-center.js';
import { STORE_KINDS, custodianFixture, storeFixture, type StoreFixture, type StoreKindUnderTest } from '../support/stores.js';
import { sessionStoreConformance } from './session-store.case.js';

sessionStoreConformance('MemorySessionStore', async () => {
  const clock = new ManualClock('2026-11-22T10:00:00.000Z');
  return { store: new MemorySessionStore({ now: () => clock.now() }), advance: (ms) => clock.advance(ms), now: () => clock.now(), cleanup: async () => undefined };
});

for (const kind of STORE_KINDS) {
  sessionStoreConformance(`StoreSessionStore (${kind})`, async () => {
    const clock = new ManualClock('2026-11-22T10:00:00.000Z');
    const f = await custodianFixture(kind, { clock });
    const store = new StoreSessionStore({ store: f.custodian.store, now: () => clock.now(), cipher: f.custodian.keyring });
    return { store, advance: (ms) => clock.advance(ms), now: () => clock.now(), cleanup: f.cleanup };
  });
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Runs `fn` while a trigger makes the store refuse every `privacy_center.verification_succeeded` audit entry. */
async function refuseSignInEntries(kind: StoreKindUnderTest, custodian: Custodian, fn: () => Promise<void>): Promise<void> {
  const db = custodian.store.db;
  if (kind === 'sqlite') {
    await sql`create trigger refuse_sign_in_entries before insert on audit_entries when new.action = 'privacy_center.verification_succeeded'
      begin select raise(abort, 'refused by the test'); end`.execute(db);
  } else {
    await sql`create function refuse_sign_in_entries() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$`.execute(db);
    await sql`create trigger refuse_sign_in_entries before insert on audit_entries for each row
      when (new.action = 'privacy_center.verification_succeeded') execute function refuse_sign_in_entries()`.execute(db);
  }
  try {
    await fn();
  } finally {
    await sql`drop trigger refuse_sign_in_entries${sql.raw(kind === 'postgres' ? ' on audit_entries' : '')}`.execute(db);
    if (kind === 'postgres') await sql`drop function refuse_sign_in_entries()`.execute(db);
  }
}

describe.each(STORE_KINDS)('privacy center sessions in the store, shared by replicas (%s)', (kind) => {
  const clock = new ManualClock('2026-11-22T10:00:00.000Z');
  let fixture: StoreFixture;
  let one: Custodian;
  let two: Custodian;
  let appOne: FastifyInstance;
  let appTwo: FastifyInstance;

  beforeAll(async () => {
    fixture = await storeFixture(kind);
    // Two `serve` replicas: same store, same master key file, each its own process state.
    const config = loadConfig({}, { dbUrl: fixture.url, dataDir: fixture.dir, logLevel: 'silent', generateDevMasterKey: true, privacyCenter: { sessionMinutes: 30 } });
    one = await createCustodian(config, { clock });
    two = await createCustodian(config, { clock });
    appOne = await buildServer(one, { logLevel: false });
    appTwo = await buildServer(two, { logLevel: false });
  });
  afterAll(async () => {
    await appOne?.close();
    await appTwo?.close();
    await one?.close();
    await two?.close();
    await fixture?.cleanup();
  });

  it('accepts on one replica the code asked for and the session opened on the other, and signs out everywhere', async () => {
    const email = 'replica@example.com';
    const start = await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } });
    const { challengeId } = start.json<{ challengeId: string }>();
    const verified = await appTwo.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: await codeFor(one, email) } });
    expect(verified.statusCode, verified.body).toBe(200);
    const { cookie, csrf } = sessionOf(verified);
    const onOne = await appOne.inject({ method: 'GET', url: '/v1/privacy/session', headers: { cookie } });
    expect(onOne.statusCode).toBe(200);
    expect(onOne.json()).toMatchObject({ email, csrfToken: csrf });
    expect((await appOne.inject({ method: 'GET', url: '/v1/privacy/consent', headers: { cookie } })).statusCode).toBe(200);
    // The code was used on replica two: replica one refuses it too.
    const again = await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: await codeFor(one, email) } });
    expect(again.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_PRIVACY_CODE_EXPIRED');

    const out = await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-out', headers: { cookie, 'x-csrf-token': csrf } });
    expect(out.statusCode).toBe(204);
    expect((await appTwo.inject({ method: 'GET', url: '/v1/privacy/session', headers: { cookie } })).statusCode).toBe(204);
  });

  it('counts wrong codes across replicas', async () => {
    const email = 'guesser@example.com';
    const { challengeId } = (await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>();
    const code = await codeFor(one, email);
    const wrong = code === '000000' ? '111111' : '000000';
    const lefts: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const app = i % 2 === 0 ? appOne : appTwo;
      lefts.push((await app.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: wrong } })).json<{ error: { details: { attemptsLeft: number } } }>().error.details.attemptsLeft);
    }
    expect(lefts).toStrictEqual([4, 3, 2, 1]);
    const last = await appTwo.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: wrong } });
    expect(last.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_PRIVACY_CODE_EXPIRED');
    const right = await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code } });
    expect(right.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_PRIVACY_CODE_EXPIRED');
  });

  it('refuses an expired session on every replica and deletes it', async () => {
    const email = 'expiry@example.com';
    const { challengeId } = (await appTwo.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>();
    const verified = await appTwo.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: await codeFor(one, email) } });
    const cookie = String(verified.headers['set-cookie']).split(';')[0]!;
    const tokenHash = sha256(cookie.slice(cookie.indexOf('=') + 1));
    expect((await one.store.db.selectFrom('privacy_sessions').select('token_hash').where('token_hash', '=', tokenHash).execute())).toHaveLength(1);
    clock.advance(30 * 60_000);
    const res = await appOne.inject({ method: 'GET', url: '/v1/privacy/consent', headers: { cookie } });
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_PRIVACY_SESSION_REQUIRED');
    expect((await appTwo.inject({ method: 'GET', url: '/v1/privacy/session', headers: { cookie } })).statusCode).toBe(204);
    expect(await one.store.db.selectFrom('privacy_sessions').select('token_hash').where('token_hash', '=', tokenHash).execute()).toHaveLength(0);
    // The end of the session is on record once, as an expiry, naming the subject by reference only.
    const ended = (await one.audit.list({ action: 'privacy_center.session_ended' })).entries.filter((e) => (e.details as { reason?: string }).reason === 'expired');
    expect(ended).toHaveLength(1);
  });

  it('stores the token only as its SHA-256 and the address only sealed', async () => {
    const email = 'plaintext@example.com';
    const { challengeId } = (await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>();
    const code = await codeFor(one, email);
    const openChallenge = JSON.stringify(await one.store.db.selectFrom('privacy_sign_in_challenges').selectAll().execute());
    expect(openChallenge).not.toContain(email);
    expect(openChallenge).not.toContain(code);
    const verified = await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code } });
    const token = String(verified.headers['set-cookie']).split(';')[0]!.split('=')[1]!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const sessions = await one.store.db.selectFrom('privacy_sessions').selectAll().execute();
    const challenges = await one.store.db.selectFrom('privacy_sign_in_challenges').selectAll().execute();
    const dump = JSON.stringify([sessions, challenges]);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(email);
    expect(dump).not.toContain(code);
    const row = sessions.find((r) => r.token_hash === sha256(token));
    expect(row).toBeDefined();
    expect(Object.keys(row!).sort()).toStrictEqual(['created_at', 'email_sealed', 'expires_at', 'subject_id', 'token_hash', 'user_id']);
    expect(row!.subject_id).toBe(`pc_${one.keyring.keyedDigest(`privacy-center:subject:email:${email}`)}`);
    // A used code keeps its row (the send limit counts it) but not the address.
    expect(challenges.find((c) => c.id === challengeId)).toMatchObject({ consumed: 1, email_sealed: null });
  });

  it('stores a session and its verification_succeeded entry in one transaction: both, or neither when the entry cannot be written', async () => {
    const email = 'atomic@example.com';
    const subjectId = `pc_${one.keyring.keyedDigest(`privacy-center:subject:email:${email}`)}`;
    const sessionsOf = async () => (await one.store.db.selectFrom('privacy_sessions').select('token_hash').where('subject_id', '=', subjectId).execute()).map((r) => r.token_hash);
    const verify = async () => {
      const { challengeId } = (await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>();
      return { challengeId, verified: await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: await codeFor(one, email) } }) };
    };

    const { challengeId, verified } = await verify();
    expect(verified.statusCode, verified.body).toBe(200);
    const { cookie } = sessionOf(verified);
    const tokenHash = sha256(cookie.slice(cookie.indexOf('=') + 1));
    expect(await sessionsOf()).toStrictEqual([tokenHash]);
    const entry = (await one.audit.list({ action: 'privacy_center.verification_succeeded' })).entries.find((e) => (e.details as { challengeId?: string }).challengeId === challengeId);
    expect(entry?.actor).toBe(`privacy_center:${tokenHash.slice(0, 16)}`);
    if (kind === 'postgres') {
      // The very same transaction wrote both rows (xmin: the id of the transaction that inserted a row).
      const xmin = await sql<{ table: string; xmin: string }>`select 'session' as table, xmin::text from privacy_sessions where token_hash = ${tokenHash}
        union all select 'entry', xmin::text from audit_entries where id = ${entry!.id}`.execute(one.store.db);
      expect(xmin.rows).toHaveLength(2);
      expect(xmin.rows[0]!.xmin).toBe(xmin.rows[1]!.xmin);
    }

    // The audit log refuses the entry (a trigger of this test): the sign-in fails and leaves no session behind.
    const entries = async () => (await one.audit.list({ subjectId, limit: 1000 })).entries.length;
    const before = await entries();
    await refuseSignInEntries(kind, one, async () => {
      const { verified: refused } = await verify();
      expect(refused.statusCode).toBe(500);
      expect(refused.headers['set-cookie']).toBeUndefined();
    });
    expect(await sessionsOf()).toStrictEqual([tokenHash]);
    expect(await entries()).toBe(before);
  });

  it('sweeps expired sessions and old challenges in bounded batches', async () => {
    const store = new StoreSessionStore({ store: one.store, now: () => clock.now(), cipher: one.keyring }, { sweepBatch: 2 });
    const base = clock.now();
    for (let i = 0; i < 3; i++) {
      await store.putSession({ tokenHash: sha256(`sweep-${i}`), email: 'sweep@example.com', subjectId: 's', userId: null, createdAt: base, expiresAt: base + 1000 });
    }
    clock.advance(2 * 60 * 60_000);
    const first = await store.sweep();
    expect(first.sessions).toBe(2);
    expect(first.challenges).toBe(2);
    const rest = await store.sweep();
    expect(rest.sessions).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 10 && (await store.sweep()).challenges > 0; i++);
    expect(await one.store.db.selectFrom('privacy_sessions').select('token_hash').where('expires_at', '<=', new Date(clock.now()).toISOString()).execute()).toHaveLength(0);
    expect(await one.store.db.selectFrom('privacy_sign_in_challenges').select('id').execute()).toHaveLength(0);
  });

  it('is swept through the privacy center (what serve runs every minute)', async () => {
    const store = new StoreSessionStore({ store: one.store, now: () => clock.now(), cipher: one.keyring });
    await store.putSession({ tokenHash: sha256('scheduled-sweep'), email: 'sweep@example.com', subjectId: 's', userId: null, createdAt: clock.now(), expiresAt: clock.now() + 1000 });
    clock.advance(5000);
    const swept = await one.privacyCenter.sweepSessions();
    expect(swept.sessions).toBeGreaterThanOrEqual(1);
    expect(await one.store.db.selectFrom('privacy_sessions').select('token_hash').where('token_hash', '=', sha256('scheduled-sweep')).execute()).toHaveLength(0);
  });

  it('ends every session and pending code when an operator shreds the sessions key on another replica', async () => {
    const email = 'shredded-sessions@example.com';
    const { challengeId } = (await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>();
    const verified = await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: await codeFor(one, email) } });
    const { cookie } = sessionOf(verified);
    const tokenHash = sha256(cookie.slice(cookie.indexOf('=') + 1));
    expect((await appOne.inject({ method: 'GET', url: '/v1/privacy/session', headers: { cookie } })).statusCode).toBe(200); // key cached on one
    const pending = (await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>().challengeId;
    const pendingCode = await codeFor(one, email);

    await two.keyring.shredSubject('privacy-center:sessions', { reason: 'end all privacy center sessions', actor: 'test' });

    // Replica one learns of the shredding at once on SQLite, on the NOTIFY within milliseconds on PostgreSQL.
    let status = 0;
    for (let i = 0; i < 100 && status !== 204; i++) {
      status = (await appOne.inject({ method: 'GET', url: '/v1/privacy/session', headers: { cookie } })).statusCode;
      if (status !== 204) await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe(204); // signed out, not an error
    const consent = await appOne.inject({ method: 'GET', url: '/v1/privacy/consent', headers: { cookie } });
    expect([consent.statusCode, consent.json<{ error: { code: string } }>().error.code]).toStrictEqual([401, 'CST_ERR_PRIVACY_SESSION_REQUIRED']);
    expect(await one.store.db.selectFrom('privacy_sessions').select('token_hash').where('token_hash', '=', tokenHash).execute()).toHaveLength(0);
    const late = await appTwo.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId: pending, code: pendingCode } });
    expect(late.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_PRIVACY_CODE_EXPIRED');

    // Signing in again works, under a new key.
    const again = (await appTwo.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>().challengeId;
    const back = await appOne.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId: again, code: await codeFor(one, email) } });
    expect(back.statusCode, back.body).toBe(200);
    expect((await appTwo.inject({ method: 'GET', url: '/v1/privacy/session', headers: { cookie: sessionOf(back).cookie } })).json()).toMatchObject({ email });
  });
});

describe('privacy center sessions in memory', () => {
  it('records the verification_succeeded entry in a transaction of its own before the session is kept, and refuses the sign-in when it cannot', async () => {
    const clock = new ManualClock('2026-11-22T10:00:00.000Z');
    const fixture = await storeFixture('sqlite');
    const config = loadConfig({}, { dbUrl: fixture.url, dataDir: fixture.dir, logLevel: 'silent', generateDevMasterKey: true, privacyCenter: { sessionMinutes: 30 } });
    const custodian = await createCustodian(config, { clock, privacyCenterSessions: new MemorySessionStore({ now: () => clock.now() }) });
    const app = await buildServer(custodian, { logLevel: false });
    try {
      const signIn = async (email: string) => {
        const { challengeId } = (await app.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email } })).json<{ challengeId: string }>();
        return { challengeId, verified: await app.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: await codeFor(custodian, email) } }) };
      };
      const { challengeId, verified } = await signIn('memory@example.com');
      expect(verified.statusCode, verified.body).toBe(200);
      const { cookie } = sessionOf(verified);
      expect((await app.inject({ method: 'GET', url: '/v1/privacy/session', headers: { cookie } })).statusCode).toBe(200);
      const entry = (await custodian.audit.list({ action: 'privacy_center.verification_succeeded' })).entries.find((e) => (e.details as { challengeId?: string }).challengeId === challengeId);
      expect(entry?.actor).toBe(`privacy_center:${sha256(cookie.slice(cookie.indexOf('=') + 1)).slice(0, 16)}`);
      expect(await custodian.store.db.selectFrom('privacy_sessions').select('token_hash').execute()).toHaveLength(0);

      await refuseSignInEntries('sqlite', custodian, async () => {
        const { verified: refused } = await signIn('memory-refused@example.com');
        expect(refused.statusCode).toBe(500);
        expect(refused.headers['set-cookie']).toBeUndefined();
      });
    } finally {
      await app.close();
      await custodian.close();
      await fixture.cleanup();
    }
  });
});
