import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Custodian } from '../../app/index.js';
import { isCustodianError, isStorableText } from '../../core/index.js';
import { BLIND_INDEX_NAME, MAX_CONTEXT_LENGTH, NORMALISER_NAMES } from '../../crypto/index.js';
import { actorOf, readerOf } from '../auth.js';
import { errorBody, errorResponses, purposeHeaders, subjectId, subjectParams } from '../schemas.js';

const MAX_BATCH = 1000;
const MAX_PLAINTEXT = 1024 * 1024;
const text = () => z.string().refine(isStorableText, 'must be well-formed Unicode without NUL characters');
const context = text().min(1).max(MAX_CONTEXT_LENGTH).describe('Where the value lives, e.g. crm.contacts.email:row-42. Never personal data.');
// The largest plaintext (1 Mi UTF-16 units, up to 3 MiB of UTF-8) encrypts to at most ~4 MiB of base64url.
const ciphertext = z.string().min(1).max(6 * MAX_PLAINTEXT).describe('A Custodian field ciphertext (c1.…)');
const indexName = z.string().regex(BLIND_INDEX_NAME).describe('Blind index name (email and phone are built in)');

const encryptItem = z.object({ subjectId, plaintext: z.string().max(MAX_PLAINTEXT).describe('UTF-8 text; send binary as base64 text'), context }).strict();
const decryptItem = z.object({ ciphertext, context }).strict();
const indexItem = z.object({ value: z.string().max(65_536), index: indexName }).strict();
const itemError = z.object({ code: z.string(), message: z.string() });

