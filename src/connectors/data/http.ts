import { setTimeout as sleep } from 'node:timers/promises';
import { CustodianError, backoffDelay, retryAfterMs, uuidv7 } from '../../core/index.js';
import { MAX_BATCH, checkScan, expiredScan, instantOf, malformedCursor, scanUnsupported, type CheckedScan, type CollectionTarget, type ConnectorCapabilities, type DataConnector, type DueCondition, type ExpiredQuery, type KeyValue, type Row, type RowChange, type ScanPage, type ScanQuery } from './data-connector.js';
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
 * Optional operations, which a service implements per collection and advertises (or the data map declares
 * with `connector.capabilities: 'scan,retention'`, which skips the discovery call):
 *
 * ```
 * POST <base>/<path>/capabilities {requestId, collection}                                → 200 {operations: ['scan', 'retention']}
 * POST <base>/<path>/scan      {requestId, collection, keyField, fields, limit, cursor?,
 *                               timeField?, from?, to?}                                   → 200 {rows: [...], next?: cursor | null}
 * POST <base>/<path>/retention {requestId, collection, operation: 'count', ageField, cutoff, from?}        → 200 {count}
 *                              {requestId, collection, operation: 'delete', ageField, cutoff, keyField, keys}    → 200 {count}
 *                              {requestId, collection, operation: 'anonymise', ageField, cutoff, keyField, changes} → 200 {count}
 * ```
 *
 * A collection without them (no `capabilities` answer: 404 or 501) answers scan and the retention operations
 * with CST_ERR_CONNECTOR_UNSUPPORTED, as before. Retention pages rows past due through `scan` with the window
 * `[−∞, cutoff)` on the age field, so `retention` needs `scan` as well.
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
 * Retries back off exponentially with full jitter ({@link backoffDelay}: base 100 ms, doubling, capped at 5 s;
 * a `Retry-After` in seconds is honoured up to that cap). Error bodies are never read, so nothing a receiver
 * echoes (values, stack traces) reaches Custodian's errors or logs. Redirects are not followed. Rows answered
 * by `find` are checked: a row whose `field` does not equal one of the asked values is dropped, and only the
 * asked fields are kept, so a lax receiver cannot leak other subjects' data into a request. Rows answered by
 * `scan` likewise keep only the asked fields, and a row outside the asked time window (its time field is
 * asked too, and checked) is dropped, so a receiver that ignores the window cannot widen a breach scope or
 * put rows that are not due in front of retention.
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
  /** Randomness of the backoff jitter, in [0, 1). Default `Math.random`. */
  readonly random?: (() => number) | undefined;
}

type Operation = 'find' | 'delete' | 'update' | 'ping' | 'capabilities' | 'scan' | 'retention';

/** The optional operations of the protocol a collection may offer. */
const OPTIONAL_OPERATIONS = ['scan', 'retention'] as const;
type OptionalOperation = (typeof OPTIONAL_OPERATIONS)[number];

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
/** Longest `next` cursor a `scan` answer may carry (retention stores it to resume a run). */
const MAX_CURSOR_LENGTH = 8 * 1024;
/** Custodian's wrapping of a service's scan cursor. */
const CURSOR_PREFIX = 'http1.';
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

