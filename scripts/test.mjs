#!/usr/bin/env node
// `npm test`: type-check, lint, OpenAPI drift check (inside the suite), then every test.
// The last line printed is `N passed, N failed`, which CI reads.
import { spawnSync } from 'node:child_process';

const steps = [
  ['build', ['npx', 'tsc', '-p', 'tsconfig.build.json']],
  ['typecheck (tests, bench, scripts)', ['npx', 'tsc', '-p', 'tsconfig.json', '--noEmit']],
  ['lint', ['npx', 'eslint', '--max-warnings', '0', '.']],
  ['tests', ['npx', 'vitest', 'run', ...process.argv.slice(2)]],
];
for (const [name, [cmd, ...args]] of steps) {
  process.stdout.write(`\n== ${name}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    if (name !== 'tests') process.stdout.write(`\n0 passed, 1 failed\n`);
    process.exit(r.status ?? 1);
  }
}
