/**
 * `npm run bench -- consent`: the consent ledger against the physical limits of this machine, on SQLite
 * and on PostgreSQL, each on a fresh temporary store.
 *
 * (a) write: `ledger.record` of 1,000-event batches vs the raw driver inserting the same rows (same 18
 *     columns and types as consent_events) into a bare table, one transaction per 1,000 rows. A third
 *     writer, the raw driver into Custodian's own schema (consent_events with its indexes + the
 *     consent_state upsert), splits the gap into what the schema costs and what our code costs. The
 *     writers run interleaved batch by batch, so machine noise hits all alike.
 * (b) check: in-process `ledger.check` on a warm projection vs a plain Map lookup in the same loop, with
 *     the default configuration (change feed on, cache entries trusted up to 60 s) and with a TTL longer than the run (cache hits only).
 * (c) http: `GET /v1/consent/check` vs a Fastify hello-world route in the same process, with autocannon
 *     in a child process so the load generator does not share the server's event loop; the targets are
 *     loaded in interleaved 1 s slices.
 *
 * Env: BENCH_SECONDS (write and check phases, default 3), BENCH_HTTP_SECONDS (per target, default 4),
 * BENCH_HTTP_WARMUP_SECONDS (default 1), BENCH_CONNECTIONS (default 32), BENCH_SUBJECTS (default 10000),
 * BENCH_STORES (default "sqlite,postgres").
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import SQLite from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import { createCustodian, loadConfig, type Custodian } from '../src/app/index.js';
import { addMonths, toIso, uuidv7 } from '../src/core/index.js';
import { ConsentLedger, type ConsentEventInput, type Decision } from '../src/ledger/index.js';
import { buildServer } from '../src/server/index.js';
import { openStore } from '../src/store/index.js';
import { envNumber, fixed, int, median, table } from './support/format.js';
import { runLoad, type LoadResult } from './support/load.js';
import { createTempStore, type BenchStoreKind, type TempStore } from './support/temp-store.js';

const SECONDS = envNumber('BENCH_SECONDS', 3);
const HTTP_SECONDS = envNumber('BENCH_HTTP_SECONDS', 4);
const HTTP_WARMUP_SECONDS = envNumber('BENCH_HTTP_WARMUP_SECONDS', 1);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 32);
const SUBJECTS = envNumber('BENCH_SUBJECTS', 10_000);
const STORES = (process.env.BENCH_STORES ?? 'sqlite,postgres').split(',').map((s) => s.trim()) as BenchStoreKind[];

const BATCH = 1000;
const WARMUP_BATCHES = 2;
/** A projection cache TTL longer than any run: every check after the warm-up is a cache hit. */
const LONG_TTL_MS = 3_600_000;
const GOALS = { writeRatio: 0.35, checksPerS: 2_000_000, httpRatio: 0.5 } as const;

/** Purposes of the default set, all consent-based with a 13-month default expiry. */
const PURPOSES = ['analytics.reporting', 'marketing.advertising', 'personalize'] as const;
const CONSENT_MONTHS = 13;
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
];

// ---------------------------------------------------------------------------------------------------------
// Events

const rand = (n: number): number => Math.floor(Math.random() * n);

function randomDecision(): Decision {
  const x = Math.random();
  return x < 0.6 ? 'granted' : x < 0.9 ? 'denied' : 'withdrawn';
}

/** One banner batch as an application sends it: random subjects, mixed purposes and decisions, EU, evidence. */
function eventBatch(): ConsentEventInput[] {
  const clientTime = toIso(Date.now() - 250);
  return Array.from({ length: BATCH }, () => ({
    subjectId: `u-${String(rand(1_000_000)).padStart(6, '0')}`,
    purpose: PURPOSES[rand(PURPOSES.length)]!,
    decision: randomDecision(),
    jurisdiction: 'EU',
    noticeVersion: '2026-01',
    method: 'banner' as const,
    clientTime,
    evidence: { ip: `${10 + rand(200)}.${rand(256)}.${rand(256)}.${rand(256)}`, userAgent: USER_AGENTS[rand(USER_AGENTS.length)]! },
  }));
}

