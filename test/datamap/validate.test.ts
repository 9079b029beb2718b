import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { isCustodianError } from '../../src/core/index.js';
import { DataMap, checkManifestValue, formatIssue, introspectionIssues, loadManifestFile, manifestSchema, parseManifest, redactConnection, resolveConnection, type ManifestIssue } from '../../src/datamap/index.js';

const EXAMPLE = 'examples/shop/custodian.yaml';

const base = () => ({
  version: 1,
  organization: { name: 'Acme' },
  purposes: [{ key: 'orders', title: 'Orders', legalBasis: 'contract' }],
  systems: [
    {
      key: 'crm',
      name: 'CRM',
      owner: 'Sales',
      connection: 'postgres://app:${CRM_PW}@db:5432/crm',
      purposes: ['orders'],
      datasets: [
        {
          key: 'crm_db',
          collections: [
            {
              name: 'customers',
              purposes: ['orders'],
              erasure: 'delete_row',
              fields: [
                { name: 'id', primaryKey: true, dataCategories: ['user.unique_id'] },
                { name: 'email', dataCategories: ['user.contact.email'], identity: 'email', indexed: true },
              ],
            },
            {
              name: 'orders',
              erasure: 'delete_row',
              fields: [
                { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
                { name: 'customer_id', dataCategories: ['user.unique_id'], references: [{ field: 'crm_db.customers.id', direction: 'from' }] },
                { name: 'created_at', dataCategories: ['system.operations'] },
              ],
            },
          ],
        },
      ],
    },
  ],
});
type Node = Record<string | number, unknown>;
const errorsOf = (m: unknown): ManifestIssue[] => checkManifestValue(m).issues.filter((i) => i.severity === 'error');
/** The node at a dotted path (`systems.0.datasets.0`) of a manifest value. */
const get = (m: unknown, path: string): Node => (path === '' ? (m as Node) : path.split('.').reduce<Node>((n, k) => n[k] as Node, m as Node));
const parentOf = (m: unknown, path: string): [Node, string] => [get(m, path.split('.').slice(0, -1).join('.')), path.split('.').at(-1)!];
const set = (path: string, value: unknown) => (m: unknown) => {
  const [p, k] = parentOf(m, path);
  p[k] = value;
};
const del = (path: string) => (m: unknown) => {
  const [p, k] = parentOf(m, path);
  delete p[k];
};
const push = (path: string, value: unknown) => (m: unknown) => void (get(m, path) as unknown as unknown[]).push(value);
const with_ = (...changes: Array<(m: unknown) => void>): unknown => {
  const m = base();
  for (const change of changes) change(m);
  return m;
};
const CUSTOMERS = 'systems.0.datasets.0.collections.0';
const ORDERS = 'systems.0.datasets.0.collections.1';

describe('data map validation', () => {
  it('accepts the shop example and the base manifest', async () => {
    const loaded = await loadManifestFile(EXAMPLE);
    expect(loaded.issues).toEqual([]);
    expect(loaded.manifest).toBeDefined();
    expect(errorsOf(base())).toEqual([]);
  });

  // Each case: a change to a valid manifest, the readable path the error names, and a fragment of its message.
  const cases: Array<[string, (m: unknown) => void, string, RegExp]> = [
    ['unknown data category, with a suggestion', set(`${CUSTOMERS}.fields.1.dataCategories`, ['user.contact.emial']), 'systems[crm].datasets[crm_db].collections[customers].fields[email].dataCategories[0]', /did you mean user\.contact\.email/],
    ['unknown data use', set('purposes.0.dataUses', ['marketing.spam']), 'purposes[orders].dataUses[0]', /unknown data use/],
    ['unknown data subject', set(`${CUSTOMERS}.dataSubjects`, ['martian']), 'systems[crm].datasets[crm_db].collections[customers].dataSubjects[0]', /unknown data subject/],
    ['reference to a missing field', set(`${ORDERS}.fields.1.references.0.field`, 'crm_db.customers.nope'), 'systems[crm].datasets[crm_db].collections[orders].fields[customer_id].references[0].field', /not a declared field/],
    ['identity without an index hint', del(`${CUSTOMERS}.fields.1.indexed`), 'systems[crm].datasets[crm_db].collections[customers].fields[email]', /no index hint/],
    ['null erasure on a primary key', set(`${CUSTOMERS}.fields.0.erasure`, 'null'), 'systems[crm].datasets[crm_db].collections[customers].fields[id].erasure', /cannot apply to primary key/],
    ['purpose without a legal basis', del('purposes.0.legalBasis'), 'purposes[orders]', /no legal basis/],
    ['consent required under another basis', set('purposes.0.consentRequired', true), 'purposes[orders].consentRequired', /consentRequired is true/],
    ['unknown purpose on a collection', set(`${CUSTOMERS}.purposes`, ['nope']), 'systems[crm].datasets[crm_db].collections[customers].purposes[0]', /unknown purpose nope/],
    ['transfer to a country without adequacy and no mechanism', set('systems.0.transfers', [{ country: 'IN' }]), 'systems[crm].transfers[0]', /no mechanism/],
    ['DPF outside the US', set('systems.0.transfers', [{ country: 'IN', mechanism: 'dpf' }]), 'systems[crm].transfers[0].mechanism', /US only/],
    ['adequacy claimed where there is none', set('systems.0.transfers', [{ country: 'CN', mechanism: 'adequacy' }]), 'systems[crm].transfers[0].mechanism', /no general adequacy/],
    ['a literal password in the connection', set('systems.0.connection', 'postgres://app:hunter2@db/crm'), 'systems[crm].connection', /literal password/],
    ['a literal secret parameter', set('systems.0.connection', 'https://api.example/?token=abc'), 'systems[crm].connection', /literal secret/],
    ['duplicate dataset key across systems', (m) => push('systems', { ...structuredClone(get(m, 'systems.0')), key: 'crm2' })(m), 'systems[crm2].datasets[crm_db].key', /declared twice/],
    ['duplicate field name', push(`${CUSTOMERS}.fields`, { name: 'email' }), 'systems[crm].datasets[crm_db].collections[customers].fields[email].name', /declared twice/],
    ['retention age field missing', set(`${ORDERS}.retention`, [{ field: 'nope', period: 'P1Y' }]), 'systems[crm].datasets[crm_db].collections[orders].retention[0].field', /not a field/],
    ['anonymise rule on a field without strategy', set(`${ORDERS}.retention`, [{ field: 'created_at', period: 'P1Y', action: 'anonymise', fields: ['customer_id'] }]), 'systems[crm].datasets[crm_db].collections[orders].retention[0].fields[0]', /needs an erasure strategy/],
    ['a bad period', set('purposes.0.retention', '2 years'), 'purposes[orders].retention', /ISO 8601 duration/],
    ['an unknown key', set('systems.0.colour', 'red'), 'systems[crm].colour', /unknown key colour/],
    ['special categories without an Art. 9(2) condition', push(`${CUSTOMERS}.fields`, { name: 'diagnosis', dataCategories: ['user.health_and_medical'], erasure: 'null' }), 'purposes[orders]', /Art\. 9\(2\)/],
    ['a bare YAML null as erasure strategy', set(`${CUSTOMERS}.erasure`, null), 'systems[crm].datasets[crm_db].collections[customers].erasure', /quoted/],
  ];
  it.each(cases)('reports %s at its path', (_name, change, path, message) => {
    const errors = errorsOf(with_(change));
    expect(errors.map((e) => e.path)).toContain(path);
    expect(errors.find((e) => e.path === path)!.message).toMatch(message);
  });

  it('reports every error at once, not only the first', () => {
    const m = with_(set('purposes.0.dataUses', ['marketing.spam']), set('systems.0.connection', 'postgres://app:hunter2@db/crm'), del(`${CUSTOMERS}.fields.1.indexed`));
    expect(errorsOf(m)).toHaveLength(3);
  });

  it('refuses a reference cycle that blocks erasure, unless a reference can be nulled first', () => {
    const cyclic = with_(push(`${CUSTOMERS}.fields`, { name: 'last_order_id', dataCategories: ['system.operations'], references: [{ field: 'crm_db.orders.id', direction: 'from' }] }));
    expect(errorsOf(cyclic).map((e) => e.message).join('\n')).toMatch(/reference cycle crm_db\.customers → crm_db\.orders → crm_db\.customers/);
    const breakable = with_(push(`${CUSTOMERS}.fields`, { name: 'last_order_id', dataCategories: ['system.operations'], erasure: 'null', references: [{ field: 'crm_db.orders.id', direction: 'from' }] }));
    expect(errorsOf(breakable)).toEqual([]);
  });

  it('gives file, line and column for errors read from YAML', async () => {
    const text = (await readFile(EXAMPLE, 'utf8')).replace('dataCategories: [user.contact.phone_number]', 'dataCategories: [user.contact.fone]');
    const lineNo = text.split('\n').findIndex((l) => l.includes('user.contact.fone')) + 1;
    const { issues, manifest } = parseManifest(text, { file: 'shop.yaml' });
    expect(manifest).toBeUndefined();
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ file: 'shop.yaml', line: lineNo, severity: 'error' });
    expect(formatIssue(issues[0]!)).toMatch(new RegExp(`^shop\\.yaml:${lineNo}:\\d+: error: systems\\[shop\\]`));
  });

  it('turns YAML syntax errors and missing files into issues, never throws', async () => {
    expect(parseManifest('version: 1\norganization: [unclosed\n').issues[0]).toMatchObject({ path: '(yaml)', line: expect.any(Number) as number });
    expect(parseManifest('a: 1\na: 2\n').issues[0]!.path).toBe('(yaml)'); // duplicate keys
    expect((await loadManifestFile('/nonexistent/custodian.yaml')).issues[0]).toMatchObject({ path: '(file)', message: 'no such file' });
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (junk) => {
        const r = parseManifest(junk);
        expect(r.manifest === undefined ? r.issues.some((i) => i.severity === 'error') : true).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips: a valid manifest written as YAML and read back is the same manifest', async () => {
    const { manifest } = await loadManifestFile(EXAMPLE);
    const again = parseManifest(stringify(manifest));
    expect(again.manifest).toEqual(manifest);
    expect(manifestSchema.parse(parse(stringify(manifest)))).toEqual(manifest);
  });

  it('checks erasure strategies and index hints against introspected tables', () => {
    const m = manifestSchema.parse(with_(set(`${ORDERS}.fields.1.erasure`, 'null')));
    const issues = introspectionIssues(m, 0, [
      { name: 'customers', columns: [{ name: 'id', nullable: false, primaryKey: true, indexed: true }, { name: 'email', nullable: true, primaryKey: false, indexed: false }] },
      { name: 'orders', columns: [{ name: 'id', nullable: false, primaryKey: true, indexed: true }, { name: 'customer_id', nullable: false, primaryKey: false, indexed: true }] },
    ]);
    expect(issues.map((i) => [i.severity, i.message])).toEqual([
      ['warning', expect.stringMatching(/declared indexed but customers\.email has no index/)],
      ['error', expect.stringMatching(/null cannot work: column orders\.customer_id is NOT NULL/)],
      ['error', expect.stringMatching(/column created_at does not exist in table orders/)],
    ]);
  });

  it('resolves ${VAR} references and never prints secrets', () => {
    expect(resolveConnection('postgres://app:${PW}@db:5432/crm', { PW: 'p@ss:w/rd' })).toBe('postgres://app:p%40ss%3Aw%2Frd@db:5432/crm');
    expect(resolveConnection('sqlite:${DIR}/x.db', { DIR: '/var/lib' })).toBe('sqlite:/var/lib/x.db');
    let err: unknown;
    try {
      resolveConnection('postgres://app:${PW}@db/${DB}', {});
    } catch (e) {
      err = e;
    }
    expect(isCustodianError(err) && err.code).toBe('CST_ERR_DATAMAP_INVALID');
    expect((err as Error).message).toMatch(/PW, DB/);
    expect(redactConnection('postgres://app:secret@db/crm?password=x&sslmode=require')).toBe('postgres://app:***@db/crm?password=***&sslmode=require');
  });

  it('answers typed queries other modules ask', async () => {
    const { manifest } = await loadManifestFile(EXAMPLE);
    const map = new DataMap(manifest!);
    expect(map.identityFields('email').map((f) => f.address)).toEqual(['shop_db.customers.email', 'helpdesk.tickets.requester_email', 'hr_db.employees.work_email']);
    expect(map.collectionsReferencing('shop_db.customers').map((c) => c.address).sort()).toEqual(['analytics_events.events', 'shop_db.addresses', 'shop_db.orders']);
    expect(map.purposesNeedingConsent().map((p) => p.key)).toEqual(['marketing.email', 'marketing.advertising']);
    expect(map.field('shop_db.customers.phone')!.erasure).toEqual({ strategy: 'null' }); // inherited from the collection
    expect(map.fieldsWithCategory('user.contact').length).toBeGreaterThan(5);
    expect(map.systemOfDataset('hr_db')!.key).toBe('hr');
  });
});
