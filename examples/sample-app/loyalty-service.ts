import { readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyCustodianSignature } from '../../src/connectors/data/http-signature.js';
import { LOYALTY_FIELDS, LoyaltyAccounts, type AccountDue, type ScanPosition } from './loyalty-accounts.js';
import type { LoyaltyAccount } from './seed.js';

/**
 * The sample shop's loyalty microservice: loyalty points per e-mail address, behind the Custodian callback
 * protocol (docs/requests.md, "HTTP services: the Custodian callback protocol") under `/privacy`, with both
 * optional operations, so that breach scoping and retention reach its accounts:
 *
 * ```
 * POST /privacy/accounts/find          {requestId, collection, field, values, fields, cursor?}        → {rows, next?}
 * POST /privacy/accounts/delete        {requestId, collection, keyField, keys}                        → {count}
 * POST /privacy/accounts/update        {requestId, collection, keyField, changes}                     → {count}
 * POST /privacy/accounts/capabilities  {requestId, collection}                                        → {operations: ['scan', 'retention']}
 * POST /privacy/accounts/scan          {requestId, collection, keyField, fields, limit, cursor?,
 *                                       timeField?, from?, to?}                                       → {rows, next: cursor | null}
 * POST /privacy/accounts/retention     {requestId, collection, operation: 'count', ageField, cutoff, from?}              → {count}
 *                                      {requestId, collection, operation: 'delete', ageField, cutoff, keyField, keys}    → {count}
 *                                      {requestId, collection, operation: 'anonymise', ageField, cutoff, keyField, changes} → {count}
 * POST /privacy/_ping                  {requestId}                                                    → {}
 * ```
 *
 * Every call must carry a valid `Custodian-Signature` over the raw body (checked with
 * `verifyCustodianSignature`, constant time, 5-minute window), else 401 without a reason. Bodies are validated
 * before anything is read or changed; a refusal is `{ error: { code, message, issues? } }` with a code of
 * {@link LOYALTY_ERROR_STATUS} and never a value, a stack trace or the reason a signature failed. Matching is
 * exact; `scan` pages by (key, e-mail address) position, so a walk stays right while retention deletes between
 * pages; retention's delete and anonymise re-check each account's age. Answers of changes (delete, update,
 * retention delete and anonymise) are remembered per requestId for 10 minutes, so a retry reports the true
 * count. With `dataFile`, accounts are loaded from it and every change is written back (atomically).
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
  /** The clock of the signature window and the replay memory, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
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

/** Every error code the service answers, with its HTTP status (the connector reads only the status). */
export const LOYALTY_ERROR_STATUS = Object.freeze({
  /** The body is not valid JSON, or misses or mistypes a member (see `issues`), or a cursor is not one of ours. */
  LOYALTY_ERR_MALFORMED: 400,
  /** No valid signature of the shared secret within the replay window (why is not said). */
  LOYALTY_ERR_UNAUTHENTICATED: 401,
  /** Unknown collection or operation. */
  LOYALTY_ERR_NOT_FOUND: 404,
  /** Anything but POST. */
  LOYALTY_ERR_METHOD_NOT_ALLOWED: 405,
  /** More than 1 MiB of body. */
  LOYALTY_ERR_BODY_TOO_LARGE: 413,
  /** A field name that accounts do not have (see `issues`). */
  LOYALTY_ERR_UNKNOWN_FIELD: 422,
  /** Anything unexpected; details stay in the service. */
  LOYALTY_ERR_INTERNAL: 500,
});

/** A code of {@link LOYALTY_ERROR_STATUS}. */
export type LoyaltyErrorCode = keyof typeof LOYALTY_ERROR_STATUS;

/** Where a request went wrong: a JSON path (`keys[3]`, `limit`) and what it must be; never the value sent. */
export interface LoyaltyIssue {
  readonly path: string;
  readonly message: string;
}

/** The body of every refusal. */
export interface LoyaltyErrorBody {
  readonly error: { readonly code: LoyaltyErrorCode; readonly message: string; readonly issues?: readonly LoyaltyIssue[] };
}

const COLLECTION = 'accounts';
const MAX_BODY_BYTES = 1024 * 1024;
/** Rows per `find` page. */
const FIND_PAGE = 100;
/** The protocol's batch: values, keys or changes per request. */
const MAX_BATCH = 500;
/** The protocol's largest `scan` page. */
const MAX_SCAN_LIMIT = 10_000;
/** The protocol's longest cursor. */
const MAX_CURSOR_LENGTH = 8 * 1024;
const MAX_FIELDS = 32;
const MAX_ISSUES = 10;
const REPLAY_MS = 10 * 60_000;
const OPERATIONS = ['find', 'delete', 'update', 'capabilities', 'scan', 'retention'] as const;
type Operation = (typeof OPERATIONS)[number];