/** consent_events columns, in table order. */
const COLUMNS = [
  'id', 'subject_id', 'purpose', 'decision', 'legal_basis', 'jurisdiction', 'notice_version', 'method', 'recorded_at',
  'client_time', 'expires_at', 'gpc', 'evidence', 'evidence_format', 'idempotency_key', 'request_hash', 'batch_id', 'actor',
] as const;
/** PostgreSQL array types of {@link COLUMNS}, for unnest. */
const PG_TYPES = ['uuid', 'varchar', 'varchar', 'varchar', 'varchar', 'varchar', 'varchar', 'varchar', 'timestamptz', 'timestamptz', 'timestamptz', 'smallint', 'text', 'varchar', 'varchar', 'varchar', 'uuid', 'varchar'];
/** consent_state columns, as positions in an event row. */
const STATE_COLUMNS = ['subject_id', 'purpose', 'event_id', 'decision', 'legal_basis', 'method', 'jurisdiction', 'gpc', 'recorded_at', 'expires_at'] as const;
const STATE_FROM_EVENT = [1, 2, 0, 3, 4, 7, 5, 11, 8, 10] as const;
const STATE_UPDATE = STATE_COLUMNS.slice(2).map((c) => `${c} = excluded.${c}`).join(', ');

type RawRow = (string | number | null)[];

/**
 * The rows the ledger would store for `batch` (ids, times, default expiry, minimised evidence), built
 * outside the timed section: the raw writers pay only for the driver and the engine.
 */
function rawRows(batch: readonly ConsentEventInput[]): RawRow[] {
  const now = Date.now();
  const recordedAt = toIso(now);
  const expiresAt = toIso(addMonths(now, CONSENT_MONTHS));
  const batchId = uuidv7(now);
  return batch.map((e) => {
    const ip = e.evidence!.ip!.split('.').slice(0, 3).concat('0').join('.');
    return [
      uuidv7(now), e.subjectId, e.purpose, e.decision, 'consent', e.jurisdiction ?? null, e.noticeVersion ?? null, e.method ?? 'api',
      recordedAt, e.clientTime ?? null, e.decision === 'granted' ? expiresAt : null, 0,
      JSON.stringify({ ip, userAgent: e.evidence!.userAgent }), 'json', null, null, batchId, 'bench',
    ];
  });
}

// ---------------------------------------------------------------------------------------------------------
// Raw drivers

interface RawWriter {
  readonly label: string;
  insert(rows: readonly RawRow[]): Promise<void>;
  close(): Promise<void>;
}

const SQLITE_BARE_TABLE = `create table raw_events (
  id text primary key, subject_id varchar(256) not null, purpose varchar(128) not null, decision varchar(16) not null,
  legal_basis varchar(32) not null, jurisdiction varchar(16), notice_version varchar(128), method varchar(32) not null,
  recorded_at text not null, client_time text, expires_at text, gpc integer not null default 0, evidence text,
  evidence_format varchar(16) not null default 'json', idempotency_key varchar(256), request_hash varchar(64),
  batch_id text not null, actor varchar(128) not null)`;

const PG_BARE_TABLE = `create table raw_events (
  id uuid primary key, subject_id varchar(256) not null, purpose varchar(128) not null, decision varchar(16) not null,
  legal_basis varchar(32) not null, jurisdiction varchar(16), notice_version varchar(128), method varchar(32) not null,
  recorded_at timestamptz(3) not null, client_time timestamptz(3), expires_at timestamptz(3), gpc smallint not null default 0,
  evidence text, evidence_format varchar(16) not null default 'json', idempotency_key varchar(256), request_hash varchar(64),
  batch_id uuid not null, actor varchar(128) not null)`;

