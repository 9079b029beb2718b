import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The admin console (web/admin) has its own tsconfig (DOM, JSX): the repository's type-check does not cover it, and
// Vite strips types without checking them, so this test does.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));

describe('admin console page sources', () => {
  it('type-check under web/admin/tsconfig.json', async () => {
    const result = await promisify(execFile)(process.execPath, [TSC, '-p', 'web/admin/tsconfig.json'], { cwd: ROOT }).catch((err: { stdout?: string; message?: string }) => ({ stdout: err.stdout ?? err.message ?? 'tsc failed' }));
    expect(result.stdout).toBe('');
  }, 60_000);
});
