import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Custodian } from '../../app/index.js';
import { CustodianError } from '../../core/index.js';
import { SCOPES } from '../../auth/index.js';
import { actorOf, principalOf } from '../auth.js';
import { apiKeyCreateBody, apiKeyCreated, apiKeyList, apiKeyParams, errorBody, errorResponses } from '../schemas.js';

/** API key administration. */
export function apiKeyRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { apiKeys } = custodian;
  return async (app) => {
    app.post(
      '/api-keys',
      {
        config: { scope: 'admin' },
        schema: { tags: ['api-keys'], summary: 'Mint a scoped API key (the secret is shown once), optionally declared for purposes of use', body: apiKeyCreateBody, response: { 201: apiKeyCreated, ...errorResponses } },
      },
      async (request, reply) => {
        const k = await apiKeys.create({ name: request.body.name, scopes: request.body.scopes, purposes: request.body.purposes ?? [], createdBy: actorOf(request) });
        return reply.code(201).send(k);
      },
    );

    app.get(
      '/api-keys',
      { config: { scope: 'admin' }, schema: { tags: ['api-keys'], summary: 'List API keys (never secrets)', response: { 200: apiKeyList, ...errorResponses } } },
      async () => ({ apiKeys: await apiKeys.list() }),
    );

    app.get(
      '/me',
      {
        config: { scope: 'authenticated' },
        schema: {
          tags: ['api-keys'],
          summary: 'The calling API key: its id, name and scopes (what a console may show)',
          querystring: z.object({}).strict(),
          response: { 200: z.object({ id: z.string(), name: z.string(), scopes: z.array(z.enum(SCOPES)).readonly() }), ...errorResponses },
        },
      },
      async (request) => {
        const p = principalOf(request);
        return { id: p.id, name: p.name, scopes: p.scopes };
      },
    );

    app.delete(
      '/api-keys/:id',
      {
        config: { scope: 'admin' },
        schema: { tags: ['api-keys'], summary: 'Revoke an API key', params: apiKeyParams, response: { 204: z.null().describe('Revoked'), 404: errorBody, ...errorResponses } },
      },
      async (request, reply) => {
        if (!(await apiKeys.revoke(request.params.id, actorOf(request)))) throw new CustodianError('CST_ERR_NOT_FOUND', 'no such active API key');
        return reply.code(204).send(null);
      },
    );
  };
}