/** A wire instant: ISO-8601 with a zone, as Custodian sends cutoffs and window bounds; ms or undefined. */
function wireInstant(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

const requestId = z.string().min(1).max(128);
const fieldName = z.string().min(1).max(128);
const fieldList = z.array(fieldName).max(MAX_FIELDS);
const scalar = z.union([z.string(), z.number()]);
const instant = z
  .string()
  .max(64)
  .refine((s) => wireInstant(s) !== undefined, 'must be an ISO-8601 instant with a zone, e.g. 2026-01-01T00:00:00.000Z');
const keys = z.array(scalar).max(MAX_BATCH);
const changes = z.array(z.object({ key: scalar, set: z.record(fieldName, z.union([z.string(), z.number(), z.null()])) })).max(MAX_BATCH);
const base = { requestId, collection: z.string().min(1).max(256) };

// Bodies are strict: a member an operation does not take is refused. The signature covers the body, not the
// path, so a signed retention `delete` (which carries ageField and cutoff) replayed to `/accounts/delete` within
// the signature window is refused instead of deleting without the age check.
const findBody = z.object({ ...base, field: fieldName, values: keys, fields: fieldList, cursor: z.string().regex(/^\d{1,9}$/, 'must be a cursor this service made').optional() }).strict();
const deleteBody = z.object({ ...base, keyField: fieldName, keys }).strict();
const updateBody = z.object({ ...base, keyField: fieldName, changes }).strict();
const capabilitiesBody = z.object(base).strict();
const scanBody = z
  .object({
    ...base,
    keyField: fieldName,
    fields: fieldList,
    limit: z.number().int().min(1).max(MAX_SCAN_LIMIT),
    cursor: z.string().min(1).max(MAX_CURSOR_LENGTH).optional(),
    timeField: fieldName.optional(),
    from: instant.optional(),
    to: instant.optional(),
  })
  .strict()
  .refine((b) => (b.from === undefined && b.to === undefined) || b.timeField !== undefined, { path: ['timeField'], message: 'required with from or to' });
const due = { ageField: fieldName, cutoff: instant };
const retentionBody = z.discriminatedUnion('operation', [
  z.object({ ...base, ...due, operation: z.literal('count'), from: instant.optional() }).strict(),
  z.object({ ...base, ...due, operation: z.literal('delete'), keyField: fieldName, keys }).strict(),
  z.object({ ...base, ...due, operation: z.literal('anonymise'), keyField: fieldName, changes }).strict(),
]);

/** An answer: 200 with its body, or a refusal. */
type Answer = { readonly status: 200; readonly body: unknown } | { readonly status: number; readonly body: LoyaltyErrorBody; readonly headers?: Record<string, string> };

function ok(body: unknown): Answer {
  return { status: 200, body };
}

function refuse(code: LoyaltyErrorCode, message: string, issues?: readonly LoyaltyIssue[], headers?: Record<string, string>): Answer {
  return { status: LOYALTY_ERROR_STATUS[code], body: { error: { code, message, ...(issues === undefined ? {} : { issues: issues.slice(0, MAX_ISSUES) }) } }, ...(headers === undefined ? {} : { headers }) };
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((at, p) => (typeof p === 'number' ? `${at}[${p}]` : at === '' ? String(p) : `${at}.${String(p)}`), '') || '(body)';
}

/** The body checked against `schema`, or the refusal naming each issue's path (zod's messages carry no values). */
function parse<T>(schema: z.ZodType<T>, body: unknown, operation: string): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly answer: Answer } {
  const result = schema.safeParse(body);
  if (result.success) return { ok: true, value: result.data };
  const issues = result.error.issues.map((i) => ({ path: pathOf(i.path), message: i.message }));
  return { ok: false, answer: refuse('LOYALTY_ERR_MALFORMED', `the ${operation} request is malformed`, issues) };
}

/** 422 for the first field names accounts do not have, by their path in the request; undefined when all are known. */
function unknownFields(named: ReadonlyArray<readonly [path: string, name: string | undefined]>): Answer | undefined {
  const issues = named.filter(([, name]) => name !== undefined && !LOYALTY_FIELDS.has(name)).map(([path]) => ({ path, message: `not a field of ${COLLECTION}` }));
  return issues.length === 0 ? undefined : refuse('LOYALTY_ERR_UNKNOWN_FIELD', `the request names a field that ${COLLECTION} do not have`, issues);
}

