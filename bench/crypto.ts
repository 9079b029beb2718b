/**
 * `npm run bench -- crypto`: the keyring against raw node:crypto on this machine, on a fresh temporary
 * SQLite store (the default store).
 *
 * (a) field: `keyring.encryptField` + `keyring.decryptField` of 200-byte values for a fixed set of subjects
 *     whose keys are already created and cached, each value with its own context, vs raw AES-256-GCM
 *     (createCipheriv / createDecipheriv, a fresh random 96-bit IV each, the context as AAD, getAuthTag /
 *     setAuthTag) of the same values under the same keys. Interleaved in slices, order alternating. Reference
 *     rows locate the gap: the format functions alone (sealField/openField, synchronous), and the same with each
 *     result awaited, as any promise-returning API is.
 * (b) blind index: `keyring.blindIndex(value, 'email')` vs `createHmac('sha256', key)` over the normalised
 *     value, truncated to 8 bytes, base64url — with the index's real key, so both must give the same digests.
 * (c) re-wrap: BENCH_REWRAP_KEYS subject data keys (default 1,000,000), created as the keyring stores them
 *     (random 16-hex id, 64-hex subject reference, each key wrapped under the primary master key with its own
 *     AAD) and inserted directly in large transactions; then `keyring.rotate()` and `keyring.rewrap()` in
 *     batches of 5,000 to completion, vs the raw limit: unwrap + wrap of as many keys in memory with
 *     node:crypto only (no store).
 *
 * Env: BENCH_SECONDS (measured seconds of ours and of the limit in (a) and (b), default 3), BENCH_SUBJECTS
 * (default 1000), BENCH_REWRAP_KEYS (default 1000000), BENCH_REWRAP_BATCH (default 5000).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomFillSync, type CipherGCM, type DecipherGCM } from 'node:crypto';
import { loadavg } from 'node:os';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import SQLite from 'better-sqlite3';
import { createCustodian, loadConfig, type Custodian } from '../src/app/index.js';
import { toIso } from '../src/core/index.js';
import { KEY_ID_BYTES, Keyring, LocalKekProvider, NORMALISERS, openField, parseField, sealField, type KekProvider } from '../src/crypto/index.js';
import { envNumber, fixed, int, median, table } from './support/format.js';
import { createTempStore, type TempStore } from './support/temp-store.js';

const SECONDS = envNumber('BENCH_SECONDS', 3);
const SUBJECTS = Math.round(envNumber('BENCH_SUBJECTS', 1000));
const REWRAP_KEYS = Math.round(envNumber('BENCH_REWRAP_KEYS', 1_000_000));
const REWRAP_BATCH = Math.round(envNumber('BENCH_REWRAP_BATCH', 5000));

const VALUE_BYTES = 200;
/** Operations per slice of an interleaved measurement (a few ms each). */
const SLICE_OPS = 2000;
const WARMUP_ROUNDS = 3;
const GOALS = { fieldRatio: 0.7, blindIndexRatio: 0.8 } as const;

const rand = (n: number): number => Math.floor(Math.random() * n);

function log(message: string): void {
  console.error(`[bench crypto] ${message}`);
}

// ---------------------------------------------------------------------------------------------------------
// Interleaved measurement

/** A contender: runs `n` operations starting at item `from` (wrapping) and returns a checksum. */
type Contender = (from: number, n: number) => Promise<number> | number;

interface Rate {
  readonly perS: number;
  readonly ops: number;
  readonly seconds: number;
  /** ops/s of each round, to show the noise. */
  readonly roundPerS: readonly number[];
}

/**
 * Runs the contenders in slices of SLICE_OPS operations, rotating which goes first each round, until the
 * first two (ours and the limit) have SECONDS of measured time each (after WARMUP_ROUNDS unmeasured rounds);
 * machine noise hits all. Further contenders (reference figures, much faster floors) run as many slices.
 */
