/**
 * `npm run bench -- retention [--rows <n>]`: a retention purge by the RetentionService against a single raw
 * `DELETE … WHERE` of the same rows, each while a concurrent reader does point lookups on the same table.
 *
 * Data: the retention tests' application (test/retention/app-data.ts, shared with them): a temp PostgreSQL
 * database with `events (id bigint primary key, email, at timestamptz, note)` of `--rows` rows (default
 * 3,000,000; env BENCH_ROWS), every third one past due (400 days old, interleaved over the whole key range; the
 * rest 10 days old), generated with `INSERT … SELECT generate_series` (`eventsAtScale`); a fresh copy
 * `events_copy` with the same rows and keys for the raw delete; then VACUUM ANALYZE. The data map
 * (`retentionManifest`) declares `events` with a P1Y delete rule and `email` as an identity; one open access
 * request exists, so the hold check runs as in production. Custodian's own store is a temp SQLite file.
 *
 * Measured: purge time and throughput (rows deleted per second) of ours (1,000-row batches, one short
 * transaction each) and of the raw DELETE (one transaction); the reader's latency percentiles during each
 * (its own process, one connection, `select … where id = $1` on random ids, back to back). Goal: reader p99 < 50 ms during ours.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createCustodian, loadConfig } from '../src/app/index.js';
import { eventsAtScale, retentionManifest } from '../test/retention/app-data.js';
import { envNumber, fixed, int, table } from './support/format.js';
import { createTempStore } from './support/temp-store.js';

function log(message: string): void {
  console.error(`[bench retention] ${message}`);
}

function rowsOption(): number {
  const at = process.argv.indexOf('--rows');
  if (at >= 0) {
    const n = Number(process.argv[at + 1]);
    if (!Number.isInteger(n) || n < 3) throw new Error('--rows takes a whole number ≥ 3');
    return n;
  }
  return Math.round(envNumber('BENCH_ROWS', 3_000_000));
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/**
 * Starts the point reader (bench/support/point-reader.ts) in its own process on `tableName`; `stop()` ends it and
 * resolves to its latencies in ms. A separate process, so that the purge's own CPU work cannot stall it.
 */
async function startReader(url: string, tableName: string, rows: number): Promise<{ stop: () => Promise<number[]> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./support/point-reader.ts', import.meta.url)), url, tableName, String(rows)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`reader exited with ${code}`)))));
  while (!out.includes('ready\n')) {
    if (child.exitCode !== null) throw new Error('the reader did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  // Warm-up: connection made, statement prepared on the first reads.
  await new Promise((r) => setTimeout(r, 300));
  return {
    stop: async () => {
      child.stdin.end();
      await exited;
      return JSON.parse(out.slice(out.indexOf('ready\n') + 6).trim()) as number[];
    },
  };
}

/** Generates the tables, purges both ways under a concurrent reader, prints the table and the RESULT line. */
/** The largest value (a loop: spreading 100,000+ samples into Math.max overflows the stack). */
function maxOf(values: readonly number[]): number {
  let m = -Infinity;
  for (const v of values) if (v > m) m = v;
  return m;
}

export async function run(): Promise<void> {
  const rows = rowsOption();
  const app = await createTempStore('postgres');
  const own = await createTempStore('sqlite');
  try {
    const admin = new pg.Client({ connectionString: app.url });
    await admin.connect();
    log(`generating ${int(rows)} rows (every third past due) and a copy`);
    let t0 = performance.now();
    for (const name of ['events', 'events_copy']) {
      const { create, fill } = eventsAtScale(name, rows);
      await admin.query(create);
      await admin.query(fill);
    }
    await admin.query('vacuum analyze events');
    await admin.query('vacuum analyze events_copy');
    const expired = Number((await admin.query<{ n: string }>(`select count(*) as n from events where at < now() - interval '1 year'`)).rows[0]!.n);
    log(`generated in ${fixed((performance.now() - t0) / 1000, 1)} s; ${int(expired)} past due`);

    const custodian = await createCustodian(loadConfig({}, { dbUrl: own.url, dataDir: own.dir, logLevel: 'silent' }), { watch: false });
    let ours: { seconds: number; deleted: number; latencies: number[] };
    try {
      await custodian.datamap.put(retentionManifest(app.url, { eventsPeriod: 'P1Y', profiles: false, organization: 'Retention bench' }), { actor: 'bench' });
      await custodian.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: 'someone.else@example.com' }, authenticated: true, actor: 'bench' });
      log('purging with RetentionService (1,000-row batches) under a concurrent reader');
      const reading = await startReader(app.url, 'events', rows);
      t0 = performance.now();
      const report = await custodian.retention.run({ actor: 'bench' });
      const seconds = (performance.now() - t0) / 1000;
      const latencies = await reading.stop();
      if (report.status !== 'completed') throw new Error(`retention run ${report.status}: ${report.collections.map((c) => c.error).join('; ')}`);
      ours = { seconds, deleted: report.totals.deleted, latencies };
    } finally {
      await custodian.close();
    }

    log('raw DELETE … WHERE on the copy under a concurrent reader');
    const reading = await startReader(app.url, 'events_copy', rows);
    t0 = performance.now();
    const res = await admin.query(`delete from events_copy where at < now() - interval '1 year'`);
    const rawSeconds = (performance.now() - t0) / 1000;
    const raw = { seconds: rawSeconds, deleted: res.rowCount ?? 0, latencies: await reading.stop() };
    const left = Number((await admin.query<{ n: string }>(`select count(*) as n from events where at < now() - interval '1 year'`)).rows[0]!.n);
    await admin.end();

    const rate = (x: { seconds: number; deleted: number }) => x.deleted / x.seconds;
    const line = (name: string, x: { seconds: number; deleted: number; latencies: number[] }) => [
      name,
      int(x.deleted),
      fixed(x.seconds, 2),
      int(rate(x)),
      int(x.latencies.length),
      fixed(percentile(x.latencies, 50), 2),
      fixed(percentile(x.latencies, 99), 2),
      fixed(maxOf(x.latencies), 1),
    ];
    console.log(`\nretention purge: ${int(rows)} rows, ${int(expired)} past due (interleaved), PostgreSQL; reader = point lookups by id, one connection\n`);
    console.log(table([['purge', 'deleted', 'seconds', 'rows/s', 'reads', 'read p50 ms', 'read p99 ms', 'read max ms'], line('RetentionService (batches of 1,000)', ours), line('raw DELETE … WHERE (one statement)', raw)]));
    console.log(`\nrows past due left after ours: ${int(left)}; ratio of throughput (ours / raw): ${fixed(rate(ours) / rate(raw), 3)}`);
    const fields: Array<[string, string]> = [
      ['rows', String(rows)],
      ['expired', String(expired)],
      ['deleted', String(ours.deleted)],
      ['ours_rows_per_s', String(Math.round(rate(ours)))],
      ['raw_rows_per_s', String(Math.round(rate(raw)))],
      ['throughput_ratio', fixed(rate(ours) / rate(raw), 3)],
      ['reader_p99_ms_ours', fixed(percentile(ours.latencies, 99), 2)],
      ['reader_p99_ms_raw', fixed(percentile(raw.latencies, 99), 2)],
      ['reader_max_ms_ours', fixed(maxOf(ours.latencies), 1)],
      ['reader_max_ms_raw', fixed(maxOf(raw.latencies), 1)],
    ];
    console.log(`\nRESULT retention ${fields.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  } finally {
    await own.cleanup();
    await app.cleanup();
  }
}
