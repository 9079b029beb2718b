import { CustodianError } from '../../core/index.js';
import type { KekProvider } from '../kek-provider.js';
import type { MasterKey } from '../master-key.js';
import { unwrapKey, wrapKey } from '../aead.js';

/** Master keys held locally (CUSTODIAN_MASTER_KEY or the key file); wrapping is AES-256-GCM in-process. */
export class LocalKekProvider implements KekProvider {
  readonly kind = 'local';
  readonly #master: MasterKey;
  readonly #keks = new Map<number, Buffer>();

  constructor(master: MasterKey) {
    this.#master = master;
  }

  async versions(): Promise<readonly number[]> {
    await this.#master.reload();
    return this.#master.versions();
  }

  keyRef(version: number): string {
    return `local:v${version}`;
  }

  async #kek(version: number): Promise<Buffer> {
    let k = this.#keks.get(version);
    if (k === undefined) {
      // Another process may have added a version to the key file (`keys rotate`): look once before failing.
      if (!this.#master.versions().includes(version)) await this.#master.reload();
      if (!this.#master.versions().includes(version)) {
        throw new CustodianError('CST_ERR_CRYPTO_MASTER_KEY_MISSING', 'master key version is not configured', { details: { version } });
      }
      k = this.#master.exportBytes(version);
      this.#keks.set(version, k);
    }
    return k;
  }

  async wrap(version: number, dataKey: Buffer, aad: Buffer): Promise<Buffer> {
    return wrapKey(await this.#kek(version), dataKey, aad);
  }

  async unwrap(version: number, wrapped: Buffer, aad: Buffer): Promise<Buffer> {
    return unwrapKey(await this.#kek(version), wrapped, aad);
  }

  createVersion(): Promise<number> {
    return this.#master.addVersion();
  }
}
