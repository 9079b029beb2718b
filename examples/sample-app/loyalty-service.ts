import { readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyCustodianSignature } from '../../src/connectors/data/http-signature.js';
import type { LoyaltyAccount } from './seed.js';

/**
 * The sample shop's loyalty microservice: loyalty points per e-mail address, with the four privacy endpoints
 * of the Custodian callback protocol (docs/connectors-nonsql.md) under `/privacy`:
 *
 * ```
 * POST /privacy/accounts/find    {requestId, collection, field, values, fields, cursor?} → {rows, next?}
 * POST /privacy/accounts/delete  {requestId, collection, keyField, keys}                 → {count}
 * POST /privacy/accounts/update  {requestId, collection, keyField, changes}              → {count}
 * POST /privacy/_ping            {requestId}                                             → {}
 * ```
 *
 * Every call must carry a valid `Custodian-Signature` over the raw body (checked with
 * `verifyCustodianSignature`, constant time, 5-minute window), else 401 without a reason. Matching is exact;
 * answers of delete/update are remembered per requestId for 10 minutes, so a retry reports the true count.
 * With `dataFile`, accounts are loaded from it and every change is written back (atomically).
 */
export interface LoyaltyServiceOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  readonly port: number;
  /** The shared secret (several while rotating). */
  readonly secret: string | readonly string[];
  /** JSON array of accounts (as written by the seed), read at start and rewritten on each change. */
  readonly dataFile?: string;
  /** Accounts to start with when there is no data file. */
  readonly accounts?: readonly LoyaltyAccount[];
}

/** A running loyalty service. */
export interface LoyaltyService {
  /** Base URL of the privacy endpoints, e.g. `http://127.0.0.1:4100/privacy`. */
  readonly url: string;
  readonly port: number;
  /** The accounts, for inspection. */
  accounts(): LoyaltyAccount[];
  close(): Promise<void>;
}

const FIELDS = new Set(['email', 'points', 'tier']);
const MAX_BODY_BYTES = 1024 * 1024;
const PAGE = 100;
const REPLAY_MS = 10 * 60_000;

function asText(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
}

async function rawBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

/** Starts the loyalty service on 127.0.0.1. */
export async function startLoyaltyService(options: LoyaltyServiceOptions): Promise<LoyaltyService> {
  const secrets = typeof options.secret === 'string' ? [options.secret] : [...options.secret];
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) throw new Error('the loyalty service needs a non-empty shared secret');
  let accounts: LoyaltyAccount[] =
    options.dataFile !== undefined ? (JSON.parse(await readFile(options.dataFile, 'utf8')) as LoyaltyAccount[]) : (options.accounts ?? []).map((a) => ({ ...a }));
  const answered = new Map<string, { at: number; body: unknown }>();
  let saving = Promise.resolve();
  const save = (): Promise<void> => {
    const file = options.dataFile;
    if (file === undefined) return Promise.resolve();
    const snapshot = JSON.stringify(accounts, null, 2) + '\n';
    saving = saving.then(async () => {
      await writeFile(`${file}.tmp`, snapshot);
      await rename(`${file}.tmp`, file);
    });
    return saving;
  };

  async function handle(op: string, body: Record<string, unknown>): Promise<{ status: number; body?: unknown }> {
    if (op === 'find') {
      const { field, values, fields, cursor } = body;
      if (typeof field !== 'string' || !Array.isArray(values) || !Array.isArray(fields) || (cursor !== undefined && typeof cursor !== 'string')) return { status: 400 };
      if (!FIELDS.has(field) || !fields.every((f) => typeof f === 'string' && FIELDS.has(f))) return { status: 422 };
      const wanted = new Set(values.map(asText));
      const matches = accounts.filter((a) => wanted.has(asText(a[field as keyof LoyaltyAccount])));
      const offset = cursor === undefined ? 0 : Number(cursor);
      if (!Number.isSafeInteger(offset) || offset < 0) return { status: 400 };
      const rows = matches.slice(offset, offset + PAGE).map((a) => Object.fromEntries((fields as string[]).map((f) => [f, a[f as keyof LoyaltyAccount] ?? null])));
      return { status: 200, body: { rows, ...(offset + PAGE < matches.length ? { next: String(offset + PAGE) } : {}) } };
    }
    const { keyField } = body;
    if (typeof keyField !== 'string') return { status: 400 };
    if (!FIELDS.has(keyField)) return { status: 422 };
    const key = keyField as keyof LoyaltyAccount;
    if (op === 'delete') {
      if (!Array.isArray(body.keys)) return { status: 400 };
      const keys = new Set(body.keys.map(asText));
      const kept = accounts.filter((a) => !keys.has(asText(a[key])));
      const count = accounts.length - kept.length;
      accounts = kept;
      if (count > 0) await save();
      return { status: 200, body: { count } };
    }
    const changes = body.changes;
    if (!Array.isArray(changes) || !changes.every((c): c is { key: unknown; set: Record<string, unknown> } => typeof c === 'object' && c !== null && typeof (c as { set?: unknown }).set === 'object' && (c as { set?: unknown }).set !== null)) return { status: 400 };
    if (!changes.every((c) => Object.keys(c.set).every((f) => FIELDS.has(f)))) return { status: 422 };
    let count = 0;
    for (const account of accounts) {
      let changed = false;
      for (const change of changes) {
        if (asText(change.key) === undefined || asText(change.key) !== asText(account[key])) continue;
        for (const [f, v] of Object.entries(change.set)) {
          const record = account as unknown as Record<string, unknown>;
          if (record[f] === v || (v === null && (record[f] === undefined || record[f] === null))) continue;
          record[f] = v;
          changed = true;
        }
      }
      if (changed) count++;
    }
    if (count > 0) await save();
    return { status: 200, body: { count } };
  }

  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '').split('?')[0]!;
      const raw = await rawBody(req);
      if (raw === undefined) return send(res, 413);
      const verdict = verifyCustodianSignature(secrets, req.headers[TIMESTAMP_HEADER.toLowerCase()], raw, req.headers[SIGNATURE_HEADER.toLowerCase()], Date.now());
      // Whatever the reason (malformed, stale, mismatch), the caller learns only that it was refused.
      if (!verdict.ok) return send(res, 401);
      if (req.method !== 'POST') return send(res, 404);
      if (path === '/privacy/_ping') return send(res, 200, {});
      const m = /^\/privacy\/([^/]+)\/(find|delete|update)$/.exec(path);
      if (m === null || m[1] !== 'accounts') return send(res, 404);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return send(res, 400);
      }
      if (typeof body !== 'object' || body === null || typeof (body as { requestId?: unknown }).requestId !== 'string') return send(res, 400);
      const op = m[2]!;
      const replayKey = `${op}:${(body as { requestId: string }).requestId}`;
      const now = Date.now();
      for (const [k, v] of answered) if (now - v.at > REPLAY_MS) answered.delete(k);
      const earlier = op === 'find' ? undefined : answered.get(replayKey);
      if (earlier !== undefined) return send(res, 200, earlier.body);
      const result = await handle(op, body as Record<string, unknown>);
      if (result.status === 200 && op !== 'find') answered.set(replayKey, { at: now, body: result.body });
      return send(res, result.status, result.body);
    })().catch(() => {
      if (!res.headersSent) send(res, 500);
      else res.destroy();
    });
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port, '127.0.0.1', () => done());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/privacy`,
    port,
    accounts: () => accounts.map((a) => ({ ...a })),
    close: () =>
      new Promise<void>((done, fail) => {
        server.closeAllConnections();
        server.close((err) => (err ? fail(err) : done()));
      }),
  };
}
