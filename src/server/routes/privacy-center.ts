import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { StaticApp, notFound, pageHeaders } from '../static-app.js';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { CustodianError, JURISDICTION_CODE_PATTERN, LEGAL_BASIS_KEYS, REQUEST_TYPES, mayRequest } from '../../core/index.js';
import { CONSENT_STATUSES } from '../../ledger/index.js';
import { PRIVACY_CENTER_LANGUAGES, type Branding, type PrivacySession } from '../../privacy-center/index.js';
import { REQUEST_STATUSES } from '../../rights/engine/lifecycle.js';
import { errorBody, purposeKey } from '../schemas.js';

const COOKIE = 'cst_pc';
const SECURE_COOKIE = '__Host-cst_pc';
const CSRF_HEADER = 'x-csrf-token';

const errors = { 400: errorBody.describe('Bad input'), 401: errorBody.describe('No valid privacy center session'), 403: errorBody.describe('Missing CSRF token or another web origin') } as const;

const requestView = z.object({
  id: z.string(),
  type: z.enum(REQUEST_TYPES),
  status: z.enum(REQUEST_STATUSES),
  jurisdiction: z.string(),
  receivedAt: z.string(),
  dueAt: z.string(),
  extended: z.boolean(),
  completedAt: z.string().nullable(),
  overdue: z.boolean(),
});
const consentView = z.object({
  jurisdiction: z.string(),
  language: z.enum(PRIVACY_CENTER_LANGUAGES).describe('The language of the purposes’ titles and descriptions'),
  purposes: z
    .array(
      z.object({
        key: z.string(),
        title: z.string(),
        description: z.string(),
        legalBasis: z.enum(LEGAL_BASIS_KEYS),
        legalBasisArticle: z.string(),
        changeable: z.boolean(),
        status: z.enum(CONSENT_STATUSES),
        decidedAt: z.string().nullable(),
        method: z.string().nullable(),
        gpcOptOut: z.boolean(),
      }),
    )
    .readonly(),
  gpc: z.object({
    signal: z.boolean(),
    honoured: z.boolean(),
    applied: z.array(z.string()).readonly().describe('Purposes the signal opted out on this call'),
    optedOut: z.array(z.string()).readonly().describe('Offered purposes whose current decision is an opt-out by the signal'),
  }),
});
const languageQuery = z.object({ language: z.enum(PRIVACY_CENTER_LANGUAGES).optional().describe('Language of the purpose texts (default: the branding’s default language)') }).strict();
const rectifiableFieldView = z.object({
  field: z.string().describe('The field’s address, the key of a correction'),
  category: z.string(),
  categoryLabel: z.string().describe('An English label derived from the data category'),
  description: z.string().nullable().describe('The field’s description in the data map'),
  system: z.string().describe('The name of the system holding the field'),
});
const brandingView = z.object({
  name: z.string(),
  logoUrl: z.string().nullable(),
  colors: z.object({ primary: z.string(), primaryText: z.string(), background: z.string(), text: z.string(), focus: z.string() }),
  languages: z.array(z.enum(PRIVACY_CENTER_LANGUAGES)).readonly(),
  defaultLanguage: z.enum(PRIVACY_CENTER_LANGUAGES),
  jurisdiction: z.string(),
  jurisdictions: z.array(z.string()).readonly(),
  requestTypes: z.array(z.enum(REQUEST_TYPES)).readonly(),
  privacyPolicyUrl: z.string().nullable(),
  available: z.record(z.string(), z.array(z.enum(REQUEST_TYPES)).readonly()).describe('Request types offered per jurisdiction that the jurisdiction grants'),
});
const sessionView = z.object({ email: z.string().describe('The verified address of this session (shown to its owner only).'), csrfToken: z.string(), expiresAt: z.string() });
const requestId = z.object({ id: z.uuid() }).strict();

