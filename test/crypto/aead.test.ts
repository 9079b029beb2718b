import { createCipheriv, createHash, randomBytes } from 'node:crypto';
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
