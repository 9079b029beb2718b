import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CustodianError, isCustodianError, type ErrorCode } from '../../src/core/index.js';
import { HttpKmsKekProvider, type HttpKmsKekProviderOptions } from '../../src/crypto/http-kms/http-kms-kek-provider.js';
import { FakeKms } from '../support/fake-kms.js';

const TOKEN = 'kms-test-token';
const KEYS = new Map([
  [1, 'custodian-v1'],
  [2, 'custodian-v2'],
]);

let kms: FakeKms;

beforeAll(async () => {
  kms = await FakeKms.start({ token: TOKEN });
});
afterAll(async () => kms.close());
beforeEach(() => kms.reset());

function provider(options: Partial<HttpKmsKekProviderOptions> = {}): HttpKmsKekProvider {
  return new HttpKmsKekProvider({ url: kms.url, token: TOKEN, keys: KEYS, timeoutMs: 1000, ...options });
}

/** The error a promise rejects with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('expected a rejection'),
    (err: unknown) => err,
  );
}

async function custodianError(promise: Promise<unknown>, code: ErrorCode): Promise<CustodianError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(CustodianError);
  expect((err as CustodianError).code).toBe(code);
  return err as CustodianError;
}

function syncCustodianError(fn: () => unknown, code: ErrorCode): CustodianError {
  try {
    fn();
  } catch (err) {
    expect(isCustodianError(err, code)).toBe(true);
    return err as CustodianError;
  }
  return expect.unreachable('expected a throw');
}

const dataKey = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));
const aad = fc.uint8Array({ maxLength: 96 }).map((a) => Buffer.from(a));

describe('HttpKmsKekProvider against a local KMS', () => {
  it('unwraps what it wrapped, for any 32-byte data key and any aad, under each version', async () => {
    const p = provider();
    await fc.assert(
      fc.asyncProperty(dataKey, aad, fc.constantFrom(1, 2), async (key, context, version) => {
        const wrapped = await p.wrap(version, key, context);
        expect(wrapped.includes(key)).toBe(false);
        expect(await p.unwrap(version, wrapped, context)).toEqual(key);
      }),
      { numRuns: 25 },
    );
  });

  it('describes its versions and key references without key material', async () => {
    const p = provider();
    expect(p.kind).toBe('kms');
    expect(await p.versions()).toEqual([1, 2]);
    expect(p.keyRef(1)).toBe('kms:custodian-v1');
    expect(p.keyRef(2)).toBe('kms:custodian-v2');
    expect(JSON.stringify(p)).not.toContain(TOKEN);
  });

  it('sorts versions whatever the order of the map', async () => {
    const p = provider({ keys: new Map([[3, 'c'], [1, 'a'], [2, 'b']]) });
    expect(await p.versions()).toEqual([1, 2, 3]);
  });

  it('reports a wrong aad as WRONG_MASTER_KEY, without retrying', async () => {
    const p = provider();
    const wrapped = await p.wrap(1, randomBytes(32), Buffer.from('table=subjects;column=email'));
    kms.reset();
    const err = await custodianError(p.unwrap(1, wrapped, Buffer.from('table=subjects;column=phone')), 'CST_ERR_CRYPTO_WRONG_MASTER_KEY');
    expect(err.details).toMatchObject({ version: 1, keyId: 'custodian-v1', status: 422 });
    expect(kms.requests.unwrap).toBe(1);
  });

  it('reports a key wrapped under another version, or altered, as WRONG_MASTER_KEY', async () => {
    const p = provider();
    const context = Buffer.from('ctx');
    const wrapped = await p.wrap(1, randomBytes(32), context);
    await custodianError(p.unwrap(2, wrapped, context), 'CST_ERR_CRYPTO_WRONG_MASTER_KEY');
    const altered = Buffer.from(wrapped);
    altered[altered.length - 1]! ^= 1;
    await custodianError(p.unwrap(1, altered, context), 'CST_ERR_CRYPTO_WRONG_MASTER_KEY');
    await custodianError(p.unwrap(1, Buffer.alloc(4), context), 'CST_ERR_CRYPTO_WRONG_MASTER_KEY');
  });

  it('refuses a version without a KMS key id as MASTER_KEY_MISSING, without asking the KMS', async () => {
    const p = provider();
    const err = await custodianError(p.wrap(3, randomBytes(32), Buffer.alloc(0)), 'CST_ERR_CRYPTO_MASTER_KEY_MISSING');
    expect(err.details).toMatchObject({ version: 3 });
    await custodianError(p.unwrap(3, randomBytes(60), Buffer.alloc(0)), 'CST_ERR_CRYPTO_MASTER_KEY_MISSING');
    syncCustodianError(() => p.keyRef(3), 'CST_ERR_CRYPTO_MASTER_KEY_MISSING');
    expect(kms.requests.total).toBe(0);
  });

  it('cannot create versions: it tells the operator to add a KMS key to CUSTODIAN_KMS_KEYS', async () => {
    const err = await custodianError(provider().createVersion(), 'CST_ERR_CRYPTO_MASTER_KEY_MISSING');
    expect(err.message).toContain('CUSTODIAN_KMS_KEYS');
    expect(err.message).toContain('"3:<keyId>"');
    expect(kms.requests.total).toBe(0);
  });

  it('retries a 5xx and succeeds', async () => {
    const p = provider();
    const key = randomBytes(32);
    kms.failNext(1, 503);
    const wrapped = await p.wrap(1, key, Buffer.from('a'));
    expect(kms.requests.wrap).toBe(2);
    kms.failNext(2, 502);
    expect(await p.unwrap(1, wrapped, Buffer.from('a'))).toEqual(key);
    expect(kms.requests.unwrap).toBe(3);
  });

  it('retries 429 (throttling) like a 5xx', async () => {
    kms.failNext(1, 429);
    await provider().wrap(1, randomBytes(32), Buffer.alloc(0));
    expect(kms.requests.wrap).toBe(2);
  });

  it('gives up with KMS_UNAVAILABLE after retries + 1 requests when the KMS keeps failing', async () => {
    kms.failNext(3, 500);
    const err = await custodianError(provider({ retries: 2 }).wrap(1, randomBytes(32), Buffer.alloc(0)), 'CST_ERR_CRYPTO_KMS_UNAVAILABLE');
    expect(err.details).toMatchObject({ operation: 'wrap', status: 500, attempts: 3 });
    expect(kms.requests.total).toBe(3);

    kms.reset();
    kms.failNext(1, 500);
    await custodianError(provider({ retries: 0 }).wrap(1, randomBytes(32), Buffer.alloc(0)), 'CST_ERR_CRYPTO_KMS_UNAVAILABLE');
    expect(kms.requests.total).toBe(1);
  });

  it('times out a KMS that does not answer, retrying, then KMS_UNAVAILABLE', async () => {
    kms.delayNext(2, 2000);
    const started = performance.now();
    const err = await custodianError(provider({ timeoutMs: 100, retries: 1 }).wrap(1, randomBytes(32), Buffer.alloc(0)), 'CST_ERR_CRYPTO_KMS_UNAVAILABLE');
    expect(performance.now() - started).toBeLessThan(1500);
    expect(err.details).toMatchObject({ reason: 'timeout', attempts: 2 });
    expect(err.message).toContain('timed out');
    expect(kms.requests.total).toBe(2);
  });

  it('reports a refused token (401) as KMS_UNAVAILABLE with the status, without retrying', async () => {
    for (const token of ['wrong-token', undefined]) {
      kms.reset();
      const err = await custodianError(provider({ token }).wrap(1, randomBytes(32), Buffer.alloc(0)), 'CST_ERR_CRYPTO_KMS_UNAVAILABLE');
      expect(err.details).toMatchObject({ status: 401 });
      expect(err.message).toContain('misconfiguration');
      expect(err.message).not.toContain(TOKEN);
      expect(kms.requests.total).toBe(1);
    }
  });

  it.each([403, 400, 404, 422, 307])('does not retry HTTP %i from wrap', async (status) => {
    kms.failNext(1, status);
    const err = await custodianError(provider().wrap(1, randomBytes(32), Buffer.alloc(0)), 'CST_ERR_CRYPTO_KMS_UNAVAILABLE');
    expect(err.details).toMatchObject({ status });
    expect(kms.requests.total).toBe(1);
  });

  it.each([
    ['not JSON', 'wrap', 'ciphertext: nope'],
    ['an empty body', 'wrap', ''],
    ['a JSON array', 'wrap', '[]'],
    ['no ciphertext', 'wrap', '{}'],
    ['a ciphertext that is not base64', 'wrap', '{"ciphertext":"***"}'],
    ['an empty ciphertext', 'wrap', '{"ciphertext":""}'],
    ['a plaintext of 16 bytes', 'unwrap', JSON.stringify({ plaintext: randomBytes(16).toString('base64') })],
    ['a plaintext that is a number', 'unwrap', '{"plaintext":42}'],
    ['an answer over 64 KiB', 'unwrap', JSON.stringify({ plaintext: randomBytes(32).toString('base64'), pad: 'x'.repeat(70_000) })],
  ] as const)('reports an answer with %s as KMS_UNAVAILABLE, not a crash', async (_, operation, body) => {
    const p = provider();
    kms.answerNext(1, 200, body);
    const call = operation === 'wrap' ? p.wrap(1, randomBytes(32), Buffer.alloc(0)) : p.unwrap(1, randomBytes(60), Buffer.alloc(0));
    const err = await custodianError(call, 'CST_ERR_CRYPTO_KMS_UNAVAILABLE');
    expect(err.details).toMatchObject({ operation, reason: 'malformed' });
    expect(kms.requests.total).toBe(1);
  });

  it('reports a KMS that cannot be reached as KMS_UNAVAILABLE after retries', async () => {
    const gone = await FakeKms.start();
    const url = gone.url;
    await gone.close();
    const err = await custodianError(provider({ url, retries: 1 }).wrap(1, randomBytes(32), Buffer.alloc(0)), 'CST_ERR_CRYPTO_KMS_UNAVAILABLE');
    expect(err.details).toMatchObject({ reason: 'network', attempts: 2 });
  });

  it("stops at once when the caller's signal aborts, with the signal's reason", async () => {
    // No retries: the abort must not be mistaken for a failed attempt and reported as KMS_UNAVAILABLE.
    const p = provider({ timeoutMs: 5000, retries: 0 });
    kms.delayNext(1, 2000);
    const controller = new AbortController();
    const started = performance.now();
    const call = p.wrap(1, randomBytes(32), Buffer.alloc(0), { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const err = await rejection(call);
    expect((err as Error).name).toBe('AbortError');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(kms.requests.total).toBe(1);

    kms.reset();
    const reason = new Error('request closed');
    expect(await rejection(p.unwrap(1, randomBytes(60), Buffer.alloc(0), { signal: AbortSignal.abort(reason) }))).toBe(reason);
    expect(kms.requests.total).toBe(0);
  });

  it("stops retrying when the caller's signal aborts during the backoff", async () => {
    kms.failNext(5, 503);
    const controller = new AbortController();
    const call = provider({ retries: 4 }).wrap(1, randomBytes(32), Buffer.alloc(0), { signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    expect(await rejection(call)).toMatchObject({ name: 'AbortError' });
    expect(kms.requests.total).toBeLessThan(5);
  });

  it('never puts the data key, the token or a quoted answer in errors', async () => {
    const key = randomBytes(32);
    const secrets = [key.toString('base64'), key.toString('hex'), key.toString('base64url'), TOKEN];
    const p = provider();
    const context = Buffer.from('ctx');
    const wrapped = await p.wrap(1, key, context);
    const errors: unknown[] = [];
    const collect = async (promise: Promise<unknown>) => errors.push(await rejection(promise));

    kms.failNext(3, 500);
    await collect(p.wrap(1, key, context));
    kms.delayNext(3, 500);
    await collect(provider({ timeoutMs: 50 }).wrap(1, key, context));
    await collect(provider({ token: 'wrong' }).wrap(1, key, context));
    await collect(p.unwrap(1, wrapped, Buffer.from('other')));
    // A broken KMS that echoes the plaintext in a body that is not JSON: the parser's message would quote it.
    kms.answerNext(1, 200, `plaintext=${key.toString('base64')}`, 'text/plain');
    await collect(p.unwrap(1, wrapped, context));
    kms.answerNext(1, 200, JSON.stringify({ plaintext: Buffer.concat([key, key]).toString('base64') }));
    await collect(p.unwrap(1, wrapped, context));

    expect(errors).toHaveLength(6);
    for (const err of errors) {
      expect(err).toBeInstanceOf(CustodianError);
      const e = err as CustodianError;
      const cause = e.cause instanceof Error ? `${e.cause.message} ${String((e.cause as { cause?: unknown }).cause)}` : String(e.cause);
      const text = JSON.stringify({ message: e.message, details: e.details, stack: e.stack, cause });
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
  });
});

describe('HttpKmsKekProvider options', () => {
  it.each<readonly [string, Partial<HttpKmsKekProviderOptions>, string]>([
    ['a URL that is not http', { url: 'ftp://kms.example.com' }, 'kmsUrl'],
    ['a relative URL', { url: 'kms.example.com' }, 'kmsUrl'],
    ['credentials in the URL', { url: 'https://user:pw@kms.example.com' }, 'kmsUrl'],
    ['no keys', { keys: new Map<number, string>() }, 'kmsKeys'],
    ['version 0', { keys: new Map([[0, 'a']]) }, 'kmsKeys'],
    ['a fractional version', { keys: new Map([[1.5, 'a']]) }, 'kmsKeys'],
    ['a key id with a space', { keys: new Map([[1, 'a b']]) }, 'kmsKeys'],
    ['one key id for two versions', { keys: new Map([[1, 'a'], [2, 'a']]) }, 'kmsKeys'],
    ['a token with a newline', { token: 'a\nb' }, 'kmsToken'],
    ['a zero timeout', { timeoutMs: 0 }, 'kmsTimeoutMs'],
    ['negative retries', { retries: -1 }, 'kmsRetries'],
  ])('refuses %s as CST_ERR_CONFIG', (_, options, setting) => {
    const err = syncCustodianError(() => provider(options), 'CST_ERR_CONFIG');
    expect(err.details).toEqual({ setting });
  });
});

describe('HttpKmsKekProvider.fromEnv', () => {
  it('is undefined when CUSTODIAN_KMS_URL is not set', () => {
    expect(HttpKmsKekProvider.fromEnv({})).toBeUndefined();
    expect(HttpKmsKekProvider.fromEnv({ CUSTODIAN_KMS_URL: '', CUSTODIAN_KMS_TOKEN: 'x' })).toBeUndefined();
  });

  it('parses the URL, token and version → key id map', async () => {
    const p = HttpKmsKekProvider.fromEnv({
      CUSTODIAN_KMS_URL: 'https://kms.internal.example.com/',
      CUSTODIAN_KMS_TOKEN: 's.abcdef',
      CUSTODIAN_KMS_KEYS: ' 2:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab , 1:alias/custodian-v1 ',
    })!;
    expect(await p.versions()).toEqual([1, 2]);
    expect(p.keyRef(1)).toBe('kms:alias/custodian-v1');
    expect(p.keyRef(2)).toBe('kms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    expect(p.toJSON()).toEqual({ kind: 'kms', url: 'https://kms.internal.example.com', versions: [1, 2] });
  });

  it('talks to the KMS it was configured with', async () => {
    const p = HttpKmsKekProvider.fromEnv({ CUSTODIAN_KMS_URL: kms.url, CUSTODIAN_KMS_TOKEN: TOKEN, CUSTODIAN_KMS_KEYS: '1:from-env' })!;
    const key = randomBytes(32);
    expect(await p.unwrap(1, await p.wrap(1, key, Buffer.from('x')), Buffer.from('x'))).toEqual(key);
  });

  it.each<readonly [string, NodeJS.ProcessEnv, string]>([
    ['keys missing', { CUSTODIAN_KMS_URL: 'https://kms.example.com' }, 'CUSTODIAN_KMS_KEYS'],
    ['keys without a URL', { CUSTODIAN_KMS_KEYS: '1:a' }, 'CUSTODIAN_KMS_URL'],
    ['a bad URL', { CUSTODIAN_KMS_URL: 'not a url', CUSTODIAN_KMS_KEYS: '1:a' }, 'CUSTODIAN_KMS_URL'],
    ['a URL with a query', { CUSTODIAN_KMS_URL: 'https://kms.example.com/?token=x', CUSTODIAN_KMS_KEYS: '1:a' }, 'CUSTODIAN_KMS_URL'],
    ['a token with a space', { CUSTODIAN_KMS_URL: 'https://kms.example.com', CUSTODIAN_KMS_TOKEN: 'a b', CUSTODIAN_KMS_KEYS: '1:a' }, 'CUSTODIAN_KMS_TOKEN'],
    ...[
      'key-a',
      '1',
      '1:',
      ':key-a',
      'x:key-a',
      '0:key-a',
      '-1:key-a',
      '1.5:key-a',
      '1:key-a,',
      '1:key-a,,2:key-b',
      '1:key-a,1:key-b',
      '1:key-a,2:key-a',
      '1:key a',
      '1234567:key-a',
    ].map((keys) => [`CUSTODIAN_KMS_KEYS="${keys}"`, { CUSTODIAN_KMS_URL: 'https://kms.example.com', CUSTODIAN_KMS_KEYS: keys }, 'CUSTODIAN_KMS_KEYS'] as const),
  ])('refuses %s as CST_ERR_CONFIG', (_, env, setting) => {
    const err = syncCustodianError(() => HttpKmsKekProvider.fromEnv(env), 'CST_ERR_CONFIG');
    expect(err.details).toEqual({ setting });
  });
});
