import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Validator } from '@seriousme/openapi-schema-validator';
import { beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_HINT, OPENAPI_PATH, checkOpenApi, renderOpenApi } from '../../scripts/openapi.js';

interface Operation {
  operationId?: string;
  tags?: string[];
  security?: unknown[];
  responses?: Record<string, unknown>;
}
interface OpenApiDocument {
  openapi: string;
  security?: unknown[];
  paths: Record<string, Record<string, Operation>>;
}

/** /v1 routes without an API key: the consent banner's public API (CORS, rate-limited), see docs/banner.md. */
const PUBLIC_V1_PATHS = ['/v1/banner/experience', '/v1/banner/consent'];
const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('OpenAPI document', () => {
  let generated: string;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    generated = await renderOpenApi();
    doc = JSON.parse(generated) as OpenApiDocument;
  });

  it('matches the committed docs/openapi.json (drift check)', async () => {
    const committed = await readFile(OPENAPI_PATH, 'utf8').catch(() => '');
    expect(committed === generated, OPENAPI_HINT).toBe(true);
  });

  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(generated) as Record<string, unknown>);
    expect(result.errors, JSON.stringify(result.errors, null, 2)).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(doc.openapi).toBe('3.1.0');
  });

  it('declares 400, 401 and 403 on every /v1 operation, which all require an API key', () => {
    const operations = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/v1/') && !PUBLIC_V1_PATHS.includes(path) && !path.startsWith('/v1/privacy/'))
      .flatMap(([path, item]) => Object.entries(item).filter(([method]) => METHODS.has(method)).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })));
    expect(operations.map((o) => o.name).sort()).toStrictEqual(
      [
        'DELETE /v1/api-keys/{id}',
        'GET /v1/api-keys',
        'GET /v1/me',
        'GET /v1/reports/consent-rates',
        'POST /v1/audit/verify',
        'GET /v1/consent/check',
        'GET /v1/consent/snapshot',
        'GET /v1/purposes',
        'GET /v1/subjects/{subjectId}/consent',
        'GET /v1/subjects/{subjectId}/consent/history',
        'POST /v1/api-keys',
        'POST /v1/consent/check',
        'POST /v1/consent/events',
        'POST /v1/consent/link',
        'PUT /v1/purposes/{key}',
        'POST /v1/crypto/encrypt',
        'POST /v1/crypto/decrypt',
        'POST /v1/crypto/blind-index',
        'POST /v1/crypto/encrypt/batch',
        'POST /v1/crypto/decrypt/batch',
        'GET /v1/crypto/blind-indexes',
        'GET /v1/subjects/{subjectId}/shreddings',
        'POST /v1/crypto/blind-index/batch',
        'PUT /v1/crypto/blind-indexes/{name}',
        'GET /v1/crypto/status',
        'POST /v1/subjects/{subjectId}/shred',
        'GET /v1/audit',
        'GET /v1/audit/checkpoint',
        'GET /v1/audit/entries/{seq}/proof',
        'GET /v1/audit/consistency',
        'GET /v1/consent/events/{id}/proof',
        'GET /v1/datamap',
        'PUT /v1/datamap',
        'POST /v1/datamap/validate',
        'GET /v1/datamap/versions',
        'GET /v1/datamap/diff',
        'GET /v1/datamap/schema',
        'GET /v1/datamap/graph',
        'GET /v1/reports/ropa',
        'GET /v1/reports/dpia',
        'GET /v1/reports/transfers',
        'GET /v1/reports/retention',
        'POST /v1/retention/runs',
        'GET /v1/retention/runs',
        'GET /v1/retention/runs/{id}',
        'GET /v1/legal-holds',
        'POST /v1/legal-holds',
        'DELETE /v1/legal-holds/{id}',
        'POST /v1/requests',
        'GET /v1/events',
        'GET /v1/events/subscriptions',
        'POST /v1/events/subscriptions',
        'GET /v1/events/subscriptions/{id}',
        'DELETE /v1/events/subscriptions/{id}',
        'GET /v1/events/subscriptions/{id}/deliveries',
        'POST /v1/events/subscriptions/{id}/replay',
        'GET /v1/requests',
        'GET /v1/requests/{id}',
        'GET /v1/requests/{id}/tasks',
        'POST /v1/requests/{id}/verify',
        'POST /v1/requests/{id}/approve',
        'POST /v1/requests/{id}/reject',
        'POST /v1/requests/{id}/extend',
        'GET /v1/requests/{id}/package',
        'GET /v1/requests/{id}/certificate',
        'POST /v1/requests/{id}/package-link',
        'GET /v1/restrictions/{subjectId}',
        'POST /v1/restrictions/{subjectId}/lift',
        'GET /v1/incidents',
        'POST /v1/incidents',
        'GET /v1/incidents/{id}',
        'PATCH /v1/incidents/{id}',
        'POST /v1/incidents/{id}/assessment',
        'GET /v1/incidents/{id}/affected-subjects',
        'GET /v1/incidents/{id}/notifications/drafts',
        'POST /v1/incidents/{id}/notifications',
      ].sort(),
    );
    expect(doc.security).toStrictEqual([{ apiKey: [] }]);
    for (const { name, op } of operations) {
      const statuses = Object.keys(op.responses ?? {});
      for (const status of ['400', '401', '403']) expect(statuses, `${name} lacks ${status}`).toContain(status);
      expect(statuses.some((s) => /^2\d\d$/.test(s)), `${name} lacks a success response`).toBe(true);
      // No operation opts out of the document-wide bearer requirement.
      expect(op.security, `${name} overrides security`).toBeUndefined();
      expect(op.tags?.length, `${name} has no tag`).toBeGreaterThan(0);
    }
  });

  it('keeps the machinery routes out and the public ones in', () => {
    expect(Object.keys(doc.paths)).not.toContain('/openapi.json');
    expect(Object.keys(doc.paths)).not.toContain('/metrics');
    expect(doc.paths['/healthz']?.get?.security).toStrictEqual([]);
    expect(doc.paths['/downloads/packages/{token}']?.get?.security).toStrictEqual([]); // the signed link is the credential
    // The banner runs on visitors' browsers: public, with its own 403 (origin) and 429 (rate limit).
    for (const [path, method] of [['/v1/banner/experience', 'get'], ['/v1/banner/consent', 'post']] as const) {
      const op = doc.paths[path]?.[method];
      expect(op?.security, `${method} ${path}`).toStrictEqual([]);
      expect(Object.keys(op?.responses ?? {}).sort(), `${method} ${path}`).toStrictEqual([method === 'get' ? '200' : '201', '400', '403', '429'].sort());
    }
    expect(Object.keys(doc.paths)).not.toContain('/banner.js');
    // The privacy center's API serves data subjects: public (cookie session + CSRF token), never an API key.
    const privacy = Object.entries(doc.paths).filter(([path]) => path.startsWith('/v1/privacy/'));
    expect(privacy.length).toBeGreaterThan(0);
    for (const [path, item] of privacy) for (const [method, op] of Object.entries(item)) if (METHODS.has(method)) expect(op.security, `${method} ${path}`).toStrictEqual([]);
    expect(Object.keys(doc.paths)).not.toContain('/privacy');
  });

  it('checkOpenApi tells a stale file apart, with the hint to regenerate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custodian-openapi-test-'));
    try {
      const stale = join(dir, 'openapi.json');
      await writeFile(stale, generated.replace('"3.1.0"', '"3.0.0"'));
      await expect(checkOpenApi(stale)).resolves.toStrictEqual({ ok: false, message: OPENAPI_HINT });
      expect(OPENAPI_HINT).toContain('run npm run openapi');
      await writeFile(stale, generated);
      await expect(checkOpenApi(stale)).resolves.toMatchObject({ ok: true });
      await expect(checkOpenApi(join(dir, 'missing.json'))).resolves.toMatchObject({ ok: false, message: expect.stringContaining('run npm run openapi') as unknown });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('`tsx scripts/openapi.ts --check` exits 0 on the committed document', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/openapi.ts', '--check'], { cwd: REPO_ROOT });
    expect(stdout).toContain('docs/openapi.json is up to date');
  });
});
