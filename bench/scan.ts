/**
 * `npm run bench -- scan`: the data-map scanner on a generated PostgreSQL database of BENCH_SCAN_TABLES
 * tables (default 50) holding BENCH_SCAN_ROWS rows in all (default 2,000,000), against a full read of the
 * same columns of the same tables in the same run.
 *
 * Rows are generated in the database with `INSERT … SELECT generate_series` (e-mail, name, phone, IP, card
 * numbers that pass Luhn, status, amount, free text, timestamps), then ANALYZEd as a production database
 * would be. The scan is `scanUrl(url, { sample })` with BENCH_SCAN_SAMPLE rows per table (default 1000):
 * introspection, `TABLESAMPLE SYSTEM … LIMIT` per table, classification of every value sampled. The full read
 * streams every row of the same projection (`left(col::text, 512)` per column) through a cursor-less
 * `SELECT` per table, in batches of one table — what a scanner without sampling would at least have to
 * read. Interleaved: full read, scan, full read, scan (the median of each is reported), so that cache
 * warmth favours neither.
 *
 * Env: BENCH_SCAN_TABLES, BENCH_SCAN_ROWS, BENCH_SCAN_SAMPLE.
 */
import pg from 'pg';
import { quotePostgresIdent } from '../src/connectors/index.js';
import { scanUrl, type ScanReport } from '../src/scanner/index.js';
import { envNumber, fixed, int, median, table } from './support/format.js';
import { createTempStore } from './support/temp-store.js';

const TABLES = Math.round(envNumber('BENCH_SCAN_TABLES', 50));
const ROWS = Math.round(envNumber('BENCH_SCAN_ROWS', 2_000_000));
const SAMPLE = Math.round(envNumber('BENCH_SCAN_SAMPLE', 1000));
const ROUNDS = 2;

function log(message: string): void {
  console.error(`[bench scan] ${message}`);
}

const COLUMNS = ['id', 'email', 'full_name', 'phone', 'last_login_ip', 'card_number', 'status', 'amount', 'notes', 'created_at'] as const;

/** 1,000 Luhn-valid 16-digit Visa-like numbers, computed once in SQL, joined into every table by row number. */
const CARDS_SQL = `create table bench_gen.cards as
  select k, p || ((10 - (sum(case when (16 - i) % 2 = 0 then d else case when d * 2 > 9 then d * 2 - 9 else d * 2 end end) % 10)) % 10)::text as pan
    from (select k, p, i, substr(p, i, 1)::int as d
            from (select k, '4' || lpad((k::bigint * 7919 * 104729 % 100000000000000)::text, 14, '0') as p from generate_series(0, 999) k) x,
                 generate_series(1, 15) i) y
   group by k, p`;

function createTableSql(name: string): string {
  return `create table ${quotePostgresIdent(name)} (
    id bigint primary key, email text not null, full_name text, phone text, last_login_ip text, card_number text,
    status text, amount numeric(10, 2), notes text, created_at timestamptz)`;
}

function fillSql(name: string, from: number, to: number): string {
  return `insert into ${quotePostgresIdent(name)}
    select g,
      'user' || g || '@example.com',
      (array['Ada','Grace','Alan','Marie','Noor','Sven','Chiara','Kenji'])[1 + g % 8] || ' ' || (array['Lovelace','Hopper','Turing','Curie','Okafor','Rossi','Tanaka','Smith'])[1 + (g / 8) % 8],
      '+31 6 ' || lpad((g * 7919 % 100000000)::text, 8, '0'),
      (10 + g % 200)::text || '.' || (g % 256)::text || '.' || ((g / 256) % 256)::text || '.' || (1 + g % 254)::text,
      c.pan,
      (array['active','inactive','pending'])[1 + g % 3],
      (g % 100000) / 100.0,
      case when g % 4 = 0 then 'call me on +44 20 7946 ' || lpad((g % 10000)::text, 4, '0') else 'leave the parcel at the door' end,
      timestamptz '2024-01-01' + (g % 31536000) * interval '1 second'
    from generate_series(${from}::bigint, ${to}::bigint) g join bench_gen.cards c on c.k = g % 1000`;
}

