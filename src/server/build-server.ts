import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Custodian } from '../app/index.js';
import { VERSION } from '../version.js';
import { installAuth } from './auth.js';
import { frameworkErrorHandler, installErrorHandler } from './error-handler.js';
import { ServerMetrics } from './metrics.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { consentRoutes } from './routes/consent.js';
import { cryptoRoutes } from './routes/crypto.js';
import { auditRoutes } from './routes/audit.js';
import { bannerRoutes } from './routes/banner.js';
import { purposeRoutes } from './routes/purposes.js';
import { privacyCenterRoutes } from './routes/privacy-center.js';
import { adminConsoleRoutes } from './routes/admin-console.js';
import { datamapRoutes } from './routes/datamap.js';
import { reportRoutes } from './routes/reports.js';
import { requestRoutes } from './routes/requests.js';
import { eventRoutes } from './routes/events.js';
import { incidentRoutes } from './routes/incidents.js';
import { retentionRoutes } from './routes/retention.js';
import { restrictionRoutes } from './routes/restrictions.js';
import { errorBody, health } from './schemas.js';
import { z } from 'zod';

/** Options of {@link buildServer}. */
export interface BuildServerOptions {
  /** Pino log level, or false for no logs (tests). Default: the config's level. */
  readonly logLevel?: string | false;
  /** Failed authentications one client address may make per minute before 429 (default 30). */
  readonly authFailuresPerMinute?: number;
}

/**
 * Builds the HTTP API (Fastify) around a wired Custodian without listening; `serve` listens, tests inject.
 * Routes live under `/v1`; `/openapi.json`, `/docs`, `/healthz` and `/metrics` sit at the root.
 */
export async function buildServer(custodian: Custodian, options: BuildServerOptions = {}): Promise<FastifyInstance> {
  const level = options.logLevel ?? custodian.config.logLevel;
  const app = Fastify({
    logger:
      level === false
        ? false
        : {
            level,
            // Never log credentials or request bodies; URLs are not logged (they can hold subject ids).
            redact: ['req.headers.authorization', 'headers.authorization'],
          },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    requestIdHeader: false,
    genReqId: () => crypto.randomUUID(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
    frameworkErrors: frameworkErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();
  // JSON only: Fastify also parses text/plain by default, which would answer 400 instead of 415.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);

  const metrics = new ServerMetrics();
  metrics.install(app);
  installAuth(app, custodian.apiKeys, {
    ...(options.authFailuresPerMinute !== undefined ? { failuresPerMinute: options.authFailuresPerMinute } : {}),
    // Audited without the address; the breach detection rules read these entries (docs/breach.md).
    onThrottle: ({ failures }) => void custodian.audit.recordNow([{ actor: 'system:auth', action: 'auth.throttled', targetType: 'system', targetId: null, details: { failures } }]).catch(() => undefined),
  });
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode >= 500) request.log.warn({ route: request.routeOptions.url, status: reply.statusCode }, 'request failed');
    else request.log.debug({ method: request.method, route: request.routeOptions.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Custodian API',
        version: VERSION,
        description: 'Consent ledger and privacy operations. Authenticate with `Authorization: Bearer <api key>`.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A Custodian API key (cst_…)' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get(
    '/healthz',
    { schema: { tags: ['system'], summary: 'Liveness and store reachability', security: [], response: { 200: health, 503: health } } },
    async (_request, reply) => {
      try {
        await custodian.store.ping();
        return { status: 'ok' as const, store: custodian.store.kind, version: VERSION };
      } catch {
        return reply.code(503).send({ status: 'unavailable' as const, store: custodian.store.kind, version: VERSION });
      }
    },
  );
  // A signed, expiring link to an access package: the link is the credential (no API key), see docs/requests.md.
  app.get(
    '/downloads/packages/:token',
    {
      schema: {
        tags: ['requests'],
        summary: 'Download an access package through a signed, expiring link (ZIP: package.json, CSV per collection, report.html)',
        security: [],
        params: z.object({ token: z.string().min(1).max(300) }).strict(),
        response: { 200: z.unknown(), 400: errorBody, 404: errorBody },
      },
    },
    async (request, reply) => {
      const id = custodian.runner.openLink(request.params.token);
      const zip = await custodian.runner.packageZip(id);
      await custodian.requests.recordDownload(id, 'link', request.id);
      return reply.type('application/zip').header('content-disposition', `attachment; filename="custodian-${id}.zip"`).header('cache-control', 'no-store').send(zip);
    },
  );
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  await app.register(privacyCenterRoutes(custodian)); // the privacy center: /privacy and /v1/privacy/…
  await app.register(adminConsoleRoutes()); // the admin console single-page app at /admin (docs/admin-console.md)
  await app.register(bannerRoutes(custodian, metrics)); // public banner API, /banner.js, /banner/demo, /v1/consent/link
  await app.register(
    async (v1) => {
      await v1.register(consentRoutes(custodian, metrics));
      await v1.register(purposeRoutes(custodian));
      await v1.register(apiKeyRoutes(custodian));
      await v1.register(cryptoRoutes(custodian));
      await v1.register(auditRoutes(custodian));
      await v1.register(datamapRoutes(custodian));
      await v1.register(reportRoutes(custodian));
      await v1.register(requestRoutes(custodian));
      await v1.register(eventRoutes(custodian, metrics));
      await v1.register(incidentRoutes(custodian));
      await v1.register(retentionRoutes(custodian));
      await v1.register(restrictionRoutes(custodian));
    },
    { prefix: '/v1' },
  );
  await app.ready();
  return app;
}
