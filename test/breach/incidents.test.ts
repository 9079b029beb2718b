import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Custodian } from '../../src/app/index.js';
import type { IncidentInput } from '../../src/breach/index.js';
import { ManualClock, isCustodianError } from '../../src/core/index.js';
import { STORE_KINDS, createPgDatabase, custodianFixture } from '../support/stores.js';

const ACTOR = { actor: 'test:officer' };
const HOUR = 3_600_000;

/** A shop database with customers (identities, a timestamp) and orders; example.com addresses only. */
function shopRows(n: number): Array<{ id: string; email: string; name: string; created_at: string }> {
  return Array.from({ length: n }, (_, i) => ({ id: `u-${String(i).padStart(4, '0')}`, email: `customer${i}@example.com`, name: `Customer ${i}`, created_at: new Date(Date.UTC(2026, 0, 1 + i)).toISOString() }));
}

function manifest(connection: string) {
  return {
    version: 1,
    organization: { name: 'Test Shop <Ltd>', dpo: 'Data Protection Officer, dpo@shop.example' },
    purposes: [{ key: 'essential.service', title: 'Run the shop', legalBasis: 'contract', specialCategoryCondition: 'employment_social_security' }],
    systems: [
      {
        key: 'shop',
        name: 'Shop',
        owner: 'Commerce team',
        connection,
        purposes: ['essential.service'],
        datasets: [
          {
            key: 'shop_db',
            collections: [
              {
                name: 'customers',
                purposes: ['essential.service'],
                fields: [
                  { name: 'id', primaryKey: true, dataCategories: ['user.unique_id'], identity: 'user_id', indexed: true },
                  { name: 'email', dataCategories: ['user.contact.email'], identity: 'email', indexed: true },
                  { name: 'name', dataCategories: ['user.name'] },
                  { name: 'created_at', dataType: 'datetime', dataCategories: ['system.operations'] },
                ],
              },
              {
                name: 'notes',
                purposes: ['essential.service'],
                fields: [
                  { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
                  { name: 'health', dataCategories: ['user.health_and_medical'] },
                ],
              },
            ],
          },
        ],
      },
    ],
  };
}

function createSqliteShop(path: string, n: number): void {
  const db = new Database(path);
  db.exec('create table customers (id text primary key, email text, name text, created_at text); create table notes (id text primary key, health text)');
  const ins = db.prepare('insert into customers values (?, ?, ?, ?)');
  for (const r of shopRows(n)) ins.run(r.id, r.email, r.name, r.created_at);
  db.close();
}

for (const kind of STORE_KINDS) {
  describe(`incidents on ${kind}`, () => {
    let c: Custodian;
    let cleanup: () => Promise<void>;
    let dir: string;
    const clock = new ManualClock('2026-03-02T09:00:00.000Z');

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'custodian-breach-'));
      createSqliteShop(join(dir, 'shop.db'), 30);
      ({ custodian: c, cleanup } = await custodianFixture(kind, { clock }));
      await c.datamap.put(manifest(`sqlite:${join(dir, 'shop.db')}`), { actor: 'test' });
    });
    afterAll(async () => {
      await cleanup?.();
      await rm(dir, { recursive: true, force: true });
    });

    const valid: IncidentInput = { title: 'Laptop stolen', description: 'An unencrypted laptop with a customer export was stolen from a car.', detectedAt: '2026-03-02T08:00:00.000Z', occurredAt: '2026-03-01T20:00:00.000Z', collections: ['shop_db.customers'], affectedCount: 30, jurisdictions: ['EU'] };

    const invalid: Array<[string, Partial<IncidentInput>, string]> = [
      ['awareness before occurrence', { occurredAt: '2026-03-02T08:30:00.000Z' }, 'detectedAt'],
      ['detectedAt in the future', { detectedAt: '2026-03-03T09:00:00.000Z' }, 'detectedAt'],
      ['occurredAt in the future', { occurredAt: '2026-04-01T00:00:00.000Z', detectedAt: undefined }, 'occurredAt'],
      ['not an instant', { detectedAt: '2 March' }, 'detectedAt'],
      ['negative count', { affectedCount: -1 }, 'affectedCount'],
      ['fractional count', { recordsCount: 1.5 }, 'recordsCount'],
      ['unknown system', { systems: ['nope'] }, 'systems.0'],
      ['unknown collection', { collections: ['shop_db.customers', 'shop_db.nope'] }, 'collections.1'],
      ['unknown category', { dataCategories: ['user.contact.emial'] }, 'dataCategories.0'],
      ['bad jurisdiction', { jurisdictions: ['europe'] }, 'jurisdictions.0'],
      ['empty title', { title: ' ' }, 'title'],
    ];
    it.each(invalid)('refuses %s with CST_ERR_INCIDENT_INVALID naming the path', async (_name, patch, path) => {
      const err = await c.incidents.create({ ...valid, ...patch }, ACTOR).catch((e: unknown) => e);
      expect(isCustodianError(err, 'CST_ERR_INCIDENT_INVALID')).toBe(true);
      expect((err as { details: { issues: Array<{ path: string }> } }).details.issues.map((i) => i.path)).toContain(path);
      expect((err as Error).message).not.toContain('laptop');
    });

    it('suggests close taxonomy keys for a misspelt category', async () => {
      const err = await c.incidents.create({ ...valid, dataCategories: ['user.contact.emial'] }, ACTOR).catch((e: unknown) => e);
      expect((err as { details: { issues: Array<{ suggestions?: string[] }> } }).details.issues[0]!.suggestions).toContain('user.contact.email');
    });

    it('records an incident: categories from the data map, assessment, 72 h deadline, sealed description, audit and event', async () => {
      const inc = await c.incidents.create(valid, ACTOR);
      expect(inc.status).toBe('open');
      expect(inc.systems).toEqual(['shop']);
      expect(inc.dataCategories).toEqual(['system.operations', 'user.contact.email', 'user.name', 'user.unique_id']);
      expect(inc.assessment.outcome).toBe('authority');
      expect(inc.deadlines).toEqual([expect.objectContaining({ ruleId: 'EU.gdpr.authority', dueAt: '2026-03-05T08:00:00.000Z', met: false, overdue: false, leftMs: 71 * HOUR })]);
      expect(inc.description).toBe(valid.description);
      const stored = await sql<{ narrative_sealed: string }>`select narrative_sealed from incidents where id = ${inc.id}`.execute(c.store.db);
      expect(stored.rows[0]!.narrative_sealed).not.toContain('laptop');
      const audit = await c.audit.list({ action: 'incident.opened' });
      const entry = audit.entries.find((e) => e.targetRef === inc.id);
      expect(entry).toBeDefined();
      expect(JSON.stringify(entry)).not.toContain('laptop');
      const events = await sql<{ type: string; data: string }>`select type, data from event_outbox where type = 'incident.opened'`.execute(c.store.db);
      expect(events.rows.some((e) => e.data.includes(inc.id))).toBe(true);
    });

    it('keeps every update in the timeline and audits it; the status follows the lifecycle', async () => {
      const inc = await c.incidents.create(valid, ACTOR);
      await c.incidents.update(inc.id, { affectedCount: 40, containmentActions: ['Remote wipe requested'], note: 'Police report filed' }, ACTOR);
      const contained = await c.incidents.update(inc.id, { status: 'contained' }, ACTOR);
      expect(contained.status).toBe('contained');
      expect(contained.affectedCount).toBe(40);
      const closed = await c.incidents.update(inc.id, { status: 'closed' }, ACTOR);
      await expect(c.incidents.update(closed.id, { status: 'open' }, ACTOR)).rejects.toMatchObject({ code: 'CST_ERR_INCIDENT_INVALID_TRANSITION' });
      const timeline = await c.incidents.timeline(inc.id);
      expect(timeline.map((t) => t.kind)).toEqual(['created', 'updated', 'status_changed', 'status_changed']);
      expect(timeline[1]!.changes).toEqual({ affectedCount: 40, containmentActions: 1 });
      expect(timeline[1]!.note).toBe('Police report filed');
      const audit = await c.audit.list({ action: 'incident.updated' });
      expect(audit.entries.filter((e) => e.targetRef === inc.id)).toHaveLength(3);
    });

    it('refuses an update that would break the rules (awareness before occurrence, unknown system)', async () => {
      const inc = await c.incidents.create(valid, ACTOR);
      await expect(c.incidents.update(inc.id, { occurredAt: '2026-03-02T08:59:00.000Z' }, ACTOR)).rejects.toMatchObject({ code: 'CST_ERR_INCIDENT_INVALID' });
      await expect(c.incidents.update(inc.id, { systems: ['ghost'] }, ACTOR)).rejects.toMatchObject({ code: 'CST_ERR_INCIDENT_INVALID' });
      await expect(c.incidents.get('00000000-0000-7000-8000-000000000000')).rejects.toMatchObject({ code: 'CST_ERR_INCIDENT_NOT_FOUND' });
    });

    it('has a timeline the database keeps append-only', async () => {
      const inc = await c.incidents.create(valid, ACTOR);
      await expect(sql`update incident_timeline set kind = 'x' where incident_id = ${inc.id}`.execute(c.store.db)).rejects.toThrow(/append-only/);
      await expect(sql`delete from incident_timeline where incident_id = ${inc.id}`.execute(c.store.db)).rejects.toThrow(/append-only/);
      if (kind === 'postgres') await expect(sql`truncate incident_timeline`.execute(c.store.db)).rejects.toThrow(/append-only/);
    });

    it('records an override of the assessment with its justification, audited', async () => {
      const inc = await c.incidents.create(valid, ACTOR);
      const over = await c.incidents.overrideAssessment(inc.id, { outcome: 'authority_and_individuals', justification: 'Customers are journalists; exposure of addresses is high risk' }, ACTOR);
      expect(over.assessment.computed.outcome).toBe('authority');
      expect(over.assessment.outcome).toBe('authority_and_individuals');
      expect(over.assessment.override?.justification).toContain('journalists');
      expect(over.deadlines.map((d) => d.ruleId)).toContain('EU.gdpr.individuals');
      const audit = await c.audit.list({ action: 'incident.assessment_overridden' });
      const entry = audit.entries.find((e) => e.targetRef === inc.id)!;
      expect(entry.details).toEqual({ computed: 'authority', outcome: 'authority_and_individuals' });
      await expect(c.incidents.overrideAssessment(inc.id, { outcome: 'none', justification: '' }, ACTOR)).rejects.toMatchObject({ code: 'CST_ERR_INCIDENT_INVALID' });
    });

    it('raises each escalation once (24 h, 6 h, overdue), audited, with events; none once notified', async () => {
      const inc = await c.incidents.create({ ...valid, detectedAt: '2026-03-02T09:00:00.000Z', occurredAt: null, jurisdictions: ['UK'] }, ACTOR);
      const other = await c.incidents.create({ ...valid, detectedAt: '2026-03-02T09:00:00.000Z', occurredAt: null, jurisdictions: ['UK'] }, ACTOR);
      await c.incidents.notify(other.id, { audience: 'authority', to: ['breach@ico.example'], jurisdiction: 'UK' }, ACTOR);
      const raisedFor = async (id: string) => (await c.incidents.escalations(id)).map((e) => e.point);
      await c.incidents.sweep();
      expect(await raisedFor(inc.id)).toEqual([]);
      clock.advance(49 * HOUR); // 23 h left
      await c.incidents.sweep();
      await c.incidents.sweep();
      expect(await raisedFor(inc.id)).toEqual(['T-1440m']);
      clock.advance(18 * HOUR); // 5 h left
      await c.incidents.sweep();
      expect(await raisedFor(inc.id)).toEqual(['T-1440m', 'T-360m']);
      clock.advance(6 * HOUR); // overdue
      await c.incidents.sweep();
      await c.incidents.sweep();
      expect(await raisedFor(inc.id)).toEqual(['T-1440m', 'T-360m', 'overdue']);
      expect(await raisedFor(other.id)).toEqual([]);
      const view = await c.incidents.get(inc.id);
      expect(view.deadlines[0]).toMatchObject({ overdue: true, met: false });
      expect((await c.incidents.get(other.id)).deadlines[0]).toMatchObject({ met: true, overdue: false });
      const audit = await c.audit.list({ action: 'incident.escalated' });
      expect(audit.entries.filter((e) => e.targetRef === inc.id)).toHaveLength(3);
      const events = await sql<{ type: string; data: string }>`select type, data from event_outbox where type like 'incident.deadline%'`.execute(c.store.db);
      const mine = events.rows.filter((e) => e.data.includes(inc.id)).map((e) => e.type);
      expect(mine).toEqual(['incident.deadline_approaching', 'incident.deadline_approaching', 'incident.deadline_missed']);
      clock.advance(-73 * HOUR);
    });

    it('drafts the Art. 33(3) notification and the Art. 34(2) message, HTML escaped', async () => {
      const inc = await c.incidents.create({ ...valid, title: 'Export <script>alert(1)</script> leaked', dataCategories: ['user.health_and_medical', 'user.name'], containmentActions: ['Revoked the export link & rotated keys'], recordsCount: 120 }, ACTOR);
      const { authority, individuals } = await c.incidents.drafts(inc.id);
      for (const item of ['Art. 33(3)(a)', 'Art. 33(3)(b)', 'Art. 33(3)(c)', 'Art. 33(3)(d)', 'Approximate number of data subjects: about 30', 'Approximate number of personal data records: about 120', 'dpo@shop.example', 'data concerning health', 'Revoked the export link & rotated keys']) {
        expect(authority.text).toContain(item);
      }
      expect(authority.html).not.toContain('<script>');
      expect(authority.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(authority.html).toContain('Test Shop &lt;Ltd&gt;');
      expect(authority.html).toContain('&amp; rotated keys');
      expect(individuals.text).toContain('dpo@shop.example');
      expect(individuals.text).toContain('What you can do');
      expect(individuals.html).not.toContain('<script>');
    });

    it('scopes the affected people from the data map and the connector, within a time window, and stores the count', async () => {
      const inc = await c.incidents.create(valid, ACTOR);
      const all: Array<{ collection: string; identities: Record<string, string> }> = [];
      for await (const batch of c.incidents.affectedSubjects(inc.id)) all.push(...batch);
      expect(all).toHaveLength(30);
      expect(all[0]).toEqual({ collection: 'shop_db.customers', identities: { user_id: 'u-0000', email: 'customer0@example.com' } });
      expect((await c.incidents.get(inc.id)).subjectsCount).toBe(30);
      const window: string[] = [];
      for await (const batch of c.incidents.affectedSubjects(inc.id, { from: '2026-01-05T00:00:00.000Z', to: '2026-01-10T00:00:00.000Z' })) window.push(...batch.map((s) => s.identities.user_id!));
      expect(window).toEqual(['u-0004', 'u-0005', 'u-0006', 'u-0007', 'u-0008']);
      expect((await c.incidents.get(inc.id)).subjectsCount).toBe(5);
      const audit = await c.audit.list({ action: 'incident.scoped' });
      expect(JSON.stringify(audit.entries)).not.toContain('example.com');
    });

    it('notifies the people found by scoping and the authority through the mail outbox, recording who and when', async () => {
      const inc = await c.incidents.create({ ...valid, dataCategories: ['user.health_and_medical', 'user.name', 'user.contact.email'] }, ACTOR);
      expect(inc.assessment.outcome).toBe('authority_and_individuals');
      const r = await c.incidents.notify(inc.id, { audience: 'individuals', jurisdiction: 'EU' }, ACTOR);
      expect(r.queued).toBe(30);
      await expect(c.incidents.notify(inc.id, { audience: 'authority' }, ACTOR)).rejects.toMatchObject({ code: 'CST_ERR_INCIDENT_NO_RECIPIENTS' });
      await expect(c.incidents.notify(inc.id, { audience: 'authority', to: ['not an address'] }, ACTOR)).rejects.toMatchObject({ code: 'CST_ERR_INCIDENT_INVALID' });
      await c.incidents.notify(inc.id, { audience: 'authority', to: ['breach@dpa.example'], jurisdiction: 'EU' }, ACTOR);
      const mails = (await c.requests.outbox()).filter((m) => m.template.startsWith('breach_'));
      expect(mails.filter((m) => m.to === 'customer7@example.com')).toHaveLength(1);
      const toAuthority = mails.find((m) => m.to === 'breach@dpa.example')!;
      expect(toAuthority.body).toContain('Art. 33(3)(a)');
      const records = await c.incidents.notifications(inc.id);
      expect(records).toHaveLength(31);
      expect(JSON.stringify(records)).not.toContain('example');
      const view = await c.incidents.get(inc.id);
      expect(view.deadlines.filter((d) => d.audience === 'authority' || d.audience === 'individuals').every((d) => d.met)).toBe(true);
      const sent: string[] = [];
      await c.requests.dispatchOutbox({ send: async (m) => void sent.push(m.subject) });
      expect(sent).toContain('Personal data breach notification');
      expect(sent).toContain('Important: a security incident involving your personal data');
      const audit = await c.audit.list({ action: 'incident.notified' });
      expect(JSON.stringify(audit.entries)).not.toContain('example');
    });

    it('moves the California Attorney General deadline to 15 days after the residents were notified', async () => {
      const inc = await c.incidents.create({ ...valid, jurisdictions: ['US-CA'], affectedCount: 600 }, ACTOR);
      const before = inc.deadlines.find((d) => d.ruleId === 'US-CA.authority')!;
      expect(before.countedFrom).toBe('notification_due');
      expect(Date.parse(before.dueAt!) - Date.parse(inc.detectedAt)).toBe(45 * 24 * HOUR);
      await c.incidents.notify(inc.id, { audience: 'individuals', jurisdiction: 'US-CA' }, ACTOR);
      const notifiedAt = (await c.incidents.notifications(inc.id)).map((n) => n.notifiedAt).sort()[0]!;
      const after = (await c.incidents.get(inc.id)).deadlines.find((d) => d.ruleId === 'US-CA.authority')!;
      expect(after).toMatchObject({ countedFrom: 'notification', met: false });
      expect(Date.parse(after.dueAt!) - Date.parse(notifiedAt)).toBe(15 * 24 * HOUR);
    });

    it('does not notify about a suspected or dismissed incident', async () => {
      const inc = await c.incidents.create({ title: 'Unusual export volume', status: 'suspected' }, { actor: 'system:detect', source: 'detection:read_volume' });
      await expect(c.incidents.notify(inc.id, { audience: 'authority', to: ['a@dpa.example'] }, ACTOR)).rejects.toMatchObject({ code: 'CST_ERR_INCIDENT_INVALID_TRANSITION' });
      expect(inc.deadlines.length).toBeGreaterThanOrEqual(0);
      const dismissed = await c.incidents.update(inc.id, { status: 'dismissed' }, ACTOR);
      expect(dismissed.status).toBe('dismissed');
    });
  });
}

