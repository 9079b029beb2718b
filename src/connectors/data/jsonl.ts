import { randomBytes } from 'node:crypto';
import { constants, createReadStream, type Stats } from 'node:fs';
import { access, open, readFile, readdir, realpath, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CustodianError } from '../../core/index.js';
import { MAX_BATCH, checkScan, expiredScan, instantOf, type CheckedScan, type CollectionTarget, type DataConnector, type DueCondition, type ExpiredQuery, type ScanQuery, type KeyValue, type Row, type RowChange } from './data-connector.js';

/**
 * The JSONL (NDJSON) data connector (docs/requests.md (Connectors beyond SQL)): personal data kept in files of one JSON object
 * per line, in one directory named by the connection URL (`jsonl:<directory>` or `file:<directory>`).
 *
 * A collection is one file of that directory: its `connector.file` setting (a path relative to the directory,
 * default `<collection>.jsonl`). Absolute paths, `..` segments that leave the directory and symbolic links
 * that resolve outside it are refused with CST_ERR_CONNECTOR_SCHEMA, as is a missing file. `connector.fields`
 * (comma-separated) declares the fields; when given, other names are CST_ERR_CONNECTOR_SCHEMA.
 *
 * **Reading** streams the file line by line (O(lines) time, O(one line + one batch) memory) and matches exact
 * values of top-level fields, or of nested ones by dotted path (`address.city`; a top-level key that itself
 * contains the dots wins). Strings and numbers match their text both ways (`42` matches `"42"`), nothing else
 * matches (no case folding, no patterns); null, booleans, arrays and objects never match.
 *
 * **Writing** (deleteRows, updateRows) rewrites the file atomically: the new content goes to a temporary file
 * in the same directory, which is fsynced, renamed over the original, and the directory fsynced, so a crash
 * at any point leaves either the old file or the new one, never a mix; a leftover temporary file is removed by
 * the next writer. When nothing changes the file is not rewritten. Unchanged lines are copied byte for byte.
 * Writers are serialised per file: within a process by a queue, across processes by an exclusive lock file
 * (`.<file>.lock`, created with O_EXCL, holding pid and host). A lock is stale when its process is gone (same
 * host) or it was not refreshed for `staleLockMs` (holders refresh it while they write); a stale lock is
 * broken. Readers take no lock: a rename never shows them half a file. Locks assume one host or a file system
 * with atomic O_EXCL (not NFSv2).
 *
 * **Malformed lines** (not JSON, or not an object) never match, are kept as they are by rewrites, and are
 * reported to `onMalformedLine` with the file and line number (never their content).
 */