async function interleave(items: number, contenders: readonly Contender[]): Promise<Rate[]> {
  const ms = contenders.map(() => 0);
  const ops = contenders.map(() => 0);
  const rounds: number[][] = contenders.map(() => []);
  let from = 0;
  for (let round = 0; ; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = (round + k) % contenders.length;
      const t = performance.now();
      const sum = await contenders[c]!(from, SLICE_OPS);
      const dt = performance.now() - t;
      if (!Number.isFinite(sum)) throw new Error('contender returned no checksum');
      if (round >= WARMUP_ROUNDS) {
        ms[c] = ms[c]! + dt;
        ops[c] = ops[c]! + SLICE_OPS;
        rounds[c]!.push(SLICE_OPS / (dt / 1000));
      }
      // Our calls may resolve without a turn of the event loop; yield so that signals (Ctrl-C) are handled.
      await yieldToEventLoop();
    }
    from = (from + SLICE_OPS) % items;
    if (round >= WARMUP_ROUNDS && ms[0]! >= SECONDS * 1000 && ms[1]! >= SECONDS * 1000) break;
  }
  return contenders.map((_, c) => ({ perS: ops[c]! / (ms[c]! / 1000), ops: ops[c]!, seconds: ms[c]! / 1000, roundPerS: rounds[c]! }));
}

/** Median over rounds of the per-round ratio a/b (robust to a noisy round). */
function medianRatio(a: Rate, b: Rate): number {
  return median(a.roundPerS.map((x, i) => x / b.roundPerS[i]!));
}

// ---------------------------------------------------------------------------------------------------------
// (a) field encryption

interface FieldFigures {
  readonly ours: Rate;
  readonly raw: Rate;
  readonly rawNaive: Rate;
  readonly batched: Rate;
  readonly floor: Rate;
  /** The format alone: sealField/openField (src/crypto/aead.ts) with the same keys, synchronous. */
  readonly format: Rate;
  /** The same, each call's result awaited as a resolved promise (what any async API adds). */
  readonly formatAwaited: Rate;
  readonly ratio: number;
  readonly medianRatio: number;
  readonly subjects: number;
}

/** The subject keys as the keyring holds them, unwrapped from data_keys with the master key. */
async function subjectKeys(custodian: Custodian, provider: KekProvider, subjects: readonly string[]): Promise<Buffer[]> {
  const refs = subjects.map((s) => custodian.keyring.subjectRef(s));
  const rows = await custodian.store.db.selectFrom('data_keys').selectAll().where('kind', '=', 'subject').where('owner', 'in', refs).execute();
  const byOwner = new Map(rows.map((r) => [r.owner, r]));
  return Promise.all(
    refs.map(async (ref) => {
      const r = byOwner.get(ref);
      if (r === undefined) throw new Error(`no data key for subject reference ${ref}`);
      return provider.unwrap(Number(r.kek_version), Buffer.from(r.wrapped, 'base64'), keyAad(r.id, 'subject', r.owner));
    }),
  );
}

