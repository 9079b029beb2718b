import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { CustodianError, toIso } from '../../core/index.js';
import type { DataMap } from '../../datamap/index.js';
import { assessTransfers, buildDataFlowGraph, buildRopa, graphToSvg, ropaToCsv, ropaToHtml, screenDpia } from '../../datamap/reports/index.js';
import { errorResponses, instant } from '../schemas.js';

const anyObject = z.unknown();
const regime = z.enum(['EU', 'UK']).default('EU').describe('Whose transfer rules apply: the EEA’s or the United Kingdom’s');

/** Reports generated from the current data map: records of processing, DPIA screening, transfers, data flows. */
export function reportRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const current = async (): Promise<DataMap> => {
    const map = await custodian.datamap.dataMap();
    if (map === undefined) throw new CustodianError('CST_ERR_DATAMAP_NOT_FOUND', 'no data map has been stored yet: PUT /v1/datamap first');
    return map;
  };
  return async (app) => {
    app.get(
      '/reports/ropa',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['reports'],
          summary: 'Records of processing activities (GDPR Art. 30(1)) from the current data map',
          description: '`format=json` (default) answers JSON; `csv` (RFC 4180) and `html` (printable, self-contained) answer a download. Every row names the manifest paths it comes from.',
          querystring: z.object({ format: z.enum(['json', 'csv', 'html']).default('json'), regime }).strict(),
          response: { 200: z.unknown().describe('The record (JSON), or CSV/HTML text'), ...errorResponses },
        },
      },
      async (request, reply) => {
        const ropa = buildRopa(await current(), { generatedAt: toIso(custodian.clock.now()), regime: request.query.regime });
        if (request.query.format === 'csv') return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="ropa.csv"').serializer((x: string) => x).send(ropaToCsv(ropa));
        if (request.query.format === 'html') return reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").serializer((x: string) => x).send(ropaToHtml(ropa));
        return ropa;
      },
    );

    app.get(
      '/reports/dpia',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['reports'],
          summary: 'DPIA screening per purpose (GDPR Art. 35; WP248 nine criteria)',
          querystring: z.object({}).strict(),
          response: { 200: anyObject, ...errorResponses },
        },
      },
      async () => screenDpia(await current()),
    );

    app.get(
      '/reports/transfers',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['reports'],
          summary: 'Transfers to third countries assessed against the dated adequacy list (GDPR Chapter V)',
          querystring: z.object({ regime }).strict(),
          response: { 200: anyObject, ...errorResponses },
        },
      },
      async (request) => assessTransfers(await current(), { regime: request.query.regime }),
    );

    app.get(
      '/reports/consent-rates',
      {
        config: { scope: 'consent:read' },
        schema: {
          tags: ['reports'],
          summary: 'Grant, denial and withdrawal counts and rates per purpose over time (aggregates, no subject)',
          description: 'Buckets are UTC days (`YYYY-MM-DD`) or months (`YYYY-MM`) over `[from, to)`; default the last 30 days by day; at most 366 buckets. Empty buckets are zeros.',
          querystring: z.object({ from: instant.optional(), to: instant.optional(), bucket: z.enum(['day', 'month']).default('day') }).strict(),
          response: {
            200: z.object({
              from: z.string(),
              to: z.string(),
              bucket: z.enum(['day', 'month']),
              buckets: z.array(z.string()).readonly(),
              purposes: z
                .array(
                  z.object({
                    purpose: z.string(),
                    series: z.array(z.object({ bucket: z.string(), granted: z.number(), denied: z.number(), withdrawn: z.number(), total: z.number(), grantRate: z.number(), withdrawRate: z.number() })).readonly(),
                  }),
                )
                .readonly(),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => custodian.ledger.rates(request.query),
    );

    app.get(
      '/datamap/graph',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['datamap'],
          summary: 'Data flows: systems, recipients, countries and transfers as a graph (for the admin console)',
          description: '`format=json` (default) answers nodes and edges; `svg` a standalone drawing (no script, every text escaped).',
          querystring: z.object({ format: z.enum(['json', 'svg']).default('json') }).strict(),
          response: { 200: anyObject, ...errorResponses },
        },
      },
      async (request, reply) => {
        const graph = buildDataFlowGraph(await current());
        if (request.query.format === 'svg') return reply.type('image/svg+xml; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").serializer((x: string) => x).send(graphToSvg(graph));
        return graph;
      },
    );
  };
}
