import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustodian, loadConfig } from '../../src/app/index.js';
import { isCustodianError } from '../../src/core/index.js';
import { FakeKms } from '../support/fake-kms.js';
import { storeFixture, type StoreFixture } from '../support/stores.js';

describe('keyring with master keys in an HTTP KMS', () => {
  let kms: FakeKms;
  let fixture: StoreFixture;
  beforeAll(async () => {
    kms = await FakeKms.start({ token: 'kms-test-token' });
    fixture = await storeFixture('sqlite');
  });
  afterAll(async () => {
    await kms.close();
    await fixture.cleanup();
  });
  const config = (keys: string) =>
    loadConfig({ CUSTODIAN_KMS_URL: kms.url, CUSTODIAN_KMS_TOKEN: 'kms-test-token', CUSTODIAN_KMS_KEYS: keys }, { dbUrl: fixture.url, dataDir: fixture.dir, generateDevMasterKey: false });

  it('encrypts, rotates to a new KMS key, re-wraps, retires, and shreds — with no local master key at all', async () => {
    const c = await createCustodian(config('1:alias/custodian-a'), { watch: false });
    let ct: string;
    try {
      expect(c.masterKey).toBeUndefined();
      ct = await c.keyring.encryptField('kms-subject', 'in the KMS', 'ctx:1');
      expect(await c.keyring.decryptFieldText(ct, 'ctx:1')).toBe('in the KMS');
      // Rotation with no new key configured tells the operator what to do.
      const err = await c.keyring.rotate().catch((e: unknown) => e);
      expect(isCustodianError(err, 'CST_ERR_CRYPTO_MASTER_KEY_MISSING')).toBe(true);
    } finally {
      await c.close();
    }
    const c2 = await createCustodian(config('1:alias/custodian-a,2:alias/custodian-b'), { watch: false });
    try {
      expect(await c2.keyring.rotate()).toEqual({ version: 2, previous: 1 });
      let last;
      for await (const p of c2.keyring.rewrap()) last = p;
      expect(last).toMatchObject({ done: true });
      await c2.keyring.retire(1);
      expect(await c2.keyring.decryptFieldText(ct, 'ctx:1')).toBe('in the KMS');
      expect((await c2.keyring.status()).versions.map((v) => [v.version, v.keyRef, v.status])).toEqual([
        [1, 'kms:alias/custodian-a', 'retired'],
        [2, 'kms:alias/custodian-b', 'primary'],
      ]);
      await c2.keyring.shredSubject('kms-subject', { reason: 'erasure', actor: 'test' });
      const gone = await c2.keyring.decryptField(ct, 'ctx:1').catch((e: unknown) => e);
      expect(isCustodianError(gone, 'CST_ERR_CRYPTO_SHREDDED')).toBe(true);
    } finally {
      await c2.close();
    }
  });

  it('refuses to start when the KMS key for the primary version is not the one the store was made with', async () => {
    const err = await createCustodian(config('1:alias/custodian-a,2:alias/some-other-key'), { watch: false }).catch((e: unknown) => e);
    expect(isCustodianError(err, 'CST_ERR_CRYPTO_WRONG_MASTER_KEY')).toBe(true);
  });

  it('refuses to start while the KMS is unreachable, with a clear code', async () => {
    kms.failNext(20, 503);
    const err = await createCustodian(config('1:alias/custodian-a,2:alias/custodian-b'), { watch: false }).catch((e: unknown) => e);
    expect(isCustodianError(err, 'CST_ERR_CRYPTO_KMS_UNAVAILABLE')).toBe(true);
    kms.reset();
  });
});
