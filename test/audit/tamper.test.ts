/**
 * Tamper detection of the audit log on both stores: every way an operator with raw database access could change,
 * remove, reorder, insert, truncate or replace entries of the two Merkle trees (going around the append-only
 * triggers) makes `AuditLog.verify` fail, at the position of the change, and proof bundles stop verifying when
 * anything in them is altered.
 */
import fc from 'fast-check';
import { sql, type Insertable } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProofBundle, TreeHead } from '../../src/audit/audit-log.js';
import type { Tree } from '../../src/audit/leaves.js';
import type { Custodian } from '../../src/app/index.js';
import { uuidv7 } from '../../src/core/index.js';
import type { ConsentEventInput } from '../../src/ledger/index.js';
import type { ConsentEventsTable } from '../../src/store/index.js';
import { rootNodes, verifyBundle } from '../../src/verify/index.js';
import { STORE_KINDS, custodianFixture, type StoreKindUnderTest } from '../support/stores.js';

const TREES = ['audit', 'consent'] as const satisfies readonly Tree[];
const SOURCE = { audit: 'audit_entries', consent: 'consent_events' } as const;
const GUARDED = ['consent_events', 'audit_entries', 'log_leaves', 'log_nodes', 'log_heads'] as const;
const PURPOSES = ['analytics.reporting', 'marketing.advertising', 'personalize', 'functional.service.improve'] as const;
const DECISIONS = ['granted', 'denied', 'withdrawn'] as const;

type Row = Record<string, unknown>;

/** What a seeded store looks like: the entry ids of each tree in sequence order, and heads exported on the way. */
interface Seeded {
  readonly ids: Record<Tree, string[]>;
  /** Heads signed after the first batches, before the last ones. */
  readonly early: Record<Tree, TreeHead>;
  /** Heads signed at the end. */
  readonly late: Record<Tree, TreeHead>;
}

/** One character changed at the end (the smallest visible edit of a text column). */
const flip = (s: unknown) => {
  if (typeof s !== 'string' || s === '') throw new TypeError(`not a text to change: ${typeof s}`);
  return s.slice(0, -1) + (s.endsWith('x') ? 'y' : 'x');
};

function events(label: string, batch: number, count: number): ConsentEventInput[] {
  return Array.from({ length: count }, (_, i) => ({
    subjectId: `${label}-subject-${batch}-${i % 3}`,
    purpose: PURPOSES[(batch + i) % PURPOSES.length]!,
    decision: DECISIONS[(batch * 7 + i) % DECISIONS.length]!,
    jurisdiction: i % 2 === 0 ? 'EU' : 'US-CA',
    noticeVersion: `v${batch}`,
    ...(i % 4 === 0 ? { evidence: { ip: '203.0.113.7', userAgent: `agent ${batch}.${i}` } } : {}),
  }));
}

/**
 * Records consent events in `batches` (one audit entry each) and API keys (one audit entry each), integrating and
 * signing heads of both trees after the first three batches and again at the end.
 */
async function seed(c: Custodian, label: string, batches: readonly number[] = [8, 8, 8, 8, 8]): Promise<Seeded> {
  const heads = async () => ({ audit: await c.audit.checkpoint('audit'), consent: await c.audit.checkpoint('consent') });
  let early: Record<Tree, TreeHead> | undefined;
  for (const [b, count] of batches.entries()) {
    await c.ledger.record(events(label, b, count), { actor: `${label}-writer` });
    if (b === 2) {
      for (const name of ['reader one', 'reader two']) await c.apiKeys.create({ name, scopes: ['consent:read'], createdBy: 'test' });
      early = await heads();
    }
  }
  await c.apiKeys.create({ name: 'reader three', scopes: ['consent:read'], createdBy: 'test' });
  const late = await heads();
  return { ids: { audit: await idsOf(c, 'audit'), consent: await idsOf(c, 'consent') }, early: early ?? late, late };
}

