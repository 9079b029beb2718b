import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataConnector, type DataConnector } from '../../src/connectors/data/index.js';
import { PlanExecutor, executeAccess, executeErasure, hashValue, planRequest, type ConnectorFactory, type ExecutionContext, type Plan } from '../../src/rights/index.js';
import { mapOf, shopSystems } from './fixtures.js';

const HASH_KEY = Buffer.from('a test key for hashing, not a secret');

const SHOP_SCHEMA = `
  create table customers (id integer primary key, email text not null unique, full_name text, internal_notes text);
  create table addresses (id integer primary key, street text, city text);
  create table customer_addresses (id integer primary key, customer_id integer not null references customers(id), address_id integer not null references addresses(id));
  create table orders (id integer primary key, customer_id integer references customers(id), total_cents integer);
  create table employees (id integer primary key, work_email text, full_name text);
  create table tickets (id integer primary key, customer_id integer references customers(id), handled_by integer references employees(id), requester_email text, body text);
  insert into customers values (1, 'ada@example.com', 'Ada Lovelace', 'vip'), (2, 'bob@example.com', 'Bob Example', 'late payer');
  insert into addresses values (10, 'Shared Street 1', 'Hamburg'), (11, 'Ada Lane 2', 'Berlin'), (12, 'Bob Road 3', 'Munich');
  insert into customer_addresses values (100, 1, 10), (101, 1, 11), (102, 2, 10), (103, 2, 12);
  insert into orders values (200, 1, 4999), (201, 2, 1500);
  insert into employees values (7, 'eve@corp.example.test', 'Eve Agent'), (8, 'frank@corp.example.test', 'Frank Agent');
  insert into tickets values
    (300, 1, 7, 'ada@example.com', 'Ada asks about her parcel'),
    (301, 2, 7, 'bob@example.com', 'Bob private complaint'),
    (302, 2, 8, 'bob@example.com', 'Bob second ticket');
`;

const ANALYTICS_SCHEMA = `
  create table events (id integer primary key, customer_id integer, ip text);
  create table campaign_stats (day text primary key);
  insert into events values (400, 1, '203.0.113.1'), (401, 1, '203.0.113.2'), (402, 2, '203.0.113.3');
`;

let dir: string;
let urls: Record<string, string>;
let opened: DataConnector[];

function database(name: string, schema: string): string {
  const path = join(dir, name);
  const db = new SQLite(path);
  db.pragma('foreign_keys = on');
  db.exec(schema);
  db.close();
  return path;
}

function dump(path: string): Record<string, unknown[]> {
  const db = new SQLite(path, { readonly: true });
  try {
    const tables = (db.prepare("select name from sqlite_schema where type = 'table' order by name").all() as { name: string }[]).map((t) => t.name);
    return Object.fromEntries(tables.map((t) => [t, db.prepare(`select * from "${t}" order by rowid`).all()]));
  } finally {
    db.close();
  }
}