async function fullRead(client: pg.Client, tables: readonly string[]): Promise<{ seconds: number; rows: number }> {
  const list = COLUMNS.map((c) => `left(${quotePostgresIdent(c)}::text, 512)`).join(', ');
  const t0 = performance.now();
  let rows = 0;
  for (const t of tables) {
    const res = await client.query<unknown[]>({ text: `select ${list} from ${quotePostgresIdent(t)}`, rowMode: 'array' });
    rows += res.rows.length;
  }
  return { seconds: (performance.now() - t0) / 1000, rows };
}

/** Generates the database, runs the rounds, prints the table and the RESULT line. */
export async function run(): Promise<void> {
  const store = await createTempStore('postgres');
  const client = new pg.Client({ connectionString: store.url });
  await client.connect();
  try {
    const tables = Array.from({ length: TABLES }, (_, i) => `customers_${String(i).padStart(2, '0')}`);
    const perTable = Math.floor(ROWS / TABLES);
    log(`generating ${int(perTable * TABLES)} rows in ${TABLES} tables`);
    const g0 = performance.now();
    let next = 1;
    // The generator's helper table lives outside the scanned schema.
    await client.query('create schema bench_gen');
    await client.query(CARDS_SQL);
    for (const t of tables) {
      await client.query(createTableSql(t));
      await client.query(fillSql(t, next, next + perTable - 1));
      next += perTable;
    }
    await client.query('drop schema bench_gen cascade');
    await client.query('analyze');
    const generateSeconds = (performance.now() - g0) / 1000;
    log(`generated in ${fixed(generateSeconds, 1)} s`);

    const scans: { seconds: number; report: ScanReport }[] = [];
    const reads: { seconds: number; rows: number }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      reads.push(await fullRead(client, tables));
      log(`round ${round + 1}: full read ${fixed(reads.at(-1)!.seconds, 2)} s`);
      const t0 = performance.now();
      const report = await scanUrl(store.url, { sample: SAMPLE });
      scans.push({ seconds: (performance.now() - t0) / 1000, report });
      log(`round ${round + 1}: scan ${fixed(scans.at(-1)!.seconds, 2)} s, ${int(report.rowsSampled)} rows sampled, ${report.findings} findings`);
    }
    const scanSeconds = median(scans.map((s) => s.seconds));
    const readSeconds = median(reads.map((r) => r.seconds));
    const report = scans.at(-1)!.report;
    const rowsTotal = reads[0]!.rows;
    const ratio = scanSeconds / readSeconds;
    const categories = new Map<string, number>();
    for (const t of report.tables) for (const c of t.columns) if (c.finding) categories.set(c.finding.category, (categories.get(c.finding.category) ?? 0) + 1);

    console.log(
      table([
        ['measure', 'value'],
        ['tables', int(report.tables.length)],
        ['rows in the tables', int(rowsTotal)],
        ['sample limit per table', int(SAMPLE)],
        ['rows sampled by the scan', int(report.rowsSampled)],
        ['share of rows read by the scan', `${fixed((100 * report.rowsSampled) / rowsTotal, 2)} %`],
        ['scan (median of rounds)', `${fixed(scanSeconds, 3)} s`],
        ['full read (median of rounds)', `${fixed(readSeconds, 3)} s`],
        ['scan / full read', fixed(ratio, 3)],
        ['columns found personal', int(report.findings)],
        ['generation (not measured)', `${fixed(generateSeconds, 1)} s`],
      ]),
    );
    console.log('\nfindings by category: ' + [...categories].map(([c, n]) => `${c}=${n}`).join(', '));
    const fields = [
      ['scan_seconds', fixed(scanSeconds, 3)],
      ['full_read_seconds', fixed(readSeconds, 3)],
      ['ratio', fixed(ratio, 4)],
      ['rows_sampled', String(report.rowsSampled)],
      ['rows_total', String(rowsTotal)],
      ['tables', String(report.tables.length)],
      ['findings', String(report.findings)],
    ];
    console.log(`\nRESULT scan ${fields.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  } finally {
    await client.end().catch(() => undefined);
    await store.cleanup();
  }
}