/** A malformed line met while reading or rewriting a collection. */
export interface MalformedLine {
  readonly collection: string;
  /** The file, relative to the connector's directory. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
}

/** Options of {@link JsonlDataConnector}. */
export interface JsonlDataConnectorOptions {
  /** The directory holding the collection files. */
  readonly directory: string;
  /** Told of every malformed line met. Default: a process warning naming the file and line. */
  readonly onMalformedLine?: ((line: MalformedLine) => void) | undefined;
  /** How long a writer waits for another writer's lock. Default 30 s. */
  readonly lockTimeoutMs?: number | undefined;
  /** Age after which a lock that was not refreshed is stale. Default 60 s (holders refresh every third of it). */
  readonly staleLockMs?: number | undefined;
  /** Test hooks: `beforeRename` runs after the temporary file is written and fsynced, before the rename. */
  readonly hooks?: { readonly beforeRename?: ((tempPath: string) => void | Promise<void>) | undefined } | undefined;
}

/** A collection file, resolved and checked. */
interface CollectionFile {
  readonly collection: string;
  /** Real path of the file (symbolic links resolved). */
  readonly path: string;
  /** Path relative to the connector's directory, for errors and reports. */
  readonly display: string;
  readonly fields: ReadonlySet<string> | undefined;
}

const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
const DEFAULT_STALE_LOCK_MS = 60_000;
const NEWLINE = 0x0a;
const FIELD_PATH = /^[A-Za-z_$][A-Za-z0-9_$-]*(?:\.[A-Za-z_$][A-Za-z0-9_$-]*)*$/;

/** Files being rewritten by this process: real path → the tail of its queue of writers. */
const queues = new Map<string, Promise<unknown>>();

function schemaError(message: string, details: Record<string, unknown>): CustodianError {
  return new CustodianError('CST_ERR_CONNECTOR_SCHEMA', message, { details: { connector: 'jsonl', ...details } });
}

/** The error a file-system failure becomes: its code only, never its message (it quotes paths). */
function fsError(err: unknown, operation: string, file?: string): CustodianError {
  if (err instanceof CustodianError) return err;
  const code = (err as { code?: unknown }).code;
  const reason = typeof code === 'string' ? code : 'unknown';
  const details = { connector: 'jsonl', operation, reason, ...(file === undefined ? {} : { file }) };
  if (reason === 'EACCES' || reason === 'EPERM' || reason === 'EROFS') return new CustodianError('CST_ERR_CONNECTOR_PERMISSION', `the JSONL directory refused ${operation}`, { details });
  if (reason === 'ENOENT' || reason === 'ENOTDIR' || reason === 'EIO' || reason === 'ESTALE') {
    return new CustodianError('CST_ERR_CONNECTOR_UNAVAILABLE', `the JSONL directory is not available for ${operation}`, { details });
  }
  return new CustodianError('CST_ERR_CONNECTOR_FAILED', `${operation} failed on the JSONL directory`, { details, cause: err });
}

/** Whether `child` is `root` or inside it (both real, absolute paths). */
function isInside(root: string, child: string): boolean {
  const rel = relative(root, child);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** The lines of a file as raw bytes (without the `\n`), so lines that are not UTF-8 or JSON survive rewrites. */
async function* lines(path: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
  let pending: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      let start = 0;
      for (let at = chunk.indexOf(NEWLINE); at >= 0; at = chunk.indexOf(NEWLINE, start)) {
        const piece = chunk.subarray(start, at);
        yield pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
        pending = [];
        start = at + 1;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
    if (pending.length > 0) yield Buffer.concat(pending);
  } finally {
    stream.destroy();
  }
}

/** A line parsed: the object, `blank`, or `malformed`. */
function parse(line: Buffer): Record<string, unknown> | 'blank' | 'malformed' {
  const text = line.toString('utf8');
  if (text.trim() === '') return 'blank';
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : 'malformed';
  } catch {
    return 'malformed';
  }
}

/** The value at `path`: the top-level key of that exact name, else the dotted path through nested objects. */
function getPath(row: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(row, path)) return row[path];
  let at: unknown = row;
  for (const part of path.split('.')) {
    if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/** Sets `path` to `value` (creating missing objects on the way); false when a non-object is in the way. */
function setPath(row: Record<string, unknown>, path: string, value: unknown): boolean {
  if (Object.hasOwn(row, path) || !path.includes('.')) {
    row[path] = value;
    return true;
  }
  const parts = path.split('.');
  let at: Record<string, unknown> = row;
  for (const part of parts.slice(0, -1)) {
    const next = Object.hasOwn(at, part) ? at[part] : undefined;
    if (next === undefined) at[part] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) return false;
    at = at[part] as Record<string, unknown>;
  }
  at[parts.at(-1)!] = value;
  return true;
}

/** The text a value matches by, or undefined when it cannot match (null, booleans, objects). */
function matchText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Total order of key values for keyset pages: numbers (numerically) before strings (by UTF-16 code units). */
function compareKeys(a: KeyValue, b: KeyValue): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether the row's age field holds an instant strictly before `cutoffMs` (see {@link instantOf}). */
function isDue(row: Record<string, unknown>, ageField: string, cutoffMs: number): boolean {
  const at = instantOf(getPath(row, ageField));
  return at !== undefined && at < cutoffMs;
}

function cutoffOf(instant: string): number {
  const ms = instantOf(instant);
  if (ms === undefined) throw new CustodianError('CST_ERR_VALIDATION', 'the retention cutoff is not an instant', { details: { issues: [{ path: 'cutoff', message: 'invalid' }] } });
  return ms;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code === 'EPERM';
  }
}

/**
 * A {@link DataConnector} over a directory of JSONL files (see the module comment).
 *
 * @example
 * ```ts
 * const files = await openJsonlDataConnector('jsonl:/var/lib/app/exports');
 * const target = { name: 'signups', options: { file: 'signups.ndjson', fields: 'email,name' } };
 * await files.deleteRows(target, 'email', ['ada@example.com']);
 * ```
 */
export class JsonlDataConnector implements DataConnector {
  readonly kind = 'jsonl';
  readonly #directory: string;
  #root: string | undefined;
  readonly #onMalformed: (line: MalformedLine) => void;
  readonly #lockTimeoutMs: number;
  readonly #staleLockMs: number;
  readonly #beforeRename: ((tempPath: string) => void | Promise<void>) | undefined;

