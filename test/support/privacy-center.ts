import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { createCustodian, loadConfig, type ConfigOverrides, type Custodian } from '../../src/app/index.js';
import { systemClock, type Clock } from '../../src/core/index.js';
import type { SessionStore } from '../../src/privacy-center/index.js';
import { buildServer } from '../../src/server/index.js';
import { storeFixture, type StoreKindUnderTest } from './stores.js';

/*
 * Signing in to the privacy center the way its page does, for the tests that call `/v1/privacy/…`:
 *
 *   POST /v1/privacy/sign-in          { email }                → 202 { challengeId }; the code goes to the mail sink
 *   POST /v1/privacy/sign-in/verify   { challengeId, code }    → 200, the session cookie and { csrfToken }
 *   then every call                   cookie (+ X-CSRF-Token for changes)
 *
 * `privacyCenterServer` wires a Custodian with the given privacy center settings and its (not listening) server,
 * `codeFor` reads the code from the dev mail sink, `signIn` does the two steps, `as` makes the headers of a call
 * in the session, and `expectError` checks a typed error answer. Addresses are on example.com.
 *
 * @example
 * const { custodian, app, cleanup } = await privacyCenterServer(kind, { clock, privacyCenter: { sessionMinutes: 30 } });
 * const ada = await signIn(app, custodian, 'ada@example.com');
 * await app.inject({ method: 'PUT', url: '/v1/privacy/consent/analytics.reporting', payload: { decision: 'granted' }, headers: as(ada) });
 * expectError(await app.inject({ method: 'GET', url: '/v1/privacy/consent' }), 401, 'CST_ERR_PRIVACY_SESSION_REQUIRED');
 */

/** A signed-in privacy center session as the browser holds it: the cookie (`name=value`) and the CSRF token. */
export interface Signed {
  readonly cookie: string;
  readonly csrf: string;
}

/** A wired Custodian on a fresh store and its Fastify instance, with one cleanup for both. */
export interface PrivacyCenterServer {
  readonly custodian: Custodian;
  readonly app: FastifyInstance;
  /** Closes the server, then the Custodian, and drops the store. */
  readonly cleanup: () => Promise<void>;
}

/** Options of {@link privacyCenterServer}. */
export interface PrivacyCenterServerOptions {
  readonly clock?: Clock;
  /** The privacy center settings (session minutes, branding file, web folder). */
  readonly privacyCenter: NonNullable<ConfigOverrides['privacyCenter']>;
  /** Where sign-in challenges and sessions live (`createCustodian`'s option); by default in the store (`StoreSessionStore`). */
  readonly privacyCenterSessions?: SessionStore;
}

/**
 * A Custodian on a fresh store of `kind` with `options.privacyCenter`, and its server built without listening
 * (requests through `app.inject`, or `app.listen` for a browser).
 */
export async function privacyCenterServer(kind: StoreKindUnderTest, options: PrivacyCenterServerOptions): Promise<PrivacyCenterServer> {
  const fixture = await storeFixture(kind);
  let custodian: Custodian | undefined;
  let app: FastifyInstance;
  try {
    const config = loadConfig({}, { dbUrl: fixture.url, dataDir: fixture.dir, logLevel: 'silent', privacyCenter: options.privacyCenter });
    custodian = await createCustodian(config, { clock: options.clock ?? systemClock, ...(options.privacyCenterSessions !== undefined ? { privacyCenterSessions: options.privacyCenterSessions } : {}) });
    app = await buildServer(custodian, { logLevel: false });
  } catch (err) {
    await custodian?.close();
    await fixture.cleanup();
    throw err;
  }
  const wired = custodian;
  return {
    custodian: wired,
    app,
    cleanup: async () => {
      await app.close();
      await wired.close();
      await fixture.cleanup();
    },
  };
}

/** Checks a typed error answer: its status and `error.code` (the body is shown when the status differs). */
export function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.json<{ error: { code: string } }>().error.code).toBe(code);
}

/**
 * The latest sign-in code mailed to `email`, read from the dev mail sink through the engine. With `waitMs` it
 * looks again every 100 ms until then (a browser asks for the code on its own time); without, once.
 */