function rows(path: string, sql: string): unknown[] {
  const db = new SQLite(path, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

const connectors: ConnectorFactory = async (system) => {
  const connector = await openDataConnector(urls[system]!);
  opened.push(connector);
  return connector;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-rights-'));
  urls = { shop: `sqlite:${database('shop.db', SHOP_SCHEMA)}`, analytics: `sqlite:${database('analytics.db', ANALYTICS_SCHEMA)}` };
  opened = [];
});

afterEach(async () => {
  await Promise.all(opened.map((c) => c.close()));
  rmSync(dir, { recursive: true, force: true });
});

const shopPath = () => join(dir, 'shop.db');
const analyticsPath = () => join(dir, 'analytics.db');
const map = () => mapOf(shopSystems());

describe('executeAccess', () => {
  it('finds every reachable row with the declared fields only, shared addresses included, nothing of other subjects', async () => {
    const result = await executeAccess(planRequest(map(), { email: ['ada@example.com'] }, 'access'), connectors, { email: ['ada@example.com'] });
    expect(result.status).toBe('completed');
    const of = (collection: string) => result.systems.flatMap((s) => s.collections).find((c) => c.collection === collection)!;
    expect(of('shop_db.customers').rows).toEqual([{ ownership: 'owner', data: { id: 1, email: 'ada@example.com', full_name: 'Ada Lovelace' } }]);
    expect(of('shop_db.customer_addresses').rows.map((r) => r.data)).toEqual([
      { id: 100, customer_id: 1, address_id: 10 },
      { id: 101, customer_id: 1, address_id: 11 },
    ]);
    expect(of('shop_db.addresses').rows).toEqual([
      { ownership: 'shared', data: { id: 10, street: 'Shared Street 1', city: 'Hamburg' } },
      { ownership: 'shared', data: { id: 11, street: 'Ada Lane 2', city: 'Berlin' } },
    ]);
    expect(of('shop_db.orders').rows.map((r) => r.data)).toEqual([{ id: 200, customer_id: 1, total_cents: 4999 }]);
    expect(of('crm.tickets').rows).toEqual([{ ownership: 'owner', data: { id: 300, customer_id: 1, handled_by: 7, requester_email: 'ada@example.com', body: 'Ada asks about her parcel' } }]);
    expect(of('analytics_events.events').rows.map((r) => r.data)).toEqual([
      { id: 400, customer_id: 1, ip: '203.0.113.1' },
      { id: 401, customer_id: 1, ip: '203.0.113.2' },
    ]);
    expect(result.empty).toEqual(['crm.employees']);
    expect(result.totalRows).toBe(9);
    expect(result.systems.map((s) => s.system)).toEqual(['shop', 'analytics']);
    expect(result.unreachable.map((u) => u.collection)).toEqual(['analytics_events.campaign_stats']);
    const text = JSON.stringify(result);
    for (const other of ['bob@example.com', 'Bob', 'Munich', '203.0.113.3', 'vip', 'late payer']) expect(text).not.toContain(other);
  });

  it('shows of a ticket an employee handled only the field that mentions the employee (Art. 15(4))', async () => {
    const result = await executeAccess(planRequest(map(), { email: ['eve@corp.example.test'] }, 'access'), connectors, { email: ['eve@corp.example.test'] });
    const collections = result.systems.flatMap((s) => s.collections);
    expect(collections.find((c) => c.collection === 'crm.employees')!.rows).toEqual([{ ownership: 'owner', data: { id: 7, work_email: 'eve@corp.example.test', full_name: 'Eve Agent' } }]);
    expect(collections.find((c) => c.collection === 'crm.tickets')!.rows).toEqual([
      { ownership: 'mention', data: { handled_by: 7 } },
      { ownership: 'mention', data: { handled_by: 7 } },
    ]);
    const text = JSON.stringify(result);
    for (const other of ['ada@example.com', 'bob@example.com', 'parcel', 'complaint', 'Frank']) expect(text).not.toContain(other);
  });

  it('returns an empty, completed answer for identities that match nobody, and values are data, never syntax', async () => {
    const before = [dump(shopPath()), dump(analyticsPath())];
    const identities = { email: ['nobody@example.com', "' OR '1'='1", '%', 'ada@example.com\' --', '*'], user_id: ['1 OR 1=1', '1; DROP TABLE customers'] };
    const result = await executeAccess(planRequest(map(), identities, 'access'), connectors, identities);
    expect(result).toMatchObject({ status: 'completed', totalRows: 0, errors: [] });
    expect(result.empty).toHaveLength(7);
    const erased = await executeErasure(planRequest(map(), identities, 'erasure'), connectors, identities, { hashKey: HASH_KEY });
    expect(erased).toMatchObject({ status: 'completed', totals: { rowsDeleted: 0, fieldsChanged: 0, skippedShared: 0 } });
    expect([dump(shopPath()), dump(analyticsPath())]).toEqual(before);
  });

  it('reaches a fixed point through cyclic lookups', async () => {
    const path = database('cycle.db', `
      create table accounts (id integer primary key, email text, partner_id integer);
      create table partners (id integer primary key, account_id integer);
      insert into accounts values (1, 'ada@example.com', 20), (2, 'ada.work@example.com', 21), (3, 'bob@example.com', 22);
      insert into partners values (20, 2), (21, 1), (22, 3);
    `);
    urls = { app: `sqlite:${path}` };
    const m = mapOf([
      {
        key: 'app',
        name: 'App',
        owner: 'Team',
        datasets: [
          {
            key: 'app_db',
            collections: [
              {
                name: 'accounts',
                erasure: 'delete_row',
                fields: [
                  { name: 'id', primaryKey: true },
                  { name: 'email', identity: 'email', indexed: true },
                  { name: 'partner_id', references: [{ field: 'app_db.partners.id', direction: 'to' }] },
                ],
              },
              { name: 'partners', erasure: 'delete_row', fields: [{ name: 'id', primaryKey: true }, { name: 'account_id', references: [{ field: 'app_db.accounts.id', direction: 'to' }] }] },
            ],
          },
        ],
      },
    ]);
    const plan = planRequest(m, { email: ['ada@example.com'] }, 'access');
    expect(plan.steps.every((s) => s.cyclic)).toBe(true);
    const steps: string[] = [];
    const result = await executeAccess(plan, connectors, { email: ['ada@example.com'] }, { onProgress: ({ step }) => steps.push(step.collection) });
    const of = (c: string) => result.systems[0]!.collections.find((x) => x.collection === c)!.rows.map((r) => r.data['id']);
    expect(of('app_db.accounts')).toEqual([1, 2]);
    expect(of('app_db.partners')).toEqual([20, 21]);
    // accounts ← email, partners ← 20, accounts ← 2, partners ← 21, accounts ← 1 (known): bounded by the values.
    expect(steps).toEqual(['app_db.accounts', 'app_db.partners', 'app_db.accounts', 'app_db.partners', 'app_db.accounts']);
  });
});

describe('executeErasure', () => {
  it('erases in foreign-key-safe order, keeps a shared address still in use, applies each strategy and reports what it retained', async () => {
    const plan = planRequest(map(), { email: ['ada@example.com'] }, 'erasure');
    expect(plan.problems).toEqual([]);
    const progress: string[] = [];
    const result = await executeErasure(plan, connectors, { email: ['ada@example.com'] }, { hashKey: HASH_KEY, onProgress: ({ step }) => progress.push(`${step.kind}:${step.collection}`) });
    expect(result.collections.flatMap((c) => c.errors)).toEqual([]);
    expect(result.status).toBe('completed');

    expect(rows(shopPath(), 'select id from customers')).toEqual([{ id: 2 }]);
    expect(rows(shopPath(), 'select id from customer_addresses')).toEqual([{ id: 102 }, { id: 103 }]);
    // Address 10 is Bob's too: it stays; Ada's own address 11 goes.
    expect(rows(shopPath(), 'select id from addresses')).toEqual([{ id: 10 }, { id: 12 }]);
    expect(rows(shopPath(), 'select * from orders')).toEqual([
      { id: 200, customer_id: null, total_cents: 4999 },
      { id: 201, customer_id: 2, total_cents: 1500 },
    ]);
    expect(rows(shopPath(), 'select * from tickets where id = 300')).toEqual([{ id: 300, customer_id: null, handled_by: null, requester_email: hashValue(HASH_KEY, 'ada@example.com'), body: '[removed]' }]);
    expect(rows(shopPath(), 'select * from tickets where id <> 300')).toEqual([
      { id: 301, customer_id: 2, handled_by: 7, requester_email: 'bob@example.com', body: 'Bob private complaint' },
      { id: 302, customer_id: 2, handled_by: 8, requester_email: 'bob@example.com', body: 'Bob second ticket' },
    ]);
    expect(rows(analyticsPath(), 'select id from events')).toEqual([{ id: 402 }]);
    expect(rows(shopPath(), 'select id from employees')).toEqual([{ id: 7 }, { id: 8 }]);

    const of = (c: string) => result.collections.find((x) => x.collection === c)!;
    expect(of('shop_db.customers')).toMatchObject({ rowsDeleted: 1, fieldsChanged: {}, skippedShared: 0 });
    expect(of('shop_db.customer_addresses')).toMatchObject({ rowsDeleted: 2 });
    expect(of('shop_db.addresses')).toMatchObject({ rowsDeleted: 1, skippedShared: 1 });
    expect(of('shop_db.orders')).toMatchObject({
      rowsDeleted: 0,
      fieldsChanged: { customer_id: 1 },
      retained: [
        { field: 'id', legalBasis: 'legal_obligation', reason: 'Commercial and tax records, § 147 AO', retention: 'P10Y', rows: 1 },
        { field: 'total_cents', legalBasis: 'legal_obligation', reason: 'Commercial and tax records, § 147 AO', retention: 'P10Y', rows: 1 },
      ],
    });
    expect(of('crm.tickets')).toMatchObject({ rowsDeleted: 0, fieldsChanged: { customer_id: 1, handled_by: 1, requester_email: 1, body: 1 } });
    expect(of('analytics_events.events')).toMatchObject({ rowsDeleted: 2 });
    expect(result.totals).toEqual({ rowsDeleted: 6, fieldsChanged: 5, skippedShared: 1 });
    // Referencing collections changed before the ones they reference.
    const at = (c: string) => progress.indexOf(`erase:${c}`);
    expect(at('shop_db.customer_addresses')).toBeLessThan(at('shop_db.addresses'));
    expect(at('shop_db.customer_addresses')).toBeLessThan(at('shop_db.customers'));
    expect(at('crm.tickets')).toBeLessThan(at('shop_db.customers'));

    // Idempotent: the same request again changes nothing and reports zero.
    const before = [dump(shopPath()), dump(analyticsPath())];
    const identities = { email: ['ada@example.com'], user_id: ['1'] };
    const again = await executeErasure(planRequest(map(), identities, 'erasure'), connectors, identities, { hashKey: HASH_KEY });
    expect(again).toMatchObject({ status: 'completed', totals: { rowsDeleted: 0, fieldsChanged: 0, skippedShared: 0 } });
    expect([dump(shopPath()), dump(analyticsPath())]).toEqual(before);

    // Bob goes too: the shared address now has no one left and goes with him.
    await executeErasure(planRequest(map(), { email: ['bob@example.com'] }, 'erasure'), connectors, { email: ['bob@example.com'] }, { hashKey: HASH_KEY });
    expect(rows(shopPath(), 'select id from addresses')).toEqual([]);
    expect(rows(shopPath(), 'select id from customers')).toEqual([]);
  });

  it('the foreign keys are real: the reverse order is refused by the database', async () => {
    const plan = planRequest(map(), { email: ['ada@example.com'] }, 'erasure');
    const reversed: Plan = { ...plan, erasureSequence: [...plan.erasureSequence].reverse() };
    const result = await executeErasure(reversed, connectors, { email: ['ada@example.com'] }, { hashKey: HASH_KEY });
    expect(result.status).toBe('partial');
    const failed = result.collections.filter((c) => c.errors.length > 0).map((c) => c.collection);
    expect(failed).toContain('shop_db.customers');
    expect(result.collections.flatMap((c) => c.errors).every((e) => e.code.startsWith('CST_ERR_') && !e.message.includes('ada'))).toBe(true);
    expect(rows(shopPath(), 'select id from customers where id = 1')).toEqual([{ id: 1 }]);
  });

  it('erases an employee: the tickets they handled only lose the reference, the customers’ data stays', async () => {
    const result = await executeErasure(planRequest(map(), { email: ['eve@corp.example.test'] }, 'erasure'), connectors, { email: ['eve@corp.example.test'] }, { hashKey: HASH_KEY });
    expect(result.status).toBe('completed');
    expect(rows(shopPath(), 'select id from employees')).toEqual([{ id: 8 }]);
    expect(rows(shopPath(), 'select * from tickets')).toEqual([
      { id: 300, customer_id: 1, handled_by: null, requester_email: 'ada@example.com', body: 'Ada asks about her parcel' },
      { id: 301, customer_id: 2, handled_by: null, requester_email: 'bob@example.com', body: 'Bob private complaint' },
      { id: 302, customer_id: 2, handled_by: 8, requester_email: 'bob@example.com', body: 'Bob second ticket' },
    ]);
    expect(result.collections.find((c) => c.collection === 'crm.tickets')).toMatchObject({ rowsDeleted: 0, fieldsChanged: { handled_by: 2 } });
    expect(rows(shopPath(), 'select id from customers')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('cuts a foreign-key cycle by nulling the nullable reference first', async () => {
    const path = database('cycle.db', `
      create table accounts (id integer primary key, email text, main_profile_id integer references profiles(id));
      create table profiles (id integer primary key, account_id integer not null references accounts(id));
      insert into accounts values (1, 'ada@example.com', null), (2, 'bob@example.com', null);
      insert into profiles values (10, 1), (20, 2);
      update accounts set main_profile_id = id * 10;
    `);
    urls = { app: `sqlite:${path}` };
    const m = mapOf([
      {
        key: 'app',
        name: 'App',
        owner: 'Team',
        datasets: [
          {
            key: 'app_db',
            collections: [
              {
                name: 'accounts',
                erasure: 'delete_row',
                fields: [
                  { name: 'id', primaryKey: true },
                  { name: 'email', identity: 'email', indexed: true },
                  { name: 'main_profile_id', erasure: 'null', references: [{ field: 'app_db.profiles.id', direction: 'to' }] },
                ],
              },
              { name: 'profiles', erasure: 'delete_row', fields: [{ name: 'id', primaryKey: true }, { name: 'account_id', references: [{ field: 'app_db.accounts.id', direction: 'from' }] }] },
            ],
          },
        ],
      },
    ]);
    const plan = planRequest(m, { email: ['ada@example.com'] }, 'erasure');
    expect(plan.cuts).toEqual([{ collection: 'app_db.accounts', field: 'main_profile_id', address: 'app_db.accounts.main_profile_id' }]);
    const result = await executeErasure(plan, connectors, { email: ['ada@example.com'] }, { hashKey: HASH_KEY });
    expect(result.collections.flatMap((c) => c.errors)).toEqual([]);
    expect(rows(path, 'select * from accounts')).toEqual([{ id: 2, email: 'bob@example.com', main_profile_id: 20 }]);
    expect(rows(path, 'select * from profiles')).toEqual([{ id: 20, account_id: 2 }]);
    expect(result.totals).toEqual({ rowsDeleted: 2, fieldsChanged: 1, skippedShared: 0 });
  });

  it('runs step by step from a persisted context and resumes after a crash without repeating side effects', async () => {
    const plan = planRequest(map(), { email: ['ada@example.com'] }, 'erasure');
    const executor = new PlanExecutor(plan, { connectors, hashKey: HASH_KEY });
    let stored = JSON.stringify(executor.start('erasure', { email: ['ada@example.com'] }));
    let crashedOnce = false;
    let changes = 0;
    for (;;) {
      const context = JSON.parse(stored) as ExecutionContext;
      const step = executor.next(context);
      if (step === undefined) break;
      const { context: next, outcome } = await executor.runStep(step, context);
      if (outcome.kind !== 'lookup') changes += outcome.rowsDeleted + Object.values(outcome.fieldsChanged).reduce((a, b) => a + b, 0);
      if (step.kind === 'erase' && step.collection === 'crm.tickets' && !crashedOnce) {
        // The process dies before persisting: the step runs again from the stored context and changes nothing.
        crashedOnce = true;
        const rerun = await executor.runStep(step, JSON.parse(stored) as ExecutionContext);
        expect(rerun.outcome).toMatchObject({ rowsDeleted: 0, fieldsChanged: {} });
      }
      stored = JSON.stringify(next);
    }
    expect(crashedOnce).toBe(true);
    expect(changes).toBe(11);
    const final = JSON.parse(stored) as ExecutionContext;
    expect(final.done).toEqual(expect.arrayContaining(plan.erasureSequence.map((c) => `erase:${c}`)));
    expect(rows(shopPath(), 'select requester_email from tickets where id = 300')).toEqual([{ requester_email: hashValue(HASH_KEY, 'ada@example.com') }]);
    // A completed request stays complete.
    expect(executor.next(final)).toBeUndefined();
  });

  it('reports a system it cannot reach as an error, without personal data, and still erases elsewhere', async () => {
    const failing: ConnectorFactory = async (system) => {
      if (system === 'analytics') throw Object.assign(new Error('cannot open ada@example.com'), { code: 'ENOENT' });
      return connectors(system);
    };
    const result = await executeErasure(planRequest(map(), { email: ['ada@example.com'] }, 'erasure'), failing, { email: ['ada@example.com'] }, { hashKey: HASH_KEY });
    expect(result.status).toBe('partial');
    const events = result.collections.find((c) => c.collection === 'analytics_events.events')!;
    expect(events.errors[0]).toEqual({ code: 'CST_ERR_INTERNAL', message: 'the connector failed (Error)' });
    expect(rows(shopPath(), 'select id from customers')).toEqual([{ id: 2 }]);
  });
});