  constructor(options: JsonlDataConnectorOptions) {
    this.#directory = resolve(options.directory);
    this.#onMalformed =
      options.onMalformedLine ??
      ((m) => process.emitWarning(`malformed JSONL line kept as is: ${m.file} line ${m.line}`, { code: 'CUSTODIAN_JSONL_MALFORMED' }));
    this.#lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.#staleLockMs = options.staleLockMs ?? DEFAULT_STALE_LOCK_MS;
    this.#beforeRename = options.hooks?.beforeRename;
  }

  async *find(target: CollectionTarget, field: string, values: readonly KeyValue[], fields: readonly string[], options: { readonly signal?: AbortSignal } = {}): AsyncIterable<readonly Row[]> {
    const file = await this.#file(target);
    this.#checkField(file, field);
    const wanted = [...new Set(fields.filter((f) => f !== field))];
    for (const f of wanted) this.#checkField(file, f);
    options.signal?.throwIfAborted();
    if (values.length === 0) return;
    const texts = new Set(values.map(String));
    let batch: Row[] = [];
    let number = 0;
    try {
      for await (const line of lines(file.path, options.signal)) {
        number++;
        const row = parse(line);
        if (row === 'blank') continue;
        if (row === 'malformed') {
          this.#onMalformed({ collection: file.collection, file: file.display, line: number });
          continue;
        }
        const value = getPath(row, field);
        const text = matchText(value);
        if (text === undefined || !texts.has(text)) continue;
        const out: Record<string, unknown> = { [field]: value };
        for (const f of wanted) out[f] = getPath(row, f) ?? null;
        batch.push(out);
        if (batch.length === MAX_BATCH) {
          yield batch;
          batch = [];
        }
      }
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw fsError(err, 'find', file.display);
    }
    if (batch.length > 0) yield batch;
  }