export async function codeFor(custodian: Custodian, email: string, options: { readonly waitMs?: number } = {}): Promise<string> {
  const until = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    const mail = (await custodian.requests.outbox()).filter((m) => m.to === email && m.template === 'privacy_center_code').at(-1);
    const code = mail?.body.match(/\b(\d{6})\b/)?.[1];
    if (code !== undefined) return code;
    if (Date.now() >= until) throw new Error('no sign-in code in the mail sink');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The session a successful `POST /v1/privacy/sign-in/verify` opened: its cookie and CSRF token. */
export function sessionOf(verified: LightMyRequestResponse): Signed {
  return { cookie: String(verified.headers['set-cookie']).split(';')[0]!, csrf: verified.json<{ csrfToken: string }>().csrfToken };
}

/**
 * Signs `email` in: asks for a code (202), reads it from the mail sink and verifies it (200). `headers` go with
 * both calls (`sec-gpc`, `x-forwarded-proto`, …).
 */
export async function signIn(app: FastifyInstance, custodian: Custodian, email: string, headers: Record<string, string> = {}): Promise<Signed & { readonly challengeId: string }> {
  const start = await app.inject({ method: 'POST', url: '/v1/privacy/sign-in', payload: { email }, headers });
  expect(start.statusCode, start.body).toBe(202);
  const { challengeId } = start.json<{ challengeId: string }>();
  const verified = await app.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code: await codeFor(custodian, email) }, headers });
  expect(verified.statusCode, verified.body).toBe(200);
  return { ...sessionOf(verified), challengeId };
}

/** The headers of a call in session `s`: its cookie and CSRF token, and `extra`. */
export const as = (s: Signed, extra: Record<string, string> = {}): Record<string, string> => ({ cookie: s.cookie, 'x-csrf-token': s.csrf, ...extra });

/** What a batch of codes sent at once for one challenge came to: sessions opened, and refusals by error code. */
export interface ParallelVerification {
  readonly opened: number;
  readonly refused: Readonly<Record<string, number>>;
}

/** Sends every code of `codes` for `challengeId` to `POST /v1/privacy/sign-in/verify` at once, and tallies the answers. */
export async function verifyInParallel(app: FastifyInstance, challengeId: string, codes: readonly string[]): Promise<ParallelVerification> {
  const answers = await Promise.all(codes.map((code) => app.inject({ method: 'POST', url: '/v1/privacy/sign-in/verify', payload: { challengeId, code } })));
  const refused: Record<string, number> = {};
  let opened = 0;
  for (const res of answers) {
    if (res.statusCode === 200) opened++;
    else {
      const code = res.json<{ error: { code: string } }>().error.code;
      refused[code] = (refused[code] ?? 0) + 1;
    }
  }
  return { opened, refused };
}

/** The codes of one challenge the privacy center compared, as its audit log tells (see {@link codesCompared}). */
export interface CodesCompared {
  /** `verification_failed` entries of any reason. */
  readonly failed: number;
  /** Wrong codes: `verification_failed` with `wrong_code`, or `used_up` for the last one. */
  readonly wrong: number;
  /** Right codes: `verification_succeeded`, or `verification_failed` with `already_used` when another call used the code first. */
  readonly right: number;
}

/** The codes of challenge `challengeId` the privacy center compared, counted in its audit log. */
export async function codesCompared(custodian: Custodian, challengeId: string): Promise<CodesCompared> {
  const reasons = (await custodian.audit.list({ action: 'privacy_center.verification_failed', limit: 1000 })).entries.filter((e) => e.targetRef === challengeId).map((e) => (e.details as { reason?: string }).reason);
  const succeeded = (await custodian.audit.list({ action: 'privacy_center.verification_succeeded', limit: 1000 })).entries.filter((e) => (e.details as { challengeId?: string }).challengeId === challengeId);
  return {
    failed: reasons.length,
    wrong: reasons.filter((r) => r === 'wrong_code' || r === 'used_up').length,
    right: succeeded.length + reasons.filter((r) => r === 'already_used').length,
  };
}