async function measureField(custodian: Custodian, provider: KekProvider): Promise<FieldFigures> {
  const { keyring } = custodian;
  const subjects = Array.from({ length: SUBJECTS }, (_, i) => `field-subject-${String(i).padStart(6, '0')}`);
  // 8 values per subject, subjects interleaved so that neighbours differ; each value its own context.
  const n = SUBJECTS * 8;
  const who = Array.from({ length: n }, (_, i) => i % SUBJECTS);
  // Printable values (base64 of random bytes), so that the batch API's text results can be checked too.
  const values = Array.from({ length: n }, () => Buffer.from(randomBytes((VALUE_BYTES * 3) / 4).toString('base64'), 'latin1'));
  const texts = values.map((v) => v.toString('latin1'));
  const tables = ['crm.contacts.email', 'crm.contacts.phone', 'billing.invoices.address', 'support.tickets.body'];
  const contexts = Array.from({ length: n }, (_, i) => `${tables[i % tables.length]!}:row-${100_000 + rand(900_000)}`);
  // Create every key once (one batch) and warm the cache: the measured loop never touches the store for keys.
  await keyring.encryptMany(subjects.map((subjectId) => ({ subjectId, plaintext: 'warm-up', context: 'bench.warm-up' })));
  const keys = await subjectKeys(custodian, provider, subjects);
  const subjectOf = who.map((w) => subjects[w]!);
  const keyOf = who.map((w) => keys[w]!);

  const ours: Contender = async (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) {
      const ct = await keyring.encryptField(subjectOf[i]!, values[i]!, contexts[i]!);
      const pt = await keyring.decryptField(ct, contexts[i]!);
      if (!pt.equals(values[i]!)) throw new Error('keyring round trip changed the value');
      sum += ct.length;
    }
    return sum;
  };

  // Raw: a fresh random IV per value, drawn from a pooled CSPRNG buffer (the technique of src/crypto/aead.ts).
  const pool = Buffer.allocUnsafe(12 * 341);
  let poolAt = pool.length;
  const pooledIv = (): Buffer => {
    if (poolAt === pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const iv = Buffer.from(pool.subarray(poolAt, poolAt + 12));
    poolAt += 12;
    return iv;
  };
  const rawWith = (iv: () => Buffer): Contender => (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) {
      const key = keyOf[i]!;
      const nonce = iv();
      const cipher: CipherGCM = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(Buffer.from(contexts[i]!, 'utf8'));
      const body = cipher.update(values[i]!);
      cipher.final();
      const tag = cipher.getAuthTag();
      const decipher: DecipherGCM = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(Buffer.from(contexts[i]!, 'utf8'));
      decipher.setAuthTag(tag);
      const pt = decipher.update(body);
      decipher.final();
      if (!pt.equals(values[i]!)) throw new Error('raw round trip changed the value');
      sum += body.length + tag.length;
    }
    return sum;
  };
  const raw = rawWith(pooledIv);
  // The same with one randomBytes(12) call per IV (no pool), for reference.
  const rawNaive = rawWith(() => randomBytes(12));
  // For reference: the batch API, 100 values per encryptMany + decryptManyText (one key and token check per batch).
  const BATCH = 100;
  const batched: Contender = async (from, count) => {
    let sum = 0;
    for (let k = 0; k < count; k += BATCH) {
      const idx = Array.from({ length: Math.min(BATCH, count - k) }, (_, j) => (from + k + j) % n);
      const cts = await keyring.encryptMany(idx.map((i) => ({ subjectId: subjectOf[i]!, plaintext: values[i]!, context: contexts[i]! })));
      const pts = await keyring.decryptManyText(idx.map((i, j) => ({ ciphertext: cts[j]!, context: contexts[i]! })));
      pts.forEach((p, j) => {
        if (!('plaintext' in p) || p.plaintext !== texts[idx[j]!]) throw new Error('batch round trip changed the value');
        sum += cts[j]!.length;
      });
    }
    return sum;
  };
  // The floor of our loop's shape: two awaited async calls per value that do nothing.
  const noop = async (i: number): Promise<number> => i;
  const floor: Contender = async (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) sum += (await noop(i)) + (await noop(i));
    return sum;
  };

  // Where the gap to the limit is: the format functions alone (header, AAD, base64url text), then the same with
  // each result awaited — the keyring's API is async because a key may have to be loaded first.
  const kid = Buffer.alloc(KEY_ID_BYTES, 7);
  const format: Contender = (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) {
      const ct = sealField(keyOf[i]!, kid, values[i]!, contexts[i]!);
      const pt = openField(keyOf[i]!, parseField(ct), contexts[i]!);
      if (!pt.equals(values[i]!)) throw new Error('format round trip changed the value');
      sum += ct.length;
    }
    return sum;
  };
  const formatAwaited: Contender = async (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) {
      const ct = await Promise.resolve(sealField(keyOf[i]!, kid, values[i]!, contexts[i]!));
      const pt = await Promise.resolve(openField(keyOf[i]!, parseField(ct), contexts[i]!));
      if (!pt.equals(values[i]!)) throw new Error('format round trip changed the value');
      sum += ct.length;
    }
    return sum;
  };

  const [o, r, rn, bt, f, fm, fa] = await interleave(n, [ours, raw, rawNaive, batched, floor, format, formatAwaited]);
  return { ours: o!, raw: r!, rawNaive: rn!, batched: bt!, floor: f!, format: fm!, formatAwaited: fa!, ratio: o!.perS / r!.perS, medianRatio: medianRatio(o!, r!), subjects: SUBJECTS };
}

