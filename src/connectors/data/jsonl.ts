import { createHash, randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { access, open, readFile, readdir, realpath, rename, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CustodianError } from '../../core/index.js';
import { ALL_CAPABILITIES, MAX_BATCH, checkScan, expiredScan, instantOf, malformedCursor, type CheckedScan, type CollectionTarget, type ConnectorCapabilities, type DataConnector, type DueCondition, type ExpiredQuery, type KeyValue, type Row, type RowChange, type ScanPage, type ScanQuery } from './data-connector.js';

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
 * **Pages** (scan, findExpired) come in file order and resume at a byte offset: a page reads from its cursor's
 * offset until it has `limit` rows (or has read `pageBytes`), so it costs O(its own lines), not O(file). The
 * cursor names the file (device and inode) and fingerprints the line just before the offset. When the file
 * changed between pages: appended to (same inode, fingerprint intact), the page goes on at the offset; replaced
 * by this process's own rewrite (deleteRows, updateRows, deleteExpired… — retention changes the file between its
 * pages), the offset is carried over to the new file exactly (rewrites keep line order); replaced or edited
 * otherwise, the walk starts over from the beginning — rows may then come twice, none is missed — and after
 * {@link MAX_PAGE_RESTARTS} such restarts the page fails with CST_ERR_CONNECTOR_UNAVAILABLE (retry later).
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
  /** Bytes read from the file per read call. Default 64 KiB. */
  readonly readChunkBytes?: number | undefined;
  /** Bytes a page (scan, findExpired) reads at most before it ends early, with a cursor to go on. Default 16 MiB. */
  readonly pageBytes?: number | undefined;
  /**
   * Test and metrics hooks: `beforeRename` runs after the temporary file is written and fsynced, before the
   * rename; `onRead` is told the size of every read from a collection file.
   */
  readonly hooks?:
    | {
        readonly beforeRename?: ((tempPath: string) => void | Promise<void>) | undefined;
        readonly onRead?: ((bytes: number) => void) | undefined;
      }
    | undefined;
}

/** How many times one walk through a file's pages starts over, because another writer replaced the file, before it fails. */
export const MAX_PAGE_RESTARTS = 10;

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
const DEFAULT_CHUNK_BYTES = 64 * 1024;
const DEFAULT_PAGE_BYTES = 16 * 1024 * 1024;
const NEWLINE = 0x0a;
const FIELD_PATH = /^[A-Za-z_$][A-Za-z0-9_$-]*(?:\.[A-Za-z_$][A-Za-z0-9_$-]*)*$/;
const CURSOR_PREFIX = 'jsonl1.';
/** Rewrites remembered per file for carrying page offsets over, and breakpoints per rewrite (memory bound). */
const MAX_MOVES = 16;
const MAX_MOVE_BREAKPOINTS = 50_000;

/** Files being rewritten by this process: real path → the tail of its queue of writers. */
const queues = new Map<string, Promise<unknown>>();

/**
 * How a rewrite of this process moved byte offsets: line ends of the old file (`from`, `<dev>:<ino>`) map to
 * line ends of the new one (`to`). Between breakpoints (ends of deleted or changed lines) offsets move by the
 * same delta, as unchanged lines are copied byte for byte. O(changed lines) memory, O(log) per look-up.
 * File systems reuse the inode of a replaced file for the next one, so `<dev>:<ino>` alone does not tell two
 * generations of a file apart: moves are numbered per file (`generation`), a cursor remembers the last move
 * complete when its page was read, and a page follows only the moves registered before it opened the file (a
 * page that opened the old file just before a rename goes on in that file).
 */
interface Move {
  readonly generation: number;
  readonly from: string;
  readonly to: string;
  /** Undefined when the rewrite changed too many lines to keep ({@link MAX_MOVE_BREAKPOINTS}): pages over `from` start over. */
  readonly ends: readonly number[] | undefined;
  readonly deltas: readonly number[];
  /** Set once the new file is in place (renamed). */
  done: boolean;
}

/** The recent rewrites of one file by this process, oldest first (at most {@link MAX_MOVES}). */
interface History {
  /** The last generation given out. */
  last: number;
  moves: Move[];
}

/** Histories by real path. */
const histories = new Map<string, History>();

/** Numbers generations only meaningful in this process: a cursor made elsewhere is judged by its file and line alone. */
const PROCESS_TOKEN = randomBytes(6).toString('hex');

