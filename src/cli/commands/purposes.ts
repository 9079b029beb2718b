import { Command } from 'commander';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';

/** `custodian purposes …`. */
export function purposesCommand(io: CliIo): Command {
  const purposes = new Command('purposes').description('purposes of processing');
  withStoreOptions(purposes.command('list').description('configured purposes')).action(async (opts: StoreOptions) => {
    printJson(io, { purposes: await withCustodian(io, opts, async (c) => c.purposes.list()) });
  });
  return purposes;
}
