import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCustodian, loadConfig, type Custodian } from '../../src/app/index.js';
import { startReferenceReceiver, type ReferenceReceiver } from '../connectors/data/reference-receiver.js';
import { storeFixture, type StoreFixture } from '../support/stores.js';
import { retentionManifest } from './app-data.js';

/*
 * Retention of a system reached over the HTTP callback protocol: through the optional scan and retention
 * operations when the service offers them, CST_ERR_CONNECTOR_UNSUPPORTED (a failed rule, an unmeasured report
 * line) when it does not. The services are reference receivers on loopback ports.
 */

const SECRET = 'example-retention-secret';
const NOW = Date.parse('2026-06-01T00:00:00.000Z');
const events = () =>
  Array.from({ length: 30 }, (_, i) => ({
    id: `e-${String(i).padStart(3, '0')}`,
    email: i === 4 ? 'held@example.com' : `user${i}@example.com`,
    at: i % 3 === 0 ? '2026-05-20T00:00:00.000Z' : '2026-03-01T00:00:00.000Z',
    note: 'n',
  }));

describe('retention over the HTTP callback protocol', () => {
  let store: StoreFixture;
  let offering: ReferenceReceiver;
  let plain: ReferenceReceiver;
  let c: Custodian;

  beforeAll(async () => {
    store = await storeFixture('sqlite');
    const collections = { events: ['id', 'email', 'at', 'note'] };
    offering = await startReferenceReceiver({ secret: SECRET, basePath: '/privacy', collections, operations: ['scan', 'retention'] });
    plain = await startReferenceReceiver({ secret: SECRET, basePath: '/privacy', collections });
    // The data map names the secret by a variable, as it must (never a literal password).
    c = await createCustodian(loadConfig({ CST_TEST_RETENTION_HTTP_SECRET: SECRET }, { dbUrl: store.url, dataDir: store.dir, logLevel: 'silent' }), { clock: { now: () => NOW }, retention: { batchSize: 7 } });
    await c.requests.create({ type: 'access', jurisdiction: 'EU', identities: { email: 'held@example.com' }, authenticated: true, actor: 'app' });
  });
  afterAll(async () => {
    await c?.close();
    await offering?.close();
    await plain?.close();
    await store?.cleanup();
  });

  const withSecret = (receiver: ReferenceReceiver) => receiver.url.replace('http://', 'http://custodian:${CST_TEST_RETENTION_HTTP_SECRET}@');

  it('reports and applies a rule through the service’s scan and retention operations, keeping held rows', async () => {
    offering.rows.set('events', events());
    await c.datamap.put(retentionManifest(withSecret(offering), { profiles: false }), { actor: 'test' });
    const due = events().filter((e) => e.at < '2026-05-02');
    const report = await c.retention.report();
    expect(report.rules[0]).toMatchObject({ collection: 'app_db.events', pastDue: due.length - 1, pastDueHeld: 1, heldReasons: { open_request: 1 }, compliant: false, error: null });
    const run = await c.retention.run({ actor: 'test' });
    expect(run.collections[0]).toMatchObject({ state: 'done', matched: due.length, deleted: due.length - 1, skipped: { subject_hold: 1 } });
    expect(offering.rows.get('events')!.map((r) => r.id)).toEqual(events().filter((e) => e.at >= '2026-05-02' || e.email === 'held@example.com').map((e) => e.id));
    expect(offering.requests.every((r) => r.verdict === 'ok')).toBe(true);
    expect(offering.requests.filter((r) => r.path === '/privacy/events/retention').length).toBeGreaterThan(1);
    expect((await c.retention.report()).rules[0]).toMatchObject({ pastDue: 0, pastDueHeld: 1, compliant: true });
  });

  it('fails the rule, and leaves the report line unmeasured, when the service does not offer them', async () => {
    plain.rows.set('events', events());
    await c.datamap.put(retentionManifest(withSecret(plain), { profiles: false }), { actor: 'test' });
    const report = await c.retention.report();
    expect(report.rules[0]).toMatchObject({ pastDue: null, pastDueHeld: null, compliant: null });
    expect(report.rules[0]!.error).toMatch(/^CST_ERR_CONNECTOR_UNSUPPORTED/);
    expect(report.compliancePercent).toBeNull();
    const run = await c.retention.run({ actor: 'test' });
    expect(run.collections[0]!.state).toBe('failed');
    expect(run.collections[0]!.error).toMatch(/^CST_ERR_CONNECTOR_UNSUPPORTED/);
    expect(plain.rows.get('events')).toHaveLength(30);
  });
});