/**
 * The privacy center (docs/privacy-center.md): its public JSON API under `/v1/privacy` (sign-in by e-mail code,
 * then a cookie session scoped to that address) and the page itself at `/privacy`, served with a strict CSP.
 */
export function privacyCenterRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const center = custodian.privacyCenter;
  const webApp = new StaticApp('privacy', custodian.config.privacyCenter.webDir);

  const cookieName = (request: FastifyRequest) => (isHttps(request) ? SECURE_COOKIE : COOKIE);
  const tokenOf = (request: FastifyRequest) => readCookie(request.headers.cookie, cookieName(request));
  const gpcOf = (request: FastifyRequest) => request.headers['sec-gpc'] === '1';
  const session = (request: FastifyRequest) => center.session(tokenOf(request), { requestId: request.id });
  /** A state-changing call: same origin only, and with the session's CSRF token (double submit of a derived token). */
  const changing = async (request: FastifyRequest): Promise<PrivacySession> => {
    const s = await session(request);
    const csrf = request.headers[CSRF_HEADER];
    center.checkCsrf(s, typeof csrf === 'string' ? csrf : undefined);
    return s;
  };

  return async (app) => {
    // Cross-site calls are refused before anything else: the Origin (sent by browsers on every POST/PUT/DELETE)
    // must name this server's host (the scheme is not compared, so TLS may end at a proxy), and Sec-Fetch-Site,
    // when sent, must not say cross-site or same-site.
    app.addHook('onRequest', async (request) => {
      if (!request.url.startsWith('/v1/privacy/') || request.method === 'GET' || request.method === 'HEAD') return;
      const origin = request.headers.origin;
      const site = request.headers['sec-fetch-site'];
      if ((origin !== undefined && hostOf(origin) !== request.host.replace(/:(?:80|443)$/, '')) || site === 'cross-site' || site === 'same-site') {
        throw new CustodianError('CST_ERR_PRIVACY_CSRF', 'privacy center changes are accepted from its own page only');
      }
    });
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.url.startsWith('/v1/privacy/')) void reply.header('cache-control', 'no-store');
      return payload;
    });

    app.get(
      '/v1/privacy/config',
      { schema: { tags: ['privacy center'], summary: 'Branding and offer of the privacy center page', security: [], response: { 200: brandingView } } },
      async () => {
        const b = center.branding();
        return { ...b, available: Object.fromEntries(b.jurisdictions.map((j) => [j, b.requestTypes.filter((t) => mayRequest(j, t).allowed)])) };
      },
    );

    app.post(
      '/v1/privacy/sign-in',
      {
        schema: {
          tags: ['privacy center'],
          summary: 'Send a one-time sign-in code to an e-mail address',
          description: 'The answer is the same whether or not the address is known to the application (no enumeration). Codes expire after 10 minutes; at most 5 are sent per address per 15 minutes.',
          security: [],
          body: z.object({ email: z.string().min(3).max(320), language: z.enum(PRIVACY_CENTER_LANGUAGES).optional() }).strict(),
          response: { 202: z.object({ challengeId: z.string(), expiresAt: z.string() }), ...errors },
        },
      },
      async (request, reply) => reply.code(202).send(await center.startSignIn(request.body.email, request.body.language, { requestId: request.id })),
    );

    app.post(
      '/v1/privacy/sign-in/verify',
      {
        schema: {
          tags: ['privacy center'],
          summary: 'Verify the sign-in code: opens a session (HttpOnly, SameSite=Strict cookie)',
          description: 'Five wrong codes use the code up. The answer carries the CSRF token to send as `X-CSRF-Token` on every change. With `Sec-GPC: 1` the signal is applied at once (docs/privacy-center.md).',
          security: [],
          body: z.object({ challengeId: z.string().min(1).max(64), code: z.string().max(16) }).strict(),
          response: { 200: sessionView, ...errors },
        },
      },
      async (request, reply) => {
        const opened = await center.verifySignIn(request.body.challengeId, request.body.code, { gpc: gpcOf(request), requestId: request.id });
        const maxAge = Math.max(1, Math.floor((Date.parse(opened.expiresAt) - custodian.clock.now()) / 1000));
        const secure = isHttps(request) ? '; Secure' : '';
        void reply.header('set-cookie', `${cookieName(request)}=${opened.token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure}`);
        const s = await center.session(opened.token);
        return { email: s.email, csrfToken: opened.csrfToken, expiresAt: opened.expiresAt };
      },
    );

    app.get(
      '/v1/privacy/session',
      {
        schema: {
          tags: ['privacy center'],
          summary: 'The current session and its CSRF token; 204 when not signed in',
          security: [],
          response: { 200: sessionView, 204: z.null().describe('Not signed in (or the session expired)'), ...errors },
        },
      },
      async (request, reply) => {
        let s: PrivacySession;
        try {
          s = await session(request);
        } catch {
          return reply.code(204).send(null);
        }
        return { email: s.email, csrfToken: center.csrfTokenOf(s), expiresAt: new Date(s.expiresAt).toISOString() };
      },
    );

    app.post(
      '/v1/privacy/sign-out',
      { schema: { tags: ['privacy center'], summary: 'End the session', security: [], response: { 204: z.null(), ...errors } } },
      async (request, reply) => {
        await center.signOut(await changing(request), { requestId: request.id });
        const secure = isHttps(request) ? '; Secure' : '';
        return reply.header('set-cookie', `${cookieName(request)}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure}`).code(204).send(null);
      },
    );

    app.get(
      '/v1/privacy/consent',
      {
        schema: {
          tags: ['privacy center'],
          summary: 'The purposes offered and the signed-in person’s decisions',
          description:
            '`gpc.honoured` is true when the request carries `Sec-GPC: 1` and the center’s jurisdiction honours it (docs/consent.md); the signal is then applied as an opt-out of every `gpcOptOut` purpose not opted out yet, except a grant made while the signal was present (`gpc.applied` lists what changed).',
          security: [],
          querystring: languageQuery,
          response: { 200: consentView, ...errors },
        },
      },
      async (request) => center.consent(await session(request), { gpc: gpcOf(request), language: request.query.language, requestId: request.id }),
    );

    app.put(
      '/v1/privacy/consent/:purpose',
      {
        schema: {
          tags: ['privacy center'],
          summary: 'Grant or withdraw one purpose (method privacy_center, with the GPC flag)',
          security: [],
          params: z.object({ purpose: purposeKey }).strict(),
          querystring: languageQuery,
          body: z.object({ decision: z.enum(['granted', 'withdrawn']) }).strict(),
          response: { 200: consentView, ...errors, 404: errorBody.describe('No such purpose to decide on') },
        },
      },
      async (request) => center.decide(await changing(request), request.params.purpose, request.body.decision, { gpc: gpcOf(request), language: request.query.language, requestId: request.id }),
    );

    app.get(
      '/v1/privacy/rectifiable-fields',
      {
        schema: {
          tags: ['privacy center'],
          summary: 'The fields of the data map the signed-in person may ask to have corrected (never their values)',
          description: 'The keys a rectification request’s `corrections` may use; empty when no data map is stored (docs/privacy-center.md).',
          security: [],
          response: { 200: z.object({ fields: z.array(rectifiableFieldView).readonly() }), ...errors },
        },
      },
      async (request) => ({ fields: await center.rectifiableFields(await session(request)) }),
    );

    app.get(
      '/v1/privacy/requests',
      { schema: { tags: ['privacy center'], summary: 'The signed-in person’s own requests', security: [], response: { 200: z.object({ requests: z.array(requestView).readonly() }), ...errors } } },
      async (request) => ({ requests: await center.requests(await session(request)) }),
    );

    app.post(
      '/v1/privacy/requests',
      {
        schema: {
          tags: ['privacy center'],
          summary: 'Make a request for the verified identity (no further verification)',
          description: 'A rectification’s `corrections` name fields of `GET /v1/privacy/rectifiable-fields` only; any other is 400 `CST_ERR_VALIDATION`.',
          security: [],
          body: z
            .object({
              type: z.enum(REQUEST_TYPES),
              jurisdiction: z.string().max(16).regex(JURISDICTION_CODE_PATTERN).optional(),
              corrections: z.record(z.string().max(600), z.string().max(2000).nullable()).optional(),
            })
            .strict(),
          response: { 201: requestView, ...errors },
        },
      },
      async (request, reply) => {
        const s = await changing(request);
        const b = request.body;
        const created = await center.createRequest(s, { type: b.type, ...(b.jurisdiction ? { jurisdiction: b.jurisdiction } : {}), ...(b.corrections ? { corrections: b.corrections } : {}), requestId: request.id });
        return reply.code(201).send(created);
      },
    );

    app.get(
      '/v1/privacy/requests/:id',
      {
        schema: { tags: ['privacy center'], summary: 'One of the person’s own requests (any other id: 404)', security: [], params: requestId, response: { 200: requestView, ...errors, 404: errorBody } },
      },
      async (request) => center.request(await session(request), request.params.id),
    );

    app.post(
      '/v1/privacy/requests/:id/package-link',
      {
        schema: {
          tags: ['privacy center'],
          summary: 'A one-hour download link to the package of a completed access or portability request',
          security: [],
          params: requestId,
          response: { 200: z.object({ url: z.string(), expiresAt: z.string() }), ...errors, 404: errorBody, 409: errorBody.describe('Not ready yet') },
        },
      },
      async (request) => center.packageLink(await changing(request), request.params.id),
    );

    // The page. Only files of the built app are served; anything without an extension is the app itself.
    const serve = async (request: FastifyRequest, reply: FastifyReply, path: string) => {
      const branding = center.branding();
      void securityHeaders(reply, branding);
      if (!webApp.built) return reply.code(503).type('text/plain; charset=utf-8').send('The privacy center page is not built: run npm run build.');
      const file = await webApp.load(path);
      if (file === undefined) return notFound(reply);
      const { asset, type, content } = file;
      if (asset === 'index.html') {
        const lang = negotiate(request.headers['accept-language'], branding);
        return reply.type(type).header('cache-control', 'no-cache').send(content.toString('utf8').replace(/<html lang="[a-z]{2}"/, `<html lang="${lang}"`));
      }
      return reply.type(type).header('cache-control', file.cacheControl).send(content);
    };
    app.get('/privacy', { schema: { hide: true } }, async (request, reply) => serve(request, reply, ''));
    app.get('/privacy/*', { schema: { hide: true } }, async (request, reply) => serve(request, reply, (request.params as { '*': string })['*']));
  };
}

function securityHeaders(reply: FastifyReply, branding: Branding): FastifyReply {
  const logo = branding.logoUrl === null ? '' : ` ${new URL(branding.logoUrl).origin}`;
  return pageHeaders(
    reply,
    `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:${logo}; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
  );
}

/** The first configured language the browser accepts, else the default. */
function negotiate(header: string | undefined, b: Branding): string {
  const wanted = (header ?? '')
    .split(',')
    .map((part) => part.trim().slice(0, 2).toLowerCase())
    .filter((l) => /^[a-z]{2}$/.test(l));
  return wanted.find((l) => (b.languages as readonly string[]).includes(l)) ?? b.defaultLanguage;
}

/** HTTPS, directly or at a proxy that says so in X-Forwarded-Proto (then the cookie is Secure and __Host- prefixed). */
function isHttps(request: FastifyRequest): boolean {
  return request.protocol === 'https' || request.headers['x-forwarded-proto'] === 'https';
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
