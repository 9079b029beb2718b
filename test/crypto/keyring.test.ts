import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCustodian, type Custodian } from '../../src/app/index.js';
import { isCustodianError, type ErrorCode } from '../../src/core/index.js';
import { STORE_KINDS, custodianFixture, type StoreFixture } from '../support/stores.js';

async function codeOf(p: Promise<unknown>): Promise<ErrorCode | 'ok' | 'other'> {
  return p.then(
    () => 'ok' as const,
    (e: unknown) => (isCustodianError(e) ? e.code : 'other'),
  );
}

describe.each(STORE_KINDS)('keyring on %s', (kind) => {
  let c: Custodian;
  let fixture: StoreFixture;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ custodian: c, fixture, cleanup } = await custodianFixture(kind));
  });
  afterAll(async () => cleanup());

  it('decrypt(encrypt(x, c), c) = x for any text and context', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !s.includes('\u0000')), fc.integer({ min: 0, max: 5 }), async (x, ctx, s) => {
        const ct = await c.keyring.encryptField(`prop-subject-${s}`, x, ctx);
        expect(ct.startsWith('c2.')).toBe(true);
        expect(await c.keyring.decryptFieldText(ct, ctx)).toBe(x);
      }),
      { numRuns: 100 },
    );
  });

  it('any single-bit flip fails, and never yields a plaintext', async () => {
    const ct = await c.keyring.encryptField('flip-subject', 'a value worth protecting', 'crm.contacts.email:42');
    const bytes = Buffer.from(ct.slice(3), 'base64url');
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: bytes.length * 8 - 1 }), async (bit) => {
        const b = Buffer.from(bytes);
        b[bit >> 3]! ^= 1 << (bit & 7);
        const code = await codeOf(c.keyring.decryptField('c2.' + b.toString('base64url'), 'crm.contacts.email:42'));
        expect(['CST_ERR_CRYPTO_TAMPERED', 'CST_ERR_CRYPTO_WRONG_CONTEXT', 'CST_ERR_CRYPTO_UNKNOWN_KEY', 'CST_ERR_CRYPTO_UNSUPPORTED_VERSION']).toContain(code);
      }),
      { numRuns: 150 },
    );
  });

  it('a value moved to another context fails with its own error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ minLength: 1, maxLength: 40 }), async (a, b) => {
        fc.pre(a !== b && !a.includes('\u0000') && !b.includes('\u0000'));
        const ct = await c.keyring.encryptField('ctx-subject', 'secret', a);
        expect(await codeOf(c.keyring.decryptField(ct, b))).toBe('CST_ERR_CRYPTO_WRONG_CONTEXT');
      }),
      { numRuns: 50 },
    );
  });

  it('tells malformed, truncated, unknown-version and unknown-key input apart', async () => {
    const ct = await c.keyring.encryptField('shape-subject', 'x', 'ctx');
    const subjectKeysBefore = (await c.keyring.status()).dataKeys.subject;
    expect(await codeOf(c.keyring.decryptField('', 'ctx'))).toBe('CST_ERR_CRYPTO_MALFORMED');
    expect(await codeOf(c.keyring.decryptField('hello', 'ctx'))).toBe('CST_ERR_CRYPTO_MALFORMED');
    expect(await codeOf(c.keyring.decryptField('c2.@@@', 'ctx'))).toBe('CST_ERR_CRYPTO_MALFORMED');
    expect(await codeOf(c.keyring.decryptField(ct + '=', 'ctx'))).toBe('CST_ERR_CRYPTO_MALFORMED');
    expect(await codeOf(c.keyring.decryptField(ct.slice(0, 40) + '*' + ct.slice(40), 'ctx'))).toBe('CST_ERR_CRYPTO_MALFORMED');
    expect(await codeOf(c.keyring.decryptField(ct.slice(0, 30), 'ctx'))).toBe('CST_ERR_CRYPTO_MALFORMED');
    expect(await codeOf(c.keyring.decryptField('c3.' + ct.slice(3), 'ctx'))).toBe('CST_ERR_CRYPTO_UNSUPPORTED_VERSION');
    expect(await codeOf(c.keyring.decryptField('c1.' + ct.slice(3), 'ctx'))).toBe('CST_ERR_CRYPTO_UNSUPPORTED_VERSION'); // text and byte versions disagree
    const forged = Buffer.from(ct.slice(3), 'base64url');
    forged.fill(0xab, 1, 9);
    expect(await codeOf(c.keyring.decryptField('c2.' + forged.toString('base64url'), 'ctx'))).toBe('CST_ERR_CRYPTO_UNKNOWN_KEY');
    expect(await codeOf(c.keyring.decryptField(ct, ''))).toBe('CST_ERR_CRYPTO_BAD_CONTEXT');
    expect(await codeOf(c.keyring.encryptField('shape-subject', 'x', 'x'.repeat(513)))).toBe('CST_ERR_CRYPTO_BAD_CONTEXT');
    // Characters are checked on the hot path too (cached key): a NUL, and a lone surrogate in a non-ASCII context.
    expect(await codeOf(c.keyring.encryptField('shape-subject', 'x', 'crm.email:\u0000'))).toBe('CST_ERR_CRYPTO_BAD_CONTEXT');
    expect(await codeOf(c.keyring.decryptField(ct, 'ctx\u0000'))).toBe('CST_ERR_CRYPTO_BAD_CONTEXT');
    expect(await codeOf(c.keyring.encryptField('shape-subject', 'x', 'crm.é:\ud800'))).toBe('CST_ERR_CRYPTO_BAD_CONTEXT');
    expect(await codeOf(c.keyring.decryptField(ct, 'é\udc00'))).toBe('CST_ERR_CRYPTO_BAD_CONTEXT');
    // and not before a key is created for a subject seen for the first time.
    expect(await codeOf(c.keyring.encryptField('shape-subject-new', 'x', 'a\u0000'))).toBe('CST_ERR_CRYPTO_BAD_CONTEXT');
    expect((await c.keyring.status()).dataKeys.subject).toBe(subjectKeysBefore);
    // A key id that differs from a cached key's only in its last byte is not that key.
    const near = Buffer.from(ct.slice(3), 'base64url');
    near[8] = near[8]! ^ 0x01;
    expect(await codeOf(c.keyring.decryptField('c2.' + near.toString('base64url'), 'ctx'))).toBe('CST_ERR_CRYPTO_UNKNOWN_KEY');
  });

  it('shredding makes every ciphertext of the subject fail with CST_ERR_CRYPTO_SHREDDED; others are untouched; new data gets a fresh key', async () => {
    const a = await c.keyring.encryptField('shred-a', 'alice@example.com', 'crm.email:1');
    const a2 = await c.keyring.encryptField('shred-a', '+44 20 7946 0000', 'crm.phone:1');
    const b = await c.keyring.encryptField('shred-b', 'bob@example.com', 'crm.email:2');
    const receipt = await c.keyring.shredSubject('shred-a', { reason: 'erasure request r-1', actor: 'test' });
    expect(receipt).toMatchObject({ keysDestroyed: 1, subjectRef: c.keyring.subjectRef('shred-a') });
    expect(await codeOf(c.keyring.decryptField(a, 'crm.email:1'))).toBe('CST_ERR_CRYPTO_SHREDDED');
    expect(await codeOf(c.keyring.decryptField(a2, 'crm.phone:1'))).toBe('CST_ERR_CRYPTO_SHREDDED');
    expect(await c.keyring.decryptFieldText(b, 'crm.email:2')).toBe('bob@example.com');
    const fresh = await c.keyring.encryptField('shred-a', 'new data', 'crm.email:1');
    expect(fresh.slice(3, 15)).not.toBe(a.slice(3, 15));
    expect(await c.keyring.decryptFieldText(fresh, 'crm.email:1')).toBe('new data');
    expect(await codeOf(c.keyring.decryptField(a, 'crm.email:1'))).toBe('CST_ERR_CRYPTO_SHREDDED');
    const history = await c.keyring.shredHistory('shred-a');
    expect(history.subjectRef).toBe(receipt.subjectRef);
    expect(history.shreddings).toEqual([{ tombstoneId: receipt.tombstoneId, shreddedAt: receipt.shreddedAt, reason: 'erasure request r-1', actor: 'test', keysDestroyed: 1, keyIds: receipt.keyIds }]);
    // A second shredding (of the fresh key) is listed after the first, with its own key; others are not listed.
    const again = await c.keyring.shredSubject('shred-a', { reason: 'erasure request r-2', actor: 'test' });
    const twice = await c.keyring.shredHistory('shred-a');
    expect(twice.shreddings.map((h) => [h.tombstoneId, h.keyIds])).toEqual([
      [receipt.tombstoneId, receipt.keyIds],
      [again.tombstoneId, again.keyIds],
    ]);
    expect(again.keyIds).toHaveLength(1);
    expect(again.keyIds[0]).not.toBe(receipt.keyIds[0]);
    expect((await c.keyring.shredHistory('shred-b')).shreddings).toEqual([]);
    expect(await codeOf(c.keyring.shredSubject('shred-a', { reason: ' ', actor: 'test' }))).toBe('CST_ERR_VALIDATION');
  });

  it('a shredding by another process is honoured by a process that had the key cached', async () => {
    const ct = await c.keyring.encryptField('xproc-shred', 'value', 'ctx:1');
    expect(await c.keyring.decryptFieldText(ct, 'ctx:1')).toBe('value'); // key cached in c
    const cli = await createCustodian(c.config, { watch: false });
    try {
      await cli.keyring.shredSubject('xproc-shred', { reason: 'cli', actor: 'cli' });
    } finally {
      await cli.close();
    }
    if (kind === 'sqlite') {
      // The store's change token is trusted for at most 1 ms: every operation starting later sees the shredding.
      await new Promise((r) => setTimeout(r, 2));
      expect(await codeOf(c.keyring.decryptField(ct, 'ctx:1'))).toBe('CST_ERR_CRYPTO_SHREDDED');
    } else {
      // PostgreSQL: on the NOTIFY the shredding committed with.
      await vi.waitFor(async () => expect(await codeOf(c.keyring.decryptField(ct, 'ctx:1'))).toBe('CST_ERR_CRYPTO_SHREDDED'), { timeout: 2000, interval: 10 });
    }
  });

  it('blind indexes normalise, are keyed per index, survive shredding, and cannot be silently redefined', async () => {
    const x = await c.keyring.blindIndex(' Alice@Example.COM ', 'email');
    expect(x).toBe(await c.keyring.blindIndex('alice@example.com', 'email'));
    expect(x).toHaveLength(11); // 64 bits, base64url
    expect(await c.keyring.blindIndex('+44 20 7946 0000', 'phone')).toBe(await c.keyring.blindIndex('+442079460000', 'phone'));
    await c.keyring.defineBlindIndex({ name: 'customer_no', normaliser: 'trim', bits: 32 });
    expect(await c.keyring.blindIndex('alice@example.com', 'customer_no')).not.toBe(x.slice(0, 6));
    expect((await c.keyring.blindIndex('123', 'customer_no')).length).toBe(6);
    expect(await codeOf(c.keyring.defineBlindIndex({ name: 'customer_no', normaliser: 'exact', bits: 32 }))).toBe('CST_ERR_VALIDATION');
    expect(await codeOf(c.keyring.blindIndex('x', 'nope'))).toBe('CST_ERR_CRYPTO_UNKNOWN_INDEX');
    await c.keyring.shredSubject('someone', { reason: 'test', actor: 'test' });
    expect(await c.keyring.blindIndex('alice@example.com', 'email')).toBe(x);
    const listed = await c.keyring.listBlindIndexes();
    expect(listed.map((i) => i.name)).toEqual([...listed.map((i) => i.name)].sort());
    expect(listed.filter((i) => ['customer_no', 'email', 'phone'].includes(i.name))).toEqual([
      { name: 'customer_no', normaliser: 'trim', bits: 32, builtIn: false, defined: true },
      { name: 'email', normaliser: 'email', bits: 64, builtIn: true, defined: true },
      { name: 'phone', normaliser: 'phone', bits: 64, builtIn: true, defined: true },
    ]);
  });

  it('lists the built-in blind indexes as usable but not yet defined on a new store', async () => {
    const fresh = await custodianFixture(kind);
    try {
      expect(await fresh.custodian.keyring.listBlindIndexes()).toEqual([
        { name: 'email', normaliser: 'email', bits: 64, builtIn: true, defined: false },
        { name: 'phone', normaliser: 'phone', bits: 64, builtIn: true, defined: false },
      ]);
      await fresh.custodian.keyring.blindIndex('+1 555 0100', 'phone');
      expect((await fresh.custodian.keyring.listBlindIndexes()).map((i) => [i.name, i.defined])).toEqual([
        ['email', false],
        ['phone', true],
      ]);
    } finally {
      await fresh.cleanup();
    }
  });

  it('stores data keys only wrapped, and never the master key', async () => {
    await c.keyring.encryptField('wrap-check', 'v', 'ctx');
    const master = c.masterKey!.exportBytes();
    const dump = JSON.stringify(await c.store.db.selectFrom('data_keys').selectAll().execute()) + JSON.stringify(await c.store.db.selectFrom('kek_versions').selectAll().execute());
    expect(dump).not.toContain(master.toString('base64'));
    expect(dump).not.toContain(master.toString('hex'));
  });

  it('rotates the master key, re-wraps resumably, then retires the old version', async () => {
    for (let i = 0; i < 40; i++) await c.keyring.encryptField(`rot-${i}`, `v${i}`, 'ctx');
    const old = await c.keyring.encryptField('rot-0', 'before rotation', 'ctx');
    const before = await c.keyring.status();
    const { version, previous } = await c.keyring.rotate();
    expect(version).toBe(previous + 1);
    expect(await codeOf(c.keyring.retire(previous))).toBe('CST_ERR_CRYPTO_RETIRE_REFUSED');
    expect(await codeOf(c.keyring.retire(version))).toBe('CST_ERR_CRYPTO_RETIRE_REFUSED');
    // One batch, then stop: the job is left running with its cursor.
    for await (const p of c.keyring.rewrap({ batchSize: 7 })) {
      expect(p).toMatchObject({ processed: 7, done: false });
      break;
    }
    expect((await c.keyring.status()).rewrap).toMatchObject({ processed: 7, done: false });
    let last;
    for await (const p of c.keyring.rewrap({ batchSize: 7 })) last = p;
    const total = before.dataKeys.subject + before.dataKeys.index + before.dataKeys.system;
    expect(last).toMatchObject({ processed: total, total, done: true });
    const after = await c.keyring.status();
    expect(after.versions.find((v) => v.version === previous)?.dataKeys).toBe(0);
    expect(await c.keyring.decryptFieldText(old, 'ctx')).toBe('before rotation');
    await c.keyring.retire(previous);
    expect((await c.keyring.status()).versions.find((v) => v.version === previous)?.status).toBe('retired');
  });

  it('a process started before a rotation by another process picks up the new key-file version', async () => {
    const running = await createCustodian(c.config, { watch: false });
    try {
      const cli = await createCustodian(c.config, { watch: false });
      try {
        await cli.keyring.rotate();
      } finally {
        await cli.close();
      }
      const ct = await running.keyring.encryptField('after-rotation-subject', 'fresh', 'ctx');
      expect(await running.keyring.decryptFieldText(ct, 'ctx')).toBe('fresh');
      for await (const _ of running.keyring.rewrap()) void _;
    } finally {
      await running.close();
    }
  });

  it('refuses to start with a wrong master key, or without a version data keys depend on', async () => {
    const wrong = Buffer.alloc(32, 7).toString('base64');
    expect(await codeOf(createCustodian({ ...c.config, masterKey: wrong }, { watch: false }))).toBe('CST_ERR_CRYPTO_MASTER_KEY_MISSING');
    const versions = c.masterKey!.versions();
    const onlyFirst = `${versions[0]}:${c.masterKey!.exportBytes(versions[0]).toString('base64')}`;
    expect(await codeOf(createCustodian({ ...c.config, masterKey: onlyFirst }, { watch: false }))).toBe('CST_ERR_CRYPTO_MASTER_KEY_MISSING');
    const allWrong = versions.map((v) => `${v}:${wrong}`).join(',');
    expect(await codeOf(createCustodian({ ...c.config, masterKey: allWrong }, { watch: false }))).toBe('CST_ERR_CRYPTO_WRONG_MASTER_KEY');
  });

  if (kind === 'sqlite') {
    it('a backup taken before shredding cannot be decrypted with the live keyring afterwards', async () => {
      const path = fixture.url.slice('sqlite:'.length);
      const values = await Promise.all([0, 1, 2].map(async (i) => c.keyring.encryptField('backup-subject', `secret ${i}`, `app.notes:${i}`)));
      const raw = new SQLite(path);
      raw.exec('create table if not exists app_notes (id integer primary key, body text)');
      const ins = raw.prepare('insert into app_notes (id, body) values (?, ?)');
      values.forEach((v, i) => ins.run(i, v));
      raw.pragma('wal_checkpoint(TRUNCATE)');
      raw.close();
      const backup = join(fixture.dir, 'backup.db');
      await copyFile(path, backup);
      await c.keyring.shredSubject('backup-subject', { reason: 'erasure', actor: 'test' });
      const fromBackup = new SQLite(backup, { readonly: true });
      const rows = fromBackup.prepare('select id, body from app_notes order by id').all() as Array<{ id: number; body: string }>;
      fromBackup.close();
      expect(rows).toHaveLength(3);
      for (const r of rows) expect(await codeOf(c.keyring.decryptField(r.body, `app.notes:${r.id}`))).toBe('CST_ERR_CRYPTO_SHREDDED');
      // The caveat this depends on: the backup holds its own (wrapped) copy of the key store. With the master key,
      // a keyring opened on the backup still decrypts — so key-store backups must expire before the erasure deadline.
      const restored = await createCustodian({ ...c.config, dbUrl: `sqlite:${backup}` }, { watch: false });
      try {
        expect(await restored.keyring.decryptFieldText(rows[0]!.body, 'app.notes:0')).toBe('secret 0');
      } finally {
        await restored.close();
      }
    });
  }
});
