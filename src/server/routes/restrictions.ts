import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { RESTRICTION_LIFT_REASONS, RESTRICTION_LIFT_REASON_KEYS, RESTRICTION_REASON_KEYS } from '../../core/index.js';
import { actorOf } from '../auth.js';
import { errorResponses, subjectParams } from '../schemas.js';

const restriction = z.object({
  subjectId: z.string(),
  restricted: z.boolean(),
  reason: z.enum([...RESTRICTION_REASON_KEYS, ...RESTRICTION_LIFT_REASON_KEYS]).nullable().describe('Reason code of the latest restriction or lifting; null when never restricted'),
  requestId: z.string().nullable().describe('The data subject request that asked for the restriction in force'),
  since: z.string().nullable().describe('When the restriction in force began (UTC ISO-8601 with milliseconds); null when not restricted'),
  eventId: z.string().nullable().describe('The latest restriction event of the subject'),
  updatedAt: z.string().nullable().describe('When the latest restriction event was recorded'),
});

const liftReasons = Object.entries(RESTRICTION_LIFT_REASONS)
  .map(([k, v]) => `\`${k}\`: ${v}`)
  .join(' ');

/** Restriction of processing (GDPR Art. 18; LGPD Art. 18, IV): read it, lift it. Restricting is a `restriction` request. */
export function restrictionRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { ledger } = custodian;
  return async (app) => {
    app.get(
      '/restrictions/:subjectId',
      {
        config: { scope: 'requests:read' },
        schema: {
          tags: ['requests'],
          summary: 'Whether processing of a subject is restricted (GDPR Art. 18), since when and why',
          description: 'A subject that was never restricted answers `restricted: false` with null fields. Restrictions are made by `restriction` requests (`POST /v1/requests`).',
          params: subjectParams,
          response: { 200: restriction, ...errorResponses },
        },
      },
      async (req) => ledger.restriction(req.params.subjectId),
    );

    app.post(
      '/restrictions/:subjectId/lift',
      {
        config: { scope: 'requests:admin' },
        schema: {
          tags: ['requests'],
          summary: 'Lift the restriction of processing of a subject (GDPR Art. 18(3))',
          description: `Tell the subject before lifting (Art. 18(3)). Idempotent: when no restriction is in force nothing is recorded and \`changed\` is false. Emits \`subject.restriction_lifted\`. Reasons: ${liftReasons}`,
          params: subjectParams,
          body: z.object({ reason: z.enum(RESTRICTION_LIFT_REASON_KEYS) }).strict(),
          response: { 200: restriction.extend({ changed: z.boolean() }), ...errorResponses },
        },
      },
      async (req) => ledger.liftRestriction(req.params.subjectId, { reason: req.body.reason, actor: actorOf(req), auditRequestId: req.id }),
    );
  };
}
