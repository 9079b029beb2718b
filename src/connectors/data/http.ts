import { setTimeout as sleep } from 'node:timers/promises';
import { CustodianError, uuidv7 } from '../../core/index.js';
import { MAX_BATCH, retentionUnsupported, scanUnsupported, type CollectionTarget, type DataConnector, type KeyValue, type Row, type RowChange } from './data-connector.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signCustodianRequest } from './http-signature.js';

/**
 * The HTTP data connector: personal data held by a team's own service or a SaaS, reached through the
 * Custodian callback protocol (docs/requests.md (Connectors beyond SQL) has the full contract, for receiver authors).
 *
 * ```
 * POST <base>/<path>/find    {requestId, collection, field, values, fields, cursor?} → 200 {rows: [...], next?: cursor}
 * POST <base>/<path>/delete  {requestId, collection, keyField, keys}                 → 200 {count}
 * POST <base>/<path>/update  {requestId, collection, keyField, changes: [{key, set}]} → 200 {count}
 * POST <base>/_ping          {requestId}                                             → 2xx
 * ```
 *
 * `<base>` is the connection URL without its userinfo; `<path>` is the collection's `connector.path`
 * (segments of letters, digits, `._~-`) or its name. Each request carries `Custodian-Timestamp` (Unix
 * seconds) and `Custodian-Signature: v1=<hex HMAC-SHA-256(secret, "<timestamp>.<body>")>`; the secret is the
 * collection's `connector.secretEnv` (the name of an environment variable) or else the password of the
 * connection URL (`https://custodian:${SECRET}@svc.internal/privacy`). At most {@link MAX_BATCH} values,
 * keys or changes go in one request; `requestId` is the same on retries and pages of one request.
 *
 * | Answer                                      | Retried | Error                                      |
 * |---------------------------------------------|---------|--------------------------------------------|
 * | 2xx with a well-formed body                 | —       | —                                          |
 * | 2xx with a malformed body, 3xx              | no      | CST_ERR_CONNECTOR_FAILED {status, reason}  |
 * | 401, 403                                    | no      | CST_ERR_CONNECTOR_PERMISSION {status}      |
 * | 404 (unknown collection), 422 (unknown field)| no     | CST_ERR_CONNECTOR_SCHEMA {status}          |
 * | 501 (operation not supported)               | no      | CST_ERR_CONNECTOR_UNSUPPORTED {status}     |
 * | other 4xx                                   | no      | CST_ERR_CONNECTOR_FAILED {status}          |
 * | 408, 429, 5xx, network error, timeout       | yes     | CST_ERR_CONNECTOR_UNAVAILABLE after the last attempt |
 *
 * Retries back off exponentially with full jitter (base 100 ms, doubling, capped at 5 s; a `Retry-After` in
 * seconds is honoured up to that cap). Error bodies are never read, so nothing a receiver echoes (values,
 * stack traces) reaches Custodian's errors or logs. Redirects are not followed. Rows answered by `find` are
 * checked: a row whose `field` does not equal one of the asked values is dropped, and only the asked fields
 * are kept, so a lax receiver cannot leak other subjects' data into a request.
 */

/** Options of {@link HttpDataConnector}. */
export interface HttpDataConnectorOptions {
  /** Base URL, `http:` or `https:`, optionally with the shared secret as the userinfo password. */
  readonly url: string;
  /** Where `secretEnv` names are looked up. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Time allowed for one attempt, answer included. Default 10 000 ms. */
  readonly timeoutMs?: number | undefined;
  /** Further attempts after a transient failure. Default 3. */
  readonly retries?: number | undefined;
  /** First backoff delay; doubles per attempt. Default 100 ms. */
  readonly backoffBaseMs?: number | undefined;
  /** Largest backoff delay (and largest Retry-After honoured). Default 5000 ms. */
  readonly maxBackoffMs?: number | undefined;
  /** The clock used for timestamps, ms since the epoch. Default `Date.now`. */
  readonly now?: (() => number) | undefined;
}