function remember(path: string, move: Omit<Move, 'generation' | 'done'>): Move {
  const history = histories.get(path) ?? { last: 0, moves: [] };
  const numbered: Move = { ...move, generation: ++history.last, done: false };
  history.moves.push(numbered);
  if (history.moves.length > MAX_MOVES) history.moves.shift();
  histories.set(path, history);
  return numbered;
}

function forget(path: string, move: Move): void {
  const history = histories.get(path);
  if (history !== undefined) history.moves = history.moves.filter((m) => m !== move);
}

/** The last generation of `path` whose new file is in place (0 when none). Writers of a file are serialised, so only the last may be pending. */
function settled(path: string): number {
  const history = histories.get(path);
  if (history === undefined) return 0;
  return history.last - (history.moves.at(-1)?.done === false ? 1 : 0);
}

function moveOffset(move: Move & { readonly ends: readonly number[] }, offset: number): number {
  let lo = 0;
  let hi = move.ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (move.ends[mid]! <= offset) lo = mid + 1;
    else hi = mid;
  }
  return offset + (lo === 0 ? 0 : move.deltas[lo - 1]!);
}

/** Where a page starts again: a byte offset at a line start of one file, and the line before it. */
interface FileCursor {
  readonly offset: number;
  /** `<dev>:<ino>` of the file the offset is in (decimal: inode numbers may exceed 2^53). */
  readonly file: string;
  /** Length in bytes of the line ending at `offset` (newline included), 0 at the start. */
  readonly anchorLength: number;
  /** First 16 bytes of SHA-256 of that line, hex; '' at the start. */
  readonly anchorHash: string;
  /** How many times this walk started over (see {@link MAX_PAGE_RESTARTS}). */
  readonly restarts: number;
  /** The process that read the page, and the last generation of its rewrites of the file then (see {@link Move}). */
  readonly process: string;
  readonly seen: number;
}

function encodeCursor(c: FileCursor): string {
  return CURSOR_PREFIX + Buffer.from(JSON.stringify([c.offset, c.file, c.anchorLength, c.anchorHash, c.restarts, c.process, c.seen])).toString('base64url');
}

function decodeCursor(text: string): FileCursor {
  if (!text.startsWith(CURSOR_PREFIX) || text.length > 512) return malformedCursor('jsonl');
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(text.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    return malformedCursor('jsonl');
  }
  const count = (v: unknown, max = Number.MAX_SAFE_INTEGER): boolean => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
  const ok =
    Array.isArray(parts) &&
    parts.length === 7 &&
    count(parts[0]) &&
    typeof parts[1] === 'string' &&
    /^\d{1,40}:\d{1,40}$/.test(parts[1]) &&
    count(parts[2], parts[0] as number) &&
    typeof parts[3] === 'string' &&
    (parts[2] === 0 ? parts[3] === '' : /^[0-9a-f]{32}$/.test(parts[3])) &&
    count(parts[4], MAX_PAGE_RESTARTS) &&
    typeof parts[5] === 'string' &&
    /^[0-9a-f]{12}$/.test(parts[5]) &&
    count(parts[6]);
  if (!ok) return malformedCursor('jsonl');
  const [offset, file, anchorLength, anchorHash, restarts, process, seen] = parts as [number, string, number, string, number, string, number];
  return { offset, file, anchorLength, anchorHash, restarts, process, seen };
}

function fingerprint(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 32);
}

/** `<dev>:<ino>` of an open file, and its size. */
async function identify(handle: FileHandle): Promise<{ id: string; size: number; mode: number }> {
  const info = await handle.stat({ bigint: true });
  return { id: `${info.dev}:${info.ino}`, size: Number(info.size), mode: Number(info.mode & 0o7777n) };
}

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

/** One line as read: its raw bytes (without the `\n`), where it ends (past its `\n`), and whether it had one. */
interface Line {
  readonly bytes: Buffer;
  readonly end: number;
  readonly terminated: boolean;
}

/**
 * The lines of an open file from byte `start` (a line start) as raw bytes, so lines that are not UTF-8 or JSON
 * survive rewrites. Reads `chunkBytes` at a time; a consumer that stops early has read at most one chunk past
 * its last line.
 */
