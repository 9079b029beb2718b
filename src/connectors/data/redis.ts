import { Redis } from 'ioredis';
import { CustodianError } from '../../core/index.js';
import { MAX_BATCH, checkScan, malformedCursor, retentionUnsupported, scanUnsupported, type CollectionTarget, type ConnectorCapabilities, type DataConnector, type KeyValue, type Row, type RowChange, type ScanPage, type ScanQuery } from './data-connector.js';

/**
 * The Redis data connector (docs/requests.md (Connectors beyond SQL)): personal data kept in Redis keys, one key per row
 * (hash or string), or one set whose members are the rows.
 *
 * A collection's `connector:` settings in the data map say how its rows map to keys:
 *
 * | setting      | meaning                                                                                        |
 * |--------------|------------------------------------------------------------------------------------------------|
 * | `type`       | `hash` (default): one hash per row, hash fields are fields; `string`: one string per row, its   |
 * |              | value is the field `value`; `set`: the collection is one set, each member a row (field `member`) |
 * | `keyPattern` | `hash`/`string`: the key with exactly one `{field}` placeholder, e.g. `newsletter:{email}`       |
 * | `key`        | `set`: the key of the set, e.g. `suppressed-emails`                                             |
 * | `prefix`     | optional text put before every key (a namespace such as `app1:`)                                |
 * | `fields`     | optional comma-separated field names: other names are CST_ERR_CONNECTOR_SCHEMA (Redis has no schema) |
 * | `scan`       | `false` forbids lookups by a field other than the placeholder, and whole-collection scans (breach scoping) (default `true`, see below) |
 *
 * **Lookups by the placeholder field** (or `member`) read exact keys: the placeholder is replaced by the value,
 * literally, and the keys are read with pipelined EXISTS+HMGET, GET or SISMEMBER, at most {@link MAX_BATCH}
 * per round trip. Nothing ever runs SCAN or KEYS with a pattern made from a value, so glob characters
 * (`*?[]\`) in values are plain data.
 *
 * **Key separators.** When the placeholder sits next to a non-alphanumeric character of the pattern (the `:`
 * of `newsletter:{email}`), a value containing that character is never turned into a key: it matches nothing
 * and changes nothing. `newsletter:{email}` with the value `x:meta` would otherwise address `newsletter:x:meta`,
 * a key another collection (`newsletter:{email}:meta`) may own. Empty values match nothing either. A
 * placeholder with no separator beside it (the pattern `{id}`) accepts any non-empty value.
 *
 * **Lookups by another field** (a hash field such as `email` when the key holds `id`) cannot use an index,
 * since Redis has none: the collection's keys are enumerated with SCAN over the pattern from the data map
 * (prefix and literal parts glob-escaped, the placeholder as `*`, never any value), read in pipelined batches
 * and compared exactly in Custodian. That costs O(keys of the collection) per call; set `scan: 'false'` to
 * refuse it (CST_ERR_CONNECTOR_UNSUPPORTED) on large key spaces and look up by the key field only.
 *
 * Redis keeps strings only: numbers match their decimal text (`42` finds `user:42`) and every value reads back
 * as a string (the key field is the text from the key). A missing hash field reads as null, and
 * null written to a hash field deletes it. Every write checks the key's type first in a Lua script, atomic
 * per key, so a key of another type that happens to match is never changed or deleted (it is skipped when
 * reading, too). updateRows counts rows whose stored values actually changed.
 */

/** Options of {@link RedisDataConnector}. */
export interface RedisDataConnectorOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). */
  readonly url: string;
  /** Time allowed to connect, in ms. Default 5000. */
  readonly connectTimeoutMs?: number | undefined;
  /**
   * Test and metrics hooks: `onScan` is told how many keys each SCAN / SSCAN reply held, `onRead` how many
   * keys each pipelined read of a scan page asked for.
   */
  readonly hooks?: { readonly onScan?: ((keys: number) => void) | undefined; readonly onRead?: ((keys: number) => void) | undefined } | undefined;
}

/** SCAN / SSCAN calls one page makes at most before it ends early (with a cursor to go on): a page's cost stays bounded on sparse key spaces. */
export const REDIS_SCAN_CALLS_PER_PAGE = 32;

