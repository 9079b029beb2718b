/**
 * `npm run bench -- audit`: the tamper-evident audit log against the physical limits of this machine, each part
 * on a fresh temporary store.
 *
 * (a) append: BENCH_AUDIT_WRITERS (default 8) concurrent async writers, each committing one entry per transaction
 *     (`store.transaction(trx => audit.record(trx, [entry]))`, realistic actors, actions, targets and details),
 *     while the background sequencer (`audit.startSequencer`, BENCH_AUDIT_SEQUENCER_MS interval, signing heads as
 *     configured: every 1,000 entries) integrates them. Each slice ends when the queue is drained, so the figure
 *     is entries *sequenced* per second. The limit: the raw driver (better-sqlite3 / pg) inserting the same rows
 *     (same columns as audit_entries, values computed untimed) into a bare table (primary key only), one
 *     transaction per row, from as many concurrent writers. A third writer, the raw driver into Custodian's own
 *     schema (audit_entries with its indexes + log_queue, no sequencer), splits the gap into what the schema costs
 *     and what our code costs. Interleaved in slices, order rotating. On SQLite and, when reachable, PostgreSQL.
 * (b) verify: `audit.verify('audit')` over a log of BENCH_AUDIT_VERIFY_ENTRIES (default 200,000) entries with a
 *     signed head every 20,000, vs raw SHA-256 (`crypto.hash`) over the same canonical leaf bytes (auditLeaf of
 *     each stored row, built untimed). For reference: the hashing floor of a full recomputation (2n − 1 RFC 9162
 *     leaf and node hashes) and better-sqlite3 reading the rows and rebuilding their canonical bytes.
 * (c) proofs: the log grown to BENCH_AUDIT_ENTRIES (default 1,000,000) entries (10,000 per transaction), then
 *     `audit.proofAt('audit', seq)` at BENCH_AUDIT_PROOFS random positions (or as many as BENCH_AUDIT_PROOF_SECONDS
 *     allow, at least 20), sequentially: p50 / p99. The floor: the pure `inclusionProof` with an in-memory reader
 *     over the same tree. A sample of the bundles is checked with `verifyBundle` and against the floor's proofs.
 *
 * Env: BENCH_SECONDS (measured seconds per contender in (a), default 3), BENCH_AUDIT_WRITERS (default 8),
 * BENCH_AUDIT_SEQUENCER_MS (default 50), BENCH_AUDIT_VERIFY_ENTRIES (default 200000), BENCH_AUDIT_ENTRIES
 * (default 1000000), BENCH_AUDIT_PROOFS (default 10000), BENCH_AUDIT_PROOF_SECONDS (default 20), BENCH_STORES
 * (stores of (a), default "sqlite,postgres"; (b) and (c) run on SQLite).
 */
import { hash } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { createCustodian, loadConfig, type Custodian } from '../src/app/index.js';
import { auditLeaf, canonicalJson } from '../src/audit/index.js';
import { toIso, uuidv7, type AuditEntryInput } from '../src/core/index.js';
import { openStore } from '../src/store/index.js';
import { HASH_SIZE, inclusionProof, leafHash, nodeHash, verifyBundle, type NodeReader } from '../src/verify/index.js';
import { envNumber, fixed, int, median, table } from './support/format.js';
import { createTempStore, type BenchStoreKind, type TempStore } from './support/temp-store.js';

const SECONDS = envNumber('BENCH_SECONDS', 3);
const WRITERS = Math.round(envNumber('BENCH_AUDIT_WRITERS', 8));
const SEQUENCER_MS = envNumber('BENCH_AUDIT_SEQUENCER_MS', 50);
const VERIFY_ENTRIES = Math.round(envNumber('BENCH_AUDIT_VERIFY_ENTRIES', 200_000));
const PROOF_ENTRIES = Math.max(VERIFY_ENTRIES, Math.round(envNumber('BENCH_AUDIT_ENTRIES', 1_000_000)));
const PROOFS = Math.round(envNumber('BENCH_AUDIT_PROOFS', 10_000));
const PROOF_SECONDS = envNumber('BENCH_AUDIT_PROOF_SECONDS', 20);
const STORES = (process.env.BENCH_STORES ?? 'sqlite,postgres').split(',').map((s) => s.trim()) as BenchStoreKind[];

/** Append slices (ms); the first round of each contender is a warm-up. */
const SLICE_MS = 500;
const WARMUP_ROUNDS = 1;
/**
 * Entries per build transaction, and per `record` call within it: `record` inserts all its rows in one statement
 * of 11 bound values per row, and SQLite refuses more than 32,766 (2,979 entries); PostgreSQL 65,535 (5,958).
 */
