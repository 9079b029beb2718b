import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { CustodianError, toIso } from '../../core/index.js';
import type { DataMap } from '../../datamap/index.js';
import { assessTransfers, buildDataFlowGraph, buildRopa, ropaToCsv, ropaToHtml, screenDpia } from '../../datamap/reports/index.js';
import { errorResponses } from '../schemas.js';

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
      '/datamap/graph',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['datamap'],
          summary: 'Data flows: systems, recipients, countries and transfers as a graph (for the admin console)',
          querystring: z.object({}).strict(),
          response: { 200: anyObject, ...errorResponses },
        },
      },
      async () => buildDataFlowGraph(await current()),
    );
  };
}
