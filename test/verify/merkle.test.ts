import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT,
  appendNodes,
  consistencyProof,
  consistencyProofNodes,
  inclusionProof,
  inclusionProofNodes,
  leafHash,
  newNodesForAppend,
  nodeHash,
  rootAt,
  rootNodes,
  verifyConsistency,
  verifyInclusion,
  type MerkleNode,
  type NodePosition,
  type NodeReader,
} from '../../src/verify/index.js';

// --- reference: RFC 9162 §2.1 pseudo-code, literally, over all the leaves, hashed with createHash -----------------

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest();
}

/** The largest power of two smaller than n (n > 1). */
function kFor(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH, PATH and PROOF of RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1; MTH memoized per range only to keep tests fast. */
class ReferenceTree {
  readonly #memo = new Map<string, Buffer>();
  constructor(readonly leaves: readonly Buffer[]) {}

  /** MTH(D[lo:hi]). */
  mth(lo: number, hi: number): Buffer {
    const n = hi - lo;
    if (n === 0) return sha256();
    if (n === 1) return sha256(Buffer.from([0x00]), this.leaves[lo]!);
    const key = `${lo}:${hi}`;
    let value = this.#memo.get(key);
    if (value === undefined) {
      const k = kFor(n);
      value = sha256(Buffer.from([0x01]), this.mth(lo, lo + k), this.mth(lo + k, hi));
      this.#memo.set(key, value);
    }
    return value;
  }

  root(size: number): Buffer {
    return this.mth(0, size);
  }

  /** PATH(m, D[n]). */
  path(m: number, n: number): Buffer[] {
    const path = (m: number, lo: number, hi: number): Buffer[] => {
      const n = hi - lo;
      if (n === 1) return [];
      const k = kFor(n);
      return m < k ? [...path(m, lo, lo + k), this.mth(lo + k, hi)] : [...path(m - k, lo + k, hi), this.mth(lo, lo + k)];
    };
    return path(m, 0, n);
  }

  /** PROOF(m, D[n]) = SUBPROOF(m, D[n], true). */
  proof(m: number, n: number): Buffer[] {
    const subproof = (m: number, lo: number, hi: number, b: boolean): Buffer[] => {
      const n = hi - lo;
      if (m === n) return b ? [] : [this.mth(lo, hi)];
      const k = kFor(n);
      return m <= k
        ? [...subproof(m, lo, lo + k, b), this.mth(lo + k, hi)]
        : [...subproof(m - k, lo + k, hi, false), this.mth(lo, lo + k)];
    };
    return subproof(m, 0, n, true);
  }
}

/**
 * Verifiers derived from the recursive definitions instead of the RFC's iterative algorithms: walk PATH / SUBPROOF
 * from the root down, consuming proof elements from the end, and rebuild the root(s). Differential oracles.
 */
function referenceVerifyInclusion(leaf: Buffer, index: number, size: number, proof: Buffer[], root: Buffer): boolean {
  const rebuild = (m: number, n: number, path: Buffer[]): Buffer | undefined => {
    if (n === 1) return path.length === 0 ? leaf : undefined;
    if (path.length === 0) return undefined;
    const [rest, last] = [path.slice(0, -1), path.at(-1)!];
    const k = kFor(n);
    const sub = m < k ? rebuild(m, k, rest) : rebuild(m - k, n - k, rest);
    if (sub === undefined) return undefined;
    return m < k ? sha256(Buffer.from([1]), sub, last) : sha256(Buffer.from([1]), last, sub);
  };
  if (index >= size) return false;
  return rebuild(index, size, proof)?.equals(root) ?? false;
}

function referenceVerifyConsistency(m: number, n: number, proof: Buffer[], rootM: Buffer, rootN: Buffer): boolean {
  type Roots = { old: Buffer; new: Buffer } | undefined;
  const rebuild = (m: number, n: number, b: boolean, path: Buffer[]): Roots => {
    if (m === n) {
      if (b) return path.length === 0 ? { old: rootM, new: rootM } : undefined;
      return path.length === 1 ? { old: path[0]!, new: path[0]! } : undefined;
    }
    if (path.length === 0) return undefined;
    const [rest, last] = [path.slice(0, -1), path.at(-1)!];
    const k = kFor(n);
    if (m <= k) {
      const sub = rebuild(m, k, b, rest);
      return sub && { old: sub.old, new: sha256(Buffer.from([1]), sub.new, last) };
    }
    const sub = rebuild(m - k, n - k, false, rest);
    return sub && { old: sha256(Buffer.from([1]), last, sub.old), new: sha256(Buffer.from([1]), last, sub.new) };
  };
  if (m < 1 || m > n) return false;
  const roots = rebuild(m, n, true, proof);
  return roots !== undefined && roots.old.equals(rootM) && roots.new.equals(rootN);
}

// --- an in-memory node store ----------------------------------------------------------------------------------------

class MemoryNodeStore {
  readonly nodes = new Map<string, Buffer>();

  put(nodes: readonly MerkleNode[]): void {
    for (const { level, index, hash } of nodes) {
      const key = `${level}/${index}`;
      if (this.nodes.has(key)) throw new Error(`node ${key} written twice`);
      this.nodes.set(key, hash);
    }
  }

  get(level: number, index: number): Buffer {
    const hash = this.nodes.get(`${level}/${index}`);
    if (hash === undefined) throw new Error(`missing node ${level}/${index}`);
    return hash;
  }

  /**
   * A reader for a tree of `size` leaves that counts reads and fails on any node not complete at that size, so a
   * proof for an older size can never lean on later leaves.
   */
  reader(size: number, options: { async?: boolean; allowed?: readonly NodePosition[] } = {}): CountingReader {
    const reads: NodePosition[] = [];
    const get = (level: number, index: number): Buffer => {
      if ((index + 1) * 2 ** level > size) throw new Error(`node ${level}/${index} is not complete at size ${size}`);
      if (options.allowed && !options.allowed.some((p) => p.level === level && p.index === index)) {
        throw new Error(`unexpected read of node ${level}/${index}`);
      }
      reads.push({ level, index });
      return this.get(level, index);
    };
    return { reads, get: options.async ? async (level, index) => get(level, index) : get };
  }
}

interface CountingReader extends NodeReader {
  readonly reads: NodePosition[];
}

/** Unique leaf data (the index is part of it), so no two leaves of a tree share a hash. */
function leafData(salt: Uint8Array, count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const index = Buffer.alloc(4);
    index.writeUInt32BE(i);
    return Buffer.concat([salt, index]);
  });
}

