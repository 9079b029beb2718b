import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Custodian } from '../../app/index.js';
import { actorOf, readerOf } from '../auth.js';
import type { ServerMetrics } from '../metrics.js';
import {
  checkBatchBody,
  checkBatchResponse,
  checkQuery,
  checkResult,
  errorBody,
  gpcHeaders,
  errorResponses,
  purposeHeaders,
  historyQuery,
  historyResponse,
  recordBody,
  recordResponse,
  snapshotQuery,
  snapshotResponse,
  stateResponse,
  subjectParams,
} from '../schemas.js';

/** Consent routes: record, state, history (as-of), check. */
export function consentRoutes(custodian: Custodian, metrics: ServerMetrics): FastifyPluginAsyncZod {
  const { ledger } = custodian;
  return async (app) => {
    app.post(
      '/consent/events',
      {
        config: { scope: 'consent:write' },
        bodyLimit: 8 * 1024 * 1024,
        schema: {
          tags: ['consent'],
          summary: 'Record 1..1000 consent decisions atomically',
          description:
            'All events commit together or none does. `Sec-GPC: 1` (or `gpc: true`) records a GPC opt-out for sale/share/targeted-advertising purposes where the jurisdiction honours it.',
          headers: gpcHeaders,
          body: recordBody,
          response: { 201: recordResponse, ...errorResponses, 409: errorBody.describe('Idempotency key reused for a different event') },
        },
      },
      async (request, reply) => {
        const gpc = request.body.gpc === true || request.headers['sec-gpc'] === '1';
        const result = await ledger.record(request.body.events, { actor: actorOf(request), gpc, requestId: request.id });
        for (const e of result.events) if (!e.replayed) metrics.consentEvents.inc({ decision: e.decision, method: e.method });
        return reply.code(201).send(result);
      },
    );

    app.get(
      '/subjects/:subjectId/consent',
      {
        config: { scope: 'consent:read' },
        schema: { tags: ['consent'], summary: 'Current consent state of every purpose', params: subjectParams, response: { 200: stateResponse, ...errorResponses } },
      },
      async (request) => ({ subjectId: request.params.subjectId, purposes: await ledger.state(request.params.subjectId) }),
    );

    app.get(
      '/subjects/:subjectId/consent/history',
      {
        config: { scope: 'consent:read' },
        schema: {
          tags: ['consent'],
          summary: 'Consent events and the state as of an instant',
          description: 'Returns evidence (personal data): audited as consent.history.read with the purpose stated in Custodian-Purpose.',
          params: subjectParams,
          querystring: historyQuery,
          headers: purposeHeaders,
          response: { 200: historyResponse, ...errorResponses },
        },
      },
      async (request) => ledger.history(request.params.subjectId, request.query, readerOf(request)),
    );

    app.get(
      '/consent/check',
      {
        config: { scope: 'consent:read' },
        schema: { tags: ['consent'], summary: 'May this subject’s data be processed for this purpose now?', querystring: checkQuery, response: { 200: checkResult, ...errorResponses } },
      },
      async (request) => {
        const result = await ledger.check(request.query.subjectId, request.query.purpose);
        metrics.consentChecks.inc({ allowed: String(result.allowed) });
        return result;
      },
    );

    app.get(
      '/consent/snapshot',
      {
        config: { scope: 'consent:read' },
        schema: {
          tags: ['consent'],
          summary: 'Page through the current consent state of every subject (for clients keeping a local copy)',
          description:
            'Rows in (subjectId, purpose) order. `sequence` is the event outbox position read before the first page (carried by the cursor): subscribe to the event bus first, then page, then apply events whose consentEventId is newer than the row’s eventId.',
          querystring: snapshotQuery,
          response: { 200: snapshotResponse, ...errorResponses },
        },
      },
      async (request) => ledger.snapshot(request.query, { head: () => custodian.outbox.head() }),
    );

    app.post(
      '/consent/check',
      {
        config: { scope: 'consent:read' },
        bodyLimit: 8 * 1024 * 1024,
        schema: { tags: ['consent'], summary: 'Check up to 10,000 (subject, purpose) pairs', body: checkBatchBody, response: { 200: checkBatchResponse, ...errorResponses } },
      },
      async (request) => {
        const results = await ledger.checkMany(request.body.checks);
        for (const r of results) metrics.consentChecks.inc({ allowed: String(r.allowed) });
        return { results };
      },
    );
  };
}
