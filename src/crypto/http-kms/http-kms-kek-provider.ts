/**
 * Master keys held by an external KMS, reached over HTTP. Custodian sends data keys to be wrapped and
 * unwrapped; the master keys never leave the KMS.
 *
 * ## Wire contract (ours, modelled on Vault Transit and AWS KMS Encrypt/Decrypt)
 *
 * All bodies are JSON (`Content-Type: application/json`); binary values are standard base64 with padding.
 * When a token is configured every request carries `Authorization: Bearer <token>`.
 *
 * ```
 * POST {url}/v1/wrap    {"keyId": "<KMS key id>", "plaintext": "<base64 32-byte data key>", "aad": "<base64>"}
 *   200                 {"ciphertext": "<base64, opaque to Custodian>"}
 * POST {url}/v1/unwrap  {"keyId": "<KMS key id>", "ciphertext": "<base64>", "aad": "<base64>"}
 *   200                 {"plaintext": "<base64 32-byte data key>"}
 * ```
 *
 * The KMS must authenticate `aad` together with the ciphertext (AEAD associated data), so a wrapped key
 * cannot be unwrapped for another context. Status codes and what Custodian does with them:
 *
 * | Answer                                   | Retried | Error                                  |
 * |------------------------------------------|---------|----------------------------------------|
 * | 2xx with a well-formed body              | —       | —                                      |
 * | 2xx with a malformed body                | no      | CST_ERR_CRYPTO_KMS_UNAVAILABLE         |
 * | 422 from unwrap: does not authenticate   | no      | CST_ERR_CRYPTO_WRONG_MASTER_KEY        |
 * | 401, 403: token or key policy refused    | no      | CST_ERR_CRYPTO_KMS_UNAVAILABLE {status}|
 * | 408, 429, 5xx, network error, timeout    | yes     | CST_ERR_CRYPTO_KMS_UNAVAILABLE         |
 * | any other status (3xx, 4xx)              | no      | CST_ERR_CRYPTO_KMS_UNAVAILABLE {status}|
 *
 * Retries use exponential backoff with jitter (about 50 ms, 100 ms, 200 ms, …). Redirects are not followed,
 * so the token and the data key are only ever sent to the configured URL. Use `https:` anywhere but a
 * loopback address: the request bodies carry data keys in clear.
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CustodianError } from '../../core/index.js';
import type { KekProvider } from '../kek-provider.js';

/** Options of {@link HttpKmsKekProvider}. */
export interface HttpKmsKekProviderOptions {
  /** Base URL of the KMS, `http:` or `https:`, e.g. `https://kms.internal.example.com`. */
  readonly url: string;
  /** Bearer token sent with every request, when the KMS needs one. */
  readonly token?: string | undefined;
  /** Master key version → KMS key id. */
  readonly keys: ReadonlyMap<number, string>;
  /** Time allowed for one request, answer included. Default 5000 ms. */
  readonly timeoutMs?: number | undefined;
  /** Further attempts after a transient failure (5xx, network error, timeout). Default 2. */
  readonly retries?: number | undefined;
}

const DATA_KEY_BYTES = 32;
const BACKOFF_BASE_MS = 50;
/** Largest KMS answer read; both answers are a few hundred bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_RETRIES = 10;
const MAX_TIMEOUT_MS = 10 * 60_000;
// Broad enough for Vault key names, AWS key ids, aliases and ARNs (`arn:aws:kms:…:key/…`); no commas or spaces.
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9:/_.+=@-]{0,511}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const TOKEN = /^[\x21-\x7e]{1,4096}$/;

type Operation = 'wrap' | 'unwrap';

/** Why one attempt failed, and whether another attempt may succeed. */
interface AttemptFailure {
  readonly retryable: boolean;
  readonly reason: 'status' | 'network' | 'timeout' | 'malformed';
  readonly status?: number;
  readonly cause?: unknown;
}

/** The outcome of one attempt: a parsed body, or why it failed. */
type Attempt = { readonly ok: true; readonly body: Record<string, unknown> } | ({ readonly ok: false } & AttemptFailure);

function configError(setting: string, message: string): CustodianError {
  return new CustodianError('CST_ERR_CONFIG', message, { details: { setting } });
}