const BUILD_TX_ENTRIES = 10_000;
const RECORD_CALL_ENTRIES = 2_000;
const HEAD_EVERY = 20_000;
const VERIFY_RUNS = 2;
const RAW_HASH_RUNS = 5;
const BUNDLE_CHECKS = 200;
const GOALS = { appendRatio: 0.4, verifyRatio: 0.6, proofP99Ms: 2 } as const;

const rand = (n: number): number => Math.floor(Math.random() * n);

function log(message: string): void {
  console.error(`[bench audit] ${message}`);
}

// ---------------------------------------------------------------------------------------------------------
// Entries

const ACTORS = Array.from({ length: 24 }, () => `key:${uuidv7()}`);
const PURPOSES = ['analytics.reporting', 'marketing.advertising', 'personalize', 'marketing.email'] as const;

/** One audited action as the modules report them: mostly consent batches, then history reads and decrypts. */
function entry(): AuditEntryInput {
  const actor = ACTORS[rand(ACTORS.length)]!;
  const requestId = `req-${rand(1 << 30).toString(36)}`;
  const x = Math.random();
  if (x < 0.6) {
    const events = 1 + rand(40);
    return {
      actor, action: 'consent.recorded', targetType: 'consent_batch', targetId: uuidv7(), requestId,
      details: { events, gpcOptOuts: rand(2), subjects: Math.max(1, events - rand(events)), purposes: PURPOSES.slice(0, 1 + rand(PURPOSES.length)).sort() },
    };
  }
  if (x < 0.85) {
    return { actor, action: 'consent.history.read', targetType: 'subject', targetId: `u-${String(rand(1_000_000)).padStart(6, '0')}`, requestId, details: { events: rand(30) } };
  }
  if (x < 0.97) return { actor, action: 'crypto.decrypted', targetType: 'system', targetId: null, requestId, details: { count: 1 + rand(100) } };
  return { actor: 'key:admin', action: 'api_key.created', targetType: 'api_key', targetId: uuidv7(), details: { scopes: ['consent:read', 'consent:write'] } };
}

/** audit_entries columns, in table order. */
const COLUMNS = ['id', 'recorded_at', 'actor', 'action', 'target_type', 'target_ref', 'outcome', 'request_id', 'details', 'payload', 'leaf_hash'] as const;
type RawRow = (string | null)[];

/** The row `audit.record` stores for `e` (id, time, keyed subject reference, canonical details, leaf hash). */
function rawRow(custodian: Custodian, e: AuditEntryInput): RawRow {
  const row = {
    id: uuidv7(),
    recorded_at: toIso(Date.now()),
    actor: e.actor,
    action: e.action,
    target_type: e.targetType,
    target_ref: e.targetId === null ? null : e.targetType === 'subject' ? custodian.keyring.subjectRef(e.targetId) : e.targetId,
    outcome: e.outcome ?? 'success',
    request_id: e.requestId ?? null,
    details: canonicalJson(e.details ?? {}),
    payload: null,
    leaf_hash: '',
  };
  row.leaf_hash = leafHash(auditLeaf(row)).toString('hex');
  return COLUMNS.map((c) => row[c]);
}

// ---------------------------------------------------------------------------------------------------------
// (a) append throughput

interface RawAppender {
  readonly label: string;
  /** Runs WRITERS concurrent writers over `rows`, one transaction per row, until `endAt`; returns rows written. */
  run(rows: readonly RawRow[], endAt: number): Promise<number>;
  close(): Promise<void>;
}

const SQLITE_BARE_TABLE = `create table raw_audit (
  id text primary key, recorded_at text not null, actor varchar(128) not null, action varchar(64) not null,
  target_type varchar(32) not null, target_ref varchar(128), outcome varchar(16) not null, request_id varchar(64),
  details text not null, payload text, leaf_hash varchar(64) not null)`;

const PG_BARE_TABLE = `create table raw_audit (
  id uuid primary key, recorded_at timestamptz(3) not null, actor varchar(128) not null, action varchar(64) not null,
  target_type varchar(32) not null, target_ref varchar(128), outcome varchar(16) not null, request_id varchar(64),
  details text not null, payload text, leaf_hash varchar(64) not null)`;

const INSERT_RAW = `insert into raw_audit (${COLUMNS.join(', ')}) values (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`;

