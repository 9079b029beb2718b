import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** What to do with a line that is not JSON: stop the run (`fail`) or count it and go on (`skip`). */
export type BadLinePolicy = 'fail' | 'skip';

/**
 * A window of parsed JSONL records and where each one's bytes are. The arrays are reused: a window is
 * valid until the next one is pulled from {@link readJsonlWindows}.
 */
export interface JsonlWindow {
  /** Records in this window: the entries `[0, count)` of the arrays below. */
  count: number;
  /** The parsed value of each record. */
  readonly values: unknown[];
  /** The buffers the records' bytes are in. */
  readonly chunks: Buffer[];
  /** Per record: index in `chunks`, and the byte range of its line including its `\n` (when it has one). */
  readonly chunkOf: Uint32Array;
  readonly start: Uint32Array;
  readonly end: Uint32Array;
  /** Per record: its 1-based line number in the input (empty lines count). */
  readonly lineNumbers: Float64Array;
  /** Lines of this window that were not JSON (line numbers), in order. */
  readonly badLines: number[];
}

/** Options of {@link readJsonlWindows}. */
export interface ReadJsonlOptions {
  /** Records per window. */
  readonly windowSize: number;
  readonly onBadLine: BadLinePolicy;
  /** Longer lines are bad lines (their bytes are not kept). Default 16 MiB. */
  readonly maxLineBytes?: number;
}

/** A line that is not JSON under `--on-bad-line fail`: the run stops after the records before it. */
export class BadLineError extends Error {
  readonly lineNumber: number;
  constructor(lineNumber: number) {
    super(`line ${lineNumber} is not valid JSON`);
    this.name = 'BadLineError';
    this.lineNumber = lineNumber;
  }
}

const NL = 0x0a;
const CR = 0x0d;

/**
 * Reads JSONL from a byte stream in windows of parsed records: chunks are split on `\n` with
 * `Buffer.indexOf` (no promise and no copy per line; only a line cut by a chunk boundary is copied), and
 * each line is parsed with `JSON.parse`. Empty lines are skipped (but counted in line numbers); a
 * trailing `\r` is tolerated. A malformed line is listed in its window's `badLines`; under `fail`, the
 * window is ended there and the next pull throws {@link BadLineError}, so the records before it are
 * still handed out.
 *
 * Memory: one window of records plus the chunks their bytes are in.
 */
