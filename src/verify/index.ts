/**
 * The standalone verifier for Custodian's tamper-evident audit log: RFC 9162 Merkle trees and proofs, C2SP signed
 * checkpoints, and {@link verifyBundle} for the proof bundle Custodian hands out. It imports nothing from the rest
 * of Custodian and only node:crypto, so an auditor can run it without Custodian's store or server.
 *
 * @example An auditor checks that a consent record is in the log the operator signed:
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { verifyBundle } from 'custodian/verify'; // or a copy of src/verify: it has no other dependency
 *
 * // Obtained out of band from the operator, once, and pinned.
 * const LOG_KEY = 'custodian.example.com/audit+4e1b0c27+AbX…';
 *
 * const bundle = JSON.parse(await readFile('proof.json', 'utf8'));
 * // { leaf: '<base64 canonical entry>', index: 41, treeSize: 1024,
 * //   inclusionProof: ['<base64 hash>', …], checkpoint: 'custodian.example.com/audit\n1024\n…' }
 * const result = verifyBundle(bundle, LOG_KEY, { origin: 'custodian.example.com/audit' });
 * if (!result.ok) throw new Error(`not proven: ${result.reason}`);
 * // result.leaf holds the canonical bytes the log committed to; decode them with the audit module's format.
 * const { size, time } = result.checkpoint;
 * console.log(`entry ${result.index} is in the log of ${size} entries signed at ${time?.toISOString()}`);
 * ```
 * Under the hood: leafHash(leaf) → verifyInclusion against the checkpoint's root and size → verifyCheckpoint.
 * To be sure the log never forked, an auditor also keeps the last checkpoint it trusted and checks a consistency
 * proof to each newer one with {@link verifyConsistency}.
 */
import { verifyCheckpoint, type Checkpoint, type VerifierKey, type VerifyCheckpointOptions } from './checkpoint.js';
import { HASH_SIZE, leafHash, verifyInclusion } from './merkle.js';

export {
  EMPTY_ROOT,
  HASH_SIZE,
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
  type AppendResult,
  type MerkleNode,
  type NodePosition,
  type NodeReader,
} from './merkle.js';
export {
  CHECKPOINT_TIME_PREFIX,
  CheckpointError,
  ED25519_SIGNATURE_TYPE,
  MAX_NOTE_SIGNATURES,
  formatCheckpoint,
  keyId,
  parseCheckpoint,
  parseCheckpointBody,
  parseNote,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  verifierKeyString,
  verifyCheckpoint,
  verifyNote,
  type Checkpoint,
  type CheckpointFields,
  type CheckpointVerification,
  type NoteSignature,
  type NoteVerification,
  type SignedCheckpoint,
  type SignedNote,
  type VerifierKey,
  type VerifyCheckpointOptions,
} from './checkpoint.js';

/** The self-contained proof that one log entry is in a signed tree, as Custodian hands it out (JSON-friendly). */
export interface ProofBundle {
  /** The entry's canonical bytes, standard base64; opaque here, defined by the audit module. */
  readonly leaf: string;
  /** 0-based position of the entry in the log. */
  readonly index: number;
  /** Size of the tree the proof is for; must equal the checkpoint's size. */
  readonly treeSize: number;
  /** RFC 9162 inclusion path, leaf to root, each a standard base64 32-byte hash. */
  readonly inclusionProof: readonly string[];
  /** The signed checkpoint (C2SP signed note) for `treeSize`. */
  readonly checkpoint: string;
}

export type BundleVerification =
  | {
      readonly ok: true;
      /** The decoded canonical leaf bytes, now proven to be in the log. */
      readonly leaf: Buffer;
      readonly leafHash: Buffer;
      readonly index: number;
      readonly checkpoint: Checkpoint;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks a {@link ProofBundle} against the log's verifier key: the checkpoint is signed by that key (and has the
 * expected origin, when given), covers `treeSize`, and the inclusion proof leads from the leaf to its root.
 * Never throws: a bundle of any shape (e.g. straight from `JSON.parse`) yields `{ ok: false, reason }` if wrong.
 */
export function verifyBundle(
  bundle: ProofBundle,
  verifierKey: string | VerifierKey,
  options: VerifyCheckpointOptions = {},
): BundleVerification {
  const shape = bundle as Partial<Record<keyof ProofBundle, unknown>> | null;
  if (typeof shape !== 'object' || shape === null) return fail('bundle must be an object');
  const leaf = typeof shape.leaf === 'string' ? decodeBase64(shape.leaf) : undefined;
  if (leaf === undefined) return fail('leaf must be canonical base64');
  if (!isCount(shape.index)) return fail('index must be a non-negative integer');
  if (!isCount(shape.treeSize)) return fail('treeSize must be a non-negative integer');
  if (!Array.isArray(shape.inclusionProof)) return fail('inclusionProof must be an array');
  const proof: Buffer[] = [];
  for (const element of shape.inclusionProof as unknown[]) {
    const hash = typeof element === 'string' ? decodeBase64(element) : undefined;
    if (hash?.length !== HASH_SIZE) return fail(`inclusionProof elements must be base64 ${HASH_SIZE}-byte hashes`);
    proof.push(hash);
  }
  if (typeof shape.checkpoint !== 'string') return fail('checkpoint must be a signed note');

  const verified = verifyCheckpoint(shape.checkpoint, verifierKey, options);
  if (!verified.ok) return fail(`checkpoint: ${verified.reason}`);
  const { checkpoint } = verified;
  if (checkpoint.size !== shape.treeSize) return fail('treeSize is not the size of the signed checkpoint');
  if (shape.index >= shape.treeSize) return fail('index is outside the tree');
  const hash = leafHash(leaf);
  if (!verifyInclusion(hash, shape.index, shape.treeSize, proof, checkpoint.rootHash)) {
    return fail('inclusion proof does not lead to the checkpoint root');
  }
  return { ok: true, leaf, leafHash: hash, index: shape.index, checkpoint };
}

function fail(reason: string): { readonly ok: false; readonly reason: string } {
  return { ok: false, reason };
}

function isCount(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function decodeBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}
