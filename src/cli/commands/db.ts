import { Command } from 'commander';
import { openStore, redactStoreUrl } from '../../store/index.js';
import { loadConfig } from '../../app/index.js';
import { withStoreOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';

/** `custodian db …`: store administration. */
export function dbCommand(io: CliIo): Command {
  const db = new Command('db').description('store administration');
  withStoreOptions(db.command('migrate').description('apply pending migrations (forward-only)')).action(async (opts: StoreOptions) => {
    const config = loadConfig(io.env, { ...(opts.db ? { dbUrl: opts.db } : {}), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
    const store = openStore(config.dbUrl);
    try {
      const report = await store.migrate();
      printJson(io, { store: redactStoreUrl(config.dbUrl), ...report });
    } finally {
      await store.close();
    }
  });
  return db;
}