type CollectionType = 'hash' | 'string' | 'set';

/** How one collection maps to keys, parsed from its `connector:` settings. */
interface Layout {
  readonly type: CollectionType;
  readonly collection: string;
  /** The field whose value is in the key (the placeholder), or `member` for sets. */
  readonly keyField: string;
  /** Key text before and after the value (prefix included); for sets, `before` is the whole key. */
  readonly before: string;
  readonly after: string;
  /** Characters a value may not contain (separators beside the placeholder). */
  readonly forbidden: readonly string[];
  /** Declared fields, when the data map lists them. */
  readonly fields: ReadonlySet<string> | undefined;
  readonly scan: boolean;
}

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_$-]*$/;
const PLACEHOLDER = /\{([^{}]*)\}/g;
const ALNUM = /^[A-Za-z0-9]$/;
const SCAN_COUNT = 1000;
const CURSOR_PREFIX = 'redis1.';
/** Largest cursor accepted back (pending key texts of one SCAN reply, base64url). */
const MAX_CURSOR_LENGTH = 4 * 1024 * 1024;

/**
 * Where a scan goes on: the SCAN / SSCAN cursor (null once the server said the walk is complete), and the key
 * texts the last reply held beyond the page (a reply may hold more keys than the page had room for).
 */
interface WalkCursor {
  readonly scan: string | null;
  readonly pending: readonly string[];
}

function encodeWalk(walk: WalkCursor): string {
  return CURSOR_PREFIX + Buffer.from(JSON.stringify([walk.scan, walk.pending])).toString('base64url');
}

function decodeWalk(text: string): WalkCursor {
  if (!text.startsWith(CURSOR_PREFIX) || text.length > MAX_CURSOR_LENGTH) return malformedCursor('redis');
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(text.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    return malformedCursor('redis');
  }
  if (
    !Array.isArray(parts) ||
    parts.length !== 2 ||
    !(parts[0] === null || (typeof parts[0] === 'string' && /^[1-9]\d{0,19}$/.test(parts[0]))) ||
    !Array.isArray(parts[1]) ||
    !parts[1].every((p) => typeof p === 'string')
  ) {
    return malformedCursor('redis');
  }
  return { scan: parts[0] as string | null, pending: parts[1] };
}

// TYPE answers a status reply, which Lua sees as a table { ok = 'hash' }.
const DELETE_SCRIPT = `local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('TYPE', k).ok == ARGV[1] then n = n + redis.call('DEL', k) end
end
return n`;

// ARGV: number of field/value pairs to set, the pairs, then the fields to delete. Answers 1 when a value changed.
const UPDATE_HASH_SCRIPT = `if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local n = tonumber(ARGV[1])
local changed = 0
for i = 0, n - 1 do
  local f, v = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  if redis.call('HGET', KEYS[1], f) ~= v then redis.call('HSET', KEYS[1], f, v); changed = 1 end
end
for i = 2 + 2 * n, #ARGV do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then changed = 1 end
end
return changed`;

// ARGV[1]: 'keep', 'set' (ARGV[2] is the new value) or 'del'. Answers 1 when the value changed.
const UPDATE_STRING_SCRIPT = `if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
if ARGV[1] == 'set' then
  if redis.call('GET', KEYS[1]) == ARGV[2] then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
if ARGV[1] == 'del' then redis.call('DEL', KEYS[1]); return 1 end
return 0`;

// ARGV[1]: the member; ARGV[2]: 'keep', 'del' or 'set' with ARGV[3] the new member. Answers 1 when it changed.
const UPDATE_SET_SCRIPT = `if redis.call('TYPE', KEYS[1]).ok ~= 'set' then return 0 end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] == 'del' then redis.call('SREM', KEYS[1], ARGV[1]); return 1 end
if ARGV[2] == 'set' and ARGV[3] ~= ARGV[1] then
  redis.call('SREM', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[1], ARGV[3])
  return 1
end
return 0`;

function schemaError(message: string, details: Record<string, unknown>): CustodianError {
  return new CustodianError('CST_ERR_CONNECTOR_SCHEMA', message, { details: { connector: 'redis', ...details } });
}

