import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import { EXIT } from '../../src/cli/io.js';
import { buildServer } from '../../src/server/index.js';
import { runCliCaptured } from '../support/cli.js';
import { ADA, shopDatabase, shopManifest, type ShopTables } from '../support/shop.js';
import { custodianFixture, type StoreFixture } from '../support/stores.js';

/*
 * The CLI commands that hand out personal data audit each read like their HTTP counterpart (same action, same
 * details), with who read (`--actor`, default cli:operator) and why (`--access-purpose`, like Custodian-Purpose).
 */

type Entry = Awaited<ReturnType<Custodian['audit']['list']>>['entries'][number];

describe('custodian reads of personal data: --actor and --access-purpose', () => {
  let c: Custodian;
  let fixture: StoreFixture;
  let cleanup: () => Promise<void>;
  let dir: string;
  let app: FastifyInstance;
  let admin: string;
  let store: string[];
  let requestId: string;
  let incidentId: string;

  beforeAll(async () => {
    ({ custodian: c, fixture, cleanup } = await custodianFixture('sqlite'));
    store = ['--db', fixture.url, '--data-dir', fixture.dir];
    dir = await mkdtemp(join(tmpdir(), 'custodian-access-purpose-'));
    const shopPath = join(dir, 'shop.db');
    const shop = { customers: [] } satisfies ShopTables;
    shopDatabase(shopPath, shop);
    await c.datamap.put(shopManifest(shopPath, shop), { actor: 'test' });

    const granted = await runCliCaptured(['consent', 'grant', ADA.id, 'analytics.reporting', ...store]);
    expect(granted.code, granted.stderr).toBe(EXIT.ok);
    requestId = (await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: ADA.email }, authenticated: true, actor: 'test' })).id;
    expect((await c.runner.run(requestId, 'test-worker')).status).toBe('completed');
    incidentId = (await c.incidents.create({ title: 'Leaked export', collections: ['shop_db.customers'] }, { actor: 'test' })).id;

    admin = (await c.apiKeys.create({ name: 'admin', scopes: ['admin'], createdBy: 'test' })).secret;
    app = await buildServer(c, { logLevel: false });
  });
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
    await rm(dir, { recursive: true, force: true });
  });

  const READS = [
    { read: 'consent history', action: 'consent.history.read', argv: () => ['consent', 'history', ADA.id], url: () => `/v1/subjects/${ADA.id}/consent/history` },
    { read: 'request package', action: 'request.package_downloaded', argv: () => ['request', 'package', requestId], url: () => `/v1/requests/${requestId}/package` },
    { read: 'incident affected', action: 'incident.subjects_read', argv: () => ['incident', 'affected', incidentId], url: () => `/v1/incidents/${incidentId}/affected-subjects` },
    // An incident's description, cause, containment actions and notes are sealed free text that may hold personal data.
    { read: 'incident show', action: 'incident.narrative_read', argv: () => ['incident', 'show', incidentId], url: () => `/v1/incidents/${incidentId}` },
    { read: 'incident list', action: 'incident.narrative_read', argv: () => ['incident', 'list'], url: () => '/v1/incidents' },
  ] as const;

  const entries = async (action: string): Promise<readonly Entry[]> => (await c.audit.list({ action, limit: 1000 })).entries;
  const latest = async (action: string): Promise<Entry> => {
    const [entry] = await entries(action);
    expect(entry, `no ${action} entry`).toBeDefined();
    return entry!;
  };
  /** Reads through the CLI, expecting success; returns the audit entry it wrote. */
  const cliRead = async (argv: readonly string[], action: string): Promise<Entry> => {
    const before = (await entries(action)).length;
    const run = await runCliCaptured([...argv, ...store]);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect(run.stdout).not.toBe('');
    expect(await entries(action)).toHaveLength(before + 1);
    return latest(action);
  };
  /** Reads over HTTP with the admin key and the Custodian-Purpose header when given; returns its audit entry. */
  const httpRead = async (url: string, action: string, purpose?: string): Promise<Entry> => {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${admin}`, ...(purpose === undefined ? {} : { 'custodian-purpose': purpose }) } });
    expect(res.statusCode, res.body).toBe(200);
    return latest(action);
  };
  const purposeOf = (e: Entry): unknown => (e.details as { purpose?: unknown } | null)?.purpose;

  describe.each(READS)('$read', ({ action, argv, url }) => {
    it(`audits ${action} as cli:<--actor> with --access-purpose as details.purpose, in the shape of the HTTP read`, async () => {
      const overHttp = await httpRead(url(), action, 'security.incident_response');
      const fromCli = await cliRead([...argv(), '--actor', 'dpo-team', '--access-purpose', 'security.incident_response'], action);
      expect(fromCli).toMatchObject({ actor: 'cli:dpo-team', action, targetType: overHttp.targetType, targetRef: overHttp.targetRef, requestId: null });
      expect(purposeOf(fromCli)).toBe('security.incident_response');
      expect(fromCli.details).toEqual(overHttp.details);
    });

    it(`without the options still audits ${action}, as cli:operator and with no purpose, like HTTP without the header`, async () => {
      const overHttp = await httpRead(url(), action);
      const fromCli = await cliRead(argv(), action);
      expect(fromCli.actor).toBe('cli:operator');
      expect(purposeOf(fromCli)).toBeUndefined();
      expect(fromCli.details).toEqual(overHttp.details);
    });

    it('records a well-formed purpose that is not configured as given, like HTTP', async () => {
      expect(c.purposes.list().map((p) => p.key)).not.toContain('no.such.purpose');
      const fromCli = await cliRead([...argv(), '--access-purpose', 'no.such.purpose'], action);
      expect(purposeOf(fromCli)).toBe('no.such.purpose');
    });

    it.each([
      ['capitals', 'Analytics.Reporting'],
      ['a space', 'analytics reporting'],
      ['two keys', 'analytics.reporting,essential.service'],
      ['a trailing dot', 'analytics.'],
      ['an empty value', ''],
      ['over 128 characters', `a.${'b'.repeat(127)}`],
    ])('refuses a purpose with %s: exit 2, a clear message, nothing read or recorded', async (_name, purpose) => {
      const before = (await entries(action)).length;
      const run = await runCliCaptured([...argv(), '--access-purpose', purpose, ...store]);
      expect(run.code).toBe(EXIT.badInput);
      expect(run.stderr).toMatch(/option '--access-purpose <key>' argument .* is invalid\. It must be one purpose key such as essential\.service/);
      expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(run.stdout).toBe('');
      expect(await entries(action)).toHaveLength(before);
    });

    it.each([
      ['a space', 'Ada Lovelace'],
      ['an e-mail address', 'ada@example.com'],
      ['a colon', 'key:1'],
      ['over 64 characters', 'a'.repeat(65)],
    ])('refuses an --actor with %s: exit 2, nothing recorded', async (_name, actor) => {
      const before = (await entries(action)).length;
      const run = await runCliCaptured([...argv(), '--actor', actor, ...store]);
      expect(run.code).toBe(EXIT.badInput);
      expect(run.stderr).toMatch(/option '--actor <name>' argument .* is invalid\. It must be a name of letters, digits/);
      expect(run.stdout).toBe('');
      expect(await entries(action)).toHaveLength(before);
    });
  });

  it('incident affected scopes under the --actor too (incident.scoped)', async () => {
    await cliRead(['incident', 'affected', incidentId, '--actor', 'breach-lead'], 'incident.subjects_read');
    expect((await latest('incident.scoped')).actor).toBe('cli:breach-lead');
  });

  it('consent history keeps --purpose as the filter, apart from --access-purpose', async () => {
    const run = await runCliCaptured(['consent', 'history', ADA.id, '--purpose', 'analytics.reporting', '--access-purpose', 'essential.service', ...store]);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    expect((JSON.parse(run.stdout) as { state: Array<{ purpose: string }> }).state.map((s) => s.purpose)).toEqual(['analytics.reporting']);
    expect(purposeOf(await latest('consent.history.read'))).toBe('essential.service');
  });
});
