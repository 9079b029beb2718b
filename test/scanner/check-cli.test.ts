import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { EXIT } from '../../src/cli/io.js';
import { runCliCaptured } from '../support/cli.js';
import { connectionForManifest } from '../../src/cli/commands/scan.js';
import type { System } from '../../src/datamap/index.js';
import { createTempDatabase, fillLabelled, LABELLED_TABLES, type TempDatabase } from './labelled-db.js';

/* `custodian scan` and `custodian check` through runCli. */

const cli = runCliCaptured;

const TABLES = LABELLED_TABLES.filter((t) => ['customers', 'payments', 'orders'].includes(t.name));

describe('custodian scan / check on SQLite', () => {
  let db: TempDatabase;
  let dir: string;
  let proposed: System;

  beforeAll(async () => {
    db = await createTempDatabase('sqlite');
    await fillLabelled(db, 120, TABLES);
    dir = db.url.slice('sqlite:'.length).replace(/\/[^/]+$/, '');
  });
  afterAll(async () => {
    await db.cleanup();
  });

  const writeManifest = async (system: System, name = 'custodian.yaml'): Promise<string> => {
    const file = join(dir, name);
    await writeFile(file, stringify({ version: 1, organization: { name: 'Example Ltd' }, systems: [system] }));
    return file;
  };

  it('scan --format json proposes a system with the personal columns, without any sampled value', async () => {
    const run = await cli(['scan', db.url, '--format', 'json', '--sample', '50', '--system', 'shop']);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    const out = JSON.parse(run.stdout) as { report: { rowsSampled: number; tables: unknown[] }; proposal: { system: System } };
    expect(out.report.tables).toHaveLength(3);
    expect(out.report.rowsSampled).toBeLessThanOrEqual(150);
    proposed = out.proposal.system;
    const customers = proposed.datasets[0]!.collections.find((c) => c.name === 'customers')!;
    const email = customers.fields.find((f) => f.name === 'email')!;
    expect(email).toMatchObject({ dataCategories: ['user.contact.email'], identity: 'email', indexed: true });
    expect(customers.fields.find((f) => f.name === 'id')).toMatchObject({ primaryKey: true, dataCategories: [] });
    expect(customers.fields.find((f) => f.name === 'status')).toBeUndefined();
    expect(run.stdout).not.toMatch(/@example\.(com|org)|@mail\.test/);
  });

  it('scan --format yaml prints a manifest fragment with confidences as comments', async () => {
    const run = await cli(['scan', db.url, '--sample', '50']);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stdout).toMatch(/^systems:/m);
    expect(run.stdout).toMatch(/# confidence 0\.\d\d \(name\+values: \d+\/\d+ sampled values\)\n\s+- name: email/);
    expect(run.stdout).toContain('user.financial.credit_card');
    expect(run.stdout).not.toMatch(/@example\.(com|org)|@mail\.test/);
  });

  it('check exits 0 when every personal column is declared', async () => {
    const file = await writeManifest(proposed);
    const run = await cli(['check', '--manifest', file]);
    expect(run.stdout + run.stderr).toContain('check passed');
    expect(run.code, run.stdout + run.stderr).toBe(EXIT.ok);
  });

  it('check exits 1 listing an undeclared personal column and a vanished one', async () => {
    const ds = proposed.datasets[0]!;
    const changed: System = {
      ...proposed,
      datasets: [
        {
          ...ds,
          collections: ds.collections.map((c) =>
            c.name === 'payments'
              ? { ...c, fields: [...c.fields.filter((f) => f.name !== 'iban'), { name: 'fax', dataCategories: ['user.contact.fax_number'], references: [], fields: [] }] }
              : c,
          ),
        },
      ],
    };
    const file = await writeManifest(changed, 'drift.yaml');
    const run = await cli(['check', '--manifest', file]);
    expect(run.code).toBe(EXIT.drift);
    expect(run.stdout).toMatch(/undeclared\s+\S+\.payments\.iban\s+user\.financial\.bank_account/);
    expect(run.stdout).toMatch(/vanished\s+\S+\.payments\.fax/);
    const json = await cli(['check', '--manifest', file, '--format', 'json']);
    expect(json.code).toBe(EXIT.drift);
    const out = JSON.parse(json.stdout) as { ok: boolean; systems: { drift: { undeclared: { field: string; reason: string }[]; vanished: { address: string }[] } }[] };
    expect(out.ok).toBe(false);
    expect(out.systems[0]!.drift.undeclared).toEqual([expect.objectContaining({ field: 'iban', reason: 'missing' })]);
    expect(out.systems[0]!.drift.vanished.map((v) => v.address)).toEqual([`${ds.key}.payments.fax`]);
  });

  it('check reports a column declared without categories, and a collection whose table is gone', async () => {
    const ds = proposed.datasets[0]!;
    const changed: System = {
      ...proposed,
      datasets: [
        {
          ...ds,
          collections: [
            ...ds.collections.map((c) => (c.name === 'orders' ? { ...c, fields: c.fields.map((f) => (f.name === 'contact_email' ? { ...f, dataCategories: [] } : f)) } : c)),
            { name: 'legacy_users', dataSubjects: [], purposes: [], retention: [], fields: [{ name: 'email', dataCategories: ['user.contact.email'], references: [], fields: [] }] },
          ],
        },
      ],
    };
    const file = await writeManifest(changed, 'drift2.yaml');
    const run = await cli(['check', '--manifest', file, '--format', 'json']);
    expect(run.code, run.stderr).toBe(EXIT.drift);
    const out = JSON.parse(run.stdout) as { systems: { drift: { undeclared: { field: string; reason: string }[]; vanished: { address: string; field: string | null }[] } }[] };
    expect(out.systems[0]!.drift.undeclared).toEqual([expect.objectContaining({ field: 'contact_email', reason: 'no_categories' })]);
    expect(out.systems[0]!.drift.vanished).toEqual([expect.objectContaining({ address: `${ds.key}.legacy_users`, field: null })]);
  });

  it('check finds a personal column added after the manifest was written', async () => {
    await db.exec(['alter table customers add column home_phone text', "update customers set home_phone = '+31 20 555 ' || printf('%04d', id)"]);
    try {
      const file = await writeManifest(proposed, 'stale.yaml');
      const run = await cli(['check', '--manifest', file]);
      expect(run.code).toBe(EXIT.drift);
      expect(run.stdout).toMatch(/undeclared\s+\S+\.customers\.home_phone\s+user\.contact\.phone_number/);
    } finally {
      await db.exec(['alter table customers drop column home_phone']);
    }
  });

  it('resolves ${ENV} references in connections and reports unset ones (exit 2)', async () => {
    const file = await writeManifest({ ...proposed, connection: 'sqlite:${SHOP_DB}' }, 'env.yaml');
    expect((await cli(['check', '--manifest', file], { SHOP_DB: db.url.slice('sqlite:'.length) })).code).toBe(EXIT.ok);
    const run = await cli(['scan', 'sqlite:${NOPE_DB}']);
    expect(run.code).toBe(EXIT.badInput);
    expect(run.stderr).toContain('NOPE_DB');
  });

  it('exits 2 on a missing manifest or bad options, 1 on an unreachable database, never printing passwords', async () => {
    expect((await cli(['check', '--manifest', join(dir, 'missing.yaml')])).code).toBe(EXIT.badInput);
    expect((await cli(['scan', db.url, '--sample', '0'])).code).toBe(EXIT.badInput);
    expect((await cli(['scan', 'redis://localhost:6379'])).stderr).toContain('CST_ERR_SCAN_UNSUPPORTED');
    const refused = await cli(['scan', 'postgres://app:s3cret-pw@127.0.0.1:1/crm']);
    expect(refused.code).toBe(EXIT.failure);
    expect(refused.stderr).toContain('CST_ERR_SCAN_CONNECTION');
    expect(refused.stderr).not.toContain('s3cret-pw');
    const missingFile = await cli(['scan', `sqlite:${join(dir, 'nope.db')}`]);
    expect(missingFile.stderr).toContain('CST_ERR_SCAN_CONNECTION');
    const unreachable = await writeManifest({ ...proposed, connection: 'mysql://app:${PW}@127.0.0.1:1/shop' }, 'down.yaml');
    const run = await cli(['check', '--manifest', unreachable], { PW: 'hunter2-secret' });
    expect(run.code).toBe(EXIT.failure);
    expect(run.stdout).toContain('CST_ERR_SCAN_CONNECTION');
    expect(run.stdout + run.stderr).not.toContain('hunter2-secret');
  });

  it('never writes a literal password into a proposed manifest', () => {
    expect(connectionForManifest('postgres://app:literal@db/crm')).toBe('postgres://app:${DB_PASSWORD}@db/crm');
    expect(connectionForManifest('postgres://app:${PG_PW}@db/crm')).toBe('postgres://app:${PG_PW}@db/crm');
    expect(connectionForManifest('sqlite:app.db')).toBe('sqlite:app.db');
  });
});
