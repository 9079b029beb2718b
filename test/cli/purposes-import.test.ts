import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {} }, out, err };
}

describe('custodian purposes import', () => {
  let dir: string;
  let db: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-purposes-'));
    db = `sqlite:${join(dir, 'c.db')}`;
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('creates then replaces purposes from YAML, applying defaults', async () => {
    const file = join(dir, 'purposes.yaml');
    await writeFile(file, 'purposes:\n  - key: marketing.sms\n    title: SMS offers\n    legalBasis: consent\n    jurisdictions: [EU, UK]\n');
    const first = capture();
    expect(await runCli(['purposes', 'import', file, '--db', db, '--data-dir', dir], first.io)).toBe(0);
    expect(JSON.parse(first.out.join(''))).toEqual({ imported: [{ key: 'marketing.sms', created: true }] });
    const again = capture();
    expect(await runCli(['purposes', 'import', file, '--db', db, '--data-dir', dir], again.io)).toBe(0);
    expect(JSON.parse(again.out.join(''))).toEqual({ imported: [{ key: 'marketing.sms', created: false }] });
    const list = capture();
    await runCli(['purposes', 'list', '--db', db, '--data-dir', dir], list.io);
    const sms = (JSON.parse(list.out.join('')) as { purposes: Array<{ key: string }> }).purposes.find((p) => p.key === 'marketing.sms');
    expect(sms).toEqual({
      key: 'marketing.sms', title: 'SMS offers', description: '', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: 13, jurisdictions: ['EU', 'UK'], gpcOptOut: false,
    });
  });

  it.each([
    ['not yaml', 'purposes: [\n  - {'],
    ['schema', 'purposes:\n  - key: Bad Key\n    title: x\n    legalBasis: consent\n'],
    ['unknown field', 'purposes:\n  - key: a.b\n    title: x\n    legalBasis: consent\n    colour: red\n'],
    ['inconsistent', 'purposes:\n  - key: ok.one\n    title: x\n    legalBasis: contract\n  - key: bad.two\n    title: y\n    legalBasis: consent\n    consentRequired: false\n'],
  ])('rejects a bad file (%s) with exit 2 and writes nothing', async (_name, content) => {
    const file = join(dir, `bad-${Math.random()}.yaml`);
    await writeFile(file, content);
    const r = capture();
    expect(await runCli(['purposes', 'import', file, '--db', db, '--data-dir', dir], r.io)).toBe(2);
    expect(r.err.join('')).toContain('CST_ERR_');
    const list = capture();
    await runCli(['purposes', 'list', '--db', db, '--data-dir', dir], list.io);
    expect(list.out.join('')).not.toContain('ok.one');
  });

  it('reports a missing file as bad input', async () => {
    const r = capture();
    expect(await runCli(['purposes', 'import', join(dir, 'nope.yaml'), '--db', db, '--data-dir', dir], r.io)).toBe(2);
  });
});
