/**
 * `npm run bench -- requests`: data subject requests on the sample shop (examples/sample-app) with
 * BENCH_CUSTOMERS customers (default 1,000,000) in a temp PostgreSQL database, run by the request engine and
 * runner with a Custodian store on a temp SQLite file and the sample data map pushed.
 *
 * Data: the sample schema (every foreign key declared and indexed), filled with `INSERT … SELECT
 * generate_series` in proportion: per customer 1 home-address link (households of two share the address),
 * a work address for every other customer, 2 orders of 2 items, 1 payment card, 2 logins, 2 visits, and a
 * support ticket for every other customer, handled by one of 50 employees; then ANALYZE. The data map is the
 * sample's shop database only (the JSONL, Redis and HTTP systems are exercised by the tests).
 *
 * Measured, each on customers spread over the whole id range:
 * - access latency: `requests.create` (authenticated) + `runner.run` to completion, BENCH_REQUESTS times;
 * - erasure latency: `requests.approve` + `runner.run` (the request created beforehand, untimed);
 * - throughput: BENCH_CONCURRENT access requests created at once, drained by 2 workers (async loops of
 *   `runner.runnable()` and `runner.run()`), from the first create to the last completion;
 * - the planned executor alone (`executeAccess`, no store) and a naive plan on the same connector: the same
 *   steps, but one SELECT per value per table instead of one per batch of values.
 *
 * Env: BENCH_CUSTOMERS, BENCH_REQUESTS (default 50), BENCH_CONCURRENT (default 200).
 */
import pg from 'pg';
import { parse } from 'yaml';
import { createCustodian, loadConfig, type Custodian } from '../src/app/index.js';
import { openDataConnector, type DataConnector, type Row } from '../src/connectors/data/index.js';
import { executeAccess, planRequest, type Plan } from '../src/rights/index.js';
import { sampleManifestYaml } from '../examples/sample-app/manifest.js';
import { sampleSchemaSql } from '../examples/sample-app/schema.js';
import { envNumber, fixed, int, median, table } from './support/format.js';
import { createTempStore } from './support/temp-store.js';

const CUSTOMERS = Math.round(envNumber('BENCH_CUSTOMERS', 1_000_000));
const REQUESTS = Math.round(envNumber('BENCH_REQUESTS', 50));
const CONCURRENT = Math.round(envNumber('BENCH_CONCURRENT', 200));
const WORKERS = 2;
const EMPLOYEES = 50;

