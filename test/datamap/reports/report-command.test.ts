import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphCommand, reportCommand, type MapSourceOptions } from '../../../src/cli/commands/report.js';
import { manifestSchema } from '../../../src/datamap/manifest.js';
import { DataMap } from '../../../src/datamap/model.js';
import { WEB_SHOP_MANIFEST } from '../../fixtures/datamap/web-shop.js';
import { checkXml, parseCsv } from './support.js';

/* The report commands through commander, with a resolveMap that reads --manifest (the lead's loads from the store too). */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-report-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const seen: MapSourceOptions[] = [];
async function resolveMap(opts: MapSourceOptions): Promise<DataMap> {
  seen.push(opts);
  if (opts.manifest === undefined) throw new Error('no manifest');
  return new DataMap(manifestSchema.parse(parseYaml(await readFile(opts.manifest, 'utf8'))));
}

async function run(argv: string[]): Promise<{ stdout: string; stderr: string; exit?: number }> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: (t: string) => {
      stdout += t;
    },
    stderr: (t: string) => {
      stderr += t;
    },
    env: {},
  };
  const program = new Command('custodian').addCommand(reportCommand(io, resolveMap)).addCommand(graphCommand(io, resolveMap));
  const all = (c: Command): void => {
    c.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
    c.commands.forEach(all);
  };
  all(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return { stdout, stderr };
  } catch (err) {
    if (err instanceof CommanderError) return { stdout, stderr, exit: err.exitCode };
    throw err;
  }
}

describe('custodian report / graph', () => {
  it('report ropa --format csv prints the record', async () => {
    const r = await run(['report', 'ropa', '--manifest', WEB_SHOP_MANIFEST, '--format', 'csv']);
    const rows = parseCsv(r.stdout);
    expect(rows).toHaveLength(8);
    expect(rows[1]![4]).toBe('essential.service');
  });

  it('report ropa defaults to HTML and writes --out', async () => {
    const out = join(dir, 'ropa.html');
    const r = await run(['report', 'ropa', '--manifest', WEB_SHOP_MANIFEST, '--out', out]);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`wrote ${out}\n`);
    expect(await readFile(out, 'utf8')).toMatch(/^<!DOCTYPE html>/);
  });

  it('report ropa --format json, dpia and transfers as JSON and text', async () => {
    const ropa = JSON.parse((await run(['report', 'ropa', '--manifest', WEB_SHOP_MANIFEST, '--format', 'json'])).stdout) as { activities: unknown[] };
    expect(ropa.activities).toHaveLength(7);
    const dpia = JSON.parse((await run(['report', 'dpia', '--manifest', WEB_SHOP_MANIFEST, '--format', 'json'])).stdout) as { screenings: Array<{ purpose: string; conclusion: string }> };
    expect(dpia.screenings.find((s) => s.purpose === 'employment')?.conclusion).toBe('required');
    expect((await run(['report', 'dpia', '--manifest', WEB_SHOP_MANIFEST])).stdout).toContain('DPIA required');
    const uk = JSON.parse((await run(['report', 'transfers', '--manifest', WEB_SHOP_MANIFEST, '--format', 'json', '--regime', 'UK'])).stdout) as { regime: string };
    expect(uk.regime).toBe('UK');
    expect((await run(['report', 'transfers', '--manifest', WEB_SHOP_MANIFEST])).stdout).toContain('!! missing_mechanism');
  });

  it('graph --format dot|svg|json', async () => {
    expect((await run(['graph', '--manifest', WEB_SHOP_MANIFEST, '--format', 'dot'])).stdout).toMatch(/^digraph datamap \{/);
    expect(checkXml((await run(['graph', '--manifest', WEB_SHOP_MANIFEST, '--format', 'svg'])).stdout).root).toBe('svg');
    const g = JSON.parse((await run(['graph', '--manifest', WEB_SHOP_MANIFEST])).stdout) as { nodes: unknown[]; edges: unknown[] };
    expect(g.nodes.length).toBeGreaterThan(5);
  });

  it('passes the store options to resolveMap and rejects unknown formats', async () => {
    seen.length = 0;
    await run(['report', 'dpia', '--manifest', WEB_SHOP_MANIFEST, '--db', 'sqlite:/tmp/x.db']);
    expect(seen[0]).toMatchObject({ manifest: WEB_SHOP_MANIFEST, db: 'sqlite:/tmp/x.db' });
    const bad = await run(['report', 'ropa', '--manifest', WEB_SHOP_MANIFEST, '--format', 'pdf']);
    expect(bad.exit).not.toBe(0);
    expect(bad.stderr).toContain("argument 'pdf' is invalid");
  });
});
