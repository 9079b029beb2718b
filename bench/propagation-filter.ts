/**
 * Consent-aware processing: `custodian filter` / `filterByConsent` against a plain JSONL pass.
 *
 * (a) A JSONL file of BENCH_FILTER_RECORDS records (default 5,000,000, ~100 bytes each, like
 *     {"user_id":"u-123456","feature":[…],"label":1,"ts":"…"}) over BENCH_FILTER_SUBJECTS subjects (default
 *     500,000, one picked at random per record), with half of the subjects granted `train_ai_system`, a tenth
 *     denied and a twentieth withdrawn, recorded with `ledger.record` in batches of 1,000 in a temp SQLite store.
 * (b) The plain pass: read the file, split lines, JSON.parse each, write every line to a null sink — the same
 *     reader and writer the CLI uses, so the ratio is what the consent decisions cost.
 * (c) The filter pass: the same, deciding each window with ConsentFilter over ledgerLookup (in process),
 *     writing the kept lines, on a freshly opened Custodian (cold caches) with the ledger's default cache
 *     (100,000 subjects; on the first BENCH_FILTER_DEFAULT_LIMIT records, default all) and with a ledger cache
 *     sized to the subjects (×1.2). Goal: filter ≥ 0.5 × plain (records/s). Plain and filter passes
 *     alternate, BENCH_FILTER_ROUNDS rounds each (default 2); the medians are reported.
 * (d) One store lookup per record, on a sample of BENCH_FILTER_SAMPLE records (default 200,000):
 *     `ledger.check` per record on a freshly opened Custodian (cold cache), and a raw prepared SQLite point
 *     query on consent_state per record. Extrapolated as records/s; reported as the filter's speed-up.
 * (e) The CLI end to end (`node --import tsx src/cli/main.ts filter … < file > /dev/null`), once, unless
 *     BENCH_FILTER_CLI=0; its wall time includes start-up (tsx, opening the store).
 *
 * `--records <n>` (or BENCH_FILTER_RECORDS) overrides the record count for a quick run; subjects default to
 * a tenth of the records. BENCH_FILTER_DIR keeps the file and the store in that folder for the next run.
 * Run alone: `npx tsx bench/propagation-filter.ts [--records 500000]`.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, openSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import SQLite from 'better-sqlite3';
import { createCustodian, loadConfig, type Custodian } from '../src/app/index.js';
import { keptBytes, readJsonlWindows, writeWithBackpressure } from '../src/cli/jsonl.js';
import { ConsentFilter, ledgerLookup, type FilterSummary } from '../src/client/index.js';
import type { ConsentEventInput, Decision } from '../src/ledger/index.js';
import { mulberry32 } from '../test/support/random.js';
import { envNumber, fixed, int, median, table } from './support/format.js';
import { createTempStore, type TempStore } from './support/temp-store.js';

const PURPOSE = 'train_ai_system';
const WINDOW = 10_000;
const READ_CHUNK = 1024 * 1024;
const GOAL_RATIO = 0.5;
/** The filter's recheck bound (BENCH_FILTER_RECHECK_MS, default 1000 as in the CLI). */
const RECHECK_MS = envNumber('BENCH_FILTER_RECHECK_MS', 1000);

/** Options of {@link filterBench}; each falls back to its environment variable, then to the default. */
export interface FilterBenchOptions {
  readonly records?: number;
  readonly subjects?: number;
  readonly sample?: number;
  readonly rounds?: number;
  readonly cli?: boolean;
  /** Print progress and the table (default true). */
  readonly verbose?: boolean;
}

function subjectId(i: number): string {
  return `u-${String(i).padStart(6, '0')}`;
}

/** The decision recorded for subject i: half granted, a tenth denied, a twentieth withdrawn, the rest nothing. */
function decisionOf(i: number): Decision | null {
  const m = i % 20;
  if (m < 10) return 'granted';
  if (m < 12) return 'denied';
  if (m === 12) return 'withdrawn';
  return null;
}

