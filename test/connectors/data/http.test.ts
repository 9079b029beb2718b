import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CollectionTarget, Row } from '../../../src/connectors/data/data-connector.js';
import { HttpDataConnector, openHttpDataConnector } from '../../../src/connectors/data/http.js';
import { SIGNATURE_TOLERANCE_SECONDS, signCustodianRequest, verifyCustodianSignature } from '../../../src/connectors/data/http-signature.js';
import { isCustodianError } from '../../../src/core/index.js';
import { describeConformance, person } from './conformance.js';
import { startReferenceReceiver, type ReferenceReceiver } from './reference-receiver.js';

const SECRET = 'example-shared-secret';
const PEOPLE_FIELDS = ['id', 'email', 'name', 'note', 'ref'];

async function collect(iterable: AsyncIterable<readonly Row[]>): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const batch of iterable) rows.push(...batch);
  return rows;
}

async function failure(promise: Promise<unknown>): Promise<{ code?: string; message: string; details: Record<string, unknown> }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isCustodianError(err)) throw new Error(`expected a CustodianError, got ${String(err)}`);
  return { code: err.code, message: err.message, details: err.details as Record<string, unknown> };
}

describeConformance('http', async () => {
  const receiver = await startReferenceReceiver({ secret: SECRET, basePath: '/privacy', pageSize: 128, collections: { people: PEOPLE_FIELDS } });
  const connector = await openHttpDataConnector(receiver.url.replace('http://', `http://custodian:${SECRET}@`));
  return {
    connector,
    scans: false,
    target: (collection) => ({ name: collection, options: {} }),
    seed: async (rows) => {
      receiver.rows.set(
        'people',
        rows.map((r) => ({ ...r })),
      );
    },
    cleanup: async () => {
      await connector.close();
      await receiver.close();
    },
  };
});

describeConformance('http (scan and retention operations)', async () => {
  const receiver = await startReferenceReceiver({
    secret: SECRET,
    basePath: '/privacy',
    pageSize: 128,
    operations: ['scan', 'retention'],
    collections: { people: PEOPLE_FIELDS, visits: ['id', 'at', 'email', 'note'] },
  });
  const connector = await openHttpDataConnector(receiver.url.replace('http://', `http://custodian:${SECRET}@`));
  return {
    connector,
    unknownCollectionScan: 'CST_ERR_CONNECTOR_UNSUPPORTED',
    target: (collection) => ({ name: collection, options: {} }),
    seed: async (rows) => {
      receiver.rows.set(
        'people',
        rows.map((r) => ({ ...r })),
      );
    },
    visits: {
      target: { name: 'visits', options: {} },
      seed: async (rows) => {
        receiver.rows.set(
          'visits',
          rows.map((r) => ({ ...r })),
        );
      },
    },
    cleanup: async () => {
      await connector.close();
      await receiver.close();
    },
  };
});