type Operation = 'find' | 'delete' | 'update' | 'ping';

/** Why one attempt failed, and whether another may succeed. */
interface Failure {
  readonly retryable: boolean;
  readonly reason: 'status' | 'network' | 'timeout' | 'malformed';
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly cause?: unknown;
}

type Attempt = { readonly ok: true; readonly body: Record<string, unknown> } | ({ readonly ok: false } & Failure);

const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
const MAX_PAGES = 100_000;
const MAX_RETRIES = 10;
const PATH_SEGMENT = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'http:<unparsable url>';
  }
}

/** Reads at most `limit` bytes of a body; undefined when it is longer. */
async function readCapped(response: Response, limit: number): Promise<Buffer | undefined> {
  if (response.body === null) return Buffer.alloc(0);
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
    await reader.cancel().catch(() => undefined);
  }
}

/** `Retry-After` in ms when it is a number of seconds; HTTP dates are ignored (clock skew). */
function retryAfter(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  return value !== null && /^\d{1,6}$/.test(value.trim()) ? Number(value.trim()) * 1000 : undefined;
}

/** The text a value matches by. */
function matchText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * A {@link DataConnector} that calls a team's service over the Custodian callback protocol (see the module
 * comment and docs/requests.md (Connectors beyond SQL)).
 *
 * @example
 * ```ts
 * const svc = await openHttpDataConnector('https://custodian:s3cret@billing.internal/privacy');
 * const rows = svc.find({ name: 'invoices', options: {} }, 'email', ['ada@example.com'], ['id', 'amount']);
 * for await (const batch of rows) console.log(batch);
 * ```
 */
export class HttpDataConnector implements DataConnector {
  readonly kind = 'http';
  readonly #base: string;
  readonly #display: string;
  readonly #urlSecret: string | undefined;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #backoffBaseMs: number;
  readonly #maxBackoffMs: number;
  readonly #now: () => number;

  constructor(options: HttpDataConnectorOptions) {
    this.#display = displayUrl(options.url);
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw this.#configError('the HTTP connection URL is malformed');
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
      throw this.#configError('an HTTP connection URL is http(s)://[user:secret@]host[:port][/path], without query or fragment (name secrets with secretEnv)');
    }
    let secret: string | undefined;
    try {
      secret = url.password === '' ? undefined : decodeURIComponent(url.password);
    } catch {
      throw this.#configError('the secret in the HTTP connection URL is not well-formed percent-encoding');
    }
    this.#urlSecret = secret;
    url.username = '';
    url.password = '';
    this.#base = url.href.replace(/\/+$/, '');
    this.#env = options.env ?? process.env;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retries = Math.min(options.retries ?? 3, MAX_RETRIES);
    this.#backoffBaseMs = options.backoffBaseMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#now = options.now ?? Date.now;
    if (!(this.#timeoutMs > 0) || !(this.#retries >= 0) || !(this.#backoffBaseMs >= 0) || !(this.#maxBackoffMs >= 0)) {
      throw this.#configError('HTTP connector timeouts, retries and backoff must be positive numbers');
    }
  }

