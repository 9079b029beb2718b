import Database from 'better-sqlite3';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import Fastify, { type FastifyInstance, type InjectOptions } from 'fastify';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ManualClock } from '../../src/core/index.js';
import { buildServer } from '../../src/server/index.js';
import { ADMIN_CONSOLE_CSP, adminConsoleRoutes } from '../../src/server/routes/admin-console.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

// The endpoints the admin console added (GET /v1/me, GET /v1/reports/consent-rates, POST /v1/audit/verify,
// GET /v1/datamap/graph?format=svg) and the static serving of the console at /admin.

interface Rates {
  from: string;
  to: string;
  bucket: string;
  buckets: string[];
  purposes: Array<{ purpose: string; series: Array<{ bucket: string; granted: number; denied: number; withdrawn: number; total: number; grantRate: number; withdrawRate: number }> }>;
}

describe.each(STORE_KINDS)('admin console API on %s', (kind) => {
  let c: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let admin: string;
  let adminId: string;
  let consentReader: string;
  let requestsOnly: string;
  const clock = new ManualClock('2026-03-01T10:00:00.000Z');
  const call = (method: InjectOptions['method'], url: string, key?: string) => app.inject({ method: method!, url, headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
    app = await buildServer(c, { logLevel: false });
    const a = await c.apiKeys.create({ name: 'privacy-team', scopes: ['admin'], createdBy: 'test' });
    admin = a.secret;
    adminId = a.id;
    consentReader = (await c.apiKeys.create({ name: 'analyst', scopes: ['consent:read'], createdBy: 'test' })).secret;
    requestsOnly = (await c.apiKeys.create({ name: 'agent', scopes: ['requests:read'], createdBy: 'test' })).secret;
    // Day 1: two grants and a denial of analytics; day 3: one withdrawal; marketing granted on day 3.
    const purposes = c.purposes.list().map((p) => p.key);
    const [p1, p2] = [purposes.find((p) => p.startsWith('analytics')) ?? purposes[0]!, purposes.find((p) => p.startsWith('marketing')) ?? purposes[1]!];
    const rec = (subjectId: string, purpose: string, decision: 'granted' | 'denied' | 'withdrawn') => c.ledger.record([{ subjectId, purpose, decision, method: 'api' }], { actor: 'test' });
    await rec('s-1', p1, 'granted');
    await rec('s-2', p1, 'granted');
    await rec('s-3', p1, 'denied');
    clock.advance(2 * 86_400_000);
    await rec('s-1', p1, 'withdrawn');
    await rec('s-1', p2, 'granted');
    clock.advance(86_400_000);
  }, 60_000);
  afterAll(async () => {
    await app.close();
    await cleanup();
  });

  it('GET /v1/me answers the calling key’s id, name and scopes; 401 without a key; any valid key may ask', async () => {
    const me = await call('GET', '/v1/me', admin);
    expect(me.statusCode).toBe(200);
    expect(me.json()).toStrictEqual({ id: adminId, name: 'privacy-team', scopes: ['admin'] });
    expect((await call('GET', '/v1/me', requestsOnly)).json()).toMatchObject({ name: 'agent', scopes: ['requests:read'] });
    expect(JSON.stringify((await call('GET', '/v1/me', admin)).json())).not.toContain('cst_'); // never the secret
    const none = await call('GET', '/v1/me');
    expect(none.statusCode).toBe(401);
    expect(none.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_AUTH_MISSING');
    expect((await call('GET', '/v1/me', 'cst_not-a-key')).statusCode).toBe(401);
    expect((await call('GET', '/v1/me?x=1', admin)).statusCode).toBe(400);
  });

  it('GET /v1/reports/consent-rates counts decisions per purpose and UTC day, with zero-filled buckets', async () => {
    const res = await call('GET', '/v1/reports/consent-rates?from=2026-03-01T00:00:00.000Z&to=2026-03-05T00:00:00.000Z&bucket=day', consentReader);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<Rates>();
    expect(body.buckets).toStrictEqual(['2026-03-01', '2026-03-02', '2026-03-03', '2026-03-04']);
    expect(body.purposes).toHaveLength(2);
    const [first, second] = body.purposes;
    const analytics = body.purposes.find((p) => p.series[0]!.total === 3)!;
    expect(analytics.series.map((s) => s.total)).toStrictEqual([3, 0, 1, 0]);
    expect(analytics.series[0]).toStrictEqual({ bucket: '2026-03-01', granted: 2, denied: 1, withdrawn: 0, total: 3, grantRate: 0.6667, withdrawRate: 0 });
    expect(analytics.series[2]).toMatchObject({ withdrawn: 1, withdrawRate: 1 });
    const other = first === analytics ? second! : first!;
    expect(other.series[2]).toMatchObject({ granted: 1, total: 1, grantRate: 1 });
    // Aggregates only: no subject id anywhere.
    expect(res.body).not.toMatch(/s-[123]/);

    const months = (await call('GET', '/v1/reports/consent-rates?from=2026-01-15T00:00:00.000Z&to=2026-04-01T00:00:00.000Z&bucket=month', admin)).json<Rates>();
    expect(months.buckets).toStrictEqual(['2026-01', '2026-02', '2026-03']);
    expect(months.purposes.reduce((n, p) => n + p.series[2]!.total, 0)).toBe(5);
    // The default range is the last 30 days up to now, by day.
    const dflt = (await call('GET', '/v1/reports/consent-rates', admin)).json<Rates>();
    expect(dflt).toMatchObject({ bucket: 'day', to: '2026-03-04T10:00:00.000Z', from: '2026-02-02T10:00:00.000Z' });
    expect(dflt.buckets).toHaveLength(31); // 2 Feb … 4 Mar: the partial first and last days count
    // An empty period has no purposes.
    expect((await call('GET', '/v1/reports/consent-rates?from=2025-01-01T00:00:00.000Z&to=2025-01-02T00:00:00.000Z', admin)).json<Rates>().purposes).toStrictEqual([]);
  });

  it('GET /v1/reports/consent-rates refuses bad input with typed 4xx and needs consent:read', async () => {
    const code = async (url: string, key = admin) => {
      const r = await call('GET', url, key);
      return [r.statusCode, r.json<{ error: { code: string } }>().error.code];
    };
    expect(await code('/v1/reports/consent-rates?bucket=week')).toStrictEqual([400, 'CST_ERR_VALIDATION']);
    expect(await code('/v1/reports/consent-rates?from=yesterday')).toStrictEqual([400, 'CST_ERR_VALIDATION']);
    expect(await code('/v1/reports/consent-rates?from=2026-03-02T00:00:00.000Z&to=2026-03-01T00:00:00.000Z')).toStrictEqual([400, 'CST_ERR_VALIDATION']);
    expect(await code('/v1/reports/consent-rates?from=2020-01-01T00:00:00.000Z&to=2026-01-01T00:00:00.000Z')).toStrictEqual([400, 'CST_ERR_VALIDATION']);
    expect(await code('/v1/reports/consent-rates?subjectId=s-1')).toStrictEqual([400, 'CST_ERR_VALIDATION']);
    expect(await code('/v1/reports/consent-rates', requestsOnly)).toStrictEqual([403, 'CST_ERR_AUTH_FORBIDDEN']);
    expect((await call('GET', '/v1/reports/consent-rates')).statusCode).toBe(401);
  });

  it('POST /v1/audit/verify verifies each tree; needs audit:read; rejects an unknown tree', async () => {
    await call('GET', '/v1/audit/checkpoint?tree=consent', admin); // integrates the queued leaves
    for (const tree of ['audit', 'consent'] as const) {
      const res = await call('POST', `/v1/audit/verify?tree=${tree}`, admin);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ ok: true, tree });
    }
    expect((await call('POST', '/v1/audit/verify?tree=consent', admin)).json<{ size: number }>().size).toBe(5);
    expect((await call('POST', '/v1/audit/verify?tree=other', admin)).statusCode).toBe(400);
    expect((await call('POST', '/v1/audit/verify', consentReader)).statusCode).toBe(403);
    expect((await call('POST', '/v1/audit/verify')).statusCode).toBe(401);
  });

  it('GET /v1/datamap/graph?format=svg draws the stored data map; 404 before one exists', async () => {
    expect((await call('GET', '/v1/datamap/graph?format=svg', admin)).statusCode).toBe(404);
    await c.datamap.put(parse(await readFile('examples/shop/custodian.yaml', 'utf8')), { actor: 'test' });
    const svg = await call('GET', '/v1/datamap/graph?format=svg', admin);
    expect(svg.statusCode).toBe(200);
    expect(svg.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(svg.body).toMatch(/<svg[^>]+role="img"/);
    expect(svg.body).not.toContain('<script');
    expect((await call('GET', '/v1/datamap/graph', admin)).json()).toHaveProperty('nodes');
    expect((await call('GET', '/v1/datamap/graph?format=png', admin)).statusCode).toBe(400);
  });
});