/** Opens an SQLite file with the pragmas of src/store/sqlite/sqlite-store.ts. */
function openSqlite(path: string): SQLite.Database {
  const db = new SQLite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return db;
}

/**
 * better-sqlite3, prepared statements, one BEGIN IMMEDIATE transaction per batch (as the store). `schema`
 * false: a bare table (same columns, primary key only). True: Custodian's migrated schema, each event
 * inserted into consent_events and upserted into consent_state, as the ledger does.
 */
async function sqliteRawWriter(path: string, schema: boolean): Promise<RawWriter> {
  if (schema) {
    const store = openStore(`sqlite:${path}`);
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
  }
  const db = openSqlite(path);
  if (!schema) db.exec(SQLITE_BARE_TABLE);
  const table = schema ? 'consent_events' : 'raw_events';
  const insert = db.prepare(`insert into ${table} (${COLUMNS.join(', ')}) values (${COLUMNS.map(() => '?').join(', ')})`);
  const upsert = schema
    ? db.prepare(
        `insert into consent_state (${STATE_COLUMNS.join(', ')}) values (${STATE_COLUMNS.map(() => '?').join(', ')})
         on conflict (subject_id, purpose) do update set ${STATE_UPDATE} where consent_state.event_id < excluded.event_id`,
      )
    : null;
  const tx = db.transaction((rows: readonly RawRow[]) => {
    for (const row of rows) {
      insert.run(row);
      upsert?.run(STATE_FROM_EVENT.map((i) => row[i]));
    }
  });
  return {
    label: schema
      ? 'better-sqlite3, prepared per-row insert into consent_events + upsert into consent_state, 1 tx / 1,000 rows'
      : 'better-sqlite3, prepared per-row insert, 1 tx / 1,000 rows, bare table (primary key only)',
    insert: async (rows) => {
      tx.immediate(rows);
    },
    close: async () => {
      db.close();
    },
  };
}

/**
 * pg on its own connection: BEGIN; one prepared `INSERT … SELECT FROM unnest($1..$18)`; COMMIT. `schema`
 * true: into Custodian's migrated schema, plus the consent_state upsert from the same arrays.
 */
