import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ERROR_CODES, isCustodianError, type ErrorCode } from '../core/index.js';
import { storeUnavailableReason } from '../store/index.js';

/** The body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'CST_ERR_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'CST_ERR_BAD_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'CST_ERR_BAD_REQUEST',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'CST_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'CST_ERR_PAYLOAD_TOO_LARGE',
};

function body(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing (malformed percent-encoding, a path parameter
 * over the router's limit), which never reach the error handler, answered in the same error shape.
 */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (typeof err.statusCode === 'number' && err.statusCode < 500) {
    void reply.code(400).send(body('CST_ERR_BAD_REQUEST', 'malformed or overlong URL'));
    return;
  }
  request.log.error({ errType: err.name, errCode: err.code }, 'unhandled framework error');
  void reply.code(500).send(body('CST_ERR_INTERNAL', 'internal error', { requestId: request.id }));
}

/**
 * Maps every error to `{"error":{"code","message","details"}}`: caller faults to their 4xx, anything else
 * to a 500 that says nothing of internals. Logged faults carry the error's type and code, not its message,
 * since driver messages can quote row values.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const issues = err.validation.map((v) => ({
        path: [err.validationContext ?? 'body', ...String(v.instancePath ?? '').split('/').filter(Boolean)].join('.'),
        message: v.message ?? 'invalid',
      }));
      return reply.code(400).send(body('CST_ERR_VALIDATION', 'request does not match the schema', { issues }));
    }
    if (isCustodianError(err)) {
      if (err.status >= 500) request.log.error({ errCode: err.code, cause: (err.cause as Error | undefined)?.name }, 'request failed');
      return reply.code(err.status).send(body(err.code, err.message, err.details));
    }
    const mapped = err.code === undefined ? undefined : FASTIFY_CODES[err.code];
    if (mapped !== undefined) return reply.code(ERROR_CODES[mapped].status).send(body(mapped, ERROR_CODES[mapped].description));
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send(body('CST_ERR_BAD_REQUEST', 'bad request'));
    }
    const unavailable = storeUnavailableReason(err);
    if (unavailable !== undefined) {
      request.log.error({ errCode: 'CST_ERR_UNAVAILABLE', reason: unavailable }, 'store unavailable');
      return reply.code(503).header('retry-after', '1').send(body('CST_ERR_UNAVAILABLE', 'the store is unavailable; retry later', { requestId: request.id }));
    }
    request.log.error({ errType: err.name, errCode: err.code, stack: err.stack?.split('\n').slice(1, 8).join('\n') }, 'unhandled error');
    return reply.code(500).send(body('CST_ERR_INTERNAL', 'internal error', { requestId: request.id }));
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send(body('CST_ERR_NOT_FOUND', 'no such route')));
}
