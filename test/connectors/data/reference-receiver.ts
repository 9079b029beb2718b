import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyCustodianSignature, type SignatureFailure } from '../../../src/connectors/data/http-signature.js';

/**
 * A reference receiver of the Custodian HTTP callback protocol (docs/requests.md (Connectors beyond SQL)): a node:http server
 * holding rows in memory, as a team's service would hold them in its database. Tests start it on a free port;
 * receiver authors can read it as a worked implementation of the contract:
 *
 * 1. read the raw body (capped), verify `Custodian-Signature` over `"<timestamp>.<raw body>"` in constant time
 *    and the timestamp within 5 minutes, else 401 (without saying why);
 * 2. route `POST <base>/<collection>/{find|delete|update}` (404 for an unknown collection, 422 for an unknown
 *    field, 400 for a malformed body);
 * 3. match values exactly (strings and numbers by their text), page `find` answers with an opaque cursor, count
 *    only rows that changed, and answer a repeated `requestId` of delete/update with the first answer, so a
 *    retry after a lost answer reports the same count;
 * 4. optionally (`operations`), the protocol's optional operations: `capabilities` (which of them it offers),
 *    `scan` (pages of a whole collection, with a time window, resumed by an opaque cursor) and `retention`
 *    (count, delete and anonymise rows past due, re-checking the age of every row it changes).
 */

/** A row held by the receiver. */
export type StoredRow = Record<string, unknown>;

/** Options of {@link startReferenceReceiver}. */
export interface ReferenceReceiverOptions {
  /** Shared secret(s): several while rotating. */
  readonly secret: string | readonly string[];
  /** Path prefix of every endpoint, e.g. `/privacy`. Default ''. */
  readonly basePath?: string;
  /** Rows per `find` page. Default 100. */
  readonly pageSize?: number;
  /** Collections and their declared fields. */
  readonly collections: Readonly<Record<string, readonly string[]>>;
  /** The receiver's clock, ms. Default Date.now. */
  readonly now?: () => number;
  /** Optional operations offered for every collection (`capabilities` answers them). Default none: base protocol. */
  readonly operations?: readonly ('scan' | 'retention')[];
}

/** A request as the receiver saw it, for tests. */
export interface ReceivedRequest {
  readonly path: string;
  readonly body: string;
  readonly verdict: 'ok' | SignatureFailure | 'injected';
}

