import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { createCustodian, loadConfig, type Custodian } from '../../src/app/index.js';
import type { CollectionTarget, Row, ScanQuery } from '../../src/connectors/data/data-connector.js';
import { HttpDataConnector } from '../../src/connectors/data/http.js';
import { signCustodianRequest } from '../../src/connectors/data/http-signature.js';
import { isCustodianError } from '../../src/core/index.js';
import type { RetentionRunView } from '../../src/retention/index.js';
import { startLoyaltyService, type LoyaltyErrorBody, type LoyaltyService } from '../../examples/sample-app/loyalty-service.js';
import { LOYALTY_SECRET_ENV } from '../../examples/sample-app/manifest.js';
import { generateSampleData, seedSampleApp, type LoyaltyAccount, type SeedSampleAppResult } from '../../examples/sample-app/seed.js';
import { HOSTILE_VALUES } from '../connectors/data/conformance.js';
import { runCliCaptured } from '../support/cli.js';
import { storeFixture, type StoreFixture } from '../support/stores.js';

/*
 * The sample shop's loyalty service (examples/sample-app/loyalty-service.ts) as Custodian's HTTP connector
 * reaches it, over real HTTP on loopback ports: the optional `capabilities`, `scan` and `retention` operations
 * of the callback protocol, the typed errors at its boundary, and the data map's retention rule on its
 * accounts applied end to end (RetentionService, then the `custodian retention run` command).
 *
 * The connector conformance suite (test/connectors/data/conformance.ts) is not run here: its fixture is a
 * `people` and a `visits` collection with their own fields, which the loyalty service (one `accounts`
 * collection) does not hold. The cases below check the same contract on the accounts.
 */

const SECRET = 'example-loyalty-secret';
const accounts: CollectionTarget = { name: 'accounts', options: {} };
const CUTOFF = '2025-01-01T00:00:00.000Z';
const due = { ageField: 'last_activity_at', cutoff: CUTOFF };

/**
 * Members member001@example.com … member<n>: odd ones last active in 2023 (past due at {@link CUTOFF}), even ones in 2026, every
 * seventh with no usable time (never due); `points` repeats (i mod 5), so it is a key field with ties.
 */
function members(n: number): LoyaltyAccount[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    const at = i % 7 === 0 ? (i % 2 === 0 ? 'not a time' : null) : i % 2 === 1 ? `2023-0${1 + (i % 9)}-1${i % 10}T10:00:00.000Z` : `2026-0${1 + (i % 9)}-1${i % 10}T10:00:00.000Z`;
    return { email: `member${String(i).padStart(3, '0')}@example.com`, points: i % 5, tier: i % 2 === 0 ? 'gold' : 'bronze', last_activity_at: at as string };
  });
}
const emails = (list: readonly { email: unknown }[]): string[] => list.map((a) => String(a.email)).sort();
const pastDue = (list: readonly LoyaltyAccount[], cutoff = CUTOFF): LoyaltyAccount[] =>
  list.filter((a) => typeof a.last_activity_at === 'string' && /^\d{4}-/.test(a.last_activity_at) && a.last_activity_at < cutoff);

const notDue = (list: readonly LoyaltyAccount[]): LoyaltyAccount[] => {
  const dueEmails = new Set(pastDue(list).map((a) => a.email));
  return list.filter((a) => !dueEmails.has(a.email));
};

function connectorTo(service: LoyaltyService): HttpDataConnector {
  // No retries: an answer of 500 must fail the test at once, not be retried into a pass.
  return new HttpDataConnector({ url: service.url.replace('http://', `http://custodian:${SECRET}@`), retries: 0 });
}

/** Every row of a scan, page by page until `next` is null; each page at most `limit` rows, each cursor new. */
async function scanAll(connector: HttpDataConnector, query: Omit<ScanQuery, 'limit' | 'cursor'>, limit: number): Promise<Row[]> {
  const rows: Row[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < 1_000; n++) {
    const page = await connector.scan(accounts, { ...query, cursor, limit });
    expect(page.rows.length).toBeLessThanOrEqual(limit);
    rows.push(...page.rows);
    if (page.next === null) return rows;
    expect(page.next).not.toBe(cursor);
    cursor = page.next;
  }
  throw new Error('the scan did not end');
}

