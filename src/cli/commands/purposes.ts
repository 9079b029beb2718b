import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { CustodianError } from '../../core/index.js';
import { purposesFileSchema, toPurposeInput, validatePurpose } from '../../ledger/index.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';

/** Reads and validates a purposes file (JSON or YAML); errors name the path of each problem. */
async function readPurposesFile(path: string) {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CustodianError('CST_ERR_VALIDATION', 'cannot read the purposes file', { details: { file: path, reason: (err as NodeJS.ErrnoException).code } });
  }
  let data: unknown;
  try {
    data = parseYaml(text, { prettyErrors: true }); // YAML is a superset of JSON
  } catch (err) {
    const e = err as { linePos?: Array<{ line: number; col: number }> };
    throw new CustodianError('CST_ERR_VALIDATION', 'the purposes file is not valid YAML or JSON', { details: { file: path, at: e.linePos?.[0] } });
  }
  const parsed = purposesFileSchema.safeParse(data);
  if (!parsed.success) {
    throw new CustodianError('CST_ERR_VALIDATION', 'the purposes file does not match the schema', {
      details: { file: path, issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
    });
  }
  return parsed.data.purposes;
}

/** `custodian purposes …`. */
export function purposesCommand(io: CliIo): Command {
  const purposes = new Command('purposes').description('purposes of processing');
  withStoreOptions(purposes.command('list').description('configured purposes')).action(async (opts: StoreOptions) => {
    printJson(io, { purposes: await withCustodian(io, opts, async (c) => c.purposes.list()) });
  });
  withStoreOptions(purposes.command('import').description('create or replace purposes from a YAML or JSON file ({ purposes: [...] })'))
    .argument('<file>', 'purposes file')
    .action(async (file: string, opts: StoreOptions) => {
      const defs = await readPurposesFile(file);
      // All definitions are validated, then written in one transaction: a bad file or a failed write changes nothing.
      const purposes = defs.map(({ key, ...d }) => validatePurpose({ key, ...toPurposeInput(d) }));
      const result = await withCustodian(io, opts, (c) => c.purposes.putMany(purposes, 'cli:operator'));
      printJson(io, { imported: result.map((r) => ({ key: r.purpose.key, created: r.created })) });
    });
  return purposes;
}
