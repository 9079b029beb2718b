import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { isStorableText } from '../../core/index.js';
import { actorOf } from '../auth.js';
import { errorResponses, instant } from '../schemas.js';

const list = <T extends z.ZodType>(item: T) => z.array(item).readonly();
const instantOut = z.string().describe('UTC ISO-8601 instant with milliseconds');
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lower-case UUID');
const text = (max: number) => z.string().min(1).max(max).refine(isStorableText, 'must be well-formed Unicode without NUL characters');

const skipped = z
  .object({ subject_hold: z.number().optional(), legal_hold: z.number().optional(), changed_meanwhile: z.number().optional(), already_anonymised: z.number().optional() })
  .describe('Rows past due left in place, by reason');

const collectionReport = z.object({
  collection: z.string(),
  system: z.string(),
  rule: z.number(),
  action: z.enum(['delete', 'anonymise']),
  cutoff: instantOut,
  state: z.string().describe('pending | running | done | skipped | failed'),
  matched: z.number(),
  deleted: z.number(),
  anonymised: z.number(),
  skipped,
  error: z.string().nullable(),
});

const runView = z.object({
  id: z.string(),
  status: z.enum(['running', 'completed', 'failed']),
  dryRun: z.boolean(),
  system: z.string().nullable(),
  datamapVersion: z.number(),
  asOf: instantOut,
  actor: z.string(),
  startedAt: instantOut,
  finishedAt: instantOut.nullable(),
  resumed: z.number(),
  error: z.string().nullable(),
  totals: z.object({ matched: z.number(), deleted: z.number(), anonymised: z.number(), skipped: z.number() }),
  collections: list(collectionReport),
});

const holdView = z.object({
  id: z.string(),
  scope: z.enum(['subject', 'system', 'collection']),
  system: z.string().nullable(),
  collection: z.string().nullable(),
  identityKind: z.string().nullable().describe('Subject holds: the kind of identity; the value is never shown (kept only as a keyed digest)'),
  reason: z.string(),
  until: instantOut.nullable(),
  createdBy: z.string(),
  createdAt: instantOut,
  releasedBy: z.string().nullable(),
  releasedAt: instantOut.nullable(),
  active: z.boolean(),
});

const reportRule = z.object({
  collection: z.string(),
  system: z.string(),
  rule: z.number(),
  field: z.string(),
  period: z.string(),
  action: z.enum(['delete', 'anonymise']),
  cutoff: instantOut,
  pastDue: z.number().nullable().describe('Rows past due that a run would delete or anonymise (not held); null when not measurable; every row past due when pastDueHeld is unknown'),
  pastDueHeld: z
    .number()
    .nullable()
    .describe('Rows past due that a run keeps because they are held; null when not measurable (see error) or unknown (a collection without a primaryKey, while subjects are held)'),
  heldReasons: z
    .object({ legal_hold: z.number(), subject_legal_hold: z.number(), open_request: z.number() })
    .nullable()
    .describe('pastDueHeld by reason, each row under the first that applies: a legal hold on the collection or system, on its subject, an open request of its subject'),
  anonymised: z.number().nullable().describe('Anonymise rules: rows past due whose named fields are already anonymised (their rule is met); 0 for delete rules; null when unknown'),
  pastDueAll: z.number().nullable().describe('Every row past due, counted (exact even when the split is estimated)'),
  scanned: z.number().nullable().describe('Rows past due read to tell them apart (0 when counts sufficed)'),
  estimated: z.boolean().describe('pastDue, pastDueHeld, heldReasons and anonymised are scaled from the first `scanned` rows past due (the report reads a bounded number per rule)'),
  dueSoon: z.number().nullable(),
  compliant: z.boolean().nullable().describe('No actionable row past due (held rows never count against a rule); null when not measurable, or estimated with no actionable row among those read'),
  heldBy: z.enum(['legal_hold']).nullable(),
  error: z.string().nullable(),
});

const report = z.object({
  generatedAt: instantOut,
  datamapVersion: z.number().nullable(),
  horizonDays: z.number(),
  rules: list(reportRule),
  compliancePercent: z.number().nullable().describe('100 × measured rules with no actionable row past due / measured rules, one decimal; null when none was measured'),
  pastDueTotal: z.number().describe('Actionable rows past due, all rules'),
  pastDueHeldTotal: z.number().describe('Held rows past due, all rules'),
  dueSoonTotal: z.number(),
  estimated: z.boolean().describe('Some rule is estimated: pastDueTotal and pastDueHeldTotal are then estimates too'),
  lastRun: z.object({ id: z.string(), status: z.string(), finishedAt: instantOut.nullable(), dryRun: z.boolean() }).nullable(),
  activeLegalHolds: z.number(),
});

