import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { INCIDENT_STATUSES } from '../../breach/index.js';
import { BREACH_AUDIENCES, BREACH_OUTCOMES, BREACH_STAGES, JURISDICTION_CODE_PATTERN, isCustodianError, isStorableText } from '../../core/index.js';
import { actorOf, readerOf } from '../auth.js';
import { errorBody, errorResponses, instant, purposeHeaders } from '../schemas.js';

const id = z.uuid();
const text = (max: number) => z.string().max(max).refine(isStorableText, 'must be well-formed text');
const list = <T extends z.ZodType>(item: T) => z.array(item).readonly();
const jurisdiction = z.string().max(16).regex(JURISDICTION_CODE_PATTERN);
const notFound = { 404: errorBody.describe('No such incident') };

const reason = z.object({ code: z.string(), text: z.string(), citation: z.string() });
const deadline = z.object({
  ruleId: z.string(),
  jurisdiction: z.string(),
  regime: z.string(),
  audience: z.enum(BREACH_AUDIENCES),
  stage: z.enum(BREACH_STAGES),
  dueAt: z.string().nullable().describe('Null: no fixed period ("without undue delay")'),
  countedFrom: z.enum(['awareness', 'notification', 'notification_due']).describe('What dueAt counts from: awareness, a recorded earlier notification, or (none recorded yet) that notification\'s own deadline'),
  standard: z.string(),
  citation: z.string(),
  met: z.boolean(),
  metAt: z.string().nullable(),
  overdue: z.boolean(),
  leftMs: z.number().nullable(),
});
const incident = z.object({
  id: z.string(),
  status: z.enum(INCIDENT_STATUSES),
  title: z.string(),
  description: z.string(),
  cause: z.string(),
  containmentActions: list(z.string()),
  detectedAt: z.string(),
  occurredAt: z.string().nullable(),
  systems: list(z.string()),
  collections: list(z.string()),
  dataCategories: list(z.string()),
  jurisdictions: list(z.string()),
  affectedCount: z.number().nullable(),
  recordsCount: z.number().nullable(),
  encrypted: z.boolean(),
  keysCompromised: z.boolean(),
  nis2: z.boolean(),
  subjectsCount: z.number().nullable(),
  source: z.string(),
  assessment: z.object({
    computed: z.object({ outcome: z.enum(BREACH_OUTCOMES), severity: z.number(), score: z.number(), reasons: list(reason) }),
    override: z.object({ outcome: z.enum(BREACH_OUTCOMES), justification: z.string() }).nullable(),
    outcome: z.enum(BREACH_OUTCOMES),
  }),
  deadlines: list(deadline),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  revision: z.number(),
});
const timelineEntry = z.object({ id: z.string(), at: z.string(), actor: z.string(), kind: z.string(), changes: z.record(z.string(), z.unknown()), note: z.string().nullable() });

const fields = {
  title: text(200).min(1),
  description: text(10_000).optional().describe('Free text: may hold personal data, stored sealed, never logged'),
  detectedAt: instant.optional().describe('When the controller became aware (GDPR Art. 33(1): the 72 h run from it); default now; not in the future'),
  occurredAt: instant.nullish().describe('When the breach happened, if known; not after detectedAt'),
  systems: z.array(z.string().max(128)).max(500).optional().describe('System keys of the current data map'),
  collections: z.array(z.string().max(600)).max(500).optional().describe('`<dataset>.<collection>` addresses of the current data map'),
  dataCategories: z.array(z.string().max(200)).max(200).optional().describe('fideslang data category keys; default: those of the fields of `collections`'),
  affectedCount: z.number().nullish().describe('Estimated number of people affected: a non-negative whole number'),
  recordsCount: z.number().nullish().describe('Approximate number of personal data records (Art. 33(3)(a))'),
  encrypted: z.boolean().optional(),
  keysCompromised: z.boolean().optional(),
  nis2: z.boolean().optional().describe('A significant incident under NIS2 (Art. 23): adds the CSIRT windows'),
  cause: text(10_000).optional(),
  containmentActions: z.array(text(2000)).max(100).optional(),
  jurisdictions: z.array(jurisdiction).max(50).optional().describe('Default ["EU"]'),
};

