import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, killAllChildren, spawnCli, startServer, stopProcess, waitForExit } from '../support/server-process.js';
import { STORE_KINDS, storeFixture, type StoreFixture } from '../support/stores.js';

const ADMIN = 'shred-test-admin-key-0123456789';

describe.each(STORE_KINDS)('a shredding by the CLI, against a running server on %s', (kind) => {
  let fixture: StoreFixture | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await killAllChildren();
    await fixture?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is honoured by the server for a key it had cached', async () => {
    fixture = await storeFixture(kind);
    dir = await mkdtemp(join(tmpdir(), 'custodian-shred-'));
    const env = cleanEnv({ CUSTODIAN_ADMIN_KEY: ADMIN });
    const server = await startServer(['--db', fixture.url, '--port', '0', '--data-dir', dir], { env });
    const call = async (path: string, body: unknown) => {
      const res = await fetch(server.url + path, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const { body } = await call('/v1/crypto/encrypt', { subjectId: 'e2e-subject', plaintext: 'e2e secret', context: 'app.notes:1' });
    const ciphertext = body.ciphertext as string;
    expect(await call('/v1/crypto/decrypt', { ciphertext, context: 'app.notes:1' })).toEqual({ status: 200, body: { plaintext: 'e2e secret' } });

    const cli = spawnCli(['keys', 'shred', 'e2e-subject', '--reason', 'erasure request 77', '--db', fixture.url, '--data-dir', dir], { env });
    expect((await waitForExit(cli)).code).toBe(0);
    expect(JSON.parse(cli.stdout())).toMatchObject({ keysDestroyed: 1 });

    // SQLite: within 1 ms (the change token is re-read when older). PostgreSQL: on the NOTIFY, within ms.
    let answer = await call('/v1/crypto/decrypt', { ciphertext, context: 'app.notes:1' });
    for (let i = 0; kind === 'postgres' && answer.status === 200 && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 20));
      answer = await call('/v1/crypto/decrypt', { ciphertext, context: 'app.notes:1' });
    }
    expect(answer.status).toBe(410);
    expect((answer.body.error as { code: string }).code).toBe('CST_ERR_CRYPTO_SHREDDED');

    const status = spawnCli(['keys', 'status', '--db', fixture.url, '--data-dir', dir], { env });
    expect((await waitForExit(status)).code).toBe(0);
    expect(JSON.parse(status.stdout())).toMatchObject({ shreddings: 1, primaryVersion: 1 });
    const bad = spawnCli(['keys', 'shred', 'e2e-subject', '--db', fixture.url, '--data-dir', dir], { env });
    expect((await waitForExit(bad)).code).toBe(2); // --reason is required
    expect((await stopProcess(server)).code).toBe(0);
  });
});
