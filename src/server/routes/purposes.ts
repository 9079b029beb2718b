import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Custodian } from '../../app/index.js';
import { toPurposeInput } from '../../ledger/index.js';
import { actorOf } from '../auth.js';
import { errorResponses, purpose, purposeBody, purposeKeyParams, purposeList } from '../schemas.js';

/** Purpose configuration routes. */
export function purposeRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { purposes } = custodian;
  return async (app) => {
    app.get(
      '/purposes',
      { config: { scope: 'consent:read' }, schema: { tags: ['purposes'], summary: 'Configured purposes', response: { 200: purposeList, ...errorResponses } } },
      async () => ({ purposes: purposes.list() }),
    );

    app.put(
      '/purposes/:key',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['purposes'],
          summary: 'Create or replace a purpose',
          description: 'Events already recorded keep the legal basis they were recorded under.',
          params: purposeKeyParams,
          body: purposeBody,
          response: { 200: purpose, 201: purpose, ...errorResponses },
        },
      },
      async (request, reply) => {
        const { purpose: saved, created } = await purposes.put(request.params.key, toPurposeInput(request.body), actorOf(request));
        return reply.code(created ? 201 : 200).send(saved);
      },
    );
  };
}