// ---------------------------------------------------------------------------------------------------------
// (b) blind index

interface BlindFigures {
  readonly ours: Rate;
  readonly raw: Rate;
  readonly rawPre: Rate;
  readonly floor: Rate;
  readonly ratio: number;
  readonly medianRatio: number;
  readonly values: number;
}

async function measureBlindIndex(custodian: Custodian, provider: KekProvider): Promise<BlindFigures> {
  const { keyring } = custodian;
  const first = ['Alice', 'bob', 'CHARLOTTE', 'Dmitri', 'élodie', 'Fatima', 'Grégoire', 'hiro', 'Ingrid', 'José'];
  const domains = ['Example.COM', 'mail.example.org', 'Exämple.de', 'corp.example.net'];
  const n = 10_000;
  const values = Array.from({ length: n }, (_, i) => `${i % 7 === 0 ? '  ' : ''}${first[i % first.length]!}.${['Smith', 'o’Neil', 'Müller'][i % 3]!}${i}@${domains[i % domains.length]!}${i % 5 === 0 ? ' ' : ''}`);
  await keyring.blindIndex(values[0]!, 'email'); // defines the built-in index and caches its key
  const row = await custodian.store.db.selectFrom('data_keys').selectAll().where('kind', '=', 'index').where('owner', '=', 'email').executeTakeFirstOrThrow();
  const key = await provider.unwrap(Number(row.kek_version), Buffer.from(row.wrapped, 'base64'), keyAad(row.id, 'index', 'email'));
  const normalise = NORMALISERS.email;
  const normalised = values.map(normalise);
  const rawDigest = (v: string): string => createHmac('sha256', key).update(v, 'utf8').digest().subarray(0, 8).toString('base64url');
  // Same key, same normalisation: the digests must agree exactly.
  for (let i = 0; i < n; i++) {
    const ours = await keyring.blindIndex(values[i]!, 'email');
    if (ours !== rawDigest(normalised[i]!)) throw new Error(`blind index of value ${i} differs from the raw HMAC`);
  }

  const ours: Contender = async (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) sum += (await keyring.blindIndex(values[i]!, 'email')).length;
    return sum;
  };
  const raw: Contender = (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) sum += rawDigest(values[i]!.trim().normalize('NFKC').toLowerCase()).length;
    return sum;
  };
  const rawPre: Contender = (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) sum += rawDigest(normalised[i]!).length;
    return sum;
  };
  const noop = async (i: number): Promise<number> => i;
  const floor: Contender = async (from, count) => {
    let sum = 0;
    for (let k = 0, i = from; k < count; k++, i = i + 1 === n ? 0 : i + 1) sum += await noop(i);
    return sum;
  };
  const [o, r, rp, f] = await interleave(n, [ours, raw, rawPre, floor]);
  return { ours: o!, raw: r!, rawPre: rp!, floor: f!, ratio: o!.perS / r!.perS, medianRatio: medianRatio(o!, r!), values: n };
}

// ---------------------------------------------------------------------------------------------------------
// (c) re-wrap

/** The AAD the keyring binds a wrapped data key to (KEY_AAD in src/crypto/keyring.ts). */
function keyAad(id: string, kind: string, owner: string): Buffer {
  return Buffer.from(`custodian:data-key:${id}:${kind}:${owner}`);
}

interface RewrapFigures {
  readonly keys: number;
  readonly setupSeconds: number;
  readonly wrapSeconds: number;
  readonly insertSeconds: number;
  readonly processed: number;
  readonly seconds: number;
  readonly perS: number;
  readonly batches: number;
  readonly batchMsMedian: number;
  readonly batchMsMax: number;
  readonly firstTenthPerS: number;
  readonly lastTenthPerS: number;
  readonly rawSeconds: number;
  readonly rawPerS: number;
  readonly ratio: number;
  readonly fromVersion: number;
  readonly toVersion: number;
}

const INSERT_TX = 200_000;

