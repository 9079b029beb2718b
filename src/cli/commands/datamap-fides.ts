import { access, readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Command } from 'commander';
import { Document, YAMLSeq, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { CustodianError } from '../../core/index.js';
import { KEY_PATTERN, exportFides, importFides, loadManifestFile, type Collection, type Dataset, type Field, type ManifestIssue } from '../../datamap/index.js';
import type { CliIo } from '../io.js';
import { DEFAULT_MANIFEST, printIssues } from './datamap.js';

/** Ends the command with exit 2 after the issues were printed. */
function invalid(what: string, issues: readonly ManifestIssue[]): CustodianError {
  const errors = issues.filter((i) => i.severity === 'error').length;
  return new CustodianError('CST_ERR_DATAMAP_INVALID', `${what} has ${errors} error${errors === 1 ? '' : 's'}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** A dataset as manifest YAML wants it: camelCase keys, empty lists and defaults left out. */
function manifestDataset(d: Dataset): Record<string, unknown> {
  const field = (f: Field): Record<string, unknown> => ({
    name: f.name,
    ...(f.description !== undefined ? { description: f.description } : {}),
    ...(f.dataCategories.length > 0 ? { dataCategories: [...f.dataCategories] } : {}),
    ...(f.identity !== undefined ? { identity: f.identity } : {}),
    ...(f.indexed !== undefined ? { indexed: f.indexed } : {}),
    ...(f.primaryKey !== undefined ? { primaryKey: f.primaryKey } : {}),
    ...(f.dataType !== undefined ? { dataType: f.dataType } : {}),
    ...(f.length !== undefined ? { length: f.length } : {}),
    ...(f.references.length > 0 ? { references: f.references.map((r) => ({ ...r })) } : {}),
    ...(f.erasure !== undefined ? { erasure: { ...f.erasure } } : {}),
    ...(f.fields.length > 0 ? { fields: f.fields.map(field) } : {}),
  });
  const collection = (c: Collection): Record<string, unknown> => ({
    name: c.name,
    ...(c.description !== undefined ? { description: c.description } : {}),
    ...(c.dataSubjects.length > 0 ? { dataSubjects: [...c.dataSubjects] } : {}),
    ...(c.purposes.length > 0 ? { purposes: [...c.purposes] } : {}),
    ...(c.erasure !== undefined ? { erasure: { ...c.erasure } } : {}),
    ...(c.retention.length > 0 ? { retention: c.retention.map((r) => ({ ...r })) } : {}),
    fields: c.fields.map(field),
  });
  return {
    key: d.key,
    ...(d.name !== undefined ? { name: d.name } : {}),
    ...(d.description !== undefined ? { description: d.description } : {}),
    collections: d.collections.map(collection),
  };
}

function identityFieldsWithoutHint(fields: readonly Field[], prefix: string): string[] {
  return fields.flatMap((f) => [...(f.identity !== undefined && f.indexed === undefined ? [`${prefix}.${f.name}`] : []), ...identityFieldsWithoutHint(f.fields, `${prefix}.${f.name}`)]);
}

/**
 * `custodian datamap import-fides <dataset.yml> [--system <key>] [--out <file>]`: converts a fideslang dataset
 * file into a manifest system holding its datasets. Without --out it prints a `systems:` fragment to merge; with
 * --out it writes a manifest skeleton when the file does not exist, or appends the system to an existing manifest
 * (comments and layout kept). Warnings go to stderr; any error exits 2 with every issue listed.
 */
export function importFidesCommand(io: CliIo): Command {
  return new Command('import-fides')
    .description('convert a fideslang dataset file (Fides) into a manifest system; docs/datamap.md (Fides compatibility) lists what is kept')
    .argument('<dataset.yml>', 'fideslang dataset YAML (a top-level dataset: list)')
    .option('--system <key>', 'key of the system that holds the datasets (default: the first dataset key)')
    .option('--out <file>', 'write a manifest: a new skeleton, or append the system to an existing manifest')
    .action(async (file: string, opts: { system?: string; out?: string }) => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        const issues: ManifestIssue[] = [{ severity: 'error', path: '(file)', file, message: code === 'ENOENT' ? 'no such file' : `cannot read the file (${code})` }];
        printIssues(io, issues);
        throw invalid(file, issues);
      }
      const { datasets, issues } = importFides(text, { file });
      const systemKey = opts.system ?? datasets[0]?.key;
      const all = [...issues];
      if (opts.system !== undefined && !KEY_PATTERN.test(opts.system)) {
        all.push({ severity: 'error', path: '--system', message: `${opts.system} is not a system key: use lower-case letters, digits, _ and -, starting with a letter` });
      }
      printIssues(io, all);
      if (all.some((i) => i.severity === 'error') || systemKey === undefined) throw invalid(file, all);

      const system = {
        key: systemKey,
        name: systemKey,
        owner: 'to be assigned',
        datasets: datasets.map(manifestDataset),
      };
      // fideslang has no index hint, which the manifest requires on identity fields: say so now, not at validate time.
      const unhinted = datasets.flatMap((d) => d.collections.flatMap((c) => identityFieldsWithoutHint(c.fields, `${d.key}.${c.name}`)));
      if (unhinted.length > 0) {
        io.stderr(`note: fideslang has no index hint: set indexed: true or false on the identity field${unhinted.length === 1 ? '' : 's'} ${unhinted.join(', ')}\n`);
      }
      const note = ` Imported from ${basename(file)} by custodian datamap import-fides.\n Set the owner, the connection and the purposes; docs/datamap.md (Fides compatibility) lists what was not kept.`;
      if (opts.out === undefined) {
        const doc = new Document({ systems: [system] });
        doc.commentBefore = note;
        io.stdout(doc.toString({ lineWidth: 0 }));
        return;
      }
      if (!(await exists(opts.out))) {
        const doc = new Document({ version: 1, organization: { name: 'Your organisation' }, purposes: [], systems: [system] });
        doc.commentBefore = note;
        await writeFile(opts.out, doc.toString({ lineWidth: 0 }), { flag: 'wx' });
        io.stderr(`${opts.out}: written (manifest skeleton with system ${systemKey}, ${datasets.length} dataset${datasets.length === 1 ? '' : 's'})\n`);
        return;
      }
      const doc = parseDocument(await readFile(opts.out, 'utf8'));
      const problems: ManifestIssue[] = doc.errors.map((e) => ({ severity: 'error', path: '(yaml)', file: opts.out, message: e.message.split('\n')[0]! }));
      if (problems.length === 0 && !isMap(doc.contents)) problems.push({ severity: 'error', path: '(manifest)', file: opts.out, message: 'the manifest is not a mapping' });
      let systems = problems.length === 0 ? doc.get('systems', true) : undefined;
      // `systems:` with nothing after it is an empty list too.
      if (problems.length === 0 && (systems === undefined || (isScalar(systems) && systems.value === null))) {
        systems = new YAMLSeq();
        doc.set('systems', systems);
      }
      if (problems.length === 0 && !isSeq(systems)) problems.push({ severity: 'error', path: 'systems', file: opts.out, message: 'systems must be a list' });
      if (isSeq(systems) && systems.items.some((s) => isMap(s) && s.get('key') === systemKey)) {
        problems.push({ severity: 'error', path: `systems[${systemKey}]`, file: opts.out, message: `system ${systemKey} already exists: choose another key with --system, or merge the printed fragment by hand` });
      }
      if (problems.length > 0 || !isSeq(systems)) {
        printIssues(io, problems);
        throw invalid(opts.out, problems);
      }
      systems.items.push(doc.createNode(system));
      await writeFile(opts.out, doc.toString({ lineWidth: 0 }));
      io.stderr(`${opts.out}: system ${systemKey} added (${datasets.length} dataset${datasets.length === 1 ? '' : 's'})\n`);
    });
}

/**
 * `custodian datamap export-fides [--manifest <file>] [--dataset <key>] [--out <file>]`: writes the manifest's
 * datasets (or one) as fideslang dataset YAML for Fides. An invalid manifest exits 2 with every issue listed.
 */
export function exportFidesCommand(io: CliIo): Command {
  return new Command('export-fides')
    .description('write the datasets of a manifest as fideslang dataset YAML (Fides); docs/datamap.md (Fides compatibility) lists the mapping')
    .option('--manifest <file>', 'manifest file', DEFAULT_MANIFEST)
    .option('--dataset <key>', 'export only this dataset')
    .option('--out <file>', 'write to this file instead of stdout')
    .action(async (opts: { manifest: string; dataset?: string; out?: string }) => {
      const loaded = await loadManifestFile(opts.manifest);
      if (loaded.manifest === undefined) {
        printIssues(io, loaded.issues);
        throw invalid(opts.manifest, loaded.issues);
      }
      printIssues(io, loaded.issues);
      let datasets = loaded.manifest.systems.flatMap((s) => s.datasets);
      if (opts.dataset !== undefined) {
        const wanted = opts.dataset;
        datasets = datasets.filter((d) => d.key === wanted);
        if (datasets.length === 0) {
          const known = loaded.manifest.systems.flatMap((s) => s.datasets.map((d) => d.key));
          const issues: ManifestIssue[] = [
            { severity: 'error', path: '--dataset', file: opts.manifest, message: `no dataset ${wanted} in the manifest${known.length > 0 ? ` (datasets: ${known.join(', ')})` : ''}` },
          ];
          printIssues(io, issues);
          throw invalid(opts.manifest, issues);
        }
      }
      const yaml = exportFides(datasets);
      if (opts.out === undefined) io.stdout(yaml);
      else {
        await writeFile(opts.out, yaml);
        io.stderr(`${opts.out}: written (${datasets.length} dataset${datasets.length === 1 ? '' : 's'})\n`);
      }
    });
}
