/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures, and the transparency-log checkpoints
 * carried in them (https://c2sp.org/tlog-checkpoint). Standalone: node:crypto only, no Custodian error codes, so an
 * auditor can check a checkpoint without Custodian. Byte-compatible with Go's golang.org/x/mod/sumdb/note.
 *
 * A signed checkpoint:
 * ```text
 * custodian.example.com/audit          ← origin
 * 8                                    ← tree size, decimal, no leading zeros
 * XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=   ← base64 RFC 9162 root hash
 * time 2025-01-02T03:04:05.678Z        ← optional extension line (Custodian's signing time)
 *                                      ← blank line
 * — custodian.example.com/audit <base64(4-byte key ID ‖ 64-byte Ed25519 signature)>
 * ```
 *
 * **The `time` extension.** tlog-checkpoint allows opaque, non-empty extension lines after the root hash (and calls
 * them NOT RECOMMENDED, because monitors cannot audit them and ML-DSA-44 cosignatures do not cover them). Custodian
 * uses one, `time <ISO-8601 UTC with milliseconds>`, for the time the log signed the checkpoint; the Ed25519 log
 * signature covers it, witnesses' cosignatures would not. A checkpoint without it is valid; one with a malformed or
 * repeated `time` line is rejected.
 */
import { createPublicKey, hash, KeyObject, sign, verify } from 'node:crypto';

/** Signature type byte of Ed25519 in signed notes (c2sp.org/signed-note, "Signature types"). */
export const ED25519_SIGNATURE_TYPE = 0x01;
/** The most signature lines a note may carry: Go's limit; the spec requires accepting at least 16. */
export const MAX_NOTE_SIGNATURES = 100;
/** Prefix of Custodian's signing-time extension line. */
export const CHECKPOINT_TIME_PREFIX = 'time ';

const SIGNATURE_PREFIX = '\u2014 '; // em dash, space
const ED25519_SIGNATURE_SIZE = 64;
const ED25519_PUBLIC_KEY_SIZE = 32;
const ROOT_HASH_SIZE = 32;

/** Thrown by the parsing, formatting and signing functions here for malformed input; the message says what is wrong. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

/** What {@link formatCheckpoint} takes. */
export interface CheckpointFields {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** Written as the first extension line `time <ISO-8601>`; millisecond precision. */
  readonly time?: Date;
  /** Further extension lines, each non-empty, without control characters, none starting with `time `. */
  readonly extensions?: readonly string[];
}

/** A parsed checkpoint body. */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** From the `time` extension line, when there is one. */
  readonly time?: Date;
  /** The other extension lines, in order. */
  readonly extensions: readonly string[];
}

/** One signature line of a note. */
export interface NoteSignature {
  readonly keyName: string;
  /** The 32-bit key ID: the first four bytes of the signature, big-endian. */
  readonly keyId: number;
  /** The signature proper, without the key ID. */
  readonly signature: Buffer;
}

