/**
 * Benchmark runner: `npm run bench -- <name>`. Each benchmark prints a table and ends with one line
 * `RESULT <name> <figure>=<value> ...` (ARCHITECTURE.md, contracts).
 */
import { cleanupAll } from './support/temp-store.js';

const BENCHMARKS: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  audit: () => import('./audit.js'),
  consent: () => import('./consent.js'),
  crypto: () => import('./crypto.js'),
  propagation: () => import('./propagation.js'),
  requests: () => import('./requests.js'),
  retention: () => import('./retention.js'),
  scan: () => import('./scan.js'),
};

async function main(): Promise<number> {
  const name = process.argv[2];
  const load = name === undefined ? undefined : BENCHMARKS[name];
  if (load === undefined) {
    console.error(`usage: npm run bench -- <name>   (one of: ${Object.keys(BENCHMARKS).join(', ')})`);
    return 2;
  }
  const bench = await load();
  await bench.run();
  return 0;
}

// Interrupted runs still drop their temp databases and folders. `on`, not `once`: Ctrl-C reaches this
// process twice (from the terminal and relayed by tsx), and a second signal must not kill the cleanup.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: cleaning up temporary stores`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await cleanupAll();
    process.exit(code);
  },
  async (err: unknown) => {
    console.error(err);
    await cleanupAll();
    process.exit(1);
  },
);