async function postgresRawWriter(url: string, schema: boolean): Promise<RawWriter> {
  if (schema) {
    const store = openStore(url);
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  if (!schema) await client.query(PG_BARE_TABLE);
  const table = schema ? 'consent_events' : 'raw_events';
  const arrays = PG_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ');
  const insert = `insert into ${table} (${COLUMNS.join(', ')}) select * from unnest(${arrays})`;
  const upsert = `insert into consent_state (${STATE_COLUMNS.join(', ')})
    select distinct on (subject_id, purpose) subject_id, purpose, id, decision, legal_basis, method, jurisdiction, gpc, recorded_at, expires_at
    from unnest(${arrays}) as e(${COLUMNS.join(', ')}) order by subject_id, purpose, id desc
    on conflict (subject_id, purpose) do update set ${STATE_UPDATE} where consent_state.event_id < excluded.event_id`;
  return {
    label: schema
      ? 'pg, 1 tx / 1,000 rows: prepared unnest insert into consent_events + unnest upsert into consent_state'
      : 'pg, 1 tx / 1,000 rows: one prepared INSERT … SELECT unnest($1..$18), bare table (primary key only)',
    insert: async (rows) => {
      const columns = COLUMNS.map((_, c) => rows.map((r) => r[c]));
      await client.query('begin');
      try {
        await client.query({ name: 'insert_events', text: insert, values: columns });
        if (schema) await client.query({ name: 'upsert_state', text: upsert, values: columns });
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw err;
      }
    },
    close: () => client.end(),
  };
}

// ---------------------------------------------------------------------------------------------------------
// (a) write throughput

interface Rate {
  readonly perS: number;
  readonly batchMs: number;
}

interface WriteFigures {
  readonly events: number;
  readonly ours: Rate;
  readonly floor: Rate;
  readonly raw: Rate;
  readonly ratio: number;
  readonly floorLabel: string;
  readonly rawLabel: string;
}

/**
 * Interleaves ours, the schema floor and the bare raw limit batch by batch for 3 × SECONDS, rotating
 * which goes first, so that drift in background load and checkpoints hits all three alike.
 */
async function measureWrites(custodian: Custodian, floor: RawWriter, raw: RawWriter): Promise<WriteFigures> {
  const inputs = Array.from({ length: 8 }, eventBatch);
  const times: [number[], number[], number[]] = [[], [], []];
  const deadline = performance.now() + 3 * SECONDS * 1000;
  for (let round = 0; ; round++) {
    const batch = inputs[round % inputs.length]!;
    // Raw rows are built untimed: the raw writers pay only for the driver and the engine.
    const floorRows = rawRows(batch);
    const bareRows = rawRows(batch);
    const writers = [
      async () => void (await custodian.ledger.record(batch, { actor: 'bench' })),
      () => floor.insert(floorRows),
      () => raw.insert(bareRows),
    ];
    const ms = [0, 0, 0];
    for (let k = 0; k < 3; k++) {
      const w = (round + k) % 3;
      const t = performance.now();
      await writers[w]!();
      ms[w] = performance.now() - t;
      // SQLite calls resolve without a turn of the event loop; yield so that signals (Ctrl-C) are handled.
      await yieldToEventLoop();
    }
    if (round >= WARMUP_BATCHES) {
      for (let w = 0; w < 3; w++) times[w as 0 | 1 | 2].push(ms[w]!);
      if (performance.now() >= deadline && times[0].length >= 3) break;
    }
  }
  const rate = (ms: number[]): Rate => ({ perS: (ms.length * BATCH) / (ms.reduce((a, b) => a + b, 0) / 1000), batchMs: median(ms) });
  const [ours, fl, rw] = [rate(times[0]), rate(times[1]), rate(times[2])];
  return { events: times[0].length * BATCH, ours, floor: fl, raw: rw, ratio: ours.perS / rw.perS, floorLabel: floor.label, rawLabel: raw.label };
}

// ---------------------------------------------------------------------------------------------------------
// (b) in-process checks

interface Pairs {
  readonly subjects: string[];
  readonly purposes: string[];
}

interface CheckFigures {
  /** Default configuration: change feed on, entries trusted up to cacheMaxAgeMs (60 s). */
  readonly oursPerS: number;
  /** Cache TTL longer than the run: cache hits only. */
  readonly hitPerS: number;
  readonly mapPerS: number;
  readonly mapAwaitPerS: number;
  readonly allowedShare: number;
}

/**
 * Records one decision per purpose for SUBJECTS subjects (two thirds grants), and returns every
 * (subject, purpose) pair with the decision, for the Map baseline.
 */
async function seedProjection(custodian: Custodian): Promise<{ pairs: Pairs; decisions: Map<string, Map<string, Decision>> }> {
  const subjects = Array.from({ length: SUBJECTS }, (_, i) => `c-${String(i).padStart(6, '0')}`);
  const decisions = new Map<string, Map<string, Decision>>();
  let batch: ConsentEventInput[] = [];
  for (const [k, purpose] of PURPOSES.entries()) {
    for (const [i, subjectId] of subjects.entries()) {
      const decision: Decision = (i + k) % 3 === 0 ? 'denied' : 'granted';
      batch.push({ subjectId, purpose, decision, jurisdiction: 'EU', method: 'banner', evidence: { ip: '192.0.2.7', userAgent: USER_AGENTS[0]! } });
      let m = decisions.get(subjectId);
      if (m === undefined) decisions.set(subjectId, (m = new Map<string, Decision>()));
      m.set(purpose, decision);
      if (batch.length === BATCH) {
        await custodian.ledger.record(batch, { actor: 'bench' });
        batch = [];
      }
    }
  }
  if (batch.length > 0) await custodian.ledger.record(batch, { actor: 'bench' });
  // Pair i is (subject i mod N, purpose i mod 3): all 3N pairs, neighbours differ in both.
  const n = subjects.length * PURPOSES.length;
  const pairs: Pairs = { subjects: [], purposes: [] };
  for (let i = 0; i < n; i++) {
    pairs.subjects.push(subjects[i % subjects.length]!);
    pairs.purposes.push(PURPOSES[i % PURPOSES.length]!);
  }
  return { pairs, decisions };
}

const CHUNK = 10_000;

/** Calls `step` on pairs 0,1,2,… (wrapping) for SECONDS, awaiting each call; returns calls/s and the allowed share. */
async function timedLoop(pairs: Pairs, step: (subjectId: string, purpose: string) => Promise<boolean>): Promise<{ perS: number; share: number }> {
  const { subjects, purposes } = pairs;
  const n = subjects.length;
  let i = 0;
  let calls = 0;
  let yes = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  do {
    for (let k = 0; k < CHUNK; k++) {
      if (await step(subjects[i]!, purposes[i]!)) yes++;
      if (++i === n) i = 0;
    }
    calls += CHUNK;
    await yieldToEventLoop(); // ~10 µs per 10,000 calls; lets signals and pool timers run
  } while (performance.now() < deadline);
  return { perS: calls / ((performance.now() - start) / 1000), share: yes / calls };
}

/** The same loop shape without await: the plain Map lookup, the raw limit. */
function timedLoopSync(pairs: Pairs, step: (subjectId: string, purpose: string) => boolean): { perS: number; share: number } {
  const { subjects, purposes } = pairs;
  const n = subjects.length;
  let i = 0;
  let calls = 0;
  let yes = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  do {
    for (let k = 0; k < CHUNK; k++) {
      if (step(subjects[i]!, purposes[i]!)) yes++;
      if (++i === n) i = 0;
    }
    calls += CHUNK;
  } while (performance.now() < deadline);
  return { perS: calls / ((performance.now() - start) / 1000), share: yes / calls };
}

/** Reads every pair once, one store query per chunk of subjects, so the loop starts on a warm cache. */
async function warm(ledger: ConsentLedger, pairs: Pairs): Promise<void> {
  for (let i = 0; i < pairs.subjects.length; i += 10_000) {
    await ledger.checkMany(pairs.subjects.slice(i, i + 10_000).map((subjectId, k) => ({ subjectId, purpose: pairs.purposes[i + k]! })));
  }
}

async function measureChecks(custodian: Custodian, hitLedger: ConsentLedger, pairs: Pairs, decisions: Map<string, Map<string, Decision>>): Promise<CheckFigures> {
  const { ledger } = custodian;
  await warm(ledger, pairs);
  const ours = await timedLoop(pairs, async (s, p) => (await ledger.check(s, p)).allowed);
  await warm(hitLedger, pairs);
  const hit = await timedLoop(pairs, async (s, p) => (await hitLedger.check(s, p)).allowed);
  const lookup = (s: string, p: string): boolean => decisions.get(s)?.get(p) === 'granted';
  const map = timedLoopSync(pairs, lookup);
  const mapAwait = await timedLoop(pairs, async (s, p) => lookup(s, p));
  for (const share of [ours.share, hit.share]) {
    if (Math.abs(share - map.share) > 0.01) throw new Error(`check answers disagree with the recorded decisions: allowed ${share} vs ${map.share}`);
  }
  return { oursPerS: ours.perS, hitPerS: hit.perS, mapPerS: map.perS, mapAwaitPerS: mapAwait.perS, allowedShare: ours.share };
}

// ---------------------------------------------------------------------------------------------------------
// (c) HTTP

interface HttpFigures {
  readonly ours: LoadResult;
  readonly hit: LoadResult;
  readonly hello: LoadResult;
  readonly ratio: number;
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/**
 * The hello world is a separate bare Fastify instance in the same process, so it runs none of the
 * API's global hooks (auth, metrics, logging): it is the framework's floor on this machine. A third
 * server, the same API over a ledger whose cache never expires during the run, shows what the cache
 * TTL costs. Only one server is under load at a time.
 */
async function measureHttp(custodian: Custodian, hitLedger: ConsentLedger, pairs: Pairs): Promise<HttpFigures> {
  const hello = Fastify({ logger: false });
  hello.get('/hello', async () => ({ hello: 'world' }));
  const key = await custodian.apiKeys.create({ name: 'bench', scopes: ['consent:read'], createdBy: 'bench' });
  const api = await buildServer(custodian, { logLevel: false });
  const hitApi = await buildServer({ ...custodian, ledger: hitLedger }, { logLevel: false });
  try {
    const [helloUrl, apiUrl, hitUrl] = [await listen(hello), await listen(api), await listen(hitApi)];
    const paths = pairs.subjects.map((s, i) => `/v1/consent/check?subjectId=${encodeURIComponent(s)}&purpose=${encodeURIComponent(pairs.purposes[i]!)}`);
    const headers = { authorization: `Bearer ${key.secret}` };
    for (const url of [apiUrl, hitUrl]) {
      const probe = await fetch(url + paths[0]!, { headers });
      if (probe.status !== 200) throw new Error(`GET ${paths[0]!} answered ${probe.status}: ${await probe.text()}`);
    }
    const sliceS = 1;
    const [h, ours, hit] = await runLoad({
      targets: [
        { name: 'hello', url: helloUrl, paths: ['/hello'], headers: {} },
        { name: 'check', url: apiUrl, paths, headers },
        { name: 'check (long TTL)', url: hitUrl, paths, headers },
      ],
      connections: CONNECTIONS,
      warmupS: HTTP_WARMUP_SECONDS,
      sliceS,
      rounds: Math.max(1, Math.round(HTTP_SECONDS / sliceS)),
    });
    for (const r of [h!, ours!, hit!]) {
      if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) console.warn(`warning: ${r.name} load had ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
    }
    return { ours: ours!, hit: hit!, hello: h!, ratio: ours!.rps / h!.rps };
  } finally {
    await Promise.allSettled([api.close(), hitApi.close(), hello.close()]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// One store

interface StoreFigures {
  readonly kind: BenchStoreKind;
  readonly write: WriteFigures;
  readonly check: CheckFigures;
  readonly http: HttpFigures;
}

async function benchStore(kind: BenchStoreKind): Promise<StoreFigures> {
  const temps: TempStore[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    const main = await createTempStore(kind);
    temps.push(main);
    const config = loadConfig({}, { dbUrl: main.url, dataDir: main.dir, logLevel: 'silent' });
    const custodian = await createCustodian(config);
    closers.push(() => custodian.close());
    let floor: RawWriter;
    let raw: RawWriter;
    if (kind === 'sqlite') {
      floor = await sqliteRawWriter(join(main.dir, 'floor.db'), true);
      closers.push(() => floor.close());
      raw = await sqliteRawWriter(join(main.dir, 'raw.db'), false);
    } else {
      const floorStore = await createTempStore('postgres');
      temps.push(floorStore);
      floor = await postgresRawWriter(floorStore.url, true);
      closers.push(() => floor.close());
      raw = await postgresRawWriter(main.url, false);
    }
    closers.push(() => raw.close());

    log(`${kind}: write phase (${SECONDS * 3}s, 3 writers interleaved)`);
    const write = await measureWrites(custodian, floor, raw);
    log(`${kind}: seeding ${int(SUBJECTS)} subjects × ${PURPOSES.length} purposes`);
    const { pairs, decisions } = await seedProjection(custodian);
    const hitLedger = new ConsentLedger(
      { store: custodian.store, purposes: custodian.purposes, clock: custodian.clock },
      { ...custodian.config.ledger, cacheTtlMs: LONG_TTL_MS },
    );
    log(`${kind}: check phase (4 × ${SECONDS}s)`);
    const check = await measureChecks(custodian, hitLedger, pairs, decisions);
    log(`${kind}: http phase (3 servers × ${HTTP_WARMUP_SECONDS + HTTP_SECONDS}s, ${CONNECTIONS} connections)`);
    const http = await measureHttp(custodian, hitLedger, pairs);
    return { kind, write, check, http };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const t of temps) await t.cleanup();
  }
}

function log(message: string): void {
  console.error(`[bench consent] ${message}`);
}

function verdict(value: number, goal: number): string {
  return value >= goal ? 'met' : 'MISSED';
}

function report(f: StoreFigures): string {
  const { write: w, check: c, http: h } = f;
  const title = f.kind === 'sqlite' ? 'SQLite (file, WAL, synchronous=FULL)' : 'PostgreSQL 127.0.0.1 (fresh database)';
  const spread = (r: LoadResult): string => `${int(Math.min(...r.roundRps))}–${int(Math.max(...r.roundRps))}`;
  const rows = [
    ['measure', 'ours', 'limit', 'ratio', 'goal', ''],
    ['(a) write ledger.record, 1,000-event batches', `${int(w.ours.perS)} ev/s`, `${int(w.raw.perS)} ev/s`, fixed(w.ratio, 3), `ratio ≥ ${GOALS.writeRatio}`, verdict(w.ratio, GOALS.writeRatio)],
    ['    median batch (ours / raw)', `${fixed(w.ours.batchMs, 1)} ms`, `${fixed(w.raw.batchMs, 1)} ms`, '', '', ''],
    ['    split: raw driver into our schema', '', `${int(w.floor.perS)} ev/s`, fixed(w.floor.perS / w.raw.perS, 3), 'schema/bare', ''],
    ['    split: ours vs raw into our schema', `${int(w.ours.perS)} ev/s`, `${int(w.floor.perS)} ev/s`, fixed(w.ours.perS / w.floor.perS, 3), 'code/schema', ''],
    ['(b) ledger.check, default config (change feed)', `${int(c.oursPerS)} /s`, `${int(c.mapPerS)} /s`, fixed(c.oursPerS / c.mapPerS, 4), `≥ ${int(GOALS.checksPerS)} /s`, verdict(c.oursPerS, GOALS.checksPerS)],
    ['    cache hits only (TTL 1 h)', `${int(c.hitPerS)} /s`, `${int(c.mapPerS)} /s`, fixed(c.hitPerS / c.mapPerS, 4), `≥ ${int(GOALS.checksPerS)} /s`, verdict(c.hitPerS, GOALS.checksPerS)],
    ['    floor of an awaited call (Map.get in async fn)', '', `${int(c.mapAwaitPerS)} /s`, '', '', ''],
    ['(c) GET /v1/consent/check vs GET /hello', `${int(h.ours.rps)} req/s`, `${int(h.hello.rps)} req/s`, fixed(h.ratio, 3), `ratio ≥ ${GOALS.httpRatio}`, verdict(h.ratio, GOALS.httpRatio)],
    ['    p50 / p99 latency', `${fixed(h.ours.p50Ms)} / ${fixed(h.ours.p99Ms)} ms`, `${fixed(h.hello.p50Ms)} / ${fixed(h.hello.p99Ms)} ms`, '', '', ''],
    ['    per-slice req/s (min–max)', spread(h.ours), spread(h.hello), '', '', ''],
    ['    same API, cache hits only (TTL 1 h)', `${int(h.hit.rps)} req/s`, `${int(h.hello.rps)} req/s`, fixed(h.hit.rps / h.hello.rps, 3), `ratio ≥ ${GOALS.httpRatio}`, verdict(h.hit.rps / h.hello.rps, GOALS.httpRatio)],
    ['    p50 / p99 latency', `${fixed(h.hit.p50Ms)} / ${fixed(h.hit.p99Ms)} ms`, '', '', '', ''],
  ];
  return [
    `== consent · ${title}`,
    table(rows),
    `   (a) ${int(w.events)} events per writer, interleaved batch by batch`,
    `       limit = ${w.rawLabel}`,
    `       split = ${w.floorLabel}`,
    `   (b) ${int(SUBJECTS * PURPOSES.length)} (subject, purpose) pairs, ${fixed(c.allowedShare * 100, 1)} % allowed; limit = Map.get in the same loop`,
    `   (c) autocannon in a child process, ${CONNECTIONS} connections, ${int(h.ours.seconds)} s per server in 1 s slices interleaved after ${HTTP_WARMUP_SECONDS} s warm-up; ${int(SUBJECTS * PURPOSES.length)} distinct pairs round-robin`,
  ].join('\n');
}

/** Runs the benchmark on each store in turn, prints a table per store and the RESULT line. */
export async function run(): Promise<void> {
  const started = performance.now();
  for (const kind of STORES) if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`BENCH_STORES: unknown store ${String(kind)}`);
  const load0 = loadavg()[0]!;
  const results = new Map<BenchStoreKind, StoreFigures>();
  for (const kind of STORES) {
    const f = await benchStore(kind);
    results.set(kind, f);
    console.log(`\n${report(f)}`);
  }
  console.log(`\nmachine: load average ${fixed(load0)} at start, ${fixed(loadavg()[0]!)} at end (2 cores; other processes add noise)`);
  const s = results.get('sqlite');
  const p = results.get('postgres');
  // Headline check and HTTP figures come from the default store (SQLite), else from the one that ran.
  const main = (s ?? p)!;
  const num = (n: number | undefined): string => (n === undefined ? 'n/a' : String(Math.round(n)));
  const fields: [string, string][] = [
    ['sqlite_write_ratio', s ? fixed(s.write.ratio, 3) : 'n/a'],
    ['pg_write_ratio', p ? fixed(p.write.ratio, 3) : 'n/a'],
    ['sqlite_events_per_s', num(s?.write.ours.perS)],
    ['pg_events_per_s', num(p?.write.ours.perS)],
    ['check_per_s', num(main.check.oursPerS)],
    ['http_ratio', fixed(main.http.ratio, 3)],
    ['http_rps', num(main.http.ours.rps)],
    ['http_p99_ms', fixed(main.http.ours.p99Ms, 2)],
    ['sqlite_raw_events_per_s', num(s?.write.raw.perS)],
    ['pg_raw_events_per_s', num(p?.write.raw.perS)],
    ['sqlite_schema_events_per_s', num(s?.write.floor.perS)],
    ['pg_schema_events_per_s', num(p?.write.floor.perS)],
    ['check_hit_per_s', num(main.check.hitPerS)],
    ['check_map_per_s', num(main.check.mapPerS)],
    ['hello_rps', num(main.http.hello.rps)],
    ['hello_p99_ms', fixed(main.http.hello.p99Ms, 2)],
    ['http_hit_ratio', fixed(main.http.hit.rps / main.http.hello.rps, 3)],
  ];
  if (s && p) {
    fields.push(
      ['pg_check_per_s', num(p.check.oursPerS)],
      ['pg_http_ratio', fixed(p.http.ratio, 3)],
      ['pg_http_rps', num(p.http.ours.rps)],
      ['pg_http_p99_ms', fixed(p.http.ours.p99Ms, 2)],
    );
  }
  fields.push(['check_http_store', main.kind], ['load_avg', fixed(load0)], ['seconds', fixed((performance.now() - started) / 1000, 1)]);
  console.log(`\nRESULT consent ${fields.map(([k, v]) => `${k}=${v}`).join(' ')}`);
}