/** A URL with its password hidden, for errors. */
function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis:<unparsable url>';
  }
}

/** Parses and checks the `connector:` settings of a collection. */
function layoutOf(target: CollectionTarget): Layout {
  const options = target.options;
  const collection = target.name;
  const type = options.type ?? 'hash';
  if (type !== 'hash' && type !== 'string' && type !== 'set') {
    throw schemaError('a Redis collection type must be hash, string or set', { collection, setting: 'type' });
  }
  const prefix = options.prefix ?? '';
  const fields = options.fields === undefined ? undefined : new Set(options.fields.split(',').map((f) => f.trim()).filter((f) => f !== ''));
  const scan = options.scan !== 'false';
  if (type === 'set') {
    const key = options.key;
    if (key === undefined || key === '') throw schemaError(`the Redis set collection ${collection} needs connector.key, the key of the set`, { collection, setting: 'key' });
    return { type, collection, keyField: 'member', before: prefix + key, after: '', forbidden: [], fields, scan };
  }
  const pattern = options.keyPattern;
  if (pattern === undefined) throw schemaError(`the Redis collection ${collection} needs connector.keyPattern, e.g. "user:{id}"`, { collection, setting: 'keyPattern' });
  const placeholders = [...pattern.matchAll(PLACEHOLDER)];
  const only = placeholders[0];
  if (placeholders.length !== 1 || only === undefined || !FIELD_NAME.test(only[1]!)) {
    throw schemaError('connector.keyPattern must contain exactly one {field} placeholder naming a field', { collection, setting: 'keyPattern' });
  }
  const literalBefore = pattern.slice(0, only.index);
  const after = pattern.slice(only.index + only[0].length);
  if (/[{}]/.test(literalBefore) || /[{}]/.test(after)) {
    throw schemaError('connector.keyPattern may contain no braces besides its {field} placeholder', { collection, setting: 'keyPattern' });
  }
  const before = prefix + literalBefore;
  const forbidden = new Set<string>();
  const left = before.at(-1);
  const right = after.at(0);
  if (left !== undefined && !ALNUM.test(left)) forbidden.add(left);
  if (right !== undefined && !ALNUM.test(right)) forbidden.add(right);
  const keyField = only[1]!;
  fields?.add(keyField);
  return { type, collection, keyField, before, after, forbidden: [...forbidden], fields, scan };
}

/** The text a value is stored as. */
function textOf(value: KeyValue | null): string {
  return typeof value === 'number' ? String(value) : (value ?? '');
}

/** Whether `text` can be the variable part of a key (see "Key separators" above). */
function admissible(layout: Layout, text: string): boolean {
  return text !== '' && !layout.forbidden.some((c) => text.includes(c));
}

/** The key of the row whose key field is `value`, or undefined when the value cannot be one (it matches nothing). */
function keyOf(layout: Layout, value: KeyValue): string | undefined {
  if (typeof value !== 'string' && (typeof value !== 'number' || !Number.isFinite(value))) return undefined;
  const text = textOf(value);
  return admissible(layout, text) ? layout.before + text + layout.after : undefined;
}