describe('http callback signatures', () => {
  const body = '{"requestId":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","collection":"newsletter","field":"email","values":["ada@example.com"],"fields":["email","name"]}';
  const at = 1767225600;

  it('matches the worked example of docs/requests.md (Connectors beyond SQL)', () => {
    expect(signCustodianRequest(SECRET, at, body)).toBe('v1=c1c43546dbbddb97c00921204e3ccb5164939a9c0afa7e958dc63609d90354d7');
    expect(signCustodianRequest(SECRET, at, body, { method: 'POST', path: '/privacy/newsletter/find' })).toBe(
      'v1=c1c43546dbbddb97c00921204e3ccb5164939a9c0afa7e958dc63609d90354d7,v2=2c16490691eb7efabfdd27c5145aad330a8416da539061460e38e66bd1cf599d',
    );
  });

  it('accepts a good signature within the replay window, either way', () => {
    const header = signCustodianRequest(SECRET, at, body);
    expect(verifyCustodianSignature(SECRET, String(at), body, header, at * 1000)).toEqual({ ok: true });
    expect(verifyCustodianSignature(SECRET, String(at), Buffer.from(body), header, (at + SIGNATURE_TOLERANCE_SECONDS) * 1000)).toEqual({ ok: true });
    expect(verifyCustodianSignature(SECRET, String(at), body, header, (at - SIGNATURE_TOLERANCE_SECONDS) * 1000)).toEqual({ ok: true });
    // Rotation: several secrets on the receiver, several signatures from the sender.
    expect(verifyCustodianSignature(['new-secret', SECRET], String(at), body, header, at * 1000)).toEqual({ ok: true });
    expect(verifyCustodianSignature(SECRET, String(at), body, `${signCustodianRequest('new-secret', at, body)}, ${header}, v3=zzz`, at * 1000)).toEqual({ ok: true });
  });

  it('v2 binds the method and path: HMAC of "<timestamp>.<METHOD> <path>.<body>", beside v1 for receivers written before it', () => {
    const target = { method: 'post', path: '/privacy/newsletter/find' };
    const header = signCustodianRequest(SECRET, at, body, target);
    const independent = createHmac('sha256', SECRET).update(`${at}.POST /privacy/newsletter/find.${body}`).digest('hex');
    expect(header).toBe(`${signCustodianRequest(SECRET, at, body)},v2=${independent}`);
    expect(verifyCustodianSignature(SECRET, String(at), body, header, at * 1000, { method: 'POST', path: '/privacy/newsletter/find' })).toEqual({ ok: true });
    expect(verifyCustodianSignature(SECRET, String(at), body, header, at * 1000)).toEqual({ ok: true }); // a v1 receiver
    expect(verifyCustodianSignature(SECRET, String(at), body, signCustodianRequest(SECRET, at, body), at * 1000, target)).toEqual({ ok: false, reason: 'malformed' }); // no v2 entry
    expect(verifyCustodianSignature(SECRET, String(at), body, header, at * 1000, { method: 'POST', path: 'privacy/newsletter/find' })).toEqual({ ok: false, reason: 'malformed' });
    fc.assert(
      fc.property(fc.constantFrom('POST', 'GET', 'PUT'), fc.constantFrom('/privacy/newsletter/find', '/privacy/newsletter/delete', '/privacy/people/find', '/privacy/newsletter/find/'), (method, path) => {
        const same = method === 'POST' && path === target.path;
        expect(verifyCustodianSignature(SECRET, String(at), body, header, at * 1000, { method, path }).ok).toBe(same);
      }),
    );
  });

  it('refuses a wrong secret, a stale or future timestamp, a tampered body and malformed headers', () => {
    const header = signCustodianRequest(SECRET, at, body);
    expect(verifyCustodianSignature('another-secret', String(at), body, header, at * 1000)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyCustodianSignature(SECRET, String(at), body.replace('ada@', 'bob@'), header, at * 1000)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyCustodianSignature(SECRET, String(at + 1), body, header, at * 1000)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyCustodianSignature(SECRET, String(at), body, header, (at + SIGNATURE_TOLERANCE_SECONDS + 1) * 1000)).toEqual({ ok: false, reason: 'stale' });
    expect(verifyCustodianSignature(SECRET, String(at), body, header, (at - SIGNATURE_TOLERANCE_SECONDS - 1) * 1000)).toEqual({ ok: false, reason: 'stale' });
    for (const [ts, h] of [
      [undefined, header],
      [String(at), undefined],
      ['12.5', header],
      [String(at), 'v1=abc'],
      [String(at), 'sha256=' + header.slice(3)],
      [String(at), header.toUpperCase().replace('V1=', 'v1=')],
    ] as const) {
      expect(verifyCustodianSignature(SECRET, ts, body, h, at * 1000).ok).toBe(false);
    }
    expect(verifyCustodianSignature('', String(at), body, header, at * 1000)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('http data connector', () => {
  let receiver: ReferenceReceiver;
  const people: CollectionTarget = { name: 'people', options: {} };
  const withSecret = (secret: string, extra: Partial<ConstructorParameters<typeof HttpDataConnector>[0]> = {}) =>
    new HttpDataConnector({ url: receiver.url.replace('http://', `http://custodian:${encodeURIComponent(secret)}@`), backoffBaseMs: 5, ...extra });

  beforeAll(async () => {
    receiver = await startReferenceReceiver({ secret: SECRET, basePath: '/privacy', pageSize: 3, collections: { people: PEOPLE_FIELDS, 'crm/contacts': ['email'] } });
  });
  afterEach(() => {
    receiver.rows.set(
      'people',
      Array.from({ length: 10 }, (_, i) => person(i + 1)),
    );
    receiver.requests.length = 0;
  });
  afterAll(async () => {
    await receiver.close();
  });

  it('signs every request; the receiver refuses a wrong secret and a skewed clock (CST_ERR_CONNECTOR_PERMISSION)', async () => {
    receiver.rows.set('people', [person(1)]);
    expect((await collect(withSecret(SECRET).find(people, 'id', ['p-00001'], ['email'])))[0]?.email).toBe('person1@example.com');
    expect(receiver.requests.at(-1)?.verdict).toBe('ok');
    const wrong = await failure(collect(withSecret('not-the-secret').find(people, 'id', ['p-00001'], ['email'])));
    expect(wrong.code).toBe('CST_ERR_CONNECTOR_PERMISSION');
    expect(wrong.details.status).toBe(401);
    expect(JSON.stringify(wrong)).not.toContain('not-the-secret');
    expect(receiver.requests.at(-1)?.verdict).toBe('mismatch');
    const skewed = await failure(withSecret(SECRET, { now: () => Date.now() - 6 * 60_000 }).deleteRows(people, 'id', ['p-00001']));
    expect(skewed.code).toBe('CST_ERR_CONNECTOR_PERMISSION');
    expect(receiver.requests.at(-1)?.verdict).toBe('stale');
    expect(receiver.rows.get('people')!.length).toBe(1);
  });

  it('the receiver refuses a tampered body, a replayed signature on another body or another path, and a v1-only signature', async () => {
    const body = JSON.stringify({ requestId: 'r1', collection: 'people', keyField: 'id', keys: ['p-00001'] });
    const ts = Math.floor(Date.now() / 1000);
    const target = { method: 'POST', path: new URL(`${receiver.url}/people/delete`).pathname };
    const headers = { 'content-type': 'application/json', 'custodian-timestamp': String(ts), 'custodian-signature': signCustodianRequest(SECRET, ts, body, target) };
    const tampered = body.replace('p-00001', 'p-00002');
    expect((await fetch(`${receiver.url}/people/delete`, { method: 'POST', headers, body: tampered })).status).toBe(401);
    expect(receiver.requests.at(-1)?.verdict).toBe('mismatch');
    expect((await fetch(`${receiver.url}/people/delete`, { method: 'POST', headers: { ...headers, 'custodian-signature': 'v1=' }, body })).status).toBe(401);
    // The same signed body sent to another operation or collection: v2 binds the path.
    expect((await fetch(`${receiver.url}/people/update`, { method: 'POST', headers, body })).status).toBe(401);
    expect((await fetch(`${receiver.url}/visits/delete`, { method: 'POST', headers, body })).status).toBe(401);
    expect(receiver.requests.at(-1)?.verdict).toBe('mismatch');
    // A receiver that checks the path does not fall back to v1.
    expect((await fetch(`${receiver.url}/people/delete`, { method: 'POST', headers: { ...headers, 'custodian-signature': signCustodianRequest(SECRET, ts, body) }, body })).status).toBe(401);
    expect(receiver.rows.get('people')!.length).toBe(10);
    const ok = await fetch(`${receiver.url}/people/delete`, { method: 'POST', headers, body });
    expect(await ok.json()).toEqual({ count: 1 });
  });

  it('takes the secret from the variable named by secretEnv, and says when it is missing', async () => {
    const env = { CRM_SECRET: SECRET };
    const plain = new HttpDataConnector({ url: receiver.url, env });
    const target = { name: 'people', options: { secretEnv: 'CRM_SECRET' } };
    expect((await collect(plain.find(target, 'id', ['p-00002'], ['name'])))[0]?.name).toBe('Person 2');
    expect((await failure(collect(plain.find(people, 'id', ['p-00002'], ['name'])))).code).toBe('CST_ERR_CONFIG');
    expect((await failure(collect(plain.find({ name: 'people', options: { secretEnv: 'UNSET' } }, 'id', ['p-00002'], ['name'])))).code).toBe('CST_ERR_CONFIG');
  });

  it('posts to <base>/<path>/<operation>, pages through cursors, and batches values', async () => {
    receiver.rows.set('crm/contacts', [{ email: 'a@example.com' }]);
    const svc = withSecret(SECRET);
    expect(await collect(svc.find({ name: 'contacts', options: { path: 'crm/contacts' } }, 'email', ['a@example.com'], []))).toEqual([{ email: 'a@example.com' }]);
    expect(receiver.requests.at(-1)?.path).toBe('/privacy/crm/contacts/find');
    for (const path of ['../people', 'crm//contacts', '/people', 'a?b', '.']) {
      expect((await failure(collect(svc.find({ name: 'x', options: { path } }, 'email', ['a'], [])))).code, path).toBe('CST_ERR_CONNECTOR_SCHEMA');
    }
    receiver.requests.length = 0;
    // 10 rows, pages of 3: four pages.
    const rows = await collect(svc.find(people, 'ref', [1, 2, 3, 4, 5, 6, 7, 8, 9, 0], ['id']));
    expect(rows.length).toBe(10);
    const bodies = receiver.requests.map((r) => JSON.parse(r.body) as { requestId: string; cursor?: string });
    expect(bodies.map((b) => b.cursor)).toEqual([undefined, '3', '6', '9']);
    expect(new Set(bodies.map((b) => b.requestId)).size).toBe(1);
    receiver.requests.length = 0;
    await collect(svc.find(people, 'id', Array.from({ length: 1001 }, (_, i) => `x${i}`), ['id']));
    expect(receiver.requests.map((r) => (JSON.parse(r.body) as { values: unknown[] }).values.length)).toEqual([500, 500, 1]);
  });

  it('drops rows a lax receiver answers for values that were not asked, and keeps only the asked fields', async () => {
    const { createServer } = await import('node:http');
    const lax = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ rows: [{ email: 'asked@example.com', name: 'A', secret: 'x' }, { email: 'other@example.com', name: 'B' }] }));
    });
    await new Promise<void>((r) => lax.listen(0, '127.0.0.1', r));
    try {
      const port = (lax.address() as { port: number }).port;
      const svc = new HttpDataConnector({ url: `http://c:${SECRET}@127.0.0.1:${port}` });
      expect(await collect(svc.find(people, 'email', ['asked@example.com'], ['name']))).toEqual([{ email: 'asked@example.com', name: 'A' }]);
    } finally {
      lax.close();
    }
  });

  it('retries 503 and 429 with backoff, then succeeds; the same requestId makes a retried delete count once', async () => {
    const svc = withSecret(SECRET);
    receiver.failNext(503, 2);
    expect((await collect(svc.find(people, 'id', ['p-00003'], ['name'])))[0]?.name).toBe('Person 3');
    expect(receiver.requests.map((r) => r.verdict)).toEqual(['injected', 'injected', 'ok']);
    receiver.requests.length = 0;
    receiver.failNext(429, 1, { 'retry-after': '0' });
    expect(await svc.deleteRows(people, 'id', ['p-00003'])).toBe(1);
    const ids = receiver.requests.map((r) => (JSON.parse(r.body) as { requestId: string }).requestId);
    expect(ids.length).toBe(2);
    expect(ids[0]).toBe(ids[1]);
  });

  it('gives up after the bounded attempts with CST_ERR_CONNECTOR_UNAVAILABLE', async () => {
    const svc = withSecret(SECRET, { retries: 2 });
    receiver.failNext(502, 3);
    const err = await failure(svc.deleteRows(people, 'id', ['p-00004']));
    expect(err.code).toBe('CST_ERR_CONNECTOR_UNAVAILABLE');
    expect(err.details).toMatchObject({ status: 502, attempts: 3 });
    expect(receiver.requests.length).toBe(3);
    expect(receiver.rows.get('people')!.some((r) => r.id === 'p-00004')).toBe(true);
    const down = await failure(new HttpDataConnector({ url: `http://c:${SECRET}@127.0.0.1:1`, retries: 1, backoffBaseMs: 1 }).deleteRows(people, 'id', ['x']));
    expect(down).toMatchObject({ code: 'CST_ERR_CONNECTOR_UNAVAILABLE', details: { reason: 'network', attempts: 2 } });
  });

  it('maps 4xx to connector codes with the status, never echoing the body', async () => {
    const svc = withSecret(SECRET);
    for (const [status, code] of [
      [400, 'CST_ERR_CONNECTOR_FAILED'],
      [409, 'CST_ERR_CONNECTOR_FAILED'],
      [403, 'CST_ERR_CONNECTOR_PERMISSION'],
      [404, 'CST_ERR_CONNECTOR_SCHEMA'],
      [422, 'CST_ERR_CONNECTOR_SCHEMA'],
      [501, 'CST_ERR_CONNECTOR_UNSUPPORTED'],
    ] as const) {
      receiver.failNext(status);
      const err = await failure(svc.updateRows(people, 'id', [{ key: 'p-00001', set: { name: null } }]));
      expect(err.code, String(status)).toBe(code);
      expect(err.details.status).toBe(status);
      expect(JSON.stringify(err)).not.toContain('secret-body-text');
    }
    expect(receiver.requests.length).toBe(6);
  });

  it('times out a slow answer (AbortSignal) and retries it; honours the caller’s abort at once', async () => {
    const svc = withSecret(SECRET, { timeoutMs: 100, retries: 1 });
    receiver.delayNext(1_000, 2);
    const started = Date.now();
    const err = await failure(svc.deleteRows(people, 'id', ['p-00005']));
    expect(err).toMatchObject({ code: 'CST_ERR_CONNECTOR_UNAVAILABLE', details: { reason: 'timeout', attempts: 2 } });
    expect(Date.now() - started).toBeLessThan(900);
    receiver.delayNext(1_000);
    const controller = new AbortController();
    const pending = collect(withSecret(SECRET).find(people, 'id', ['p-00005'], ['name'], { signal: controller.signal }));
    setTimeout(() => controller.abort(new Error('stopped by caller')), 50);
    await expect(pending).rejects.toThrow('stopped by caller');
    await new Promise((r) => setTimeout(r, 1_000));
  });

  it('pings <base>/_ping, and refuses URLs with a query or another scheme', async () => {
    await expect(withSecret(SECRET).ping()).resolves.toBeUndefined();
    expect((await failure(withSecret('wrong').ping())).code).toBe('CST_ERR_CONNECTOR_PERMISSION');
    // Without a URL secret, any answer below 500 shows the service is up.
    await expect(new HttpDataConnector({ url: receiver.url }).ping()).resolves.toBeUndefined();
    expect((await failure(openHttpDataConnector(`${receiver.url}?secret=x`))).code).toBe('CST_ERR_CONFIG');
    expect((await failure(openHttpDataConnector('ftp://example.com/x'))).code).toBe('CST_ERR_CONFIG');
    expect((await failure(openHttpDataConnector(`http://c:${SECRET}@127.0.0.1:1`, { retries: 0 }))).code).toBe('CST_ERR_CONNECTOR_UNAVAILABLE');
  });
});