  async *find(target: CollectionTarget, field: string, values: readonly KeyValue[], fields: readonly string[], options: { readonly signal?: AbortSignal } = {}): AsyncIterable<readonly Row[]> {
    const endpoint = this.#endpoint(target);
    const secret = this.#secret(target);
    const wanted = [field, ...new Set(fields.filter((f) => f !== field))];
    options.signal?.throwIfAborted();
    const distinct = [...new Map(values.map((v) => [`${typeof v}:${String(v)}`, v])).values()];
    for (let i = 0; i < distinct.length; i += MAX_BATCH) {
      const chunk = distinct.slice(i, i + MAX_BATCH);
      const texts = new Set(chunk.map(String));
      const requestId = uuidv7();
      let cursor: string | undefined;
      for (let page = 0; ; page++) {
        if (page >= MAX_PAGES) throw this.#failed('find', target, 'too many pages');
        const payload = { requestId, collection: target.name, field, values: chunk, fields: wanted, ...(cursor === undefined ? {} : { cursor }) };
        const body = await this.#call('find', endpoint, secret, payload, target, { field, fields: wanted }, options.signal);
        const rows = body.rows;
        const next = body.next;
        if (!Array.isArray(rows) || !rows.every(isObject) || (next !== undefined && next !== null && (typeof next !== 'string' || next === ''))) {
          throw this.#failed('find', target, 'malformed');
        }
        const out: Row[] = [];
        for (const row of rows) {
          const text = matchText(row[field]);
          if (text === undefined || !texts.has(text)) continue;
          const projected: Record<string, unknown> = {};
          for (const f of wanted) projected[f] = Object.hasOwn(row, f) ? row[f] : null;
          out.push(projected);
        }
        // Pages may hold more rows than a batch: hand them on in batches of at most MAX_BATCH.
        for (let at = 0; at < out.length; at += MAX_BATCH) yield out.slice(at, at + MAX_BATCH);
        if (typeof next !== 'string') break;
        if (next === cursor) throw this.#failed('find', target, 'pagination loop');
        cursor = next;
      }
    }
  }

  /**
   * Breach scoping would need the service to list a whole collection, which the callback protocol does not
   * offer (it has lookups by value, deletes and updates only): CST_ERR_CONNECTOR_UNSUPPORTED.
   */
  async scan(): Promise<readonly Row[]> {
    return scanUnsupported(this.kind, 'the Custodian callback protocol has no operation that lists a whole collection; scope this system by hand and record the count on the incident');
  }

  /** Retention needs rows found by age: not possible here (CST_ERR_CONNECTOR_UNSUPPORTED; docs/retention.md). */
  async findExpired(): Promise<readonly Row[]> {
    return retentionUnsupported(this.kind, 'findExpired');
  }

  async countExpired(): Promise<number> {
    return retentionUnsupported(this.kind, 'countExpired');
  }

  async deleteExpired(): Promise<number> {
    return retentionUnsupported(this.kind, 'deleteExpired');
  }

  async updateExpired(): Promise<number> {
    return retentionUnsupported(this.kind, 'updateExpired');
  }

  async deleteRows(target: CollectionTarget, keyField: string, keys: readonly KeyValue[]): Promise<number> {
    const endpoint = this.#endpoint(target);
    const secret = this.#secret(target);
    let count = 0;
    for (let i = 0; i < keys.length; i += MAX_BATCH) {
      const payload = { requestId: uuidv7(), collection: target.name, keyField, keys: keys.slice(i, i + MAX_BATCH) };
      count += this.#count('delete', target, await this.#call('delete', endpoint, secret, payload, target, { field: keyField }, undefined));
    }
    return count;
  }

  async updateRows(target: CollectionTarget, keyField: string, changes: readonly RowChange[]): Promise<number> {
    const endpoint = this.#endpoint(target);
    const secret = this.#secret(target);
    let count = 0;
    for (let i = 0; i < changes.length; i += MAX_BATCH) {
      const batch = changes.slice(i, i + MAX_BATCH).map((c) => ({ key: c.key, set: c.set }));
      const payload = { requestId: uuidv7(), collection: target.name, keyField, changes: batch };
      const fields = [...new Set(batch.flatMap((c) => Object.keys(c.set)))];
      count += this.#count('update', target, await this.#call('update', endpoint, secret, payload, target, { field: keyField, fields }, undefined));
    }
    return count;
  }

