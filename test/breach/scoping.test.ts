import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { ScopeProgress } from '../../src/breach/index.js';
import { ManualClock } from '../../src/core/index.js';
import { custodianFixture } from '../support/stores.js';
import { MYSQL_ADMIN_URL } from '../scanner/labelled-db.js';

/*
 * Breach scoping through the data connectors on the other system kinds (SQLite and PostgreSQL are in
 * incidents.test.ts): MariaDB, JSONL and Redis in one data map, a person present in several of them, a window,
 * and a kind that cannot apply a window (Redis) reported as skipped. Synthetic example.com data only.
 */

const ACTOR = { actor: 'test:officer' };
const REDIS_URL = process.env.CUSTODIAN_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';

/** Customer i: `c-0001`…, signed up on 2026-01-(1+i). */
const customer = (i: number) => ({ id: `c-${String(i).padStart(4, '0')}`, email: `customer${i}@example.com`, at: new Date(Date.UTC(2026, 0, 1 + i)).toISOString() });

function manifest(urls: { crm: string; files: string; cache: string }, prefix: string) {
  const id = { name: 'id', primaryKey: true, dataCategories: ['user.unique_id'], identity: 'user_id', indexed: true };
  const email = { name: 'email', dataCategories: ['user.contact.email'], identity: 'email', indexed: false };
  return {
    version: 1,
    organization: { name: 'Test Shop', dpo: 'dpo@shop.example' },
    purposes: [{ key: 'essential.service', title: 'Run the shop', legalBasis: 'contract' }],
    systems: [
      {
        key: 'crm',
        name: 'CRM',
        owner: 'Sales',
        connection: urls.crm,
        purposes: ['essential.service'],
        datasets: [{ key: 'crm_db', collections: [{ name: 'customers', purposes: ['essential.service'], fields: [id, email, { name: 'created_at', dataType: 'datetime', dataCategories: ['system.operations'] }] }] }],
      },
      {
        key: 'exports',
        name: 'Exports',
        owner: 'Data team',
        connection: urls.files,
        purposes: ['essential.service'],
        datasets: [
          {
            key: 'exports_files',
            collections: [
              {
                name: 'signups',
                purposes: ['essential.service'],
                connector: { file: 'signups.jsonl', fields: 'id,email,signed_up_at' },
                fields: [{ ...id, identity: 'signup_id' }, email, { name: 'signed_up_at', dataType: 'datetime', dataCategories: ['system.operations'] }],
              },
            ],
          },
        ],
      },
      {
        key: 'cache',
        name: 'Cache',
        owner: 'Platform',
        connection: urls.cache,
        purposes: ['essential.service'],
        datasets: [
          {
            key: 'cache_keys',
            collections: [{ name: 'sessions', purposes: ['essential.service'], connector: { keyPattern: 'session:{id}', prefix, fields: 'id,email,last_seen' }, fields: [{ ...id, identity: 'session_id' }, email, { name: 'last_seen', dataType: 'datetime', dataCategories: ['system.operations'] }] }],
          },
        ],
      },
    ],
  };
}