/** A signed note split into its text (the signed bytes, final newline included) and signature lines. */
export interface SignedNote {
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** A signed note whose text parsed as a checkpoint; nothing verified yet. */
export interface SignedCheckpoint extends SignedNote {
  readonly checkpoint: Checkpoint;
}

/** A parsed verifier key `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`. */
export interface VerifierKey {
  readonly keyName: string;
  readonly keyId: number;
  readonly publicKey: KeyObject;
}

export type NoteVerification =
  | { readonly ok: true; readonly text: string; readonly signatures: readonly NoteSignature[] }
  | { readonly ok: false; readonly reason: string };

export type CheckpointVerification =
  | { readonly ok: true; readonly checkpoint: Checkpoint; readonly text: string }
  | { readonly ok: false; readonly reason: string };

export interface VerifyCheckpointOptions {
  /** When set, the checkpoint's origin line must equal it (the log's identity, usually also its key name). */
  readonly origin?: string;
}

// --- keys ----------------------------------------------------------------------------------------------------------

/** The signed-note key ID of an Ed25519 key: SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4], big-endian. */
export function keyId(keyName: string, publicKey: KeyObject): number {
  assertKeyName(keyName);
  return computeKeyId(keyName, ed25519PublicBytes(publicKey));
}

/**
 * The verifier key string an auditor configures, `<name>+<8 hex digits>+<base64(0x01 ‖ public key)>`, from an
 * Ed25519 public (or private) key.
 */
export function verifierKeyString(keyName: string, publicKey: KeyObject): string {
  assertKeyName(keyName);
  const raw = ed25519PublicBytes(publicKey);
  const id = computeKeyId(keyName, raw).toString(16).padStart(8, '0');
  return `${keyName}+${id}+${Buffer.concat([Buffer.from([ED25519_SIGNATURE_TYPE]), raw]).toString('base64')}`;
}

/**
 * Parses a verifier key string, checking that its key ID matches its name and key.
 * @throws CheckpointError when malformed, not Ed25519, or the key ID does not match.
 */
export function parseVerifierKey(verifierKey: string): VerifierKey {
  if (typeof verifierKey !== 'string') throw new CheckpointError('verifier key: expected a string');
  // The name cannot contain '+', the base64 key can: split at the first two.
  const first = verifierKey.indexOf('+');
  const second = first < 0 ? -1 : verifierKey.indexOf('+', first + 1);
  if (second < 0) throw new CheckpointError('verifier key: expected <name>+<key id>+<key>');
  const keyName = verifierKey.slice(0, first);
  const idHex = verifierKey.slice(first + 1, second);
  if (!isKeyName(keyName)) throw new CheckpointError('verifier key: invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) throw new CheckpointError('verifier key: key id must be 8 hex digits');
  const key = decodeBase64(verifierKey.slice(second + 1));
  if (key === undefined) throw new CheckpointError('verifier key: key is not canonical base64');
  if (key.length !== 1 + ED25519_PUBLIC_KEY_SIZE || key[0] !== ED25519_SIGNATURE_TYPE) {
    throw new CheckpointError('verifier key: not an Ed25519 key (type 0x01 followed by 32 bytes)');
  }
  const raw = key.subarray(1);
  const id = Number.parseInt(idHex, 16);
  if (computeKeyId(keyName, raw) !== id) throw new CheckpointError('verifier key: key id does not match name and key');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch (cause) {
    throw new CheckpointError('verifier key: not a usable Ed25519 public key', { cause });
  }
  return { keyName, keyId: id, publicKey };
}

// --- signed notes --------------------------------------------------------------------------------------------------

/**
 * Signs a note text (ending in a newline) with an Ed25519 private key, returning the note with one signature line.
 * @throws CheckpointError for a malformed text or key name, or a key that is not an Ed25519 private key.
 */
export function signNote(text: string, keyName: string, privateKey: KeyObject): string {
  assertKeyName(keyName);
  if (typeof text !== 'string' || text === '' || !text.endsWith('\n')) {
    throw new CheckpointError('note: text must be non-empty and end with a newline');
  }
  assertNoteCharacters(text, 'note');
  if (!(privateKey instanceof KeyObject) || privateKey.type !== 'private') {
    throw new CheckpointError('note: signing needs an Ed25519 private key');
  }
  const id = Buffer.alloc(4);
  id.writeUInt32BE(computeKeyId(keyName, ed25519PublicBytes(privateKey)));
  const signature = sign(null, Buffer.from(text, 'utf8'), privateKey);
  return `${text}\n${SIGNATURE_PREFIX}${keyName} ${Buffer.concat([id, signature]).toString('base64')}\n`;
}

/**
 * Splits a signed note into text and signature lines, strictly: valid UTF-8, no control characters but newline,
 * a blank line before 1 to {@link MAX_NOTE_SIGNATURES} well-formed signature lines. Verifies nothing.
 * @throws CheckpointError naming what is malformed.
 */
export function parseNote(note: string | Uint8Array): SignedNote {
  const source = decodeNote(note);
  assertNoteCharacters(source, 'note');
  if (!source.endsWith('\n')) throw new CheckpointError('note: must end with a newline');
  // The text is separated from the signatures by the last blank line (c2sp.org/signed-note, "Format").
  const split = source.lastIndexOf('\n\n');
  if (split < 0) throw new CheckpointError('note: no blank line before the signatures');
  const text = source.slice(0, split + 1);
  const lines = source.slice(split + 2, -1);
  if (lines === '') throw new CheckpointError('note: no signature lines');
  const signatureLines = lines.split('\n');
  if (signatureLines.length > MAX_NOTE_SIGNATURES) {
    throw new CheckpointError(`note: more than ${MAX_NOTE_SIGNATURES} signature lines`);
  }
  const signatures = signatureLines.map((line, i) => {
    const parts = line.startsWith(SIGNATURE_PREFIX) ? line.slice(SIGNATURE_PREFIX.length).split(' ') : [];
    if (parts.length !== 2) {
      throw new CheckpointError(`note: signature line ${i + 1} is not "\u2014 <key name> <base64 signature>"`);
    }
    const [keyName, encoded] = parts as [string, string];
    if (!isKeyName(keyName)) throw new CheckpointError(`note: signature line ${i + 1} has an invalid key name`);
    const bytes = decodeBase64(encoded);
    if (bytes === undefined || bytes.length < 5) {
      throw new CheckpointError(`note: signature line ${i + 1} is not canonical base64 of a key id and signature`);
    }
    return { keyName, keyId: bytes.readUInt32BE(0), signature: bytes.subarray(4) };
  });
  return { text, signatures };
}

/**
 * Verifies a signed note against one verifier key. Signatures by other keys are ignored; every signature line with
 * this key's name and ID must verify, and there must be at least one (c2sp.org/signed-note, "Signatures").
 * Never throws.
 */
export function verifyNote(note: string | Uint8Array, verifierKey: string | VerifierKey): NoteVerification {
  try {
    const key = typeof verifierKey === 'string' ? parseVerifierKey(verifierKey) : verifierKey;
    const parsed = parseNote(note);
    const candidates = parsed.signatures.filter((s) => s.keyName === key.keyName && s.keyId === key.keyId);
    const label = `${key.keyName}+${key.keyId.toString(16).padStart(8, '0')}`;
    if (candidates.length === 0) return { ok: false, reason: `note is not signed by key ${label}` };
    const data = Buffer.from(parsed.text, 'utf8');
    for (const candidate of candidates) {
      const valid =
        candidate.signature.length === ED25519_SIGNATURE_SIZE && verify(null, data, key.publicKey, candidate.signature);
      if (!valid) return { ok: false, reason: `signature by key ${label} does not verify` };
    }
    return { ok: true, text: parsed.text, signatures: parsed.signatures };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : 'note could not be verified' };
  }
}

// --- checkpoints ---------------------------------------------------------------------------------------------------

/**
 * The checkpoint body (the note text to sign): origin, size, base64 root hash, then the `time` line if given and
 * any other extension lines, each ending in a newline.
 * `formatCheckpoint(parseCheckpointBody(body)) === body` for every body with its `time` line first.
 * @throws CheckpointError for an empty origin, a size that is not a safe non-negative integer, a root hash that is
 *   not 32 bytes, an invalid time, or an empty, multi-line or `time ` extension.
 */
export function formatCheckpoint(fields: CheckpointFields): string {
  const { origin, size, rootHash, time, extensions = [] } = fields;
  if (typeof origin !== 'string' || origin === '' || hasControlCharacter(origin, false)) {
    throw new CheckpointError('checkpoint: origin must be a non-empty line');
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new CheckpointError('checkpoint: size must be a non-negative safe integer');
  }
  if (!(rootHash instanceof Uint8Array) || rootHash.length !== ROOT_HASH_SIZE) {
    throw new CheckpointError(`checkpoint: root hash must be ${ROOT_HASH_SIZE} bytes`);
  }
  const lines = [origin, String(size), Buffer.from(rootHash).toString('base64')];
  if (time !== undefined) {
    if (!(time instanceof Date) || Number.isNaN(time.getTime())) throw new CheckpointError('checkpoint: invalid time');
    const iso = time.toISOString();
    parseTime(iso); // years outside 0000–9999 have no form parseCheckpointBody accepts
    lines.push(`${CHECKPOINT_TIME_PREFIX}${iso}`);
  }
  for (const extension of extensions) {
    if (typeof extension !== 'string' || extension === '' || hasControlCharacter(extension, false)) {
      throw new CheckpointError('checkpoint: extension lines must be non-empty single lines');
    }
    if (extension.startsWith(CHECKPOINT_TIME_PREFIX)) {
      throw new CheckpointError('checkpoint: give the time as the time field, not as an extension line');
    }
    lines.push(extension);
  }
  const body = `${lines.join('\n')}\n`;
  assertNoteCharacters(body, 'checkpoint');
  return body;
}

/**
 * Parses a checkpoint body (the note text, final newline included), strictly per c2sp.org/tlog-checkpoint.
 * @throws CheckpointError naming what is malformed.
 */
export function parseCheckpointBody(text: string): Checkpoint {
  if (typeof text !== 'string') throw new CheckpointError('checkpoint: expected a string');
  assertNoteCharacters(text, 'checkpoint');
  if (!text.endsWith('\n')) throw new CheckpointError('checkpoint: body must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new CheckpointError('checkpoint: expected origin, tree size and root hash lines');
  const emptyLine = lines.indexOf('');
  if (emptyLine >= 0) throw new CheckpointError(`checkpoint: line ${emptyLine + 1} is empty`);
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) {
    throw new CheckpointError('checkpoint: tree size must be decimal digits without leading zeros');
  }
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw new CheckpointError('checkpoint: tree size exceeds 2^53 - 1');
  const rootHash = decodeBase64(rootLine);
  if (rootHash === undefined || rootHash.length !== ROOT_HASH_SIZE) {
    throw new CheckpointError(`checkpoint: root hash must be canonical base64 of ${ROOT_HASH_SIZE} bytes`);
  }
  let time: Date | undefined;
  const others: string[] = [];
  for (const extension of extensions) {
    if (!extension.startsWith(CHECKPOINT_TIME_PREFIX)) {
      others.push(extension);
      continue;
    }
    if (time !== undefined) throw new CheckpointError('checkpoint: more than one time extension line');
    time = parseTime(extension.slice(CHECKPOINT_TIME_PREFIX.length));
  }
  return time === undefined
    ? { origin, size, rootHash, extensions: others }
    : { origin, size, rootHash, time, extensions: others };
}

/**
 * Signs a checkpoint body as a note: the body is parsed first, so a malformed checkpoint is never signed. The key
 * name SHOULD be the origin (c2sp.org/tlog-checkpoint, "Signatures").
 * @throws CheckpointError for a malformed body or key name, or a key that is not an Ed25519 private key.
 */
export function signCheckpoint(body: string, keyName: string, privateKey: KeyObject): string {
  parseCheckpointBody(body);
  return signNote(body, keyName, privateKey);
}

/**
 * Parses a signed checkpoint strictly without verifying it: use {@link verifyCheckpoint} before trusting anything.
 * @throws CheckpointError naming what is malformed.
 */
export function parseCheckpoint(note: string | Uint8Array): SignedCheckpoint {
  const parsed = parseNote(note);
  return { ...parsed, checkpoint: parseCheckpointBody(parsed.text) };
}

/**
 * Verifies a signed checkpoint against the log's verifier key and, optionally, its expected origin. The body is
 * only interpreted once its signature verified. Never throws.
 *
 * @example
 * ```ts
 * const result = verifyCheckpoint(text, 'custodian.example.com/audit+1a2b3c4d+AR…');
 * if (result.ok) console.log(result.checkpoint.size, result.checkpoint.rootHash.toString('base64'));
 * ```
 */
export function verifyCheckpoint(
  note: string | Uint8Array,
  verifierKey: string | VerifierKey,
  options: VerifyCheckpointOptions = {},
): CheckpointVerification {
  const verified = verifyNote(note, verifierKey);
  if (!verified.ok) return verified;
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpointBody(verified.text);
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : 'malformed checkpoint' };
  }
  if (options.origin !== undefined && checkpoint.origin !== options.origin) {
    return { ok: false, reason: 'checkpoint origin is not the expected log' };
  }
  return { ok: true, checkpoint, text: verified.text };
}