  /**
   * POSTs to `<base>/_ping`. Signed with the URL's secret when it has one, and then any 2xx passes; without
   * one (secrets per collection), any answer below 500 shows the service is reachable.
   */
  async ping(): Promise<void> {
    const payload = { requestId: uuidv7() };
    const result = await this.#attempt(`${this.#base}/_ping`, this.#urlSecret, JSON.stringify(payload), undefined);
    if (result.ok) return;
    if (this.#urlSecret === undefined && result.reason === 'status' && result.status! < 500) return;
    throw this.#error('ping', { name: '_ping', options: {} }, result, 1);
  }

  async close(): Promise<void> {
    // fetch keeps no connection that needs closing here.
  }

  toJSON(): unknown {
    return { kind: this.kind, url: this.#display };
  }

  #configError(message: string): CustodianError {
    return new CustodianError('CST_ERR_CONFIG', message, { details: { connector: 'http', url: this.#display } });
  }

  #endpoint(target: CollectionTarget): string {
    const path = target.options.path ?? target.name;
    const segments = path.split('/');
    if (path === '' || !segments.every((s) => PATH_SEGMENT.test(s) && s !== '.' && s !== '..')) {
      throw new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `the HTTP path of collection ${target.name} must be segments of letters, digits and ._~- separated by /`, {
        details: { connector: 'http', collection: target.name, setting: 'path' },
      });
    }
    return `${this.#base}/${path}`;
  }

  #secret(target: CollectionTarget): string {
    const name = target.options.secretEnv;
    if (name !== undefined) {
      const value = this.#env[name];
      if (value === undefined || value === '') {
        throw new CustodianError('CST_ERR_CONFIG', `the environment variable named by secretEnv of collection ${target.name} is not set`, {
          details: { connector: 'http', collection: target.name, setting: 'secretEnv', variable: name },
        });
      }
      return value;
    }
    if (this.#urlSecret === undefined) {
      throw new CustodianError('CST_ERR_CONFIG', `collection ${target.name} has no shared secret: put it in the connection URL's password or name a variable with secretEnv`, {
        details: { connector: 'http', collection: target.name, setting: 'secretEnv' },
      });
    }
    return this.#urlSecret;
  }

  #count(operation: Operation, target: CollectionTarget, body: Record<string, unknown>): number {
    const count = body.count;
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) throw this.#failed(operation, target, 'malformed');
    return count;
  }

  #failed(operation: Operation, target: CollectionTarget, reason: string): CustodianError {
    return new CustodianError('CST_ERR_CONNECTOR_FAILED', `the service answered ${operation} of collection ${target.name} with ${reason === 'malformed' ? 'a malformed body' : reason}`, {
      details: { connector: 'http', url: this.#display, collection: target.name, operation, reason },
    });
  }

  /** POSTs `payload` to `<endpoint>/<operation>`, retrying transient failures; the JSON object answered. */
  async #call(
    operation: Operation,
    endpoint: string,
    secret: string,
    payload: Record<string, unknown>,
    target: CollectionTarget,
    asked: { readonly field: string; readonly fields?: readonly string[] },
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown>> {
    const body = JSON.stringify(payload);
    const attempts = this.#retries + 1;
    let last: Failure | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (last !== undefined) {
        const exponential = Math.min(this.#maxBackoffMs, this.#backoffBaseMs * 2 ** (attempt - 2));
        // Full jitter, so that workers retrying together spread out; a Retry-After is a floor.
        const delay = Math.max(Math.random() * exponential, Math.min(last.retryAfterMs ?? 0, this.#maxBackoffMs));
        try {
          await sleep(delay, undefined, signal === undefined ? undefined : { signal });
        } catch (err) {
          throw signal?.aborted ? signal.reason : err;
        }
      }
      signal?.throwIfAborted();
      const result = await this.#attempt(`${endpoint}/${operation}`, secret, body, signal);
      if (result.ok) return result.body;
      last = result;
      if (!result.retryable) break;
    }
    throw this.#error(operation, target, last!, attempts, asked);
  }

  /** The error a failed call becomes; `asked` names the fields involved (data-map names, never values). */
  #error(operation: Operation, target: CollectionTarget, failure: Failure, attempts: number, asked: Record<string, unknown> = {}): CustodianError {
    const details = {
      ...asked,
      connector: 'http',
      url: this.#display,
      collection: target.name,
      operation,
      reason: failure.reason,
      ...(failure.status === undefined ? {} : { status: failure.status }),
    };
    const status = failure.status;
    if (failure.reason === 'malformed') return this.#failed(operation, target, 'malformed');
    if (status === 401 || status === 403) {
      return new CustodianError('CST_ERR_CONNECTOR_PERMISSION', `the service refused ${operation} of collection ${target.name} (HTTP ${status}): check the shared secret and the clocks`, { details });
    }
    if (status === 404 || status === 422) {
      const names = [asked.field, ...((asked.fields as string[] | undefined) ?? [])].filter((f) => typeof f === 'string');
      return new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `the service does not know collection ${target.name} or one of the fields ${[...new Set(names)].join(', ')} (HTTP ${status})`, { details });
    }
    if (status === 501) return new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', `the service does not support ${operation} of collection ${target.name} (HTTP 501)`, { details });
    if (!failure.retryable) return new CustodianError('CST_ERR_CONNECTOR_FAILED', `the service refused ${operation} of collection ${target.name} (HTTP ${status})`, { details });
    const what = failure.reason === 'timeout' ? `timed out after ${this.#timeoutMs} ms` : failure.reason === 'network' ? 'could not be reached' : `answered HTTP ${status}`;
    return new CustodianError('CST_ERR_CONNECTOR_UNAVAILABLE', `the service ${what} on ${operation} of collection ${target.name} (${attempts} attempts); retry later`, {
      details: { ...details, attempts },
      cause: failure.cause,
    });
  }

  /** One signed request. Never throws, except the caller's abort reason. */
  async #attempt(url: string, secret: string | undefined, body: string, signal: AbortSignal | undefined): Promise<Attempt> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'custodian' };
    if (secret !== undefined) {
      const timestamp = Math.floor(this.#now() / 1000);
      headers[TIMESTAMP_HEADER] = String(timestamp);
      headers[SIGNATURE_HEADER] = signCustodianRequest(secret, timestamp, body);
    }
    try {
      const response = await fetch(url, { method: 'POST', headers, body, signal: combined, redirect: 'manual' });
      if (response.status < 200 || response.status > 299) {
        await response.body?.cancel().catch(() => undefined);
        const status = response.status;
        const retryable = status === 408 || status === 429 || (status >= 500 && status !== 501);
        const after = retryable ? retryAfter(response) : undefined;
        return { ok: false, reason: 'status', status, retryable, ...(after === undefined ? {} : { retryAfterMs: after }) };
      }
      const raw = await readCapped(response, MAX_ANSWER_BYTES);
      let parsed: unknown;
      try {
        parsed = raw === undefined ? undefined : raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
      } catch {
        // The parser's message quotes the body, which may hold personal data: it is not kept.
        parsed = undefined;
      }
      return isObject(parsed) ? { ok: true, body: parsed } : { ok: false, reason: 'malformed', retryable: false };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) return { ok: false, reason: 'timeout', retryable: true };
      return { ok: false, reason: 'network', retryable: true, cause: err };
    }
  }
}

/**
 * Opens an {@link HttpDataConnector} for an `http(s)://` base URL and pings it (see
 * {@link HttpDataConnector.ping}). Throws CST_ERR_CONFIG for a malformed URL, or a CST_ERR_CONNECTOR_* code
 * when the service cannot be used.
 */
export async function openHttpDataConnector(url: string, options: Omit<HttpDataConnectorOptions, 'url'> = {}): Promise<DataConnector> {
  const connector = new HttpDataConnector({ ...options, url });
  await connector.ping();
  return connector;
}