/** The entry ids of `tree`, by sequence number. */
async function idsOf(c: Custodian, tree: Tree): Promise<string[]> {
  const rows = await c.store.db.selectFrom('log_leaves').select(['seq', 'ref_id']).where('tree', '=', tree).orderBy('seq').execute();
  rows.forEach((r, i) => expect(Number(r.seq)).toBe(i));
  return rows.map((r) => r.ref_id);
}

/** Goes around the append-only triggers, as an operator with the database owner's rights can. */
async function unguard(c: Custodian): Promise<void> {
  for (const table of GUARDED) {
    if (c.store.kind === 'sqlite') {
      await sql.raw(`drop trigger ${table}_no_update`).execute(c.store.db);
      await sql.raw(`drop trigger ${table}_no_delete`).execute(c.store.db);
    } else {
      await sql.raw(`drop trigger ${table}_append_only on ${table}`).execute(c.store.db);
      await sql.raw(`drop trigger ${table}_no_truncate on ${table}`).execute(c.store.db);
    }
  }
}

async function sourceRow(c: Custodian, tree: Tree, id: string): Promise<Row> {
  return c.store.db.selectFrom(SOURCE[tree] as 'consent_events').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

async function updateSource(c: Custodian, tree: Tree, id: string, values: Row): Promise<void> {
  const r = await c.store.db
    .updateTable(SOURCE[tree] as 'consent_events')
    .set(values)
    .where('id', '=', id)
    .executeTakeFirst();
  expect(Number(r.numUpdatedRows)).toBe(1);
}

async function deleteSource(c: Custodian, tree: Tree, id: string): Promise<void> {
  const r = await c.store.db.deleteFrom(SOURCE[tree] as 'consent_events').where('id', '=', id).executeTakeFirst();
  expect(Number(r.numDeletedRows)).toBe(1);
}

/** The column changed by one character in scenario (a): what a forger would most want to change. */
const EDITED = { audit: 'actor', consent: 'purpose' } as const;

/** Deletes leaves from `cut` on, every stored node covering one of them, and their entries; heads stay. */
async function truncate(c: Custodian, tree: Tree, ids: readonly string[], cut: number): Promise<void> {
  const db = c.store.db;
  await db.deleteFrom('log_leaves').where('tree', '=', tree).where('seq', '>=', cut).execute();
  const nodes = await db.selectFrom('log_nodes').select(['level', 'idx']).where('tree', '=', tree).execute();
  for (const n of nodes) {
    if ((Number(n.idx) + 1) * 2 ** n.level > cut) {
      await db.deleteFrom('log_nodes').where('tree', '=', tree).where('level', '=', n.level).where('idx', '=', n.idx).execute();
    }
  }
  for (const id of ids.slice(cut)) await deleteSource(c, tree, id);
}

async function nodeHashAt(c: Custodian, tree: Tree, level: number, idx: number): Promise<string> {
  return (await c.store.db.selectFrom('log_nodes').select('hash').where('tree', '=', tree).where('level', '=', level).where('idx', '=', idx).executeTakeFirstOrThrow()).hash;
}

async function setNodeHash(c: Custodian, tree: Tree, level: number, idx: number, hash: string): Promise<void> {
  const r = await c.store.db.updateTable('log_nodes').set({ hash }).where('tree', '=', tree).where('level', '=', level).where('idx', '=', idx).executeTakeFirst();
  expect(Number(r.numUpdatedRows)).toBe(1);
}

/** Flips the first bit of a hex hash. */
const flipHex = (h: string) => (parseInt(h[0]!, 16) ^ 8).toString(16) + h.slice(1);

describe.each(STORE_KINDS)('audit log tamper detection on %s', (kind: StoreKindUnderTest) => {
  /** A fresh store, seeded; removed after the test. */
  async function fresh(label: string, batches?: readonly number[]): Promise<{ c: Custodian; s: Seeded; done: () => Promise<void> }> {
    const { custodian: c, cleanup } = await custodianFixture(kind);
    try {
      return { c, s: await seed(c, label, batches), done: cleanup };
    } catch (err) {
      await cleanup();
      throw err;
    }
  }

  /** Runs `body` on a fresh seeded store with the triggers dropped. */
  async function tampered(label: string, body: (c: Custodian, s: Seeded) => Promise<void>): Promise<void> {
    const { c, s, done } = await fresh(label);
    try {
      await unguard(c);
      await body(c, s);
    } finally {
      await done();
    }
  }

  /** Another installation (its own store and signing key) with a different, longer history. */
  let other: { c: Custodian; s: Seeded; done: () => Promise<void> };
  beforeAll(async () => {
    other = await fresh('other', [8, 8, 8, 8, 8, 5, 3]);
  });
  afterAll(async () => other?.done());

  it('baseline: an untouched log verifies at its full size, with every head; the triggers refuse changes', async () => {
    const { c, s, done } = await fresh('base');
    try {
      expect(s.ids.consent).toHaveLength(40);
      expect(s.early.consent.size).toBe(24);
      expect(s.late.consent.size).toBe(40);
      for (const tree of TREES) {
        const report = await c.audit.verify(tree);
        expect(report).toEqual({ ok: true, tree, size: s.ids[tree].length, rootHash: s.late[tree].rootHash, headsChecked: 2 });
        // An exported head of the same log is consistent with it.
        expect(await c.audit.verify(tree, { checkpoint: s.early[tree].checkpoint })).toMatchObject({ ok: true, size: s.ids[tree].length });
      }
      // Five batches and three API keys are in the audit tree (after whatever the start recorded).
      expect(s.ids.audit.length).toBeGreaterThanOrEqual(8);
      expect(s.late.audit.size).toBe(s.ids.audit.length);
      // Without going around the triggers, nothing can be changed or removed.
      const id = s.ids.consent[5]!;
      await expect(c.store.db.updateTable('consent_events').set({ purpose: 'personalize' }).where('id', '=', id).execute()).rejects.toThrow(/append-only/);
      await expect(c.store.db.deleteFrom('consent_events').where('id', '=', id).execute()).rejects.toThrow(/append-only/);
      await expect(c.store.db.deleteFrom('audit_entries').execute()).rejects.toThrow(/append-only/);
      await expect(c.store.db.deleteFrom('log_leaves').where('seq', '=', 3).execute()).rejects.toThrow(/append-only/);
      await expect(c.store.db.updateTable('log_nodes').set({ hash: '00' }).execute()).rejects.toThrow(/append-only/);
      await expect(c.store.db.deleteFrom('log_heads').execute()).rejects.toThrow(/append-only/);
      if (kind === 'postgres') await expect(sql`truncate log_leaves`.execute(c.store.db)).rejects.toThrow(/append-only/);
      for (const tree of TREES) expect(await c.audit.verify(tree)).toMatchObject({ ok: true });
    } finally {
      await done();
    }
  });

  it('(a) one character of one entry changed: fails at that entry', async () => {
    await tampered('edit', async (c, s) => {
      const at = { audit: s.ids.audit.length - 4, consent: 17 };
      for (const tree of TREES) {
        const id = s.ids[tree][at[tree]]!;
        const column = EDITED[tree];
        await updateSource(c, tree, id, { [column]: flip((await sourceRow(c, tree, id))[column]) });
      }
      for (const tree of TREES) {
        expect(await c.audit.verify(tree)).toEqual({
          ok: false,
          tree,
          position: at[tree],
          problem: `leaf ${at[tree]}: the entry no longer matches its leaf hash (content changed, or entries swapped)`,
        });
      }
      // A consent decision turned around is caught the same way.
      await updateSource(c, 'consent', s.ids.consent[3]!, { decision: 'granted' === (await sourceRow(c, 'consent', s.ids.consent[3]!)).decision ? 'withdrawn' : 'granted' });
      expect(await c.audit.verify('consent')).toMatchObject({ ok: false, position: 3, problem: expect.stringMatching(/no longer matches/) as unknown });
    });
  });

  it('(b) an entry deleted: fails at its position', async () => {
    await tampered('delete-entry', async (c, s) => {
      const at = { audit: 2, consent: 30 };
      for (const tree of TREES) await deleteSource(c, tree, s.ids[tree][at[tree]]!);
      for (const tree of TREES) {
        expect(await c.audit.verify(tree)).toEqual({ ok: false, tree, position: at[tree], problem: `the entry of leaf ${at[tree]} is missing` });
      }
    });
  });

  it('(c) a leaf deleted from the tree: fails at the gap', async () => {
    await tampered('delete-leaf', async (c) => {
      const at = { audit: 1, consent: 12 };
      for (const tree of TREES) await c.store.db.deleteFrom('log_leaves').where('tree', '=', tree).where('seq', '=', at[tree]).execute();
      for (const tree of TREES) {
        expect(await c.audit.verify(tree)).toEqual({ ok: false, tree, position: at[tree], problem: `leaf ${at[tree]} is missing (next stored leaf is ${at[tree] + 1})` });
      }
    });
  });

  it('(d) the contents of two entries swapped: fails at the first', async () => {
    await tampered('swap', async (c, s) => {
      const at = { audit: [3, s.ids.audit.length - 2] as const, consent: [9, 33] as const };
      for (const tree of TREES) {
        const [i, j] = at[tree];
        const a = await sourceRow(c, tree, s.ids[tree][i]!);
        const b = await sourceRow(c, tree, s.ids[tree][j]!);
        const { id: _a, ...contentA } = a;
        const { id: _b, ...contentB } = b;
        expect(contentA).not.toEqual(contentB);
        await updateSource(c, tree, s.ids[tree][i]!, contentB);
        await updateSource(c, tree, s.ids[tree][j]!, contentA);
      }
      for (const tree of TREES) {
        const [i] = at[tree];
        expect(await c.audit.verify(tree)).toMatchObject({ ok: false, tree, position: i, problem: expect.stringMatching(new RegExp(`^leaf ${i}: the entry no longer matches`)) as unknown });
      }
    });
  });

  it('(e) the tail truncated: detected by the stored heads, and by an exported head once those are deleted too', async () => {
    await tampered('truncate', async (c, s) => {
      const cut = { audit: s.ids.audit.length - 2, consent: 35 };
      for (const tree of TREES) await truncate(c, tree, s.ids[tree], cut[tree]);
      for (const tree of TREES) {
        expect(await c.audit.verify(tree)).toEqual({
          ok: false,
          tree,
          position: cut[tree],
          problem: `the log holds ${cut[tree]} leaves but a signed head covers ${s.late[tree].size}: it was truncated`,
        });
      }
      // The forger deletes the heads that cover the removed tail: the store alone now looks consistent…
      for (const tree of TREES) await c.store.db.deleteFrom('log_heads').where('tree', '=', tree).where('size', '>', cut[tree]).execute();
      for (const tree of TREES) {
        expect(await c.audit.verify(tree)).toMatchObject({ ok: true, size: cut[tree], headsChecked: 1 });
        // …but not to an auditor who kept the latest head.
        expect(await c.audit.verify(tree, { checkpoint: s.late[tree].checkpoint })).toEqual({
          ok: false,
          tree,
          position: cut[tree],
          problem: `the log holds ${cut[tree]} leaves but a signed head covers ${s.late[tree].size}: it was truncated`,
        });
      }
      // Cut below every head and delete them all: an older exported head still tells.
      const deeper = { audit: s.early.audit.size - 3, consent: 20 };
      for (const tree of TREES) {
        await truncate(c, tree, s.ids[tree].slice(0, cut[tree]), deeper[tree]);
        await c.store.db.deleteFrom('log_heads').where('tree', '=', tree).execute();
        expect(await c.audit.verify(tree)).toMatchObject({ ok: true, size: deeper[tree], headsChecked: 0 });
        expect(await c.audit.verify(tree, { checkpoint: s.early[tree].checkpoint })).toMatchObject({
          ok: false,
          position: deeper[tree],
          problem: expect.stringMatching(/it was truncated$/) as unknown,
        });
      }
    });
  });

  it('(f) an entry inserted around the log (never queued): detected', async () => {
    await tampered('insert', async (c, s) => {
      for (const tree of TREES) {
        const model = await sourceRow(c, tree, s.ids[tree][4]!);
        const forged = { ...model, id: uuidv7(Date.now()), [EDITED[tree]]: flip(model[EDITED[tree]]) };
        await c.store.db.insertInto(SOURCE[tree] as 'consent_events').values(forged as unknown as Insertable<ConsentEventsTable>).execute();
        expect(await c.audit.verify(tree)).toEqual({ ok: false, tree, position: null, problem: `entry ${forged.id} is neither in the tree nor queued: it was inserted around the log` });
      }
    });
  });

  it('(g) the whole log replaced by a consistent other one: only an exported older head tells', async () => {
    await tampered('replace', async (c, s) => {
      const from = other.c.store.db;
      const db = c.store.db;
      for (const tree of TREES) {
        // Out with the original…
        for (const table of ['log_leaves', 'log_nodes', 'log_heads'] as const) await db.deleteFrom(table).where('tree', '=', tree).execute();
        await db.deleteFrom(SOURCE[tree] as 'consent_events').execute();
        // …in with the other installation's entries, leaves and subtree hashes (all consistent with each other).
        const entries = await from.selectFrom(SOURCE[tree] as 'consent_events').selectAll().execute();
        for (let i = 0; i < entries.length; i += 100) await db.insertInto(SOURCE[tree] as 'consent_events').values(entries.slice(i, i + 100) as unknown as Insertable<ConsentEventsTable>[]).execute();
        const leaves = await from.selectFrom('log_leaves').selectAll().where('tree', '=', tree).execute();
        await db.insertInto('log_leaves').values(leaves).execute();
        const nodes = await from.selectFrom('log_nodes').selectAll().where('tree', '=', tree).execute();
        await db.insertInto('log_nodes').values(nodes).execute();
      }
      for (const tree of TREES) {
        const size = other.s.ids[tree].length;
        expect(size).toBeGreaterThan(s.late[tree].size);
        // Nothing in the store contradicts the forged log…
        expect(await c.audit.verify(tree)).toMatchObject({ ok: true, size, headsChecked: 0 });
        // …but an auditor's older head of the original log does.
        for (const head of [s.early[tree], s.late[tree]]) {
          expect(await c.audit.verify(tree, { checkpoint: head.checkpoint })).toEqual({
            ok: false,
            tree,
            position: head.size,
            problem: `the log at size ${head.size} does not match its signed head: entries before it were changed, removed or inserted`,
          });
        }
        // The other installation's own heads do not verify under this installation's key.
        expect(await c.audit.verify(tree, { checkpoint: other.s.late[tree].checkpoint })).toMatchObject({
          ok: false,
          position: null,
          problem: expect.stringMatching(/^the given checkpoint does not verify/) as unknown,
        });
      }
    });
  });

  it('(h) a stored subtree hash changed or removed: detected', async () => {
    await tampered('node', async (c, s) => {
      for (const tree of TREES) {
        const size = s.late[tree].size;
        // A node on the path to the root of the current size, and one only inclusion proofs read.
        const [rootPart] = rootNodes(size).slice(-1);
        const inner = { level: 0, index: 3 };
        expect(rootNodes(size).some((p) => p.level === inner.level && p.index === inner.index)).toBe(false);
        for (const p of [rootPart!, inner, { level: 2, index: 1 }]) {
          const original = await nodeHashAt(c, tree, p.level, p.index);
          await setNodeHash(c, tree, p.level, p.index, flipHex(original));
          expect(await c.audit.verify(tree), `node (${p.level}, ${p.index}) of ${tree}`).toEqual({
            ok: false,
            tree,
            position: p.index * 2 ** p.level,
            problem: `the stored subtree hash (level ${p.level}, index ${p.index}) does not match the leaves`,
          });
          await setNodeHash(c, tree, p.level, p.index, original);
          expect(await c.audit.verify(tree)).toMatchObject({ ok: true, size });
        }
        // A deleted node is reported, not thrown.
        await c.store.db.deleteFrom('log_nodes').where('tree', '=', tree).where('level', '=', rootPart!.level).where('idx', '=', rootPart!.index).execute();
        expect(await c.audit.verify(tree)).toEqual({
          ok: false,
          tree,
          position: rootPart!.index * 2 ** rootPart!.level,
          problem: `the stored subtree hash (level ${rootPart!.level}, index ${rootPart!.index}) is missing`,
        });
      }
    });
  });

  it('proof bundles verify for random entries, and fail for another leaf, a flipped proof byte, a wrong index or another key', async () => {
    const { c, s, done } = await fresh('proof');
    try {
      const bundles = new Map<string, ProofBundle>();
      const bundle = async (tree: Tree, i: number) => {
        const key = `${tree}:${i}`;
        if (!bundles.has(key)) bundles.set(key, await c.audit.proofFor(tree, s.ids[tree][i]!));
        return bundles.get(key)!;
      };
      const otherKey = other.c.audit.verifierKey('consent');
      expect(otherKey).not.toBe(c.audit.verifierKey('consent'));
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...TREES),
          fc.nat(),
          fc.nat(),
          fc.nat(),
          async (tree, a, b, byte) => {
            const n = s.ids[tree].length;
            const i = a % n;
            const j = (i + 1 + (b % (n - 1))) % n;
            const good = await bundle(tree, i);
            const key = c.audit.verifierKey(tree);
            expect(good).toMatchObject({ tree, index: i, treeSize: s.late[tree].size, verifierKey: key });
            const ok = verifyBundle(good, good.verifierKey, { origin: `custodian/${tree}` });
            expect(ok.ok).toBe(true);
            // The leaf is the entry's canonical bytes, which the store still recomputes.
            expect(ok.ok && JSON.parse(ok.leaf.toString('utf8'))).toMatchObject({ v: 1, tree, id: s.ids[tree][i] });

            const otherLeaf = (await bundle(tree, j)).leaf;
            expect(verifyBundle({ ...good, leaf: otherLeaf }, key)).toEqual({ ok: false, reason: 'inclusion proof does not lead to the checkpoint root' });

            const proof = [...good.inclusionProof];
            const at = byte % proof.length;
            const raw = Buffer.from(proof[at]!, 'base64');
            raw[Math.floor(byte / proof.length) % raw.length]! ^= 1 << (byte % 8);
            proof[at] = raw.toString('base64');
            expect(verifyBundle({ ...good, inclusionProof: proof }, key)).toEqual({ ok: false, reason: 'inclusion proof does not lead to the checkpoint root' });

            expect(verifyBundle({ ...good, index: j }, key).ok).toBe(false);
            expect(verifyBundle({ ...good, index: good.treeSize }, key)).toEqual({ ok: false, reason: 'index is outside the tree' });

            const foreign = verifyBundle(good, tree === 'consent' ? otherKey : other.c.audit.verifierKey('audit'));
            expect(foreign.ok).toBe(false);
            expect(!foreign.ok && foreign.reason).toMatch(/^checkpoint: /);
          },
        ),
        { numRuns: 40 },
      );
    } finally {
      await done();
    }
  });
});

