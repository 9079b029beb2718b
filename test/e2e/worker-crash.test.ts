import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { ManualClock } from '../../src/core/index.js';
import { startReferenceReceiver, type ReferenceReceiver } from '../connectors/data/reference-receiver.js';
import { cleanEnv, spawnCli, stopProcess } from '../support/server-process.js';
import { shopDatabase, shopManifest, type ShopSystem, type ShopTables } from '../support/shop.js';
import { custodianFixture } from '../support/stores.js';

/*
 * A `custodian worker` killed with SIGKILL in the middle of an erasure leaves the request resumable: another
 * worker takes it over once the lease has run out, does not repeat the steps recorded as done, and misses no
 * collection. The kill lands while the worker waits on a slow HTTP service (a system of the data map).
 */

const SECRET = 'loyalty-shared-secret-0123456789';

describe('worker crash and resume', () => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let db: string;
  let dir: string;
  let receiver: ReferenceReceiver;
  let fixtureArgs: string[];
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    // `${LOYALTY_SECRET}` in the data map: this process's Custodian and the worker each get it in their environment.
    const f = await custodianFixture('sqlite', { clock, config: { env: { LOYALTY_SECRET: SECRET } } });
    c = f.custodian;
    cleanup = f.cleanup;
    fixtureArgs = ['--db', f.fixture.url, '--data-dir', f.fixture.dir];
    dir = await mkdtemp(join(tmpdir(), 'custodian-crash-'));
    db = join(dir, 'shop.db');
    // Ada and Bob with five logins each, in the shop's database; their loyalty points behind an HTTP service.
    const shop = { customers: [], logins: true } satisfies ShopTables;
    shopDatabase(db, { ...shop, rows: { logins: 10 } });
    receiver = await startReferenceReceiver({ secret: SECRET, collections: { loyalty: ['id', 'email', 'points'] } });
    receiver.rows.set('loyalty', [
      { id: 'l-1', email: 'ada@example.com', points: 120 },
      { id: 'l-2', email: 'bob@example.com', points: 5 },
    ]);
    const loyalty = {
      key: 'loyalty',
      name: 'Loyalty service',
      owner: 'Growth',
      connection: `http://custodian:\${LOYALTY_SECRET}@127.0.0.1:${receiver.port}`,
      purposes: ['service'],
      datasets: [
        {
          key: 'loyalty_api',
          collections: [
            {
              name: 'loyalty',
              erasure: 'delete_row',
              connector: { fields: 'id,email,points' },
              fields: [
                { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
                { name: 'email', dataCategories: ['user.contact.email'], identity: 'email', indexed: true },
                { name: 'points', dataCategories: ['user.behavior.purchase_history'] },
              ],
            },
          ],
        },
      ],
    } satisfies ShopSystem;
    const manifest = shopManifest(db, { ...shop, organization: 'Crash Test Ltd', purposes: [{ key: 'service', title: 'Service', legalBasis: 'contract' }], systems: [loyalty] });
    await c.datamap.put(manifest, { actor: 'test' });
  });
  afterAll(async () => {
    await receiver?.close();
    await cleanup?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('a SIGKILLed worker leaves the erasure resumable: nothing done twice, nothing missed', async () => {
    const r = await c.requests.create({ type: 'erasure', jurisdiction: 'EU', identities: { email: 'ada@example.com' }, authenticated: true, actor: 'app' });
    await c.requests.approve(r.id, 'officer');
    // The service answers the lookup (ping, find) and then hangs: the worker is killed inside the erasure phase.
    receiver.delayNext(0, 2);
    receiver.delayNext(20_000, 1000);
    const worker = spawnCli(['worker', '--once', ...fixtureArgs], { env: cleanEnv({ LOYALTY_SECRET: SECRET }) });
    const started = Date.now();
    while (receiver.arrivals() < 3 && Date.now() - started < 20_000) await new Promise((res) => setTimeout(res, 25));
    expect(receiver.arrivals(), worker.stderr() + worker.stdout()).toBeGreaterThanOrEqual(3);
    expect((await stopProcess(worker, 'SIGKILL')).signal).toBe('SIGKILL');

    const before = await c.requests.get(r.id);
    expect(before.status).toBe('in_progress');
    const doneBefore = await c.store.db.selectFrom('request_tasks').select(['target', 'status']).where('request_id', '=', r.id).orderBy('seq').execute();
    expect(doneBefore.map((t) => t.target)).toEqual(expect.arrayContaining(['lookup:shop_db.customers', 'lookup:loyalty_api.loyalty']));
    // Another worker cannot take it while the dead one's lease holds…
    expect(await c.runner.runnable()).not.toContain(r.id);
    expect((await c.runner.run(r.id, 'w-resume')).status).toBe('busy');
    // …and can once it has run out.
    clock.advance(2 * 60_000);
    receiver.clearFaults();
    const report = await c.runner.run(r.id, 'w-resume');
    expect(report.status, JSON.stringify((await c.requests.get(r.id)).outcome)).toBe('completed');

    const tasks = await c.store.db.selectFrom('request_tasks').select(['target', 'status']).where('request_id', '=', r.id).orderBy('seq').execute();
    const erases = tasks.filter((t) => t.target.startsWith('erase:')).map((t) => t.target);
    expect(new Set(erases).size).toBe(erases.length); // no change step recorded twice
    expect(new Set(erases)).toEqual(new Set(['erase:shop_db.logins', 'erase:shop_db.customers', 'erase:loyalty_api.loyalty']));
    expect(tasks.slice(0, doneBefore.length)).toEqual(doneBefore); // what the dead worker recorded stands

    const d = new Database(db, { readonly: true });
    try {
      expect(d.prepare("select count(*) as n from customers where id = 'c-1'").get()).toEqual({ n: 0 });
      expect(d.prepare("select count(*) as n from logins where customer_id = 'c-1'").get()).toEqual({ n: 0 });
      expect(d.prepare("select count(*) as n from logins where customer_id = 'c-2'").get()).toEqual({ n: 5 });
    } finally {
      d.close();
    }
    expect(receiver.rows.get('loyalty')!.map((x) => x.email)).toEqual(['bob@example.com']);
    const cert = JSON.parse(await c.runner.certificate(r.id)) as { statement: { remaining: unknown[] } };
    expect(cert.statement.remaining).toEqual([]);
  });
});
