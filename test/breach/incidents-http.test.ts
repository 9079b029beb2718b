import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ManualClock } from '../../src/core/index.js';
import { buildServer } from '../../src/server/index.js';
import { custodianFixture } from '../support/stores.js';

const manifest = (connection: string) => ({
  version: 1,
  organization: { name: 'HTTP Shop', dpo: 'dpo@http-shop.example' },
  purposes: [{ key: 'essential.service', title: 'Run the shop', legalBasis: 'contract' }],
  systems: [
    {
      key: 'shop',
      name: 'Shop',
      owner: 'Commerce',
      connection,
      purposes: ['essential.service'],
      datasets: [{ key: 'shop_db', collections: [{ name: 'customers', purposes: ['essential.service'], fields: [{ name: 'id', primaryKey: true, identity: 'user_id', indexed: true, dataCategories: ['user.unique_id'] }, { name: 'email', identity: 'email', indexed: true, dataCategories: ['user.contact.email'] }] }] }],
    },
  ],
});

describe('incidents over HTTP', () => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let app: FastifyInstance;
  let dir: string;
  let writer: string;
  let reader: string;
  let other: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-breach-http-'));
    const shop = new Database(join(dir, 'shop.db'));
    shop.exec('create table customers (id text primary key, email text)');
    for (let i = 0; i < 5; i++) shop.prepare('insert into customers values (?, ?)').run(`u-${i}`, `person${i}@example.com`);
    shop.close();
    ({ custodian: c, cleanup } = await custodianFixture('sqlite', { clock: new ManualClock('2026-03-02T09:00:00.000Z') }));
    await c.datamap.put(manifest(`sqlite:${join(dir, 'shop.db')}`), { actor: 'test' });
    writer = (await c.apiKeys.create({ name: 'writer', scopes: ['incidents:write', 'incidents:read'], createdBy: 'test' })).secret;
    reader = (await c.apiKeys.create({ name: 'reader', scopes: ['incidents:read'], createdBy: 'test' })).secret;
    other = (await c.apiKeys.create({ name: 'other', scopes: ['requests:read'], createdBy: 'test' })).secret;
    app = await buildServer(c, { logLevel: false });
  });
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
    await rm(dir, { recursive: true, force: true });
  });

  const call = (method: 'GET' | 'POST' | 'PATCH', url: string, key: string, payload?: unknown) => app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
  const base = { title: 'Leaked export', detectedAt: '2026-03-02T08:00:00.000Z', collections: ['shop_db.customers'], affectedCount: 5 };

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['awareness before occurrence', { occurredAt: '2026-03-02T08:30:00.000Z' }, 'detectedAt'],
    ['detectedAt in the future', { detectedAt: '2027-01-01T00:00:00.000Z' }, 'detectedAt'],
    ['negative count', { affectedCount: -3 }, 'affectedCount'],
    ['unknown system', { systems: ['ghost'] }, 'systems.0'],
    ['unknown collection', { collections: ['shop_db.ghosts'] }, 'collections.0'],
    ['unknown category', { dataCategories: ['user.nope'] }, 'dataCategories.0'],
  ];
  it.each(bad)('answers 400 CST_ERR_INCIDENT_INVALID for %s, naming the path', async (_n, patch, path) => {
    const res = await call('POST', '/v1/incidents', writer, { ...base, ...patch });
    expect(res.statusCode).toBe(400);
    const body = res.json<{ error: { code: string; details: { issues: Array<{ path: string }> } } }>();
    expect(body.error.code).toBe('CST_ERR_INCIDENT_INVALID');
    expect(body.error.details.issues.map((i) => i.path)).toContain(path);
  });

  it('answers 400 CST_ERR_VALIDATION for a body the schema refuses', async () => {
    const res = await call('POST', '/v1/incidents', writer, { ...base, detectedAt: 'yesterday' });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_VALIDATION');
  });

  it('needs the incidents scopes', async () => {
    expect((await call('GET', '/v1/incidents', other)).statusCode).toBe(403);
    expect((await call('POST', '/v1/incidents', reader, base)).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/v1/incidents' })).statusCode).toBe(401);
  });

  it('creates, lists, reads, changes, overrides, drafts, streams the affected people and notifies', async () => {
    const created = await call('POST', '/v1/incidents', writer, base);
    expect(created.statusCode).toBe(201);
    const inc = created.json<{ id: string; deadlines: Array<{ ruleId: string; dueAt: string }> }>();
    expect(inc.deadlines[0]).toMatchObject({ ruleId: 'EU.gdpr.authority', dueAt: '2026-03-05T08:00:00.000Z' });
    expect((await call('GET', '/v1/incidents', reader)).json<{ incidents: unknown[] }>().incidents.length).toBeGreaterThan(0);
    const patched = await call('PATCH', `/v1/incidents/${inc.id}`, writer, { status: 'contained', note: 'Link revoked' });
    expect(patched.statusCode).toBe(200);
    const shown = (await call('GET', `/v1/incidents/${inc.id}`, reader)).json<{ status: string; timeline: Array<{ kind: string; note: string | null }> }>();
    expect(shown.status).toBe('contained');
    expect(shown.timeline.map((t) => t.kind)).toEqual(['created', 'status_changed']);
    const over = await call('POST', `/v1/incidents/${inc.id}/assessment`, writer, { outcome: 'authority_and_individuals', justification: 'Vulnerable customers' });
    expect(over.json<{ assessment: { outcome: string } }>().assessment.outcome).toBe('authority_and_individuals');
    const drafts = await call('GET', `/v1/incidents/${inc.id}/notifications/drafts`, reader);
    expect(drafts.json<{ authority: { text: string } }>().authority.text).toContain('Art. 33(3)(d)');
    expect((await call('GET', `/v1/incidents/${inc.id}/affected-subjects`, reader)).statusCode).toBe(403);
    const stream = await call('GET', `/v1/incidents/${inc.id}/affected-subjects`, writer);
    expect(stream.statusCode).toBe(200);
    expect(stream.headers['content-type']).toContain('application/x-ndjson');
    const lines = stream.body.trim().split('\n').map((l) => JSON.parse(l) as { collection: string; identities: Record<string, string> });
    expect(lines).toHaveLength(5);
    expect(lines[0]).toEqual({ collection: 'shop_db.customers', identities: { user_id: 'u-0', email: 'person0@example.com' } });
    const sent = await call('POST', `/v1/incidents/${inc.id}/notifications`, writer, { audience: 'individuals', jurisdiction: 'EU' });
    expect(sent.statusCode).toBe(201);
    expect(sent.json<{ queued: number }>().queued).toBe(5);
    const noTo = await call('POST', `/v1/incidents/${inc.id}/notifications`, writer, { audience: 'authority' });
    expect(noTo.statusCode).toBe(400);
    expect(noTo.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_INCIDENT_NO_RECIPIENTS');
    const audit = await c.audit.list({ action: 'incident.subjects_read' });
    expect(audit.entries[0]?.details).toEqual({ count: 5 });
  });

  it('answers 404 for an unknown incident, also on the stream', async () => {
    for (const url of ['/v1/incidents/00000000-0000-7000-8000-000000000000', '/v1/incidents/00000000-0000-7000-8000-000000000000/affected-subjects']) {
      const res = await call('GET', url, writer);
      expect(res.statusCode).toBe(404);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('CST_ERR_INCIDENT_NOT_FOUND');
    }
  });
});
