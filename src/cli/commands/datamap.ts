import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { openSchemaConnector, sqlEngineOf } from '../../connectors/index.js';
import { CustodianError, isCustodianError } from '../../core/index.js';
import { DataMap, formatIssue, introspectionIssues, invalidManifest, loadManifestFile, manifestSchema, renderIssues, resolveConnection, sortIssues, type Manifest, type ManifestIssue, type ManifestResult, type RawIssue } from '../../datamap/index.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import type { MapSourceOptions } from './report.js';
import { EXIT, printJson, type CliIo } from '../io.js';

/** The default manifest file, in the working directory. */
export const DEFAULT_MANIFEST = 'custodian.yaml';

/**
 * The data map a command works on: from `--manifest <file>` when given (invalid: CST_ERR_DATAMAP_INVALID with
 * every issue), else the store's current version (none stored: CST_ERR_DATAMAP_NOT_FOUND).
 */
export async function resolveDataMap(io: CliIo, opts: MapSourceOptions): Promise<DataMap> {
  if (opts.manifest !== undefined) {
    const loaded = await loadManifestFile(opts.manifest);
    if (loaded.manifest === undefined) throw invalidManifest(loaded.issues);
    return new DataMap(loaded.manifest);
  }
  const map = await withCustodian(io, opts, (c) => c.datamap.dataMap());
  if (map === undefined) throw new CustodianError('CST_ERR_DATAMAP_NOT_FOUND', `no data map is stored: pass --manifest ${DEFAULT_MANIFEST} or run custodian datamap push first`);
  return map;
}