/** Runs `writers` loops that each take the next row and write it, until `endAt` or the rows run out. */
async function drive(rows: readonly RawRow[], endAt: number, writers: number, write: (w: number, row: RawRow) => Promise<void> | void): Promise<number> {
  let next = 0;
  const loop = async (w: number): Promise<void> => {
    while (performance.now() < endAt && next < rows.length) {
      await write(w, rows[next++]!);
      // better-sqlite3 calls resolve without a turn of the event loop: yield as the store's writers do.
      await yieldToEventLoop();
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, w) => loop(w)));
  if (next >= rows.length) throw new Error('raw writer ran out of pre-built rows; raise the pool');
  return next;
}

const INSERT_ENTRY = INSERT_RAW.replace('raw_audit', 'audit_entries');
const INSERT_QUEUE = `insert into log_queue (tree, ref_id, leaf_hash) values ('audit', $1, $2)`;
const ID = COLUMNS.indexOf('id');
const LEAF_HASH = COLUMNS.indexOf('leaf_hash');

async function migrate(url: string): Promise<void> {
  const store = openStore(url);
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
}

/**
 * better-sqlite3 with the store's pragmas, prepared statements, one BEGIN IMMEDIATE transaction per row. `schema`
 * false: a bare table (same columns, primary key only). True: Custodian's migrated schema, each row inserted into
 * audit_entries and log_queue as `record` does (no sequencer).
 */
async function sqliteAppender(path: string, schema: boolean): Promise<RawAppender> {
  if (schema) await migrate(`sqlite:${path}`);
  const db = new SQLite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  if (!schema) db.exec(SQLITE_BARE_TABLE);
  const insert = db.prepare(INSERT_RAW.replace('raw_audit', schema ? 'audit_entries' : 'raw_audit').replace(/\$\d+/g, '?'));
  const queue = schema ? db.prepare(INSERT_QUEUE.replace(/\$\d+/g, '?')) : null;
  const tx = db.transaction((row: RawRow) => {
    insert.run(row);
    queue?.run(row[ID], row[LEAF_HASH]);
  });
  return {
    label: schema
      ? 'better-sqlite3, 1 tx / row: prepared inserts into audit_entries + log_queue (no sequencer)'
      : `better-sqlite3 (WAL, synchronous=FULL), prepared insert, 1 BEGIN IMMEDIATE tx / row, ${WRITERS} async writers on one connection, bare table (primary key only)`,
    run: (rows, endAt) => drive(rows, endAt, WRITERS, (_w, row) => void tx.immediate(row)),
    close: async () => {
      db.close();
    },
  };
}

/** pg, one client per writer: BEGIN; prepared INSERT(s); COMMIT per row. `schema` as for {@link sqliteAppender}. */
async function postgresAppender(url: string, schema: boolean): Promise<RawAppender> {
  if (schema) await migrate(url);
  const clients = Array.from({ length: WRITERS }, () => new pg.Client({ connectionString: url }));
  await Promise.all(clients.map((c) => c.connect()));
  if (!schema) await clients[0]!.query(PG_BARE_TABLE);
  return {
    label: schema
      ? `pg, ${WRITERS} clients, 1 tx / row: prepared inserts into audit_entries + log_queue (no sequencer)`
      : `pg, ${WRITERS} clients, BEGIN; prepared INSERT; COMMIT per row, bare table (primary key only)`,
    run: (rows, endAt) =>
      drive(rows, endAt, WRITERS, async (w, row) => {
        const client = clients[w]!;
        await client.query('begin');
        if (schema) {
          await client.query({ name: 'insert_entry', text: INSERT_ENTRY, values: row });
          await client.query({ name: 'insert_queue', text: INSERT_QUEUE, values: [row[ID], row[LEAF_HASH]] });
        } else {
          await client.query({ name: 'insert_raw_audit', text: INSERT_RAW, values: row });
        }
        await client.query('commit');
      }),
    close: async () => void (await Promise.all(clients.map((c) => c.end()))),
  };
}

interface Slice {
  readonly entries: number;
  readonly ms: number;
}

interface AppendFigures {
  readonly kind: BenchStoreKind;
  readonly ours: Slice[];
  readonly raw: Slice[];
  /** The raw driver into Custodian's schema: splits the gap into what the schema costs and what our code costs. */
  readonly schema: Slice[];
  /** Time from the writers' stop to an empty queue, per slice. */
  readonly drainMs: number[];
  readonly heads: number;
  readonly rawLabel: string;
  readonly schemaLabel: string;
}

const perS = (slices: readonly Slice[]): number => slices.reduce((a, s) => a + s.entries, 0) / (slices.reduce((a, s) => a + s.ms, 0) / 1000);

