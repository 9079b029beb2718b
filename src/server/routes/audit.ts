import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { AUDIT_ACTION_KEYS, TREES } from '../../audit/index.js';
import { CustodianError } from '../../core/index.js';
import { readerOf } from '../auth.js';
import { consentEvent, errorBody, errorResponses, instant, purposeHeaders, subjectId } from '../schemas.js';

const tree = z.enum(TREES).default('audit').describe('Which tree: audit entries or consent events');
const head = z.object({ tree: z.enum(TREES), size: z.number(), rootHash: z.string(), checkpoint: z.string().describe('C2SP signed checkpoint'), createdAt: z.string(), verifierKey: z.string() });
const bundle = z.object({
  tree: z.enum(TREES),
  leaf: z.string().describe('Canonical leaf bytes, base64'),
  index: z.number(),
  treeSize: z.number(),
  inclusionProof: z.array(z.string()).readonly(),
  checkpoint: z.string(),
  verifierKey: z.string(),
});

/** The audit log: entries, signed heads, inclusion and consistency proofs, proof-of-consent bundles. */
export function auditRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { audit } = custodian;
  return async (app) => {
    app.get(
      '/audit',
      {
        config: { scope: 'audit:read' },
        schema: {
          tags: ['audit'],
          summary: 'Audit entries, newest first, filtered by subject, action and time',
          querystring: z
            .object({
              subjectId: subjectId.optional(),
              action: z.enum(AUDIT_ACTION_KEYS).optional(),
              from: instant.optional(),
              to: instant.optional(),
              cursor: z.uuid().optional(),
              limit: z.coerce.number().int().min(1).max(1000).optional(),
            })
            .strict(),
          response: {
            200: z.object({
              entries: z
                .array(
                  z.object({
                    id: z.string(), seq: z.number().nullable(), time: z.string(), actor: z.string(), action: z.string(), targetType: z.string(), targetRef: z.string().nullable(),
                    outcome: z.string(), requestId: z.string().nullable(), details: z.unknown(), hasPayload: z.boolean(),
                  }),
                )
                .readonly(),
              nextCursor: z.string().nullable(),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => audit.list(request.query),
    );
    app.get(
      '/audit/checkpoint',
      { config: { scope: 'audit:read' }, schema: { tags: ['audit'], summary: 'The latest signed tree head (integrates pending entries and signs when the tree grew)', querystring: z.object({ tree }).strict(), response: { 200: head, ...errorResponses } } },
      async (request) => ({ ...(await audit.checkpoint(request.query.tree)), verifierKey: audit.verifierKey(request.query.tree) }),
    );
    app.get(
      '/audit/entries/:seq/proof',
      {
        config: { scope: 'audit:read' },
        schema: { tags: ['audit'], summary: 'Inclusion proof of the leaf at a position, with a signed head covering it', params: z.object({ seq: z.coerce.number().int().min(0) }).strict(), querystring: z.object({ tree }).strict(), response: { 200: bundle, 404: errorBody, ...errorResponses } },
      },
      async (request) => audit.proofAt(request.query.tree, request.params.seq),
    );
    app.get(
      '/audit/consistency',
      {
        config: { scope: 'audit:read' },
        schema: {
          tags: ['audit'],
          summary: 'Consistency proof between two tree sizes',
          querystring: z.object({ tree, from: z.coerce.number().int().min(0), to: z.coerce.number().int().min(0) }).strict(),
          response: { 200: z.object({ from: z.number(), to: z.number(), proof: z.array(z.string()), rootFrom: z.string(), rootTo: z.string() }), ...errorResponses },
        },
      },
      async (request) => audit.consistency(request.query.tree, request.query.from, request.query.to),
    );
    app.post(
      '/audit/verify',
      {
        config: { scope: 'audit:read' },
        schema: {
          tags: ['audit'],
          summary: 'Recompute one tree from the store and check every signed head and stored subtree hash',
          description: 'The server-side check of `custodian audit verify`: the first problem with its position, or the verified size and root. Offline verification needs only the public key (docs/audit.md).',
          querystring: z.object({ tree }).strict(),
          response: {
            200: z.object({ ok: z.boolean(), tree: z.enum(TREES), size: z.number().optional(), rootHash: z.string().optional(), headsChecked: z.number().optional(), position: z.number().nullable().optional(), problem: z.string().optional() }),
            ...errorResponses,
          },
        },
      },
      async (request) => audit.verify(request.query.tree),
    );
    app.get(
      '/consent/events/:id/proof',
      {
        config: { scope: 'consent:read' },
        schema: {
          tags: ['consent'],
          summary: 'Proof of consent: the event, its inclusion proof in the consent tree and a signed head — verifiable offline',
          params: z.object({ id: z.uuid() }).strict(),
          headers: purposeHeaders,
          response: { 200: z.object({ event: consentEvent, bundle }), 404: errorBody, ...errorResponses },
        },
      },
      async (request) => {
        const event = await custodian.ledger.event(request.params.id, readerOf(request));
        if (event === null) throw new CustodianError('CST_ERR_NOT_FOUND', 'no such consent event');
        return { event, bundle: await audit.proofFor('consent', request.params.id) };
      },
    );
  };
}
