import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { CustodianError, JURISDICTION_CODE_PATTERN, LEGAL_BASIS_KEYS, PURPOSE_KEY_PATTERN } from '../../core/index.js';
import {
  ANONYMOUS_SUBJECT_PATTERN,
  CONSENT_MODE_SIGNALS,
  COLLECTION_METHODS,
  DECISIONS,
  LEDGER_LIMITS,
  bannerExperience,
  jurisdictionFromGeo,
  linkAnonymousChoices,
  recordBannerChoice,
} from '../../ledger/index.js';
import { readerOf } from '../auth.js';
import { errorBody, errorResponses, gpcHeaders, purposeHeaders, subjectId } from '../schemas.js';
import type { ServerMetrics } from '../metrics.js';
import { TokenBucketLimiter } from '../token-bucket.js';

// The consent banner's public API (no API key: it runs on visitors' browsers on third-party sites), the
// banner script, its demo page, and linking an anonymous visitor to a user (API key). See docs/banner.md.

/** The built banner script and the demo page; the same relative path works from src/ and from dist/. */
const SCRIPT_FILE = fileURLToPath(new URL('../../../dist/banner/banner.js', import.meta.url));
const DEMO_FILE = fileURLToPath(new URL('../../../banner/demo.html', import.meta.url));

const anonymousId = z.string().max(41).regex(ANONYMOUS_SUBJECT_PATTERN).describe('Anonymous visitor id made by the banner: anon-<random UUID v4>');
const jurisdiction = z.string().max(16).regex(JURISDICTION_CODE_PATTERN).describe('Jurisdiction code: EU, UK, US-CA, …');
const purposeKey = z.string().min(1).max(128).regex(PURPOSE_KEY_PATTERN);
const noticeVersion = z.string().min(1).max(LEDGER_LIMITS.maxNoticeVersionLength).regex(/^[\x21-\x7e]+$/, 'printable ASCII');

const experienceQuery = z.object({ jurisdiction: jurisdiction.optional().describe('Wins over the geo header and the default.') }).strict();
const bannerPurpose = z.object({
  key: z.string(),
  title: z.string(),
  description: z.string(),
  legalBasis: z.enum(LEGAL_BASIS_KEYS),
  gpcOptOut: z.boolean(),
  expiryMonths: z.number().int().nullable(),
  defaultGranted: z.boolean().describe('The state before the visitor chooses: false in opt_in, true in opt_out.'),
});
const experienceResponse = z.object({
  jurisdiction: z.string(),
  type: z.enum(['opt_in', 'opt_out']),
  noticeVersion: z.string(),
  gpcHonoured: z.boolean(),
  purposes: z.array(bannerPurpose).readonly(),
  consentMode: z.object(Object.fromEntries(CONSENT_MODE_SIGNALS.map((s) => [s, z.array(z.string()).readonly()])) as Record<(typeof CONSENT_MODE_SIGNALS)[number], z.ZodReadonly<z.ZodArray<z.ZodString>>>),
});

const consentBody = z
  .object({
    anonymousId,
    jurisdiction: jurisdiction.optional().describe('The jurisdiction of the experience shown (as for GET /v1/banner/experience).'),
    noticeVersion,
    choices: z
      .record(purposeKey, z.boolean())
      .refine((c) => Object.keys(c).length >= 1 && Object.keys(c).length <= 100, 'from 1 to 100 purposes')
      .describe('Purpose key → true (granted) or false (refused).'),
    pageUrl: z.url({ protocol: /^https?$/ }).max(LEDGER_LIMITS.maxPageUrlLength).optional().describe('Stored without query string and fragment.'),
    gpc: z.boolean().optional().describe('navigator.globalPrivacyControl was true; same as Sec-GPC: 1.'),
    submissionId: z.uuid().optional().describe('Random per submission: a retry records once.'),
  })
  .strict();
const consentResponse = z.object({
  anonymousId: z.string(),
  jurisdiction: z.string(),
  noticeVersion: z.string(),
  events: z
    .array(z.object({ id: z.string(), purpose: z.string(), decision: z.enum(DECISIONS), method: z.enum(COLLECTION_METHODS), expiresAt: z.string().nullable(), gpc: z.boolean() }))
    .readonly(),
});