function parseBaseUrl(value: string, setting: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(setting, `${setting} must be an absolute http: or https: URL`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw configError(setting, `${setting} must be an http: or https: URL without credentials, query or fragment (put the token in CUSTODIAN_KMS_TOKEN)`);
  }
  return url.href.replace(/\/+$/, '');
}

function checkKeys(keys: ReadonlyMap<number, string>, setting: string): Map<number, string> {
  if (keys.size === 0) throw configError(setting, `${setting} must name at least one KMS key, as "1:<keyId>"`);
  const seen = new Set<string>();
  for (const [version, keyId] of keys) {
    if (!Number.isSafeInteger(version) || version < 1 || version > 999_999) {
      throw configError(setting, `${setting}: versions must be whole numbers from 1 to 999999`);
    }
    if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) {
      throw configError(setting, `${setting}: a KMS key id must be 1 to 512 characters of letters, digits and :/_.+=@- (no commas or spaces)`);
    }
    if (seen.has(keyId)) throw configError(setting, `${setting}: each version needs its own KMS key id`);
    seen.add(keyId);
  }
  return new Map(keys);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Decodes a strict, non-empty base64 field of a KMS answer; undefined when absent or not base64. */
function base64Field(body: Record<string, unknown>, field: string): Buffer | undefined {
  const value = body[field];
  if (typeof value !== 'string' || value.length === 0 || !BASE64.test(value)) return undefined;
  return Buffer.from(value, 'base64');
}

/** Reads at most `limit` bytes of a body; undefined when it is longer. */
async function readCapped(response: Response, limit: number): Promise<Buffer | undefined> {
  if (response.body === null) return Buffer.alloc(0);
  // The global Response types its body loosely; fetch bodies are byte streams.
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(chunks);
      size += value.byteLength;
      if (size > limit) return undefined;
      chunks.push(value);
    }
  } finally {
    // Releases the connection when the body was not read to the end; a no-op otherwise.
    await reader.cancel().catch(() => undefined);
  }
}

/** Delay before retry `attempt` (1-based): exponential, with jitter so that replicas do not retry in step. */
function backoffMs(attempt: number): number {
  const base = BACKOFF_BASE_MS * 2 ** (attempt - 1);
  return Math.round(base * (0.5 + Math.random()));
}

/**
 * A {@link KekProvider} whose master keys live in an external KMS, one KMS key per version (see the wire
 * contract at the top of this file). New versions are created in the KMS by the operator, never from here.
 *
 * @example
 * ```ts
 * const kms = HttpKmsKekProvider.fromEnv(process.env); // undefined unless CUSTODIAN_KMS_URL is set
 * const direct = new HttpKmsKekProvider({ url: 'https://kms.internal.example.com', token, keys: new Map([[1, 'custodian-v1']]) });
 * const wrapped = await direct.wrap(1, dataKey, aad, { signal });
 * ```
 */
export class HttpKmsKekProvider implements KekProvider {
  readonly kind = 'kms';
  readonly #url: string;
  readonly #token: string | undefined;
  readonly #keys: ReadonlyMap<number, string>;
  readonly #timeoutMs: number;
  readonly #retries: number;

