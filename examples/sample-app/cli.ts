/**
 * The sample shop's command line (examples/sample-app/README.md):
 *
 * ```sh
 * npx tsx examples/sample-app/cli.ts seed --dir .sample [--customers 50] [--seed 1] [--postgres-url … | --mysql-url …] [--redis-url …] [--loyalty-url …]
 * SAMPLE_LOYALTY_SECRET=… npx tsx examples/sample-app/cli.ts loyalty --dir .sample --port 4100
 * ```
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { LOYALTY_SECRET_ENV } from './manifest.js';
import { startLoyaltyService } from './loyalty-service.js';
import { seedSampleApp } from './seed.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

function writeLine(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The sample shop's commands (`seed`, `loyalty`); `out` receives each line of output. */
export function sampleAppProgram(out: (line: string) => void = writeLine): Command {
  const program = new Command('sample-app').description('The Custodian sample shop: synthetic data in SQLite, JSONL, Redis and an HTTP service');

  program
    .command('seed')
    .description('create the shop database, the training set (JSONL), optionally the newsletter (Redis), and the data map <dir>/custodian.yaml')
    .requiredOption('--dir <dir>', 'folder for shop.db, training/events.jsonl, loyalty/accounts.json and custodian.yaml')
    .option('--customers <n>', 'number of customers (≥ 2)', positiveInt, 50)
    .option('--seed <n>', 'seed of the value generator', positiveInt, 1)
    .option('--sqlite <file>', 'SQLite file of the shop database (default <dir>/shop.db)')
    .option('--postgres-url <url>', 'also create the shop database in this PostgreSQL database, and point the data map at it')
    .option('--mysql-url <url>', 'also create the shop database in this existing MySQL/MariaDB database (mysql://user@host:3306/db), and point the data map at it')
    .option('--redis-url <url>', 'write the newsletter list to this Redis and declare it')
    .option('--redis-prefix <prefix>', 'prefix of the newsletter keys')
    .option('--loyalty-url <url>', `declare the loyalty service at this base URL (e.g. http://127.0.0.1:4100/privacy; secret in $${LOYALTY_SECRET_ENV})`)
    .action(async (o: { dir: string; customers: number; seed: number; sqlite?: string; postgresUrl?: string; mysqlUrl?: string; redisUrl?: string; redisPrefix?: string; loyaltyUrl?: string }) => {
      const result = await seedSampleApp({
        dir: o.dir,
        customers: o.customers,
        seed: o.seed,
        ...(o.sqlite === undefined ? {} : { sqlitePath: o.sqlite }),
        ...(o.postgresUrl === undefined ? {} : { postgresUrl: o.postgresUrl }),
        ...(o.mysqlUrl === undefined ? {} : { mysqlUrl: o.mysqlUrl }),
        ...(o.redisUrl === undefined ? {} : { redisUrl: o.redisUrl }),
        ...(o.redisPrefix === undefined ? {} : { redisPrefix: o.redisPrefix }),
        ...(o.loyaltyUrl === undefined ? {} : { loyaltyUrl: o.loyaltyUrl }),
      });
      out(`seeded ${result.people.length} customers and ${result.employees.length} employees`);
      out(`data map: ${result.manifestPath}`);
      out(`customers to try: ${result.people.slice(0, 3).map((p) => `${p.email} (user_id ${p.userId})`).join(', ')}`);
      out(`an employee: ${result.employees[1]!.email} (employee_id ${result.employees[1]!.employeeId})`);
    });

  program
    .command('loyalty')
    .description(`run the loyalty service (Custodian callback protocol) on 127.0.0.1; the shared secret comes from $${LOYALTY_SECRET_ENV}`)
    .requiredOption('--dir <dir>', 'the folder given to seed (reads and updates loyalty/accounts.json)')
    .option('--port <n>', 'port', positiveInt, 4100)
    .action(async (o: { dir: string; port: number }) => {
      const secret = process.env[LOYALTY_SECRET_ENV];
      if (secret === undefined || secret === '') throw new InvalidArgumentError(`set ${LOYALTY_SECRET_ENV} to the shared secret`);
      const service = await startLoyaltyService({ port: o.port, secret, dataFile: join(o.dir, 'loyalty', 'accounts.json') });
      out(`loyalty service at ${service.url} (Ctrl-C to stop)`);
      const stop = (): void => void service.close().finally(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  return program;
}

// Run only as a script, so tests can import the program.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  sampleAppProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