/**
 * Inserts `count` subject data keys as the keyring creates them (#ensureSubjectKeys): random 8-byte id in
 * hex, owner = the subject reference (HMAC, 64 hex), a fresh random 32-byte key wrapped by the master-key
 * provider under the primary version with AAD `custodian:data-key:<id>:subject:<owner>`, base64. Rows go in
 * creation order (ids random, as in production) through a second connection, 200,000 per transaction.
 * Returns the in-memory material for the raw limit.
 */
async function seedKeys(custodian: Custodian, provider: KekProvider, path: string, count: number): Promise<{ ids: string[]; owners: string[]; wrapped: Buffer; version: number; wrapSeconds: number; insertSeconds: number }> {
  const version = (await custodian.keyring.status()).primaryVersion;
  const db = new SQLite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  // A page cache that holds the indexes being filled in random order; the file's layout is the same either way.
  db.pragma('cache_size = -262144');
  const insert = db.prepare('insert into data_keys (id, kind, owner, kek_version, wrapped, created_at) values (?, ?, ?, ?, ?, ?)');
  const tx = db.transaction((rows: readonly (readonly [string, string, string])[], createdAt: string) => {
    for (const [id, owner, wrapped] of rows) insert.run(id, 'subject', owner, version, wrapped, createdAt);
  });
  const ids: string[] = [];
  const owners: string[] = [];
  const wrapped = Buffer.allocUnsafe(count * 60);
  const seen = new Set<string>();
  let wrapMs = 0;
  let insertMs = 0;
  try {
    for (let start = 0; start < count; start += INSERT_TX) {
      const size = Math.min(INSERT_TX, count - start);
      const random = randomFillSync(Buffer.allocUnsafe(size * 40));
      const rows: [string, string, string][] = [];
      let t = performance.now();
      for (let k = 0; k < size; k++) {
        let id = random.toString('hex', k * 40, k * 40 + 8);
        while (seen.has(id)) id = randomFillSync(Buffer.allocUnsafe(8)).toString('hex');
        seen.add(id);
        const owner = custodian.keyring.subjectRef(`rewrap-subject-${start + k}`);
        const key = random.subarray(k * 40 + 8, k * 40 + 40);
        const w = await provider.wrap(version, key, keyAad(id, 'subject', owner));
        if (w.length !== 60) throw new Error(`wrapped key of ${w.length} bytes, expected 60`);
        w.copy(wrapped, (start + k) * 60);
        ids.push(id);
        owners.push(owner);
        rows.push([id, owner, w.toString('base64')]);
        if (k % 10_000 === 9_999) await yieldToEventLoop(); // lets signals (Ctrl-C) through
      }
      random.fill(0);
      wrapMs += performance.now() - t;
      t = performance.now();
      tx.immediate(rows, toIso(Date.now()));
      insertMs += performance.now() - t;
      await yieldToEventLoop();
      if ((start + size) % 200_000 === 0 || start + size === count) log(`  seeded ${int(start + size)} / ${int(count)} keys`);
    }
  } finally {
    db.close();
  }
  return { ids, owners, wrapped, version, wrapSeconds: wrapMs / 1000, insertSeconds: insertMs / 1000 };
}

/**
 * The raw limit of a re-wrap: for each key, AES-256-GCM unwrap under the old master key (AAD built from id
 * and owner, tag checked) and wrap under the new one with a fresh random IV, in memory, buffers only.
 */
function rawRewrap(ids: readonly string[], owners: readonly string[], wrapped: Buffer, oldKek: Buffer, newKek: Buffer): number {
  const out = Buffer.allocUnsafe(wrapped.length);
  const ivs = Buffer.allocUnsafe(12 * 4096);
  const t = performance.now();
  for (let i = 0; i < ids.length; i++) {
    const at = i * 60;
    const aad = Buffer.from(`custodian:data-key:${ids[i]!}:subject:${owners[i]!}`);
    const d = createDecipheriv('aes-256-gcm', oldKek, wrapped.subarray(at, at + 12));
    d.setAAD(aad);
    d.setAuthTag(wrapped.subarray(at + 44, at + 60));
    const key = d.update(wrapped.subarray(at + 12, at + 44));
    d.final();
    const slot = i % 4096;
    if (slot === 0) randomFillSync(ivs);
    const iv = ivs.subarray(slot * 12, slot * 12 + 12);
    const c = createCipheriv('aes-256-gcm', newKek, iv);
    c.setAAD(aad);
    iv.copy(out, at);
    c.update(key).copy(out, at + 12);
    c.final();
    c.getAuthTag().copy(out, at + 44);
  }
  const seconds = (performance.now() - t) / 1000;
  if (out.equals(wrapped)) throw new Error('raw re-wrap produced the input');
  return seconds;
}