// --- helpers -------------------------------------------------------------------------------------------------------

function computeKeyId(keyName: string, rawPublicKey: Uint8Array): number {
  const separator = Buffer.from([0x0a, ED25519_SIGNATURE_TYPE]);
  const input = Buffer.concat([Buffer.from(keyName, 'utf8'), separator, rawPublicKey]);
  return hash('sha256', input, 'buffer').readUInt32BE(0);
}

function ed25519PublicBytes(key: KeyObject): Buffer {
  if (!(key instanceof KeyObject) || key.asymmetricKeyType !== 'ed25519') {
    throw new CheckpointError('expected an Ed25519 key');
  }
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const { x } = publicKey.export({ format: 'jwk' });
  return Buffer.from(x ?? '', 'base64url');
}

/** Key names are non-empty and contain neither Unicode spaces nor '+' (c2sp.org/signed-note, "Format"). */
function isKeyName(name: string): boolean {
  return name !== '' && !/[\p{White_Space}+]/u.test(name) && !hasControlCharacter(name, false);
}

function assertKeyName(name: string): void {
  if (typeof name !== 'string' || !isKeyName(name)) {
    throw new CheckpointError('key name must be non-empty, without spaces or "+"');
  }
}

/** Strict standard base64 (RFC 4648 §4): padded, and re-encoding gives the same text, so one value has one form. */
function decodeBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