export interface ReferenceReceiver {
  /** Base URL, without credentials: `http://127.0.0.1:<port><basePath>`. */
  readonly url: string;
  readonly port: number;
  /** Rows by collection name; tests seed and inspect them directly. */
  readonly rows: Map<string, StoredRow[]>;
  readonly requests: ReceivedRequest[];
  /** Requests that arrived, counted before any delay (requests are recorded in `requests` after it). */
  arrivals(): number;
  /** Forgets the failures and delays still queued. */
  clearFaults(): void;
  /** The next `times` requests are answered `status` before anything else is done. */
  failNext(status: number, times?: number, headers?: Record<string, string>): void;
  /** The next `times` requests are answered only after `ms`. */
  delayNext(ms: number, times?: number): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
const REPLAY_CACHE_MS = 10 * 60_000;

/** A time value as ms since the epoch: ISO-8601 text (no zone = UTC) or epoch seconds; undefined otherwise. */
function instant(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value * 1000 : undefined;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const ms = Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

/** Starts a reference receiver on a free loopback port. */
export async function startReferenceReceiver(options: ReferenceReceiverOptions): Promise<ReferenceReceiver> {
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const pageSize = options.pageSize ?? 100;
  const now = options.now ?? Date.now;
  const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret;
  const rows = new Map<string, StoredRow[]>(Object.keys(options.collections).map((c) => [c, []]));
  const requests: ReceivedRequest[] = [];
  const failures: { status: number; headers: Record<string, string> }[] = [];
  const delays: number[] = [];
  const answered = new Map<string, { at: number; body: unknown }>();

  const fieldsOf = (collection: string): ReadonlySet<string> => new Set(options.collections[collection]);
  const offered = [...(options.operations ?? [])];
  const routes = ['find', 'delete', 'update', ...(offered.length > 0 ? ['capabilities'] : []), ...offered];

  function handle(op: string, collection: string, body: Record<string, unknown>): { status: number; body?: unknown } {
    const fields = fieldsOf(collection);
    const stored = rows.get(collection)!;
    if (op === 'find') {
      const { field, values, fields: asked, cursor } = body;
      if (typeof field !== 'string' || !Array.isArray(values) || !Array.isArray(asked) || (cursor !== undefined && typeof cursor !== 'string')) return { status: 400 };
      if (!fields.has(field) || !asked.every((f) => typeof f === 'string' && fields.has(f))) return { status: 422 };
      const wanted = new Set(values.map(text));
      const matches = stored.filter((r) => wanted.has(text(r[field])));
      const offset = cursor === undefined ? 0 : Number(cursor);
      if (!Number.isSafeInteger(offset) || offset < 0) return { status: 400 };
      const page = matches.slice(offset, offset + pageSize).map((r) => Object.fromEntries((asked as string[]).map((f) => [f, r[f] ?? null])));
      return { status: 200, body: { rows: page, ...(offset + pageSize < matches.length ? { next: String(offset + pageSize) } : {}) } };
    }
    if (op === 'capabilities') return { status: 200, body: { operations: offered } };
    if (op === 'scan') {
      const { keyField, fields: asked, limit, cursor, timeField, from, to } = body;
      if (typeof keyField !== 'string' || !Array.isArray(asked) || !Number.isSafeInteger(limit) || (limit as number) < 1 || (cursor !== undefined && typeof cursor !== 'string')) return { status: 400 };
      if (![keyField, ...(asked as unknown[]), ...(timeField === undefined ? [] : [timeField])].every((f) => typeof f === 'string' && fields.has(f))) return { status: 422 };
      const lower = from === undefined ? undefined : instant(from);
      const upper = to === undefined ? undefined : instant(to);
      if ((from !== undefined && lower === undefined) || (to !== undefined && upper === undefined) || ((from !== undefined || to !== undefined) && typeof timeField !== 'string')) return { status: 400 };
      const inWindow = (r: StoredRow): boolean => {
        if (lower === undefined && upper === undefined) return true;
        const at = instant(r[timeField as string]);
        return at !== undefined && (lower === undefined || at >= lower) && (upper === undefined || at < upper);
      };
      // Keyset pages in key order, the cursor being the last key sent: unlike a position, it stays right when
      // rows are deleted between pages (retention deletes each page's rows before it asks for the next).
      let after: string | undefined;
      try {
        after = cursor === undefined ? undefined : (JSON.parse(cursor) as string);
      } catch {
        return { status: 400 };
      }
      if (after !== undefined && typeof after !== 'string') return { status: 400 };
      const keyed = stored.flatMap((r) => {
        const key = text(r[keyField]);
        return key === undefined || (after !== undefined && key <= after) || !inWindow(r) ? [] : [{ key, r }];
      });
      keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const page = keyed.slice(0, limit as number);
      const rows = page.map(({ r }) => Object.fromEntries((asked as string[]).map((f) => [f, r[f] ?? null])));
      return { status: 200, body: { rows, next: keyed.length > page.length ? JSON.stringify(page.at(-1)!.key) : null } };
    }
    if (op === 'retention') {
      const { operation, ageField, cutoff } = body;
      const before = instant(cutoff);
      if (typeof ageField !== 'string' || before === undefined) return { status: 400 };
      if (!fields.has(ageField)) return { status: 422 };
      const due = (r: StoredRow): boolean => {
        const at = instant(r[ageField]);
        return at !== undefined && at < before;
      };
      if (operation === 'count') {
        const lower = body.from === undefined ? undefined : instant(body.from);
        if (body.from !== undefined && lower === undefined) return { status: 400 };
        return { status: 200, body: { count: stored.filter((r) => due(r) && (lower === undefined || instant(r[ageField])! >= lower)).length } };
      }
      if (operation !== 'delete' && operation !== 'anonymise') return { status: 400 };
      // delete and anonymise change only rows still past due: the age is checked again here, row by row.
      return change(operation === 'delete' ? 'delete' : 'update', collection, body, due);
    }
    return change(op, collection, body, () => true);
  }

  /** delete / update (and retention's delete / anonymise, limited to rows `eligible` says). */
  function change(op: string, collection: string, body: Record<string, unknown>, eligible: (row: StoredRow) => boolean): { status: number; body?: unknown } {
    const fields = fieldsOf(collection);
    const stored = rows.get(collection)!;
    const { keyField } = body;
    if (typeof keyField !== 'string') return { status: 400 };
    if (!fields.has(keyField)) return { status: 422 };
    if (op === 'delete') {
      if (!Array.isArray(body.keys)) return { status: 400 };
      const keys = new Set(body.keys.map(text));
      const kept = stored.filter((r) => !keys.has(text(r[keyField])) || !eligible(r));
      const count = stored.length - kept.length;
      rows.set(collection, kept);
      return { status: 200, body: { count } };
    }
    const changes = body.changes;
    if (!Array.isArray(changes) || !changes.every((c): c is { key: unknown; set: Record<string, unknown> } => typeof c === 'object' && c !== null && typeof (c as { set?: unknown }).set === 'object')) {
      return { status: 400 };
    }
    if (!changes.every((c) => Object.keys(c.set).every((f) => fields.has(f)))) return { status: 422 };
    let count = 0;
    for (const row of stored) {
      if (!eligible(row)) continue;
      let changed = false;
      for (const change of changes) {
        if (text(change.key) === undefined || text(change.key) !== text(row[keyField])) continue;
        for (const [f, v] of Object.entries(change.set)) {
          if (v === null ? row[f] === undefined || row[f] === null : row[f] === v) continue;
          row[f] = v;
          changed = true;
        }
      }
      if (changed) count++;
    }
    return { status: 200, body: { count } };
  }

  let arrivals = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '').split('?')[0]!;
      const raw = await readBody(req);
      if (raw === undefined) return send(res, 413);
      arrivals++;
      const delay = delays.shift();
      if (delay !== undefined) await new Promise((r) => setTimeout(r, delay));
      const failure = failures.shift();
      if (failure !== undefined) {
        requests.push({ path, body: raw.toString('utf8'), verdict: 'injected' });
        return send(res, failure.status, { error: 'injected failure: secret-body-text' }, failure.headers);
      }
      const verdict = verifyCustodianSignature(secrets, req.headers[TIMESTAMP_HEADER.toLowerCase()], raw, req.headers[SIGNATURE_HEADER.toLowerCase()], now(), { method: req.method ?? '', path });
      requests.push({ path, body: raw.toString('utf8'), verdict: verdict.ok ? 'ok' : verdict.reason });
      // Whatever the reason, the caller learns only that it was refused.
      if (!verdict.ok) return send(res, 401);
      if (req.method !== 'POST' || !path.startsWith(`${basePath}/`)) return send(res, 404);
      const route = path.slice(basePath.length + 1);
      if (route === '_ping') return send(res, 200, {});
      const m = /^(.+)\/([a-z]+)$/.exec(route);
      if (m === null || !routes.includes(m[2]!)) return send(res, 404);
      const collection = m[1]!;
      const op = m[2]!;
      if (!rows.has(collection)) return send(res, 404);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return send(res, 400);
      }
      if (typeof body !== 'object' || body === null || typeof (body as { requestId?: unknown }).requestId !== 'string') return send(res, 400);
      const requestId = (body as { requestId: string }).requestId;
      const replayKey = `${op}:${requestId}`;
      for (const [k, v] of answered) if (now() - v.at > REPLAY_CACHE_MS) answered.delete(k);
      // Changes are answered once per requestId; reads are answered afresh.
      const replayed = op === 'delete' || op === 'update' || op === 'retention';
      const earlier = replayed ? answered.get(replayKey) : undefined;
      if (earlier !== undefined) return send(res, 200, earlier.body);
      const result = handle(op, collection, body as Record<string, unknown>);
      if (result.status === 200 && replayed) answered.set(replayKey, { at: now(), body: result.body });
      return send(res, result.status, result.body);
    })().catch(() => {
      if (!res.headersSent) send(res, 500);
      else res.destroy();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${basePath}`,
    port,
    rows,
    requests,
    arrivals: () => arrivals,
    clearFaults: () => {
      delays.length = 0;
      failures.length = 0;
    },
    failNext: (status, times = 1, headers = {}) => {
      for (let i = 0; i < times; i++) failures.push({ status, headers });
    },
    delayNext: (ms, times = 1) => {
      for (let i = 0; i < times; i++) delays.push(ms);
    },
    close: () =>
      new Promise<void>((done, fail) => {
        server.closeAllConnections();
        server.close((err) => (err ? fail(err) : done()));
      }),
  };
}