describe('scoping MariaDB, JSONL and Redis systems through the data connectors', () => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let dir: string;
  let admin: mysql.Connection;
  let redis: Redis;
  const database = `cst_breach_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const prefix = `cst-breach-${process.pid}-${Math.random().toString(36).slice(2, 8)}:`;

  beforeAll(async () => {
    const url = new URL(MYSQL_ADMIN_URL);
    admin = await mysql.createConnection({ host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password), charset: 'utf8mb4' });
    await admin.query(`create database \`${database}\` character set utf8mb4`);
    await admin.query(`create table \`${database}\`.customers (id varchar(32) primary key, email varchar(255), created_at datetime(3))`);
    // 1200 customers: more than one yielded batch; customers 0…9 also signed up through the export file.
    const rows = Array.from({ length: 1200 }, (_, i) => customer(i));
    for (let i = 0; i < rows.length; i += 400) {
      const part = rows.slice(i, i + 400);
      await admin.query(`insert into \`${database}\`.customers values ${part.map(() => '(?, ?, ?)').join(', ')}`, part.flatMap((r) => [r.id, r.email, r.at.replace('T', ' ').replace('Z', '')]));
    }
    dir = await mkdtemp(join(tmpdir(), 'custodian-breach-scope-'));
    const signups = [
      ...Array.from({ length: 10 }, (_, i) => ({ id: `s-${i}`, email: customer(i).email.toUpperCase(), signed_up_at: customer(i).at })),
      { id: 's-new', email: 'newcomer@example.com', signed_up_at: '2026-01-03T12:00:00.000Z' },
      { id: 's-notime', email: 'notime@example.com', signed_up_at: null },
    ];
    await writeFile(join(dir, 'signups.jsonl'), signups.map((s) => JSON.stringify(s)).join('\n') + '\nnot json\n');
    redis = new Redis(REDIS_URL);
    await redis.hset(`${prefix}session:abc`, { email: 'customer1@example.com' });
    await redis.hset(`${prefix}session:xyz`, { email: 'visitor@example.com' });
    const crm = new URL(MYSQL_ADMIN_URL);
    crm.protocol = 'mariadb:';
    crm.pathname = `/${database}`;
    ({ custodian: c, cleanup } = await custodianFixture('sqlite', { clock: new ManualClock('2026-06-01T00:00:00.000Z') }));
    await c.datamap.put(manifest({ crm: crm.toString(), files: `jsonl:${dir}`, cache: REDIS_URL }, prefix), { actor: 'test' });
  }, 60_000);

  afterAll(async () => {
    await cleanup?.();
    await admin?.query(`drop database if exists \`${database}\``);
    await admin?.end();
    if (redis !== undefined) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('streams each person once per identity value across systems and stores the number of people', async () => {
    const inc = await c.incidents.create({ title: 'Credentials leaked', systems: ['crm', 'exports', 'cache'], detectedAt: '2026-05-31T00:00:00.000Z' }, ACTOR);
    const progress: ScopeProgress[] = [];
    const found: Array<{ collection: string; identities: Record<string, string> }> = [];
    for await (const batch of c.incidents.affectedSubjects(inc.id, { onProgress: (p) => progress.push(p) })) {
      expect(batch.length).toBeLessThanOrEqual(1000);
      found.push(...batch);
    }
    const byCollection = (address: string) => found.filter((s) => s.collection === address);
    expect(byCollection('crm_db.customers')).toHaveLength(1200);
    // Signups bring new identity values (their signup ids) for known people, and two new people.
    expect(byCollection('exports_files.signups')).toHaveLength(12);
    expect(byCollection('cache_keys.sessions').map((s) => s.identities.email).sort()).toEqual(['customer1@example.com', 'visitor@example.com']);
    // 1200 customers + newcomer + notime + visitor: people seen under another identity value are not counted again.
    expect((await c.incidents.get(inc.id)).subjectsCount).toBe(1203);
    expect(progress.filter((p) => p.done).map((p) => [p.collection, p.rows, p.skipped])).toEqual([
      ['crm_db.customers', 1200, undefined],
      ['exports_files.signups', 12, undefined],
      ['cache_keys.sessions', 2, undefined],
    ]);
    const timeline = await c.incidents.timeline(inc.id);
    expect(JSON.stringify(timeline)).not.toContain('example.com');
    const audit = await c.audit.list({ action: 'incident.scoped' });
    expect(JSON.stringify(audit.entries)).not.toContain('example.com');
  }, 60_000);

  it('applies the window to MariaDB datetime and JSONL ISO text, and reports Redis (no index by time) as skipped', async () => {
    const inc = await c.incidents.create({ title: 'Backup exposed', systems: ['crm', 'exports', 'cache'], detectedAt: '2026-05-31T00:00:00.000Z' }, ACTOR);
    const progress: ScopeProgress[] = [];
    const found: Array<{ collection: string; identities: Record<string, string> }> = [];
    for await (const batch of c.incidents.affectedSubjects(inc.id, { from: '2026-01-03T00:00:00.000Z', to: '2026-01-06T00:00:00.000Z', onProgress: (p) => progress.push(p) })) found.push(...batch);
    expect(found.filter((s) => s.collection === 'crm_db.customers').map((s) => s.identities.user_id)).toEqual(['c-0002', 'c-0003', 'c-0004']);
    expect(found.filter((s) => s.collection === 'exports_files.signups').map((s) => s.identities.signup_id)).toEqual(['s-2', 's-3', 's-4', 's-new']);
    const skipped = progress.find((p) => p.collection === 'cache_keys.sessions');
    expect(skipped?.skipped).toMatch(/time window/);
    expect((await c.incidents.get(inc.id)).subjectsCount).toBe(4);
    const scoped = (await c.incidents.timeline(inc.id)).find((t) => t.kind === 'scoped');
    expect(scoped?.changes).toMatchObject({ subjects: 4, collections: ['crm_db.customers', 'exports_files.signups'], skipped: ['cache_keys.sessions'] });
  }, 60_000);

  it('treats an identity value that looks like SQL or a glob as data', async () => {
    await admin.query(`insert into \`${database}\`.customers values (?, ?, ?)`, ["c-9999' OR '1'='1", "x'; drop table customers; --@example.com", '2026-01-04 00:00:00.000']);
    await redis.hset(`${prefix}session:*`, { email: 'glob@example.com' });
    const inc = await c.incidents.create({ title: 'Odd values', systems: ['crm', 'cache'], detectedAt: '2026-05-31T00:00:00.000Z' }, ACTOR);
    const found: string[] = [];
    for await (const batch of c.incidents.affectedSubjects(inc.id)) found.push(...batch.map((s) => s.identities.email!));
    expect(found).toContain("x'; drop table customers; --@example.com");
    expect(found).toContain('glob@example.com');
    expect((await c.incidents.get(inc.id)).subjectsCount).toBe(1203);
  }, 60_000);
});