describe('http data connector: optional operations (scan, retention)', () => {
  let base: ReferenceReceiver;
  let full: ReferenceReceiver;
  const people: CollectionTarget = { name: 'people', options: {} };
  const visits: CollectionTarget = { name: 'visits', options: {} };
  const due = { ageField: 'at', cutoff: '2025-01-01T00:00:00.000Z' };
  const connect = (receiver: ReferenceReceiver, extra: Partial<ConstructorParameters<typeof HttpDataConnector>[0]> = {}) =>
    new HttpDataConnector({ url: receiver.url.replace('http://', `http://custodian:${SECRET}@`), backoffBaseMs: 5, ...extra });
  const vid = (i: number) => `v-${String(i).padStart(2, '0')}`;
  const seedVisits = (receiver: ReferenceReceiver) =>
    receiver.rows.set(
      'visits',
      Array.from({ length: 12 }, (_, i) => ({ id: vid(i), email: `v${i}@example.com`, note: 'n', at: i % 2 === 0 ? '2020-01-01T00:00:00.000Z' : '2030-01-01T00:00:00.000Z' })),
    );

  beforeAll(async () => {
    const collections = { people: PEOPLE_FIELDS, visits: ['id', 'at', 'email', 'note'] };
    base = await startReferenceReceiver({ secret: SECRET, basePath: '/privacy', collections });
    full = await startReferenceReceiver({ secret: SECRET, basePath: '/privacy', collections, operations: ['scan', 'retention'] });
  });
  afterEach(() => {
    for (const r of [base, full]) {
      r.requests.length = 0;
      r.clearFaults();
    }
  });
  afterAll(async () => {
    await base.close();
    await full.close();
  });

  it('discovers what a collection offers once, signed; a service of the base protocol offers nothing (typed unsupported)', async () => {
    const svc = connect(full);
    expect(await svc.capabilities(people)).toEqual({ scan: true, scanWindow: true, retention: true });
    expect(await svc.capabilities(people)).toEqual({ scan: true, scanWindow: true, retention: true });
    expect(full.requests.map((r) => [r.path, r.verdict])).toEqual([['/privacy/people/capabilities', 'ok']]);
    const plain = connect(base);
    expect(await plain.capabilities(people)).toEqual({ scan: false, scanWindow: false, retention: false });
    expect((await failure(plain.scan(people, { keyField: 'id', fields: [], limit: 5 }))).code).toBe('CST_ERR_CONNECTOR_UNSUPPORTED');
    for (const op of [
      plain.findExpired(visits, { ...due, keyField: 'id', limit: 5, fields: [] }),
      plain.countExpired(visits, due),
      plain.deleteExpired(visits, 'id', ['v-0'], due),
      plain.updateExpired(visits, 'id', [{ key: 'v-0', set: { note: null } }], due),
    ]) {
      expect((await failure(op)).code).toBe('CST_ERR_CONNECTOR_UNSUPPORTED');
    }
    // Asked once (404: not offered), then known; the operations themselves were never called.
    expect(base.requests.map((r) => r.path)).toEqual(['/privacy/people/capabilities', '/privacy/visits/capabilities']);
  });

  it('takes capabilities declared in the data map instead of asking, and refuses unknown names', async () => {
    const svc = connect(full);
    seedVisits(full);
    expect(await svc.capabilities({ name: 'visits', options: { capabilities: 'scan' } })).toEqual({ scan: true, scanWindow: true, retention: false });
    expect((await failure(svc.countExpired({ name: 'visits', options: { capabilities: 'scan' } }, due))).code).toBe('CST_ERR_CONNECTOR_UNSUPPORTED');
    expect((await failure(svc.scan({ name: 'visits', options: { capabilities: 'none' } }, { keyField: 'id', fields: [], limit: 5 }))).code).toBe('CST_ERR_CONNECTOR_UNSUPPORTED');
    expect(await svc.countExpired({ name: 'visits', options: { capabilities: 'scan, retention' } }, due)).toBe(6);
    expect((await failure(svc.capabilities({ name: 'visits', options: { capabilities: 'scan,purge' } }))).code).toBe('CST_ERR_CONNECTOR_SCHEMA');
    expect(full.requests.some((r) => r.path.endsWith('/capabilities'))).toBe(false);
    // Declared but not implemented: the service's 404 / 501 is the answer.
    expect((await failure(connect(base).countExpired({ name: 'visits', options: { capabilities: 'scan,retention' } }, due))).code).toBe('CST_ERR_CONNECTOR_SCHEMA');
  });

  it('pages a scan with the service cursor (wrapped), a window, and the retention operations in signed batches', async () => {
    const svc = connect(full);
    seedVisits(full);
    const first = await svc.scan(visits, { keyField: 'id', fields: ['email'], limit: 5, timeField: 'at', to: due.cutoff });
    expect(first.rows).toEqual([0, 2, 4, 6, 8].map((i) => ({ id: vid(i), email: `v${i}@example.com` })));
    expect(first.next).toMatch(/^http1\./);
    const body = JSON.parse(full.requests.at(-1)!.body) as Record<string, unknown>;
    expect(body).toMatchObject({ collection: 'visits', keyField: 'id', fields: ['id', 'email', 'at'], limit: 5, timeField: 'at', to: due.cutoff });
    const second = await svc.scan(visits, { keyField: 'id', fields: ['email'], limit: 5, timeField: 'at', to: due.cutoff, cursor: first.next! });
    expect((JSON.parse(full.requests.at(-1)!.body) as { cursor: string }).cursor).toBe(first.next!.slice('http1.'.length));
    expect(second).toEqual({ rows: [{ id: vid(10), email: 'v10@example.com' }], next: null });
    // Retention: keys in batches of 500, each re-checked by the service.
    const keys = [...Array.from({ length: 12 }, (_, i) => vid(i)), ...Array.from({ length: 600 }, (_, i) => `absent-${i}`)];
    full.requests.length = 0;
    expect(await svc.deleteExpired(visits, 'id', keys, due)).toBe(6);
    const sent = full.requests.map((r) => JSON.parse(r.body) as { operation: string; keys: unknown[] });
    expect(sent.map((b) => [b.operation, b.keys.length])).toEqual([
      ['delete', 500],
      ['delete', 112],
    ]);
    expect(full.requests.every((r) => r.verdict === 'ok' && r.path === '/privacy/visits/retention')).toBe(true);
    expect(full.rows.get('visits')!.map((r) => r.id)).toEqual([1, 3, 5, 7, 9, 11].map(vid));
  });

  it('drops what a lax service answers outside the asked window or fields, and refuses oversized pages and loops', async () => {
    const { createServer } = await import('node:http');
    let answer: unknown = {};
    const lax = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
    await new Promise<void>((r) => lax.listen(0, '127.0.0.1', r));
    try {
      const port = (lax.address() as { port: number }).port;
      const svc = new HttpDataConnector({ url: `http://c:${SECRET}@127.0.0.1:${port}` });
      const declared: CollectionTarget = { name: 'visits', options: { capabilities: 'scan,retention' } };
      answer = {
        rows: [
          { id: 'a', email: 'a@example.com', at: '2020-01-01T00:00:00.000Z', secret: 'x' },
          { id: 'b', email: 'b@example.com', at: '2030-01-01T00:00:00.000Z' },
          { id: 'c', email: 'c@example.com', at: 'not a time' },
          { email: 'no-key@example.com', at: '2020-01-01T00:00:00.000Z' },
        ],
      };
      // A service ignoring the window cannot put rows that are not due in front of retention.
      expect(await svc.findExpired(declared, { ...due, keyField: 'id', limit: 10, fields: ['email'] })).toEqual({ rows: [{ id: 'a', email: 'a@example.com' }], next: null });
      expect((await svc.scan(declared, { keyField: 'id', fields: [], limit: 10 })).rows).toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
      expect((await failure(svc.scan(declared, { keyField: 'id', fields: [], limit: 2 }))).code).toBe('CST_ERR_CONNECTOR_FAILED');
      answer = { rows: [], next: 'same' };
      expect((await failure(svc.scan(declared, { keyField: 'id', fields: [], limit: 2, cursor: 'http1.same' }))).details).toMatchObject({ reason: 'pagination loop' });
      answer = { rows: [], next: 'x'.repeat(9000) };
      expect((await failure(svc.scan(declared, { keyField: 'id', fields: [], limit: 2 }))).code).toBe('CST_ERR_CONNECTOR_FAILED');
      answer = { operations: 'scan' };
      expect((await failure(svc.capabilities({ name: 'visits', options: {} }))).code).toBe('CST_ERR_CONNECTOR_FAILED');
      // A cursor Custodian did not wrap never reaches the service.
      expect((await failure(svc.scan(declared, { keyField: 'id', fields: [], limit: 2, cursor: 'same' }))).code).toBe('CST_ERR_VALIDATION');
    } finally {
      lax.close();
    }
  });

  it('retries with the shared backoff (core/backoff.ts): jitter is injected, Retry-After is a floor', async () => {
    // A 10 s base delay would time the test out; a jitter of 0 retries at once.
    const svc = connect(full, { backoffBaseMs: 10_000, maxBackoffMs: 10_000, random: () => 0 });
    full.failNext(503, 2);
    const started = Date.now();
    expect(await svc.capabilities(people)).toMatchObject({ scan: true });
    expect(Date.now() - started).toBeLessThan(2_000);
    full.failNext(429, 1, { 'retry-after': '1' });
    const again = Date.now();
    expect(await connect(full, { random: () => 0 }).capabilities(people)).toMatchObject({ scan: true });
    expect(Date.now() - again).toBeGreaterThanOrEqual(990);
  });
});