async function measureRewrap(custodian: Custodian, provider: KekProvider, path: string): Promise<RewrapFigures> {
  const { keyring } = custodian;
  log(`rewrap: seeding ${int(REWRAP_KEYS)} subject keys`);
  const t0 = performance.now();
  const seed = await seedKeys(custodian, provider, path, REWRAP_KEYS);
  const setupSeconds = (performance.now() - t0) / 1000;

  // A value sealed before the rotation must decrypt after it, through a cold keyring (key re-read and unwrapped).
  const probeSubject = `rewrap-subject-${REWRAP_KEYS >> 1}`;
  const probe = await keyring.encryptField(probeSubject, 'sealed before the rotation', 'bench.rewrap:probe');

  const { version: toVersion, previous: fromVersion } = await keyring.rotate();
  if (fromVersion !== seed.version) throw new Error(`rotation moved from v${fromVersion}, keys were seeded under v${seed.version}`);
  log(`rewrap: rotated master key v${fromVersion} → v${toVersion}; re-wrapping in batches of ${int(REWRAP_BATCH)}`);

  const batchMs: number[] = [];
  let processed = 0;
  let done = false;
  const started = performance.now();
  let last = started;
  for await (const p of keyring.rewrap({ batchSize: REWRAP_BATCH })) {
    const now = performance.now();
    if (!p.done) batchMs.push(now - last);
    last = now;
    processed = p.processed;
    done = p.done;
    if (!p.done && batchMs.length % 40 === 0) log(`  re-wrapped ${int(p.processed)} / ${int(p.total)} (${fixed((now - started) / 1000, 1)} s)`);
  }
  const seconds = (performance.now() - started) / 1000;
  if (!done) throw new Error('re-wrap stopped before it was done');

  const status = await keyring.status();
  const left = status.versions.filter((v) => v.version !== toVersion).reduce((a, v) => a + v.dataKeys, 0);
  if (left !== 0) throw new Error(`${left} data keys still under an old master key after the re-wrap`);
  if (processed < REWRAP_KEYS) throw new Error(`re-wrap processed ${processed} keys, expected at least ${REWRAP_KEYS}`);
  const cold = new Keyring({ store: custodian.store, provider, clock: custodian.clock });
  await cold.start({ watch: false });
  if ((await cold.decryptFieldText(probe, 'bench.rewrap:probe')) !== 'sealed before the rotation') throw new Error('probe did not decrypt after the re-wrap');
  await cold.stop();

  log(`rewrap: raw limit, unwrap + wrap of ${int(REWRAP_KEYS)} keys in memory`);
  const master = custodian.masterKey!;
  const rawSeconds = rawRewrap(seed.ids, seed.owners, seed.wrapped, master.exportBytes(fromVersion), master.exportBytes(toVersion));

  const tenth = Math.max(1, Math.floor(batchMs.length / 10));
  const rateOf = (ms: number[]): number => (ms.length * REWRAP_BATCH) / (ms.reduce((a, b) => a + b, 0) / 1000);
  const perS = processed / seconds;
  const rawPerS = REWRAP_KEYS / rawSeconds;
  return {
    keys: REWRAP_KEYS,
    setupSeconds,
    wrapSeconds: seed.wrapSeconds,
    insertSeconds: seed.insertSeconds,
    processed,
    seconds,
    perS,
    batches: batchMs.length,
    batchMsMedian: median(batchMs),
    batchMsMax: Math.max(...batchMs),
    firstTenthPerS: rateOf(batchMs.slice(0, tenth)),
    lastTenthPerS: rateOf(batchMs.slice(-tenth - 1, -1)),
    rawSeconds,
    rawPerS,
    ratio: perS / rawPerS,
    fromVersion,
    toVersion,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Report

function verdict(value: number, goal: number): string {
  return value >= goal ? 'met' : 'MISSED';
}

function spread(r: Rate): string {
  return `${int(Math.min(...r.roundPerS))}–${int(Math.max(...r.roundPerS))}`;
}

function report(a: FieldFigures, b: BlindFigures, c: RewrapFigures): string {
  const rows = [
    ['measure', 'ours', 'limit', 'ratio', 'goal', ''],
    [`(a) encryptField + decryptField, ${VALUE_BYTES} B`, `${int(a.ours.perS)} /s`, `${int(a.raw.perS)} /s`, fixed(a.ratio, 3), `ratio ≥ ${GOALS.fieldRatio}`, verdict(a.ratio, GOALS.fieldRatio)],
    ['    per op (encrypt + decrypt)', `${fixed(1e6 / a.ours.perS, 2)} µs`, `${fixed(1e6 / a.raw.perS, 2)} µs`, '', '', ''],
    ['    median of per-round ratios', '', '', fixed(a.medianRatio, 3), '', ''],
    ['    per-slice ops/s (min–max)', spread(a.ours), spread(a.raw), '', '', ''],
    ['    raw with randomBytes(12) per IV (no pool)', '', `${int(a.rawNaive.perS)} /s`, fixed(a.ours.perS / a.rawNaive.perS, 3), '', ''],
    ['    batch API: encryptMany + decryptManyText × 100', `${int(a.batched.perS)} /s`, `${int(a.raw.perS)} /s`, fixed(a.batched.perS / a.raw.perS, 3), '', ''],
    ['    floor: 2 awaited no-op calls per op', '', `${int(a.floor.perS)} /s`, '', '', ''],
    ['    format alone: sealField + openField, sync', `${int(a.format.perS)} /s`, `${int(a.raw.perS)} /s`, fixed(a.format.perS / a.raw.perS, 3), '', ''],
    ['    format alone, each result awaited', `${int(a.formatAwaited.perS)} /s`, `${int(a.raw.perS)} /s`, fixed(a.formatAwaited.perS / a.raw.perS, 3), '', ''],
    ["(b) blindIndex(value, 'email')", `${int(b.ours.perS)} /s`, `${int(b.raw.perS)} /s`, fixed(b.ratio, 3), `ratio ≥ ${GOALS.blindIndexRatio}`, verdict(b.ratio, GOALS.blindIndexRatio)],
    ['    per op', `${fixed(1e6 / b.ours.perS, 2)} µs`, `${fixed(1e6 / b.raw.perS, 2)} µs`, '', '', ''],
    ['    median of per-round ratios', '', '', fixed(b.medianRatio, 3), '', ''],
    ['    per-slice ops/s (min–max)', spread(b.ours), spread(b.raw), '', '', ''],
    ['    raw HMAC of pre-normalised values', '', `${int(b.rawPre.perS)} /s`, fixed(b.ours.perS / b.rawPre.perS, 3), '', ''],
    ['    floor: 1 awaited no-op call per op', '', `${int(b.floor.perS)} /s`, '', '', ''],
    [`(c) rewrap of ${int(c.keys)} subject keys`, `${int(c.perS)} keys/s`, `${int(c.rawPerS)} keys/s`, fixed(c.ratio, 3), 'report', ''],
    ['    total seconds', `${fixed(c.seconds, 1)} s`, `${fixed(c.rawSeconds, 1)} s`, '', '', ''],
    [`    batch of ${int(REWRAP_BATCH)}: median / max`, `${fixed(c.batchMsMedian, 0)} / ${fixed(c.batchMsMax, 0)} ms`, '', '', '', ''],
    ['    keys/s, first / last tenth of batches', `${int(c.firstTenthPerS)} / ${int(c.lastTenthPerS)}`, '', '', '', ''],
  ];
  return [
    '== crypto · SQLite (file, WAL, synchronous=FULL, secure_delete=ON), local master key',
    table(rows),
    `   (a) ${int(a.subjects)} subjects with cached keys, ${int(a.subjects * 8)} values of ${VALUE_BYTES} bytes (base64 of random bytes), each with its own context;`,
    `       ${int(a.ours.ops)} ops per contender in ${int(SLICE_OPS)}-op slices interleaved (order rotating) after ${WARMUP_ROUNDS} warm-up rounds;`,
    '       limit = createCipheriv/createDecipheriv aes-256-gcm, same keys, fresh random 96-bit IV (pooled CSPRNG), AAD = the context, tag checked',
    `   (b) ${int(b.values)} e-mail addresses in mixed case, Unicode, stray spaces; limit = createHmac(sha256, the index key) of`,
    "       value.trim().normalize('NFKC').toLowerCase(), 8 bytes, base64url — same key, digests checked equal for every value",
    `   (c) seeding ${fixed(c.setupSeconds, 1)} s (wrap ${fixed(c.wrapSeconds, 1)} s, insert ${fixed(c.insertSeconds, 1)} s; not measured); rotate v${c.fromVersion} → v${c.toVersion},`,
    `       ${int(c.processed)} keys re-wrapped (incl. the ${int(a.subjects)} field subjects and index/system keys) in ${int(c.batches)} batches;`,
    '       limit = unwrap + wrap of as many keys in memory, node:crypto only, buffers (no store, no base64)',
  ].join('\n');
}

/** Runs (a), (b), (c) on one fresh SQLite store, prints the table and the RESULT line. */
export async function run(): Promise<void> {
  const started = performance.now();
  const load0 = loadavg()[0]!;
  let temp: TempStore | undefined;
  let custodian: Custodian | undefined;
  try {
    temp = await createTempStore('sqlite');
    const config = loadConfig({}, { dbUrl: temp.url, dataDir: temp.dir, logLevel: 'silent' });
    custodian = await createCustodian(config, { watch: false });
    if (custodian.masterKey === undefined) throw new Error('the crypto benchmark needs the local master key');
    // The keyring's own provider is private; a second one over the same master key wraps and unwraps alike.
    const provider = new LocalKekProvider(custodian.masterKey);

    log(`field phase (${SECONDS}s each for ours and the limit, 5 contenders interleaved)`);
    const a = await measureField(custodian, provider);
    log(`blind index phase (${SECONDS}s each for ours and the limit, 4 contenders interleaved)`);
    const b = await measureBlindIndex(custodian, provider);
    const c = await measureRewrap(custodian, provider, temp.url.slice('sqlite:'.length));

    console.log(`\n${report(a, b, c)}`);
    console.log(`\nmachine: load average ${fixed(load0)} at start, ${fixed(loadavg()[0]!)} at end (2 cores; other processes add noise)`);
    const fields: [string, string][] = [
      ['field_ratio', fixed(a.ratio, 3)],
      ['field_ops_per_s', String(Math.round(a.ours.perS))],
      ['blind_index_ratio', fixed(b.ratio, 3)],
      ['blind_index_per_s', String(Math.round(b.ours.perS))],
      ['rewrap_keys_per_s', String(Math.round(c.perS))],
      ['rewrap_seconds', fixed(c.seconds, 1)],
      ['rewrap_keys', String(c.processed)],
      ['rewrap_ratio', fixed(c.ratio, 3)],
      ['raw_rewrap_keys_per_s', String(Math.round(c.rawPerS))],
      ['raw_field_ops_per_s', String(Math.round(a.raw.perS))],
      ['raw_blind_index_per_s', String(Math.round(b.raw.perS))],
      ['field_median_ratio', fixed(a.medianRatio, 3)],
      ['format_ratio', fixed(a.format.perS / a.raw.perS, 3)],
      ['format_awaited_ratio', fixed(a.formatAwaited.perS / a.raw.perS, 3)],
      ['blind_index_median_ratio', fixed(b.medianRatio, 3)],
      ['field_await_floor_per_s', String(Math.round(a.floor.perS))],
      ['store', 'sqlite'],
      ['load_avg', fixed(load0)],
      ['seconds', fixed((performance.now() - started) / 1000, 1)],
    ];
    console.log(`\nRESULT crypto ${fields.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  } finally {
    await custodian?.close().catch(() => undefined);
    await temp?.cleanup();
  }
}