/** Field encryption, blind indexes and crypto-shredding over HTTP, for applications in other languages. */
export function cryptoRoutes(custodian: Custodian): FastifyPluginAsyncZod {
  const { keyring, audit } = custodian;
  // Decrypts return personal data: each request that returns plaintext is audited (count and stated purpose, no values).
  const audited = (request: FastifyRequest, count: number) => {
    const { actor, requestId, purpose } = readerOf(request);
    return audit.recordNow([{ actor, action: 'crypto.decrypted', targetType: 'system', targetId: null, requestId, details: { count, ...(purpose === undefined ? {} : { purpose }) } }]);
  };
  const auditedBatch = async <T extends object>(request: FastifyRequest, results: Array<Promise<T>>): Promise<T[]> => {
    const all = await Promise.all(results);
    const count = all.filter((r) => 'plaintext' in r).length;
    if (count > 0) await audited(request, count);
    return all;
  };
  const bodyLimit = 32 * 1024 * 1024;
  return async (app) => {
    app.post(
      '/crypto/encrypt',
      { config: { scope: 'crypto' }, bodyLimit, schema: { tags: ['crypto'], summary: "Encrypt a value under the subject's key, bound to a context", body: encryptItem, response: { 200: z.object({ ciphertext: z.string() }), ...errorResponses } } },
      async (request) => ({ ciphertext: await keyring.encryptField(request.body.subjectId, request.body.plaintext, request.body.context) }),
    );
    app.post(
      '/crypto/decrypt',
      {
        config: { scope: 'crypto' },
        bodyLimit,
        schema: {
          tags: ['crypto'],
          summary: 'Decrypt a value; a shredded subject answers 410 CST_ERR_CRYPTO_SHREDDED',
          body: decryptItem,
          headers: purposeHeaders,
          response: { 200: z.object({ plaintext: z.string() }), 410: errorBody.describe('The subject was crypto-shredded'), ...errorResponses },
        },
      },
      async (request) => {
        const plaintext = await keyring.decryptFieldText(request.body.ciphertext, request.body.context);
        await audited(request, 1);
        return { plaintext };
      },
    );
    app.post(
      '/crypto/blind-index',
      { config: { scope: 'crypto' }, schema: { tags: ['crypto'], summary: 'Keyed, normalised, truncated HMAC of a value for equality search', body: indexItem, response: { 200: z.object({ blindIndex: z.string() }), ...errorResponses } } },
      async (request) => ({ blindIndex: await keyring.blindIndex(request.body.value, request.body.index) }),
    );
    app.post(
      '/crypto/encrypt/batch',
      { config: { scope: 'crypto' }, bodyLimit, schema: { tags: ['crypto'], summary: `Encrypt up to ${MAX_BATCH} values`, body: z.object({ items: z.array(encryptItem).min(1).max(MAX_BATCH) }).strict(), response: { 200: z.object({ results: z.array(z.object({ ciphertext: z.string() })).readonly() }), ...errorResponses } } },
      async (request) => ({ results: await Promise.all(request.body.items.map(async (i) => ({ ciphertext: await keyring.encryptField(i.subjectId, i.plaintext, i.context) }))) }),
    );
    app.post(
      '/crypto/decrypt/batch',
      {
        config: { scope: 'crypto' },
        bodyLimit,
        schema: {
          tags: ['crypto'],
          summary: `Decrypt up to ${MAX_BATCH} values; each result is a plaintext or that item's error (e.g. shredded)`,
          body: z.object({ items: z.array(decryptItem).min(1).max(MAX_BATCH) }).strict(),
          headers: purposeHeaders,
          response: { 200: z.object({ results: z.array(z.union([z.object({ plaintext: z.string() }), z.object({ error: itemError })])).readonly() }), ...errorResponses },
        },
      },
      async (request) => ({
        results: await auditedBatch(
          request,
          request.body.items.map(async (i) => {
            try {
              return { plaintext: await keyring.decryptFieldText(i.ciphertext, i.context) };
            } catch (err) {
              if (isCustodianError(err) && err.status < 500) return { error: { code: err.code, message: err.message } };
              throw err;
            }
          }),
        ),
      }),
    );
    app.post(
      '/crypto/blind-index/batch',
      { config: { scope: 'crypto' }, bodyLimit, schema: { tags: ['crypto'], summary: `Blind-index up to ${MAX_BATCH} values`, body: z.object({ items: z.array(indexItem).min(1).max(MAX_BATCH) }).strict(), response: { 200: z.object({ results: z.array(z.object({ blindIndex: z.string() })).readonly() }), ...errorResponses } } },
      async (request) => ({ results: await Promise.all(request.body.items.map(async (i) => ({ blindIndex: await keyring.blindIndex(i.value, i.index) }))) }),
    );
    app.put(
      '/crypto/blind-indexes/:name',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['crypto'],
          summary: 'Define a blind index (normaliser and output bits); an existing one cannot be changed',
          params: z.object({ name: indexName }).strict(),
          body: z.object({ normaliser: z.enum(NORMALISER_NAMES), bits: z.number().int().min(32).max(256).multipleOf(8).default(64) }).strict(),
          response: { 200: z.object({ name: z.string(), normaliser: z.enum(NORMALISER_NAMES), bits: z.number() }), ...errorResponses },
        },
      },
      async (request) => keyring.defineBlindIndex({ name: request.params.name, normaliser: request.body.normaliser, bits: request.body.bits }),
    );
    app.get(
      '/crypto/blind-indexes',
      {
        config: { scope: 'crypto' },
        schema: {
          tags: ['crypto'],
          summary: 'Blind index definitions: the defined ones, and the built-in ones (usable at once, defined on first use)',
          response: { 200: z.object({ indexes: z.array(z.object({ name: z.string(), normaliser: z.enum(NORMALISER_NAMES), bits: z.number(), builtIn: z.boolean(), defined: z.boolean() })).readonly() }), ...errorResponses },
        },
      },
      async () => ({ indexes: await keyring.listBlindIndexes() }),
    );
    app.get(
      '/crypto/status',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['crypto'],
          summary: 'Master-key versions, data key counts, shreddings, re-wrap progress',
          response: {
            200: z.object({
              provider: z.string(),
              primaryVersion: z.number(),
              versions: z.array(z.object({ version: z.number(), provider: z.string(), keyRef: z.string(), status: z.string(), dataKeys: z.number(), createdAt: z.string() })).readonly(),
              dataKeys: z.object({ subject: z.number(), index: z.number(), system: z.number() }),
              shreddings: z.number(),
              rewrap: z.object({ jobId: z.string(), targetVersion: z.number(), processed: z.number(), total: z.number(), done: z.boolean() }).nullable(),
            }),
            ...errorResponses,
          },
        },
      },
      async () => keyring.status(),
    );
    app.post(
      '/subjects/:subjectId/shred',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['crypto'],
          summary: "Crypto-shred a subject: destroy its keys so every ciphertext of it, anywhere, is unreadable",
          params: subjectParams,
          body: z.object({ reason: text().min(1).max(500) }).strict(),
          response: {
            200: z.object({ tombstoneId: z.string(), subjectRef: z.string(), shreddedAt: z.string(), keysDestroyed: z.number(), keyIds: z.array(z.string()).readonly() }),
            ...errorResponses,
          },
        },
      },
      async (request) => keyring.shredSubject(request.params.subjectId, { reason: request.body.reason, actor: actorOf(request) }),
    );
    app.get(
      '/subjects/:subjectId/shreddings',
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['crypto'],
          summary: "A subject's crypto-shreddings (tombstones, oldest first) and the subject reference they are filed under: what a shred receipt is checked against",
          params: subjectParams,
          response: {
            200: z.object({
              subjectRef: z.string(),
              shreddings: z.array(z.object({ tombstoneId: z.string(), shreddedAt: z.string(), reason: z.string(), actor: z.string(), keysDestroyed: z.number(), keyIds: z.array(z.string()).readonly() })).readonly(),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => keyring.shredHistory(request.params.subjectId),
    );
  };
}