describe('audit log tamper detection, property (sqlite)', () => {
  /** A change of one committed column of a consent event, as a function of the stored row. */
  const later = (v: unknown) => new Date(Date.parse(String(v)) + 1).toISOString();
  const EDITS: Record<string, (row: Row) => Row> = {
    id: (r) => ({ id: uuidv7(Date.parse(String(r.recorded_at))) }),
    subject_id: (r) => ({ subject_id: flip(r.subject_id) }),
    purpose: (r) => ({ purpose: flip(r.purpose) }),
    decision: (r) => ({ decision: r.decision === 'granted' ? 'denied' : 'granted' }),
    legal_basis: (r) => ({ legal_basis: flip(r.legal_basis) }),
    jurisdiction: (r) => ({ jurisdiction: r.jurisdiction === null ? 'EU' : flip(r.jurisdiction) }),
    notice_version: (r) => ({ notice_version: r.notice_version === null ? 'v1' : flip(r.notice_version) }),
    method: (r) => ({ method: flip(r.method) }),
    recorded_at: (r) => ({ recorded_at: later(r.recorded_at) }),
    client_time: (r) => ({ client_time: r.client_time === null ? '2026-01-01T00:00:00.000Z' : later(r.client_time) }),
    expires_at: (r) => ({ expires_at: r.expires_at === null ? '2030-01-01T00:00:00.000Z' : later(r.expires_at) }),
    gpc: (r) => ({ gpc: Number(r.gpc) === 1 ? 0 : 1 }),
    evidence: (r) => ({ evidence: r.evidence === null ? '{}' : flip(r.evidence) }),
    evidence_format: (r) => ({ evidence_format: flip(r.evidence_format) }),
    batch_id: (r) => ({ batch_id: flip(r.batch_id) }),
    actor: (r) => ({ actor: flip(r.actor) }),
  };

  it('any single change of any committed field of any consent event is detected at its position', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 70 }).chain((size) =>
          fc.record({
            size: fc.constant(size),
            batches: fc.integer({ min: 1, max: Math.min(size, 5) }),
            at: fc.integer({ min: 0, max: size - 1 }),
            field: fc.constantFrom(...Object.keys(EDITS)),
            headAt: fc.option(fc.integer({ min: 1, max: size }), { nil: undefined }),
          }),
        ),
        async ({ size, batches, at, field, headAt }) => {
          const { custodian: c, cleanup } = await custodianFixture('sqlite');
          try {
            // `size` events in `batches` batches, with a head at `headAt` on the way.
            const per = Math.ceil(size / batches);
            let recorded = 0;
            for (let b = 0; recorded < size; b++) {
              const n = Math.min(per, size - recorded);
              const list = events('prop', b, n).map((e, i) => ({
                ...e,
                ...(i % 3 === 1 ? { clientTime: '2026-02-01T10:00:00.000Z', method: 'banner' as const } : {}),
                ...(i % 3 === 1 && e.decision === 'granted' ? { expiresAt: '2031-01-01T00:00:00.000Z' } : {}),
              }));
              await c.ledger.record(list, { actor: 'prop' });
              recorded += n;
              if (headAt !== undefined && recorded >= headAt && recorded - n < headAt) await c.audit.checkpoint('consent');
            }
            await c.audit.checkpoint('consent');
            const ids = await idsOf(c, 'consent');
            expect(ids).toHaveLength(size);
            expect(await c.audit.verify('consent')).toMatchObject({ ok: true, size });
            await unguard(c);
            const row = await sourceRow(c, 'consent', ids[at]!);
            await updateSource(c, 'consent', ids[at]!, EDITS[field]!(row));
            const report = await c.audit.verify('consent');
            expect(report, `${field} of event ${at} of ${size}`).toMatchObject({ ok: false, position: at });
            expect(!report.ok && report.problem).toBe(
              field === 'id' ? `the entry of leaf ${at} is missing` : `leaf ${at}: the entry no longer matches its leaf hash (content changed, or entries swapped)`,
            );
          } finally {
            await cleanup();
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});
