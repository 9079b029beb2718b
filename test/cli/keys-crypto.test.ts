import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {} }, out: () => out.join(''), err: () => err.join('') };
}

describe('custodian keys rotate | rewrap | retire | status with a local key file', () => {
  let dir: string;
  let args: string[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-rotate-'));
    args = ['--db', `sqlite:${join(dir, 'c.db')}`, '--data-dir', dir];
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('adds a master-key version to the key file, re-wraps everything, and retires the old version', async () => {
    const s = capture();
    expect(await runCli(['keys', 'status', ...args], s.io)).toBe(0);
    expect(JSON.parse(s.out())).toMatchObject({ provider: 'local', primaryVersion: 1 });
    const r = capture();
    expect(await runCli(['keys', 'rotate', '--batch-size', '2', ...args], r.io)).toBe(0);
    expect(JSON.parse(r.out())).toMatchObject({ version: 2, previous: 1, rewrap: { done: true } });
    expect(r.err()).toContain('re-wrap:');
    const file = join(dir, 'master.key');
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(2);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const refused = capture();
    expect(await runCli(['keys', 'retire', '2', ...args], refused.io)).toBe(2);
    expect(refused.err()).toContain('CST_ERR_CRYPTO_RETIRE_REFUSED');
    const retire = capture();
    expect(await runCli(['keys', 'retire', '1', ...args], retire.io)).toBe(0);
    const after = capture();
    await runCli(['keys', 'status', ...args], after.io);
    expect((JSON.parse(after.out()) as { versions: Array<{ version: number; status: string }> }).versions.map((v) => [v.version, v.status])).toEqual([
      [1, 'retired'],
      [2, 'primary'],
    ]);
    expect(await runCli(['keys', 'retire', 'x', ...args], capture().io)).toBe(2);
  });
});

describe('custodian keys shred | shreddings | indexes | define-index', () => {
  let dir: string;
  let args: string[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-keys-cli-'));
    args = ['--db', `sqlite:${join(dir, 'c.db')}`, '--data-dir', dir];
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('shreds a subject and lists its tombstones with the receipt\'s reference and key ids', async () => {
    const before = capture();
    expect(await runCli(['keys', 'shreddings', 'cli-subject', ...args], before.io)).toBe(0);
    expect(JSON.parse(before.out())).toMatchObject({ shreddings: [] });
    const shred = capture();
    expect(await runCli(['keys', 'shred', 'cli-subject', '--reason', 'erasure request 7', ...args], shred.io)).toBe(0);
    const receipt = JSON.parse(shred.out()) as { tombstoneId: string; subjectRef: string; keyIds: string[] };
    const after = capture();
    expect(await runCli(['keys', 'shreddings', 'cli-subject', ...args], after.io)).toBe(0);
    expect(JSON.parse(after.out())).toEqual({
      subjectRef: receipt.subjectRef,
      shreddings: [expect.objectContaining({ tombstoneId: receipt.tombstoneId, reason: 'erasure request 7', actor: 'cli:operator', keyIds: receipt.keyIds })],
    });
  });

  it('defines a blind index, lists it beside the built-in ones, and refuses bad definitions with exit code 2', async () => {
    const define = capture();
    expect(await runCli(['keys', 'define-index', 'customer_no', '--normaliser', 'trim', '--bits', '48', ...args], define.io)).toBe(0);
    expect(JSON.parse(define.out())).toEqual({ name: 'customer_no', normaliser: 'trim', bits: 48 });
    const list = capture();
    expect(await runCli(['keys', 'indexes', ...args], list.io)).toBe(0);
    expect(JSON.parse(list.out())).toEqual({
      indexes: [
        { name: 'customer_no', normaliser: 'trim', bits: 48, builtIn: false, defined: true },
        { name: 'email', normaliser: 'email', bits: 64, builtIn: true, defined: false },
        { name: 'phone', normaliser: 'phone', bits: 64, builtIn: true, defined: false },
      ],
    });
    const redefine = capture();
    expect(await runCli(['keys', 'define-index', 'customer_no', '--normaliser', 'exact', '--bits', '48', ...args], redefine.io)).toBe(2);
    expect(redefine.err()).toContain('CST_ERR_VALIDATION');
    for (const bad of [['--normaliser', 'upper'], ['--normaliser', 'trim', '--bits', '12'], ['--normaliser', 'trim', '--bits', '65']]) {
      const r = capture();
      expect(await runCli(['keys', 'define-index', 'other', ...bad, ...args], r.io)).toBe(2);
      expect(r.err()).not.toMatch(/at .*\.ts:\d+/); // a message, not a stack trace
    }
    const badName = capture();
    expect(await runCli(['keys', 'define-index', 'Bad Name', '--normaliser', 'trim', ...args], badName.io)).toBe(2);
    expect(badName.err()).toContain('CST_ERR_VALIDATION');
  });
});