/** Prints issues one per line on stderr (`file:line:column: error: path: message`) and a count; nothing when there are none. */
export function printIssues(io: CliIo, issues: readonly ManifestIssue[]): void {
  if (issues.length === 0) return;
  for (const i of issues) io.stderr(formatIssue(i) + '\n');
  const errors = issues.filter((i) => i.severity === 'error').length;
  const warnings = issues.length - errors;
  io.stderr(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}\n`);
}

/** Loads a manifest file; on errors prints them all and returns undefined (the caller exits 2). */
async function loadOrReport(io: CliIo, file: string, format: 'text' | 'json'): Promise<ManifestResult> {
  const loaded = await loadManifestFile(file);
  if (format === 'json') return loaded;
  if (loaded.manifest === undefined || loaded.issues.length > 0) printIssues(io, loaded.issues);
  return loaded;
}

const formatOption = () => new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');

/**
 * `custodian datamap …`: validate, push, show, versions, diff, schema. Extra subcommands (Fides import and
 * export, graph) are added by the program.
 */
export function datamapCommand(io: CliIo, setExitCode: (code: number) => void, extra: readonly Command[] = []): Command {
  const datamap = new Command('datamap').description('the data map: where personal data lives and why (docs/datamap.md)');

  datamap
    .command('validate')
    .description(`validate a manifest file and print every issue (exit 2 when there are errors); default ${DEFAULT_MANIFEST}`)
    .argument('[file]', 'manifest file', DEFAULT_MANIFEST)
    .addOption(formatOption())
    .option('--introspect', 'also connect to each system with a SQL connection and check tables, columns, NOT NULL and indexes against the manifest')
    .action(async (file: string, opts: { format: 'text' | 'json'; introspect?: boolean }) => {
      const loaded = await loadManifestFile(file);
      let issues = [...loaded.issues];
      let unreachable = 0;
      if (loaded.manifest !== undefined && opts.introspect === true) {
        const found = await introspectAll(io, loaded.manifest);
        unreachable = found.unreachable;
        issues = sortIssues([...issues, ...renderIssues(await readFile(file, 'utf8'), found.issues, { file })]);
      }
      const valid = loaded.manifest !== undefined && !issues.some((i) => i.severity === 'error');
      if (opts.format === 'json') printJson(io, { valid, issues });
      else {
        printIssues(io, issues);
        if (valid) io.stdout(`${file}: valid (${new DataMap(loaded.manifest).fields().length} fields in ${loaded.manifest.systems.length} systems)\n`);
      }
      if (!valid) setExitCode(EXIT.badInput);
      else if (unreachable > 0) setExitCode(EXIT.failure);
    });

  withStoreOptions(
    datamap
      .command('push')
      .description('validate a manifest file and store it as the next version (audited); purposes go to the consent ledger')
      .argument('[file]', 'manifest file', DEFAULT_MANIFEST)
      .option('--comment <text>', 'why this version (kept with it)')
      .addOption(new Option('--base-version <n>', 'fail if the stored version is not this one (optimistic locking)').argParser(nonNegativeInt)),
  ).action(async (file: string, opts: StoreOptions & { comment?: string; baseVersion?: number }) => {
    const loaded = await loadOrReport(io, file, 'text');
    if (loaded.manifest === undefined) return setExitCode(EXIT.badInput);
    const result = await withCustodian(io, opts, (c) =>
      c.datamap.put(loaded.manifest, {
        actor: 'cli:operator',
        ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
        ...(opts.baseVersion !== undefined ? { baseVersion: opts.baseVersion } : {}),
      }),
    );
    printJson(io, { version: result.version, created: result.created, counts: result.diff.counts, changes: result.diff.changes });
  });

  withStoreOptions(
    datamap
      .command('show')
      .description('print the stored data map (the current version, or the version given)')
      .argument('[version]', 'version number', positiveInt)
      .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json']).default('yaml')),
  ).action(async (version: number | undefined, opts: StoreOptions & { format: 'yaml' | 'json' }) => {
    const stored = await withCustodian(io, opts, async (c) => (version !== undefined ? c.datamap.version(version) : c.datamap.current()));
    if (stored === undefined) throw new CustodianError('CST_ERR_DATAMAP_NOT_FOUND', 'no data map has been stored yet');
    if (opts.format === 'json') printJson(io, stored);
    else io.stdout(`# data map version ${stored.version}, sha256 ${stored.sha256}, stored ${stored.createdAt} by ${stored.actor}\n${toYaml(stored.manifest)}`);
  });

  withStoreOptions(datamap.command('versions').description('list stored versions, newest first')).action(async (opts: StoreOptions) => {
    printJson(io, { versions: await withCustodian(io, opts, (c) => c.datamap.versions()) });
  });

  withStoreOptions(
    datamap
      .command('diff')
      .description('what changed between two stored versions, or between the current version and a file')
      .argument('[file]', 'compare this manifest file with the current stored version')
      .addOption(new Option('--from <n>', 'older version (0 = nothing)').argParser(nonNegativeInt))
      .addOption(new Option('--to <n>', 'newer version').argParser(positiveInt)),
  ).action(async (file: string | undefined, opts: StoreOptions & { from?: number; to?: number }) => {
    if (file !== undefined) {
      const loaded = await loadOrReport(io, file, 'text');
      if (loaded.manifest === undefined) return setExitCode(EXIT.badInput);
      const { diffManifests } = await import('../../datamap/diff.js');
      const current = await withCustodian(io, opts, (c) => c.datamap.current());
      return printJson(io, diffManifests(current?.manifest, loaded.manifest));
    }
    if (opts.to === undefined) throw new CustodianError('CST_ERR_VALIDATION', 'give a manifest file, or --to (and --from) versions', { details: { issues: [{ path: 'to', message: 'required' }] } });
    const to = opts.to;
    printJson(io, await withCustodian(io, opts, (c) => c.datamap.diff(opts.from ?? to - 1, to)));
  });

  datamap
    .command('schema')
    .description('print the JSON Schema of the manifest (for editors: yaml-language-server)')
    .action(() => printJson(io, z.toJSONSchema(manifestSchema, { io: 'input', unrepresentable: 'any' })));

  for (const cmd of extra) datamap.addCommand(cmd);
  return datamap;
}

/**
 * Introspects every system with a SQL connection (`${VAR}` resolved from the environment) and checks the
 * manifest against the real tables. A system that cannot be reached is a warning naming why (no secrets).
 */
async function introspectAll(io: CliIo, manifest: Manifest): Promise<{ issues: RawIssue[]; unreachable: number }> {
  const issues: RawIssue[] = [];
  let unreachable = 0;
  for (const [index, system] of manifest.systems.entries()) {
    if (system.connection === undefined || sqlEngineOf(system.connection) === undefined) continue;
    try {
      const connector = await openSchemaConnector(resolveConnection(system.connection, io.env));
      try {
        issues.push(...introspectionIssues(manifest, index, await connector.listTables()));
      } finally {
        await connector.close();
      }
    } catch (err) {
      if (!isCustodianError(err)) throw err;
      unreachable++;
      issues.push({ severity: 'warning', at: ['systems', index, 'connection'], message: `could not introspect system ${system.key}: ${err.code} ${err.message}` });
    }
  }
  return { issues, unreachable };
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new CustodianError('CST_ERR_VALIDATION', 'a version is a whole number ≥ 1', { details: { issues: [{ path: 'version', message: 'invalid' }] } });
  return n;
}

function nonNegativeInt(v: string): number {
  return v === '0' ? 0 : positiveInt(v);
}