describe('scoping a PostgreSQL system', () => {
  let c: Custodian;
  let cleanup: () => Promise<void>;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const db = await createPgDatabase('cst_breach_shop');
    drop = db.drop;
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('create table customers (id text primary key, email text, name text, created_at timestamptz)');
      await client.query('create table notes (id text primary key, health text)');
      for (const r of shopRows(2500)) await client.query('insert into customers values ($1, $2, $3, $4)', [r.id, r.email, r.name, r.created_at]);
    } finally {
      await client.end();
    }
    ({ custodian: c, cleanup } = await custodianFixture('sqlite', { clock: new ManualClock('2033-01-01T00:00:00.000Z') }));
    await c.datamap.put(manifest(db.url), { actor: 'test' });
  }, 60_000);
  afterAll(async () => {
    await cleanup?.();
    await drop?.();
  });

  it('streams every person in pages and applies the time window to timestamptz values', async () => {
    const inc = await c.incidents.create({ title: 'Database dump', collections: ['shop_db.customers'], detectedAt: '2032-12-31T00:00:00.000Z' }, ACTOR);
    let n = 0;
    let batches = 0;
    const progress: number[] = [];
    for await (const batch of c.incidents.affectedSubjects(inc.id, { onProgress: (p) => progress.push(p.rows) })) {
      n += batch.length;
      batches++;
    }
    expect(n).toBe(2500);
    expect(batches).toBe(3);
    expect(progress.at(-1)).toBe(2500);
    const window: string[] = [];
    for await (const batch of c.incidents.affectedSubjects(inc.id, { from: '2026-02-01T00:00:00.000Z', to: '2026-02-03T00:00:00.000Z' })) window.push(...batch.map((s) => s.identities.email!));
    expect(window).toEqual(['customer31@example.com', 'customer32@example.com']);
  }, 60_000);
});
