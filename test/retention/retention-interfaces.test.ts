import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustodian, loadConfig, type Custodian } from '../../src/app/index.js';
import { isCustodianError } from '../../src/core/index.js';
import { startRetentionScheduler, type RetentionRunView } from '../../src/retention/index.js';
import { buildServer } from '../../src/server/index.js';
import { runCliCaptured } from '../support/cli.js';
import { storeFixture, type StoreFixture } from '../support/stores.js';
import { appDatabase, retentionManifest, type AppDatabase } from './fixtures.js';

/* Retention over HTTP, the CLI and the scheduler, on SQLite (the service itself is tested in retention.test.ts). */

const DAY = 86_400_000;

describe('retention interfaces', () => {
  let store: StoreFixture;
  let app: AppDatabase;
  let c: Custodian;
  let server: FastifyInstance;
  let admin: string;
  let reader: string;

  beforeAll(async () => {
    store = await storeFixture('sqlite');
    app = await appDatabase('sqlite');
    c = await createCustodian(loadConfig({}, { dbUrl: store.url, dataDir: store.dir, logLevel: 'silent' }));
    await c.datamap.put(retentionManifest(app.url), { actor: 'test' });
    server = await buildServer(c, { logLevel: false });
    admin = (await c.apiKeys.create({ name: 'admin', scopes: ['admin'], createdBy: 'test' })).secret;
    reader = (await c.apiKeys.create({ name: 'reader', scopes: ['datamap:read'], createdBy: 'test' })).secret;
  });
  afterAll(async () => {
    await c?.retention.idle();
    await server?.close();
    await c?.close();
    await app?.cleanup();
    await store?.cleanup();
  });

  const seed = async () => {
    await app.clear();
    const now = Date.now();
    await app.insertEvents(Array.from({ length: 30 }, (_, i) => ({ id: `e-${String(i).padStart(3, '0')}`, email: `u${i}@example.com`, at: new Date(now - (i % 2 === 0 ? 60 : 5) * DAY).toISOString() })));
  };
  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, key: string, body?: unknown) =>
    server.inject({ method, url, headers: { authorization: `Bearer ${key}` }, ...(body === undefined ? {} : { payload: body as object }) });

  it('HTTP: legal holds, runs (202, then polled), the report; scopes enforced; no identity value in answers', async () => {
    await seed();
    expect((await call('POST', '/v1/legal-holds', reader, { scope: 'system', system: 'app', reason: 'x' })).statusCode).toBe(403);
    const created = await call('POST', '/v1/legal-holds', admin, { scope: 'subject', identity: { kind: 'email', value: 'u0@example.com' }, reason: 'case 12' });
    expect(created.statusCode).toBe(201);
    const hold = created.json<{ id: string; identityKind: string }>();
    expect(hold.identityKind).toBe('email');
    expect(created.body).not.toContain('u0@example.com');
    expect((await call('POST', '/v1/legal-holds', admin, { scope: 'collection', collection: 'app_db.nope', reason: 'x' })).json()).toMatchObject({ error: { code: 'CST_ERR_LEGAL_HOLD_INVALID' } });
    const list = await call('GET', '/v1/legal-holds?active=true', reader);
    expect(list.json<{ holds: unknown[] }>().holds).toHaveLength(1);

    const report = (await call('GET', '/v1/reports/retention', reader)).json<{ rules: { collection: string; pastDue: number; pastDueHeld: number; heldReasons: Record<string, number> }[]; compliancePercent: number; pastDueHeldTotal: number }>();
    // u0@example.com is under the subject hold: its row past due is held, not actionable.
    expect(report.rules.find((r) => r.collection === 'app_db.events')).toMatchObject({ pastDue: 14, pastDueHeld: 1, heldReasons: { legal_hold: 0, subject_legal_hold: 1, open_request: 0 } });
    expect(report.pastDueHeldTotal).toBe(1);

    const started = await call('POST', '/v1/retention/runs', admin, { dryRun: false });
    expect(started.statusCode).toBe(202);
    const id = started.json<{ id: string }>().id;
    let run: RetentionRunView;
    for (;;) {
      run = (await call('GET', `/v1/retention/runs/${id}`, reader)).json<RetentionRunView>();
      if (run.status !== 'running') break;
      await sleep(20);
    }
    expect(run.status).toBe('completed');
    expect(run.collections.find((x) => x.collection === 'app_db.events')).toMatchObject({ deleted: 14, skipped: { subject_hold: 1 } });
    expect((await app.eventIds()).length).toBe(16);
    expect((await call('GET', '/v1/retention/runs', reader)).json<{ runs: unknown[] }>().runs.length).toBeGreaterThan(0);
    expect((await call('GET', '/v1/retention/runs/0190a000-0000-7000-8000-000000000000', reader)).statusCode).toBe(404);

    expect((await call('DELETE', `/v1/legal-holds/${hold.id}`, admin)).json()).toMatchObject({ active: false });
    expect((await call('DELETE', `/v1/legal-holds/${hold.id}`, admin)).statusCode).toBe(404);
  });

  it('CLI: retention run --dry-run, report, holds add/list/release', async () => {
    await seed();
    const opts = ['--db', store.url, '--data-dir', store.dir];
    const dry = await runCliCaptured(['retention', 'run', '--dry-run', '--format', 'json', ...opts]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, status: 'completed', totals: { deleted: 15 } });
    expect(await app.eventIds()).toHaveLength(30);
    expect(dry.stderr).toContain('retention ');

    const added = await runCliCaptured(['retention', 'holds', 'add', '--scope', 'collection', '--collection', 'app_db.events', '--reason', 'audit 7', ...opts]);
    expect(added.code, added.stderr).toBe(0);
    const holdId = (JSON.parse(added.stdout) as { id: string }).id;
    const listed = await runCliCaptured(['retention', 'holds', 'list', '--active', ...opts]);
    expect((JSON.parse(listed.stdout) as { holds: { id: string }[] }).holds.map((h) => h.id)).toContain(holdId);
    const report = await runCliCaptured(['retention', 'report', ...opts]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toMatch(/app_db\.events#0 delete at after P30D: past due 0, held 15 \(legal_hold 15\), due within 30 d 15 \(legal hold\)/);
    const held = await runCliCaptured(['retention', 'run', ...opts]);
    expect(held.code, held.stderr).toBe(0);
    expect(held.stdout).toContain('app_db.events#0 delete');
    expect(held.stdout).toContain('skipped legal_hold 15');
    expect((await runCliCaptured(['retention', 'holds', 'release', holdId, ...opts])).code).toBe(0);
    const bad = await runCliCaptured(['retention', 'holds', 'add', '--scope', 'subject', '--identity', 'nonsense', '--reason', 'x', ...opts]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('CST_ERR_LEGAL_HOLD_INVALID');
  });

  it('scheduler: runs on its cron, is off with "off", refuses a bad expression', async () => {
    await seed();
    expect(startRetentionScheduler(c, { cron: 'off' })).toBeUndefined();
    let thrown: unknown;
    try {
      startRetentionScheduler(c, { cron: 'every day please' });
    } catch (err) {
      thrown = err;
    }
    expect(isCustodianError(thrown, 'CST_ERR_CONFIG')).toBe(true);
    const runs: RetentionRunView[] = [];
    const errors: unknown[] = [];
    const schedule = startRetentionScheduler(c, { cron: '* * * * * *', onRun: (r) => runs.push(r), onError: (e) => errors.push(e) })!;
    expect(schedule.nextRun()).toBeInstanceOf(Date);
    const deadline = Date.now() + 10_000;
    while (runs.length === 0 && Date.now() < deadline) await sleep(50);
    await schedule.stop();
    expect(errors).toEqual([]);
    expect(runs[0]).toMatchObject({ status: 'completed', actor: 'system:retention-scheduler' });
    expect(await app.eventIds()).toHaveLength(15);
  });
});