  async deleteRows(target: CollectionTarget, keyField: string, keys: readonly KeyValue[]): Promise<number> {
    const file = await this.#file(target);
    this.#checkField(file, keyField);
    if (keys.length === 0) return 0;
    const texts = new Set(keys.map(String));
    return this.#rewrite(file, 'deleteRows', (row) => {
      const text = matchText(getPath(row, keyField));
      return text !== undefined && texts.has(text) ? 'delete' : 'keep';
    });
  }

  async scan(target: CollectionTarget, query: ScanQuery, options: { readonly signal?: AbortSignal } = {}): Promise<readonly Row[]> {
    return this.#page(target, checkScan(query), 'scan', options.signal);
  }

  async findExpired(target: CollectionTarget, query: ExpiredQuery, options: { readonly signal?: AbortSignal } = {}): Promise<readonly Row[]> {
    return this.#page(target, checkScan(expiredScan(query)), 'findExpired', options.signal);
  }

  /**
   * One page in key order (scan and findExpired): a streaming pass over the file keeping the `limit` smallest
   * keys after `afterKey` whose time field lies in the window (O(lines × log limit) time, O(limit) memory per
   * page; keys that are not strings or numbers are skipped, as they could not be deleted or resumed by key).
   * The window compares instants parsed as {@link instantOf} does (ISO-8601 text, epoch seconds).
   */
  async #page(target: CollectionTarget, query: CheckedScan, operation: string, signal: AbortSignal | undefined): Promise<readonly Row[]> {
    const file = await this.#file(target);
    const window = query.window;
    for (const f of [query.keyField, ...(window === undefined ? [] : [window.field]), ...query.fields]) this.#checkField(file, f);
    const from = window?.from === undefined ? undefined : cutoffOf(window.from);
    const to = window?.to === undefined ? undefined : cutoffOf(window.to);
    const inWindow = (row: Record<string, unknown>): boolean => {
      if (window === undefined) return true;
      const at = instantOf(getPath(row, window.field));
      return at !== undefined && (from === undefined || at >= from) && (to === undefined || at < to);
    };
    const limit = query.limit;
    const wanted = [...new Set(query.fields.filter((f) => f !== query.keyField))];
    // Sorted by key, at most `limit` long; the largest is dropped when a smaller one comes.
    const page: { key: KeyValue; row: Row }[] = [];
    try {
      for await (const line of lines(file.path, signal)) {
        const row = parse(line);
        if (row === 'blank' || row === 'malformed') continue;
        const key = getPath(row, query.keyField);
        if (typeof key !== 'string' && (typeof key !== 'number' || !Number.isFinite(key))) continue;
        if (query.afterKey !== undefined && compareKeys(key, query.afterKey) <= 0) continue;
        if (page.length === limit && compareKeys(key, page[page.length - 1]!.key) >= 0) continue;
        if (!inWindow(row)) continue;
        const out: Record<string, unknown> = { [query.keyField]: key };
        for (const f of wanted) out[f] = getPath(row, f) ?? null;
        let lo = 0;
        let hi = page.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (compareKeys(page[mid]!.key, key) < 0) lo = mid + 1;
          else hi = mid;
        }
        page.splice(lo, 0, { key, row: out });
        if (page.length > limit) page.pop();
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      throw fsError(err, operation, file.display);
    }
    return page.map((p) => p.row);
  }

  async countExpired(target: CollectionTarget, due: DueCondition, options: { readonly from?: string; readonly signal?: AbortSignal } = {}): Promise<number> {
    const file = await this.#file(target);
    this.#checkField(file, due.ageField);
    const cutoff = cutoffOf(due.cutoff);
    const from = options.from === undefined ? undefined : cutoffOf(options.from);
    let n = 0;
    try {
      for await (const line of lines(file.path, options.signal)) {
        const row = parse(line);
        if (row === 'blank' || row === 'malformed') continue;
        const at = instantOf(getPath(row, due.ageField));
        if (at !== undefined && at < cutoff && (from === undefined || at >= from)) n++;
      }
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw fsError(err, 'countExpired', file.display);
    }
    return n;
  }

  async deleteExpired(target: CollectionTarget, keyField: string, keys: readonly KeyValue[], due: DueCondition): Promise<number> {
    const file = await this.#file(target);
    this.#checkField(file, keyField);
    this.#checkField(file, due.ageField);
    const cutoff = cutoffOf(due.cutoff);
    if (keys.length === 0) return 0;
    const texts = new Set(keys.map(String));
    return this.#rewrite(file, 'deleteExpired', (row) => {
      const text = matchText(getPath(row, keyField));
      return text !== undefined && texts.has(text) && isDue(row, due.ageField, cutoff) ? 'delete' : 'keep';
    });
  }

  async updateExpired(target: CollectionTarget, keyField: string, changes: readonly RowChange[], due: DueCondition): Promise<number> {
    return this.#update(target, keyField, changes, due);
  }

  async updateRows(target: CollectionTarget, keyField: string, changes: readonly RowChange[]): Promise<number> {
    return this.#update(target, keyField, changes, undefined);
  }

  async #update(target: CollectionTarget, keyField: string, changes: readonly RowChange[], due: DueCondition | undefined): Promise<number> {
    const file = await this.#file(target);
    this.#checkField(file, keyField);
    if (due !== undefined) this.#checkField(file, due.ageField);
    const cutoff = due === undefined ? undefined : cutoffOf(due.cutoff);
    for (const change of changes) for (const f of Object.keys(change.set)) this.#checkField(file, f);
    if (changes.length === 0) return 0;
    const byKey = new Map<string, RowChange[]>();
    for (const change of changes) {
      const text = String(change.key);
      const list = byKey.get(text);
      if (list === undefined) byKey.set(text, [change]);
      else list.push(change);
    }
    return this.#rewrite(file, due === undefined ? 'updateRows' : 'updateExpired', (row) => {
      const text = matchText(getPath(row, keyField));
      const mine = text === undefined ? undefined : byKey.get(text);
      if (mine === undefined) return 'keep';
      if (due !== undefined && !isDue(row, due.ageField, cutoff!)) return 'keep';
      let changed = false;
      for (const change of mine) {
        for (const [path, value] of Object.entries(change.set)) {
          if (value === undefined) continue;
          const old = getPath(row, path);
          // A missing field already reads as null: clearing it is no change.
          if (value === null ? old === undefined || old === null : old === value) continue;
          if (setPath(row, path, value)) changed = true;
        }
      }
      return changed ? 'changed' : 'keep';
    });
  }

  async ping(): Promise<void> {
    const root = await this.#realRoot();
    try {
      await access(root, constants.R_OK | constants.W_OK);
    } catch (err) {
      throw fsError(err, 'ping');
    }
  }

  async close(): Promise<void> {
    // No resources are held between calls.
  }

  toJSON(): unknown {
    return { kind: this.kind, directory: this.#directory };
  }

  async #realRoot(): Promise<string> {
    if (this.#root !== undefined) return this.#root;
    try {
      const root = await realpath(this.#directory);
      if (!(await stat(root)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      this.#root = root;
      return root;
    } catch (err) {
      throw fsError(err, 'open');
    }
  }

  /** Resolves the file of a collection, refusing any path that leaves the directory. */
  async #file(target: CollectionTarget): Promise<CollectionFile> {
    const root = await this.#realRoot();
    const collection = target.name;
    const name = target.options.file ?? `${collection}.jsonl`;
    const fields = target.options.fields === undefined ? undefined : new Set(target.options.fields.split(',').map((f) => f.trim()).filter((f) => f !== ''));
    const refuse = (why: string): CustodianError => schemaError(`the file of collection ${collection} ${why}`, { collection, setting: 'file' });
    if (name === '' || name.includes('\0') || isAbsolute(name) || /^[\\/]/.test(name) || /^[A-Za-z]:/.test(name)) throw refuse('must be a relative path inside the directory');
    const wanted = resolve(root, name);
    if (!isInside(root, wanted) || name.split(/[\\/]/).includes('..')) throw refuse('must be a relative path inside the directory (no ..)');
    let real: string;
    try {
      real = await realpath(wanted);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw schemaError(`no file for collection ${collection} in the JSONL directory`, { collection, file: name });
      throw fsError(err, 'open', name);
    }
    // A symbolic link (of the file or of a directory on the way) may point anywhere: its target must be inside.
    if (!isInside(root, real)) throw refuse('resolves outside the directory (symbolic link)');
    const info = await stat(real).catch((err: unknown) => {
      throw fsError(err, 'open', name);
    });
    if (!info.isFile()) throw refuse('is not a regular file');
    return { collection, path: real, display: relative(root, real), fields };
  }

  #checkField(file: CollectionFile, field: string): void {
    const declared = (f: string): boolean => {
      if (file.fields === undefined) return true;
      // A nested path is declared when it or one of its ancestors is.
      for (let p = f; ; p = p.slice(0, p.lastIndexOf('.'))) {
        if (file.fields.has(p)) return true;
        if (!p.includes('.')) return false;
      }
    };
    if (!FIELD_PATH.test(field) || !declared(field)) {
      const name = FIELD_PATH.test(field) ? field : '(not a field path)';
      throw schemaError(`no field ${name} in collection ${file.collection}`, { collection: file.collection, field: name });
    }
  }

  /**
   * Rewrites `file` atomically under its lock, passing each row to `decide` (which may change it in place), and
   * resolves to how many rows were deleted or changed. Malformed and blank lines are copied as they are.
   */
  async #rewrite(file: CollectionFile, operation: string, decide: (row: Record<string, unknown>) => 'keep' | 'delete' | 'changed'): Promise<number> {
    return this.#serialised(file, async () => {
      const dir = dirname(file.path);
      const base = basename(file.path);
      await this.#removeOrphans(dir, base);
      const temp = join(dir, `.${base}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
      let renamed = false;
      try {
        const mode = (await stat(file.path)).mode & 0o7777;
        const out = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
        let count = 0;
        try {
          await out.chmod(mode);
          let buffer: Buffer[] = [];
          let size = 0;
          let number = 0;
          for await (const line of lines(file.path)) {
            number++;
            const row = parse(line);
            let bytes: Buffer = line;
            if (row === 'malformed') this.#onMalformed({ collection: file.collection, file: file.display, line: number });
            else if (row !== 'blank') {
              const verdict = decide(row);
              if (verdict === 'delete') {
                count++;
                continue;
              }
              if (verdict === 'changed') {
                count++;
                // Keep a CRLF line ending as it was.
                bytes = Buffer.from(JSON.stringify(row) + (line.at(-1) === 0x0d ? '\r' : ''), 'utf8');
              }
            }
            buffer.push(bytes, Buffer.from([NEWLINE]));
            size += bytes.length + 1;
            if (size >= 256 * 1024) {
              await out.writev(buffer);
              buffer = [];
              size = 0;
            }
          }
          if (buffer.length > 0) await out.writev(buffer);
          if (count > 0) await out.sync();
        } finally {
          await out.close();
        }
        if (count === 0) return 0;
        await this.#beforeRename?.(temp);
        await rename(temp, file.path);
        renamed = true;
        // The rename is durable only once the directory entry is on disk.
        const dh = await open(dir, constants.O_RDONLY);
        try {
          await dh.sync();
        } finally {
          await dh.close();
        }
        return count;
      } catch (err) {
        throw fsError(err, operation, file.display);
      } finally {
        if (!renamed) await unlink(temp).catch(() => undefined);
      }
    });
  }

  /** Removes temporary files left by writers that crashed (called with the lock held). */
  async #removeOrphans(dir: string, base: string): Promise<void> {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith(`.${base}.`) && name.endsWith('.tmp')) await unlink(join(dir, name)).catch(() => undefined);
    }
  }

  /** Runs `fn` after earlier writers of the same file in this process, holding the file's lock file. */
  async #serialised<T>(file: CollectionFile, fn: () => Promise<T>): Promise<T> {
    const previous = queues.get(file.path) ?? Promise.resolve();
    const run = previous.then(
      () => this.#locked(file, fn),
      () => this.#locked(file, fn),
    );
    const tail = run.catch(() => undefined);
    queues.set(file.path, tail);
    try {
      return await run;
    } finally {
      if (queues.get(file.path) === tail) queues.delete(file.path);
    }
  }

  async #locked<T>(file: CollectionFile, fn: () => Promise<T>): Promise<T> {
    const lockPath = join(dirname(file.path), `.${basename(file.path)}.lock`);
    await this.#acquire(lockPath, file);
    // Holders refresh the lock so that a long rewrite is not taken for a crashed one.
    const refresh = setInterval(() => {
      const now = new Date();
      utimes(lockPath, now, now).catch(() => undefined);
    }, Math.max(10, Math.floor(this.#staleLockMs / 3)));
    refresh.unref();
    try {
      return await fn();
    } finally {
      clearInterval(refresh);
      await unlink(lockPath).catch(() => undefined);
    }
  }

  async #acquire(lockPath: string, file: CollectionFile): Promise<void> {
    const deadline = Date.now() + this.#lockTimeoutMs;
    const content = JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() });
    for (let attempt = 0; ; attempt++) {
      try {
        const fh = await open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
        try {
          await fh.writeFile(content);
        } finally {
          await fh.close();
        }
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EEXIST') throw fsError(err, 'lock', file.display);
      }
      if (await this.#breakIfStale(lockPath)) continue;
      if (Date.now() >= deadline) {
        throw new CustodianError('CST_ERR_CONNECTOR_UNAVAILABLE', `the file of collection ${file.collection} is locked by another writer`, {
          details: { connector: 'jsonl', file: file.display, reason: 'locked' },
        });
      }
      await sleep(Math.min(250, 10 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
    }
  }

  /** Removes the lock when its holder is gone or stopped refreshing it; true when it was removed. */
  async #breakIfStale(lockPath: string): Promise<boolean> {
    let before: Stats | undefined;
    let holder: { pid?: unknown; host?: unknown } = {};
    try {
      before = await stat(lockPath);
      holder = JSON.parse(await readFile(lockPath, 'utf8')) as typeof holder;
    } catch {
      // Gone already (retry at once), or being written (not stale yet: judged by age below).
      if (before === undefined) return true;
    }
    const dead = holder.host === hostname() && typeof holder.pid === 'number' && holder.pid !== process.pid && !isAlive(holder.pid);
    const old = Date.now() - before.mtimeMs > this.#staleLockMs;
    if (!dead && !old) return false;
    // Only the lock judged stale is removed, not one a faster writer created meanwhile (same inode and mtime).
    const now = await stat(lockPath).catch(() => undefined);
    if (now === undefined) return true;
    if (now.ino !== before.ino || now.mtimeMs !== before.mtimeMs) return false;
    await unlink(lockPath).catch(() => undefined);
    return true;
  }
}

/**
 * Opens a {@link JsonlDataConnector} for `jsonl:<directory>`, `file:<directory>` or `file:///<directory>`
 * (relative paths from the working directory) and checks that the directory exists.
 */
export async function openJsonlDataConnector(url: string, options: Omit<JsonlDataConnectorOptions, 'directory'> = {}): Promise<DataConnector> {
  let directory: string;
  if (url.startsWith('file://')) {
    try {
      directory = fileURLToPath(url);
    } catch {
      throw schemaError('the file: URL is malformed', { setting: 'connection' });
    }
  } else if (url.startsWith('jsonl:') || url.startsWith('file:')) {
    directory = url.slice(url.indexOf(':') + 1);
    if (directory.startsWith('//')) directory = directory.slice(2);
  } else {
    throw schemaError('a JSONL connection URL is jsonl:<directory> or file:<directory>', { setting: 'connection' });
  }
  if (directory === '') throw schemaError('a JSONL connection URL needs the path of a directory', { setting: 'connection' });
  const connector = new JsonlDataConnector({ ...options, directory });
  await connector.ping();
  return connector;
}
