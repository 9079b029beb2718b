/**
 * Generates the committed OpenAPI document from the route schemas: `npm run openapi` writes
 * docs/openapi.json; `npm run openapi -- --check` exits 1 when the committed file differs (CI drift check).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createCustodian, loadConfig } from '../src/app/index.js';
import { buildServer } from '../src/server/index.js';

/** Where the committed document lives. */
export const OPENAPI_PATH = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));

/** The hint printed (and used by the drift test) when the committed document is stale. */
export const OPENAPI_HINT = 'docs/openapi.json is out of date with the route schemas: run npm run openapi';

/**
 * The OpenAPI document of the HTTP API as committed: pretty JSON with a trailing newline. The server is
 * built on an in-memory SQLite store with a throwaway data folder, so nothing is written to the repository.
 */
export async function renderOpenApi(): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'custodian-openapi-'));
  try {
    const config = loadConfig({}, { dbUrl: 'sqlite::memory:', dataDir, generateDevMasterKey: true, logLevel: 'silent' });
    const custodian = await createCustodian(config);
    try {
      const app = await buildServer(custodian, { logLevel: false });
      try {
        return `${JSON.stringify(app.swagger(), null, 2)}\n`;
      } finally {
        await app.close();
      }
    } finally {
      await custodian.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Compares `file` with the generated document; `message` says what to do when they differ. */
export async function checkOpenApi(file: string = OPENAPI_PATH): Promise<{ ok: boolean; message: string }> {
  const [generated, committed] = await Promise.all([renderOpenApi(), readFile(file, 'utf8').catch(() => null)]);
  if (committed === generated) return { ok: true, message: 'docs/openapi.json is up to date' };
  return { ok: false, message: committed === null ? 'docs/openapi.json is missing: run npm run openapi' : OPENAPI_HINT };
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--check')) {
    const { ok, message } = await checkOpenApi();
    if (ok) console.log(message);
    else console.error(message);
    return ok ? 0 : 1;
  }
  await writeFile(OPENAPI_PATH, await renderOpenApi());
  console.log(`wrote ${OPENAPI_PATH}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