const listed = (prefix: string, names: readonly string[]): Array<readonly [string, string]> => names.map((n, i) => [`${prefix}[${i}]`, n] as const);
const setFields = (list: ReadonlyArray<{ readonly set: Readonly<Record<string, unknown>> }>): Array<readonly [string, string]> =>
  list.flatMap((c, i) => Object.keys(c.set).map((f) => [`changes[${i}].set`, f] as const));

/** The scan cursor: the last position answered, as base64url JSON; opaque to Custodian. */
function encodeCursor(position: ScanPosition): string {
  return Buffer.from(JSON.stringify([position.key, position.email]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): ScanPosition | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string') return { key: value[0], email: value[1] };
  } catch {
    // Not ours: refused below.
  }
  return undefined;
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

function send(res: ServerResponse, answer: Answer): void {
  const payload = JSON.stringify(answer.body);
  res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store', ...('headers' in answer ? answer.headers : {}) });
  res.end(payload);
}

async function loadAccounts(options: LoyaltyServiceOptions): Promise<LoyaltyAccounts> {
  if (options.dataFile === undefined) return new LoyaltyAccounts(options.accounts ?? []);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(options.dataFile, 'utf8'));
  } catch (err) {
    throw new Error('the loyalty data file cannot be read as JSON', { cause: err });
  }
  if (!Array.isArray(parsed)) throw new Error('the loyalty data file must hold a JSON array of accounts');
  return new LoyaltyAccounts(parsed);
}