/** One slice of ours: WRITERS writers for SLICE_MS with the sequencer running, then until the queue is drained. */
async function oursSlice(custodian: Custodian, errors: unknown[]): Promise<Slice & { drainMs: number }> {
  const { audit, store } = custodian;
  const before = await audit.integrate('audit');
  const sequencer = audit.startSequencer({ intervalMs: SEQUENCER_MS, onError: (err) => errors.push(err) });
  const t0 = performance.now();
  const endAt = t0 + SLICE_MS;
  let committed = 0;
  const writer = async (): Promise<void> => {
    while (performance.now() < endAt) {
      const e = entry();
      await store.transaction((trx) => audit.record(trx, [e]));
      committed++;
      await yieldToEventLoop();
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  const stopped = performance.now();
  await sequencer.stop();
  const after = await audit.integrate('audit');
  const t1 = performance.now();
  if (after - before !== committed) throw new Error(`sequenced ${after - before} entries, committed ${committed}`);
  return { entries: committed, ms: t1 - t0, drainMs: t1 - stopped };
}

async function measureAppend(kind: BenchStoreKind): Promise<AppendFigures> {
  const temps: TempStore[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    const main = await createTempStore(kind);
    temps.push(main);
    const custodian = await createCustodian(loadConfig({}, { dbUrl: main.url, dataDir: main.dir, logLevel: 'silent' }), { watch: false });
    closers.push(() => custodian.close());
    let raw: RawAppender;
    let schema: RawAppender;
    if (kind === 'sqlite') {
      raw = await sqliteAppender(join(main.dir, 'raw.db'), false);
      closers.push(() => raw.close());
      schema = await sqliteAppender(join(main.dir, 'schema.db'), true);
    } else {
      raw = await postgresAppender(main.url, false);
      closers.push(() => raw.close());
      const other = await createTempStore('postgres');
      temps.push(other);
      schema = await postgresAppender(other.url, true);
    }
    closers.push(() => schema.close());
    const slices = { ours: [] as Slice[], raw: [] as Slice[], schema: [] as Slice[] };
    const drainMs: number[] = [];
    const errors: unknown[] = [];
    let pool = 20_000;
    const order = ['ours', 'raw', 'schema'] as const;
    for (let round = 0; ; round++) {
      const measured = round >= WARMUP_ROUNDS;
      for (let k = 0; k < order.length; k++) {
        const which = order[(round + k) % order.length]!;
        let s: Slice;
        if (which === 'ours') {
          const o = await oursSlice(custodian, errors);
          if (measured) drainMs.push(o.drainMs);
          s = o;
        } else {
          // Rows built untimed, enough for twice the best rate seen.
          const rows = Array.from({ length: pool }, () => rawRow(custodian, entry()));
          const t0 = performance.now();
          const n = await (which === 'raw' ? raw : schema).run(rows, t0 + SLICE_MS);
          s = { entries: n, ms: performance.now() - t0 };
          pool = Math.max(pool, 2 * n);
        }
        if (measured) slices[which].push(s);
        await yieldToEventLoop();
      }
      const seconds = (xs: Slice[]) => xs.reduce((a, x) => a + x.ms, 0) / 1000;
      if (measured && seconds(slices.ours) >= SECONDS && seconds(slices.raw) >= SECONDS) break;
    }
    if (errors.length > 0) throw new Error(`the sequencer failed during the run: ${String(errors[0])}`);
    const heads = await custodian.store.db.selectFrom('log_heads').select((eb) => eb.fn.countAll<number>().as('n')).where('tree', '=', 'audit').executeTakeFirstOrThrow();
    const report = await custodian.audit.verify('audit');
    if (!report.ok) throw new Error(`the appended log does not verify: ${report.problem}`);
    return { kind, ...slices, drainMs, heads: Number(heads.n), rawLabel: raw.label, schemaLabel: schema.label };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const t of temps) await t.cleanup();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Building big logs

/** Grows the audit log to `target` entries: BUILD_TX_ENTRIES per transaction, integrated and signed as it goes. */
async function grow(custodian: Custodian, target: number, headEvery: number): Promise<{ recordMs: number; integrateMs: number }> {
  const { audit, store } = custodian;
  let size = await audit.integrate('audit');
  let recordMs = 0;
  let integrateMs = 0;
  let lastReport = performance.now();
  while (size < target) {
    const n = Math.min(BUILD_TX_ENTRIES, target - size);
    const entries = Array.from({ length: n }, entry);
    let t = performance.now();
    await store.transaction(async (trx) => {
      for (let i = 0; i < n; i += RECORD_CALL_ENTRIES) await audit.record(trx, entries.slice(i, i + RECORD_CALL_ENTRIES));
    });
    recordMs += performance.now() - t;
    t = performance.now();
    const grown = await audit.integrate('audit');
    if (grown !== size + n) throw new Error(`integrated to ${grown}, expected ${size + n}`);
    if (Math.floor(grown / headEvery) > Math.floor(size / headEvery) || grown === target) await audit.checkpoint('audit');
    integrateMs += performance.now() - t;
    size = grown;
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      log(`  … ${int(size)} entries (record ${fixed(recordMs / 1000, 1)} s, integrate ${fixed(integrateMs / 1000, 1)} s)`);
    }
    await yieldToEventLoop();
  }
  return { recordMs, integrateMs };
}

// ---------------------------------------------------------------------------------------------------------
// (b) verify

interface VerifyFigures {
  readonly leaves: number;
  readonly heads: number;
  readonly verifyMs: number[];
  readonly rawMs: number[];
  readonly treeHashMs: number[];
  readonly readMs: number;
  readonly leafMs: number;
  readonly buildS: number;
}

/**
 * The canonical bytes of every entry in sequence order, read with better-sqlite3 in one query; the read and the
 * rebuild of the canonical bytes are timed apart (floors of what verify does before hashing).
 */
function canonicalLeaves(path: string): { leaves: Buffer[]; readMs: number; leafMs: number } {
  const db = new SQLite(path, { readonly: true });
  try {
    let t = performance.now();
    const rows = db
      .prepare(`select e.* from log_leaves l join audit_entries e on e.id = l.ref_id where l.tree = 'audit' order by l.seq`)
      .all() as Record<string, unknown>[];
    const readMs = performance.now() - t;
    t = performance.now();
    const leaves = rows.map(auditLeaf);
    return { leaves, readMs, leafMs: performance.now() - t };
  } finally {
    db.close();
  }
}

/** RFC 9162 MTH over the leaves, bottom-up: the hashing floor of recomputing a tree. */
function treeRoot(leaves: readonly Buffer[]): Buffer {
  let level = leaves.map(leafHash);
  while (level.length > 1) {
    const up: Buffer[] = [];
    // Left-complete split (RFC 9162): pair up; a leftover node is promoted, which gives the same root as the
    // largest-power-of-two split because every complete subtree on the left is paired first.
    for (let i = 0; i + 1 < level.length; i += 2) up.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) up.push(level[level.length - 1]!);
    level = up;
  }
  return level[0]!;
}

async function measureVerify(custodian: Custodian, path: string, buildS: number): Promise<VerifyFigures> {
  const { leaves, readMs, leafMs } = canonicalLeaves(path);
  if (leaves.length !== VERIFY_ENTRIES) throw new Error(`read ${leaves.length} leaves, expected ${VERIFY_ENTRIES}`);
  const verifyMs: number[] = [];
  const rawMs: number[] = [];
  const treeHashMs: number[] = [];
  let heads = 0;
  let root = '';
  for (let run = 0; run < Math.max(VERIFY_RUNS, RAW_HASH_RUNS); run++) {
    if (run < VERIFY_RUNS) {
      const t = performance.now();
      const report = await custodian.audit.verify('audit');
      verifyMs.push(performance.now() - t);
      if (!report.ok) throw new Error(`verify failed: ${report.problem}`);
      if (report.size !== VERIFY_ENTRIES) throw new Error(`verify saw ${report.size} leaves`);
      heads = report.headsChecked;
      root = report.rootHash;
    }
    let t = performance.now();
    let check = 0;
    for (const leaf of leaves) check ^= hash('sha256', leaf, 'buffer')[0]!;
    rawMs.push(performance.now() - t);
    if (check < 0) throw new Error('unreachable');
    t = performance.now();
    const r = treeRoot(leaves);
    treeHashMs.push(performance.now() - t);
    if (r.toString('hex') !== root) throw new Error('the recomputed root differs from verify');
    await yieldToEventLoop();
  }
  return { leaves: leaves.length, heads, verifyMs, rawMs, treeHashMs, readMs, leafMs, buildS };
}

// ---------------------------------------------------------------------------------------------------------
// (c) proofs

interface ProofFigures {
  readonly entries: number;
  readonly recordS: number;
  readonly integrateS: number;
  readonly buildS: number;
  readonly proofs: number;
  readonly oursMs: number[];
  readonly floorMs: number[];
  readonly proofLength: number;
  readonly bytes: number;
  readonly checked: number;
}

/** An in-memory NodeReader over the whole tree: one buffer of 32-byte hashes per level. */
function memoryReader(leafHashes: Buffer): NodeReader {
  const levels = [leafHashes];
  for (let prev = leafHashes; prev.length >= 2 * HASH_SIZE; ) {
    const count = Math.floor(prev.length / HASH_SIZE / 2);
    const up = Buffer.allocUnsafe(count * HASH_SIZE);
    for (let i = 0; i < count; i++) {
      nodeHash(prev.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE), prev.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE)).copy(up, i * HASH_SIZE);
    }
    levels.push(up);
    prev = up;
  }
  return {
    get: (level, index) => {
      const l = levels[level];
      if (l === undefined || (index + 1) * HASH_SIZE > l.length) throw new Error(`no node (${level}, ${index})`);
      return l.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
    },
  };
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function measureProofs(custodian: Custodian, build: { recordMs: number; integrateMs: number }, buildS: number): Promise<ProofFigures> {
  const { audit, store } = custodian;
  const head = await audit.checkpoint('audit');
  const size = head.size;
  if (size !== PROOF_ENTRIES) throw new Error(`the log holds ${size} entries, expected ${PROOF_ENTRIES}`);
  const positions = Array.from({ length: PROOFS }, () => rand(size));
  // Warm-up: the first calls compile the query paths.
  for (let i = 0; i < 5; i++) await audit.proofAt('audit', rand(size));
  const oursMs: number[] = [];
  const bundles = [];
  let bytes = 0;
  const deadline = performance.now() + PROOF_SECONDS * 1000;
  for (const [k, seq] of positions.entries()) {
    if (k >= 20 && performance.now() > deadline) {
      log(`  time budget spent after ${int(k)} proofs`);
      positions.length = k;
      break;
    }
    const t = performance.now();
    const bundle = await audit.proofAt('audit', seq);
    oursMs.push(performance.now() - t);
    bytes += JSON.stringify(bundle).length;
    if (k < BUNDLE_CHECKS) bundles.push(bundle);
    if (k % 500 === 499) await yieldToEventLoop();
  }
  log(`  loading ${int(size)} leaf hashes for the in-memory floor`);
  const rows = await store.db.selectFrom('log_leaves').select('leaf_hash').where('tree', '=', 'audit').orderBy('seq').execute();
  const reader = memoryReader(Buffer.from(rows.map((r) => r.leaf_hash).join(''), 'hex'));
  const floorMs: number[] = [];
  const floorProofs: Buffer[][] = [];
  for (const [k, seq] of positions.entries()) {
    const t = performance.now();
    const proof = await inclusionProof(seq, size, reader);
    floorMs.push(performance.now() - t);
    if (k < BUNDLE_CHECKS) floorProofs.push(proof);
  }
  for (const [k, bundle] of bundles.entries()) {
    const v = verifyBundle(bundle, bundle.verifierKey, { origin: 'custodian/audit' });
    if (!v.ok) throw new Error(`bundle at ${bundle.index} does not verify: ${v.reason}`);
    if (bundle.inclusionProof.join() !== floorProofs[k]!.map((p) => p.toString('base64')).join()) throw new Error(`proof at ${bundle.index} differs from the floor's`);
  }
  return {
    entries: size,
    recordS: build.recordMs / 1000,
    integrateS: build.integrateMs / 1000,
    buildS,
    proofs: oursMs.length,
    oursMs,
    floorMs,
    proofLength: bundles[0]!.inclusionProof.length,
    bytes: bytes / oursMs.length,
    checked: bundles.length,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Report

function verdict(ok: boolean): string {
  return ok ? 'met' : 'MISSED';
}

function appendRows(a: AppendFigures): string[][] {
  const ours = perS(a.ours);
  const raw = perS(a.raw);
  const ratio = ours / raw;
  const spread = (xs: Slice[]) => `${int(Math.min(...xs.map((s) => s.entries / (s.ms / 1000))))}–${int(Math.max(...xs.map((s) => s.entries / (s.ms / 1000))))}`;
  const name = a.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
  return [
    [`(a) ${name}: record 1 entry / tx, ${WRITERS} writers, sequenced`, `${int(ours)} /s`, `${int(raw)} /s`, fixed(ratio, 3), `ratio ≥ ${GOALS.appendRatio}`, verdict(ratio >= GOALS.appendRatio)],
    ['    per-slice rate (min–max)', spread(a.ours), spread(a.raw), '', '', ''],
    ['    drain after writers stop (median)', `${fixed(median(a.drainMs), 1)} ms`, '', '', '', ''],
    ['    split: raw driver into our schema', '', `${int(perS(a.schema))} /s`, fixed(perS(a.schema) / raw, 3), 'schema/bare', ''],
    ['    split: ours vs raw into our schema', `${int(ours)} /s`, `${int(perS(a.schema))} /s`, fixed(ours / perS(a.schema), 3), 'code/schema', ''],
  ];
}

function report(appends: AppendFigures[], v: VerifyFigures | undefined, p: ProofFigures | undefined): string {
  const rows: string[][] = [['measure', 'ours', 'limit', 'ratio', 'goal', '']];
  for (const a of appends) rows.push(...appendRows(a));
  if (v !== undefined) {
    const best = (xs: number[]) => Math.min(...xs);
    const ours = v.leaves / (best(v.verifyMs) / 1000);
    const raw = v.leaves / (best(v.rawMs) / 1000);
    rows.push(
      [`(b) verify('audit'), ${int(v.leaves)} leaves, ${v.heads} heads`, `${int(ours)} leaves/s`, `${int(raw)} /s`, fixed(ours / raw, 3), `ratio ≥ ${GOALS.verifyRatio}`, verdict(ours / raw >= GOALS.verifyRatio)],
      ['    verify runs (s)', v.verifyMs.map((ms) => fixed(ms / 1000, 2)).join(' / '), '', '', '', ''],
      ['    floor: 2n−1 RFC 9162 hashes (leaf + node)', '', `${int(v.leaves / (best(v.treeHashMs) / 1000))} leaves/s`, fixed(ours / (v.leaves / (best(v.treeHashMs) / 1000)), 3), '', ''],
      ['    floor: better-sqlite3 read of the rows (1 join)', '', `${int(v.leaves / (v.readMs / 1000))} leaves/s`, fixed(ours / (v.leaves / (v.readMs / 1000)), 3), '', ''],
      ['    floor: auditLeaf rebuild of the canonical bytes', '', `${int(v.leaves / (v.leafMs / 1000))} leaves/s`, fixed(ours / (v.leaves / (v.leafMs / 1000)), 3), '', ''],
    );
  }
  if (p !== undefined) {
    const o = [...p.oursMs].sort((a, b) => a - b);
    const f = [...p.floorMs].sort((a, b) => a - b);
    const p99 = percentile(o, 99);
    rows.push(
      [`(c) proofAt at ${int(p.entries)} entries, p50 / p99`, `${fixed(percentile(o, 50), 3)} / ${fixed(p99, 3)} ms`, `${fixed(percentile(f, 50), 4)} / ${fixed(percentile(f, 99), 4)} ms`, '', `p99 < ${GOALS.proofP99Ms} ms`, verdict(p99 < GOALS.proofP99Ms)],
      ['    p99.9 / max', `${fixed(percentile(o, 99.9), 3)} / ${fixed(o[o.length - 1]!, 3)} ms`, `${fixed(percentile(f, 99.9), 4)} / ${fixed(f[f.length - 1]!, 4)} ms`, '', '', ''],
    );
  }
  const notes: string[] = [];
  for (const a of appends) {
    notes.push(`   (a) ${a.kind}: ${int(a.ours.reduce((x, s) => x + s.entries, 0))} entries in ${a.ours.length} slices of ${SLICE_MS} ms + drain, interleaved with the limit after ${WARMUP_ROUNDS} warm-up round; sequencer every ${SEQUENCER_MS} ms, ${a.heads} heads signed; log verified afterwards`);
    notes.push(`       limit = ${a.rawLabel}`, `       split = ${a.schemaLabel}`);
  }
  if (v !== undefined) {
    notes.push(`   (b) log of ${int(v.leaves)} entries built in ${fixed(v.buildS, 1)} s; best of ${VERIFY_RUNS} verify runs vs best of ${RAW_HASH_RUNS} raw runs; limit = crypto.hash('sha256') over each entry's canonical bytes (built untimed)`);
  }
  if (p !== undefined) {
    notes.push(
      `   (c) log grown to ${int(p.entries)} entries in ${fixed(p.buildS, 1)} s in total (record ${fixed(p.recordS, 1)} s, integrate + sign ${fixed(p.integrateS, 1)} s; ${int(BUILD_TX_ENTRIES)} entries / tx as ${BUILD_TX_ENTRIES / RECORD_CALL_ENTRIES} record calls of ${int(RECORD_CALL_ENTRIES)})`,
      `       record calls of at most ${int(RECORD_CALL_ENTRIES)} entries: one call of 2,979 or more fails on SQLite (too many SQL variables)`,
      `       ${int(p.proofs)} sequential proofAt at uniform random positions; ${p.proofLength}-hash proofs, ~${int(p.bytes)} bytes of JSON each; limit column = inclusionProof with an in-memory reader (the floor)`,
      `       ${p.checked} bundles checked with verifyBundle and against the floor's proofs`,
    );
  }
  return [`== audit`, table(rows), ...notes].join('\n');
}

// ---------------------------------------------------------------------------------------------------------

/** Runs (a) on each store, (b) and (c) on SQLite, prints the table and the RESULT line. */
export async function run(): Promise<void> {
  const started = performance.now();
  for (const kind of STORES) if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`BENCH_STORES: unknown store ${String(kind)}`);
  const load0 = loadavg()[0]!;
  const appends: AppendFigures[] = [];
  for (const kind of STORES) {
    log(`(a) ${kind}: append, ${WRITERS} writers vs raw driver, ${SECONDS} s each in ${SLICE_MS} ms slices`);
    try {
      appends.push(await measureAppend(kind));
    } catch (err) {
      if (kind !== 'postgres') throw err;
      log(`(a) postgres skipped: ${(err as Error).message}`);
    }
  }

  const temp = await createTempStore('sqlite');
  let v: VerifyFigures | undefined;
  let p: ProofFigures | undefined;
  try {
    const custodian = await createCustodian(loadConfig({}, { dbUrl: temp.url, dataDir: temp.dir, logLevel: 'silent' }), { watch: false });
    try {
      log(`(b) building a log of ${int(VERIFY_ENTRIES)} entries`);
      let t = performance.now();
      const first = await grow(custodian, VERIFY_ENTRIES, HEAD_EVERY);
      const firstS = (performance.now() - t) / 1000;
      log(`(b) verify, ${VERIFY_RUNS} runs`);
      v = await measureVerify(custodian, temp.url.slice('sqlite:'.length), firstS);
      log(`(c) growing the log to ${int(PROOF_ENTRIES)} entries`);
      t = performance.now();
      const second = await grow(custodian, PROOF_ENTRIES, Number.MAX_SAFE_INTEGER);
      const buildS = firstS + (performance.now() - t) / 1000;
      log(`(c) ${int(PROOFS)} proofs`);
      p = await measureProofs(custodian, { recordMs: first.recordMs + second.recordMs, integrateMs: first.integrateMs + second.integrateMs }, buildS);
    } finally {
      await custodian.close();
    }
  } finally {
    await temp.cleanup();
  }

  console.log(`\n${report(appends, v, p)}`);
  console.log(`\nmachine: load average ${fixed(load0)} at start, ${fixed(loadavg()[0]!)} at end (2 cores; other processes add noise)`);
  const s = appends.find((a) => a.kind === 'sqlite');
  const g = appends.find((a) => a.kind === 'postgres');
  const num = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? 'n/a' : String(Math.round(n)));
  const best = (xs: number[]) => Math.min(...xs);
  const verifyPerS = v === undefined ? undefined : v.leaves / (best(v.verifyMs) / 1000);
  const rawHashPerS = v === undefined ? undefined : v.leaves / (best(v.rawMs) / 1000);
  const sortedOurs = p === undefined ? [] : [...p.oursMs].sort((a, b) => a - b);
  const sortedFloor = p === undefined ? [] : [...p.floorMs].sort((a, b) => a - b);
  const fields: [string, string][] = [
    ['append_ratio', s ? fixed(perS(s.ours) / perS(s.raw), 3) : 'n/a'],
    ['append_per_s', num(s && perS(s.ours))],
    ['verify_ratio', verifyPerS !== undefined && rawHashPerS !== undefined ? fixed(verifyPerS / rawHashPerS, 3) : 'n/a'],
    ['verify_leaves_per_s', num(verifyPerS)],
    ['proof_p99_ms', p ? fixed(percentile(sortedOurs, 99), 3) : 'n/a'],
    ['proof_p50_ms', p ? fixed(percentile(sortedOurs, 50), 3) : 'n/a'],
    ['proof_entries', p ? String(p.entries) : 'n/a'],
    ['append_raw_per_s', num(s && perS(s.raw))],
    ['pg_append_ratio', g ? fixed(perS(g.ours) / perS(g.raw), 3) : 'n/a'],
    ['pg_append_per_s', num(g && perS(g.ours))],
    ['pg_append_raw_per_s', num(g && perS(g.raw))],
    ['verify_raw_sha256_per_s', num(rawHashPerS)],
    ['verify_tree_hash_per_s', num(v && v.leaves / (best(v.treeHashMs) / 1000))],
    ['verify_entries', v ? String(v.leaves) : 'n/a'],
    ['proof_floor_p50_ms', p ? fixed(percentile(sortedFloor, 50), 4) : 'n/a'],
    ['proof_floor_p99_ms', p ? fixed(percentile(sortedFloor, 99), 4) : 'n/a'],
    ['build_s', p ? fixed(p.buildS, 1) : 'n/a'],
    ['load_avg', fixed(load0)],
    ['seconds', fixed((performance.now() - started) / 1000, 1)],
  ];
  console.log(`\nRESULT audit ${fields.map(([k, val]) => `${k}=${val}`).join(' ')}`);
}