describe.each(STORE_KINDS)('GET /v1/requests/{id}/tasks on %s', (kind) => {
  let c: Custodian;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  let dir: string;
  let admin: string;
  let consentOnly: string;
  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind));
    dir = await mkdtemp(join(tmpdir(), 'custodian-tasks-'));
    const path = join(dir, 'app.db');
    const db = new Database(path);
    db.exec('create table customers (id text primary key, email text, name text)');
    db.prepare('insert into customers values (?, ?, ?)').run('c-1', 'ada@example.com', 'Ada');
    db.close();
    await c.datamap.put(
      {
        version: 1,
        organization: { name: 'Test Shop' },
        purposes: [{ key: 'orders', title: 'Orders', legalBasis: 'contract' }],
        systems: [
          {
            key: 'shop', name: 'Shop', owner: 'Platform', connection: `sqlite:${path}`, purposes: ['orders'],
            datasets: [{ key: 'app_db', collections: [{ name: 'customers', erasure: 'delete_row', fields: [
              { name: 'id', primaryKey: true, dataCategories: ['user.unique_id'], identity: 'user_id', indexed: true },
              { name: 'email', dataCategories: ['user.contact.email'], identity: 'email', indexed: true },
              { name: 'name', dataCategories: ['user.name'] },
            ] }] }],
          },
        ],
      },
      { actor: 'test' },
    );
    app = await buildServer(c, { logLevel: false });
    admin = (await c.apiKeys.create({ name: 'team', scopes: ['requests:read'], createdBy: 'test' })).secret;
    consentOnly = (await c.apiKeys.create({ name: 'other', scopes: ['consent:read'], createdBy: 'test' })).secret;
  }, 60_000);
  afterAll(async () => {
    await app.close();
    await cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  const get = (url: string, key: string) => app.inject({ url, headers: { authorization: `Bearer ${key}` } });

  it('lists the steps run across the systems, without their sealed outcomes; 404, 403 and 400 otherwise', async () => {
    const r = await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: 'ada@example.com' }, authenticated: true, actor: 'app' });
    expect((await get(`/v1/requests/${r.id}/tasks`, admin)).json()).toStrictEqual({ tasks: [] });
    await c.runner.run(r.id, 'test-worker');
    const res = await get(`/v1/requests/${r.id}/tasks`, admin);
    expect(res.statusCode, res.body).toBe(200);
    const { tasks } = res.json<{ tasks: Array<{ seq: number; phase: string; target: string; status: string; error: string | null }> }>();
    expect(tasks.length).toBeGreaterThan(0);
    expect(tasks.map((t) => t.seq)).toStrictEqual(tasks.map((_, i) => i + 1));
    expect(tasks[0]).toMatchObject({ phase: 'lookup', target: 'lookup:app_db.customers', status: 'done', error: null });
    expect(res.body).not.toContain('example.com');
    expect(res.body).not.toContain('Ada');
    expect((await get('/v1/requests/0190c7a2-0000-7000-8000-000000000000/tasks', admin)).statusCode).toBe(404);
    expect((await get(`/v1/requests/${r.id}/tasks`, consentOnly)).statusCode).toBe(403);
    expect((await get('/v1/requests/not-an-id/tasks', admin)).statusCode).toBe(400);
    expect((await get(`/v1/requests/${r.id}/tasks?all=1`, admin)).statusCode).toBe(400);
  });
});

