import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { CustodianError, isStorableText } from '../../core/index.js';
import { checkManifestValue, invalidManifest, manifestSchema } from '../../datamap/index.js';
import { actorOf } from '../auth.js';
import { errorResponses } from '../schemas.js';

const MANIFEST_BODY_LIMIT = 32 * 1024 * 1024;
const manifestValue = z.record(z.string(), z.unknown()).describe('A data map manifest (docs/datamap.md; JSON Schema at GET /v1/datamap/schema).');
const versionInfo = z.object({ version: z.number(), sha256: z.string(), createdAt: z.string(), actor: z.string(), comment: z.string().nullable() });
const issue = z.object({ severity: z.enum(['error', 'warning']), path: z.string(), message: z.string() });
const change = z.object({ kind: z.enum(['added', 'removed', 'changed']), path: z.string(), properties: z.array(z.string()).readonly().optional() });
const diff = z.object({ changes: z.array(change).readonly(), counts: z.object({ added: z.number(), removed: z.number(), changed: z.number() }) });
const versionNumber = z.coerce.number().int().min(1).max(2_147_483_647);

/** The data map: read, store (validated, versioned, audited), versions, differences, schema. */
export function datamapRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { datamap } = custodian;
  return async (app) => {
    app.get(
      '/datamap',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['datamap'],
          summary: 'The current data map (or a given version)',
          querystring: z.object({ version: versionNumber.optional() }).strict(),
          response: { 200: versionInfo.extend({ manifest: manifestValue }), ...errorResponses },
        },
      },
      async (request) => {
        const stored = request.query.version !== undefined ? await datamap.version(request.query.version) : await datamap.current();
        if (stored === undefined) throw new CustodianError('CST_ERR_DATAMAP_NOT_FOUND', 'no data map has been stored yet');
        return stored;
      },
    );

    app.put(
      '/datamap',
      {
        config: { scope: 'datamap:write' },
        bodyLimit: MANIFEST_BODY_LIMIT,
        schema: {
          tags: ['datamap'],
          summary: 'Store a new data map version',
          description:
            'Validates the manifest (schema, taxonomy, references, erasure strategies, legal bases, transfers, cycles) and stores it as the next version unless it equals the current one (`created: false`). ' +
            'Purposes are upserted into the consent ledger in the same transaction. With `baseVersion`, fails with 409 when another version was stored since. Invalid manifests fail with 400 CST_ERR_DATAMAP_INVALID listing every issue.',
          body: z
            .object({
              manifest: manifestValue,
              comment: z.string().max(500).refine(isStorableText, 'must be well-formed text').optional(),
              baseVersion: z.number().int().min(0).optional().describe('The version this change was based on (0: none yet).'),
            })
            .strict(),
          response: { 200: z.object({ version: versionInfo, created: z.boolean(), diff, warnings: z.array(issue).readonly() }), ...errorResponses },
        },
      },
      async (request) =>
        datamap.put(request.body.manifest, {
          actor: actorOf(request),
          requestId: request.id,
          ...(request.body.comment !== undefined ? { comment: request.body.comment } : {}),
          ...(request.body.baseVersion !== undefined ? { baseVersion: request.body.baseVersion } : {}),
        }),
    );

    app.post(
      '/datamap/validate',
      {
        config: { scope: 'datamap:read' },
        bodyLimit: MANIFEST_BODY_LIMIT,
        schema: {
          tags: ['datamap'],
          summary: 'Validate a manifest without storing it',
          description: 'Answers 200 with every warning when the manifest is valid, 400 CST_ERR_DATAMAP_INVALID with every issue when it is not.',
          body: z.object({ manifest: manifestValue }).strict(),
          response: { 200: z.object({ valid: z.literal(true), warnings: z.array(issue).readonly() }), ...errorResponses },
        },
      },
      async (request) => {
        const checked = checkManifestValue(request.body.manifest);
        if (checked.manifest === undefined) throw invalidManifest(checked.issues);
        return { valid: true as const, warnings: checked.issues };
      },
    );

    app.get(
      '/datamap/versions',
      {
        config: { scope: 'datamap:read' },
        schema: { tags: ['datamap'], summary: 'Every stored version, newest first', response: { 200: z.object({ versions: z.array(versionInfo).readonly() }), ...errorResponses } },
      },
      async () => ({ versions: await datamap.versions() }),
    );

    app.get(
      '/datamap/diff',
      {
        config: { scope: 'datamap:read' },
        schema: {
          tags: ['datamap'],
          summary: 'What changed between two versions',
          description: 'Entities are matched by key or name: reordering is not a change. `from=0` compares with nothing.',
          querystring: z.object({ from: z.coerce.number().int().min(0).max(2_147_483_647), to: versionNumber }).strict(),
          response: { 200: diff, ...errorResponses },
        },
      },
      async (request) => datamap.diff(request.query.from, request.query.to),
    );

    const jsonSchema = z.toJSONSchema(manifestSchema, { io: 'input', unrepresentable: 'any' });
    app.get(
      '/datamap/schema',
      {
        config: { scope: 'datamap:read' },
        schema: { tags: ['datamap'], summary: 'JSON Schema of the manifest (for editors and CI)', response: { 200: z.record(z.string(), z.unknown()), ...errorResponses } },
      },
      async () => jsonSchema,
    );
  };
}
