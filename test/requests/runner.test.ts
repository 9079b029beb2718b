import { createPublicKey, verify } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { buildServer } from '../../src/server/index.js';
import { ORDERS, shopDatabase, shopManifest, type ShopManifestOptions, type ShopTables } from '../support/shop.js';
import { STORE_KINDS, custodianFixture } from '../support/stores.js';

/* The request runner end to end on a small application database (SQLite, real foreign keys). */

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Customers (with phones), their orders (kept for tax when a customer is erased) and their logins (kept for security). */
const SHOP = { customers: ['name', 'phone'], orders: ['total', 'created_at'], logins: true } satisfies ShopTables;

const manifest = (path: string, options: ShopManifestOptions = {}) =>
  shopManifest(path, {
    ...SHOP,
    purposes: [ORDERS, { key: 'security', title: 'Security', legalBasis: 'legitimate_interests', legitimateInterest: 'Protecting accounts' }],
    collections: {
      orders: { erasure: { strategy: 'retain', legalBasis: 'legal_obligation', reason: 'tax records', retention: 'P10Y' } },
      logins: { purposes: ['security'] },
    },
    ...options,
  });

describe.each(STORE_KINDS)('request runner on a %s store', (kind) => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let dir: string;
  let appPath: string;

  beforeAll(async () => {
    ({ custodian: c, cleanup } = await custodianFixture(kind));
    dir = await mkdtemp(join(tmpdir(), 'custodian-runner-'));
    appPath = join(dir, 'shop.db');
    shopDatabase(appPath, { ...SHOP, rows: { orders: 6, logins: 8 } });
    // The orders retention conflicts with the customer row's deletion: the planner reports it; keep customers' ids retained too.
    const m = manifest(appPath);
    await c.datamap.put(m, { actor: 'test' });
  });
  afterAll(async () => {
    await cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const authed = async (type: 'access' | 'erasure', email: string) => {
    const r = await c.requests.create({ type, jurisdiction: 'EU', identities: { email }, authenticated: true, actor: 'app' });
    return type === 'erasure' ? (await c.requests.approve(r.id, 'officer')).id : r.id;
  };

  it('answers an access request with the subject’s rows from every collection, and nobody else’s', async () => {
    const id = await authed('access', 'ada@example.com');
    const report = await c.runner.run(id, 'w-test');
    expect(report.status).toBe('completed');
    const pkg = JSON.parse(await c.runner.package(id)) as { schemaVersion: number; collections: Array<{ collection: string; rows: Array<Record<string, unknown>>; purposes: Array<{ key: string }> }> };
    expect(pkg.schemaVersion).toBe(1);
    const rows = Object.fromEntries(pkg.collections.map((x) => [x.collection, x.rows]));
    expect(rows['shop_db.customers']).toEqual([{ id: 'c-1', email: 'ada@example.com', name: 'Ada', phone: '+441' }]);
    expect(rows['shop_db.orders']).toHaveLength(3);
    expect(rows['shop_db.logins']).toHaveLength(4);
    expect(JSON.stringify(pkg)).not.toMatch(/bob@example.com|c-2|\+442/);
    expect(pkg.collections.find((x) => x.collection === 'shop_db.logins')!.purposes.map((p) => p.key)).toEqual(['security', 'orders']);
    expect((await c.requests.get(id)).outcome).toMatchObject({ rows: 8, dataMapVersion: 1 });
  });

  it('an unknown person gets a completed, empty answer', async () => {
    const id = await authed('access', 'nobody@example.com');
    expect((await c.runner.run(id, 'w-test')).status).toBe('completed');
    const pkg = JSON.parse(await c.runner.package(id)) as { collections: Array<{ rows: unknown[] }> };
    expect(pkg.collections.every((x) => x.rows.length === 0)).toBe(true);
  });

  it('serves the package (admin, audited) and the certificate over HTTP', async () => {
    const app = await buildServer(c, { logLevel: false });
    try {
      const admin = (await c.apiKeys.create({ name: 'officer', scopes: ['requests:admin', 'requests:read'], createdBy: 'test' })).secret;
      const reader = (await c.apiKeys.create({ name: 'dashboard', scopes: ['requests:read'], createdBy: 'test' })).secret;
      const id = await authed('access', 'ada@example.com');
      await c.runner.run(id, 'w-http');
      const get = (url: string, key: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
      expect((await get(`/v1/requests/${id}/package`, reader)).statusCode).toBe(403);
      const pkg = await get(`/v1/requests/${id}/package`, admin);
      expect(pkg.statusCode).toBe(200);
      expect(pkg.json<{ requestId: string }>().requestId).toBe(id);
      expect((await c.audit.list({ action: 'request.package_downloaded' })).entries.length).toBeGreaterThan(0);
      // The ZIP: package.json, a CSV per collection, report.html — checked with the system's unzip.
      const zip = await get(`/v1/requests/${id}/package?format=zip`, admin);
      expect(zip.headers['content-type']).toBe('application/zip');
      const zipPath = join(dir, 'package.zip');
      await writeFile(zipPath, zip.rawPayload);
      expect(execFileSync('unzip', ['-t', zipPath], { encoding: 'utf8' })).toMatch(/No errors detected/);
      const listing = execFileSync('unzip', ['-Z1', zipPath], { encoding: 'utf8' }).trim().split('\n').sort();
      expect(listing).toEqual(['csv/shop_db.customers.csv', 'csv/shop_db.logins.csv', 'csv/shop_db.orders.csv', 'package.json', 'report.html']);
      const csv = execFileSync('unzip', ['-p', zipPath, 'csv/shop_db.customers.csv'], { encoding: 'utf8' });
      expect(csv).toBe('id,email,name,phone\r\nc-1,ada@example.com,Ada,+441\r\n');
      expect(execFileSync('unzip', ['-p', zipPath, 'report.html'], { encoding: 'utf8' })).toMatch(/<h1>Your data held by Test Shop<\/h1>/);
      // A signed link downloads without an API key until it expires; a forged or expired one answers 404.
      const link = await app.inject({ method: 'POST', url: `/v1/requests/${id}/package-link`, headers: { authorization: `Bearer ${admin}` }, payload: { ttlMinutes: 5 } });
      const { url } = link.json<{ url: string }>();
      const viaLink = await app.inject({ method: 'GET', url });
      expect([viaLink.statusCode, viaLink.rawPayload.equals(zip.rawPayload)]).toEqual([200, true]);
      const forged = url.replace(/\.(\d+)\./, (_m, n: string) => `.${Number(n) + 1}.`);
      expect((await app.inject({ method: 'GET', url: forged })).json<{ error: { code: string } }>().error.code).toBe('CST_ERR_REQUEST_LINK_INVALID');
      expect((await app.inject({ method: 'GET', url: '/downloads/packages/nonsense' })).statusCode).toBe(404);
      const none = await get(`/v1/requests/${id}/certificate`, reader);
      expect([none.statusCode, none.json<{ error: { code: string } }>().error.code]).toEqual([404, 'CST_ERR_REQUEST_NOT_FOUND']);
    } finally {
      await app.close();
    }
  });

  it('resumes a stopped run where it left off, with the same result as an uninterrupted one', async () => {
    const id = await authed('access', 'bob@example.com');
    const stop = new AbortController();
    await expect(c.runner.run(id, 'w-a', { signal: stop.signal, onStep: (n) => n === 1 && stop.abort(new Error('killed')) })).rejects.toThrow('killed');
    expect((await c.requests.get(id)).status).toBe('in_progress');
    expect(await c.runner.runnable()).toContain(id);
    const again = await c.runner.run(id, 'w-b');
    expect(again.status).toBe('completed');
    expect(again.steps).toBeGreaterThan(0);
    const pkg = JSON.parse(await c.runner.package(id)) as { collections: Array<{ collection: string; rows: unknown[] }> };
    expect(pkg.collections.map((x) => [x.collection, x.rows.length])).toEqual([
      ['shop_db.customers', 1],
      ['shop_db.orders', 3],
      ['shop_db.logins', 4],
    ]);
  });

  it('erases per strategy in foreign-key order, shreds, re-verifies, and signs a certificate', async () => {
    const id = await authed('erasure', 'bob@example.com');
    const report = await c.runner.run(id, 'w-test');
    // The retained orders still refer to the customer row, which says delete_row: caught at planning time (not
    // by a foreign-key error at run time); the row is kept and the request is partially completed.
    expect(report.status).toBe('partially_completed');
    expect((await c.requests.get(id)).outcome).toMatchObject({ errors: [], problems: [{ code: 'retained_reference', collection: 'shop_db.customers' }] });
    const db = new Database(appPath, { readonly: true });
    try {
      expect(db.prepare("select count(*) as n from logins where customer_id = 'c-2'").get()).toEqual({ n: 0 });
      expect(db.prepare("select count(*) as n from orders where customer_id = 'c-2'").get()).toEqual({ n: 3 }); // retained
      expect(db.prepare("select count(*) as n from logins where customer_id = 'c-1'").get()).toEqual({ n: 4 }); // Ada untouched
    } finally {
      db.close();
    }
    const cert = JSON.parse(await c.runner.certificate(id)) as { statement: { requestId: string; remaining: Array<{ collection: string; retained: unknown[] }> }; signature: { publicKey: string; value: string } };
    expect(cert.statement.requestId).toBe(id);
    expect(cert.statement.remaining.map((r) => r.collection)).toContain('shop_db.orders');
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(cert.signature.publicKey, 'base64')]), format: 'der', type: 'spki' });
    expect(verify(null, Buffer.from(JSON.stringify(cert.statement)), key, Buffer.from(cert.signature.value, 'base64'))).toBe(true);
    const tampered = { ...cert.statement, remaining: [] };
    expect(verify(null, Buffer.from(JSON.stringify(tampered)), key, Buffer.from(cert.signature.value, 'base64'))).toBe(false);
    const audit = await c.audit.list({ action: 'request.certificate_issued' });
    expect(audit.entries.length).toBeGreaterThan(0);
  });

  it('anonymises a referenced row in place when the data map gives its fields strategies', async () => {
    const fields = { 'customers.email': { erasure: { strategy: 'mask', value: 'erased@invalid.example' } }, 'customers.name': { erasure: 'null' }, 'customers.phone': { erasure: 'hash' } } as const;
    await c.datamap.put(manifest(appPath, { fields }), { actor: 'test' });
    const id = await authed('erasure', 'ada@example.com');
    const report = await c.runner.run(id, 'w-test');
    expect(report.status).toBe('partially_completed'); // the id still says delete_row: reported, row kept
    const db = new Database(appPath, { readonly: true });
    try {
      const row = db.prepare("select email, name, phone from customers where id = 'c-1'").get() as { email: string; name: string | null; phone: string };
      expect(row.email).toBe('erased@invalid.example');
      expect(row.name).toBeNull();
      expect(row.phone).toMatch(/^[0-9a-f]{64}$/);
      expect(db.prepare("select count(*) as n from logins where customer_id = 'c-1'").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
    // A second erasure for the same person changes nothing more.
    const again = await authed('erasure', 'erased@invalid.example');
    await c.runner.run(again, 'w-test');
    expect((await c.requests.get(again)).outcome).toMatchObject({ rowsDeleted: 0 });
    await c.datamap.put(manifest(appPath), { actor: 'test' });
  });

  it('turns an objection into withdrawals the consent check honours; without a user id it waits for the team', async () => {
    const id = (await c.requests.create({ type: 'objection', jurisdiction: 'EU', identities: { userId: 'c-9' }, authenticated: true, actor: 'app' })).id;
    expect((await c.ledger.check('c-9', 'security')).allowed).toBe(true); // legitimate interests: allowed until objected to
    expect((await c.runner.run(id, 'w-test')).status).toBe('completed');
    expect((await c.requests.get(id)).outcome).toMatchObject({ withdrawn: ['security'], eventsRecorded: 1 });
    expect((await c.ledger.check('c-9', 'security')).allowed).toBe(false);
    expect((await c.ledger.check('c-9', 'orders')).allowed).toBe(true); // contract: not objectable
    const noUser = (await c.requests.create({ type: 'objection', jurisdiction: 'EU', identities: { email: 'ada@example.com' }, authenticated: true, actor: 'app' })).id;
    expect((await c.runner.run(noUser, 'w-test')).status).toBe('awaiting_input');
    const restrict = (await c.requests.create({ type: 'restriction', jurisdiction: 'EU', identities: { email: 'ada@example.com' }, authenticated: true, actor: 'app' })).id;
    expect((await c.runner.run(restrict, 'w-test')).status).toBe('awaiting_input'); // no user id: the team carries it out
  });

  it('applies a rectification to the subject’s own rows only, after approval', async () => {
    const create = (corrections: Record<string, string | null> | undefined, type: 'rectification' | 'access' = 'rectification') =>
      c.requests.create({ type, jurisdiction: 'EU', identities: { email: 'bob@example.com' }, authenticated: true, actor: 'app', ...(corrections ? { corrections } : {}) });
    await expect(create({ 'shop_db.customers.id': 'c-99' })).rejects.toThrow(/primary key/);
    await expect(create({ 'shop_db.nope.x': '1' })).rejects.toThrow(/not a field/);
    await expect(create(undefined)).rejects.toThrow(/1 to 50 corrections/);
    await expect(create({ 'shop_db.customers.phone': '+1' }, 'access')).rejects.toThrow(/rectification requests only/);
    const r = await create({ 'shop_db.customers.phone': '+44 20 7946 0999', 'shop_db.customers.name': 'Robert' });
    expect(r.status).toBe('awaiting_approval');
    await c.requests.approve(r.id, 'officer');
    expect((await c.runner.run(r.id, 'w-test')).status).toBe('completed');
    expect((await c.requests.get(r.id)).outcome).toMatchObject({ corrected: [{ collection: 'shop_db.customers', fields: ['phone', 'name'], rows: 1 }], notApplied: [] });
    const db = new Database(appPath, { readonly: true });
    try {
      expect(db.prepare("select name, phone from customers where id = 'c-2'").get()).toEqual({ name: 'Robert', phone: '+44 20 7946 0999' });
      expect((db.prepare("select name from customers where id = 'c-1'").get() as { name: string | null }).name).not.toBe('Robert');
    } finally {
      db.close();
    }
    expect(JSON.stringify(await c.audit.list({ action: 'request.rectified' }))).not.toContain('Robert');
  });

  it('lets one worker hold a request at a time', async () => {
    const id = await authed('access', 'ada@example.com');
    // The loser sees the lease (busy) or, if the winner already finished, a request no longer in progress.
    const outcomes = await Promise.allSettled([c.runner.run(id, 'w-1'), c.runner.run(id, 'w-2')]);
    const seen = outcomes.map((o) => (o.status === 'fulfilled' ? o.value.status : (o.reason as { code: string }).code)).sort();
    expect(seen[1]).toBe('completed');
    expect(['busy', 'CST_ERR_REQUEST_INVALID_TRANSITION']).toContain(seen[0]);
  });

  it('fails a request it cannot plan, with the reason, instead of retrying forever', async () => {
    const id = await authed('access', 'ada@example.com');
    await c.datamap.put(manifest(join(dir, 'missing.db'), { organization: 'Test Shop (moved)' }), { actor: 'test' });
    const report = await c.runner.run(id, 'w-test');
    expect(['partially_completed', 'failed']).toContain(report.status);
    await c.datamap.put(manifest(appPath), { actor: 'test' });
  });
});
