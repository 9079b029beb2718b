import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { runCli } from '../../src/cli/program.js';
import { buildServer } from '../../src/server/index.js';
import { verifyBundle, verifyCheckpoint, verifyConsistency } from '../../src/verify/index.js';
import { STORE_KINDS, custodianFixture, type StoreFixture } from '../support/stores.js';

const b64 = (s: string) => Buffer.from(s, 'base64');

describe.each(STORE_KINDS)('audit log on %s', (kind) => {
  let c: Custodian;
  let fixture: StoreFixture;
  let cleanup: () => Promise<void>;
  let app: FastifyInstance;
  let auditor: string;
  let reader: string;
  beforeAll(async () => {
    ({ custodian: c, fixture, cleanup } = await custodianFixture(kind));
    app = await buildServer(c, { logLevel: false });
    auditor = (await c.apiKeys.create({ name: 'auditor', scopes: ['audit:read'], createdBy: 'test' })).secret;
    reader = (await c.apiKeys.create({ name: 'reader', scopes: ['consent:read'], createdBy: 'test' })).secret;
  });
  afterAll(async () => {
    await app.close();
    await cleanup();
  });
  const get = (url: string, key = auditor) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

  it('records an entry with every change, in the same transaction, and none for a change that failed', async () => {
    const r = await c.ledger.record([{ subjectId: 'aud-1', purpose: 'personalize', decision: 'granted' }], { actor: 'key:test', requestId: 'req-1' });
    const key = await c.apiKeys.create({ name: 'tmp', scopes: ['consent:read'], createdBy: 'key:admin' });
    await c.apiKeys.revoke(key.id, 'key:admin');
    await c.purposes.put('marketing.postal', { title: 'Post', description: '', legalBasis: 'consent', consentRequired: true, defaultExpiryMonths: 13, jurisdictions: ['*'], gpcOptOut: false }, 'key:admin');
    await c.keyring.encryptField('aud-1', 'x', 'ctx');
    await c.keyring.shredSubject('aud-1', { reason: 'erasure', actor: 'key:admin' });
    await c.ledger.history('aud-1', {}, { actor: 'key:reader' });
    await expect(c.ledger.record([{ subjectId: 'aud-1', purpose: 'nope', decision: 'granted' }], { actor: 'key:test' })).rejects.toThrow();
    const { entries } = await c.audit.list({ limit: 50 });
    const actions = entries.map((e) => e.action);
    for (const a of ['consent.recorded', 'api_key.created', 'api_key.revoked', 'purpose.saved', 'subject.shredded', 'consent.history.read']) expect(actions).toContain(a);
    const batch = entries.find((e) => e.action === 'consent.recorded' && e.targetRef === r.batchId)!;
    expect(batch).toMatchObject({ actor: 'key:test', requestId: 'req-1', details: { events: 1, purposes: ['personalize'] } });
    expect(entries.filter((e) => e.action === 'consent.recorded').length).toBe(entries.filter((e) => e.action === 'consent.recorded').length);
    // Subject entries carry the keyed reference, never the subject id; the query by subject finds them.
    expect(JSON.stringify(entries)).not.toContain('aud-1');
    const mine = await c.audit.list({ subjectId: 'aud-1' });
    expect(mine.entries.map((e) => e.action).sort()).toEqual(['consent.history.read', 'subject.shredded']);
    expect((await c.audit.list({ subjectId: 'someone-else' })).entries).toEqual([]);
  });

  it('keeps consent events provable: each has a bundle that verifies offline with the verifier key alone', async () => {
    const r = await c.ledger.record(
      Array.from({ length: 9 }, (_, i) => ({ subjectId: `prov-${i}`, purpose: 'analytics.reporting', decision: 'granted' as const, jurisdiction: 'EU' })),
      { actor: 'key:test' },
    );
    for (const e of r.events) {
      const bundle = await c.audit.proofFor('consent', e.id);
      const check = verifyBundle(bundle, bundle.verifierKey);
      expect(check.ok).toBe(true);
      expect(JSON.parse(b64(bundle.leaf).toString('utf8'))).toMatchObject({ tree: 'consent', id: e.id, subjectId: e.subjectId, decision: 'granted' });
    }
    const res = await get(`/v1/consent/events/${r.events[0]!.id}/proof`, reader);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ event: { id: string }; bundle: Parameters<typeof verifyBundle>[0] & { verifierKey: string } }>();
    expect(body.event.id).toBe(r.events[0]!.id);
    const head = (await get('/v1/audit/checkpoint?tree=consent')).json<{ verifierKey: string }>();
    expect(verifyBundle(body.bundle, head.verifierKey).ok).toBe(true);
    const file = join(fixture.dir, 'bundle.json');
    await writeFile(file, res.body);
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: () => undefined, env: {} };
    expect(await runCli(['audit', 'verify-bundle', file, '--public-key', head.verifierKey], io)).toBe(0);
    const tampered = JSON.parse(res.body) as { bundle: { index: number } };
    tampered.bundle.index += 1;
    await writeFile(file, JSON.stringify(tampered));
    expect(await runCli(['audit', 'verify-bundle', file, '--public-key', head.verifierKey], io)).toBe(4);
  });

  it('signs heads and proves that a later head extends an earlier one', async () => {
    const h1 = await c.audit.checkpoint('consent');
    await c.ledger.record([{ subjectId: 'grow-1', purpose: 'personalize', decision: 'denied' }], { actor: 'key:test' });
    const h2 = await c.audit.checkpoint('consent');
    expect(h2.size).toBeGreaterThan(h1.size);
    expect(verifyCheckpoint(h2.checkpoint, c.audit.verifierKey('consent')).ok).toBe(true);
    const res = await get(`/v1/audit/consistency?tree=consent&from=${h1.size}&to=${h2.size}`);
    const p = res.json<{ proof: string[]; rootFrom: string; rootTo: string }>();
    expect([p.rootFrom, p.rootTo]).toEqual([h1.rootHash, h2.rootHash]);
    expect(verifyConsistency(h1.size, h2.size, p.proof.map(b64), Buffer.from(h1.rootHash, 'hex'), Buffer.from(h2.rootHash, 'hex'))).toBe(true);
    const proof = await get(`/v1/audit/entries/0/proof?tree=audit`);
    expect(verifyBundle(proof.json(), c.audit.verifierKey('audit')).ok).toBe(true);
  });

  it('builds one consistent tree from many concurrent writers', async () => {
    await Promise.all(
      Array.from({ length: 12 }, (_, w) =>
        (async () => {
          for (let i = 0; i < 5; i++) await c.ledger.record([{ subjectId: `conc-${w}-${i}`, purpose: 'personalize', decision: 'granted' }], { actor: `key:w${w}` });
        })(),
      ),
    );
    await Promise.all([c.audit.integrate('consent'), c.audit.integrate('consent'), c.audit.integrate('audit')]);
    for (const tree of ['audit', 'consent'] as const) {
      await c.audit.checkpoint(tree);
      const report = await c.audit.verify(tree);
      expect(report).toMatchObject({ ok: true });
    }
    const events = await c.store.db.selectFrom('consent_events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect((await c.audit.verify('consent')).ok && (await c.audit.latestHead('consent'))!.size).toBe(Number(events.n));
  });

  it('serves entries to audit:read keys only, and verifies from the CLI', async () => {
    expect((await get('/v1/audit', reader)).statusCode).toBe(403);
    const page = await get('/v1/audit?action=consent.recorded&limit=2');
    expect(page.statusCode).toBe(200);
    expect(page.json<{ entries: unknown[]; nextCursor: string | null }>().entries).toHaveLength(2);
    const dir = await mkdtemp(join(tmpdir(), 'custodian-audit-cli-'));
    try {
      const out: string[] = [];
      const io = { stdout: (t: string) => out.push(t), stderr: () => undefined, env: {} };
      const args = ['--db', fixture.url, '--data-dir', fixture.dir];
      expect(await runCli(['audit', 'checkpoint', '--tree', 'consent', '--out', join(dir, 'head.txt'), ...args], io)).toBe(0);
      out.length = 0;
      expect(await runCli(['audit', 'verify', '--checkpoint', join(dir, 'head.txt'), ...args], io)).toBe(0);
      expect(JSON.parse(out.join(''))).toMatchObject({ ok: true });
      out.length = 0;
      expect(await runCli(['audit', 'export', ...args], io)).toBe(0);
      const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as { id: string });
      expect(lines.length).toBeGreaterThan(5);
      expect(lines.map((l) => l.id)).toEqual([...lines.map((l) => l.id)].sort());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