/** A store filled one leaf at a time with newNodesForAppend, and the reference tree over the same leaves. */
function buildTree(leaves: readonly Buffer[]): { store: MemoryNodeStore; ref: ReferenceTree; hashes: Buffer[] } {
  const store = new MemoryNodeStore();
  const hashes = leaves.map((leaf) => leafHash(leaf));
  hashes.forEach((hash, size) => {
    const frontier = rootNodes(size);
    store.put(
      newNodesForAppend(size, hash, (level, index) => {
        expect(frontier).toContainEqual({ level, index });
        return store.get(level, index);
      }),
    );
  });
  return { store, ref: new ReferenceTree(leaves), hashes };
}

const hex = (hashes: readonly Uint8Array[]): string[] => hashes.map((h) => Buffer.from(h).toString('hex'));
const bitLength = (n: number): number => (n === 0 ? 0 : Math.floor(Math.log2(n)) + 1);
const popcount = (n: number): number => n.toString(2).replaceAll('0', '').length;

/** Leaves for 1..300-leaf trees: a random salt and a count. */
const treeArb = fc
  .record({ salt: fc.uint8Array({ maxLength: 8 }), count: fc.integer({ min: 1, max: 300 }) })
  .map(({ salt, count }) => leafData(salt, count));

// --- known answers --------------------------------------------------------------------------------------------------

// The RFC 6962 test vectors of the certificate-transparency reference implementation (also in transparency-dev/merkle).
const KAT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const KAT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const h = (x: string): Buffer => Buffer.from(x, 'hex');

