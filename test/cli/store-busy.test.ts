import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';

describe('a store locked by another writer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-busy-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('is reported as CST_ERR_UNAVAILABLE with exit 1 once the busy timeout passes, not as an unexpected failure', async () => {
    const db = `sqlite:${join(dir, 'c.db')}`;
    const io = { stdout: () => undefined, stderr: () => undefined, env: {} };
    expect(await runCli(['db', 'migrate', '--db', db, '--data-dir', dir], io)).toBe(0);
    const holder = new SQLite(join(dir, 'c.db'));
    holder.exec('begin immediate');
    try {
      const err: string[] = [];
      const code = await runCli(['consent', 'grant', 'u-1', 'personalize', '--db', db, '--data-dir', dir], { ...io, stderr: (t: string) => err.push(t) });
      expect(code).toBe(1);
      expect(err.join('')).toContain('CST_ERR_UNAVAILABLE');
    } finally {
      holder.exec('rollback');
      holder.close();
    }
  }, 20_000);
});
