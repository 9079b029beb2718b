import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, killAllChildren, spawnCli, startServer, stopProcess, waitForExit } from '../support/server-process.js';

/*
 * The first-run experience: `custodian serve` in an empty folder with no configuration, as a child process
 * started from the current source through tsx (no build step; the process is the server itself).
 */

const ADMIN_KEY_LINE = /Admin API key \(shown once, store it now\): (cst_[A-Za-z0-9_-]+)/;

async function getPurposes(url: string, key?: string): Promise<number> {
  const res = await fetch(`${url}/v1/purposes`, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return res.status;
}

describe('custodian serve, first run', () => {
  let cwd: string | undefined;

  afterEach(async () => {
    await killAllChildren();
    if (cwd !== undefined) await rm(cwd, { recursive: true, force: true });
    cwd = undefined;
  });

  const freshCwd = async (): Promise<string> => {
    cwd = await mkdtemp(join(tmpdir(), 'custodian-start-'));
    return cwd;
  };

  it('starts with no configuration, prints the URL, docs and a working admin key once, and warns about the dev master key', { timeout: 40_000 }, async () => {
    const dir = await freshCwd();
    const first = await startServer(['--port', '0'], { cwd: dir, env: cleanEnv() });
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await first.waitForStdout(/!! WARNING: generated a DEVELOPMENT master key at \.custodian\/master\.key[\s\S]*CUSTODIAN_MASTER_KEY/);
    const out = first.stdout();
    expect(out).toContain(`Custodian `);
    expect(out).toContain(`listening on ${first.url}`);
    expect(out).toContain(`${first.url}/docs`);
    const adminKey = out.match(ADMIN_KEY_LINE)?.[1];
    expect(adminKey, out).toBeDefined();
    expect(out.split(adminKey!).length - 1, 'the admin key is printed once').toBe(1);

    expect(await getPurposes(first.url, adminKey)).toBe(200);
    expect(await getPurposes(first.url)).toBe(401);
    expect(await getPurposes(first.url, 'cst_not-a-real-key-0000000000000000')).toBe(401);
    const docs = await fetch(`${first.url}/docs`);
    await docs.arrayBuffer();
    expect(docs.status).toBeLessThan(400);

    const masterKey = await stat(join(dir, '.custodian', 'master.key'));
    expect(masterKey.mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, '.custodian', 'custodian.db'))).isFile()).toBe(true);

    expect(await stopProcess(first, 'SIGTERM')).toEqual({ code: 0, signal: null });

    // Second start on the same folder: no new key, no new master key, and the first key still works.
    const second = await startServer(['--port', '0'], { cwd: dir, env: cleanEnv() });
    const again = second.stdout();
    expect(again).not.toMatch(/cst_[A-Za-z0-9_-]{8,}/);
    expect(again).not.toContain('shown once');
    expect(again).toContain('already created');
    expect(again).not.toContain('generated a DEVELOPMENT master key');
    expect(again).toContain('development key file');
    expect(await getPurposes(second.url, adminKey)).toBe(200);
    expect((await stat(join(dir, '.custodian', 'master.key'))).mode & 0o777).toBe(0o600);
    expect(await stopProcess(second, 'SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('seeds CUSTODIAN_ADMIN_KEY as the admin key without printing it', { timeout: 30_000 }, async () => {
    const dir = await freshCwd();
    const chosen = `start-test-admin-${randomBytes(12).toString('hex')}`;
    const server = await startServer(['--port', '0'], { cwd: dir, env: cleanEnv({ CUSTODIAN_ADMIN_KEY: chosen }) });
    const out = server.stdout();
    expect(out).toContain('Admin API key: the value of CUSTODIAN_ADMIN_KEY');
    expect(out).not.toContain(chosen);
    expect(out).not.toMatch(ADMIN_KEY_LINE);
    expect(server.stderr()).not.toContain(chosen);
    expect(await getPurposes(server.url, chosen)).toBe(200);
    expect(await getPurposes(server.url, `${chosen}x`)).toBe(401);
    expect(await stopProcess(server, 'SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('refuses a CUSTODIAN_ADMIN_KEY shorter than 24 characters with exit code 2', { timeout: 30_000 }, async () => {
    const dir = await freshCwd();
    const proc = spawnCli(['serve', '--port', '0'], { cwd: dir, env: cleanEnv({ CUSTODIAN_ADMIN_KEY: 'too-short-key' }) });
    const exit = await waitForExit(proc, 20_000);
    expect(exit.code, proc.stderr()).toBe(2);
    expect(proc.stderr()).toMatch(/CST_ERR_CONFIG.*24 to 256 characters/);
    expect(proc.stderr()).not.toContain('too-short-key');
    expect(proc.stdout()).not.toContain('listening on');
  });

  it('refuses a master key file readable by group or others with exit code 2', { timeout: 30_000 }, async () => {
    const dir = await freshCwd();
    await mkdir(join(dir, '.custodian'), { mode: 0o700 });
    const keyFile = join(dir, '.custodian', 'master.key');
    await writeFile(keyFile, randomBytes(32).toString('base64') + '\n');
    await chmod(keyFile, 0o644);
    const proc = spawnCli(['serve', '--port', '0'], { cwd: dir, env: cleanEnv() });
    const exit = await waitForExit(proc, 20_000);
    expect(exit.code, proc.stderr()).toBe(2);
    expect(proc.stderr()).toMatch(/CST_ERR_CONFIG.*chmod 600/);
    expect(proc.stdout()).not.toContain('listening on');
    expect((await stat(keyFile)).mode & 0o777, 'the file is left as it was').toBe(0o644);
  });
});
