import { Command, InvalidArgumentError } from 'commander';
import { SCOPES, type Scope } from '../../auth/index.js';
import { CustodianError } from '../../core/index.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';

function parseScopes(value: string): Scope[] {
  const scopes = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || bad.length > 0) throw new InvalidArgumentError(`scopes are a comma-separated list of ${SCOPES.join(', ')}`);
  return scopes as Scope[];
}

/** `custodian keys …`: API keys. */
export function keysCommand(io: CliIo): Command {
  const keys = new Command('keys').description('API keys');
  withStoreOptions(keys.command('create').description('mint an API key; the secret is printed once'))
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, parseScopes)
    .option('--name <name>', 'what the key is for', 'cli')
    .action(async (opts: StoreOptions & { scopes: Scope[]; name: string }) => {
      printJson(io, await withCustodian(io, opts, (c) => c.apiKeys.create({ name: opts.name, scopes: opts.scopes, createdBy: 'cli' })));
    });
  withStoreOptions(keys.command('list').description('list API keys (never secrets)')).action(async (opts: StoreOptions) => {
    printJson(io, { apiKeys: await withCustodian(io, opts, (c) => c.apiKeys.list()) });
  });
  withStoreOptions(keys.command('revoke').description('revoke an API key'))
    .argument('<id>', 'key id')
    .action(async (id: string, opts: StoreOptions) => {
      const done = await withCustodian(io, opts, (c) => c.apiKeys.revoke(id));
      if (!done) throw new CustodianError('CST_ERR_NOT_FOUND', 'no such active API key');
      printJson(io, { id, revoked: true });
    });
  return keys;
}
