import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/program.js';
import { runCliCaptured } from '../support/cli.js';
import { storeFixture, type StoreFixture } from '../support/stores.js';

/* `custodian datamap …` in process, through runCli with captured output, on a real SQLite store. */

const cli = runCliCaptured;

describe('custodian datamap', () => {
  let fixture: StoreFixture;
  let dir: string;
  let store: string[];
  const EXAMPLE = 'examples/shop/custodian.yaml';
  beforeAll(async () => {
    fixture = await storeFixture('sqlite');
    dir = await mkdtemp(join(tmpdir(), 'custodian-datamap-cli-'));
    store = ['--db', fixture.url, '--data-dir', fixture.dir];
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await fixture.cleanup();
  });

  it('validate: exit 0 on a valid file; exit 2 listing every error as file:line:column', async () => {
    const ok = await cli(['datamap', 'validate', EXAMPLE]);
    expect(ok.code, ok.stderr).toBe(EXIT.ok);
    expect(ok.stdout).toMatch(/valid \(\d+ fields in 4 systems\)/);
    const text = (await readFile(EXAMPLE, 'utf8'))
      .replace('dataCategories: [user.contact.phone_number]', 'dataCategories: [user.contact.fone]')
      .replace('legalBasis: contract            # GDPR Art. 6(1)(b)', 'legalBasis: contrat');
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, text);
    const run = await cli(['datamap', 'validate', bad]);
    expect(run.code).toBe(EXIT.badInput);
    const lines = run.stderr.trim().split('\n');
    expect(lines.filter((l) => /^.*bad\.yaml:\d+:\d+: error: /.test(l))).toHaveLength(2);
    expect(lines.at(-1)).toBe('2 errors, 0 warnings');
    const asJson = await cli(['datamap', 'validate', bad, '--format', 'json']);
    expect(asJson.code).toBe(EXIT.badInput);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ valid: false, issues: [{ severity: 'error' }, { severity: 'error' }] });
    expect((await cli(['datamap', 'validate', join(dir, 'missing.yaml')])).code).toBe(EXIT.badInput);
  });

  it('push, show, versions and diff against the store', async () => {
    const pushed = await cli(['datamap', 'push', EXAMPLE, '--comment', 'first', ...store]);
    expect(pushed.code, pushed.stderr).toBe(EXIT.ok);
    expect(JSON.parse(pushed.stdout)).toMatchObject({ version: { version: 1, actor: 'cli:operator', comment: 'first' }, created: true });
    const edited = join(dir, 'edited.yaml');
    await writeFile(edited, (await readFile(EXAMPLE, 'utf8')).replace('title: Customer support', 'title: Customer care'));
    const diff = await cli(['datamap', 'diff', edited, ...store]);
    expect(JSON.parse(diff.stdout)).toEqual({ changes: [{ kind: 'changed', path: 'purposes[support]', properties: ['title'] }], counts: { added: 0, removed: 0, changed: 1 } });
    const stale = await cli(['datamap', 'push', edited, '--base-version', '0', ...store]);
    expect(stale.code).toBe(EXIT.badInput);
    expect(stale.stderr).toMatch(/CST_ERR_DATAMAP_CONFLICT/);
    expect((await cli(['datamap', 'push', edited, '--base-version', '1', ...store])).code).toBe(EXIT.ok);
    expect((JSON.parse((await cli(['datamap', 'versions', ...store])).stdout) as { versions: Array<{ version: number }> }).versions.map((v) => v.version)).toEqual([2, 1]);
    const shown = await cli(['datamap', 'show', '2', ...store]);
    expect(shown.stdout).toMatch(/^# data map version 2, sha256 [0-9a-f]{64}/);
    expect(shown.stdout).toContain('title: Customer care');
    expect((JSON.parse((await cli(['datamap', 'diff', '--from', '1', '--to', '2', ...store])).stdout) as { counts: unknown }).counts).toEqual({ added: 0, removed: 0, changed: 1 });
    expect((await cli(['datamap', 'show', 'x', ...store])).code).toBe(EXIT.badInput);
    expect((await cli(['datamap', 'show', '7', ...store])).stderr).toMatch(/CST_ERR_DATAMAP_NOT_FOUND/);
  });

  it('validate --introspect checks the manifest against the real tables, and says when a system cannot be reached', async () => {
    const dbFile = join(dir, 'crm.db');
    const db = new Database(dbFile);
    db.exec('create table customers (id integer primary key, email text not null, phone text); create index customers_phone on customers(phone)');
    db.close();
    const manifest = (connection: string) => `version: 1
organization: { name: Acme }
purposes: [{ key: orders, title: Orders, legalBasis: contract }]
systems:
  - key: crm
    name: CRM
    owner: Sales
    connection: ${connection}
    datasets:
      - key: crm_db
        collections:
          - name: customers
            purposes: [orders]
            erasure: delete_row
            fields:
              - { name: id, primaryKey: true, dataCategories: [user.unique_id] }
              - { name: email, dataCategories: [user.contact.email], identity: email, indexed: true, erasure: 'null' }
              - { name: phone, dataCategories: [user.contact.phone_number], identity: phone_number, indexed: true }
              - { name: fax, dataCategories: [user.contact.fax_number] }
`;
    const file = join(dir, 'introspect.yaml');
    await writeFile(file, manifest('sqlite:${CRM_DB}'));
    expect((await cli(['datamap', 'validate', file])).code).toBe(EXIT.ok); // without --introspect the file alone is valid
    let stdout = '';
    let stderr = '';
    const code = await runCli(['datamap', 'validate', file, '--introspect'], { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: { CRM_DB: dbFile } });
    expect(code, stdout).toBe(EXIT.badInput);
    expect(stderr).toMatch(/introspect\.yaml:17:\d+: error: .*fields\[email\]\.erasure: erasure strategy null cannot work: column customers\.email is NOT NULL/);
    expect(stderr).toMatch(/introspect\.yaml:19:\d+: error: .*fields\[fax\]\.name: column fax does not exist in table customers/);
    expect(stderr).toMatch(/warning: .*fields\[email\]\.indexed: identity field email is declared indexed but customers\.email has no index/);
    expect(stderr).not.toMatch(/fields\[phone\]/); // indexed, nullable: fine
    await writeFile(file, manifest('postgres://app:${PW}@127.0.0.1:1/crm'));
    stderr = '';
    const down = await runCli(['datamap', 'validate', file, '--introspect'], { stdout: () => undefined, stderr: (t) => void (stderr += t), env: { PW: 'not-printed-secret' } });
    expect(down).toBe(EXIT.failure);
    expect(stderr).toMatch(/warning: systems\[crm\]\.connection: could not introspect system crm: CST_ERR_SCAN_CONNECTION/);
    expect(stderr).not.toContain('not-printed-secret');
  });

  it('schema prints the JSON Schema', async () => {
    const run = await cli(['datamap', 'schema']);
    expect(JSON.parse(run.stdout)).toMatchObject({ type: 'object', required: expect.arrayContaining(['version', 'organization']) as unknown });
  });
});
