import { createCipheriv, createDecipheriv, hash, randomFillSync } from 'node:crypto';
import { CustodianError, isStorableText } from '../core/index.js';

/**
 * The field ciphertext format, version 2 (version 1 is still read). Binary layout (all offsets in bytes):
 *
 *   0      1 byte   format version (0x02; 0x01 for version 1)
 *   1      8 bytes  key id of the data key
 *   9      4 bytes  context fingerprint, big-endian — tells a wrong context from tampering:
 *                   version 2: FNV-1a 32-bit of the context's UTF-8 bytes; version 1: the first 4 bytes of SHA-256
 *   13     12 bytes nonce (random, 96 bits)
 *   25     n bytes  AES-256-GCM ciphertext
 *   25+n   16 bytes GCM tag
 *
 * Associated data = bytes 0..13 ‖ UTF-8(context), so the header and the whole context are authenticated; the
 * fingerprint is a diagnosis only (security rests on the tag), hence a fast non-cryptographic hash in version 2.
 * Text form: `c2.` (or `c1.`) + base64url(bytes), unpadded. Overhead: 41 bytes (≈ 58 characters).
 */
export const FIELD_FORMAT_VERSION = 2;
export const KEY_ID_BYTES = 8;
const HEADER = 1 + KEY_ID_BYTES + 4;
const FINGERPRINT_AT = 1 + KEY_ID_BYTES;
const NONCE = 12;
const TAG = 16;
const PREFIXES = ['', 'c1.', 'c2.'] as const;
const MAX_CIPHERTEXT_LENGTH = 16 * 1024 * 1024;
/** Longest context accepted; contexts name places (table, column, row id), never personal data. */
export const MAX_CONTEXT_LENGTH = 512;

// Nonces are drawn from a pooled CSPRNG buffer: one randomFillSync per 341 values instead of one call each.
// Small copies are byte loops and TypedArray#set: Buffer#copy validates its arguments in JS and costs more
// than the copy itself at these sizes (this path runs twice per field, see bench/crypto.ts).
const pool = Buffer.allocUnsafe(NONCE * 341);
let poolOffset = pool.length;
/** Writes the next 12 random bytes of the pool to `into` at `at`. */
function nextNonce(into: Uint8Array, at: number): void {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  for (let i = 0; i < NONCE; i++) into[at + i] = pool[poolOffset + i]!;
  poolOffset += NONCE;
}

// Scratch buffers for the nonce and the tag of one field operation. createCipheriv / createDecipheriv copy the
// IV into the cipher context and setAuthTag copies the tag (both synchronously), so one buffer of each serves
// every call and no view or copy is allocated per field; nothing here awaits between filling and handing over.
const ivScratch = Buffer.allocUnsafe(NONCE);
const tagScratch = Buffer.allocUnsafe(TAG);

function badContext(): CustodianError {
  return new CustodianError('CST_ERR_CRYPTO_BAD_CONTEXT', `context must be 1 to ${MAX_CONTEXT_LENGTH} characters naming where the value lives (never personal data)`);
}

/** Validates a context string: 1..512 characters of well-formed text. */
export function checkContext(context: unknown): asserts context is string {
  checkContextShape(context);
  if (!isStorableText(context)) throw badContext();
}

/**
 * The cheap half of {@link checkContext} (type and length): {@link sealField} and {@link openField} check the
 * characters themselves (no NUL, no lone surrogate) while they encode the context, in the same pass.
 */
export function checkContextShape(context: unknown): asserts context is string {
  if (typeof context !== 'string' || context.length === 0 || context.length > MAX_CONTEXT_LENGTH) throw badContext();
}

