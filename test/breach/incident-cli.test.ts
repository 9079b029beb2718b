import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../support/cli.js';

describe('custodian incident', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const run = (...argv: string[]) => runCliCaptured(argv, env);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-incident-cli-'));
    env = { CUSTODIAN_DATA_DIR: dir };
    const shop = new Database(join(dir, 'shop.db'));
    shop.exec('create table customers (id text primary key, email text)');
    for (let i = 0; i < 3; i++) shop.prepare('insert into customers values (?, ?)').run(`u-${i}`, `p${i}@example.com`);
    shop.close();
    const manifest = {
      version: 1,
      organization: { name: 'CLI Shop', dpo: 'dpo@cli-shop.example' },
      purposes: [{ key: 'essential.service', title: 'Run the shop', legalBasis: 'contract' }],
      systems: [{ key: 'shop', name: 'Shop', owner: 'Commerce', connection: `sqlite:${join(dir, 'shop.db')}`, purposes: ['essential.service'], datasets: [{ key: 'shop_db', collections: [{ name: 'customers', purposes: ['essential.service'], fields: [{ name: 'id', primaryKey: true, identity: 'user_id', indexed: true, dataCategories: ['user.unique_id'] }, { name: 'email', identity: 'email', indexed: true, dataCategories: ['user.contact.email'] }] }] }] }],
    };
    await writeFile(join(dir, 'datamap.yaml'), stringify(manifest));
    const applied = await run('datamap', 'push', join(dir, 'datamap.yaml'));
    expect(applied.code, applied.stderr).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists every subcommand in --help', async () => {
    const help = await run('incident', '--help');
    for (const sub of ['create', 'list', 'show', 'update', 'assess', 'affected', 'notify', 'sweep']) expect(help.stdout).toContain(sub);
  });

  it('creates, updates, assesses, scopes and notifies', async () => {
    const created = await run('incident', 'create', '--title', 'Export leaked', '--collection', 'shop_db.customers', '--affected', '3', '--jurisdiction', 'EU', 'UK');
    expect(created.code, created.stderr).toBe(0);
    const inc = JSON.parse(created.stdout) as { id: string; deadlines: Array<{ ruleId: string }> };
    expect(inc.deadlines.map((d) => d.ruleId)).toEqual(['EU.gdpr.authority', 'UK.ukgdpr.authority']);
    expect((await run('incident', 'update', inc.id, '--status', 'contained', '--note', 'revoked')).code).toBe(0);
    const shown = JSON.parse((await run('incident', 'show', inc.id)).stdout) as { status: string; timeline: unknown[] };
    expect(shown.status).toBe('contained');
    expect(shown.timeline).toHaveLength(2);
    expect((await run('incident', 'assess', inc.id, '--override', 'authority_and_individuals')).code).toBe(2);
    const over = JSON.parse((await run('incident', 'assess', inc.id, '--override', 'authority_and_individuals', '--justification', 'minors')).stdout) as { assessment: { outcome: string } };
    expect(over.assessment.outcome).toBe('authority_and_individuals');
    const out = join(dir, 'affected.ndjson');
    const affected = await run('incident', 'affected', inc.id, '--out', out);
    expect(affected.code, affected.stderr).toBe(0);
    expect(affected.stderr).toContain('scoping shop_db.customers: 3 rows read');
    expect((await readFile(out, 'utf8')).trim().split('\n')).toHaveLength(3);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const draft = await run('incident', 'notify', inc.id, '--draft');
    expect(draft.stdout).toContain('Art. 33(3)(b)');
    const sent = await run('incident', 'notify', inc.id, '--audience', 'individuals');
    expect(sent.code, sent.stderr).toBe(0);
    expect((JSON.parse(sent.stdout) as { queued: number }).queued).toBe(3);
    expect((await run('incident', 'sweep')).code).toBe(0);
    expect(JSON.parse((await run('incident', 'list', '--status', 'contained')).stdout)).toMatchObject({ incidents: [{ id: inc.id }] });
  }, 60_000);

  it('exits 2 with the typed error for bad input', async () => {
    const bad = await run('incident', 'create', '--title', 'x', '--affected', '-2');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('CST_ERR_INCIDENT_INVALID');
    const unknown = await run('incident', 'create', '--title', 'x', '--system', 'ghost');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('systems.0');
  }, 60_000);
});