async function writeJsonl(path: string, records: number, subjects: number): Promise<number> {
  const out = createWriteStream(path);
  const rand = mulberry32(42); // seeded, so runs are comparable
  const ts = Date.parse('2026-06-01T00:00:00.000Z');
  let bytes = 0;
  let batch: string[] = [];
  for (let i = 0; i < records; i++) {
    const s = subjectId(Math.floor(rand() * subjects));
    batch.push(
      `{"user_id":"${s}","feature":[${rand().toFixed(3)},${rand().toFixed(3)},${rand().toFixed(3)}],"label":${rand() < 0.5 ? 0 : 1},"ts":"${new Date(ts + i * 37).toISOString()}"}\n`,
    );
    if (batch.length === 10_000 || i === records - 1) {
      const buf = Buffer.from(batch.join(''));
      bytes += buf.length;
      batch = [];
      if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return bytes;
}

async function recordConsent(custodian: Custodian, subjects: number, log: (s: string) => void): Promise<number> {
  let batch: ConsentEventInput[] = [];
  let recorded = 0;
  const started = performance.now();
  for (let i = 0; i < subjects; i++) {
    const decision = decisionOf(i);
    if (decision !== null) batch.push({ subjectId: subjectId(i), purpose: PURPOSE, decision, method: 'api' });
    if (batch.length === 1000 || (i === subjects - 1 && batch.length > 0)) {
      await custodian.ledger.record(batch, { actor: 'bench' });
      recorded += batch.length;
      batch = [];
      if (recorded % 50_000 === 0) log(`  recorded ${int(recorded)} decisions (${int(recorded / ((performance.now() - started) / 1000))}/s)`);
    }
  }
  return recorded;
}

/** A writable that drops everything (asynchronously, like a pipe that keeps up). */
function nullSink(): Writable {
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}

/** The plain pass: read, split, parse every line, write every line. Resolves to records/s. */
async function plainPass(path: string): Promise<{ perS: number; records: number }> {
  const sink = nullSink();
  const started = performance.now();
  let records = 0;
  const all = new Uint8Array(WINDOW);
  for await (const w of readJsonlWindows(createReadStream(path, { highWaterMark: READ_CHUNK }), { windowSize: WINDOW, onBadLine: 'fail' })) {
    records += w.count;
    const out = keptBytes(w, all);
    if (out !== null) await writeWithBackpressure(sink, out);
  }
  return { perS: records / ((performance.now() - started) / 1000), records };
}

/** The filter pass, as the CLI runs it, over ledgerLookup. Resolves to records/s and the summary. */
async function filterPass(path: string, custodian: Custodian, log: (s: string) => void, limit = Infinity): Promise<{ perS: number; summary: FilterSummary }> {
  const sink = nullSink();
  const started = performance.now();
  const filter = new ConsentFilter<unknown>({
    purpose: PURPOSE,
    subjectField: 'user_id',
    lookup: ledgerLookup(custodian.ledger, { purposes: custodian.purposes }),
    windowSize: WINDOW,
    recheckMs: RECHECK_MS,
  });
  await filter.assertPurpose();
  const verdicts = new Uint8Array(WINDOW);
  let lastLog = performance.now();
  for await (const w of readJsonlWindows(createReadStream(path, { highWaterMark: READ_CHUNK }), { windowSize: WINDOW, onBadLine: 'fail' })) {
    await filter.decide(w.values, w.count, verdicts);
    const out = keptBytes(w, verdicts);
    if (out !== null) await writeWithBackpressure(sink, out);
    if (performance.now() - lastLog > 15_000) {
      lastLog = performance.now();
      const s = filter.summary();
      log(`    … ${int(s.read)} read, ${int(s.subjectsLookedUp)} subjects looked up, ${int(s.lookupMs)} ms in lookups`);
    }
    if (filter.summary().read >= limit) break;
  }
  const summary = filter.finish();
  return { perS: summary.read / ((performance.now() - started) / 1000), summary };
}

/** The subjects of the first `n` records of the file. */
async function sampleSubjects(path: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for await (const w of readJsonlWindows(createReadStream(path, { highWaterMark: READ_CHUNK }), { windowSize: WINDOW, onBadLine: 'fail' })) {
    for (let i = 0; i < w.count && out.length < n; i++) out.push((w.values[i] as { user_id: string }).user_id);
    if (out.length >= n) break;
  }
  return out;
}

/** `ledger.check` per record on a freshly opened Custodian (its cache starts empty). Resolves to records/s. */
async function perRecordCheck(store: TempStore, subjects: readonly string[]): Promise<number> {
  const custodian = await createCustodian(loadConfig({}, { dbUrl: store.url, dataDir: store.dir, logLevel: 'silent' }));
  try {
    let allowed = 0;
    const started = performance.now();
    for (const s of subjects) if ((await custodian.ledger.check(s, PURPOSE)).allowed) allowed++;
    const perS = subjects.length / ((performance.now() - started) / 1000);
    if (allowed === 0) throw new Error('no subject allowed: the sample is wrong');
    return perS;
  } finally {
    await custodian.close();
  }
}

/** A raw prepared SQLite point query on consent_state per record. Resolves to records/s. */
function perRecordRawQuery(store: TempStore, subjects: readonly string[]): number {
  const db = new SQLite(store.url.slice('sqlite:'.length), { readonly: true });
  try {
    const q = db.prepare('select decision, expires_at from consent_state where subject_id = ? and purpose = ?');
    let found = 0;
    const started = performance.now();
    for (const s of subjects) if (q.get(s, PURPOSE) !== undefined) found++;
    const perS = subjects.length / ((performance.now() - started) / 1000);
    if (found === 0) throw new Error('no state found: the sample is wrong');
    return perS;
  } finally {
    db.close();
  }
}

/** The CLI end to end on the file, output to /dev/null. Resolves to records/s over the process's wall time. */
async function cliPass(path: string, store: TempStore, records: number, cacheSubjects: number): Promise<number> {
  const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const started = performance.now();
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', main, 'filter', '--purpose', PURPOSE, '--subject-field', 'user_id', '--db', store.url, '--no-progress', '--cache-subjects', String(cacheSubjects), '--recheck-ms', String(RECHECK_MS)], {
      stdio: [openSync(path, 'r'), openSync('/dev/null', 'w'), 'pipe'],
      env: { ...process.env, CUSTODIAN_DATA_DIR: store.dir, CUSTODIAN_DB: store.url },
    });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (c) => {
      if (c !== 0) console.error(err);
      resolve(c ?? 1);
    });
  });
  if (code !== 0) throw new Error(`custodian filter exited with ${code}`);
  return records / ((performance.now() - started) / 1000);
}

