import { Option, type Command } from 'commander';
import { createCustodian, loadConfig, type Custodian, type ConfigOverrides } from '../app/index.js';
import type { CliIo } from './io.js';

/** Options every store-touching command takes. */
export interface StoreOptions {
  readonly db?: string;
  readonly dataDir?: string;
}

/** Adds `--db` and `--data-dir` to a command. */
export function withStoreOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--db <url>', 'store URL: sqlite:<path> or postgres://… (env CUSTODIAN_DB; default sqlite:.custodian/custodian.db)'))
    .addOption(new Option('--data-dir <dir>', 'folder of local state: dev master key, default SQLite file (env CUSTODIAN_DATA_DIR)'));
}

/** Opens Custodian for one command and closes it afterwards. */
export async function withCustodian<T>(io: CliIo, opts: StoreOptions, fn: (c: Custodian) => Promise<T>, extra: ConfigOverrides = {}): Promise<T> {
  const overrides: ConfigOverrides = { ...extra, ...(opts.db ? { dbUrl: opts.db } : {}), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) };
  const custodian = await createCustodian(loadConfig(io.env, { logLevel: 'warn', ...overrides }), { watch: false });
  try {
    return await fn(custodian);
  } finally {
    await custodian.close();
  }
}