describe('the admin console page at /admin', () => {
  let app: FastifyInstance;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-admin-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><html lang="en"><body><div id="app"></div></body></html>');
    await writeFile(join(dir, 'assets/index-abc.js'), 'console.log(1)');
    await writeFile(join(dir, 'assets/style-abc.css'), 'body{}');
    await writeFile(join(dir, '.secret'), 'x');
    app = Fastify();
    await app.register(adminConsoleRoutes({ webDir: dir }));
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the page and assets with their types and a strict CSP; client routes fall back to the page', async () => {
    for (const url of ['/admin', '/admin/', '/admin/requests', '/admin/requests/0190c7a2-0000-7000-8000-000000000000', '/admin/audit']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['content-security-policy']).toBe(ADMIN_CONSOLE_CSP);
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.body).toContain('<div id="app">');
    }
    expect(ADMIN_CONSOLE_CSP).toContain("script-src 'self'");
    expect(ADMIN_CONSOLE_CSP).not.toContain('unsafe-inline');
    const js = await app.inject({ url: '/admin/assets/index-abc.js' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toContain('immutable');
    expect((await app.inject({ url: '/admin/assets/style-abc.css' })).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('answers 404 for missing files, dot files, traversal and unknown types', async () => {
    for (const url of ['/admin/assets/missing.js', '/admin/.secret.txt', '/admin/assets/.secret.js', '/admin/..%2F..%2Fpackage.json', '/admin/assets/../../x.js', '/admin/x.exe']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
    }
    // A path without an extension is a client route: the page, never the file of that name.
    const dot = await app.inject({ url: '/admin/.secret' });
    expect(dot.body).toContain('<div id="app">');
  });

  it('answers 503 with a hint when the console is not built', async () => {
    const bare = Fastify();
    await bare.register(adminConsoleRoutes({ webDir: join(dir, 'nowhere') }));
    const res = await bare.inject({ url: '/admin' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
    await bare.close();
  });
});