/** FNV-1a 32-bit of `bytes[from..]`. */
export function fnv1a32(bytes: Uint8Array, from = 0): number {
  let h = 0x811c9dc5;
  for (let i = from; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * The associated data of a field: header (version, key id, fingerprint of the context) ‖ UTF-8(context), in
 * one buffer. The key id is read from `keyIdFrom` at `keyIdAt`.
 */
function associatedData(version: number, keyIdFrom: Uint8Array, keyIdAt: number, context: string): Buffer {
  const length = context.length;
  let aad = Buffer.allocUnsafe(HEADER + length);
  let h = 0x811c9dc5;
  // ASCII (every code unit < 0x80, the usual context): check, write and hash in one pass, sized without a
  // separate UTF-8 length count. The first other code unit hands over to the general path.
  let i = 0;
  for (; i < length; i++) {
    const c = context.charCodeAt(i);
    if (c === 0) throw badContext();
    if (c >= 0x80) break;
    aad[HEADER + i] = c;
    h = Math.imul(h ^ c, 0x01000193);
  }
  if (i < length) {
    if (!isStorableText(context)) throw badContext();
    aad = Buffer.allocUnsafe(HEADER + Buffer.byteLength(context, 'utf8'));
    aad.write(context, HEADER, 'utf8');
    h = fnv1a32(aad, HEADER);
  }
  aad[0] = version;
  for (let k = 0; k < KEY_ID_BYTES; k++) aad[1 + k] = keyIdFrom[keyIdAt + k]!;
  if (version === 1) {
    const digest = hash('sha256', aad.subarray(HEADER), 'buffer');
    for (let k = 0; k < 4; k++) aad[FINGERPRINT_AT + k] = digest[k]!;
  } else {
    aad[FINGERPRINT_AT] = h >>> 24;
    aad[FINGERPRINT_AT + 1] = h >>> 16;
    aad[FINGERPRINT_AT + 2] = h >>> 8;
    aad[FINGERPRINT_AT + 3] = h;
  }
  return aad;
}

/** Encrypts `plaintext` under `key` (32 bytes) with key id `keyId` (8 bytes), bound to `context`; format version 2. */
export function sealField(key: Buffer, keyId: Buffer, plaintext: Buffer, context: string): string {
  const aad = associatedData(FIELD_FORMAT_VERSION, keyId, 0, context);
  nextNonce(ivScratch, 0);
  const cipher = createCipheriv('aes-256-gcm', key, ivScratch);
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const final = cipher.final(); // empty for GCM; kept for correctness
  const tag = cipher.getAuthTag();
  const bodyLength = body.length + final.length;
  const out = Buffer.allocUnsafe(HEADER + NONCE + bodyLength + TAG);
  for (let i = 0; i < HEADER; i++) out[i] = aad[i]!;
  for (let i = 0; i < NONCE; i++) out[HEADER + i] = ivScratch[i]!;
  out.set(body, HEADER + NONCE);
  if (final.length > 0) out.set(final, HEADER + NONCE + body.length);
  const tagAt = HEADER + NONCE + bodyLength;
  for (let i = 0; i < TAG; i++) out[tagAt + i] = tag[i]!;
  return PREFIXES[FIELD_FORMAT_VERSION] + out.toString('base64url');
}

/** The parts of a field ciphertext, parsed and checked for shape (not yet authenticated). */
export interface ParsedField {
  readonly version: number;
  /** The key id, hex (bytes 1..9). */
  readonly keyIdHex: string;
  /** The key id's first 6 bytes as a number: a cheap map key (check the whole id with {@link sameKeyId}). */
  readonly keyIdPrefix: number;
  readonly bytes: Buffer;
}

/** A parsed field; the hex key id is made only when asked for (the hot path looks keys up by prefix). */
class Parsed implements ParsedField {
  readonly version: number;
  readonly bytes: Buffer;
  readonly keyIdPrefix: number;
  #hex: string | undefined;
  constructor(version: number, bytes: Buffer) {
    this.version = version;
    this.bytes = bytes;
    this.keyIdPrefix = bytes.readUIntBE(1, 6);
  }
  get keyIdHex(): string {
    return (this.#hex ??= this.bytes.toString('hex', 1, 1 + KEY_ID_BYTES));
  }
}

/** The 6-byte prefix of an 8-byte key id as a number (see {@link ParsedField.keyIdPrefix}). */
export function keyIdPrefixOf(idBytes: Buffer): number {
  return idBytes.readUIntBE(0, 6);
}

/** Whether the ciphertext's key id (bytes 1..9) is `idBytes`. */
export function sameKeyId(idBytes: Buffer, parsed: ParsedField): boolean {
  const b = parsed.bytes;
  for (let i = 0; i < KEY_ID_BYTES; i++) if (b[1 + i] !== idBytes[i]) return false;
  return true;
}

/** Parses a field ciphertext; throws CST_ERR_CRYPTO_MALFORMED or CST_ERR_CRYPTO_UNSUPPORTED_VERSION. */
export function parseField(ciphertext: unknown): ParsedField {
  if (typeof ciphertext !== 'string' || ciphertext.length > MAX_CIPHERTEXT_LENGTH) {
    throw new CustodianError('CST_ERR_CRYPTO_MALFORMED', 'not a Custodian field ciphertext');
  }
  const version = ciphertext.startsWith(PREFIXES[2]) ? 2 : ciphertext.startsWith(PREFIXES[1]) ? 1 : 0;
  if (version === 0) {
    const dot = ciphertext.indexOf('.');
    if (dot < 0 || !/^c\d+$/.test(ciphertext.slice(0, dot))) throw new CustodianError('CST_ERR_CRYPTO_MALFORMED', 'not a Custodian field ciphertext');
    throw new CustodianError('CST_ERR_CRYPTO_UNSUPPORTED_VERSION', 'unsupported ciphertext format version', { details: { version: ciphertext.slice(0, dot) } });
  }
  const body = ciphertext.slice(3);
  const bytes = Buffer.from(body, 'base64url');
  // The decoder skips (or stops at) characters it does not know, which always yields fewer bytes than an
  // unpadded text of this length encodes (lengths ≡ 1 mod 4 encode nothing and are refused). So the length
  // check catches any stray character without re-encoding. Decoded bytes are authenticated by the tag anyway.
  if (body.length % 4 === 1 || bytes.length !== Math.floor((body.length * 3) / 4)) {
    throw new CustodianError('CST_ERR_CRYPTO_MALFORMED', 'ciphertext is not base64url');
  }
  if (bytes.length > 0 && bytes[0] !== version) {
    throw new CustodianError('CST_ERR_CRYPTO_UNSUPPORTED_VERSION', 'unsupported ciphertext format version', { details: { version: `c${bytes[0]!}` } });
  }
  if (bytes.length < HEADER + NONCE + TAG) throw new CustodianError('CST_ERR_CRYPTO_MALFORMED', 'ciphertext is truncated');
  return new Parsed(version, bytes);
}

/** Decrypts a parsed field with `key`; throws CST_ERR_CRYPTO_WRONG_CONTEXT or CST_ERR_CRYPTO_TAMPERED. */
export function openField(key: Buffer, parsed: ParsedField, context: string): Buffer {
  const { bytes } = parsed;
  const aad = associatedData(parsed.version, bytes, 1, context);
  if (aad[FINGERPRINT_AT] !== bytes[FINGERPRINT_AT] || aad[FINGERPRINT_AT + 1] !== bytes[FINGERPRINT_AT + 1] || aad[FINGERPRINT_AT + 2] !== bytes[FINGERPRINT_AT + 2] || aad[FINGERPRINT_AT + 3] !== bytes[FINGERPRINT_AT + 3]) {
    throw new CustodianError('CST_ERR_CRYPTO_WRONG_CONTEXT', 'the ciphertext belongs to another context (table, column or row)');
  }
  const tagAt = bytes.length - TAG;
  for (let i = 0; i < NONCE; i++) ivScratch[i] = bytes[HEADER + i]!;
  for (let i = 0; i < TAG; i++) tagScratch[i] = bytes[tagAt + i]!;
  const decipher = createDecipheriv('aes-256-gcm', key, ivScratch);
  decipher.setAAD(aad);
  decipher.setAuthTag(tagScratch);
  try {
    const body = decipher.update(bytes.subarray(HEADER + NONCE, tagAt));
    const final = decipher.final();
    return final.length === 0 ? body : Buffer.concat([body, final]);
  } catch {
    throw new CustodianError('CST_ERR_CRYPTO_TAMPERED', 'the ciphertext failed authentication: it was altered');
  }
}

/** AES-256-GCM wrap of a 32-byte data key under a KEK, bound to `aad`: nonce ‖ ciphertext ‖ tag. */
export function wrapKey(kek: Buffer, dataKey: Buffer, aad: Buffer): Buffer {
  const iv = Buffer.allocUnsafe(NONCE);
  nextNonce(iv, 0);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(aad);
  return Buffer.concat([iv, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
}

/** Reverses {@link wrapKey}; throws CST_ERR_CRYPTO_WRONG_MASTER_KEY when authentication fails. */
export function unwrapKey(kek: Buffer, wrapped: Buffer, aad: Buffer): Buffer {
  if (wrapped.length !== NONCE + 32 + TAG) throw new CustodianError('CST_ERR_CRYPTO_MALFORMED', 'wrapped key has the wrong length');
  const decipher = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, NONCE));
  decipher.setAAD(aad);
  decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG));
  try {
    return Buffer.concat([decipher.update(wrapped.subarray(NONCE, wrapped.length - TAG)), decipher.final()]);
  } catch {
    throw new CustodianError('CST_ERR_CRYPTO_WRONG_MASTER_KEY', 'a data key could not be unwrapped: wrong master key');
  }
}
