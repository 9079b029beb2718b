import { readFile } from 'node:fs/promises';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { sql } from 'kysely';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { buildServer } from '../../src/server/index.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

interface ErrorBody {
  error: { code: string; message: string; details?: { issues?: Array<{ path: string; message: string; severity: string }>; currentVersion?: number } };
}

describe.each(STORE_KINDS)('data map service and API on %s', (kind) => {
  let c: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let writer: string;
  let reader: string;
  let other: string;
  let example: Record<string, unknown>;
  const call = (method: InjectOptions['method'], url: string, key: string, payload?: unknown) =>
    app.inject({ method: method!, url, headers: { authorization: `Bearer ${key}` }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind));
    app = await buildServer(c, { logLevel: false });
    writer = (await c.apiKeys.create({ name: 'privacy-team', scopes: ['datamap:read', 'datamap:write'], createdBy: 'test' })).secret;
    reader = (await c.apiKeys.create({ name: 'auditor', scopes: ['datamap:read'], createdBy: 'test' })).secret;
    other = (await c.apiKeys.create({ name: 'svc', scopes: ['consent:read'], createdBy: 'test' })).secret;
    example = parse(await readFile('examples/shop/custodian.yaml', 'utf8')) as Record<string, unknown>;
  });
  afterAll(async () => {
    await app.close();
    await cleanup();
  });

  it('answers 404 before the first version, and needs the datamap scopes', async () => {
    const none = await call('GET', '/v1/datamap', reader);
    expect([none.statusCode, none.json<ErrorBody>().error.code]).toEqual([404, 'CST_ERR_DATAMAP_NOT_FOUND']);
    expect((await call('GET', '/v1/datamap', other)).statusCode).toBe(403);
    expect((await call('PUT', '/v1/datamap', reader, { manifest: example })).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/v1/datamap' })).statusCode).toBe(401);
  });

  it('stores versions, skips unchanged ones, diffs them, audits them, and feeds the ledger its purposes', async () => {
    const first = await call('PUT', '/v1/datamap', writer, { manifest: example, comment: 'initial', baseVersion: 0 });
    expect(first.statusCode).toBe(200);
    const v1 = first.json<{ version: { version: number; sha256: string }; created: boolean; diff: { counts: { added: number } } }>();
    expect(v1).toMatchObject({ version: { version: 1, actor: expect.stringMatching(/^key:/) as string, comment: 'initial' }, created: true });
    expect(v1.version.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(v1.diff.counts.added).toBeGreaterThan(20);

    const again = await call('PUT', '/v1/datamap', writer, { manifest: example });
    expect(again.json()).toMatchObject({ version: { version: 1 }, created: false, diff: { counts: { added: 0, removed: 0, changed: 0 } } });

    const changed = structuredClone(example) as { purposes: Array<{ key: string; title: string }> };
    changed.purposes.find((p) => p.key === 'support')!.title = 'Customer care';
    const second = await call('PUT', '/v1/datamap', writer, { manifest: changed, baseVersion: 1 });
    expect(second.json()).toMatchObject({ version: { version: 2 }, created: true, diff: { changes: [{ kind: 'changed', path: 'purposes[support]', properties: ['title'] }] } });

    const stale = await call('PUT', '/v1/datamap', writer, { manifest: example, baseVersion: 1 });
    expect([stale.statusCode, stale.json<ErrorBody>().error.code, stale.json<ErrorBody>().error.details?.currentVersion]).toEqual([409, 'CST_ERR_DATAMAP_CONFLICT', 2]);

    const current = (await call('GET', '/v1/datamap', reader)).json<{ version: number; manifest: { purposes: Array<{ key: string; title: string }> } }>();
    expect(current.version).toBe(2);
    expect(current.manifest.purposes.find((p) => p.key === 'support')!.title).toBe('Customer care');
    expect((await call('GET', '/v1/datamap?version=1', reader)).json<{ version: number }>().version).toBe(1);
    expect((await call('GET', '/v1/datamap?version=9', reader)).statusCode).toBe(404);
    expect((await call('GET', '/v1/datamap/versions', reader)).json<{ versions: Array<{ version: number }> }>().versions.map((v) => v.version)).toEqual([2, 1]);
    expect((await call('GET', '/v1/datamap/diff?from=1&to=2', reader)).json()).toEqual({ changes: [{ kind: 'changed', path: 'purposes[support]', properties: ['title'] }], counts: { added: 0, removed: 0, changed: 1 } });

    // The ledger's purposes come from the data map (same transaction), with the manifest's legal basis.
    await c.purposes.load();
    expect(await c.purposes.get('marketing.email')).toMatchObject({ legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: 24 });
    expect(await c.purposes.get('support')).toMatchObject({ title: 'Customer care', legalBasis: 'contract', consentRequired: false });

    const audit = await c.audit.list({ action: 'datamap.updated' });
    expect(audit.entries.map((e) => (e.details as { version: number }).version)).toEqual([2, 1]);
  });

  it('refuses an invalid manifest with every issue, and stores nothing', async () => {
    const bad = structuredClone(example) as { purposes: Array<Record<string, unknown>>; systems: Array<Record<string, unknown>> };
    delete bad.purposes[0]!.legalBasis;
    bad.systems[0]!.connection = 'postgres://shop:plaintext-password@db/shop';
    const res = await call('PUT', '/v1/datamap', writer, { manifest: bad });
    expect(res.statusCode).toBe(400);
    const body = res.json<ErrorBody>();
    expect(body.error.code).toBe('CST_ERR_DATAMAP_INVALID');
    expect(body.error.details!.issues!.map((i) => i.path)).toEqual(expect.arrayContaining(['purposes[orders]', 'systems[shop].connection']));
    expect(JSON.stringify(body)).not.toContain('plaintext-password');
    expect((await call('GET', '/v1/datamap/versions', reader)).json<{ versions: unknown[] }>().versions).toHaveLength(2);
    const check = await call('POST', '/v1/datamap/validate', reader, { manifest: bad });
    expect(check.json<ErrorBody>().error.details!.issues!.length).toBe(body.error.details!.issues!.length);
    expect((await call('POST', '/v1/datamap/validate', reader, { manifest: example })).json()).toEqual({ valid: true, warnings: [] });
    expect((await call('PUT', '/v1/datamap', writer, { manifest: 'not an object' })).json<ErrorBody>().error.code).toBe('CST_ERR_VALIDATION');
  });

  it('keeps versions append-only in the database itself', async () => {
    await expect(sql`update datamap_versions set comment = 'rewritten'`.execute(c.store.db)).rejects.toThrow(/append-only|datamap_versions/);
    await expect(sql`delete from datamap_versions`.execute(c.store.db)).rejects.toThrow(/append-only|datamap_versions/);
  });

  it('generates reports from the current version: RoPA (JSON, CSV, HTML), DPIA screening, transfers, data flows', async () => {
    const ropa = (await call('GET', '/v1/reports/ropa', reader)).json<{ controller: { name: { value: string } }; activities: Array<{ purpose: { value: string } }> }>();
    expect(JSON.stringify(ropa.controller)).toContain('Northwind Outfitters GmbH');
    expect(ropa.activities).toHaveLength(6);
    const csv = await call('GET', '/v1/reports/ropa?format=csv', reader);
    expect([csv.statusCode, csv.headers['content-type']]).toEqual([200, 'text/csv; charset=utf-8']);
    expect(csv.body.trim().split('\n').length).toBeGreaterThanOrEqual(7);
    const html = await call('GET', '/v1/reports/ropa?format=html', reader);
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.body).toMatch(/^<!DOCTYPE html>/i);
    const dpia = (await call('GET', '/v1/reports/dpia', reader)).json<{ screenings: Array<{ purpose: string; metCount: number }> }>();
    expect(dpia.screenings.find((x) => x.purpose === 'hr.payroll')!.metCount).toBeGreaterThanOrEqual(2); // health data of employees
    const transfers = (await call('GET', '/v1/reports/transfers', reader)).json<{ rows: unknown[] }>();
    expect(transfers.rows.length).toBeGreaterThan(0);
    const graph = (await call('GET', '/v1/datamap/graph', reader)).json<{ nodes: Array<{ id: string; kind: string }>; edges: unknown[] }>();
    expect(graph.nodes.filter((n) => n.kind === 'system')).toHaveLength(4);
    expect((await call('GET', '/v1/reports/dpia', other)).statusCode).toBe(403);
  });

  it('serves the JSON Schema of the manifest', async () => {
    const schema = (await call('GET', '/v1/datamap/schema', reader)).json<{ properties: Record<string, unknown> }>();
    expect(Object.keys(schema.properties)).toEqual(['version', 'organization', 'purposes', 'systems']);
  });
});
