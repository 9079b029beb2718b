import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { JURISDICTION_CODE_PATTERN, REQUEST_TYPES, isStorableText } from '../../core/index.js';
import { REQUEST_STATUSES } from '../../rights/engine/lifecycle.js';
import { actorOf, statedPurpose } from '../auth.js';
import { errorResponses, instant, purposeHeaders } from '../schemas.js';

const id = z.uuid();
const reason = z.string().min(1).max(1000).refine(isStorableText, 'must be well-formed text');
const request = z.object({
  id: z.string(),
  type: z.enum(REQUEST_TYPES),
  status: z.enum(REQUEST_STATUSES),
  jurisdiction: z.string(),
  regime: z.string(),
  channel: z.string(),
  identityKinds: z.array(z.string()).readonly(),
  receivedAt: z.string(),
  dueAt: z.string(),
  acknowledgeBy: z.string().nullable(),
  extended: z.boolean(),
  verifiedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  overdue: z.boolean(),
  outcome: z.record(z.string(), z.unknown()).nullable(),
});
const withHistory = request.extend({
  history: z.array(z.object({ at: z.string(), from: z.string().nullable(), to: z.string(), actor: z.string(), reason: z.string().nullable() })).readonly(),
});

/** Data subject requests: intake, verification, approval, rejection, extension, queues by deadline. */
export function requestRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { requests } = custodian;
  return async (app) => {
    app.post(
      '/requests',
      {
        config: { scope: 'requests:write' },
        schema: {
          tags: ['requests'],
          summary: 'Receive a data subject request',
          description:
            'Checks that the jurisdiction grants the right, validates the identities (kinds the data map declares; values never echoed), computes the legal deadline, and either sends a one-time code to the e-mail address or phone number (mail outbox) or — for `authenticated: true` (the application vouches for a logged-in user) and for rights that need no verification (CCPA opt-out) — accepts it at once.',
          body: z
            .object({
              type: z.enum(REQUEST_TYPES),
              jurisdiction: z.string().max(16).regex(JURISDICTION_CODE_PATTERN),
              identities: z.record(z.string().max(64), z.union([z.string().max(320), z.array(z.string().max(320)).max(10)])).describe('e.g. {"email": "ada@example.com", "userId": "u-1"}'),
              authenticated: z.boolean().optional(),
              corrections: z
                .record(z.string().max(600), z.string().max(2000).nullable())
                .optional()
                .describe('Rectification only: corrected values by field address, e.g. {"shop_db.customers.phone": "+44 20 7946 0001"}; null clears a value.'),
            })
            .strict(),
          response: { 201: request, ...errorResponses },
        },
      },
      async (req, reply) => {
        const created = await requests.create({ ...req.body, actor: actorOf(req), requestId: req.id });
        return reply.code(201).send(created);
      },
    );

    app.get(
      '/requests',
      {
        config: { scope: 'requests:read' },
        schema: {
          tags: ['requests'],
          summary: 'Requests, soonest deadline first',
          querystring: z
            .object({
              status: z.enum(REQUEST_STATUSES).optional(),
              type: z.enum(REQUEST_TYPES).optional(),
              jurisdiction: z.string().max(16).regex(JURISDICTION_CODE_PATTERN).optional(),
              dueBefore: instant.optional(),
              overdue: z.enum(['true', 'false']).optional(),
              dueWithinDays: z.coerce.number().int().min(0).max(366).optional(),
              limit: z.coerce.number().int().min(1).max(1000).optional(),
            })
            .strict(),
          response: { 200: z.object({ requests: z.array(request).readonly() }), ...errorResponses },
        },
      },
      async (req) => {
        const q = req.query;
        return {
          requests: await requests.list({
            ...(q.status !== undefined ? { status: q.status } : {}),
            ...(q.type !== undefined ? { type: q.type } : {}),
            ...(q.jurisdiction !== undefined ? { jurisdiction: q.jurisdiction } : {}),
            ...(q.dueBefore !== undefined ? { dueBefore: q.dueBefore } : {}),
            ...(q.overdue === 'true' ? { overdue: true } : {}),
            ...(q.dueWithinDays !== undefined ? { dueWithinMs: q.dueWithinDays * 86_400_000 } : {}),
            ...(q.limit !== undefined ? { limit: q.limit } : {}),
          }),
        };
      },
    );

    app.get(
      '/requests/:id',
      {
        config: { scope: 'requests:read' },
        schema: { tags: ['requests'], summary: 'A request with its lifecycle history', params: z.object({ id }).strict(), response: { 200: withHistory, ...errorResponses } },
      },
      async (req) => ({ ...(await requests.get(req.params.id)), history: await requests.history(req.params.id) }),
    );

    app.get(
      '/requests/:id/tasks',
      {
        config: { scope: 'requests:read' },
        schema: {
          tags: ['requests'],
          summary: 'Execution progress: the steps run so far across the systems, in order (outcomes stay sealed)',
          params: z.object({ id }).strict(),
          querystring: z.object({}).strict(),
          response: {
            200: z.object({
              tasks: z.array(z.object({ seq: z.number(), phase: z.string(), target: z.string().describe('<kind>:<dataset>.<collection>'), status: z.string(), attempts: z.number(), error: z.string().nullable(), updatedAt: z.string() })).readonly(),
            }),
            ...errorResponses,
          },
        },
      },
      async (req) => {
        await requests.get(req.params.id); // 404 for an unknown request
        return { tasks: await custodian.runner.tasks(req.params.id) };
      },
    );

    app.post(
      '/requests/:id/verify',
      {
        config: { scope: 'requests:write' },
        schema: {
          tags: ['requests'],
          summary: 'Verify the identity with the one-time code',
          description: 'Five wrong codes close the request; codes expire after 15 minutes.',
          params: z.object({ id }).strict(),
          body: z.object({ code: z.string().max(16) }).strict(),
          response: { 200: request, ...errorResponses },
        },
      },
      async (req) => requests.verify(req.params.id, req.body.code, actorOf(req)),
    );

    const decide = (path: 'approve' | 'reject' | 'extend', summary: string, needsReason: boolean) =>
      app.post(
        `/requests/:id/${path}`,
        {
          config: { scope: 'requests:admin' },
          schema: {
            tags: ['requests'],
            summary,
            params: z.object({ id }).strict(),
            body: needsReason ? z.object({ reason }).strict() : z.object({ reason: reason.optional() }).strict(),
            response: { 200: request, ...errorResponses },
          },
        },
        async (req) => {
          const why = req.body.reason;
          if (path === 'approve') return requests.approve(req.params.id, actorOf(req), why);
          if (path === 'reject') return requests.reject(req.params.id, actorOf(req), why!);
          return requests.extend(req.params.id, actorOf(req), why!);
        },
      );
    app.get(
      '/requests/:id/package',
      {
        config: { scope: 'requests:admin' },
        schema: {
          tags: ['requests'],
          summary: 'The access package of a completed access or portability request (JSON, or format=zip; audited)',
          querystring: z.object({ format: z.enum(['json', 'zip']).default('json') }).strict(),
          description: 'Machine-readable JSON with a schema version: the rows per collection and the Art. 15(1) information from the data map. Stored sealed under the request’s key; every download is audited.',
          params: z.object({ id }).strict(),
          headers: purposeHeaders,
          response: { 200: z.unknown(), ...errorResponses },
        },
      },
      async (req, reply) => {
        if (req.query.format === 'zip') {
          const zip = await custodian.runner.packageZip(req.params.id);
          await custodian.requests.recordDownload(req.params.id, actorOf(req), req.id, statedPurpose(req));
          return reply.type('application/zip').header('content-disposition', `attachment; filename="custodian-${req.params.id}.zip"`).send(zip);
        }
        const text = await custodian.runner.package(req.params.id);
        await custodian.requests.recordDownload(req.params.id, actorOf(req), req.id, statedPurpose(req));
        return reply.type('application/json; charset=utf-8').header('content-disposition', `attachment; filename="custodian-${req.params.id}.json"`).serializer((x: string) => x).send(text);
      },
    );

    app.post(
      '/requests/:id/package-link',
      {
        config: { scope: 'requests:admin' },
        schema: {
          tags: ['requests'],
          summary: 'A signed link to download the package ZIP without an API key, valid for ttlMinutes (default 1 day)',
          description: 'Give it to the person (e.g. in the privacy center). The link is the credential: anyone holding it can download until it expires; every download is audited.',
          params: z.object({ id }).strict(),
          body: z.object({ ttlMinutes: z.number().int().min(1).max(10_080).optional() }).strict(),
          response: { 200: z.object({ url: z.string(), expiresAt: z.string() }), ...errorResponses },
        },
      },
      async (req) => {
        const link = await custodian.runner.packageLink(req.params.id, (req.body.ttlMinutes ?? 1440) * 60_000);
        return { url: `/downloads/packages/${link.token}`, expiresAt: link.expiresAt };
      },
    );

    app.get(
      '/requests/:id/certificate',
      {
        config: { scope: 'requests:read' },
        schema: {
          tags: ['requests'],
          summary: 'The signed erasure certificate of an erasure request',
          description: 'What was erased, what remains and why (retained under a legal basis), keys shredded — no personal data; Ed25519-signed with the audit log’s key.',
          params: z.object({ id }).strict(),
          response: { 200: z.unknown(), ...errorResponses },
        },
      },
      async (req, reply) => {
        const text = await custodian.runner.certificate(req.params.id); // before the serializer is set: errors render as JSON
        return reply.type('application/json; charset=utf-8').serializer((x: string) => x).send(text);
      },
    );

    decide('approve', 'Approve a request waiting for approval', false);
    decide('reject', 'Reject a request, with the reason given to the person', true);
    decide('extend', 'Extend the deadline once, as the regime allows, with the reason given to the person', true);
  };
}
