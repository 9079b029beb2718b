import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { exportFidesCommand, importFidesCommand } from '../../src/cli/commands/datamap-fides.js';
import { EXIT, type CliIo } from '../../src/cli/io.js';
import { isCustodianError } from '../../src/core/index.js';
import { importFides } from '../../src/datamap/fides.js';
import { parseManifest } from '../../src/datamap/load.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'fides');

/** What an operator does after import-fides: add the index hint the manifest requires on identity fields. */
const withIndexHints = (manifest: string) => manifest.replace(/\n( +)identity: (\w+)\n/g, '\n$1identity: $2\n$1indexed: true\n');

/** Runs one command as `custodian datamap` would, and maps the outcome to an exit code like runCli. */
async function run(make: (io: CliIo) => Command, args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {} };
  const program = new Command('datamap').exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const cmd = make(io).exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  program.addCommand(cmd);
  let code: number = EXIT.ok;
  try {
    await program.parseAsync([cmd.name(), ...args], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) code = e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    else if (isCustodianError(e)) code = e.status < 500 ? EXIT.badInput : EXIT.failure;
    else throw e;
  }
  return { code, out: out.join(''), err: err.join('') };
}

describe('custodian datamap import-fides / export-fides', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-fides-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('prints a systems: fragment for a real Fides dataset, warnings on stderr', async () => {
    const r = await run(importFidesCommand, [join(FIXTURES, 'mongo_example_test_dataset.yml'), '--system', 'mongo']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('0 errors, 4 warnings');
    expect(r.err).toContain('mongo_example_test_dataset.yml:207:15: warning: dataset[mongo_test].collections[employee].fields[id].references');
    const fragment = parseYaml(r.out) as { systems: Array<{ key: string; datasets: Array<{ key: string; collections: unknown[] }> }> };
    expect(fragment.systems[0]!.key).toBe('mongo');
    expect(fragment.systems[0]!.datasets[0]!.key).toBe('mongo_test');
    expect(fragment.systems[0]!.datasets[0]!.collections).toHaveLength(9);
    expect(r.out).toContain('dataType: object[]');
  });

  it('writes a manifest skeleton with --out that the manifest loader accepts, then appends a second system', async () => {
    const out = join(dir, 'custodian.yaml');
    const first = await run(importFidesCommand, [join(FIXTURES, 'postgres_example_test_dataset.yml'), '--out', out]);
    expect(first.code).toBe(0);
    const text = await readFile(out, 'utf8');
    expect(text).toMatch(/^# Imported from postgres_example_test_dataset.yml/);
    // fideslang has no index hint; the manifest requires one on identity fields, and the command says so.
    expect(first.err).toContain('note: fideslang has no index hint: set indexed: true or false on the identity fields postgres_example_test_dataset.customer.email,');
    expect(parseManifest(text).issues.filter((i) => i.severity === 'error').every((i) => i.message.includes('has no index hint'))).toBe(true);
    const parsed = parseManifest(withIndexHints(text), { file: out });
    expect(parsed.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(parsed.manifest!.systems.map((s) => s.key)).toEqual(['postgres_example_test_dataset']);
    const fromFides = importFides(await readFile(join(FIXTURES, 'postgres_example_test_dataset.yml'), 'utf8')).datasets;
    expect(parsed.manifest!.systems[0]!.datasets).toEqual(JSON.parse(JSON.stringify(fromFides).replaceAll('"identity":"email"', '"identity":"email","indexed":true')));

    const second = await run(importFidesCommand, [join(FIXTURES, 'mongo_example_test_dataset.yml'), '--system', 'mongo', '--out', out]);
    expect(second.code).toBe(0);
    const both = await readFile(out, 'utf8');
    expect(both).toMatch(/^# Imported from postgres_example_test_dataset.yml/); // comments kept
    expect((parseYaml(both) as { systems: Array<{ key: string }> }).systems.map((s) => s.key)).toEqual(['postgres_example_test_dataset', 'mongo']);

    const again = await run(importFidesCommand, [join(FIXTURES, 'mongo_example_test_dataset.yml'), '--system', 'mongo', '--out', out]);
    expect(again.code).toBe(2);
    expect(again.err).toContain('system mongo already exists');
    expect(await readFile(out, 'utf8')).toBe(both);
  });

  it('exits 2 listing every issue for a bad file, a missing file and a bad --system', async () => {
    const bad = join(dir, 'bad.yml');
    await writeFile(bad, 'dataset:\n  - fides_key: Shop\n    collections:\n      - name: a\n        fields: []\n');
    const r = await run(importFidesCommand, [bad]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain(`${bad}:2:16: error: dataset[Shop].fides_key`);
    expect(r.err).toContain(`${bad}:5:17: error: dataset[Shop].collections[a].fields`);
    expect(r.err).toContain('2 errors, 0 warnings');

    const missing = await run(importFidesCommand, [join(dir, 'nope.yml')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no such file');

    const badSystem = await run(importFidesCommand, [join(FIXTURES, 'postgres_example_test_dataset.yml'), '--system', 'Bad Key']);
    expect(badSystem.code).toBe(2);
    expect(badSystem.err).toContain('error: --system: Bad Key is not a system key');
  });

  it('exports a manifest to fideslang that imports back to the same datasets', async () => {
    const manifest = join(dir, 'export.yaml');
    await copyFile(join(FIXTURES, 'postgres_example_test_dataset.yml'), join(dir, 'pg.yml'));
    expect((await run(importFidesCommand, [join(dir, 'pg.yml'), '--system', 'shop', '--out', manifest])).code).toBe(0);
    await writeFile(manifest, withIndexHints(await readFile(manifest, 'utf8')));
    const r = await run(exportFidesCommand, ['--manifest', manifest]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^dataset:\n {2}- fides_key: postgres_example_test_dataset\n/);
    const back = importFides(r.out);
    expect(back.issues).toEqual([]);
    expect(JSON.stringify(back.datasets)).toBe(JSON.stringify(importFides(await readFile(join(dir, 'pg.yml'), 'utf8')).datasets).replaceAll('"identity":"email"', '"identity":"email","indexed":true'));
    expect(r.out).toContain('custodian:\n              indexed: true');

    const file = join(dir, 'out.yml');
    const one = await run(exportFidesCommand, ['--manifest', manifest, '--dataset', 'postgres_example_test_dataset', '--out', file]);
    expect(one.code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(r.out);

    const unknown = await run(exportFidesCommand, ['--manifest', manifest, '--dataset', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('no dataset nope in the manifest (datasets: postgres_example_test_dataset)');
  });

  it('exits 2 with the issues of an invalid manifest', async () => {
    const manifest = join(dir, 'invalid.yaml');
    await writeFile(manifest, 'version: 1\norganization: {}\n');
    const r = await run(exportFidesCommand, ['--manifest', manifest]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toContain(`${manifest}:2:15: error: organization.name`);
  });
});