const holdBody = z
  .object({
    scope: z.enum(['subject', 'system', 'collection']),
    identity: z
      .object({ kind: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), value: text(320) })
      .strict()
      .optional()
      .describe('Subject holds: an identity of the data map (e.g. email). Stored only as a keyed digest.'),
    system: z.string().min(1).max(128).optional().describe('System holds: the system key'),
    collection: z.string().min(3).max(300).optional().describe('Collection holds: `<dataset>.<collection>`'),
    reason: text(1000).describe('Why (case reference); no personal data'),
    until: instant.optional().describe('When the hold ends by itself; none = until released'),
  })
  .strict();

/** Retention: runs (and dry runs), their reports, legal holds, and the retention report. */
export function retentionRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { retention } = custodian;
  return async (app) => {
    app.post(
      '/retention/runs',
      {
        config: { scope: 'datamap:write' },
        schema: {
          tags: ['retention'],
          summary: 'Start a retention run (or a dry run)',
          description:
            'Applies the retention rules of the current data map in bounded batches, skipping rows of subjects under hold (open requests, legal holds). Answers 202 once the run is recorded; it goes on in the background: poll `GET /v1/retention/runs/{id}`. ' +
            'An interrupted run is resumed first. A dry run only counts. 409 CST_ERR_RETENTION_BUSY while another run holds the lease.',
          body: z
            .object({ dryRun: z.boolean().default(false), system: z.string().min(1).max(128).optional().describe('Only the collections of this system') })
            .strict()
            .default({ dryRun: false }),
          response: { 202: runView, ...errorResponses },
        },
      },
      async (request, reply) => {
        const run = await retention.start({ dryRun: request.body.dryRun, system: request.body.system, actor: actorOf(request) });
        return reply.code(202).send(run);
      },
    );

    app.get(
      '/retention/runs',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['retention'],
          summary: 'The latest retention runs, newest first (totals only)',
          querystring: z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) }).strict(),
          response: { 200: z.object({ runs: list(runView) }), ...errorResponses },
        },
      },
      async (request) => ({ runs: await retention.list(request.query.limit) }),
    );

    app.get(
      '/retention/runs/:id',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['retention'],
          summary: 'A retention run and its report per collection',
          params: z.object({ id: uuid }).strict(),
          response: { 200: runView, ...errorResponses },
        },
      },
      async (request) => retention.get(request.params.id),
    );

    app.get(
      '/reports/retention',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['reports', 'retention'],
          summary: 'Retention compliance: per rule, rows past due now (actionable, and held by reason) and coming due soon, measured against the systems',
          querystring: z.object({ horizonDays: z.coerce.number().int().min(1).max(366).default(30) }).strict(),
          response: { 200: report, ...errorResponses },
        },
      },
      async (request) => retention.report({ horizonDays: request.query.horizonDays }),
    );

    app.get(
      '/legal-holds',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['retention'],
          summary: 'Legal holds, newest first',
          querystring: z.object({ active: z.enum(['true', 'false']).optional().describe('true: only holds in force now') }).strict(),
          response: { 200: z.object({ holds: list(holdView) }), ...errorResponses },
        },
      },
      async (request) => ({ holds: await retention.listHolds({ active: request.query.active === 'true' }) }),
    );

    app.post(
      '/legal-holds',
      {
        config: { scope: 'datamap:write' },
        schema: {
          tags: ['retention'],
          summary: 'Place a legal hold (GDPR Art. 17(3)(e)): retention skips what it covers',
          body: holdBody,
          response: { 201: holdView, ...errorResponses },
        },
      },
      async (request, reply) => {
        const hold = await retention.createHold({ ...request.body, actor: actorOf(request) });
        return reply.code(201).send(hold);
      },
    );

    app.delete(
      '/legal-holds/:id',
      {
        config: { scope: 'datamap:write' },
        schema: {
          tags: ['retention'],
          summary: 'Release a legal hold',
          params: z.object({ id: uuid }).strict(),
          response: { 200: holdView, ...errorResponses },
        },
      },
      async (request) => retention.releaseHold(request.params.id, actorOf(request)),
    );
  };
}