describe('Merkle tree known answers (RFC 6962 test vectors)', () => {
  const { store, hashes } = buildTree(KAT_LEAVES.map(h));

  it('hashes the empty tree, leaves and nodes with the RFC 9162 prefixes', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(leafHash(Buffer.alloc(0)).toString('hex')).toBe(KAT_ROOTS[0]);
    expect(nodeHash(hashes[0]!, hashes[1]!).toString('hex')).toBe(KAT_ROOTS[1]);
    expect(() => nodeHash(Buffer.alloc(31), hashes[0]!)).toThrow(RangeError);
  });

  it('computes every root from the stored nodes', async () => {
    for (let size = 1; size <= 8; size++) {
      expect((await rootAt(size, store.reader(size))).toString('hex')).toBe(KAT_ROOTS[size - 1]);
    }
    expect(await rootAt(0, store.reader(0))).toEqual(EMPTY_ROOT);
  });

  it('produces and verifies the reference inclusion proofs', async () => {
    const proof58 = [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ];
    expect(hex(await inclusionProof(5, 8, store.reader(8)))).toEqual(proof58);
    expect(verifyInclusion(hashes[5]!, 5, 8, proof58.map(h), h(KAT_ROOTS[7]!))).toBe(true);
    expect(verifyInclusion(hashes[5]!, 4, 8, proof58.map(h), h(KAT_ROOTS[7]!))).toBe(false);
    expect(hex(await inclusionProof(2, 3, store.reader(3)))).toEqual([KAT_ROOTS[1]]);
    expect(verifyInclusion(hashes[2]!, 2, 3, [h(KAT_ROOTS[1]!)], h(KAT_ROOTS[2]!))).toBe(true);
  });

  it('produces and verifies the reference consistency proofs', async () => {
    const proof68 = [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ];
    expect(hex(await consistencyProof(6, 8, store.reader(8)))).toEqual(proof68);
    expect(verifyConsistency(6, 8, proof68.map(h), h(KAT_ROOTS[5]!), h(KAT_ROOTS[7]!))).toBe(true);
    expect(verifyConsistency(6, 8, proof68.map(h), h(KAT_ROOTS[4]!), h(KAT_ROOTS[7]!))).toBe(false);
    const proof25 = [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ];
    expect(hex(await consistencyProof(2, 5, store.reader(5)))).toEqual(proof25);
    expect(verifyConsistency(2, 5, proof25.map(h), h(KAT_ROOTS[1]!), h(KAT_ROOTS[4]!))).toBe(true);
  });
});

// --- properties against the reference -------------------------------------------------------------------------------