export async function* readJsonlWindows(input: AsyncIterable<Buffer | Uint8Array | string>, options: ReadJsonlOptions): AsyncGenerator<JsonlWindow, void, undefined> {
  const size = Math.max(1, options.windowSize);
  const maxLine = options.maxLineBytes ?? 16 * 1024 * 1024;
  const w: JsonlWindow = {
    count: 0,
    values: new Array<unknown>(size),
    chunks: [],
    chunkOf: new Uint32Array(size),
    start: new Uint32Array(size),
    end: new Uint32Array(size),
    lineNumbers: new Float64Array(size),
    badLines: [],
  };
  let lineNo = 0;
  /** Index of the current chunk in `w.chunks`, or -1 when not registered in this window yet. */
  let current = -1;
  let failedAt = 0;
  /** Bytes of a line cut by a chunk boundary, or of an overlong line being skipped. */
  let carry: Buffer[] = [];
  let carryBytes = 0;
  let overlong = false;

  const reset = (): void => {
    for (let i = 0; i < w.count; i++) w.values[i] = undefined;
    w.count = 0;
    w.chunks.length = 0;
    w.badLines.length = 0;
    current = -1;
  };

  /** Adds the line `buf[s, e)` (e after its `\n`, if any); returns true when the window must be handed out. */
  const addLine = (buf: Buffer, s: number, e: number, registered: boolean): boolean => {
    lineNo++;
    let ce = e;
    if (ce > s && buf[ce - 1] === NL) ce--;
    if (ce > s && buf[ce - 1] === CR) ce--;
    if (ce === s) return false;
    let value: unknown;
    try {
      value = JSON.parse(buf.toString('utf8', s, ce));
    } catch {
      return bad();
    }
    let ci = current;
    if (!registered) {
      ci = w.chunks.push(buf) - 1;
    } else if (ci < 0) {
      ci = current = w.chunks.push(buf) - 1;
    }
    const k = w.count++;
    w.values[k] = value;
    w.chunkOf[k] = ci;
    w.start[k] = s;
    w.end[k] = e;
    w.lineNumbers[k] = lineNo;
    return w.count === size;
  };

  const bad = (): boolean => {
    w.badLines.push(lineNo);
    if (options.onBadLine === 'fail') {
      failedAt = lineNo;
      return true;
    }
    return false;
  };

  for await (const piece of input) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    let pos = 0;
    if (carryBytes > 0 || overlong) {
      const nl = chunk.indexOf(NL);
      const headEnd = nl < 0 ? chunk.length : nl + 1;
      if (overlong || carryBytes + headEnd > maxLine) {
        // A line longer than the limit: its bytes are dropped as they come; it ends as a bad line.
        overlong = true;
        carry = [];
        carryBytes = 0;
        if (nl < 0) continue;
        overlong = false;
        lineNo++;
        const full = bad();
        pos = headEnd;
        if (full) {
          yield w;
          throw new BadLineError(failedAt);
        }
      } else {
        carry.push(chunk.subarray(0, headEnd));
        carryBytes += headEnd;
        if (nl < 0) continue;
        const joined = Buffer.concat(carry, carryBytes);
        carry = [];
        carryBytes = 0;
        pos = headEnd;
        if (addLine(joined, 0, joined.length, false)) {
          yield w;
          if (failedAt > 0) throw new BadLineError(failedAt);
          reset();
        }
      }
    }
    current = -1;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(NL, pos);
      if (nl < 0) {
        const rest = chunk.length - pos;
        if (rest > maxLine) overlong = true;
        else {
          carry.push(chunk.subarray(pos));
          carryBytes = rest;
        }
        break;
      }
      const full = addLine(chunk, pos, nl + 1, true);
      pos = nl + 1;
      if (full) {
        yield w;
        if (failedAt > 0) throw new BadLineError(failedAt);
        reset();
      }
    }
  }
  if (overlong) {
    lineNo++;
    bad();
  } else if (carryBytes > 0) {
    const last = Buffer.concat(carry, carryBytes);
    addLine(last, 0, last.length, false);
  }
  if (w.count > 0 || w.badLines.length > 0) yield w;
  if (failedAt > 0) throw new BadLineError(failedAt);
}

/**
 * Copies the lines of the records of `w` whose verdict is 0 into one buffer, in order, byte for byte.
 * Returns null when none is kept.
 */
export function keptBytes(w: JsonlWindow, verdicts: Uint8Array): Buffer | null {
  let total = 0;
  for (let i = 0; i < w.count; i++) if (verdicts[i] === 0) total += w.end[i]! - w.start[i]!;
  if (total === 0) return null;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < w.count; i++) {
    if (verdicts[i] !== 0) continue;
    // Runs of consecutive kept lines of one chunk are copied in one go.
    const ci = w.chunkOf[i]!;
    const s = w.start[i]!;
    let e = w.end[i]!;
    while (i + 1 < w.count && verdicts[i + 1] === 0 && w.chunkOf[i + 1] === ci && w.start[i + 1] === e) e = w.end[++i]!;
    at += w.chunks[ci]!.copy(out, at, s, e);
  }
  return out;
}

/** Writes `data` to `out`, waiting for 'drain' when the stream's buffer is full (back-pressure). */
export async function writeWithBackpressure(out: Writable | NodeJS.WritableStream, data: Buffer): Promise<void> {
  if (out.write(data)) return;
  const ac = new AbortController();
  try {
    // 'error' makes once() reject; 'close' without 'drain' means the reader went away.
    await Promise.race([once(out, 'drain', { signal: ac.signal }), once(out, 'close', { signal: ac.signal }).then(() => {
      throw Object.assign(new Error('output closed'), { code: 'EPIPE' });
    })]);
  } finally {
    ac.abort();
  }
}