function decodeNote(note: string | Uint8Array): string {
  if (typeof note === 'string') return note;
  if (!(note instanceof Uint8Array)) throw new CheckpointError('note: expected a string or bytes');
  try {
    // ignoreBOM keeps a leading U+FEFF in the text, so the verified bytes are exactly the given bytes.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note);
  } catch (cause) {
    throw new CheckpointError('note: not valid UTF-8', { cause });
  }
}

/** Signed notes MUST be valid UTF-8 with no control characters below U+0020 other than newline. */
function assertNoteCharacters(text: string, what: string): void {
  if (hasControlCharacter(text, true)) throw new CheckpointError(`${what}: contains a control character`);
  // A lone surrogate has no UTF-8 encoding.
  if (/\p{Cs}/u.test(text)) throw new CheckpointError(`${what}: not valid UTF-8`);
}

function hasControlCharacter(text: string, allowNewline: boolean): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && !(allowNewline && c === 0x0a)) return true;
  }
  return false;
}

function parseTime(value: string): Date {
  const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(value) ? new Date(value) : undefined;
  if (time === undefined || Number.isNaN(time.getTime()) || time.toISOString() !== value) {
    throw new CheckpointError('checkpoint: time extension must be "time YYYY-MM-DDTHH:MM:SS.sssZ"');
  }
  return time;
}