/** Escapes glob characters, so that text from the data map matches itself in a SCAN pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function* batches<T>(items: readonly T[]): Generator<readonly T[]> {
  for (let i = 0; i < items.length; i += MAX_BATCH) yield items.slice(i, i + MAX_BATCH);
}

function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE');
}

/** The error a Redis failure becomes: the reply's error class (WRONGTYPE, NOPERM…) only, never its text. */
function redisError(err: unknown, url: string, operation: string): CustodianError {
  if (err instanceof CustodianError) return err;
  const e = err as { name?: unknown; message?: unknown; code?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  const details = { connector: 'redis', url, operation };
  if (e.name === 'ReplyError') {
    const reason = /^[A-Z]+/.exec(message)?.[0] ?? 'ERR';
    if (reason === 'NOAUTH' || reason === 'WRONGPASS' || reason === 'NOPERM') {
      return new CustodianError('CST_ERR_CONNECTOR_PERMISSION', 'Redis refused the credentials or the command', { details: { ...details, reason } });
    }
    return new CustodianError('CST_ERR_CONNECTOR_FAILED', `Redis refused ${operation}`, { details: { ...details, reason } });
  }
  const reason = typeof e.code === 'string' ? e.code : typeof e.name === 'string' ? e.name : 'unknown';
  return new CustodianError('CST_ERR_CONNECTOR_UNAVAILABLE', 'Redis could not be reached', { details: { ...details, reason } });
}

/** Replies of a pipeline; a WRONGTYPE reply becomes undefined (a key of another kind), other errors throw. */
function replies(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new Error('pipeline was not executed');
  return results.map(([err, value]) => {
    if (err === null) return value;
    if (isWrongType(err)) return undefined;
    throw err;
  });
}

/** One row found: its key, its key-field text, and the values read. */
interface Hit {
  readonly key: string;
  readonly keyText: string;
  readonly values: readonly (string | null)[];
}

/**
 * A {@link DataConnector} over one Redis database (see the module comment for the key mapping).
 *
 * @example
 * ```ts
 * const redis = await openRedisDataConnector('redis://127.0.0.1:6379/0');
 * const target = { name: 'newsletter', options: { keyPattern: 'newsletter:{email}', fields: 'email,name' } };
 * for await (const rows of redis.find(target, 'email', ['ada@example.com'], ['name'])) console.log(rows);
 * await redis.close();
 * ```
 */
export class RedisDataConnector implements DataConnector {
  readonly kind = 'redis';
  readonly #client: Redis;
  readonly #url: string;
  readonly #hooks: RedisDataConnectorOptions['hooks'];

  constructor(options: RedisDataConnectorOptions) {
    this.#url = displayUrl(options.url);
    this.#hooks = options.hooks;
    this.#client = new Redis(options.url, {
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5000,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    // Failures surface on the commands that meet them; the event only repeats them.
    this.#client.on('error', () => undefined);
  }

  /** Connects and checks that the server answers; throws CST_ERR_CONNECTOR_UNAVAILABLE or _PERMISSION. */
  async connect(): Promise<void> {
    try {
      await this.#client.connect();
      await this.#client.ping();
    } catch (err) {
      throw redisError(err, this.#url, 'connect');
    }
  }

  async *find(target: CollectionTarget, field: string, values: readonly KeyValue[], fields: readonly string[], options: { readonly signal?: AbortSignal } = {}): AsyncIterable<readonly Row[]> {
    const layout = layoutOf(target);
    this.#checkField(layout, field);
    const wanted = [...new Set(fields.filter((f) => f !== field))];
    for (const f of wanted) this.#checkField(layout, f);
    options.signal?.throwIfAborted();
    for await (const hits of this.#hits(layout, field, wanted, values, 'find', options.signal)) {
      const rows = hits.map((hit) => {
        const row: Record<string, unknown> = {};
        if (layout.type === 'set') row.member = hit.keyText;
        else {
          row[layout.keyField] = hit.keyText;
          if (field !== layout.keyField) row[field] = hit.values[0] ?? null;
          wanted.forEach((f, i) => {
            if (f !== layout.keyField) row[f] = hit.values[field === layout.keyField ? i : i + 1] ?? null;
          });
        }
        return row;
      });
      if (rows.length > 0) yield rows;
    }
  }

  /**
   * Breach scoping: one page of the collection's rows in SCAN order. The page goes on with the SCAN cursor over
   * the collection's pattern (SSCAN over the set for `set` collections) — never a pattern made from a value —
   * until it has `limit` rows, the walk is complete, or it made {@link REDIS_SCAN_CALLS_PER_PAGE} calls; the
   * fields of the keys found are read in pipelined batches. So a page costs O(limit + keys the server walked
   * for it), and a whole walk O(key space), instead of O(key space) per page. Keys a reply held beyond the page
   * travel in the cursor. SCAN's guarantee carries over: every key present for the whole walk comes; a key may
   * come twice (in two pages: within a page it is read once) if the key space is resized meanwhile (Redis
   * rehashing), and keys added or deleted meanwhile
   * may or may not come. A time window is CST_ERR_CONNECTOR_UNSUPPORTED (Redis has no index by time), and so is
   * a collection whose settings say `scan: false`.
   */
  async scan(target: CollectionTarget, query: ScanQuery, options: { readonly signal?: AbortSignal } = {}): Promise<ScanPage> {
    const layout = layoutOf(target);
    const checked = checkScan(query);
    this.#checkField(layout, checked.keyField);
    const wanted = [...new Set([checked.keyField, ...checked.fields].filter((f) => f !== layout.keyField))];
    for (const f of wanted) this.#checkField(layout, f);
    if (!layout.scan) {
      scanUnsupported(this.kind, `Redis collection ${layout.collection} forbids enumerating its keys (scan: false)`);
    }
    if (checked.window !== undefined) {
      scanUnsupported(this.kind, `Redis has no index by time, so collection ${layout.collection} cannot be scoped within a time window; scope it without from/to`);
    }
    const walk = checked.cursor === undefined ? { scan: '0', pending: [] } : decodeWalk(checked.cursor);
    let cursor = walk.scan;
    const pending = [...walk.pending];
    // A key SCAN returns twice within one page (the key space was resized) is read once.
    const queued = new Set(pending);
    const rows: Row[] = [];
    const match = globEscape(layout.before) + '*' + globEscape(layout.after);
    for (let calls = 0; ; ) {
      options.signal?.throwIfAborted();
      if (pending.length > 0) {
        const texts = pending.splice(0, Math.min(checked.limit - rows.length, MAX_BATCH));
        this.#hooks?.onRead?.(texts.length);
        // Keys deleted since SCAN saw them, or of another type, are not rows: they are left out.
        const hits = await this.#read(layout, undefined, wanted, texts.map((t) => (layout.type === 'set' ? layout.before + t : layout.before + t + layout.after)), 'scan');
        for (const hit of hits) {
          const row: Record<string, unknown> = { [layout.keyField]: hit.keyText };
          if (layout.type !== 'set') wanted.forEach((f, i) => (row[f] = hit.values[i] ?? null));
          rows.push(row);
        }
        if (rows.length >= checked.limit) break;
        continue;
      }
      if (cursor === null || calls >= REDIS_SCAN_CALLS_PER_PAGE) break;
      let found: string[];
      const count = Math.min(SCAN_COUNT, Math.max(16, checked.limit - rows.length));
      try {
        if (layout.type === 'set') [cursor, found] = await this.#client.sscan(layout.before, cursor, 'COUNT', count);
        else [cursor, found] = await this.#client.scan(cursor, 'MATCH', match, 'COUNT', count);
      } catch (err) {
        // SSCAN of a key of another type: the set collection has no members.
        if (!isWrongType(err)) throw redisError(err, this.#url, 'scan');
        [cursor, found] = ['0', []];
      }
      calls++;
      this.#hooks?.onScan?.(found.length);
      if (cursor === '0') cursor = null;
      // A key matching the glob may still belong to another collection (`p:{id}` also globs `p:1:meta`).
      for (const key of found) {
        const text = layout.type === 'set' ? key : key.length >= layout.before.length + layout.after.length ? key.slice(layout.before.length, key.length - layout.after.length) : undefined;
        if (text === undefined || !admissible(layout, text) || queued.has(text)) continue;
        queued.add(text);
        pending.push(text);
      }
    }
    return { rows, next: cursor === null && pending.length === 0 ? null : encodeWalk({ scan: cursor, pending }) };
  }

  async capabilities(target: CollectionTarget): Promise<ConnectorCapabilities> {
    return { scan: layoutOf(target).scan, scanWindow: false, retention: false };
  }

  /** Retention needs rows found by age: not possible here (CST_ERR_CONNECTOR_UNSUPPORTED; docs/retention.md). */
  async findExpired(): Promise<ScanPage> {
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
    const layout = layoutOf(target);
    this.#checkField(layout, keyField);
    let count = 0;
    for await (const hits of this.#hits(layout, keyField, [], keys, 'deleteRows', undefined)) {
      try {
        if (layout.type === 'set') count += await this.#client.srem(layout.before, ...hits.map((h) => h.keyText));
        else count += Number(await this.#client.eval(DELETE_SCRIPT, hits.length, ...hits.map((h) => h.key), layout.type));
      } catch (err) {
        throw redisError(err, this.#url, 'deleteRows');
      }
    }
    return count;
  }

  async updateRows(target: CollectionTarget, keyField: string, changes: readonly RowChange[]): Promise<number> {
    const layout = layoutOf(target);
    this.#checkField(layout, keyField);
    for (const change of changes) {
      for (const [f, v] of Object.entries(change.set)) {
        if (v === undefined) continue;
        this.#checkField(layout, f);
        if (f === layout.keyField && layout.type !== 'set') {
          throw new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', `the key field ${f} of a Redis hash or string collection cannot be changed (it is part of the key): erase it with delete_row`, {
            details: { connector: 'redis', collection: layout.collection, field: f },
          });
        }
      }
    }
    // Changes by the text of their key; several changes of one key apply in order.
    const byKey = new Map<string, RowChange[]>();
    for (const change of changes) {
      const text = textOf(change.key);
      const list = byKey.get(text);
      if (list === undefined) byKey.set(text, [change]);
      else list.push(change);
    }
    let count = 0;
    for await (const hits of this.#hits(layout, keyField, [], [...new Set(changes.map((c) => c.key))], 'updateRows', undefined)) {
      const pipeline = this.#client.pipeline();
      for (const hit of hits) {
        const matched = keyField === layout.keyField ? hit.keyText : (hit.values[0] ?? '');
        for (const change of byKey.get(matched) ?? []) {
          const entries = Object.entries(change.set).filter(([, v]) => v !== undefined);
          if (layout.type === 'hash') {
            const set = entries.filter(([, v]) => v !== null);
            const del = entries.filter(([, v]) => v === null).map(([f]) => f);
            pipeline.eval(UPDATE_HASH_SCRIPT, 1, hit.key, String(set.length), ...set.flatMap(([f, v]) => [f, textOf(v)]), ...del);
          } else if (layout.type === 'string') {
            const value = change.set.value;
            pipeline.eval(UPDATE_STRING_SCRIPT, 1, hit.key, value === undefined ? 'keep' : value === null ? 'del' : 'set', textOf(value ?? null));
          } else {
            const member = change.set.member;
            const action = member === undefined ? 'keep' : member === null ? 'del' : admissible(layout, textOf(member)) ? 'set' : 'keep';
            pipeline.eval(UPDATE_SET_SCRIPT, 1, layout.before, hit.keyText, action, textOf(member ?? null));
          }
        }
      }
      try {
        // Several changes of one row count once per change that altered it.
        for (const n of replies(await pipeline.exec())) count += Number(n ?? 0);
      } catch (err) {
        throw redisError(err, this.#url, 'updateRows');
      }
    }
    return count;
  }

  async ping(): Promise<void> {
    try {
      await this.#client.ping();
    } catch (err) {
      throw redisError(err, this.#url, 'ping');
    }
  }

  async close(): Promise<void> {
    if (this.#client.status === 'end') return;
    // QUIT only on a live connection; otherwise stop reconnecting at once.
    if (this.#client.status !== 'ready') return this.#client.disconnect();
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }

  toJSON(): unknown {
    return { kind: this.kind, url: this.#url };
  }

  /**
   * The rows of `layout` whose `field` is one of `values`, in batches of at most {@link MAX_BATCH}, with the
   * values of `field` (unless it is the key field) and then of `wanted` read.
   */
  async *#hits(layout: Layout, field: string, wanted: readonly string[], values: readonly KeyValue[], operation: string, signal: AbortSignal | undefined): AsyncGenerator<readonly Hit[]> {
    if (values.length === 0) return;
    if (field === layout.keyField) {
      const seen = new Set<string>();
      const keys: string[] = [];
      for (const v of values) {
        const key = keyOf(layout, v);
        if (key !== undefined && !seen.has(key)) {
          seen.add(key);
          keys.push(key);
        }
      }
      for (const batch of batches(keys)) {
        signal?.throwIfAborted();
        const hits = await this.#read(layout, undefined, wanted, batch, operation);
        if (hits.length > 0) yield hits;
      }
      return;
    }
    if (layout.type === 'set' || (layout.type === 'string' && field !== 'value')) {
      throw schemaError(`no field ${field} in the Redis ${layout.type} collection ${layout.collection}`, { collection: layout.collection, field });
    }
    if (!layout.scan) {
      throw new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', `the Redis collection ${layout.collection} is found by its key field ${layout.keyField} only (scan: false)`, {
        details: { connector: 'redis', collection: layout.collection, field, keyField: layout.keyField },
      });
    }
    const texts = new Set(values.map(textOf));
    const match = globEscape(layout.before) + '*' + globEscape(layout.after);
    let cursor = '0';
    do {
      signal?.throwIfAborted();
      let page: string[];
      try {
        [cursor, page] = await this.#client.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      } catch (err) {
        throw redisError(err, this.#url, operation);
      }
      // A key matching the glob may still belong to another collection (`p:{id}` also globs `p:1:meta`).
      const keys = page.filter((k) => k.length >= layout.before.length + layout.after.length && admissible(layout, k.slice(layout.before.length, k.length - layout.after.length)));
      for (const batch of batches(keys)) {
        const hits = (await this.#read(layout, field, wanted, batch, operation)).filter((h) => h.values[0] !== null && texts.has(h.values[0]!));
        if (hits.length > 0) yield hits;
      }
    } while (cursor !== '0');
  }

  /** Reads `field` (when not the key field) and `wanted` of existing rows among `keys`, one round trip. */
  async #read(layout: Layout, field: string | undefined, wanted: readonly string[], keys: readonly string[], operation: string): Promise<Hit[]> {
    const read = field === undefined ? wanted : [field, ...wanted];
    const pipeline = this.#client.pipeline();
    for (const key of keys) {
      if (layout.type === 'hash') {
        pipeline.exists(key);
        if (read.length > 0) pipeline.hmget(key, ...read);
      } else if (layout.type === 'string') {
        pipeline.get(key);
      } else {
        pipeline.sismember(layout.before, key.slice(layout.before.length));
      }
    }
    let got: unknown[];
    try {
      got = replies(await pipeline.exec());
    } catch (err) {
      throw redisError(err, this.#url, operation);
    }
    const hits: Hit[] = [];
    let at = 0;
    for (const key of keys) {
      const keyText = key.slice(layout.before.length, key.length - layout.after.length);
      if (layout.type === 'hash') {
        const exists = got[at++] === 1;
        const values = read.length > 0 ? (got[at++] as (string | null)[] | undefined) : [];
        if (exists && values !== undefined) hits.push({ key, keyText, values });
      } else if (layout.type === 'string') {
        const value = got[at++] as string | null | undefined;
        if (typeof value === 'string') hits.push({ key, keyText, values: read.map(() => value) });
      } else if (got[at++] === 1) {
        hits.push({ key, keyText, values: [] });
      }
    }
    return hits;
  }

  #checkField(layout: Layout, field: string): void {
    const known =
      layout.type === 'set'
        ? field === 'member'
        : layout.type === 'string'
          ? field === 'value' || field === layout.keyField
          : FIELD_NAME.test(field) && (layout.fields === undefined || layout.fields.has(field));
    if (!known) {
      const name = FIELD_NAME.test(field) ? field : '(not a field name)';
      throw schemaError(`no field ${name} in the Redis ${layout.type} collection ${layout.collection}`, { collection: layout.collection, field: name });
    }
  }
}

/**
 * Opens a {@link RedisDataConnector} for `redis://host:port/db` (or `rediss://`) and checks that it answers.
 * Throws CST_ERR_CONNECTOR_SCHEMA for a malformed URL, CST_ERR_CONNECTOR_UNAVAILABLE or _PERMISSION when the
 * server cannot be used.
 */
export async function openRedisDataConnector(url: string): Promise<DataConnector> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw schemaError('the Redis connection URL is malformed', { url: displayUrl(url) });
  }
  if ((parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '' || !/^(?:\/\d{0,5})?$/.test(parsed.pathname)) {
    throw schemaError('a Redis connection URL is redis://[user:password@]host[:port][/db]', { url: displayUrl(url) });
  }
  const connector = new RedisDataConnector({ url });
  try {
    await connector.connect();
  } catch (err) {
    await connector.close();
    throw err;
  }
  return connector;
}
