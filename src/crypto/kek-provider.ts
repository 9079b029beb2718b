/**
 * A provider of master keys (key-encryption keys, KEKs): it wraps and unwraps data keys and never hands out
 * the master key itself. Versions are small positive integers; Custodian records which version wrapped each
 * data key. Implementations: `LocalKekProvider` (CUSTODIAN_MASTER_KEY / key file) and `HttpKmsKekProvider`.
 */
export interface KekProvider {
  /** `local` or `kms`; recorded with each registered version. */
  readonly kind: string;
  /** The versions this provider can use now, ascending. */
  versions(): Promise<readonly number[]>;
  /** A reference to the version's key that is safe to store (never key material), e.g. `local:v2`, the KMS key id. */
  keyRef(version: number): string;
  /** Encrypts `dataKey` under master key `version`, bound to `aad`. */
  wrap(version: number, dataKey: Buffer, aad: Buffer, options?: { signal?: AbortSignal }): Promise<Buffer>;
  /** Decrypts a wrapped key; throws when the version is unknown or the wrapped bytes fail authentication. */
  unwrap(version: number, wrapped: Buffer, aad: Buffer, options?: { signal?: AbortSignal }): Promise<Buffer>;
  /**
   * Makes a new version available and returns it, where the provider can (a local dev key file); otherwise
   * throws CST_ERR_CRYPTO_MASTER_KEY_MISSING telling the operator to add a key first.
   */
  createVersion(): Promise<number>;
}