const linkBody = z.object({ anonymousId, subjectId }).strict();
const linkResponse = z.object({
  anonymousId: z.string(),
  subjectId: z.string(),
  events: z.array(z.object({ id: z.string(), purpose: z.string(), decision: z.enum(DECISIONS), method: z.enum(COLLECTION_METHODS), expiresAt: z.string().nullable(), replayed: z.boolean() })).readonly(),
  skipped: z.array(z.object({ purpose: z.string(), reason: z.enum(['no_decision', 'expired', 'subject_decided_later']) })).readonly(),
});

const publicErrors = {
  400: errorBody.describe('Bad input'),
  403: errorBody.describe('The calling web origin is not allowed'),
  429: errorBody.describe('Too many requests from this address'),
} as const;

/** A static file read once and re-read when it changes on disk, with its ETag. */
class StaticFile {
  #cache: { mtimeMs: number; body: Buffer; etag: string } | undefined;
  constructor(readonly path: string) {}

  async get(): Promise<{ body: Buffer; etag: string } | undefined> {
    const info = await stat(this.path).catch(() => undefined);
    if (info === undefined) return undefined;
    if (this.#cache?.mtimeMs !== info.mtimeMs) {
      const body = await readFile(this.path);
      this.#cache = { mtimeMs: info.mtimeMs, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
    }
    return this.#cache;
  }
}