  constructor(options: HttpKmsKekProviderOptions) {
    this.#url = parseBaseUrl(options.url, 'kmsUrl');
    if (options.token !== undefined && !TOKEN.test(options.token)) {
      throw configError('kmsToken', 'the KMS token must be 1 to 4096 printable ASCII characters without spaces');
    }
    this.#token = options.token;
    this.#keys = checkKeys(options.keys, 'kmsKeys');
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) {
      throw configError('kmsTimeoutMs', `the KMS timeout must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`);
    }
    const retries = options.retries ?? 2;
    if (!Number.isSafeInteger(retries) || retries < 0 || retries > MAX_RETRIES) {
      throw configError('kmsRetries', `KMS retries must be a whole number from 0 to ${MAX_RETRIES}`);
    }
    this.#timeoutMs = timeoutMs;
    this.#retries = retries;
  }

  /**
   * Builds the provider from CUSTODIAN_KMS_URL, CUSTODIAN_KMS_TOKEN (optional) and CUSTODIAN_KMS_KEYS
   * (`1:key-a,2:key-b`, version → KMS key id; an id may itself contain colons, as ARNs do). Returns undefined
   * when neither CUSTODIAN_KMS_URL nor CUSTODIAN_KMS_KEYS is set; half a configuration is an error, so that a
   * deployment meant to use the KMS never falls back to local keys unnoticed.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): HttpKmsKekProvider | undefined {
    const url = env.CUSTODIAN_KMS_URL?.trim() || undefined;
    const keys = env.CUSTODIAN_KMS_KEYS?.trim() || undefined;
    if (url === undefined) {
      if (keys !== undefined) throw configError('CUSTODIAN_KMS_URL', 'CUSTODIAN_KMS_KEYS is set but CUSTODIAN_KMS_URL is not: set both to use the KMS');
      return undefined;
    }
    if (keys === undefined) throw configError('CUSTODIAN_KMS_KEYS', 'CUSTODIAN_KMS_URL is set: CUSTODIAN_KMS_KEYS must map versions to KMS key ids, e.g. "1:key-a,2:key-b"');
    const token = env.CUSTODIAN_KMS_TOKEN || undefined;
    if (token !== undefined && !TOKEN.test(token)) {
      throw configError('CUSTODIAN_KMS_TOKEN', 'CUSTODIAN_KMS_TOKEN must be 1 to 4096 printable ASCII characters without spaces');
    }
    return new HttpKmsKekProvider({
      url: parseBaseUrl(url, 'CUSTODIAN_KMS_URL'),
      token,
      keys: checkKeys(parseKmsKeys(keys), 'CUSTODIAN_KMS_KEYS'),
    });
  }

  async versions(): Promise<readonly number[]> {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  keyRef(version: number): string {
    return `kms:${this.#keyId(version)}`;
  }

  async wrap(version: number, dataKey: Buffer, aad: Buffer, options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const keyId = this.#keyId(version);
    if (dataKey.length !== DATA_KEY_BYTES) throw new CustodianError('CST_ERR_INTERNAL', `data keys are ${DATA_KEY_BYTES} bytes`);
    const body = await this.#call('wrap', version, keyId, { keyId, plaintext: dataKey.toString('base64'), aad: aad.toString('base64') }, options.signal);
    const ciphertext = base64Field(body, 'ciphertext');
    if (ciphertext === undefined) throw this.#malformed('wrap', version, keyId);
    return ciphertext;
  }

  async unwrap(version: number, wrapped: Buffer, aad: Buffer, options: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const keyId = this.#keyId(version);
    const body = await this.#call('unwrap', version, keyId, { keyId, ciphertext: wrapped.toString('base64'), aad: aad.toString('base64') }, options.signal);
    const plaintext = base64Field(body, 'plaintext');
    if (plaintext?.length !== DATA_KEY_BYTES) {
      plaintext?.fill(0);
      throw this.#malformed('unwrap', version, keyId);
    }
    return plaintext;
  }

  createVersion(): Promise<number> {
    const next = Math.max(...this.#keys.keys()) + 1;
    return Promise.reject(
      new CustodianError(
        'CST_ERR_CRYPTO_MASTER_KEY_MISSING',
        `master keys live in the KMS: create a new key there, add "${next}:<keyId>" to CUSTODIAN_KMS_KEYS and restart, then rotate`,
        { details: { setting: 'CUSTODIAN_KMS_KEYS', version: next } },
      ),
    );
  }

  toJSON(): unknown {
    return { kind: this.kind, url: this.#url, versions: [...this.#keys.keys()].sort((a, b) => a - b) };
  }

  #keyId(version: number): string {
    const keyId = this.#keys.get(version);
    if (keyId === undefined) {
      throw new CustodianError('CST_ERR_CRYPTO_MASTER_KEY_MISSING', 'master key version has no KMS key id in CUSTODIAN_KMS_KEYS', {
        details: { version, setting: 'CUSTODIAN_KMS_KEYS' },
      });
    }
    return keyId;
  }

  #malformed(operation: Operation, version: number, keyId: string): CustodianError {
    return new CustodianError('CST_ERR_CRYPTO_KMS_UNAVAILABLE', `the KMS answered ${operation} with a malformed body`, {
      details: { operation, version, keyId, reason: 'malformed' },
    });
  }

  /**
   * POSTs `payload` to `/v1/<operation>`, retrying transient failures, and returns the JSON object answered.
   * An abort by the caller rejects with the signal's reason at once, without further attempts.
   */
  async #call(operation: Operation, version: number, keyId: string, payload: Record<string, string>, signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    const attempts = this.#retries + 1;
    let last: AttemptFailure | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        try {
          await sleep(backoffMs(attempt - 1), undefined, { signal });
        } catch (err) {
          throw signal?.aborted ? signal.reason : err;
        }
      }
      signal?.throwIfAborted();
      const result = await this.#attempt(operation, payload, signal);
      if (result.ok) return result.body;
      if (operation === 'unwrap' && result.status === 422) {
        throw new CustodianError('CST_ERR_CRYPTO_WRONG_MASTER_KEY', 'the KMS could not unwrap a data key: it does not authenticate under this key and context', {
          details: { operation, version, keyId, status: 422 },
        });
      }
      last = result;
      if (!result.retryable) break;
    }
    throw this.#unavailable(operation, version, keyId, last!, attempts);
  }

  #unavailable(operation: Operation, version: number, keyId: string, failure: AttemptFailure, attempts: number): CustodianError {
    const details = { operation, version, keyId, reason: failure.reason, ...(failure.status === undefined ? {} : { status: failure.status }) };
    const options = { details, cause: failure.cause };
    if (failure.reason === 'malformed') return new CustodianError('CST_ERR_CRYPTO_KMS_UNAVAILABLE', `the KMS answered ${operation} with a malformed body`, options);
    if (failure.status === 401 || failure.status === 403) {
      return new CustodianError(
        'CST_ERR_CRYPTO_KMS_UNAVAILABLE',
        `the KMS refused ${operation} (HTTP ${failure.status}): misconfiguration — check CUSTODIAN_KMS_TOKEN and the key's access policy`,
        options,
      );
    }
    if (!failure.retryable) {
      return new CustodianError('CST_ERR_CRYPTO_KMS_UNAVAILABLE', `the KMS refused ${operation} (HTTP ${failure.status}); not retried`, options);
    }
    const what = failure.reason === 'timeout' ? `timed out after ${this.#timeoutMs} ms` : failure.reason === 'network' ? 'could not be reached' : `answered HTTP ${failure.status}`;
    return new CustodianError('CST_ERR_CRYPTO_KMS_UNAVAILABLE', `the KMS ${what} on ${operation} (${attempts} attempts); retry later`, {
      details: { ...details, attempts },
      cause: failure.cause,
    });
  }

  /** One request. Never throws, except the caller's abort reason. */
  async #attempt(operation: Operation, payload: Record<string, string>, signal: AbortSignal | undefined): Promise<Attempt> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    try {
      const response = await fetch(`${this.#url}/v1/${operation}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(payload),
        signal: combined,
        redirect: 'manual',
      });
      if (!response.ok) {
        await response.body?.cancel().catch(() => undefined);
        const status = response.status;
        return { ok: false, reason: 'status', status, retryable: status >= 500 || status === 408 || status === 429 };
      }
      const raw = await readCapped(response, MAX_ANSWER_BYTES);
      let body: unknown;
      try {
        body = raw === undefined ? undefined : JSON.parse(raw.toString('utf8'));
      } catch {
        // The parser's message quotes the body, which may hold key material: it is not kept as the cause.
        body = undefined;
      }
      return isObject(body) ? { ok: true, body } : { ok: false, reason: 'malformed', retryable: false };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) return { ok: false, reason: 'timeout', retryable: true };
      return { ok: false, reason: 'network', retryable: true, cause: err };
    }
  }
}

/**
 * Parses CUSTODIAN_KMS_KEYS: `N:<keyId>` entries separated by commas or newlines. The version is everything
 * before the first colon, so key ids may contain colons (ARNs).
 */
export function parseKmsKeys(text: string, setting = 'CUSTODIAN_KMS_KEYS'): Map<number, string> {
  const out = new Map<number, string>();
  for (const entry of text.split(/[\n,]/).map((s) => s.trim())) {
    const m = /^(\d{1,6}):(.+)$/.exec(entry);
    const version = m === null ? Number.NaN : Number(m[1]);
    const keyId = m?.[2];
    if (keyId === undefined || version < 1 || !KEY_ID.test(keyId) || out.has(version)) {
      throw configError(setting, `${setting} must be "N:<keyId>" entries with distinct versions ≥ 1, separated by commas, e.g. "1:key-a,2:key-b"`);
    }
    out.set(version, keyId);
  }
  return out;
}