function argRecords(): number | undefined {
  const i = process.argv.indexOf('--records');
  if (i < 0) return undefined;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error('--records must be a positive whole number');
  return n;
}

/**
 * Runs the benchmark and resolves to its figures: records/s of the plain pass, of the filter (with the
 * ledger's default cache of 100,000 subjects, and with a cache sized to the subjects) and of the per-record
 * lookups, and the ratios (`ratio` = filter / plain with the default cache, goal ≥ 0.5).
 */
export async function filterBench(options: FilterBenchOptions = {}): Promise<Record<string, number>> {
  const records = options.records ?? argRecords() ?? envNumber('BENCH_FILTER_RECORDS', 5_000_000);
  const subjects = options.subjects ?? envNumber('BENCH_FILTER_SUBJECTS', Math.max(1, Math.round(records / 10)));
  const sampleSize = Math.min(records, options.sample ?? envNumber('BENCH_FILTER_SAMPLE', 200_000));
  const rounds = options.rounds ?? envNumber('BENCH_FILTER_ROUNDS', 2);
  const withCli = options.cli ?? process.env.BENCH_FILTER_CLI !== '0';
  const verbose = options.verbose ?? true;
  const log = (s: string): void => {
    if (verbose) console.log(s);
  };
  /** Ledger cache sized to hold every subject (about 600 bytes each): rechecks are answered from memory. */
  const bigCache = Math.ceil(subjects * 1.2);
  /**
   * With the ledger's default cache (100,000 subjects) and more subjects than that, every lookup evicts, and
   * the ledger's eviction is slow (see the report): that pass runs on the first BENCH_FILTER_DEFAULT_LIMIT
   * records only (default: all), and its records/s is compared with the plain pass over the whole file.
   */
  const defaultLimit = Math.min(records, envNumber('BENCH_FILTER_DEFAULT_LIMIT', records));

  // BENCH_FILTER_DIR keeps the file and the store between runs (generating and recording take minutes).
  const keepDir = process.env.BENCH_FILTER_DIR;
  let store: TempStore;
  if (keepDir !== undefined && keepDir !== '') {
    await mkdir(keepDir, { recursive: true });
    store = { kind: 'sqlite', url: `sqlite:${join(keepDir, 'custodian.db')}`, dir: keepDir, cleanup: async () => undefined };
  } else {
    store = await createTempStore('sqlite');
  }
  const open = (cacheMaxSubjects?: number): Promise<Custodian> =>
    createCustodian(loadConfig({}, { dbUrl: store.url, dataDir: store.dir, logLevel: 'silent', ...(cacheMaxSubjects === undefined ? {} : { ledger: { cacheMaxSubjects } }) }));
  try {
    const file = join(store.dir, 'events.jsonl');
    const marker = join(store.dir, `ready-${records}-${subjects}`);
    const ready = await stat(marker).then(() => true, () => false);
    if (!ready) {
      log(`filter: writing ${int(records)} records over ${int(subjects)} subjects`);
      let t = performance.now();
      const bytes = await writeJsonl(file, records, subjects);
      log(`  ${int(bytes / 1e6)} MB in ${fixed((performance.now() - t) / 1000, 1)} s (${fixed(bytes / records, 0)} bytes/record)`);
      const c = await open();
      try {
        log(`filter: recording consent of ${int(subjects)} subjects for ${PURPOSE}`);
        t = performance.now();
        const recorded = await recordConsent(c, subjects, log);
        log(`  ${int(recorded)} decisions in ${fixed((performance.now() - t) / 1000, 1)} s`);
      } finally {
        await c.close();
      }
      await writeFile(marker, '');
    } else log(`filter: reusing ${file}`);

    const plain: number[] = [];
    const filtered: number[] = [];
    const filteredBig: number[] = [];
    let summary: FilterSummary | undefined;
    let summaryBig: FilterSummary | undefined;
    for (let r = 0; r < rounds; r++) {
      const p = await plainPass(file);
      if (p.records !== records) throw new Error(`plain pass read ${p.records} records, expected ${records}`);
      plain.push(p.perS);
      log(`  round ${r + 1}: plain ${int(p.perS)} records/s`);
      for (const [label, cache, into, limit] of [['default ledger cache', undefined, filtered, defaultLimit], [`ledger cache ${int(bigCache)} subjects`, bigCache, filteredBig, records]] as const) {
        // A fresh Custodian per pass: every pass starts cold, as a batch job does.
        const c = await open(cache);
        try {
          const f = await filterPass(file, c, log, limit);
          if (f.summary.read !== Math.min(records, Math.ceil(limit / WINDOW) * WINDOW)) throw new Error(`filter read ${f.summary.read} records, expected ${Math.min(records, limit)}`);
          into.push(f.perS);
          if (cache === undefined) summary = f.summary;
          else summaryBig = f.summary;
          log(`  round ${r + 1}: filter, ${label}: ${int(f.perS)} records/s (kept ${int(f.summary.kept)}, ${int(f.summary.lookups)} lookups of ${int(f.summary.subjectsLookedUp)} subjects, ${int(f.summary.lookupMs)} ms in lookups)`);
        } finally {
          await c.close();
        }
      }
    }

    const sample = await sampleSubjects(file, sampleSize);
    log(`filter: one lookup per record on ${int(sample.length)} records`);
    const check = await perRecordCheck(store, sample);
    const raw = perRecordRawQuery(store, sample);
    const cli = withCli ? await cliPass(file, store, records, bigCache) : NaN;

    const plainPerS = median(plain);
    const filterPerS = median(filtered);
    const filterBigPerS = median(filteredBig);
    const result: Record<string, number> = {
      records,
      subjects,
      plain_records_per_s: Math.round(plainPerS),
      filter_records_per_s: Math.round(filterPerS),
      ratio: Number((filterPerS / plainPerS).toFixed(3)),
      default_cache_records_measured: defaultLimit,
      filter_big_cache_records_per_s: Math.round(filterBigPerS),
      ratio_big_cache: Number((filterBigPerS / plainPerS).toFixed(3)),
      check_per_record_per_s: Math.round(check),
      speedup_vs_check: Number((filterPerS / check).toFixed(2)),
      raw_query_per_record_per_s: Math.round(raw),
      speedup_vs_raw_query: Number((filterPerS / raw).toFixed(2)),
      kept: summary?.kept ?? NaN,
      lookups: summary?.lookups ?? NaN,
      subjects_looked_up: summary?.subjectsLookedUp ?? NaN,
      subjects_looked_up_big_cache: summaryBig?.subjectsLookedUp ?? NaN,
      ...(withCli ? { cli_records_per_s: Math.round(cli) } : {}),
    };
    if (verbose) {
      console.log('');
      console.log(
        table([
          ['pass', 'records/s', 'vs plain', 'time for all records'],
          ['plain parse + write', int(plainPerS), '1.00', `${fixed(records / plainPerS, 1)} s`],
          [`filter, ledgerLookup, default ledger cache${defaultLimit < records ? ` (first ${int(defaultLimit)})` : ''}`, int(filterPerS), fixed(filterPerS / plainPerS), `${fixed(records / filterPerS, 1)} s`],
          [`filter, ledgerLookup, ledger cache ${int(bigCache)}`, int(filterBigPerS), fixed(filterBigPerS / plainPerS), `${fixed(records / filterBigPerS, 1)} s`],
          ['ledger.check per record (cold cache, sampled)', int(check), fixed(check / plainPerS), `${fixed(records / check, 1)} s (extrapolated)`],
          ['raw SQLite point query per record (sampled)', int(raw), fixed(raw / plainPerS), `${fixed(records / raw, 1)} s (extrapolated)`],
          ...(withCli ? [[`custodian filter CLI, --cache-subjects ${bigCache}`, int(cli), fixed(cli / plainPerS), `${fixed(records / cli, 1)} s`]] : []),
        ]),
      );
      const verdict = (x: number): string => `${fixed(x)} ${x >= GOAL_RATIO ? 'met' : 'NOT met'}`;
      console.log(`\ngoal: filter ≥ ${GOAL_RATIO} × plain → default ledger cache ${verdict(filterPerS / plainPerS)}; ledger cache sized to the subjects ${verdict(filterBigPerS / plainPerS)}`);
    }
    return result;
  } finally {
    await store.cleanup();
  }
}

/** For bench/run.ts: prints the table and the RESULT line. */
export async function run(): Promise<void> {
  const r = await filterBench();
  const keys = ['ratio', 'ratio_big_cache', 'plain_records_per_s', 'filter_records_per_s', 'filter_big_cache_records_per_s', 'speedup_vs_check', 'speedup_vs_raw_query', 'cli_records_per_s'];
  console.log(`\nRESULT propagation-filter ${keys.filter((k) => r[k] !== undefined).map((k) => `${k}=${r[k]}`).join(' ')}`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  run().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
