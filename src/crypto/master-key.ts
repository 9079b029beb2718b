import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CustodianError } from '../core/index.js';

/** Where the master key came from. */
export type MasterKeySource = 'env' | 'file' | 'generated';

/** A loaded master key (KEK). The bytes stay in a private field and never reach the store or logs. */
export class MasterKey {
  readonly #bytes: Buffer;
  readonly source: MasterKeySource;
  readonly path: string | undefined;

  constructor(bytes: Buffer, source: MasterKeySource, path?: string) {
    if (bytes.length !== 32) throw new CustodianError('CST_ERR_CONFIG', 'master key must be 32 bytes', { details: { setting: 'masterKey' } });
    this.#bytes = Buffer.from(bytes);
    this.source = source;
    this.path = path;
  }

  /** A copy of the key bytes, for the keyring only. */
  exportBytes(): Buffer {
    return Buffer.from(this.#bytes);
  }

  toJSON(): unknown {
    return { source: this.source };
  }
}

/** Options of {@link loadMasterKey}. */
export interface LoadMasterKeyOptions {
  /** Base64 value of CUSTODIAN_MASTER_KEY, when set. */
  readonly envValue?: string | undefined;
  /** Key file path; generated (mode 0600) when absent and `generateIfMissing`. */
  readonly filePath: string;
  readonly generateIfMissing: boolean;
}

function decodeKey(text: string, setting: string): Buffer {
  const trimmed = text.trim();
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length !== 32 || !/^[A-Za-z0-9+/_-]+=*$/.test(trimmed)) {
    throw new CustodianError('CST_ERR_CONFIG', `${setting} must be 32 bytes in base64`, { details: { setting } });
  }
  return bytes;
}

/**
 * Loads the master key from the environment or the key file, generating a dev key file with mode 0600
 * when allowed. A key file readable by group or others is refused.
 */
export async function loadMasterKey(options: LoadMasterKeyOptions): Promise<MasterKey> {
  if (options.envValue !== undefined && options.envValue !== '') {
    return new MasterKey(decodeKey(options.envValue, 'CUSTODIAN_MASTER_KEY'), 'env');
  }
  try {
    const info = await stat(options.filePath);
    if ((info.mode & 0o077) !== 0) {
      throw new CustodianError('CST_ERR_CONFIG', 'master key file must not be readable by group or others (chmod 600)', {
        details: { setting: 'masterKeyFile' },
      });
    }
    return new MasterKey(decodeKey(await readFile(options.filePath, 'utf8'), 'masterKeyFile'), 'file', options.filePath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!options.generateIfMissing) {
    throw new CustodianError('CST_ERR_CONFIG', 'no master key: set CUSTODIAN_MASTER_KEY or create the key file', {
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
  return new MasterKey(bytes, 'generated', options.filePath);
}