function log(message: string): void {
  console.error(`[bench requests] ${message}`);
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const email = (g: number | string) => `'customer' || ${g} || '@example.com'`;

/** INSERT … SELECT generate_series statements, in dependency order. */
function fillSql(n: number): Array<[string, string]> {
  const half = Math.ceil(n / 2);
  const names = `(array['Ada','Grace','Alan','Marie','Noor','Sven','Chiara','Kenji'])[1 + g % 8] || ' ' || (array['Lovelace','Hopper','Turing','Curie','Okafor','Rossi','Tanaka','Smith'])[1 + (g / 8) % 8]`;
  const ts = (expr: string) => `timestamptz '2025-01-01' + ((${expr}) % 31536000) * interval '1 second'`;
  return [
    ['employees', `insert into employees select g, 'Agent ' || g, 'agent' || g || '@staff.sample-shop.example', 'support' from generate_series(1, ${EMPLOYEES}) g`],
    ['customers', `insert into customers select g, ${email('g')}, ${names}, '+49 30 ' || lpad(g::text, 9, '0'), ${ts('g::bigint * 7919')}, ${ts('g::bigint * 7919 + 86400')} from generate_series(1, ${n}) g`],
    // Household addresses 1..half (customers 2k-1 and 2k), then work addresses for odd customers.
    ['addresses', `insert into addresses select g, 'Lindenallee ' || (1 + g % 120), lpad((10000 + g % 89999)::text, 5, '0'), (array['Berlin','Hamburg','Köln','München'])[1 + g % 4], 'DE' from generate_series(1, ${2 * half}) g`],
    ['customer_addresses', `insert into customer_addresses select g, g, (g + 1) / 2, 'home' from generate_series(1, ${n}) g`],
    ['customer_addresses', `insert into customer_addresses select ${n} + (g + 1) / 2, g, ${half} + (g + 1) / 2, 'work' from generate_series(1, ${n}, 2) g`],
    ['products', `insert into products select g, 'Product ' || g, 500 + g * 137 from generate_series(1, 12) g`],
    ['orders', `insert into orders select o, (o + 1) / 2, 'Customer ' || ((o + 1) / 2), ${email('((o + 1) / 2)')}, 1000 + o % 9000, ${ts('o::bigint * 104729')} from generate_series(1, ${2 * n}) o`],
    ['order_items', `insert into order_items select i, (i + 1) / 2, 1 + i % 12, 1 + i % 3, 500 + i % 4000 from generate_series(1, ${4 * n}) i`],
    ['payment_cards', `insert into payment_cards select g, g, 'tok_bench_' || md5(g::text), lpad((g % 10000)::text, 4, '0'), '12/29' from generate_series(1, ${n}) g`],
    ['logins', `insert into logins select l, (l + 1) / 2, '198.51.100.' || (1 + l % 254), ${ts('l * 31')} from generate_series(1, ${2 * n}) l`],
    ['visits', `insert into visits select v, (v + 1) / 2, '/products/' || (v % 12), '203.0.113.' || (1 + v % 254), ${ts('v * 17')} from generate_series(1, ${2 * n}) v`],
    ['support_tickets', `insert into support_tickets select (g + 1) / 2, g, 1 + g % ${EMPLOYEES}, ${email('g')}, 'Where is my parcel?', 'Please call me on +49 30 ' || lpad(g::text, 9, '0'), ${ts('g * 13')}, ${ts('g * 13 + 172800')} from generate_series(1, ${n}, 2) g`],
  ];
}

/** Customer ids spread over the whole range, distinct per purpose (offset). */
function spread(count: number, offset: number): number[] {
  const step = Math.max(1, Math.floor(CUSTOMERS / (count * 3 + 3)));
  return Array.from({ length: count }, (_, k) => Math.min(CUSTOMERS, 1 + (3 * k + offset) * step));
}

/**
 * The naive plan: the planner's steps in the same order on the same connector, but each table queried once
 * per value (one SELECT per value per table), as a hand-written per-table script would.
 */
async function naiveAccess(plan: Plan, connector: DataConnector, identities: Record<string, string[]>): Promise<number> {
  const found = new Map<string, Row[]>();
  let rows = 0;
  for (const step of plan.steps) {
    const collected: Row[] = [];
    for (const lookup of step.lookups) {
      const values = lookup.source.kind === 'identity' ? (identities[lookup.source.identity] ?? []) : [...new Set((found.get(lookup.source.collection) ?? []).map((r) => r[(lookup.source as { field: string }).field]))];
      for (const value of values) {
        if (value === null || value === undefined) continue;
        for await (const batch of connector.find(step.target, lookup.field, [value as string | number], step.fields)) collected.push(...batch);
      }
    }
    found.set(step.collection, collected);
    rows += collected.length;
  }
  return rows;
}

async function runToEnd(c: Custodian, id: string, worker: string): Promise<void> {
  const report = await c.runner.run(id, worker);
  if (report.status !== 'completed') throw new Error(`request ended ${report.status}`);
}

/** Generates the shop, measures, prints the table and the RESULT line. */
export async function run(): Promise<void> {
  const shop = await createTempStore('postgres');
  const own = await createTempStore('sqlite');
  const client = new pg.Client({ connectionString: shop.url });
  await client.connect();
  let custodian: Custodian | undefined;
  let connector: DataConnector | undefined;
  try {
    log(`generating the sample shop with ${int(CUSTOMERS)} customers`);
    const g0 = performance.now();
    for (const statement of sampleSchemaSql('postgres').filter((s) => s.startsWith('create table'))) await client.query(statement);
    let rowsTotal = 0;
    for (const [name, statement] of fillSql(CUSTOMERS)) {
      const t0 = performance.now();
      const res = await client.query(statement);
      rowsTotal += res.rowCount ?? 0;
      log(`  ${name}: ${int(res.rowCount ?? 0)} rows in ${fixed((performance.now() - t0) / 1000, 1)} s`);
    }
    // Indexes after the bulk load, as a restore would build them.
    for (const statement of sampleSchemaSql('postgres').filter((s) => s.startsWith('create index'))) await client.query(statement);
    await client.query('analyze');
    const generateSeconds = (performance.now() - g0) / 1000;
    log(`generated ${int(rowsTotal)} rows in ${fixed(generateSeconds, 1)} s`);

    custodian = await createCustodian(loadConfig({}, { dbUrl: own.url, dataDir: own.dir, logLevel: 'silent' }), { watch: false });
    const c = custodian;
    await c.datamap.put(parse(sampleManifestYaml({ shop: shop.url })), { actor: 'bench' });
    const map = (await c.datamap.dataMap())!;

    // Warm-up: connections, prepared paths, caches.
    for (const g of spread(3, 2)) {
      const r = await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: `customer${g}@example.com` }, authenticated: true, actor: 'bench' });
      await runToEnd(c, r.id, 'w0');
    }

    log(`access: ${REQUESTS} requests`);
    const accessIds = spread(REQUESTS, 0);
    const accessMs: number[] = [];
    for (const g of accessIds) {
      const t0 = performance.now();
      const r = await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: `customer${g}@example.com` }, authenticated: true, actor: 'bench' });
      await runToEnd(c, r.id, 'w1');
      accessMs.push(performance.now() - t0);
    }

    log('planned executor alone and the naive plan, same connector, interleaved');
    connector = await openDataConnector(shop.url);
    const conn = connector;
    const executorMs: number[] = [];
    const naiveMs: number[] = [];
    let executorRows = 0;
    let naiveRows = 0;
    for (const g of accessIds) {
      const identities = { email: [`customer${g}@example.com`] };
      const plan = planRequest(map, identities, 'access');
      let t0 = performance.now();
      const result = await executeAccess(plan, () => Promise.resolve(conn), identities);
      executorMs.push(performance.now() - t0);
      executorRows += result.systems.reduce((n, s) => n + s.collections.reduce((m, x) => m + x.rows.length, 0), 0);
      t0 = performance.now();
      naiveRows += await naiveAccess(plan, conn, identities);
      naiveMs.push(performance.now() - t0);
    }

    log(`erasure: ${REQUESTS} requests`);
    const erasureMs: number[] = [];
    for (const g of spread(REQUESTS, 1)) {
      const r = await c.requests.create({ type: 'erasure', jurisdiction: 'EU', identities: { email: `customer${g}@example.com` }, authenticated: true, actor: 'bench' });
      const t0 = performance.now();
      await c.requests.approve(r.id, 'bench');
      await runToEnd(c, r.id, 'w1');
      erasureMs.push(performance.now() - t0);
    }

    log(`throughput: ${CONCURRENT} access requests, ${WORKERS} workers`);
    const pool = Array.from({ length: CONCURRENT }, (_, k) => 1 + ((k * 7919 + 13) % CUSTOMERS));
    const t0 = performance.now();
    const created = await Promise.all(pool.map((g) => c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: `customer${g}@example.com` }, authenticated: true, actor: 'bench' })));
    const pending = new Set(created.map((r) => r.id));
    let busy = 0;
    const worker = async (name: string): Promise<void> => {
      while (pending.size > 0) {
        const ids = (await c.runner.runnable(10)).filter((id) => pending.has(id));
        if (ids.length === 0) {
          await new Promise((r) => setTimeout(r, 2));
          continue;
        }
        for (const id of ids) {
          if (!pending.has(id)) continue;
          const report = await c.runner.run(id, name).catch((err: unknown) => {
            // Another worker finished it between runnable() and run().
            if (!pending.has(id)) return { status: 'busy' as const };
            throw err;
          });
          if (report.status === 'busy') busy++;
          else pending.delete(id);
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, k) => worker(`w${k + 1}`)));
    const throughputSeconds = (performance.now() - t0) / 1000;
    const throughput = CONCURRENT / throughputSeconds;

    const accessP50 = median(accessMs);
    const naiveP50 = median(naiveMs);
    const executorP50 = median(executorMs);
    const ratio = naiveP50 / executorP50;
    console.log(
      table([
        ['measure', 'p50', 'p95', 'goal'],
        ['access: create + run (ms)', fixed(accessP50, 1), fixed(percentile(accessMs, 95), 1), 'p50 < 150'],
        ['erasure: approve + run (ms)', fixed(median(erasureMs), 1), fixed(percentile(erasureMs, 95), 1), 'p50 < 300'],
        ['planned executor alone, access (ms)', fixed(executorP50, 1), fixed(percentile(executorMs, 95), 1), ''],
        ['naive plan, one SELECT per value (ms)', fixed(naiveP50, 1), fixed(percentile(naiveMs, 95), 1), ''],
      ]),
    );
    console.log(
      '\n' +
        table([
          ['figure', 'value'],
          ['customers', int(CUSTOMERS)],
          ['rows in the shop database', int(rowsTotal)],
          ['requests measured (access, erasure)', `${REQUESTS}, ${REQUESTS}`],
          ['rows found: executor / naive', `${int(executorRows)} / ${int(naiveRows)}`],
          [`throughput, ${CONCURRENT} requests, ${WORKERS} workers`, `${fixed(throughput, 1)} /s (${fixed(throughputSeconds, 2)} s, ${busy} busy claims)`],
          ['naive / planned executor (p50)', fixed(ratio, 2)],
          ['generation (not measured)', `${fixed(generateSeconds, 1)} s`],
        ]),
    );
    const fields = [
      ['access_p50_ms', fixed(accessP50, 1)],
      ['erasure_p50_ms', fixed(median(erasureMs), 1)],
      ['throughput_per_s', fixed(throughput, 1)],
      ['naive_access_p50_ms', fixed(naiveP50, 1)],
      ['executor_access_p50_ms', fixed(executorP50, 1)],
      ['ratio', fixed(ratio, 2)],
      ['customers', String(CUSTOMERS)],
    ];
    console.log(`\nRESULT requests ${fields.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  } finally {
    await connector?.close().catch(() => undefined);
    await custodian?.close().catch(() => undefined);
    await client.end().catch(() => undefined);
    await shop.cleanup();
    await own.cleanup();
  }
}