/** A window bound or cutoff as a UTC ISO instant with milliseconds; CST_ERR_VALIDATION otherwise. */
function instant(value: string, path: string): string {
  const ms = instantOf(value);
  if (ms === undefined) throw new CustodianError('CST_ERR_VALIDATION', `the retention ${path} is not an instant`, { details: { issues: [{ path, message: 'must be an ISO-8601 instant' }] } });
  return new Date(ms).toISOString();
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
  readonly #random: () => number;
  /** Optional operations per collection endpoint, asked once per connector (failures are not kept). */
  readonly #offerings = new Map<string, Promise<ReadonlySet<OptionalOperation>>>();

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
    this.#random = options.random ?? Math.random;
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
   * Breach scoping: one page of the collection from the service's `scan` operation, resumed with the service's
   * own cursor. CST_ERR_CONNECTOR_UNSUPPORTED when the collection does not offer `scan`.
   */
  async scan(target: CollectionTarget, query: ScanQuery, options: { readonly signal?: AbortSignal } = {}): Promise<ScanPage> {
    const checked = checkScan(query);
    if (!(await this.#offers(target, 'scan', options.signal))) {
      scanUnsupported(
        this.kind,
        `the service does not offer the scan operation for collection ${target.name} (its capabilities answer leaves it out, or answers 404 or 501: the operation is not offered or the collection is unknown); implement it (docs/requests.md, Connectors beyond SQL) or scope this system by hand and record the count on the incident`,
      );
    }
    return this.#scanPage(target, checked, options.signal);
  }

  /** Retention: one page of rows past due, through `scan` with the window [−∞, cutoff) on the age field. */
  async findExpired(target: CollectionTarget, query: ExpiredQuery, options: { readonly signal?: AbortSignal } = {}): Promise<ScanPage> {
    await this.#retention(target, 'findExpired', options.signal);
    return this.#scanPage(target, checkScan(expiredScan(query)), options.signal);
  }

  async countExpired(target: CollectionTarget, due: DueCondition, options: { readonly from?: string; readonly signal?: AbortSignal } = {}): Promise<number> {
    const endpoint = await this.#retention(target, 'countExpired', options.signal);
    const payload = { requestId: uuidv7(), collection: target.name, operation: 'count', ageField: due.ageField, cutoff: instant(due.cutoff, 'cutoff'), ...(options.from === undefined ? {} : { from: instant(options.from, 'from') }) };
    return this.#count('retention', target, await this.#call('retention', endpoint, this.#secret(target), payload, target, { field: due.ageField }, options.signal));
  }

  async deleteExpired(target: CollectionTarget, keyField: string, keys: readonly KeyValue[], due: DueCondition): Promise<number> {
    const endpoint = await this.#retention(target, 'deleteExpired', undefined);
    const secret = this.#secret(target);
    const cutoff = instant(due.cutoff, 'cutoff');
    let count = 0;
    for (let i = 0; i < keys.length; i += MAX_BATCH) {
      const payload = { requestId: uuidv7(), collection: target.name, operation: 'delete', ageField: due.ageField, cutoff, keyField, keys: keys.slice(i, i + MAX_BATCH) };
      count += this.#count('retention', target, await this.#call('retention', endpoint, secret, payload, target, { field: keyField, fields: [due.ageField] }, undefined));
    }
    return count;
  }

  async updateExpired(target: CollectionTarget, keyField: string, changes: readonly RowChange[], due: DueCondition): Promise<number> {
    const endpoint = await this.#retention(target, 'updateExpired', undefined);
    const secret = this.#secret(target);
    const cutoff = instant(due.cutoff, 'cutoff');
    let count = 0;
    for (let i = 0; i < changes.length; i += MAX_BATCH) {
      const batch = changes.slice(i, i + MAX_BATCH).map((c) => ({ key: c.key, set: c.set }));
      const payload = { requestId: uuidv7(), collection: target.name, operation: 'anonymise', ageField: due.ageField, cutoff, keyField, changes: batch };
      const fields = [...new Set([due.ageField, ...batch.flatMap((c) => Object.keys(c.set))])];
      count += this.#count('retention', target, await this.#call('retention', endpoint, secret, payload, target, { field: keyField, fields }, undefined));
    }
    return count;
  }

  /**
   * What the service offers for `target`: the data map's `connector.capabilities` when set, else the answer of
   * its `capabilities` operation (asked once per connector; 404 or 501 there means none). `retention` counts
   * only with `scan` (rows past due are paged through it).
   */
  async capabilities(target: CollectionTarget, options: { readonly signal?: AbortSignal } = {}): Promise<ConnectorCapabilities> {
    const offered = await this.#offeredOperations(target, options.signal);
    const scan = offered.has('scan');
    return { scan, scanWindow: scan, retention: scan && offered.has('retention') };
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

  /** Whether the collection offers `operation` (see {@link HttpDataConnector.capabilities}). */
  async #offers(target: CollectionTarget, operation: OptionalOperation, signal: AbortSignal | undefined): Promise<boolean> {
    const capabilities = await this.capabilities(target, signal === undefined ? {} : { signal });
    return operation === 'scan' ? capabilities.scan : capabilities.retention;
  }

  /** The collection's endpoint for a retention operation; CST_ERR_CONNECTOR_UNSUPPORTED when it does not offer retention. */
  async #retention(target: CollectionTarget, operation: string, signal: AbortSignal | undefined): Promise<string> {
    const endpoint = this.#endpoint(target);
    if (!(await this.#offers(target, 'retention', signal))) {
      throw new CustodianError(
        'CST_ERR_CONNECTOR_UNSUPPORTED',
        `the service does not offer the retention and scan operations for collection ${target.name} (${operation}): implement them (docs/requests.md, Connectors beyond SQL) or declare no retention rule on this system's collections`,
        { details: { kind: this.kind, connector: 'http', collection: target.name, operation } },
      );
    }
    return endpoint;
  }

  async #offeredOperations(target: CollectionTarget, signal: AbortSignal | undefined): Promise<ReadonlySet<OptionalOperation>> {
    const declared = target.options.capabilities;
    if (declared !== undefined) return this.#declared(target, declared);
    const endpoint = this.#endpoint(target);
    let offered = this.#offerings.get(endpoint);
    if (offered === undefined) {
      offered = this.#discover(target, endpoint, signal);
      this.#offerings.set(endpoint, offered);
      // An outage (or an abort) is not an answer: the next call asks again.
      offered.catch(() => this.#offerings.delete(endpoint));
    }
    return offered;
  }

  /** `connector.capabilities`: comma-separated optional operations (`scan`, `retention`), or `none`. */
  #declared(target: CollectionTarget, declared: string): ReadonlySet<OptionalOperation> {
    const names = declared
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '' && n !== 'none');
    const unknown = names.filter((n) => !(OPTIONAL_OPERATIONS as readonly string[]).includes(n));
    if (unknown.length > 0) {
      throw new CustodianError('CST_ERR_CONNECTOR_SCHEMA', `connector.capabilities of collection ${target.name} may list ${OPTIONAL_OPERATIONS.join(', ')} (or none)`, {
        details: { connector: 'http', collection: target.name, setting: 'capabilities' },
      });
    }
    return new Set(names as OptionalOperation[]);
  }

  /** Asks the service's `capabilities` operation; 404 or 501 (a service of the base protocol) means none. */
  async #discover(target: CollectionTarget, endpoint: string, signal: AbortSignal | undefined): Promise<ReadonlySet<OptionalOperation>> {
    let body: Record<string, unknown>;
    try {
      body = await this.#call('capabilities', endpoint, this.#secret(target), { requestId: uuidv7(), collection: target.name }, target, {}, signal);
    } catch (err) {
      const status = err instanceof CustodianError ? (err.details as { status?: unknown } | undefined)?.status : undefined;
      if (status === 404 || status === 501) return new Set();
      throw err;
    }
    const operations = body.operations;
    if (!Array.isArray(operations) || !operations.every((o) => typeof o === 'string')) throw this.#failed('capabilities', target, 'malformed');
    // Names this version does not know (a later protocol's) are ignored.
    return new Set(operations.filter((o): o is OptionalOperation => (OPTIONAL_OPERATIONS as readonly string[]).includes(o)));
  }

  /**
   * One page from the service's `scan` operation (scan, and findExpired with the window [−∞, cutoff)). The
   * service's cursor is passed on as it made it (Custodian's cursor wraps it as `http1.<cursor>`). The answer is
   * checked: at most `limit` rows, a `next` that is a non-empty string (at most 8 KiB) or absent/null and not
   * the cursor just sent; rows without a text or number key, or outside the window (their time field is asked
   * too), are dropped; only the asked fields are kept.
   */
  async #scanPage(target: CollectionTarget, query: CheckedScan, signal: AbortSignal | undefined): Promise<ScanPage> {
    const endpoint = this.#endpoint(target);
    const window = query.window;
    const wanted = [...new Set([query.keyField, ...query.fields])];
    const asked = [...new Set([...wanted, ...(window === undefined ? [] : [window.field])])];
    // The service's cursor travels wrapped, so that a cursor it did not make never reaches it.
    const sent = query.cursor === undefined ? undefined : query.cursor.startsWith(CURSOR_PREFIX) ? query.cursor.slice(CURSOR_PREFIX.length) : malformedCursor(this.kind);
    if (sent === '') malformedCursor(this.kind);
    const payload = {
      requestId: uuidv7(),
      collection: target.name,
      keyField: query.keyField,
      fields: asked,
      limit: query.limit,
      ...(sent === undefined ? {} : { cursor: sent }),
      ...(window === undefined ? {} : { timeField: window.field, ...(window.from === undefined ? {} : { from: window.from }), ...(window.to === undefined ? {} : { to: window.to }) }),
    };
    const body = await this.#call('scan', endpoint, this.#secret(target), payload, target, { field: query.keyField, fields: asked }, signal);
    const { rows, next } = body;
    if (!Array.isArray(rows) || rows.length > query.limit || !rows.every(isObject) || (next !== undefined && next !== null && (typeof next !== 'string' || next === '' || next.length > MAX_CURSOR_LENGTH))) {
      throw this.#failed('scan', target, 'malformed');
    }
    if (typeof next === 'string' && next === sent) throw this.#failed('scan', target, 'pagination loop');
    const from = window?.from === undefined ? undefined : Date.parse(window.from);
    const to = window?.to === undefined ? undefined : Date.parse(window.to);
    const out: Row[] = [];
    for (const row of rows) {
      const key = row[query.keyField];
      if (typeof key !== 'string' && (typeof key !== 'number' || !Number.isFinite(key))) continue;
      if (window !== undefined) {
        const at = instantOf(row[window.field]);
        if (at === undefined || (from !== undefined && at < from) || (to !== undefined && at >= to)) continue;
      }
      const projected: Record<string, unknown> = {};
      for (const f of wanted) projected[f] = Object.hasOwn(row, f) ? row[f] : null;
      out.push(projected);
    }
    return { rows: out, next: typeof next === 'string' ? CURSOR_PREFIX + next : null };
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
    asked: { readonly field?: string; readonly fields?: readonly string[] },
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown>> {
    const body = JSON.stringify(payload);
    const attempts = this.#retries + 1;
    let last: Failure | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (last !== undefined) {
        // Full jitter, so that workers retrying together spread out; a Retry-After is a floor.
        const delay = backoffDelay(attempt - 1, { baseMs: this.#backoffBaseMs, capMs: this.#maxBackoffMs }, last.retryAfterMs ?? 0, this.#random);
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
      headers[SIGNATURE_HEADER] = signCustodianRequest(secret, timestamp, body, { method: 'POST', path: new URL(url).pathname });
    }
    try {
      const response = await fetch(url, { method: 'POST', headers, body, signal: combined, redirect: 'manual' });
      if (response.status < 200 || response.status > 299) {
        await response.body?.cancel().catch(() => undefined);
        const status = response.status;
        const retryable = status === 408 || status === 429 || (status >= 500 && status !== 501);
        const after = retryable ? retryAfterMs(response.headers.get('retry-after')) : undefined;
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