/** Starts the loyalty service on 127.0.0.1. */
export async function startLoyaltyService(options: LoyaltyServiceOptions): Promise<LoyaltyService> {
  const secrets = typeof options.secret === 'string' ? [options.secret] : [...options.secret];
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) throw new Error('the loyalty service needs a non-empty shared secret');
  const now = options.now ?? Date.now;
  const accounts = await loadAccounts(options);
  // Answers of changes per requestId, kept as promises from the moment the change starts: a retry that arrives
  // while the first attempt is still writing waits for that attempt's answer instead of running again.
  const answered = new Map<string, { at: number; answer: Promise<Answer> }>();
  // Changes run one at a time, each with its write to the data file, so a failed write can be undone exactly.
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  };
  /**
   * Applies `change` (which answers how many accounts it changed) and writes the accounts to the data file. When
   * the write fails, the accounts in memory are put back as they were and the error answers 500, so memory and
   * file never disagree and a retry of the same request finds the accounts still there.
   */
  const changed = (change: () => number): Promise<Answer> =>
    exclusive(async () => {
      const file = options.dataFile;
      const before = file === undefined ? undefined : accounts.list();
      const count = change();
      if (count > 0 && file !== undefined) {
        try {
          await writeFile(`${file}.tmp`, JSON.stringify(accounts.list(), null, 2) + '\n');
          await rename(`${file}.tmp`, file);
        } catch (err) {
          accounts.restore(before!);
          throw err;
        }
      }
      return ok({ count });
    });

  /** One validated operation on the accounts. */
  async function handle(operation: Operation, body: unknown): Promise<Answer> {
    switch (operation) {
      case 'find': {
        const p = parse(findBody, body, operation);
        if (!p.ok) return p.answer;
        const { field, values, fields, cursor } = p.value;
        const unknown = unknownFields([['field', field], ...listed('fields', fields)]);
        if (unknown !== undefined) return unknown;
        const offset = cursor === undefined ? 0 : Number(cursor);
        const { rows, more } = accounts.find(field, values, fields, offset, FIND_PAGE);
        return ok({ rows, ...(more ? { next: String(offset + FIND_PAGE) } : {}) });
      }
      case 'delete': {
        const p = parse(deleteBody, body, operation);
        if (!p.ok) return p.answer;
        return unknownFields([['keyField', p.value.keyField]]) ?? changed(() => accounts.delete(p.value.keyField, p.value.keys));
      }
      case 'update': {
        const p = parse(updateBody, body, operation);
        if (!p.ok) return p.answer;
        return unknownFields([['keyField', p.value.keyField], ...setFields(p.value.changes)]) ?? changed(() => accounts.update(p.value.keyField, p.value.changes));
      }
      case 'capabilities': {
        const p = parse(capabilitiesBody, body, operation);
        return p.ok ? ok({ operations: ['scan', 'retention'] }) : p.answer;
      }
      case 'scan': {
        const p = parse(scanBody, body, operation);
        if (!p.ok) return p.answer;
        const { keyField, fields, limit, cursor, timeField, from, to } = p.value;
        const unknown = unknownFields([['keyField', keyField], ...listed('fields', fields), ['timeField', timeField]]);
        if (unknown !== undefined) return unknown;
        const after = cursor === undefined ? undefined : decodeCursor(cursor);
        if (cursor !== undefined && after === undefined) return refuse('LOYALTY_ERR_MALFORMED', 'the scan request is malformed', [{ path: 'cursor', message: 'must be a cursor this service made' }]);
        const window = timeField === undefined ? undefined : { field: timeField, from: from === undefined ? undefined : wireInstant(from), to: to === undefined ? undefined : wireInstant(to) };
        const page = accounts.scan({ keyField, fields, limit, after, window });
        return ok({ rows: page.rows, next: page.last === undefined ? null : encodeCursor(page.last) });
      }
      case 'retention': {
        const p = parse(retentionBody, body, operation);
        if (!p.ok) return p.answer;
        const request = p.value;
        const condition: AccountDue = { ageField: request.ageField, cutoff: wireInstant(request.cutoff)! };
        if (request.operation === 'count') {
          return unknownFields([['ageField', request.ageField]]) ?? ok({ count: accounts.countDue(condition, request.from === undefined ? undefined : wireInstant(request.from)) });
        }
        if (request.operation === 'delete') {
          return unknownFields([['ageField', request.ageField], ['keyField', request.keyField]]) ?? changed(() => accounts.delete(request.keyField, request.keys, condition));
        }
        return unknownFields([['ageField', request.ageField], ['keyField', request.keyField], ...setFields(request.changes)]) ?? changed(() => accounts.update(request.keyField, request.changes, condition));
      }
    }
  }

  /** Whether an operation changes accounts: its answer is then replayed for a repeated requestId. */
  const isChange = (operation: Operation, body: Record<string, unknown>): boolean => operation === 'delete' || operation === 'update' || (operation === 'retention' && body.operation !== 'count');

  async function respond(req: IncomingMessage): Promise<Answer> {
    const path = (req.url ?? '').split('?')[0]!;
    const raw = await rawBody(req);
    if (raw === undefined) return refuse('LOYALTY_ERR_BODY_TOO_LARGE', `a request body holds at most ${MAX_BODY_BYTES} bytes`);
    // The v2 signature binds the method and path too: a body signed for one operation cannot be replayed to another.
    const verdict = verifyCustodianSignature(secrets, req.headers[TIMESTAMP_HEADER.toLowerCase()], raw, req.headers[SIGNATURE_HEADER.toLowerCase()], now(), { method: req.method ?? '', path });
    // Whatever the reason (malformed, stale, mismatch), the caller learns only that it was refused.
    if (!verdict.ok) return refuse('LOYALTY_ERR_UNAUTHENTICATED', 'the request does not carry a valid Custodian signature');
    if (req.method !== 'POST') return refuse('LOYALTY_ERR_METHOD_NOT_ALLOWED', 'every operation is a POST', undefined, { allow: 'POST' });
    if (path === '/privacy/_ping') return ok({});
    const m = /^\/privacy\/([^/]+)\/([a-z]+)$/.exec(path);
    if (m === null || m[1] !== COLLECTION || !(OPERATIONS as readonly string[]).includes(m[2]!)) return refuse('LOYALTY_ERR_NOT_FOUND', 'no such collection or operation');
    const operation = m[2] as Operation;
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      // The parser's message quotes the body: it is not passed on.
      return refuse('LOYALTY_ERR_MALFORMED', 'the body is not JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body) || typeof (body as { requestId?: unknown }).requestId !== 'string') {
      return refuse('LOYALTY_ERR_MALFORMED', 'the body must be a JSON object with a requestId', [{ path: 'requestId', message: 'required string' }]);
    }
    const record = body as Record<string, unknown>;
    const replayKey = `${operation}:${record.requestId as string}`;
    const at = now();
    for (const [k, v] of answered) if (at - v.at > REPLAY_MS) answered.delete(k);
    if (!isChange(operation, record)) return handle(operation, body);
    const earlier = answered.get(replayKey);
    if (earlier !== undefined) return earlier.answer;
    const answer = handle(operation, body);
    answered.set(replayKey, { at, answer });
    try {
      const settled = await answer;
      // Only a change that was made is remembered; a refusal may be corrected and sent again.
      if (settled.status !== 200) answered.delete(replayKey);
      return settled;
    } catch (err) {
      answered.delete(replayKey);
      throw err;
    }
  }

  const server = createServer((req, res) => {
    void respond(req)
      // What went wrong stays here: the caller gets the code alone, never a message or a stack trace.
      .catch(() => refuse('LOYALTY_ERR_INTERNAL', 'internal error'))
      .then((answer) => send(res, answer))
      .catch(() => res.destroy());
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port, '127.0.0.1', () => done());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/privacy`,
    port,
    accounts: () => accounts.list(),
    close: () =>
      new Promise<void>((done, fail) => {
        server.closeAllConnections();
        server.close((err) => (err ? fail(err) : done()));
      }),
  };
}