/** Personal data breach response: incidents, assessment, deadlines, scoping, notifications (docs/breach.md). */
export function incidentRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { incidents } = custodian;
  return async (app) => {
    app.post(
      '/incidents',
      {
        config: { scope: 'incidents:write' },
        schema: {
          tags: ['incidents'],
          summary: 'Record a personal data breach incident',
          description: 'Validates the systems and collections against the current data map and the categories against the taxonomy, assesses the risk (GDPR Art. 33/34) and computes the notification deadlines of each jurisdiction.',
          body: z.object({ ...fields, status: z.enum(['open', 'suspected']).optional() }).strict(),
          response: { 201: incident, ...errorResponses },
        },
      },
      async (req, reply) => reply.code(201).send(await incidents.create(req.body, { actor: actorOf(req), requestId: req.id })),
    );

    app.get(
      '/incidents',
      {
        config: { scope: 'incidents:read' },
        schema: {
          tags: ['incidents'],
          summary: 'Incidents, most recently detected first (their free text may hold personal data: the read is audited)',
          querystring: z.object({ status: z.enum(INCIDENT_STATUSES).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() }).strict(),
          headers: purposeHeaders,
          response: { 200: z.object({ incidents: list(incident) }), ...errorResponses },
        },
      },
      async (req) => {
        const found = await incidents.list({ ...(req.query.status ? { status: req.query.status } : {}), ...(req.query.limit ? { limit: req.query.limit } : {}) });
        await incidents.recordNarrativesRead(null, found.length, readerOf(req));
        return { incidents: found };
      },
    );

    app.get(
      '/incidents/:id',
      {
        config: { scope: 'incidents:read' },
        schema: { tags: ['incidents'], summary: 'An incident with its assessment, deadlines, timeline and notifications (its free text may hold personal data: the read is audited)', params: z.object({ id }).strict(), headers: purposeHeaders, response: { 200: incident.extend({ timeline: list(timelineEntry), notifications: list(z.object({ id: z.string(), audience: z.string(), stage: z.string(), jurisdiction: z.string().nullable(), recipientDigest: z.string(), mailId: z.string(), actor: z.string(), notifiedAt: z.string() })) }), ...errorResponses, ...notFound } },
      },
      async (req) => {
        const view = await incidents.detail(req.params.id);
        await incidents.recordNarrativesRead(req.params.id, 1, readerOf(req));
        return view;
      },
    );

    app.patch(
      '/incidents/:id',
      {
        config: { scope: 'incidents:write' },
        schema: {
          tags: ['incidents'],
          summary: 'Change an incident (every change is a timeline entry)',
          params: z.object({ id }).strict(),
          body: z.object({ ...fields, title: fields.title.optional(), status: z.enum(INCIDENT_STATUSES).optional(), note: text(10_000).optional().describe('Timeline note (sealed)') }).strict(),
          response: { 200: incident, ...errorResponses, ...notFound, 409: errorBody.describe('The status does not allow this change') },
        },
      },
      async (req) => incidents.update(req.params.id, req.body, { actor: actorOf(req), requestId: req.id }),
    );

    app.post(
      '/incidents/:id/assessment',
      {
        config: { scope: 'incidents:write' },
        schema: {
          tags: ['incidents'],
          summary: 'Override the computed risk assessment, with a justification (audited)',
          params: z.object({ id }).strict(),
          body: z.object({ outcome: z.enum(BREACH_OUTCOMES), justification: text(10_000).min(1) }).strict(),
          response: { 200: incident, ...errorResponses, ...notFound },
        },
      },
      async (req) => incidents.overrideAssessment(req.params.id, req.body, { actor: actorOf(req), requestId: req.id }),
    );

    app.get(
      '/incidents/:id/affected-subjects',
      {
        config: { scope: 'incidents:write' },
        schema: {
          tags: ['incidents'],
          summary: 'The people affected (NDJSON stream of {collection, identities})',
          description:
            'Reads the affected collections through the data map and the connectors; one JSON object per line. Personal data: needs `incidents:write`, is audited (count only), never logged. A failure after the stream started ends it with a line `{"error":{"code":…}}`.',
          params: z.object({ id }).strict(),
          querystring: z.object({ from: instant.optional(), to: instant.optional() }).strict(),
          headers: purposeHeaders,
          response: { 200: z.string().describe('application/x-ndjson'), ...errorResponses, ...notFound },
        },
      },
      async (req, reply) => {
        const ctx = readerOf(req);
        const abort = new AbortController();
        reply.raw.on('close', () => abort.abort());
        const it = incidents.affectedSubjects(req.params.id, { ...(req.query.from ? { from: req.query.from } : {}), ...(req.query.to ? { to: req.query.to } : {}), signal: abort.signal, actor: ctx.actor })[Symbol.asyncIterator]();
        // The first batch is read before answering, so that a missing incident or data map is a plain error.
        const first = await it.next();
        let count = 0;
        async function* lines(): AsyncGenerator<string> {
          try {
            for (let r = first; r.done !== true; r = await it.next()) {
              let chunk = '';
              for (const s of r.value) {
                count++;
                chunk += JSON.stringify(s) + '\n';
              }
              yield chunk;
            }
            await incidents.recordSubjectsRead(req.params.id, count, ctx);
          } catch (err) {
            yield JSON.stringify({ error: { code: isCustodianError(err) ? err.code : 'CST_ERR_INTERNAL', message: isCustodianError(err) ? err.message : 'scoping failed' } }) + '\n';
          } finally {
            await it.return?.(undefined);
          }
        }
        return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(Readable.from(lines()) as unknown as string); // a stream is piped, never serialised
      },
    );

    app.get(
      '/incidents/:id/notifications/drafts',
      {
        config: { scope: 'incidents:read' },
        schema: {
          tags: ['incidents'],
          summary: 'Drafts of the notifications: to the authority (GDPR Art. 33(3)) and to the people (Art. 34(2)), as text and escaped HTML',
          params: z.object({ id }).strict(),
          response: { 200: z.object({ authority: z.object({ subject: z.string(), text: z.string(), html: z.string() }), individuals: z.object({ subject: z.string(), text: z.string(), html: z.string() }) }), ...errorResponses, ...notFound },
        },
      },
      async (req) => incidents.drafts(req.params.id),
    );

    app.post(
      '/incidents/:id/notifications',
      {
        config: { scope: 'incidents:write' },
        schema: {
          tags: ['incidents'],
          summary: 'Send notifications through the mail outbox: to the authority/CSIRT (addresses given) or to the people found by scoping',
          params: z.object({ id }).strict(),
          body: z
            .object({
              audience: z.enum(BREACH_AUDIENCES),
              to: z.array(z.string().max(320)).max(20).optional().describe('Authority or CSIRT addresses (required for those audiences)'),
              jurisdiction: jurisdiction.nullish().describe('The jurisdiction whose duty this notification meets; null meets all'),
              stage: z.enum(BREACH_STAGES).optional().describe('NIS2 stage; default notification'),
              from: instant.optional().describe('Individuals: only people with rows at or after this time'),
              toTime: instant.optional().describe('Individuals: only people with rows before this time'),
            })
            .strict(),
          response: {
            201: z.object({ audience: z.enum(BREACH_AUDIENCES), stage: z.enum(BREACH_STAGES), jurisdiction: z.string().nullable(), queued: z.number(), notifiedAt: z.string() }),
            ...errorResponses,
            ...notFound,
            409: errorBody.describe('The incident is suspected or dismissed'),
          },
        },
      },
      async (req, reply) => reply.code(201).send(await incidents.notify(req.params.id, req.body, { actor: actorOf(req), requestId: req.id })),
    );
  };
}