describe('Merkle tree from stored complete-subtree nodes', () => {
  it('gives MTH of every prefix, reading only the popcount(size) nodes of rootNodes(size)', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.boolean(), async (leaves, async) => {
        const { store, ref } = buildTree(leaves);
        for (let size = 0; size <= leaves.length; size++) {
          const reader = store.reader(size, { async });
          expect(await rootAt(size, reader)).toEqual(ref.root(size));
          expect(reader.reads).toEqual(rootNodes(size));
          expect(reader.reads).toHaveLength(popcount(size));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('gives inclusion proofs equal to PATH that verify, with at most 2·⌈log2 size⌉ reads', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.nat(), fc.boolean(), async (leaves, pick, async) => {
        const { store, ref, hashes } = buildTree(leaves);
        const size = 1 + (pick % leaves.length);
        const root = ref.root(size);
        for (let index = 0; index < size; index++) {
          const reader = store.reader(size, { async });
          const proof = await inclusionProof(index, size, reader);
          expect(hex(proof)).toEqual(hex(ref.path(index, size)));
          expect(verifyInclusion(hashes[index]!, index, size, proof, root)).toBe(true);
          expect(reader.reads.length).toBeLessThanOrEqual(2 * bitLength(size - 1));
          expect(reader.reads).toEqual(inclusionProofNodes(index, size));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('accepts an inclusion proof exactly when the leaf is at that index of that tree and the proof is its PATH', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.nat(), async (leaves, a, b, c, d, e) => {
        const { store, ref, hashes } = buildTree(leaves);
        const n = leaves.length;
        const size = 1 + (a % n);
        const index = b % size;
        const proof = await inclusionProof(index, size, store.reader(size));
        // Another claim: some leaf, at some index (possibly out of range), in some tree size, against that size's root.
        const otherSize = 1 + (c % n);
        const otherIndex = d % (otherSize + 2);
        const otherLeaf = e % n;
        const claimed = verifyInclusion(hashes[otherLeaf]!, otherIndex, otherSize, proof, ref.root(otherSize));
        const isTrue =
          otherLeaf === otherIndex && otherIndex < otherSize && hex(ref.path(otherIndex, otherSize)).join() === hex(proof).join();
        expect(claimed).toBe(isTrue);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the recursive reference verifier on any claimed leaf, index, size and root', async () => {
    // Small trees make coincidences of shape (the same proof valid for another index or size) frequent.
    const small = fc
      .record({ salt: fc.uint8Array({ maxLength: 4 }), count: fc.integer({ min: 1, max: 20 }) })
      .map(({ salt, count }) => leafData(salt, count));
    await fc.assert(
      fc.asyncProperty(small, fc.array(fc.nat(), { minLength: 6, maxLength: 6 }), async (leaves, [a, b, c, d, e, f]) => {
        const { store, ref, hashes } = buildTree(leaves);
        const n = leaves.length;
        const size = 1 + (a! % n);
        const proof = await inclusionProof(b! % size, size, store.reader(size));
        const otherSize = 1 + (c! % n);
        const otherIndex = d! % (otherSize + 1);
        const leaf = hashes[e! % n]!;
        const root = f! % 2 === 0 ? ref.root(size) : ref.root(otherSize);
        expect(verifyInclusion(leaf, otherIndex, otherSize, proof, root)).toBe(
          referenceVerifyInclusion(leaf, otherIndex, otherSize, proof, root),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects tampered, truncated and extended inclusion proofs, other leaves and malformed input without throwing', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.nat(), fc.nat(), fc.nat(), async (leaves, a, b, c) => {
        const { store, ref, hashes } = buildTree(leaves);
        const size = 1 + (a % leaves.length);
        const index = b % size;
        const root = ref.root(size);
        const leaf = hashes[index]!;
        const proof = await inclusionProof(index, size, store.reader(size));
        const extra = randomBytes(32);
        expect(verifyInclusion(randomBytes(32), index, size, proof, root)).toBe(false);
        expect(verifyInclusion(leaf, index, size, [...proof, extra], root)).toBe(false);
        expect(verifyInclusion(leaf, index, size, [extra, ...proof], root)).toBe(false);
        expect(verifyInclusion(leaf, index, size, [...proof, root], root)).toBe(false);
        if (proof.length > 0) {
          expect(verifyInclusion(leaf, index, size, proof.slice(0, -1), root)).toBe(false);
          expect(verifyInclusion(leaf, index, size, proof.slice(1), root)).toBe(false);
          const flipped = proof.map((p) => Buffer.from(p));
          const at = c % (32 * proof.length);
          flipped[Math.floor(at / 32)]![at % 32]! ^= 1 << c % 8;
          expect(verifyInclusion(leaf, index, size, flipped, root)).toBe(false);
          expect(verifyInclusion(leaf, index, size, [...proof.slice(0, -1), proof.at(-1)!.subarray(1)], root)).toBe(false);
        }
        const rootFlipped = Buffer.from(root);
        rootFlipped[c % 32]! ^= 0x80;
        expect(verifyInclusion(leaf, index, size, proof, rootFlipped)).toBe(false);
        expect(verifyInclusion(leaf, index + size, size, proof, root)).toBe(false);
        expect(verifyInclusion(leaf, index, index, proof, root)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('gives consistency proofs equal to PROOF that verify, for every 0 < m ≤ n, with at most 2·⌈log2 n⌉ reads', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.nat(), fc.boolean(), async (leaves, pick, async) => {
        const { store, ref } = buildTree(leaves);
        const n = 1 + (pick % leaves.length);
        for (let m = 1; m <= n; m++) {
          const reader = store.reader(n, { async });
          const proof = await consistencyProof(m, n, reader);
          expect(hex(proof)).toEqual(hex(ref.proof(m, n)));
          expect(verifyConsistency(m, n, proof, ref.root(m), ref.root(n))).toBe(true);
          expect(reader.reads.length).toBeLessThanOrEqual(2 * bitLength(n - 1));
          expect(reader.reads).toEqual(consistencyProofNodes(m, n));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('accepts a consistency proof exactly when it is PROOF for those sizes, and only with their roots', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.nat(), async (leaves, a, b, c, d, e) => {
        const { store, ref } = buildTree(leaves);
        const total = leaves.length;
        const n = 1 + (a % total);
        const m = 1 + (b % n);
        const proof = await consistencyProof(m, n, store.reader(n));
        const rootM = ref.root(m);
        const rootN = ref.root(n);
        // Other sizes with their true roots: accepted only where PROOF happens to be the same list.
        const n2 = 1 + (c % total);
        const m2 = 1 + (d % n2);
        const accepted = verifyConsistency(m2, n2, proof, ref.root(m2), ref.root(n2));
        expect(accepted).toBe(hex(ref.proof(m2, n2)).join() === hex(proof).join());
        // Wrong roots for the right sizes.
        const wrong = randomBytes(32);
        expect(verifyConsistency(m, n, proof, wrong, rootN)).toBe(false);
        expect(verifyConsistency(m, n, proof, rootM, wrong)).toBe(false);
        if (m > 1) expect(verifyConsistency(m, n, proof, ref.root(m - 1), rootN)).toBe(false);
        if (n < total) expect(verifyConsistency(m, n, proof, rootM, ref.root(n + 1))).toBe(false);
        // Truncated, extended, tampered.
        expect(verifyConsistency(m, n, [...proof, wrong], rootM, rootN)).toBe(false);
        expect(verifyConsistency(m, n, [wrong, ...proof], rootM, rootN)).toBe(false);
        if (proof.length > 0) {
          expect(verifyConsistency(m, n, proof.slice(0, -1), rootM, rootN)).toBe(false);
          expect(verifyConsistency(m, n, proof.slice(1), rootM, rootN)).toBe(false);
          const flipped = proof.map((p) => Buffer.from(p));
          const at = e % (32 * proof.length);
          flipped[Math.floor(at / 32)]![at % 32]! ^= 1 << e % 8;
          expect(verifyConsistency(m, n, flipped, rootM, rootN)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the recursive reference verifier on any claimed sizes and roots', async () => {
    const small = fc
      .record({ salt: fc.uint8Array({ maxLength: 4 }), count: fc.integer({ min: 1, max: 20 }) })
      .map(({ salt, count }) => leafData(salt, count));
    await fc.assert(
      fc.asyncProperty(small, fc.array(fc.nat(), { minLength: 6, maxLength: 6 }), async (leaves, [a, b, c, d, e, f]) => {
        const { store, ref } = buildTree(leaves);
        const total = leaves.length;
        const n = 1 + (a! % total);
        const m = 1 + (b! % n);
        const proof = await consistencyProof(m, n, store.reader(n));
        const n2 = 1 + (c! % total);
        const m2 = 1 + (d! % n2);
        const rootM = e! % 2 === 0 ? ref.root(m) : ref.root(m2);
        const rootN = f! % 2 === 0 ? ref.root(n) : ref.root(n2);
        expect(verifyConsistency(m2, n2, proof, rootM, rootN)).toBe(referenceVerifyConsistency(m2, n2, proof, rootM, rootN));
      }),
      { numRuns: 2000 },
    );
  });

  it('appends a batch to the same nodes, size and root as one leaf at a time, reading only rootNodes(startSize)', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.array(fc.nat(), { maxLength: 10 }), fc.boolean(), async (leaves, cuts, async) => {
        const { store: oneByOne, ref, hashes } = buildTree(leaves);
        const bounds = [...new Set([0, ...cuts.map((c) => c % (leaves.length + 1)), leaves.length])].sort((x, y) => x - y);
        const batched = new MemoryNodeStore();
        const appended: MerkleNode[] = [];
        for (let i = 0; i + 1 < bounds.length; i++) {
          const [start, end] = [bounds[i]!, bounds[i + 1]!];
          const reader = batched.reader(start, { async, allowed: rootNodes(start) });
          const result = await appendNodes(start, hashes.slice(start, end), reader);
          expect(reader.reads).toHaveLength(popcount(start));
          expect(result.size).toBe(end);
          expect(result.root).toEqual(ref.root(end));
          batched.put(result.nodes);
          appended.push(...result.nodes);
        }
        expect(new Map(batched.nodes)).toEqual(new Map(oneByOne.nodes));
        const oneAtATime: MerkleNode[] = [];
        const scratch = new MemoryNodeStore();
        hashes.forEach((hash, size) => {
          const nodes = newNodesForAppend(size, hash, (level, index) => scratch.get(level, index));
          scratch.put(nodes);
          oneAtATime.push(...nodes);
        });
        expect(appended).toEqual(oneAtATime);
        // 2n − 1 nodes for n leaves when n is a power of two; never more.
        expect(appended.length).toBeLessThanOrEqual(2 * leaves.length);
      }),
      { numRuns: 60 },
    );
  });
});

describe('Merkle tree sizes around powers of two (up to 2^12 + 1)', () => {
  const SIZES = [
    ...new Set(Array.from({ length: 13 }, (_, k) => [2 ** k - 1, 2 ** k, 2 ** k + 1]).flat()),
  ]
    .filter((s) => s > 0)
    .sort((a, b) => a - b);
  const total = SIZES.at(-1)!;
  let tree: ReturnType<typeof buildTree>;
  beforeAll(() => {
    tree = buildTree(leafData(Buffer.from('pow2'), total));
  });

  it('gives MTH for every such size', async () => {
    for (const size of SIZES) expect(await rootAt(size, tree.store.reader(size))).toEqual(tree.ref.root(size));
  });

  it('gives PATH at the edges and around powers of two, and it verifies', async () => {
    for (const size of SIZES) {
      const root = tree.ref.root(size);
      const indexes = new Set([0, size - 1, size >> 1, ...SIZES.filter((s) => s < size), ...SIZES.map((s) => s - 1)]);
      for (const index of [...indexes].filter((i) => i >= 0 && i < size)) {
        const proof = await inclusionProof(index, size, tree.store.reader(size));
        expect(hex(proof)).toEqual(hex(tree.ref.path(index, size)));
        expect(verifyInclusion(tree.hashes[index]!, index, size, proof, root)).toBe(true);
        if (size > 1) expect(verifyInclusion(tree.hashes[index]!, index, size, proof.slice(1), root)).toBe(false);
      }
    }
  });

  it('gives PROOF between every pair of such sizes, and it verifies', async () => {
    for (const n of SIZES) {
      for (const m of SIZES.filter((s) => s <= n)) {
        const proof = await consistencyProof(m, n, tree.store.reader(n));
        expect(hex(proof)).toEqual(hex(tree.ref.proof(m, n)));
        const [rootM, rootN] = [tree.ref.root(m), tree.ref.root(n)];
        expect(verifyConsistency(m, n, proof, rootM, rootN)).toBe(true);
        if (m < n) expect(verifyConsistency(m, n, proof, rootN, rootM)).toBe(false);
      }
    }
  });
});

describe('Merkle tree edge cases', () => {
  const { store, ref, hashes } = buildTree(leafData(Buffer.from('edge'), 20));

  it('handles the empty tree', async () => {
    expect(await rootAt(0, store.reader(0))).toEqual(EMPTY_ROOT);
    expect(rootNodes(0)).toEqual([]);
    await expect(inclusionProof(0, 0, store.reader(0))).rejects.toThrow(RangeError);
    expect(verifyInclusion(hashes[0]!, 0, 0, [], EMPTY_ROOT)).toBe(false);
    expect(await consistencyProof(0, 0, store.reader(0))).toEqual([]);
    expect(verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)).toBe(true);
    const result = await appendNodes(0, [], store.reader(0));
    expect(result).toEqual({ nodes: [], size: 0, root: EMPTY_ROOT });
  });

  it('treats m = 0 and m = n as empty proofs that need the right roots', async () => {
    expect(await consistencyProof(0, 13, store.reader(13))).toEqual([]);
    expect(verifyConsistency(0, 13, [], EMPTY_ROOT, ref.root(13))).toBe(true);
    expect(verifyConsistency(0, 13, [], ref.root(1), ref.root(13))).toBe(false);
    expect(verifyConsistency(0, 13, [ref.root(13)], EMPTY_ROOT, ref.root(13))).toBe(false);
    expect(await consistencyProof(13, 13, store.reader(13))).toEqual([]);
    expect(verifyConsistency(13, 13, [], ref.root(13), ref.root(13))).toBe(true);
    expect(verifyConsistency(13, 13, [], ref.root(12), ref.root(13))).toBe(false);
    expect(verifyConsistency(13, 13, [ref.root(13)], ref.root(13), ref.root(13))).toBe(false);
    expect(verifyConsistency(5, 13, [], ref.root(5), ref.root(13))).toBe(false);
  });

  it('refuses impossible proof requests with a RangeError', async () => {
    const reader = store.reader(20);
    await expect(inclusionProof(20, 20, reader)).rejects.toThrow(RangeError);
    await expect(inclusionProof(-1, 20, reader)).rejects.toThrow(RangeError);
    await expect(inclusionProof(1.5, 20, reader)).rejects.toThrow(RangeError);
    await expect(consistencyProof(14, 13, reader)).rejects.toThrow(RangeError);
    await expect(rootAt(Number.NaN, reader)).rejects.toThrow(RangeError);
    expect(() => newNodesForAppend(3, Buffer.alloc(31), () => hashes[0]!)).toThrow(RangeError);
    await expect(appendNodes(20, [Buffer.alloc(33)], store.reader(20))).rejects.toThrow(RangeError);
  });

  it('fails clearly when a stored node is missing or not a hash', async () => {
    await expect(rootAt(3, { get: () => Buffer.alloc(0) })).rejects.toThrow(/Merkle node \(\d, \d\) is missing/);
    await expect(rootAt(3, { get: async () => undefined as unknown as Buffer })).rejects.toThrow(/missing/);
    await expect(rootAt(3, { get: () => Promise.reject(new Error('db down')) })).rejects.toThrow('db down');
  });

  it('never throws on garbage given to the verifiers', () => {
    const root = ref.root(20);
    const proof = ref.path(3, 20);
    const garbage: unknown[] = [undefined, null, 'x', 1.5, -1, Number.NaN, Infinity, 2 ** 60, [], {}, Buffer.alloc(31)];
    for (const g of garbage) {
      const any = g as never;
      expect(verifyInclusion(any, 3, 20, proof, root)).toBe(false);
      expect(verifyInclusion(hashes[3]!, any, 20, proof, root)).toBe(false);
      expect(verifyInclusion(hashes[3]!, 3, any, proof, root)).toBe(false);
      expect(verifyInclusion(hashes[3]!, 3, 20, any, root)).toBe(false);
      expect(verifyInclusion(hashes[3]!, 3, 20, [...proof.slice(1), any], root)).toBe(false);
      expect(verifyInclusion(hashes[3]!, 3, 20, proof, any)).toBe(false);
      expect(verifyConsistency(any, 20, ref.proof(7, 20), ref.root(7), root)).toBe(false);
      expect(verifyConsistency(7, any, ref.proof(7, 20), ref.root(7), root)).toBe(false);
      expect(verifyConsistency(7, 20, any, ref.root(7), root)).toBe(false);
      expect(verifyConsistency(7, 20, [...ref.proof(7, 20).slice(1), any], ref.root(7), root)).toBe(false);
      expect(verifyConsistency(7, 20, ref.proof(7, 20), any, root)).toBe(false);
      expect(verifyConsistency(7, 20, ref.proof(7, 20), ref.root(7), any)).toBe(false);
    }
    expect(verifyConsistency(20, 7, [], root, ref.root(7))).toBe(false);
  });

  it('keeps exact arithmetic up to 2^53 − 1 leaves', async () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(rootNodes(max)).toHaveLength(53);
    expect(rootNodes(max).at(-1)).toEqual({ level: 0, index: max - 1 });
    const path = inclusionProofNodes(max - 1, max);
    expect(path.every((p) => Number.isSafeInteger(p.index) && (p.index + 1) * 2 ** p.level <= max)).toBe(true);
    expect(path.length).toBeLessThanOrEqual(2 * 53);
    const consistency = consistencyProofNodes(2 ** 52 + 1, max);
    expect(consistency.every((p) => Number.isSafeInteger(p.index) && (p.index + 1) * 2 ** p.level <= max)).toBe(true);
    const fake = Array.from({ length: 53 }, () => randomBytes(32));
    expect(verifyInclusion(hashes[0]!, max - 1, max, fake, randomBytes(32))).toBe(false);
    expect(verifyConsistency(2 ** 52 + 1, max, fake, randomBytes(32), randomBytes(32))).toBe(false);
    await expect(appendNodes(max, [hashes[0]!], store.reader(20))).rejects.toThrow(RangeError);
  });
});
