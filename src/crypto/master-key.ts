import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CustodianError } from '../core/index.js';

/** Where the master key came from. */
export type MasterKeySource = 'env' | 'file' | 'generated';

/**
 * The local master keys (KEKs), by version. The bytes stay in a private field and never reach the store or
 * logs. Text form (env CUSTODIAN_MASTER_KEY, or one line each in the key file): `base64` (version 1) or
 * `N:base64` for version N, comma- or newline-separated.
 */
export class MasterKey {
  readonly #versions: Map<number, Buffer>;
  readonly source: MasterKeySource;
  readonly path: string | undefined;

  constructor(versions: ReadonlyMap<number, Buffer>, source: MasterKeySource, path?: string) {
    if (versions.size === 0) throw new CustodianError('CST_ERR_CONFIG', 'no master key', { details: { setting: 'masterKey' } });
    for (const [v, bytes] of versions) {
      if (!Number.isInteger(v) || v < 1 || bytes.length !== 32) {
        throw new CustodianError('CST_ERR_CONFIG', 'master keys must be 32 bytes with versions ≥ 1', { details: { setting: 'masterKey' } });
      }
    }
    this.#versions = new Map([...versions].map(([v, b]) => [v, Buffer.from(b)]));
    this.source = source;
    this.path = path;
  }

  /** Versions present, ascending. */
  versions(): number[] {
    return [...this.#versions.keys()].sort((a, b) => a - b);
  }

  /** The key bytes of `version` (a copy), for the local KEK provider only. */
  exportBytes(version = this.versions().at(-1)!): Buffer {
    const b = this.#versions.get(version);
    if (b === undefined) throw new CustodianError('CST_ERR_CRYPTO_MASTER_KEY_MISSING', 'master key version is not configured', { details: { version } });
    return Buffer.from(b);
  }

  /**
   * Adds a new random version to the key file (dev keys and file-based keys only) and returns it.
   * Keys from the environment cannot be extended from inside: the operator adds `N:base64` to CUSTODIAN_MASTER_KEY.
   */
  async addVersion(): Promise<number> {
    if (this.source === 'env' || this.path === undefined) {
      throw new CustodianError('CST_ERR_CRYPTO_MASTER_KEY_MISSING', 'add a new version to CUSTODIAN_MASTER_KEY (e.g. "2:<base64>,1:<base64>") and restart, then rotate', {
        details: { setting: 'CUSTODIAN_MASTER_KEY' },
      });
    }
    const version = Math.max(...this.versions()) + 1;
    const bytes = randomBytes(32);
    await appendFile(this.path, `${version}:${bytes.toString('base64')}\n`, { mode: 0o600 });
    this.#versions.set(version, bytes);
    return version;
  }

  /**
   * Re-reads the key file (file-based keys only) and adds versions written since, e.g. by `custodian keys rotate`
   * in another process. Returns whether anything was added.
   */
  async reload(): Promise<boolean> {
    if (this.source === 'env' || this.path === undefined) return false;
    const fresh = parseMasterKeys(await readFile(this.path, 'utf8'), 'masterKeyFile');
    let added = false;
    for (const [v, bytes] of fresh) {
      if (!this.#versions.has(v)) {
        this.#versions.set(v, bytes);
        added = true;
      }
    }
    return added;
  }

  toJSON(): unknown {
    return { source: this.source, versions: this.versions() };
  }
}

/** Options of {@link loadMasterKey}. */
export interface LoadMasterKeyOptions {
  /** Value of CUSTODIAN_MASTER_KEY, when set. */
  readonly envValue?: string | undefined;
  /** Key file path; generated (mode 0600) when absent and `generateIfMissing`. */
  readonly filePath: string;
  readonly generateIfMissing: boolean;
}

/** Parses `base64` / `N:base64` entries separated by commas or newlines. */
export function parseMasterKeys(text: string, setting: string): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  const entries = text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
  for (const entry of entries) {
    const m = /^(?:(\d{1,6}):)?([A-Za-z0-9+/_-]+=*)$/.exec(entry);
    const version = m?.[1] === undefined ? 1 : Number(m[1]);
    const bytes = m ? Buffer.from(m[2]!, 'base64') : Buffer.alloc(0);
    if (!m || bytes.length !== 32 || version < 1 || out.has(version)) {
      throw new CustodianError('CST_ERR_CONFIG', `${setting} must hold 32-byte keys in base64, as "base64" or "N:base64" with distinct versions`, { details: { setting } });
    }
    out.set(version, bytes);
  }
  if (out.size === 0) throw new CustodianError('CST_ERR_CONFIG', `${setting} is empty`, { details: { setting } });
  return out;
}

/**
 * Loads the master keys from the environment or the key file, generating a dev key file with mode 0600
 * when allowed. A key file readable by group or others is refused.
 */
export async function loadMasterKey(options: LoadMasterKeyOptions): Promise<MasterKey> {
  if (options.envValue !== undefined && options.envValue !== '') {
    return new MasterKey(parseMasterKeys(options.envValue, 'CUSTODIAN_MASTER_KEY'), 'env');
  }
  try {
    const info = await stat(options.filePath);
    if ((info.mode & 0o077) !== 0) {
      throw new CustodianError('CST_ERR_CONFIG', 'master key file must not be readable by group or others (chmod 600)', {
        details: { setting: 'masterKeyFile' },
      });
    }
    return new MasterKey(parseMasterKeys(await readFile(options.filePath, 'utf8'), 'masterKeyFile'), 'file', options.filePath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!options.generateIfMissing) {
    throw new CustodianError('CST_ERR_CRYPTO_MASTER_KEY_MISSING', 'no master key: set CUSTODIAN_MASTER_KEY or create the key file', {
      details: { setting: 'masterKeyFile' },
    });
  }
  await mkdir(dirname(options.filePath), { recursive: true, mode: 0o700 });
  const bytes = randomBytes(32);
  // 'wx' fails if another process created the file meanwhile; then we read theirs.
  try {
    const fh = await open(options.filePath, 'wx', 0o600);
    try {
      await fh.writeFile(bytes.toString('base64') + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadMasterKey({ ...options, generateIfMissing: false });
    throw err;
  }
  return new MasterKey(new Map([[1, bytes]]), 'generated', options.filePath);
}
