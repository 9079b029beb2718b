import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/* The library entry points of package.json resolve from the built package (npm test builds first). */

describe('package exports', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string; exports: Record<string, string> };
  const expected: Record<string, string[]> = {
    '.': ['createCustodian', 'loadConfig', 'ConsentLedger'],
    './verify': ['verifyBundle'],
    './crypto': ['Keyring', 'sealField', 'openField', 'LocalKekProvider'],
    './datamap': ['DataMap', 'loadManifestFile', 'parseManifest', 'DatamapService', 'importFides', 'exportFides'],
    './client': ['ConsentClient', 'filterByConsent', 'ledgerLookup', 'httpLookup', 'verifyWebhook', 'subscribeEvents'],
  };
  it('lists exactly the documented entry points', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual(Object.keys(expected).sort());
  });
  it.each(Object.entries(expected))('%s exports %j', (entry, names) => {
    const specifier = entry === '.' ? pkg.name : `${pkg.name}/${entry.slice(2)}`;
    // Self-reference through "exports", in a plain Node process, as an application would import it.
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m)))`], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(expect.arrayContaining(names));
  });
});
