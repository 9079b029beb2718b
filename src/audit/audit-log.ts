import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { CustodianError, isFresh, toIso, uuidv7, type AuditEntryInput, type AuditSink, type Clock } from '../core/index.js';
import type { Keyring } from '../crypto/index.js';
import type { Executor, Store } from '../store/index.js';
import {
  EMPTY_ROOT,
  appendNodes,
  consistencyProof,
  consistencyProofNodes,
  formatCheckpoint,
  inclusionProof,
  inclusionProofNodes,
  leafHash,
  rootAt,
  rootNodes,
  signCheckpoint,
  verifierKeyString,
  verifyCheckpoint,
  type MerkleNode,
  type NodePosition,
  type NodeReader,
} from '../verify/index.js';
import { AUDIT_ACTIONS } from './actions.js';
import { canonicalJson } from './canonical.js';
import { auditLeaf, consentLeaf, type Tree } from './leaves.js';

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /** Checkpoint origin prefix; each tree signs as `<origin>/<tree>`. Default `custodian`. */
  readonly origin?: string;
  /** A signed head at least this often while entries arrive (ms). Default 10,000. */
  readonly checkpointEveryMs?: number;
  /** …or after this many new leaves. Default 1,000. */
  readonly checkpointEveryEntries?: number;
}

/** A signed tree head. */
export interface TreeHead {
  readonly tree: Tree;
  readonly size: number;
  readonly rootHash: string;
  readonly checkpoint: string;
  readonly createdAt: string;
}

/** What an auditor needs to check one leaf offline: see `verifyBundle` in `custodian/verify`. */
export interface ProofBundle {
  readonly tree: Tree;
  readonly leaf: string;
  readonly index: number;
  readonly treeSize: number;
  readonly inclusionProof: readonly string[];
  readonly checkpoint: string;
  readonly verifierKey: string;
}

/** The result of {@link AuditLog.verify}. */
export type VerifyReport =
  | { readonly ok: true; readonly tree: Tree; readonly size: number; readonly rootHash: string; readonly headsChecked: number }
  | { readonly ok: false; readonly tree: Tree; readonly position: number | null; readonly problem: string };

/** A page of audit entries. */
export interface AuditPage {
  readonly entries: ReadonlyArray<{
    id: string; seq: number | null; time: string; actor: string; action: string; targetType: string; targetRef: string | null;
    outcome: string; requestId: string | null; details: unknown; hasPayload: boolean;
  }>;
  readonly nextCursor: string | null;
}

const BATCH = 5000;
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * The tamper-evident audit log: entries appended in the transaction of the change they record, and two RFC 9162
 * Merkle trees (`audit` entries, `consent` events) built by a sequencer that integrates queued leaves in batches
 * (one transaction and one fsync per batch, whatever the number of writers), persists every complete subtree hash
 * so proofs cost O(log n) reads, and signs C2SP checkpoints with an Ed25519 key held by the keyring.
 */
export class AuditLog implements AuditSink {
  readonly #store: Store;
  readonly #keyring: Keyring;
  readonly #clock: Clock;
  readonly #origin: string;
  readonly #everyMs: number;
  readonly #everyEntries: number;
  #signing: KeyObject | undefined;
  #public: KeyObject | undefined;

  constructor(deps: { store: Store; keyring: Keyring; clock: Clock }, options: AuditLogOptions = {}) {
    this.#store = deps.store;
    this.#keyring = deps.keyring;
    this.#clock = deps.clock;
    this.#origin = options.origin ?? 'custodian';
    this.#everyMs = options.checkpointEveryMs ?? 10_000;
    this.#everyEntries = options.checkpointEveryEntries ?? 1000;
  }

  /** Loads (or creates) the log's Ed25519 signing key from the keyring. */
  async start(): Promise<void> {
    const seed = await this.#keyring.systemSecret('audit-signing');
    this.#signing = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    this.#public = createPublicKey(this.#signing);
  }