/** Banner routes: public experience and consent (CORS, rate limit), `/banner.js`, `/banner/demo`, and the authenticated link. */
export function bannerRoutes(custodian: Custodian, metrics?: ServerMetrics): FastifyPluginAsyncZod {
  const { ledger, purposes } = custodian;
  const options = custodian.config.banner;
  const allowed = new Set(options.allowedOrigins);
  const limiter = new TokenBucketLimiter(options.rateLimit);
  const script = new StaticFile(SCRIPT_FILE);
  const demo = new StaticFile(DEMO_FILE);

  const clientAddress = (request: FastifyRequest): string => {
    const forwarded = options.ipHeader === undefined ? undefined : request.headers[options.ipHeader];
    const value = Array.isArray(forwarded) ? forwarded[0] : forwarded;
    return value !== undefined && value !== '' && value.length <= 64 ? value.split(',')[0]!.trim() : request.ip;
  };

  /** CORS for allowed origins (the server's own origin always is), then the per-address rate limit. */
  const guard = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const origin = request.headers.origin;
    if (origin !== undefined) {
      const own = `${request.protocol}://${request.host}`;
      if (origin !== own && !allowed.has(origin)) {
        throw new CustodianError('CST_ERR_BANNER_ORIGIN_FORBIDDEN', 'this web origin may not call the banner API', { details: { origin: origin.slice(0, 200) } });
      }
      void reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
    }
    const taken = limiter.take(clientAddress(request));
    if (!taken.allowed) {
      void reply.header('retry-after', String(taken.retryAfterSeconds));
      throw new CustodianError('CST_ERR_BANNER_RATE_LIMITED', 'too many requests; retry later', { details: { retryAfterSeconds: taken.retryAfterSeconds } });
    }
  };

  /** Query or body, then the operator's geo header(s), then the configured default. */
  const jurisdictionOf = (request: FastifyRequest, given: string | undefined): string => {
    if (given !== undefined) return given;
    const header = (name: string | undefined): string | undefined => {
      const v = name === undefined ? undefined : request.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    return jurisdictionFromGeo(header(options.geoHeader), header(options.geoRegionHeader)) ?? options.defaultJurisdiction;
  };
  const experienceFor = (j: string) =>
    bannerExperience(purposes.list(), j, { noticeVersion: options.noticeVersion, gpcEverywhere: custodian.config.ledger.gpcEverywhere === true, consentMode: options.consentMode });

  return async (app) => {
    for (const url of ['/v1/banner/experience', '/v1/banner/consent']) {
      app.options(url, { schema: { hide: true }, onRequest: guard }, async (_request, reply) =>
        reply.code(204).header('access-control-allow-methods', 'GET, POST').header('access-control-allow-headers', 'content-type').header('access-control-max-age', '600').send(),
      );
    }

    app.get(
      '/v1/banner/experience',
      {
        onRequest: guard,
        schema: {
          tags: ['banner'],
          summary: 'What the consent banner shows in a jurisdiction (public, CORS, rate-limited)',
          description:
            'The purposes offered in the jurisdiction that need consent or allow an opt-out, the notice version, whether GPC is honoured, the experience type and the Consent Mode mapping. The jurisdiction comes from the query, else the configured geo header, else the default.',
          security: [],
          querystring: experienceQuery,
          response: { 200: experienceResponse, ...publicErrors },
        },
      },
      async (request, reply) => {
        const vary = ['Origin', options.geoHeader, options.geoRegionHeader].filter((h) => h !== undefined).join(', ');
        void reply.header('cache-control', 'private, max-age=300').header('vary', vary);
        return experienceFor(jurisdictionOf(request, request.query.jurisdiction));
      },
    );

    app.post(
      '/v1/banner/consent',
      {
        onRequest: guard,
        bodyLimit: 16 * 1024,
        schema: {
          tags: ['banner'],
          summary: 'Record a visitor’s banner choice for an anonymous id (public, CORS, rate-limited)',
          description:
            'One event per purpose, method `banner`, for the anonymous subject `anon-<uuid v4>` (never a user id: link it with POST /v1/consent/link). Evidence: the User-Agent header, the page URL (minimised), the GPC flag (`Sec-GPC: 1` or `gpc: true`). No IP address is stored.',
          security: [],
          headers: gpcHeaders,
          body: consentBody,
          response: { 201: consentResponse, ...publicErrors },
        },
      },
      async (request, reply) => {
        const experience = experienceFor(jurisdictionOf(request, request.body.jurisdiction));
        const userAgent = request.headers['user-agent'];
        const result = await recordBannerChoice(
          ledger,
          experience,
          {
            anonymousId: request.body.anonymousId,
            choices: request.body.choices,
            noticeVersion: request.body.noticeVersion,
            pageUrl: request.body.pageUrl,
            userAgent: userAgent === undefined || userAgent === '' ? undefined : userAgent.slice(0, LEDGER_LIMITS.maxUserAgentLength),
            gpc: request.body.gpc === true || request.headers['sec-gpc'] === '1',
            submissionId: request.body.submissionId,
          },
          { actor: 'banner', requestId: request.id },
        );
        for (const e of result.events) if (!e.replayed) metrics?.consentEvents.inc({ decision: e.decision, method: e.method });
        return reply.code(201).send({
          anonymousId: request.body.anonymousId,
          jurisdiction: experience.jurisdiction,
          noticeVersion: request.body.noticeVersion,
          events: result.events.map((e) => ({ id: e.id, purpose: e.purpose, decision: e.decision, method: e.method, expiresAt: e.expiresAt, gpc: e.gpc })),
        });
      },
    );

    app.post(
      '/v1/consent/link',
      {
        config: { scope: 'consent:write' },
        schema: {
          tags: ['consent'],
          summary: 'Copy an anonymous banner visitor’s current choices to a user id (on login)',
          description:
            'Each current decision of the anonymous subject becomes a new event of the user (method `banner`) with the same decision, jurisdiction, notice version, expiry and evidence; its idempotency key `link:<anonymous event id>:…` references the anonymous event, so linking twice records once. Purposes the user decided later are skipped.',
          body: linkBody,
          headers: purposeHeaders,
          response: { 200: linkResponse, ...errorResponses },
        },
      },
      async (request) => {
        const result = await linkAnonymousChoices(ledger, request.body.anonymousId, request.body.subjectId, readerOf(request));
        return {
          anonymousId: result.anonymousId,
          subjectId: result.subjectId,
          events: result.events.map((e) => ({ id: e.id, purpose: e.purpose, decision: e.decision, method: e.method, expiresAt: e.expiresAt, replayed: e.replayed })),
          skipped: result.skipped,
        };
      },
    );

    const sendStatic = async (request: FastifyRequest, reply: FastifyReply, file: StaticFile, type: string, cacheControl: string) => {
      const f = await file.get();
      if (f === undefined) throw new CustodianError('CST_ERR_NOT_FOUND', 'the banner is not built: run npm run build');
      void reply.type(type).header('etag', f.etag).header('cache-control', cacheControl).header('x-content-type-options', 'nosniff');
      if (request.headers['if-none-match'] === f.etag) return reply.code(304).send();
      return reply.send(f.body);
    };

    app.get('/banner.js', { schema: { hide: true } }, async (request, reply) => {
      // Loaded by <script> on other sites: allow embedding across origins (CORP) and revalidate within minutes.
      void reply.header('cross-origin-resource-policy', 'cross-origin').header('access-control-allow-origin', '*');
      return sendStatic(request, reply, script, 'text/javascript; charset=utf-8', 'public, max-age=300, stale-while-revalidate=86400');
    });
    app.get('/banner/demo', { schema: { hide: true } }, async (request, reply) => sendStatic(request, reply, demo, 'text/html; charset=utf-8', 'no-cache'));
  };
}