interface RawAnswer {
  readonly status: number;
  readonly contentType: string | null;
  readonly allow: string | null;
  readonly text: string;
  readonly json: unknown;
}

/** One raw request to the service, signed with `secret` unless it is null. */
async function post(service: LoyaltyService, path: string, body: unknown, options: { secret?: string | null; method?: string } = {}): Promise<RawAnswer> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const secret = options.secret === undefined ? SECRET : options.secret;
  const timestamp = Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const method = options.method ?? 'POST';
  if (secret !== null) {
    headers['custodian-timestamp'] = String(timestamp);
    headers['custodian-signature'] = signCustodianRequest(secret, timestamp, text, { method, path: new URL(`${service.url}${path}`).pathname });
  }
  const response = await fetch(`${service.url}${path}`, { method, headers, ...(method === 'GET' ? {} : { body: text }) });
  const answer = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(answer);
  } catch {
    json = undefined;
  }
  return { status: response.status, contentType: response.headers.get('content-type'), allow: response.headers.get('allow'), text: answer, json };
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isCustodianError(err)) throw new Error(`expected a CustodianError, got ${String(err)}`);
  return { code: err.code, details: err.details as Record<string, unknown> };
}

describe('the sample loyalty service: the optional scan and retention operations of the callback protocol', () => {
  let service: LoyaltyService;

  beforeAll(async () => {
    service = await startLoyaltyService({ port: 0, secret: SECRET, accounts: members(40) });
  });
  afterAll(async () => {
    await service?.close();
  });

  it('advertises scan and retention in its capabilities answer, to signed calls only, without saying why it refuses', async () => {
    expect(await connectorTo(service).capabilities(accounts)).toEqual({ scan: true, scanWindow: true, retention: true });
    const signed = await post(service, '/accounts/capabilities', { requestId: 'r-1', collection: 'accounts' });
    expect(signed).toMatchObject({ status: 200, json: { operations: ['scan', 'retention'] } });
    const unsigned = await post(service, '/accounts/capabilities', { requestId: 'r-1', collection: 'accounts' }, { secret: null });
    const wrong = await post(service, '/accounts/capabilities', { requestId: 'r-1', collection: 'accounts' }, { secret: 'another-secret' });
    for (const refused of [unsigned, wrong]) {
      expect(refused.status).toBe(401);
      expect(refused.json).toEqual({ error: { code: 'LOYALTY_ERR_UNAUTHENTICATED', message: 'the request does not carry a valid Custodian signature' } });
    }
    // A collection the service does not hold: 404, which the connector reads as "nothing offered".
    expect(await connectorTo(service).capabilities({ name: 'orders', options: {} })).toEqual({ scan: false, scanWindow: false, retention: false });
  });

  it('property: a scan walks every account exactly once, whatever the number of accounts, the page size and the key field', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 25 }), fc.constantFrom('email', 'points'), async (n, limit, keyField) => {
        // `points` repeats: pages by key alone would lose the accounts that tie at a page boundary.
        const own = await startLoyaltyService({ port: 0, secret: SECRET, accounts: members(n) });
        try {
          const rows = await scanAll(connectorTo(own), { keyField, fields: ['email', 'tier'] }, limit);
          expect(emails(rows as { email: unknown }[])).toEqual(emails(members(n)));
          for (const row of rows) expect(Object.keys(row).sort()).toEqual([...new Set([keyField, 'email', 'tier'])].sort());
        } finally {
          await own.close();
        }
      }),
      { numRuns: 20 },
    );
  });

  it('applies a window [from, to) to last_activity_at; accounts without an instant lie outside every window', async () => {
    const connector = connectorTo(service);
    const within = (from: string | undefined, to: string | undefined): string[] =>
      emails(members(40).filter((a) => (from === undefined && to === undefined) || (/^\d{4}-/.test(String(a.last_activity_at)) && (from === undefined || a.last_activity_at >= from) && (to === undefined || a.last_activity_at < to))));
    const cases: Array<[string | undefined, string | undefined]> = [
      [undefined, CUTOFF],
      [CUTOFF, undefined],
      ['2023-03-11T10:00:00.000Z', '2023-05-13T10:00:00.000Z'], // member 11's exact time (in) to member 13's (out)
      ['2030-01-01T00:00:00.000Z', undefined],
      [undefined, undefined],
    ];
    for (const [from, to] of cases) {
      const rows = await scanAll(connector, { keyField: 'email', fields: [], timeField: 'last_activity_at', from, to }, 4);
      expect(emails(rows as { email: unknown }[]), `window [${from}, ${to})`).toEqual(within(from, to));
      // The connector drops rows outside the window itself: ask the service directly, so its own filter counts.
      const raw = await post(service, '/accounts/scan', { requestId: 'r-w', collection: 'accounts', keyField: 'email', fields: ['last_activity_at'], limit: 10_000, ...(from === undefined && to === undefined ? {} : { timeField: 'last_activity_at' }), ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) });
      expect(raw.status).toBe(200);
      expect(emails((raw.json as { rows: { email: unknown }[] }).rows), `service window [${from}, ${to})`).toEqual(within(from, to));
      expect((raw.json as { next: unknown }).next).toBeNull();
    }
    // The model itself puts the bounds where the protocol does.
    expect(within('2023-03-11T10:00:00.000Z', '2023-05-13T10:00:00.000Z')).toContain('member011@example.com');
    expect(within('2023-03-11T10:00:00.000Z', '2023-05-13T10:00:00.000Z')).not.toContain('member013@example.com');
  });

  it('keeps a retention walk right while each page is deleted before the next is asked for', async () => {
    const own = await startLoyaltyService({ port: 0, secret: SECRET, accounts: members(45) });
    try {
      const connector = connectorTo(own);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let n = 0; n < 100; n++) {
        const page = await connector.findExpired(accounts, { ...due, keyField: 'email', fields: ['tier'], cursor, limit: 4 });
        seen.push(...page.rows.map((r) => String(r.email)));
        expect(await connector.deleteExpired(accounts, 'email', page.rows.map((r) => String(r.email)), due)).toBe(page.rows.length);
        if (page.next === null) break;
        cursor = page.next;
      }
      // Paging by position would skip as many accounts per page as the previous page deleted.
      expect(seen.sort()).toEqual(emails(pastDue(members(45))));
      expect(emails(own.accounts())).toEqual(emails(notDue(members(45))));
    } finally {
      await own.close();
    }
  });

  it('counts, anonymises and deletes only accounts still past due, idempotently; a retried requestId gets the first answer', async () => {
    const own = await startLoyaltyService({ port: 0, secret: SECRET, accounts: members(30) });
    try {
      const connector = connectorTo(own);
      const dueNow = pastDue(members(30));
      expect(await connector.countExpired(accounts, due)).toBe(dueNow.length);
      expect(await connector.countExpired(accounts, due, { from: '2023-06-01T00:00:00.000Z' })).toBe(pastDue(members(30)).filter((a) => a.last_activity_at >= '2023-06-01').length);
      const every = members(30).map((a) => a.email);
      const changes = every.map((email) => ({ key: email, set: { tier: null, points: 0 } }));
      expect(await connector.updateExpired(accounts, 'email', changes, due)).toBe(dueNow.length);
      expect(await connector.updateExpired(accounts, 'email', changes, due)).toBe(0);
      for (const a of own.accounts()) {
        if (dueNow.some((d) => d.email === a.email)) expect(a).toMatchObject({ tier: null, points: 0 });
        else expect(a).toEqual(members(30).find((m) => m.email === a.email));
      }
      // Hostile keys are data: they match nothing.
      expect(await connector.deleteExpired(accounts, 'email', [...every, ...HOSTILE_VALUES], due)).toBe(dueNow.length);
      expect(await connector.deleteExpired(accounts, 'email', every, due)).toBe(0);
      expect(emails(own.accounts())).toEqual(emails(notDue(members(30))));

      // A retry after a lost answer: the same requestId is answered with the first count, not 0.
      const retried = await startLoyaltyService({ port: 0, secret: SECRET, accounts: members(3) });
      try {
        const body = { requestId: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', collection: 'accounts', operation: 'delete', ageField: 'last_activity_at', cutoff: CUTOFF, keyField: 'email', keys: ['member001@example.com', 'member002@example.com'] };
        expect((await post(retried, '/accounts/retention', body)).json).toEqual({ count: 1 });
        expect((await post(retried, '/accounts/retention', body)).json).toEqual({ count: 1 });
        expect((await post(retried, '/accounts/retention', { ...body, requestId: 'another' })).json).toEqual({ count: 0 });
        expect(emails(retried.accounts())).toEqual(['member002@example.com', 'member003@example.com']);
      } finally {
        await retried.close();
      }
    } finally {
      await own.close();
    }
  });

  it('refuses malformed requests with typed JSON errors naming the path, never a value sent or a stack trace', async () => {
    const marker = 'secret-value-4711@example.com';
    const scan = { requestId: 'r-2', collection: 'accounts', keyField: 'email', fields: ['email'], limit: 10 };
    const count = { requestId: 'r-3', collection: 'accounts', operation: 'count', ageField: 'last_activity_at', cutoff: CUTOFF };
    const del = { ...count, operation: 'delete', keyField: 'email', keys: [marker] };
    const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const cases: Array<[string, unknown, number, string, string | undefined]> = [
      ['/accounts/scan', { ...scan, limit: 0 }, 400, 'LOYALTY_ERR_MALFORMED', 'limit'],
      ['/accounts/scan', { ...scan, limit: 10_001 }, 400, 'LOYALTY_ERR_MALFORMED', 'limit'],
      ['/accounts/scan', { ...scan, limit: '5' }, 400, 'LOYALTY_ERR_MALFORMED', 'limit'],
      ['/accounts/scan', { ...scan, limit: 2.5 }, 400, 'LOYALTY_ERR_MALFORMED', 'limit'],
      ['/accounts/scan', { ...scan, timeField: 'last_activity_at', from: marker }, 400, 'LOYALTY_ERR_MALFORMED', 'from'],
      ['/accounts/scan', { ...scan, timeField: 'last_activity_at', to: '2026-01-01T00:00:00' }, 400, 'LOYALTY_ERR_MALFORMED', 'to'],
      ['/accounts/scan', { ...scan, from: CUTOFF }, 400, 'LOYALTY_ERR_MALFORMED', 'timeField'],
      ['/accounts/scan', { ...scan, cursor: marker }, 400, 'LOYALTY_ERR_MALFORMED', 'cursor'],
      ['/accounts/scan', { ...scan, cursor: cursorOf({ after: marker }) }, 400, 'LOYALTY_ERR_MALFORMED', 'cursor'],
      ['/accounts/scan', { ...scan, cursor: 'x'.repeat(9_000) }, 400, 'LOYALTY_ERR_MALFORMED', 'cursor'],
      ['/accounts/scan', { ...scan, fields: ['email', 'password'] }, 422, 'LOYALTY_ERR_UNKNOWN_FIELD', 'fields[1]'],
      ['/accounts/scan', { ...scan, timeField: 'created_at', to: CUTOFF }, 422, 'LOYALTY_ERR_UNKNOWN_FIELD', 'timeField'],
      ['/accounts/retention', { ...count, operation: 'purge' }, 400, 'LOYALTY_ERR_MALFORMED', 'operation'],
      ['/accounts/retention', { ...count, cutoff: '2026-13-45T00:00:00.000Z' }, 400, 'LOYALTY_ERR_MALFORMED', 'cutoff'],
      ['/accounts/retention', { ...count, from: 1767225600 }, 400, 'LOYALTY_ERR_MALFORMED', 'from'],
      ['/accounts/retention', { ...count, ageField: 'birthday' }, 422, 'LOYALTY_ERR_UNKNOWN_FIELD', 'ageField'],
      ['/accounts/retention', { ...del, keys: Array.from({ length: 501 }, (_, i) => `${i}${marker}`) }, 400, 'LOYALTY_ERR_MALFORMED', 'keys'],
      ['/accounts/retention', { ...del, keys: [{ email: marker }] }, 400, 'LOYALTY_ERR_MALFORMED', 'keys[0]'],
      ['/accounts/retention', { ...del, keyField: 'id' }, 422, 'LOYALTY_ERR_UNKNOWN_FIELD', 'keyField'],
      ['/accounts/retention', { ...count, operation: 'anonymise', keyField: 'email', changes: [{ key: marker, set: { password: null } }] }, 422, 'LOYALTY_ERR_UNKNOWN_FIELD', 'changes[0].set'],
      ['/accounts/update', { requestId: 'r-4', collection: 'accounts', keyField: 'email', changes: [{ key: marker, set: { tier: { nested: marker } } }] }, 400, 'LOYALTY_ERR_MALFORMED', 'changes[0].set.tier'],
      ['/accounts/find', { requestId: 'r-5', collection: 'accounts', field: 'email', values: marker, fields: [] }, 400, 'LOYALTY_ERR_MALFORMED', 'values'],
      ['/accounts/find', { collection: 'accounts', field: 'email', values: [marker], fields: [] }, 400, 'LOYALTY_ERR_MALFORMED', 'requestId'],
      ['/accounts/find', [marker], 400, 'LOYALTY_ERR_MALFORMED', 'requestId'],
      ['/accounts/find', `{"requestId": "r-6", "values": ["${marker}"`, 400, 'LOYALTY_ERR_MALFORMED', undefined],
      ['/accounts/purge', { requestId: 'r-7', keys: [marker] }, 404, 'LOYALTY_ERR_NOT_FOUND', undefined],
      ['/orders/scan', scan, 404, 'LOYALTY_ERR_NOT_FOUND', undefined],
    ];
    for (const [path, body, status, code, issuePath] of cases) {
      const answer = await post(service, path, body);
      const label = `${path} ${JSON.stringify(body).slice(0, 120)}`;
      expect(answer.status, label).toBe(status);
      expect(answer.contentType, label).toBe('application/json');
      const error = (answer.json as LoyaltyErrorBody).error;
      expect(error.code, label).toBe(code);
      expect(typeof error.message, label).toBe('string');
      if (issuePath !== undefined) expect(error.issues?.map((i) => i.path), label).toContain(issuePath);
      expect(error.issues?.length ?? 0, label).toBeLessThanOrEqual(10);
      expect(answer.text, label).not.toContain('secret-value-4711');
      expect(answer.text, label).not.toMatch(/\bat .*\.ts:\d+|Error:|ZodError/);
    }
    const get = await post(service, '/accounts/scan', '', { method: 'GET' });
    expect(get).toMatchObject({ status: 405, allow: 'POST', json: { error: { code: 'LOYALTY_ERR_METHOD_NOT_ALLOWED' } } });
    // Nothing was changed by any of them.
    expect(emails(service.accounts())).toEqual(emails(members(40)));
  });

  it('through the connector: unknown fields are CST_ERR_CONNECTOR_SCHEMA, cursors it did not make are refused, hostile ones never reach a 500', async () => {
    const connector = connectorTo(service);
    expect((await failure(connector.scan(accounts, { keyField: 'email', fields: ['password'], limit: 10 }))).code).toBe('CST_ERR_CONNECTOR_SCHEMA');
    expect((await failure(connector.findExpired(accounts, { ageField: 'birthday', cutoff: CUTOFF, keyField: 'email', fields: [], limit: 10 }))).code).toBe('CST_ERR_CONNECTOR_SCHEMA');
    for (const value of HOSTILE_VALUES) {
      for (const cursor of [value, `http1.${value}`]) {
        const outcome = await connector.scan(accounts, { keyField: 'email', fields: [], cursor, limit: 50 }).then(
          (page) => ({ page }),
          (err: unknown) => ({ err }),
        );
        if ('page' in outcome) {
          // Read as a position, it can only yield real accounts.
          for (const r of outcome.page.rows) expect(emails(members(40))).toContain(String(r.email));
          continue;
        }
        const err = outcome.err;
        if (!isCustodianError(err)) throw new Error(`expected a CustodianError, got ${String(err)}`);
        // The connector refuses what it did not wrap; the service answers 400 (not 500) to what it did not make.
        if (err.code !== 'CST_ERR_VALIDATION') expect({ code: err.code, status: (err.details as { status?: unknown }).status }).toEqual({ code: 'CST_ERR_CONNECTOR_FAILED', status: 400 });
      }
    }
    expect(await scanAll(connector, { keyField: 'email', fields: [] }, 16)).toHaveLength(40);
  });

  it('writes retention’s deletions back to its data file, and refuses a data file that is not a list of distinct accounts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custodian-loyalty-file-'));
    try {
      const file = join(dir, 'accounts.json');
      await writeFile(file, JSON.stringify(members(10)));
      const own = await startLoyaltyService({ port: 0, secret: SECRET, dataFile: file });
      try {
        expect(await connectorTo(own).deleteExpired(accounts, 'email', members(10).map((a) => a.email), due)).toBe(pastDue(members(10)).length);
      } finally {
        await own.close();
      }
      expect(emails(JSON.parse(await readFile(file, 'utf8')) as LoyaltyAccount[])).toEqual(emails(notDue(members(10))));
      for (const content of ['{"email": "a@example.com"}', '[{"email": "a@example.com"}, {"email": "a@example.com"}]', '[{"points": 1}]', 'not json']) {
        await writeFile(file, content);
        const refused = await startLoyaltyService({ port: 0, secret: SECRET, dataFile: file }).then(
          async (s) => {
            await s.close();
            return undefined;
          },
          (err: unknown) => err as Error,
        );
        expect(refused?.message, content).toMatch(/^the loyalty data file|^loyalty accounts must be/);
        expect(refused?.message).not.toContain('a@example.com');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the sample loyalty service when its data file cannot be written', () => {
  it('undoes a change whose write failed, so the retry deletes the account instead of answering 0, and later changes work', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custodian-loyalty-fail-'));
    try {
      const file = join(dir, 'accounts.json');
      const list = members(4);
      await writeFile(file, JSON.stringify(list));
      const own = await startLoyaltyService({ port: 0, secret: SECRET, dataFile: file });
      try {
        const [first, second] = list.map((a) => a.email);
        const erase = (requestId: string, email: string) => post(own, '/accounts/delete', { requestId, collection: 'accounts', keyField: 'email', keys: [email] });
        // One transient write failure: the temporary file's name is taken by a directory (EISDIR).
        await mkdir(`${file}.tmp`);
        const failed = await erase('r-1', first!);
        expect(failed.status).toBe(500);
        expect(emails(own.accounts())).toContain(first); // memory agrees with the file
        expect(emails(JSON.parse(await readFile(file, 'utf8')) as LoyaltyAccount[])).toContain(first);
        await rm(`${file}.tmp`, { recursive: true });
        // The connector retries the same requestId: the account is deleted now, and the count says so.
        expect((await erase('r-1', first!)).json).toEqual({ count: 1 });
        expect((await erase('r-2', second!)).json).toEqual({ count: 1 });
        expect(emails(JSON.parse(await readFile(file, 'utf8')) as LoyaltyAccount[])).toEqual(emails(list.slice(2)));
        expect(emails(own.accounts())).toEqual(emails(list.slice(2)));
        // A retry that arrives while the first attempt is still writing gets that attempt's answer, not 0.
        const both = await Promise.all([erase('r-3', list[2]!.email), erase('r-3', list[2]!.email)]);
        expect(both.map((b) => b.json)).toEqual([{ count: 1 }, { count: 1 }]);
      } finally {
        await own.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a member an operation does not take, so a signed retention body replayed to delete cannot skip the age check', async () => {
    const own = await startLoyaltyService({ port: 0, secret: SECRET, accounts: members(4) });
    try {
      const replayed = await post(own, '/accounts/delete', { requestId: 'r-9', collection: 'accounts', operation: 'delete', ageField: 'last_activity_at', cutoff: '2000-01-01T00:00:00.000Z', keyField: 'email', keys: members(4).map((a) => a.email) });
      expect(replayed.status).toBe(400);
      expect((replayed.json as LoyaltyErrorBody).error.code).toBe('LOYALTY_ERR_MALFORMED');
      expect(own.accounts()).toHaveLength(4);
    } finally {
      await own.close();
    }
  });
});

describe('the sample shop’s retention rule on the loyalty accounts, end to end', () => {
  const CUSTOMERS = 40;
  const SEED = 7;
  /** The run's clock: cutoff = NOW − P2Y = 2024-06-01, after every dormant member's last activity, before every active one's. */
  const NOW = Date.parse('2026-06-01T00:00:00.000Z');
  const loyalty = generateSampleData(CUSTOMERS, SEED).loyalty;
  const dormant = emails(pastDue(loyalty, '2024-06-01T00:00:00.000Z'));
  let dir: string;
  let service: LoyaltyService;
  let store: StoreFixture;
  let c: Custodian;
  let seeded: SeedSampleAppResult;
  const previousSecret = process.env[LOYALTY_SECRET_ENV];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'custodian-sample-loyalty-'));
    // The data map names the variable; the connector reads the secret from the process environment.
    process.env[LOYALTY_SECRET_ENV] = SECRET;
    service = await startLoyaltyService({ port: 0, secret: SECRET, accounts: loyalty });
    seeded = await seedSampleApp({ dir, customers: CUSTOMERS, seed: SEED, loyaltyUrl: service.url });
    store = await storeFixture('sqlite');
    c = await createCustodian(loadConfig({}, { dbUrl: store.url, dataDir: store.dir, logLevel: 'silent' }), { clock: { now: () => NOW }, retention: { batchSize: 2 } });
    await c.datamap.put(parse(seeded.manifest), { actor: 'test' });
  });
  afterAll(async () => {
    await c?.close();
    await service?.close();
    await store?.cleanup();
    await rm(dir, { recursive: true, force: true });
    if (previousSecret === undefined) delete process.env[LOYALTY_SECRET_ENV];
    else process.env[LOYALTY_SECRET_ENV] = previousSecret;
  });

  it('deletes the dormant accounts page by page through scan and retention, keeping active members and held ones', async () => {
    expect(dormant.length).toBeGreaterThanOrEqual(5);
    expect(dormant.length).toBeLessThan(loyalty.length);
    const [requested, litigated] = dormant as [string, string];
    // An open access request holds its subject; so does a legal hold (GDPR Art. 17(3)(e)).
    expect((await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: requested }, authenticated: true, actor: 'test' })).status).toBe('in_progress');
    await c.retention.createHold({ scope: 'subject', identity: { kind: 'email', value: litigated }, reason: 'case 17', actor: 'test' });

    const before = (await c.retention.report()).rules.find((r) => r.collection === 'loyalty_service.accounts');
    expect(before).toMatchObject({ action: 'delete', field: 'last_activity_at', period: 'P2Y', pastDue: dormant.length - 2, pastDueHeld: 2, heldReasons: { subject_legal_hold: 1, open_request: 1 }, compliant: false, error: null });

    const realFetch = globalThis.fetch;
    const scans: Array<{ limit: number; cursor?: string }> = [];
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      // The connector calls fetch(url: string, { body: string }).
      if (typeof input === 'string' && input.endsWith('/privacy/accounts/scan') && typeof init?.body === 'string') scans.push(JSON.parse(init.body) as { limit: number; cursor?: string });
      return realFetch(input, init);
    });
    let run: RetentionRunView;
    try {
      run = await c.retention.run({ system: 'loyalty', actor: 'test' });
    } finally {
      spy.mockRestore();
    }
    expect(run.status).toBe('completed');
    expect(run.collections).toEqual([expect.objectContaining({ collection: 'loyalty_service.accounts', state: 'done', matched: dormant.length, deleted: dormant.length - 2, skipped: { subject_hold: 2 }, error: null })]);
    // Pages of two, each resumed with the cursor the service gave for the previous one.
    expect(scans.length).toBeGreaterThanOrEqual(Math.ceil(dormant.length / 2));
    expect(scans.every((s) => s.limit === 2)).toBe(true);
    expect(scans[0]!.cursor).toBeUndefined();
    expect(scans.slice(1).every((s) => typeof s.cursor === 'string')).toBe(true);

    const left = emails(service.accounts());
    expect(left).toEqual(emails(loyalty.filter((a) => !dormant.includes(a.email) || a.email === requested || a.email === litigated)));
    const after = (await c.retention.report()).rules.find((r) => r.collection === 'loyalty_service.accounts');
    expect(after).toMatchObject({ pastDue: 0, pastDueHeld: 2, compliant: true });
    // Run again: nothing more to delete, the held members still kept.
    const again = await c.retention.run({ system: 'loyalty', actor: 'test' });
    expect(again.collections[0]).toMatchObject({ matched: 2, deleted: 0, skipped: { subject_hold: 2 } });
    expect(emails(service.accounts())).toEqual(left);
  });

  it('`custodian retention run` applies the rule of the data map the seed writes', async () => {
    // The active members' last activity is moved to last month, so the wall clock the CLI runs on keeps them.
    const recent = new Date(Date.now() - 30 * 86_400_000).toISOString();
    const isDormant = (a: LoyaltyAccount): boolean => a.last_activity_at < '2024-01-01';
    const members12 = generateSampleData(12, SEED).loyalty.map((a) => (isDormant(a) ? a : { ...a, last_activity_at: recent }));
    const dormant12 = members12.filter(isDormant).map((a) => a.email);
    expect(dormant12.length).toBeGreaterThan(0);
    const own = await startLoyaltyService({ port: 0, secret: SECRET, accounts: members12 });
    const ownDir = await mkdtemp(join(tmpdir(), 'custodian-sample-loyalty-cli-'));
    const ownStore = await storeFixture('sqlite');
    try {
      const { manifestPath } = await seedSampleApp({ dir: ownDir, customers: 12, seed: SEED, loyaltyUrl: own.url });
      const opts = ['--db', ownStore.url, '--data-dir', ownStore.dir];
      const pushed = await runCliCaptured(['datamap', 'push', manifestPath, ...opts]);
      expect(pushed.code, pushed.stderr).toBe(0);
      const ran = await runCliCaptured(['retention', 'run', '--system', 'loyalty', '--format', 'json', ...opts]);
      expect(ran.code, ran.stderr).toBe(0);
      const run = JSON.parse(ran.stdout) as RetentionRunView;
      expect(run.collections).toEqual([expect.objectContaining({ collection: 'loyalty_service.accounts', state: 'done', deleted: dormant12.length, error: null })]);
      expect(emails(own.accounts())).toEqual(emails(members12.filter((a) => !dormant12.includes(a.email))));
    } finally {
      await own.close();
      await ownStore.cleanup();
      await rm(ownDir, { recursive: true, force: true });
    }
  });
});