  /** The signed-note verifier key of `tree` (`<origin>/<tree>+<key hash>+<public key>`): all an auditor needs. */
  verifierKey(tree: Tree): string {
    return verifierKeyString(this.#keyName(tree), this.#publicKey());
  }

  /**
   * Signs a statement Custodian issues (an erasure certificate) with the log's Ed25519 key: base64 signature.
   * Anyone holding {@link statementKey} (the same key as the checkpoints') can verify it offline.
   */
  signStatement(bytes: Uint8Array): string {
    return sign(null, bytes, this.#privateKey()).toString('base64');
  }

  /** The public key that verifies statements and checkpoints: raw Ed25519, base64. */
  statementKey(): string {
    return Buffer.from(this.#publicKey().export({ format: 'jwk' }).x!, 'base64url').toString('base64');
  }

  // --- AuditSink ------------------------------------------------------------------------------------------

  async record(trx: unknown, entries: readonly AuditEntryInput[]): Promise<void> {
    if (entries.length === 0) return;
    const now = toIso(this.#clock.now());
    const rows = entries.map((e) => {
      if (!(e.action in AUDIT_ACTIONS)) throw new CustodianError('CST_ERR_INTERNAL', 'unknown audit action');
      const row = {
        id: uuidv7(this.#clock.now()),
        recorded_at: now,
        actor: e.actor.slice(0, 128),
        action: e.action,
        target_type: e.targetType,
        target_ref: e.targetId === null ? null : e.targetType === 'subject' ? this.#keyring.subjectRef(e.targetId) : e.targetId.slice(0, 128),
        outcome: e.outcome ?? 'success',
        request_id: e.requestId ?? null,
        details: canonicalJson(e.details ?? {}),
        payload: e.sealedPayload ?? null,
        leaf_hash: '',
      };
      row.leaf_hash = hex(leafHash(auditLeaf(row)));
      return row;
    });
    const db = trx as Executor;
    // 11 columns × 500 rows stays below SQLite's bound-variable limit.
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      await db.insertInto('audit_entries').values(chunk).execute();
      await db.insertInto('log_queue').values(chunk.map((r) => ({ tree: 'audit', ref_id: r.id, leaf_hash: r.leaf_hash }))).execute();
    }
  }

  /** Records entries in a transaction of their own (reads that return personal data have no change to join). */
  async recordNow(entries: readonly AuditEntryInput[]): Promise<void> {
    await this.#store.transaction((trx) => this.record(trx, entries));
  }

  async queueConsentEvents(trx: unknown, rows: readonly Readonly<Record<string, unknown>>[]): Promise<void> {
    if (rows.length === 0) return;
    const db = trx as Executor;
    const queued = rows.map((r) => ({ tree: 'consent', ref_id: String(r.id), leaf_hash: hex(leafHash(consentLeaf(r))) }));
    for (let i = 0; i < queued.length; i += 1000) await db.insertInto('log_queue').values(queued.slice(i, i + 1000)).execute();
  }

  // --- sequencer ------------------------------------------------------------------------------------------

  /**
   * Integrates queued leaves of `tree` into the tree, in batches under the tree's lock: assigns sequence numbers,
   * persists the new complete-subtree hashes and drains the queue. Returns the new size.
   */
  async integrate(tree: Tree): Promise<number> {
    for (;;) {
      const { size, more } = await this.#store.transaction(async (trx) => {
        await this.#store.lock(trx, `custodian:log:${tree}`);
        const start = await this.#size(trx, tree);
        const queued = await trx.selectFrom('log_queue').select(['ref_id', 'leaf_hash']).where('tree', '=', tree).orderBy('ref_id').limit(BATCH).execute();
        if (queued.length === 0) return { size: start, more: false };
        const result = await appendNodes(start, queued.map((q) => Buffer.from(q.leaf_hash, 'hex')), await this.#reader(trx, tree, rootNodes(start)));
        for (let i = 0; i < queued.length; i += 1000) {
          await trx.insertInto('log_leaves').values(queued.slice(i, i + 1000).map((q, j) => ({ tree, seq: start + i + j, ref_id: q.ref_id, leaf_hash: q.leaf_hash }))).execute();
        }
        const nodes = result.nodes.map((n) => ({ tree, level: n.level, idx: n.index, hash: hex(n.hash) }));
        for (let i = 0; i < nodes.length; i += 1000) await trx.insertInto('log_nodes').values(nodes.slice(i, i + 1000)).execute();
        for (let i = 0; i < queued.length; i += 500) {
          await trx.deleteFrom('log_queue').where('tree', '=', tree).where('ref_id', 'in', queued.slice(i, i + 500).map((q) => q.ref_id)).execute();
        }
        return { size: result.size, more: queued.length === BATCH };
      });
      if (!more) return size;
    }
  }

  /**
   * Integrates pending leaves and signs a head for `tree` when it grew (or when `force`); returns the latest head.
   */
  async checkpoint(tree: Tree, options: { force?: boolean } = {}): Promise<TreeHead> {
    const size = await this.integrate(tree);
    const last = await this.latestHead(tree);
    if (last !== null && last.size === size && !options.force) return last;
    return this.#store.transaction(async (trx) => {
      await this.#store.lock(trx, `custodian:log:${tree}`);
      const current = await this.#size(trx, tree);
      const root = current === 0 ? EMPTY_ROOT : await rootAt(current, await this.#reader(trx, tree, rootNodes(current)));
      const time = new Date(this.#clock.now());
      const body = formatCheckpoint({ origin: this.#keyName(tree), size: current, rootHash: root, time });
      const checkpoint = signCheckpoint(body, this.#keyName(tree), this.#privateKey());
      const head = { tree, size: current, root_hash: hex(root), checkpoint, created_at: time.toISOString() };
      const existing = await trx.selectFrom('log_heads').select('size').where('tree', '=', tree).where('size', '=', current).executeTakeFirst();
      if (existing === undefined) await trx.insertInto('log_heads').values(head).execute();
      else return (await this.latestHead(tree, trx))!;
      return { tree, size: current, rootHash: head.root_hash, checkpoint, createdAt: head.created_at };
    });
  }

  /** The latest signed head of `tree`, or null. */
  async latestHead(tree: Tree, db: Executor = this.#store.db): Promise<TreeHead | null> {
    const row = await db.selectFrom('log_heads').selectAll().where('tree', '=', tree).orderBy('size', 'desc').limit(1).executeTakeFirst();
    return row === undefined ? null : { tree, size: Number(row.size), rootHash: row.root_hash, checkpoint: row.checkpoint, createdAt: new Date(row.created_at).toISOString() };
  }

  /**
   * Runs the sequencer in the background: integrates every `intervalMs`, and signs a head when the configured time
   * or entry count has passed. Errors are reported to `onError` and retried on the next tick.
   */
  startSequencer(options: { intervalMs?: number; onError?: (err: unknown) => void } = {}): { stop(): Promise<void> } {
    let running: Promise<void> | undefined;
    const lastHeadAt = { audit: this.#clock.now(), consent: this.#clock.now() };
    const tick = async () => {
      for (const tree of ['audit', 'consent'] as const) {
        const size = await this.integrate(tree);
        const head = await this.latestHead(tree);
        const grown = size - (head?.size ?? 0);
        if (grown > 0 && (grown >= this.#everyEntries || !isFresh(lastHeadAt[tree], this.#clock.now(), this.#everyMs))) {
          await this.checkpoint(tree);
          lastHeadAt[tree] = this.#clock.now();
        }
      }
    };
    const timer = setInterval(() => {
      if (running) return;
      running = tick()
        .catch((err: unknown) => options.onError?.(err))
        .finally(() => {
          running = undefined;
        });
    }, options.intervalMs ?? 1000);
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await running;
      },
    };
  }

  // --- proofs ---------------------------------------------------------------------------------------------

  /**
   * A proof bundle for the leaf of `refId` (audit entry id or consent event id): its canonical bytes, its inclusion
   * proof and a signed head covering it (produced on demand when none does yet).
   */
  async proofFor(tree: Tree, refId: string): Promise<ProofBundle> {
    let leaf = await this.#store.db.selectFrom('log_leaves').select(['seq']).where('tree', '=', tree).where('ref_id', '=', refId).executeTakeFirst();
    if (leaf === undefined) {
      await this.integrate(tree);
      leaf = await this.#store.db.selectFrom('log_leaves').select(['seq']).where('tree', '=', tree).where('ref_id', '=', refId).executeTakeFirst();
      if (leaf === undefined) throw new CustodianError('CST_ERR_NOT_FOUND', 'no such entry in the log', { details: { tree } });
    }
    return this.proofAt(tree, Number(leaf.seq));
  }

  /** A proof bundle for the leaf at `seq`. */
  async proofAt(tree: Tree, seq: number): Promise<ProofBundle> {
    let head = await this.latestHead(tree);
    if (head === null || head.size <= seq) head = await this.checkpoint(tree, { force: head === null });
    if (seq < 0 || seq >= head.size) throw new CustodianError('CST_ERR_NOT_FOUND', 'no entry at this position', { details: { tree, seq } });
    const row = await this.#store.db.selectFrom('log_leaves').select(['ref_id']).where('tree', '=', tree).where('seq', '=', seq).executeTakeFirstOrThrow();
    const source = await this.#sourceRow(tree, row.ref_id);
    if (source === undefined) throw new CustodianError('CST_ERR_NOT_FOUND', 'the entry behind this leaf is missing', { details: { tree, seq } });
    const proof = await inclusionProof(seq, head.size, await this.#reader(this.#store.db, tree, inclusionProofNodes(seq, head.size)));
    return {
      tree,
      leaf: (tree === 'audit' ? auditLeaf(source) : consentLeaf(source)).toString('base64'),
      index: seq,
      treeSize: head.size,
      inclusionProof: proof.map((p) => p.toString('base64')),
      checkpoint: head.checkpoint,
      verifierKey: this.verifierKey(tree),
    };
  }

  /** A consistency proof between two sizes of `tree` (both at most the current size). */
  async consistency(tree: Tree, from: number, to: number): Promise<{ from: number; to: number; proof: string[]; rootFrom: string; rootTo: string }> {
    const size = await this.#size(this.#store.db, tree);
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || from > to || to > size) {
      const path = !Number.isInteger(from) || from < 0 || from > to ? 'from' : 'to';
      throw new CustodianError('CST_ERR_VALIDATION', 'sizes must satisfy 0 ≤ from ≤ to ≤ current size', { details: { issues: [{ path, message: 'out of range' }], size } });
    }
    const reader = await this.#reader(this.#store.db, tree, [...consistencyProofNodes(from, to), ...rootNodes(from), ...rootNodes(to)]);
    const proof = await consistencyProof(from, to, reader);
    return {
      from,
      to,
      proof: proof.map((p) => p.toString('base64')),
      rootFrom: hex(from === 0 ? EMPTY_ROOT : await rootAt(from, reader)),
      rootTo: hex(to === 0 ? EMPTY_ROOT : await rootAt(to, reader)),
    };
  }

  // --- reading --------------------------------------------------------------------------------------------

  /** Pages through audit entries (newest first), filtered by subject, action and time. */
  async list(query: { subjectId?: string; action?: string; from?: string; to?: string; cursor?: string; limit?: number }): Promise<AuditPage> {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000);
    let q = this.#store.db
      .selectFrom('audit_entries as e')
      .leftJoin('log_leaves as l', (j) => j.onRef('l.ref_id', '=', 'e.id').on('l.tree', '=', 'audit'))
      .select(['e.id', 'e.recorded_at', 'e.actor', 'e.action', 'e.target_type', 'e.target_ref', 'e.outcome', 'e.request_id', 'e.details', 'e.payload', 'l.seq']);
    if (query.subjectId !== undefined) q = q.where('e.target_ref', '=', this.#keyring.subjectRef(query.subjectId));
    if (query.action !== undefined) q = q.where('e.action', '=', query.action);
    if (query.from !== undefined) q = q.where('e.recorded_at', '>=', toIso(Date.parse(query.from)));
    if (query.to !== undefined) q = q.where('e.recorded_at', '<=', toIso(Date.parse(query.to)));
    if (query.cursor !== undefined) q = q.where('e.id', '<', query.cursor);
    const rows = await q.orderBy('e.id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return {
      entries: page.map((r) => ({
        id: r.id,
        seq: r.seq === null ? null : Number(r.seq),
        time: new Date(r.recorded_at).toISOString(),
        actor: r.actor,
        action: r.action,
        targetType: r.target_type,
        targetRef: r.target_ref,
        outcome: r.outcome,
        requestId: r.request_id,
        details: JSON.parse(r.details) as unknown,
        hasPayload: r.payload !== null,
      })),
      nextCursor: rows.length > limit ? page[page.length - 1]!.id : null,
    };
  }

  /**
   * Recomputes `tree` from the store: every leaf from its entry, the sequence without gaps, every stored signed
   * head (signature and root at its size), every stored subtree hash (proofs are built from them), and — given an
   * exported older checkpoint — that the log only grew since. Reports the first problem with its position.
   */
  async verify(tree: Tree, options: { checkpoint?: string; onProgress?: (done: number) => void } = {}): Promise<VerifyReport> {
    const fail = (position: number | null, problem: string): VerifyReport => ({ ok: false, tree, position, problem });
    const heads = await this.#store.db.selectFrom('log_heads').selectAll().where('tree', '=', tree).orderBy('size').execute();
    const verifier = this.verifierKey(tree);
    const expected = new Map<number, string>();
    for (const h of heads) {
      const v = verifyCheckpoint(h.checkpoint, verifier, { origin: this.#keyName(tree) });
      if (!v.ok) return fail(Number(h.size), `signed head at size ${h.size}: ${v.reason}`);
      if (v.checkpoint.size !== Number(h.size) || hex(v.checkpoint.rootHash) !== h.root_hash) return fail(Number(h.size), `signed head at size ${h.size} does not match its row`);
      expected.set(Number(h.size), h.root_hash);
    }
    if (options.checkpoint !== undefined) {
      const v = verifyCheckpoint(options.checkpoint, verifier, { origin: this.#keyName(tree) });
      if (!v.ok) return fail(null, `the given checkpoint does not verify: ${v.reason}`);
      const prior = expected.get(v.checkpoint.size);
      if (prior !== undefined && prior !== hex(v.checkpoint.rootHash)) return fail(v.checkpoint.size, 'the given checkpoint and the stored head of the same size differ: the log was rewritten');
      expected.set(v.checkpoint.size, hex(v.checkpoint.rootHash));
    }
    let frontier = new Map<string, Buffer>();
    let size = 0;
    let root = EMPTY_ROOT;
    for (;;) {
      const leaves = await this.#store.db.selectFrom('log_leaves').select(['seq', 'ref_id', 'leaf_hash']).where('tree', '=', tree).where('seq', '>=', size).orderBy('seq').limit(BATCH).execute();
      if (leaves.length === 0) break;
      const sources = new Map<string, Readonly<Record<string, unknown>>>();
      for (const r of await this.#sourceRows(tree, leaves.map((l) => l.ref_id))) sources.set(String(r.id), r);
      const hashes: Buffer[] = [];
      for (const l of leaves) {
        const seq = Number(l.seq);
        if (seq !== size + hashes.length) return fail(size + hashes.length, `leaf ${size + hashes.length} is missing (next stored leaf is ${seq})`);
        const source = sources.get(l.ref_id);
        if (source === undefined) return fail(seq, `the entry of leaf ${seq} is missing`);
        const recomputed = leafHash(tree === 'audit' ? auditLeaf(source) : consentLeaf(source));
        if (hex(recomputed) !== l.leaf_hash) return fail(seq, `leaf ${seq}: the entry no longer matches its leaf hash (content changed, or entries swapped)`);
        if (tree === 'audit' && source.leaf_hash !== l.leaf_hash) return fail(seq, `leaf ${seq}: the entry's own leaf hash differs from the tree's`);
        hashes.push(recomputed);
      }
      // Recompute heads that fall inside this batch, leaf by leaf at those sizes only.
      const sizesHere = [...expected.keys()].filter((s) => s > size && s <= size + hashes.length).sort((a, b) => a - b);
      let done = 0;
      const created: MerkleNode[] = [];
      for (const target of [...sizesHere, size + hashes.length]) {
        if (target === size + done) continue;
        const r = await appendNodes(size + done, hashes.slice(done, target - size), readerOf(frontier));
        created.push(...r.nodes);
        const keep = new Set(rootNodes(r.size).map((p) => `${p.level}:${p.index}`));
        frontier = new Map([...frontier, ...r.nodes.map((n): [string, Buffer] => [`${n.level}:${n.index}`, n.hash])].filter(([k]) => keep.has(k)));
        root = r.root;
        done = target - size;
        const want = expected.get(target);
        if (want !== undefined && want !== hex(root)) return fail(target, `the log at size ${target} does not match its signed head: entries before it were changed, removed or inserted`);
      }
      // Every complete subtree of this batch as stored, since proofs are built from these, not from the leaves.
      const stored = await this.#storedNodes(tree, created);
      for (const n of created) {
        const have = stored.get(`${n.level}:${n.index}`);
        if (have !== hex(n.hash)) return fail(n.index * 2 ** n.level, `the stored subtree hash (level ${n.level}, index ${n.index}) ${have === undefined ? 'is missing' : 'does not match the leaves'}`);
      }
      size += hashes.length;
      options.onProgress?.(size);
    }
    const maxHead = Math.max(0, ...expected.keys());
    if (maxHead > size) return fail(size, `the log holds ${size} leaves but a signed head covers ${maxHead}: it was truncated`);
    if (size > 0) {
      const stored = await rootAt(size, await this.#reader(this.#store.db, tree, rootNodes(size)).catch(() => readerOf(new Map())));
      if (hex(stored) !== hex(root)) return fail(size, 'the stored subtree hashes do not match the leaves');
    }
    const orphan = await this.#orphan(tree);
    if (orphan !== undefined) return fail(null, `entry ${orphan} is neither in the tree nor queued: it was inserted around the log`);
    return { ok: true, tree, size, rootHash: hex(root), headsChecked: expected.size };
  }

  // --- internals ------------------------------------------------------------------------------------------

  #keyName(tree: Tree): string {
    return `${this.#origin}/${tree}`;
  }

  #privateKey(): KeyObject {
    if (this.#signing === undefined) throw new Error('audit log not started');
    return this.#signing;
  }

  #publicKey(): KeyObject {
    if (this.#public === undefined) throw new Error('audit log not started');
    return this.#public;
  }

  async #size(db: Executor, tree: Tree): Promise<number> {
    const r = await db.selectFrom('log_leaves').select((eb) => eb.fn.max('seq').as('m')).where('tree', '=', tree).executeTakeFirst();
    return r?.m === null || r?.m === undefined ? 0 : Number(r.m) + 1;
  }

  /** A node reader over the stored nodes at `positions`, fetched in one query. */
  async #reader(db: Executor, tree: Tree, positions: readonly NodePosition[]): Promise<NodeReader> {
    const nodes = new Map<string, Buffer>();
    if (positions.length > 0) {
      const rows = await db
        .selectFrom('log_nodes')
        .select(['level', 'idx', 'hash'])
        // `tree` inside each term: SQLite then looks each node up by primary key instead of scanning the tree.
        .where((eb) => eb.or(positions.map((p) => eb.and([eb('tree', '=', tree), eb('level', '=', p.level), eb('idx', '=', p.index)]))))
        .execute();
      for (const r of rows) nodes.set(`${Number(r.level)}:${Number(r.idx)}`, Buffer.from(r.hash, 'hex'));
    }
    return readerOf(nodes);
  }

  /** The stored hashes (hex) of the nodes at `nodes`' positions, fetched by one range per level. */
  async #storedNodes(tree: Tree, nodes: readonly NodePosition[]): Promise<Map<string, string>> {
    const ranges = new Map<number, { lo: number; hi: number }>();
    for (const n of nodes) {
      const r = ranges.get(n.level);
      ranges.set(n.level, { lo: Math.min(r?.lo ?? n.index, n.index), hi: Math.max(r?.hi ?? n.index, n.index) });
    }
    const out = new Map<string, string>();
    if (ranges.size === 0) return out;
    const rows = await this.#store.db
      .selectFrom('log_nodes')
      .select(['level', 'idx', 'hash'])
      // `tree` inside each term: SQLite then uses the primary key for every range instead of scanning the tree.
      .where((eb) => eb.or([...ranges].map(([level, { lo, hi }]) => eb.and([eb('tree', '=', tree), eb('level', '=', level), eb('idx', '>=', lo), eb('idx', '<=', hi)]))))
      .execute();
    for (const r of rows) out.set(`${Number(r.level)}:${Number(r.idx)}`, r.hash);
    return out;
  }

  async #sourceRow(tree: Tree, refId: string): Promise<Readonly<Record<string, unknown>> | undefined> {
    return (await this.#sourceRows(tree, [refId]))[0];
  }

  async #sourceRows(tree: Tree, refIds: readonly string[]): Promise<Array<Readonly<Record<string, unknown>>>> {
    const out: Array<Readonly<Record<string, unknown>>> = [];
    for (let i = 0; i < refIds.length; i += 500) {
      const ids = refIds.slice(i, i + 500);
      out.push(
        ...(tree === 'audit'
          ? await this.#store.db.selectFrom('audit_entries').selectAll().where('id', 'in', ids).execute()
          : await this.#store.db.selectFrom('consent_events').selectAll().where('id', 'in', ids).execute()),
      );
    }
    return out;
  }

  /** An entry that is neither sequenced nor queued (inserted around the log), if any. */
  async #orphan(tree: Tree): Promise<string | undefined> {
    const table = tree === 'audit' ? 'audit_entries' : 'consent_events';
    const row = await this.#store.db
      .selectFrom(`${table} as e` as 'audit_entries as e')
      .select('e.id')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('log_leaves as l').select('l.seq').where('l.tree', '=', tree).whereRef('l.ref_id', '=', 'e.id'))))
      .where((eb) => eb.not(eb.exists(eb.selectFrom('log_queue as q').select('q.ref_id').where('q.tree', '=', tree).whereRef('q.ref_id', '=', 'e.id'))))
      .limit(1)
      .executeTakeFirst();
    return row?.id;
  }
}

function readerOf(nodes: ReadonlyMap<string, Buffer>): NodeReader {
  return {
    get(level: number, index: number): Buffer {
      const n = nodes.get(`${level}:${index}`);
      if (n === undefined) throw new CustodianError('CST_ERR_INTERNAL', 'a stored subtree hash is missing', { details: { level, index } });
      return n;
    },
  };
}