async function* linesOf(handle: FileHandle, start: number, chunkBytes: number, signal?: AbortSignal, onRead?: (bytes: number) => void): AsyncGenerator<Line> {
  let position = start;
  let pending: Buffer[] = [];
  for (;;) {
    signal?.throwIfAborted();
    // A fresh buffer per read: the lines handed out are views of it.
    const buffer = Buffer.allocUnsafe(chunkBytes);
    const { bytesRead } = await handle.read(buffer, 0, chunkBytes, position);
    if (bytesRead === 0) break;
    onRead?.(bytesRead);
    const chunk = buffer.subarray(0, bytesRead);
    let from = 0;
    for (let at = chunk.indexOf(NEWLINE); at >= 0; at = chunk.indexOf(NEWLINE, from)) {
      const piece = chunk.subarray(from, at);
      yield { bytes: pending.length === 0 ? piece : Buffer.concat([...pending, piece]), end: position + at + 1, terminated: true };
      pending = [];
      from = at + 1;
    }
    if (from < chunk.length) pending.push(chunk.subarray(from));
    position += bytesRead;
  }
  if (pending.length > 0) yield { bytes: Buffer.concat(pending), end: position, terminated: false };
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
  readonly #onRead: ((bytes: number) => void) | undefined;
  readonly #chunkBytes: number;
  readonly #pageBytes: number;

  constructor(options: JsonlDataConnectorOptions) {
    this.#directory = resolve(options.directory);
    this.#onMalformed =
      options.onMalformedLine ??
      ((m) => process.emitWarning(`malformed JSONL line kept as is: ${m.file} line ${m.line}`, { code: 'CUSTODIAN_JSONL_MALFORMED' }));
    this.#lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.#staleLockMs = options.staleLockMs ?? DEFAULT_STALE_LOCK_MS;
    this.#beforeRename = options.hooks?.beforeRename;
    this.#onRead = options.hooks?.onRead;
    this.#chunkBytes = Math.max(64, Math.floor(options.readChunkBytes ?? DEFAULT_CHUNK_BYTES));
    this.#pageBytes = Math.max(1, Math.floor(options.pageBytes ?? DEFAULT_PAGE_BYTES));
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
    const handle = await this.#open(file, 'find');
    try {
      for await (const { bytes: line } of linesOf(handle, 0, this.#chunkBytes, options.signal, this.#onRead)) {
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
    } finally {
      await handle.close();
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

  async scan(target: CollectionTarget, query: ScanQuery, options: { readonly signal?: AbortSignal } = {}): Promise<ScanPage> {
    return this.#page(target, checkScan(query), 'scan', options.signal);
  }

  async findExpired(target: CollectionTarget, query: ExpiredQuery, options: { readonly signal?: AbortSignal } = {}): Promise<ScanPage> {
    return this.#page(target, checkScan(expiredScan(query)), 'findExpired', options.signal);
  }

  async capabilities(): Promise<ConnectorCapabilities> {
    return ALL_CAPABILITIES;
  }

  /**
   * One page in file order (scan and findExpired): lines from the cursor's offset (see the module comment for
   * files changed between pages) until `limit` rows whose time field lies in the window, or `pageBytes` read.
   * O(bytes of the page's lines + one read chunk) time and reads, O(limit) memory. Rows whose key is not a string
   * or a number are skipped (they could not be changed by key). The window compares instants parsed as
   * {@link instantOf} does (ISO-8601 text, epoch seconds).
   */
  async #page(target: CollectionTarget, query: CheckedScan, operation: string, signal: AbortSignal | undefined): Promise<ScanPage> {
    const file = await this.#file(target);
    const window = query.window;
    for (const f of [query.keyField, ...(window === undefined ? [] : [window.field]), ...query.fields]) this.#checkField(file, f);
    const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const from = window?.from === undefined ? undefined : cutoffOf(window.from);
    const to = window?.to === undefined ? undefined : cutoffOf(window.to);
    const inWindow = (row: Record<string, unknown>): boolean => {
      if (window === undefined) return true;
      const at = instantOf(getPath(row, window.field));
      return at !== undefined && (from === undefined || at >= from) && (to === undefined || at < to);
    };
    const wanted = [...new Set(query.fields.filter((f) => f !== query.keyField))];
    signal?.throwIfAborted();
    // Read before the file is opened: a rewrite completing in between is then followed from this generation on.
    const seen = settled(file.path);
    const handle = await this.#open(file, operation);
    // Read as soon as the file is open: a rewrite registered later renamed its file after the open, so this handle
    // cannot be its result (the page may reach #resume only after that rewrite, as retention deletes meanwhile).
    const registered = histories.get(file.path)?.last ?? 0;
    try {
      const { id, size } = await identify(handle);
      let start = 0;
      let restarts = cursor?.restarts ?? 0;
      if (cursor !== undefined) {
        const resumed = await this.#resume(handle, file, cursor, { id, size, settled: seen, registered });
        if (resumed !== undefined) start = resumed;
        else if (++restarts > MAX_PAGE_RESTARTS) {
          throw new CustodianError('CST_ERR_CONNECTOR_UNAVAILABLE', `the file of collection ${file.collection} kept being replaced while it was read page by page; retry later`, {
            details: { connector: 'jsonl', file: file.display, operation, reason: 'changed' },
          });
        }
      }
      const rows: Row[] = [];
      for await (const line of linesOf(handle, start, this.#chunkBytes, signal, this.#onRead)) {
        const row = parse(line.bytes);
        if (row !== 'blank' && row !== 'malformed') {
          const key = getPath(row, query.keyField);
          if ((typeof key === 'string' || (typeof key === 'number' && Number.isFinite(key))) && inWindow(row)) {
            const out: Record<string, unknown> = { [query.keyField]: key };
            for (const f of wanted) out[f] = getPath(row, f) ?? null;
            rows.push(out);
          }
        }
        if (rows.length < query.limit && line.end - start < this.#pageBytes) continue;
        // An unterminated line is the last one: nothing follows it.
        if (!line.terminated) break;
        const anchor = Buffer.concat([line.bytes, Buffer.from([NEWLINE])]);
        return { rows, next: encodeCursor({ offset: line.end, file: id, anchorLength: anchor.length, anchorHash: fingerprint(anchor), restarts, process: PROCESS_TOKEN, seen }) };
      }
      return { rows, next: null };
    } catch (err) {
      if (signal?.aborted || err instanceof CustodianError) throw err;
      throw fsError(err, operation, file.display);
    } finally {
      await handle.close();
    }
  }

  /**
   * Where a page resumes in the open file, or undefined when it must start over: a file this process's rewrites
   * made from the cursor's (the offset carried over through {@link Move}s), or the cursor's own file with the line
   * before the offset unchanged (appends are fine).
   *
   * The handle is the file of some point of the chain of moves from the cursor's file: one whose replacing move was
   * not settled before the open (`opened.settled`) and whose own move was registered before the open completed
   * (`opened.registered`). Every such point whose file is the handle's is tried, newest first, then the cursor's
   * own file, judged by its anchor line. A file held open keeps its inode, so no later point shares the handle's;
   * an earlier one may (file systems reuse freed inodes), hence newest first and the bounds. O(moves) time, O(one
   * line) read.
   */
  async #resume(handle: FileHandle, file: CollectionFile, cursor: FileCursor, opened: { readonly id: string; readonly size: number; readonly settled: number; readonly registered: number }): Promise<number | undefined> {
    const { id, size } = opened;
    const history = histories.get(file.path);
    /** Points of the chain after the cursor's own file: the move that made each, and the offset carried over to it. */
    const points: { readonly move: Move; readonly offset: number }[] = [];
    /** The generations of the moves that replaced the cursor's own file and the last point (Infinity while none did). */
    let replacedOwn = Number.POSITIVE_INFINITY;
    let replacedLast = Number.POSITIVE_INFINITY;
    if (cursor.process === PROCESS_TOKEN && history !== undefined && (history.moves[0]?.generation ?? history.last + 1) <= cursor.seen + 1) {
      // Every rewrite since the page was read is known: follow the ones that replaced the file it was read from.
      let at = cursor.file;
      let offset = cursor.offset;
      for (const move of history.moves) {
        if (move.generation <= cursor.seen || move.from !== at) continue;
        if (points.length === 0) replacedOwn = move.generation;
        // Too many changed lines to keep: the files from this move on are unknown.
        if (move.ends === undefined) {
          replacedLast = move.generation;
          break;
        }
        offset = moveOffset({ ...move, ends: move.ends }, offset);
        at = move.to;
        points.push({ move, offset });
      }
    }
    for (let i = points.length - 1; i >= 0; i--) {
      const { move, offset } = points[i]!;
      const replacedBy = i + 1 < points.length ? points[i + 1]!.move.generation : replacedLast;
      if (move.to !== id || move.generation > opened.registered || replacedBy <= opened.settled || offset > size) continue;
      if (offset === 0) return 0;
      // Carried-over offsets are line starts; one byte checks that the file is still the one the moves made.
      const before = Buffer.alloc(1);
      const { bytesRead } = await handle.read(before, 0, 1, offset - 1);
      this.#onRead?.(bytesRead);
      if (bytesRead === 1 && before[0] === NEWLINE) return offset;
    }
    // The cursor's own file, unless a move replaced it before this page opened the file.
    if (replacedOwn <= opened.settled || cursor.file !== id || cursor.offset > size) return undefined;
    if (cursor.anchorLength === 0) return cursor.offset;
    const anchor = Buffer.alloc(cursor.anchorLength);
    const { bytesRead } = await handle.read(anchor, 0, anchor.length, cursor.offset - anchor.length);
    this.#onRead?.(bytesRead);
    return bytesRead === anchor.length && fingerprint(anchor) === cursor.anchorHash ? cursor.offset : undefined;
  }

  async countExpired(target: CollectionTarget, due: DueCondition, options: { readonly from?: string; readonly signal?: AbortSignal } = {}): Promise<number> {
    const file = await this.#file(target);
    this.#checkField(file, due.ageField);
    const cutoff = cutoffOf(due.cutoff);
    const from = options.from === undefined ? undefined : cutoffOf(options.from);
    let n = 0;
    const handle = await this.#open(file, 'countExpired');
    try {
      for await (const { bytes } of linesOf(handle, 0, this.#chunkBytes, options.signal, this.#onRead)) {
        const row = parse(bytes);
        if (row === 'blank' || row === 'malformed') continue;
        const at = instantOf(getPath(row, due.ageField));
        if (at !== undefined && at < cutoff && (from === undefined || at >= from)) n++;
      }
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw fsError(err, 'countExpired', file.display);
    } finally {
      await handle.close();
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

  async #open(file: CollectionFile, operation: string): Promise<FileHandle> {
    try {
      return await open(file.path, 'r');
    } catch (err) {
      throw fsError(err, operation, file.display);
    }
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
      let move: Omit<Move, 'generation' | 'done'> | undefined;
      let registered: Move | undefined;
      try {
        const source = await open(file.path, 'r');
        let count = 0;
        let target: string;
        // Breakpoints of the offset move (see Move): where the delta between old and new line ends changes.
        const ends: number[] = [];
        const deltas: number[] = [];
        try {
          const old = await identify(source);
          const out = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, old.mode);
          try {
            await out.chmod(old.mode);
            let buffer: Buffer[] = [];
            let size = 0;
            let written = 0;
            let delta = 0;
            let number = 0;
            for await (const line of linesOf(source, 0, this.#chunkBytes, undefined, this.#onRead)) {
              number++;
              const row = parse(line.bytes);
              let bytes: Buffer | undefined = line.bytes;
              if (row === 'malformed') this.#onMalformed({ collection: file.collection, file: file.display, line: number });
              else if (row !== 'blank') {
                const verdict = decide(row);
                if (verdict === 'delete') {
                  count++;
                  bytes = undefined;
                } else if (verdict === 'changed') {
                  count++;
                  // Keep a CRLF line ending as it was.
                  bytes = Buffer.from(JSON.stringify(row) + (line.bytes.at(-1) === 0x0d ? '\r' : ''), 'utf8');
                }
              }
              if (bytes !== undefined) {
                buffer.push(bytes, Buffer.from([NEWLINE]));
                size += bytes.length + 1;
                written += bytes.length + 1;
              }
              if (written - line.end !== delta) {
                delta = written - line.end;
                // Past the bound, the move is not kept (pages over the old file then start over): memory stays bounded.
                if (ends.length <= MAX_MOVE_BREAKPOINTS) {
                  ends.push(line.end);
                  deltas.push(delta);
                }
              }
              if (size >= 256 * 1024) {
                await out.writev(buffer);
                buffer = [];
                size = 0;
              }
            }
            if (buffer.length > 0) await out.writev(buffer);
            if (count > 0) await out.sync();
            target = (await identify(out)).id;
          } finally {
            await out.close();
          }
          if (count > 0) move = { from: old.id, to: target, ends: ends.length <= MAX_MOVE_BREAKPOINTS ? ends : undefined, deltas };
        } finally {
          await source.close();
        }
        if (count === 0) return 0;
        await this.#beforeRename?.(temp);
        // Known before the rename, so that a page reading the new file can always carry its offset over.
        if (move !== undefined) registered = remember(file.path, move);
        await rename(temp, file.path);
        renamed = true;
        if (registered !== undefined) registered.done = true;
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
        if (!renamed) {
          if (registered !== undefined) forget(file.path, registered);
          await unlink(temp).catch(() => undefined);
        }
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
