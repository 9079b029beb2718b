import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fnv1a32, openField, parseField, sealField } from '../../src/crypto/aead.js';
import { isCustodianError } from '../../src/core/index.js';

/** A field ciphertext built by hand from the layout documented in docs/security.md, not with our sealer. */
function handMade(version: 1 | 2, key: Buffer, keyId: Buffer, plaintext: Buffer, context: string): string {
  const ctx = Buffer.from(context, 'utf8');
  const fp = Buffer.alloc(4);
  if (version === 1) createHash('sha256').update(ctx).digest().copy(fp, 0, 0, 4);
  else {
    let h = 0x811c9dc5;
    for (const b of ctx) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    fp.writeUInt32BE(h);
  }
  const header = Buffer.concat([Buffer.from([version]), keyId, fp]);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.concat([header, ctx]));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return `c${version}.` + Buffer.concat([header, iv, body, cipher.getAuthTag()]).toString('base64url');
}

const codeOf = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (err) {
    return isCustodianError(err) ? err.code : 'not a CustodianError';
  }
};

describe('field ciphertext format', () => {
  it('FNV-1a 32 matches the published test vectors', () => {
    expect(fnv1a32(Buffer.from(''))).toBe(0x811c9dc5);
    expect(fnv1a32(Buffer.from('a'))).toBe(0xe40c292c);
    expect(fnv1a32(Buffer.from('foobar'))).toBe(0xbf9cf968);
  });

  it('reads version 2 and version 1 ciphertexts built from the documented layout', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.string({ minLength: 1, maxLength: 80 }), fc.constantFrom(1 as const, 2 as const), (pt, context, version) => {
        const key = randomBytes(32);
        const keyId = randomBytes(8);
        const ct = handMade(version, key, keyId, Buffer.from(pt), context);
        const parsed = parseField(ct);
        expect(parsed.version).toBe(version);
        expect(parsed.keyIdHex).toBe(keyId.toString('hex'));
        expect(openField(key, parsed, context).equals(Buffer.from(pt))).toBe(true);
        expect(codeOf(() => openField(key, parsed, context + 'x'))).toBe('CST_ERR_CRYPTO_WRONG_CONTEXT');
      }),
      { numRuns: 200 },
    );
  });

  it('writes version 2 exactly as documented: the hand-made layout opens what the sealer wrote', () => {
    const key = randomBytes(32);
    const keyId = randomBytes(8);
    const context = 'crm.contacts.email:42 — ünïcode';
    const ct = sealField(key, keyId, Buffer.from('value'), context);
    expect(ct.startsWith('c2.')).toBe(true);
    const bytes = Buffer.from(ct.slice(3), 'base64url');
    expect(bytes.length).toBe(41 + 5);
    const mine = handMade(2, key, keyId, Buffer.from('value'), context);
    // Same header (version, key id, fingerprint); nonces differ.
    expect(bytes.subarray(0, 13).equals(Buffer.from(mine.slice(3), 'base64url').subarray(0, 13))).toBe(true);
  });

  it('seals what an independent opener reads: header, nonce and tag land where the layout says, for any context', () => {
    // Contexts that are ASCII, that turn non-ASCII part-way (the sealer's one-pass encoder hands over to UTF-8
    // there), and any well-formed text; NUL and lone surrogates are refused before any byte is sealed.
    const contextArb = fc.oneof(
      fc.string({ minLength: 1, maxLength: 60 }),
      fc.tuple(fc.string({ maxLength: 30 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 })).map(([a, b]) => a + b),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), contextArb, (pt, context) => {
        fc.pre(!context.includes('\u0000') && context.length <= 512);
        const key = randomBytes(32);
        const keyId = randomBytes(8);
        const ct = sealField(key, keyId, Buffer.from(pt), context);
        const bytes = Buffer.from(ct.slice(3), 'base64url');
        const ctx = Buffer.from(context, 'utf8');
        let h = 0x811c9dc5;
        for (const b of ctx) h = Math.imul(h ^ b, 0x01000193) >>> 0;
        expect(bytes[0]).toBe(2);
        expect(bytes.subarray(1, 9).equals(keyId)).toBe(true);
        expect(bytes.readUInt32BE(9)).toBe(h);
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(13, 25));
        decipher.setAAD(Buffer.concat([bytes.subarray(0, 13), ctx]));
        decipher.setAuthTag(bytes.subarray(bytes.length - 16));
        const opened = Buffer.concat([decipher.update(bytes.subarray(25, bytes.length - 16)), decipher.final()]);
        expect(opened.equals(Buffer.from(pt))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('gives every sealed value its own nonce and opens values in any order (no state carried between calls)', () => {
    const key = randomBytes(32);
    const keyId = randomBytes(8);
    // More values than one refill of the nonce pool (341), so the refill boundary is crossed.
    const values = Array.from({ length: 1000 }, (_, i) => Buffer.from(`value ${i}`));
    const sealed = values.map((v, i) => sealField(key, keyId, v, `t.c:${i}`));
    const nonces = new Set(sealed.map((ct) => Buffer.from(ct.slice(3), 'base64url').subarray(13, 25).toString('hex')));
    expect(nonces.size).toBe(values.length);
    const parsed = sealed.map((ct) => parseField(ct));
    for (let i = values.length - 1; i >= 0; i--) expect(openField(key, parsed[i]!, `t.c:${i}`).equals(values[i]!)).toBe(true);
    // A tampered value between two good ones fails alone.
    const bad = Buffer.from(sealed[1]!.slice(3), 'base64url');
    bad[bad.length - 1]! ^= 1;
    expect(openField(key, parsed[0]!, 't.c:0').equals(values[0]!)).toBe(true);
    expect(codeOf(() => openField(key, parseField('c2.' + bad.toString('base64url')), 't.c:1'))).toBe('CST_ERR_CRYPTO_TAMPERED');
    expect(openField(key, parsed[2]!, 't.c:2').equals(values[2]!)).toBe(true);
  });

  it('refuses a NUL or a lone surrogate anywhere in the context, also after non-ASCII text', () => {
    const key = randomBytes(32);
    const keyId = randomBytes(8);
    for (const context of ['a\u0000b', '\u0000', 'é\u0000', 'ab\uD800', 'é\uDC00x', '\uD800']) {
      expect(codeOf(() => sealField(key, keyId, Buffer.from('v'), context))).toBe('CST_ERR_CRYPTO_BAD_CONTEXT');
    }
  });

  it('refuses text with any character outside base64url instead of decoding around it', () => {
    const key = randomBytes(32);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 4 }), fc.constantFrom('=', '==', ' ', '*', '.', '\n', 'é', '%', '!'), (length, at, junk) => {
        const ct = sealField(key, randomBytes(8), randomBytes(length), 'ctx');
        const cut = 3 + Math.floor(((ct.length - 3) * at) / 4);
        expect(codeOf(() => parseField(ct))).toBe('ok');
        expect(codeOf(() => parseField(ct.slice(0, cut) + junk + ct.slice(cut)))).toBe('CST_ERR_CRYPTO_MALFORMED');
        expect(codeOf(() => parseField(ct + junk))).toBe('CST_ERR_CRYPTO_MALFORMED');
      }),
      { numRuns: 300 },
    );
  });
});
