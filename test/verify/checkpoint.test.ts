import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  MAX_NOTE_SIGNATURES,
  appendNodes,
  formatCheckpoint,
  inclusionProof,
  keyId,
  leafHash,
  parseCheckpoint,
  parseCheckpointBody,
  parseNote,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  verifierKeyString,
  verifyBundle,
  verifyCheckpoint,
  verifyNote,
  type NodeReader,
  type ProofBundle,
} from '../../src/verify/index.js';

/** An Ed25519 private key from its 32-byte RFC 8032 seed (PKCS#8 DER prefix + seed). */
function keyFromSeed(seed: Buffer): KeyObject {
  const prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
  return createPrivateKey({ key: Buffer.concat([prefix, seed]), format: 'der', type: 'pkcs8' });
}

const ORIGIN = 'custodian.example.com/audit';
// RFC 8032 §7.1 TEST 1 key (public key d75a9801…511a), and the RFC 6962 test-vector root of 8 leaves.
const KAT_KEY = keyFromSeed(Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'));
const KAT_ROOT = Buffer.from('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328', 'hex');
const KAT_TIME = new Date('2025-01-02T03:04:05.678Z');
const KAT_VKEY = 'custodian.example.com/audit+5152db66+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea';
const KAT_BODY =
  'custodian.example.com/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\ntime 2025-01-02T03:04:05.678Z\n';
// Cross-checked once against an independent implementation (Python `cryptography`), byte for byte.
const KAT_NOTE =
  `${KAT_BODY}\n` +
  '— custodian.example.com/audit UVLbZmectICcBxhFuPzD3zeDNE0tE18fcz6z7/n7RFtA2zWxHASZ4j67EQBwjyzEhIR6Otnfcaj9P3y92xJsns+JiQU=\n';

function newKey(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey;
}

describe('signed notes: the Go reference vector (golang.org/x/mod/sumdb/note)', () => {
  const VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
  const SKEY_SEED = Buffer.from('AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz', 'base64').subarray(1);
  const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
  const NOTE = `${TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;
  const key = keyFromSeed(SKEY_SEED);

  it('derives the same verifier key and key ID, and signs to the same bytes', () => {
    expect(verifierKeyString('PeterNeumann', key)).toBe(VKEY);
    expect(keyId('PeterNeumann', key)).toBe(0xc74f20a3);
    expect(signNote(TEXT, 'PeterNeumann', key)).toBe(NOTE);
  });

  it('verifies the reference note and rejects it altered', () => {
    expect(verifyNote(NOTE, VKEY)).toMatchObject({ ok: true, text: TEXT });
    expect(verifyNote(NOTE.replace('cryptography', 'cryptographY'), VKEY).ok).toBe(false);
  });

  it('rejects every truncation and every byte increment of the verifier key (as Go does)', () => {
    expect(parseVerifierKey(VKEY)).toMatchObject({ keyName: 'PeterNeumann', keyId: 0xc74f20a3 });
    for (let i = 0; i <= VKEY.length; i++) {
      for (let j = i + 1; j <= VKEY.length; j++) {
        if (i !== 0 || j !== VKEY.length) expect(() => parseVerifierKey(VKEY.slice(i, j))).toThrow(CheckpointError);
      }
    }
    for (let i = 0; i < VKEY.length; i++) {
      const mangled = VKEY.slice(0, i) + String.fromCharCode(VKEY.charCodeAt(i) + 1) + VKEY.slice(i + 1);
      expect(() => parseVerifierKey(mangled)).toThrow(CheckpointError);
    }
    expect(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')).toThrow(
      'key id does not match',
    );
  });
});

describe('checkpoints: known answer', () => {
  it('formats, signs and names the key exactly as pinned', () => {
    const body = formatCheckpoint({ origin: ORIGIN, size: 8, rootHash: KAT_ROOT, time: KAT_TIME });
    expect(body).toBe(KAT_BODY);
    expect(signCheckpoint(body, ORIGIN, KAT_KEY)).toBe(KAT_NOTE);
    expect(verifierKeyString(ORIGIN, KAT_KEY)).toBe(KAT_VKEY);
  });

  it('parses and verifies the pinned checkpoint', () => {
    const expected = { origin: ORIGIN, size: 8, rootHash: KAT_ROOT, time: KAT_TIME, extensions: [] };
    expect(verifyCheckpoint(KAT_NOTE, KAT_VKEY)).toEqual({ ok: true, checkpoint: expected, text: KAT_BODY });
    expect(verifyCheckpoint(Buffer.from(KAT_NOTE), KAT_VKEY).ok).toBe(true);
    expect(verifyCheckpoint(KAT_NOTE, parseVerifierKey(KAT_VKEY), { origin: ORIGIN }).ok).toBe(true);
    const parsed = parseCheckpoint(KAT_NOTE);
    expect(parsed.checkpoint).toEqual(expected);
    expect(parsed.signatures).toHaveLength(1);
    expect(parsed.signatures[0]).toMatchObject({ keyName: ORIGIN, keyId: 0x5152db66 });
  });

  it('fails when any single byte of the signed checkpoint changes', () => {
    const bytes = Buffer.from(KAT_NOTE);
    for (let i = 0; i < bytes.length; i++) {
      for (const change of [(b: number) => b + 1, (b: number) => b - 1, (b: number) => b ^ 0x20, (b: number) => b ^ 0x80]) {
        const mutated = Buffer.from(bytes);
        mutated[i] = change(bytes[i]!) & 0xff;
        const result = verifyCheckpoint(mutated, KAT_VKEY);
        expect(result.ok, `byte ${i}`).toBe(false);
      }
    }
  });

  it('fails for another key, another key name, or another origin', () => {
    const other = newKey();
    expect(verifyCheckpoint(KAT_NOTE, verifierKeyString(ORIGIN, other))).toEqual({
      ok: false,
      reason: expect.stringContaining('not signed by key custodian.example.com/audit+') as unknown,
    });
    expect(verifyCheckpoint(KAT_NOTE, verifierKeyString('other.example.com/audit', KAT_KEY)).ok).toBe(false);
    expect(verifyCheckpoint(KAT_NOTE, KAT_VKEY, { origin: 'other.example.com/audit' })).toEqual({
      ok: false,
      reason: 'checkpoint origin is not the expected log',
    });
    expect(verifyCheckpoint(KAT_NOTE, 'not a key').ok).toBe(false);
  });
});

describe('checkpoints: properties', () => {
  const line = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
    .filter((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20));
  const keyName = fc.stringMatching(/^[a-z0-9.\-/\u00e0-\u00ff]{1,40}$/);
  const fields = fc.record({
    origin: line,
    size: fc.maxSafeNat(),
    rootHash: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a)),
    time: fc.option(fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), {
      nil: undefined,
    }),
    extensions: fc.array(line.filter((s) => !s.startsWith('time ')), { maxLength: 3 }),
  });
  const key = newKey();

  it('round-trips format → sign → verify for any checkpoint', () => {
    fc.assert(
      fc.property(fields, keyName, (f, name) => {
        const body = formatCheckpoint(f);
        const parsed = parseCheckpointBody(body);
        expect(parsed.origin).toBe(f.origin);
        expect(parsed.size).toBe(f.size);
        expect(parsed.rootHash).toEqual(f.rootHash);
        expect(parsed.time).toEqual(f.time);
        expect(parsed.extensions).toEqual(f.extensions);
        expect(formatCheckpoint(parsed)).toBe(body);
        const signed = signCheckpoint(body, name, key);
        const result = verifyCheckpoint(signed, verifierKeyString(name, key));
        expect(result).toEqual({ ok: true, checkpoint: parsed, text: body });
      }),
      { numRuns: 200 },
    );
  });

  it('rejects a random one-byte change of any signed checkpoint', () => {
    fc.assert(
      fc.property(fields, fc.nat(), fc.integer({ min: 1, max: 255 }), (f, at, delta) => {
        const bytes = Buffer.from(signCheckpoint(formatCheckpoint(f), ORIGIN, key));
        const i = at % bytes.length;
        bytes[i] = (bytes[i]! + delta) & 0xff;
        expect(verifyCheckpoint(bytes, verifierKeyString(ORIGIN, key)).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe('checkpoints: several signatures', () => {
  const cosigner = newKey();
  const cosigned = `${KAT_NOTE}${signNote(KAT_BODY, 'witness.example.com', cosigner).slice(KAT_BODY.length + 1)}`;

  it('ignores signatures by other keys, and each key verifies its own', () => {
    expect(parseNote(cosigned).signatures).toHaveLength(2);
    expect(verifyCheckpoint(cosigned, KAT_VKEY).ok).toBe(true);
    expect(verifyCheckpoint(cosigned, verifierKeyString('witness.example.com', cosigner)).ok).toBe(true);
    const unknown = `${KAT_NOTE}— unknown.example.com ${Buffer.alloc(68, 7).toString('base64')}\n`;
    expect(verifyCheckpoint(unknown, KAT_VKEY).ok).toBe(true);
  });

  it('rejects the note when any signature line of the known key fails, even beside a good one', () => {
    const good = parseNote(KAT_NOTE).signatures[0]!;
    const badSignature = Buffer.concat([Buffer.from([0x51, 0x52, 0xdb, 0x66]), Buffer.alloc(64)]).toString('base64');
    const text = `${KAT_NOTE}— ${ORIGIN} ${badSignature}\n`;
    expect(parseNote(text).signatures.map((s) => s.keyId)).toEqual([good.keyId, good.keyId]);
    expect(verifyCheckpoint(text, KAT_VKEY)).toEqual({ ok: false, reason: expect.stringContaining('does not verify') as unknown });
    const short = Buffer.concat([Buffer.from([0x51, 0x52, 0xdb, 0x66]), Buffer.alloc(10)]).toString('base64');
    expect(verifyCheckpoint(`${KAT_NOTE}— ${ORIGIN} ${short}\n`, KAT_VKEY).ok).toBe(false);
  });

  it(`accepts up to ${MAX_NOTE_SIGNATURES} signature lines and no more`, () => {
    const extra = (count: number): string =>
      Array.from({ length: count }, (_, i) => `— w${i}.example.com ${Buffer.alloc(68, i).toString('base64')}\n`).join('');
    expect(verifyCheckpoint(KAT_NOTE + extra(MAX_NOTE_SIGNATURES - 1), KAT_VKEY).ok).toBe(true);
    expect(verifyCheckpoint(KAT_NOTE + extra(MAX_NOTE_SIGNATURES), KAT_VKEY)).toEqual({
      ok: false,
      reason: `note: more than ${MAX_NOTE_SIGNATURES} signature lines`,
    });
  });
});

describe('checkpoints: strict parsing', () => {
  const root = KAT_ROOT.toString('base64');
  const sig = KAT_NOTE.slice(KAT_BODY.length);
  const malformedBodies: Array<[string, string]> = [
    ['two lines only', `${ORIGIN}\n8\n`],
    ['empty origin', `\n8\n${root}\n`],
    ['leading zero in size', `${ORIGIN}\n08\n${root}\n`],
    ['negative size', `${ORIGIN}\n-8\n${root}\n`],
    ['signed size', `${ORIGIN}\n+8\n${root}\n`],
    ['size with spaces', `${ORIGIN}\n 8\n${root}\n`],
    ['hexadecimal size', `${ORIGIN}\n0x8\n${root}\n`],
    ['size beyond 2^53 − 1', `${ORIGIN}\n9007199254740992\n${root}\n`],
    ['root hash of 31 bytes', `${ORIGIN}\n8\n${KAT_ROOT.subarray(1).toString('base64')}\n`],
    ['root hash in base64url', `${ORIGIN}\n8\n${KAT_ROOT.toString('base64url')}\n`],
    ['root hash without padding', `${ORIGIN}\n8\n${root.replace('=', '')}\n`],
    ['root hash with non-zero padding bits', `${ORIGIN}\n8\n${root.replace('g=', 'h=')}\n`],
    ['root hash in hex', `${ORIGIN}\n8\n${KAT_ROOT.toString('hex')}\n`],
    ['empty extension line', `${ORIGIN}\n8\n${root}\n\nextra\n`],
    ['CRLF line endings', `${ORIGIN}\r\n8\r\n${root}\r\n`],
    ['a tab', `${ORIGIN}\t\n8\n${root}\n`],
    ['no final newline', `${ORIGIN}\n8\n${root}`],
    ['a lone surrogate', `${ORIGIN}\ud800\n8\n${root}\n`],
    ['a time without milliseconds', `${ORIGIN}\n8\n${root}\ntime 2025-01-02T03:04:05Z\n`],
    ['a time not in UTC', `${ORIGIN}\n8\n${root}\ntime 2025-01-02T03:04:05.678+01:00\n`],
    ['an impossible time', `${ORIGIN}\n8\n${root}\ntime 2025-02-30T03:04:05.678Z\n`],
    ['two times', `${ORIGIN}\n8\n${root}\ntime 2025-01-02T03:04:05.678Z\ntime 2025-01-02T03:04:05.679Z\n`],
  ];

  it.each(malformedBodies)('rejects a body with %s', (_, body) => {
    expect(() => parseCheckpointBody(body)).toThrow(CheckpointError);
    expect(() => parseCheckpoint(`${body}${sig}`)).toThrow(CheckpointError);
    expect(() => signCheckpoint(body, ORIGIN, KAT_KEY)).toThrow(CheckpointError);
  });

  it('accepts the size 0 checkpoint and opaque extension lines', () => {
    const body = `${ORIGIN}\n0\n${root}\nwhatever extension\ntimely\n`;
    expect(parseCheckpointBody(body)).toEqual({
      origin: ORIGIN,
      size: 0,
      rootHash: KAT_ROOT,
      extensions: ['whatever extension', 'timely'],
    });
    expect(parseCheckpointBody(`${ORIGIN}\n9007199254740991\n${root}\n`).size).toBe(Number.MAX_SAFE_INTEGER);
  });

  const malformedNotes: Array<[string, string]> = [
    ['no blank line', `${KAT_BODY}${sig.slice(1)}`],
    ['no signature lines', `${KAT_BODY}\n`],
    ['no final newline', KAT_NOTE.slice(0, -1)],
    ['a hyphen for the em dash', KAT_NOTE.replace('—', '-')],
    ['no space after the em dash', KAT_NOTE.replace('— ', '—')],
    ['two spaces before the signature', KAT_NOTE.replace(`${ORIGIN} `, `${ORIGIN}  `)],
    ['a plus in the key name', KAT_NOTE.replace(`— ${ORIGIN}`, '— custodian+audit')],
    ['a signature of 4 bytes', `${KAT_BODY}\n— ${ORIGIN} ${Buffer.alloc(4).toString('base64')}\n`],
    ['a signature that is not base64', `${KAT_BODY}\n— ${ORIGIN} not*base64\n`],
    ['an empty signature line', `${KAT_NOTE}\n`],
    ['a control character', KAT_NOTE.replace('audit\n8', 'audit\u00078')],
  ];

  it.each(malformedNotes)('rejects a note with %s', (_, note) => {
    expect(() => parseCheckpoint(note)).toThrow(CheckpointError);
    expect(verifyCheckpoint(note, KAT_VKEY).ok).toBe(false);
  });

  it('rejects invalid UTF-8 bytes and keeps a byte-order mark as part of the signed text', () => {
    const invalid = Buffer.concat([Buffer.from([0xff]), Buffer.from(KAT_NOTE)]);
    expect(() => parseNote(invalid)).toThrow('not valid UTF-8');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(KAT_NOTE)]);
    expect(parseNote(bom).text.startsWith('\ufeff')).toBe(true);
    expect(verifyCheckpoint(bom, KAT_VKEY).ok).toBe(false);
  });

  it('refuses to format or sign what it could not parse back', () => {
    const ok = { origin: ORIGIN, size: 1, rootHash: KAT_ROOT };
    expect(() => formatCheckpoint({ ...ok, origin: '' })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, origin: 'a\nb' })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, size: -1 })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, size: 1.5 })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, size: 2 ** 53 })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, rootHash: Buffer.alloc(31) })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, time: new Date(Number.NaN) })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, time: new Date('+010000-01-01T00:00:00.000Z') })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, extensions: [''] })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, extensions: ['a\nb'] })).toThrow(CheckpointError);
    expect(() => formatCheckpoint({ ...ok, extensions: ['time 2025-01-01T00:00:00.000Z'] })).toThrow(CheckpointError);
    const body = formatCheckpoint(ok);
    expect(() => signCheckpoint(body, 'has space', KAT_KEY)).toThrow(CheckpointError);
    expect(() => signCheckpoint(body, 'has+plus', KAT_KEY)).toThrow(CheckpointError);
    expect(() => signCheckpoint(body, '', KAT_KEY)).toThrow(CheckpointError);
    const publicOnly = parseVerifierKey(KAT_VKEY).publicKey;
    expect(() => signCheckpoint(body, ORIGIN, publicOnly)).toThrow(CheckpointError);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(() => signCheckpoint(body, ORIGIN, ec)).toThrow(CheckpointError);
    expect(() => verifierKeyString(ORIGIN, ec)).toThrow(CheckpointError);
  });
});

// --- the standalone bundle verifier ---------------------------------------------------------------------------------

describe('verifyBundle', () => {
  const key = newKey();
  const vkey = verifierKeyString(ORIGIN, key);
  const entries = Array.from({ length: 13 }, (_, i) => Buffer.from(`{"seq":${i},"subject":"subject-${i}@example.com"}`));

  async function bundleFor(index: number, size: number): Promise<ProofBundle> {
    const nodes = new Map<string, Buffer>();
    const reader: NodeReader = { get: (level, i) => nodes.get(`${level}/${i}`)! };
    const appended = await appendNodes(0, entries.slice(0, size).map(leafHash), reader);
    for (const n of appended.nodes) nodes.set(`${n.level}/${n.index}`, n.hash);
    const body = formatCheckpoint({ origin: ORIGIN, size, rootHash: appended.root, time: KAT_TIME });
    return {
      leaf: entries[index]!.toString('base64'),
      index,
      treeSize: size,
      inclusionProof: (await inclusionProof(index, size, reader)).map((p) => p.toString('base64')),
      checkpoint: signCheckpoint(body, ORIGIN, key),
    };
  }

  it('proves every entry of every tree size, and returns the leaf bytes', async () => {
    for (let size = 1; size <= entries.length; size++) {
      for (let index = 0; index < size; index++) {
        const bundle = JSON.parse(JSON.stringify(await bundleFor(index, size))) as ProofBundle;
        const result = verifyBundle(bundle, vkey, { origin: ORIGIN });
        expect(result).toMatchObject({ ok: true, index, leaf: entries[index], leafHash: leafHash(entries[index]!) });
        expect(result.ok && result.checkpoint.size).toBe(size);
      }
    }
  });

  it('rejects a bundle whose leaf, index, size, proof or checkpoint is not the one proven', async () => {
    const good = await bundleFor(5, 11);
    const other = await bundleFor(6, 12);
    const failures: Array<[string, ProofBundle]> = [
      ['another leaf', { ...good, leaf: entries[6]!.toString('base64') }],
      ['another index', { ...good, index: 6 }],
      ['an index outside the tree', { ...good, index: 11 }],
      ['another tree size', { ...good, treeSize: 12 }],
      ['a shorter proof', { ...good, inclusionProof: good.inclusionProof.slice(1) }],
      ['a longer proof', { ...good, inclusionProof: [...good.inclusionProof, good.inclusionProof[0]!] }],
      ['another entry’s proof', { ...good, inclusionProof: other.inclusionProof }],
      ['another tree’s checkpoint', { ...good, checkpoint: other.checkpoint }],
      ['a forged checkpoint', { ...good, checkpoint: good.checkpoint.replace(/\n11\n/, '\n12\n') }],
      ['a checkpoint by another key', { ...good, checkpoint: signCheckpoint(parseNote(good.checkpoint).text, ORIGIN, newKey()) }],
    ];
    expect(verifyBundle(good, vkey).ok).toBe(true);
    for (const [what, bundle] of failures) expect(verifyBundle(bundle, vkey).ok, what).toBe(false);
    expect(verifyBundle(good, vkey, { origin: 'other.example.com/audit' }).ok).toBe(false);
  });

  it('says what is wrong with a malformed bundle instead of throwing', async () => {
    const good = await bundleFor(2, 3);
    const shapes: unknown[] = [
      null,
      'bundle',
      {},
      { ...good, leaf: 'not base64!' },
      { ...good, leaf: 42 },
      { ...good, index: '2' },
      { ...good, index: -1 },
      { ...good, treeSize: 1.5 },
      { ...good, inclusionProof: 'x' },
      { ...good, inclusionProof: [Buffer.alloc(31).toString('base64')] },
      { ...good, inclusionProof: [7] },
      { ...good, checkpoint: undefined },
      { ...good, checkpoint: 'garbage' },
    ];
    for (const shape of shapes) {
      const result = verifyBundle(shape as ProofBundle, vkey);
      expect(result.ok).toBe(false);
      expect(!result.ok && result.reason.length).toBeGreaterThan(0);
    }
    expect(verifyBundle(good, 'garbage')).toEqual({ ok: false, reason: expect.stringMatching(/^checkpoint: verifier key/) as unknown });
  });
});
