import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planRequest, type Plan } from '../../src/rights/index.js';
import { mapOf, shopSystems } from './fixtures.js';

const stepOf = (plan: Plan, collection: string) => plan.steps.find((s) => s.collection === collection);
const position = (plan: Plan, collection: string) => plan.steps.findIndex((s) => s.collection === collection);

describe('planRequest', () => {
  const map = mapOf(shopSystems());

  it('starts from every field with the identity and follows references within and across systems', () => {
    const plan = planRequest(map, { email: ['ada@example.com'] }, 'access');
    expect(plan.identities).toEqual(['email']);
    expect(plan.steps.map((s) => s.collection).sort()).toEqual(
      ['analytics_events.events', 'crm.employees', 'crm.tickets', 'shop_db.addresses', 'shop_db.customer_addresses', 'shop_db.customers', 'shop_db.orders'].sort(),
    );
    const customers = stepOf(plan, 'shop_db.customers')!;
    expect(customers.lookups).toEqual([{ field: 'email', address: 'shop_db.customers.email', source: { kind: 'identity', identity: 'email' }, sourceKey: 'identity:email', ownership: 'owner' }]);
    expect(customers.provides).toEqual(['id']);
    const events = stepOf(plan, 'analytics_events.events')!;
    expect(events.system).toBe('analytics');
    expect(events.lookups).toMatchObject([{ field: 'customer_id', source: { kind: 'field', collection: 'shop_db.customers', field: 'id' }, ownership: 'owner' }]);
    expect(events.after).toEqual(['shop_db.customers']);
    // The plan holds identity kinds only, never values.
    expect(JSON.stringify(plan)).not.toContain('ada@example.com');
    expect(Object.isFrozen(plan.steps)).toBe(true);
  });

  it('orders every step after the steps it takes values from', () => {
    const plan = planRequest(map, { email: ['ada@example.com'] }, 'access');
    expect(position(plan, 'shop_db.customers')).toBeLessThan(position(plan, 'shop_db.customer_addresses'));
    expect(position(plan, 'shop_db.customer_addresses')).toBeLessThan(position(plan, 'shop_db.addresses'));
    expect(position(plan, 'shop_db.customers')).toBeLessThan(position(plan, 'shop_db.orders'));
    expect(position(plan, 'crm.employees')).toBeLessThan(position(plan, 'crm.tickets'));
    expect(position(plan, 'shop_db.customers')).toBeLessThan(position(plan, 'crm.tickets'));
    expect(plan.steps.every((s) => !s.cyclic)).toBe(true);
  });

  it('reaches shared addresses through the join table and follows nothing from them', () => {
    const plan = planRequest(map, { user_id: ['1'] }, 'access');
    const addresses = stepOf(plan, 'shop_db.addresses')!;
    expect(addresses.lookups).toMatchObject([
      { field: 'id', ownership: 'shared', declaredBy: 'shop_db.customer_addresses.address_id', referrer: { collection: 'shop_db.customer_addresses', field: 'address_id', system: 'shop' } },
    ]);
    expect(addresses.provides).toEqual([]);
  });

  it('marks tickets an employee handled as mention rows: nothing is followed from them and erasure only nulls the reference', () => {
    const plan = planRequest(map, { employee_id: ['7'] }, 'erasure');
    const tickets = stepOf(plan, 'crm.tickets')!;
    expect(tickets.lookups).toMatchObject([{ field: 'handled_by', ownership: 'mention', source: { kind: 'field', collection: 'crm.employees', field: 'id' } }]);
    expect(tickets.provides).toEqual([]);
    expect(tickets.erasure!.mention).toEqual([{ field: 'handled_by', address: 'crm.tickets.handled_by', action: 'null' }]);
    // The ticket's customer is someone else: the customers collection is not reached from here.
    expect(stepOf(plan, 'shop_db.customers')).toBeUndefined();
    expect(plan.unreachable.find((u) => u.collection === 'shop_db.customers')!.reason).toMatch(/user_id, email/);
    expect(plan.erasureSequence).toEqual(['crm.tickets', 'crm.employees']);
  });

  it('reports every declared collection no identity reaches, with the reason', () => {
    const plan = planRequest(map, { email: ['ada@example.com'] }, 'access');
    expect(plan.unreachable).toEqual([
      { collection: 'analytics_events.campaign_stats', system: 'analytics', reason: expect.stringMatching(/declares no identity field and no reference/) as string },
    ]);
    const byPhone = planRequest(map, { phone_number: ['+49 30 1234567'] }, 'access');
    expect(byPhone.steps).toEqual([]);
    expect(byPhone.unreachable).toHaveLength(map.collections().length);
    expect(byPhone.problems).toEqual([{ code: 'unknown_identity', message: expect.stringMatching(/phone_number/) as string }]);
  });

  it('explains a collection reachable only through someone else’s rows', () => {
    const m = mapOf([
      {
        key: 'app',
        name: 'App',
        owner: 'Team',
        datasets: [
          {
            key: 'app_db',
            collections: [
              { name: 'users', erasure: 'delete_row', fields: [{ name: 'id', primaryKey: true, identity: 'user_id', indexed: true }] },
              {
                name: 'notes',
                erasure: 'delete_row',
                fields: [
                  { name: 'id', primaryKey: true },
                  { name: 'author_id', erasure: 'null', references: [{ field: 'app_db.users.id', direction: 'from', ownership: 'mention' }] },
                ],
              },
              { name: 'attachments', erasure: 'delete_row', fields: [{ name: 'id', primaryKey: true }, { name: 'note_id', references: [{ field: 'app_db.notes.id', direction: 'from' }] }] },
            ],
          },
        ],
      },
    ]);
    const plan = planRequest(m, { user_id: ['1'] }, 'access');
    expect(plan.steps.map((s) => s.collection)).toEqual(['app_db.users', 'app_db.notes']);
    expect(plan.unreachable).toEqual([{ collection: 'app_db.attachments', system: 'app', reason: expect.stringMatching(/only through shared or mention rows of app_db\.notes/) as string }]);
  });

  it('computes erasure actions and the foreign-key-safe order per system', () => {
    const plan = planRequest(map, { email: ['ada@example.com'] }, 'erasure');
    expect(plan.problems).toEqual([]);
    const customers = stepOf(plan, 'shop_db.customers')!.erasure!;
    expect(customers.row).toBe('delete');
    expect(customers.fields).toEqual([
      { field: 'id', address: 'shop_db.customers.id', action: 'delete_row' },
      { field: 'email', address: 'shop_db.customers.email', action: 'mask', value: 'erased@invalid.example' },
      { field: 'full_name', address: 'shop_db.customers.full_name', action: 'null' },
    ]);
    const orders = stepOf(plan, 'shop_db.orders')!.erasure!;
    expect(orders.row).toBe('update');
    expect(orders.fields).toContainEqual({ field: 'total_cents', address: 'shop_db.orders.total_cents', action: 'retain', legalBasis: 'legal_obligation', reason: 'Commercial and tax records, § 147 AO', retention: 'P10Y' });
    const tickets = stepOf(plan, 'crm.tickets')!.erasure!;
    expect(tickets.row).toBe('update');
    expect(tickets.fields.map((f) => [f.field, f.action])).toEqual([
      ['customer_id', 'null'],
      ['handled_by', 'null'],
      ['requester_email', 'hash'],
      ['body', 'mask'],
    ]);
    const shop = plan.erasureOrder.find((o) => o.system === 'shop')!.collections;
    const before = (a: string, b: string) => expect(shop.indexOf(a)).toBeLessThan(shop.indexOf(b));
    before('shop_db.customer_addresses', 'shop_db.customers');
    before('shop_db.customer_addresses', 'shop_db.addresses');
    before('shop_db.orders', 'shop_db.customers');
    before('crm.tickets', 'shop_db.customers');
    before('crm.tickets', 'crm.employees');
    // Across systems too: the analytics events go before the customers they reference.
    expect(plan.erasureSequence.indexOf('analytics_events.events')).toBeLessThan(plan.erasureSequence.indexOf('shop_db.customers'));
    expect(plan.erasureOrder.map((o) => o.system).sort()).toEqual(['analytics', 'shop']);
  });

  it('reports strategies that cannot apply at planning time', () => {
    const m = mapOf([
      {
        key: 'app',
        name: 'App',
        owner: 'Team',
        datasets: [
          {
            key: 'app_db',
            collections: [
              {
                name: 'users',
                erasure: 'null',
                fields: [
                  { name: 'id', primaryKey: true, identity: 'user_id', indexed: true, dataCategories: ['user.unique_id'] },
                  { name: 'profile', dataCategories: ['user.name'], erasure: 'hash', fields: [{ name: 'nick', dataCategories: ['user.name'], erasure: { strategy: 'mask', value: 'x' } }] },
                ],
              },
              { name: 'logs', erasure: 'delete_row', fields: [{ name: 'user_id', references: [{ field: 'app_db.users.id', direction: 'from' }] }] },
              {
                name: 'invoices',
                fields: [
                  { name: 'id', primaryKey: true },
                  { name: 'user_id', erasure: 'delete_row', references: [{ field: 'app_db.users.id', direction: 'from' }] },
                  { name: 'amount', erasure: { strategy: 'retain', legalBasis: 'legal_obligation', reason: 'Tax', retention: 'P10Y' } },
                ],
              },
              {
                name: 'memberships',
                erasure: 'delete_row',
                fields: [
                  { name: 'user_id', primaryKey: true, references: [{ field: 'app_db.users.id', direction: 'from' }] },
                  { name: 'group_id', primaryKey: true },
                ],
              },
              {
                name: 'comments',
                erasure: 'delete_row',
                fields: [
                  { name: 'id', primaryKey: true },
                  { name: 'author', references: [{ field: 'app_db.users.id', direction: 'from', ownership: 'mention' }] },
                ],
              },
            ],
          },
        ],
      },
    ]);
    const plan = planRequest(m, { user_id: ['1'] }, 'erasure');
    const codes = plan.problems.map((p) => `${p.code} ${p.field ?? p.collection ?? ''}`).sort();
    expect(codes).toEqual(
      [
        'composite_primary_key app_db.memberships',
        'mention_delete_row app_db.comments.author',
        'nested_field_change app_db.users.profile.nick',
        'no_primary_key app_db.logs',
        'retain_conflict app_db.invoices.user_id',
        'strategy_on_nested_field app_db.users.profile',
        'strategy_on_primary_key app_db.users.id',
      ].sort(),
    );
    const users = stepOf(plan, 'app_db.users')!.erasure!;
    expect(users.fields.find((f) => f.field === 'id')).toMatchObject({ action: 'none' });
    const invoices = stepOf(plan, 'app_db.invoices')!.erasure!;
    expect(invoices.row).toBe('keep');
    expect(plan.problems.every((p) => p.message.length > 0)).toBe(true);
    // An access plan of the same map has no erasure problems.
    expect(planRequest(m, { user_id: ['1'] }, 'access').problems).toEqual([]);
  });

  it('groups cyclic lookups and cuts foreign-key cycles at a nullable reference', () => {
    const m = mapOf([
      {
        key: 'app',
        name: 'App',
        owner: 'Team',
        datasets: [
          {
            key: 'app_db',
            collections: [
              {
                name: 'accounts',
                erasure: 'delete_row',
                fields: [
                  { name: 'id', primaryKey: true, identity: 'user_id', indexed: true },
                  { name: 'main_profile_id', erasure: 'null', references: [{ field: 'app_db.profiles.id', direction: 'to' }] },
                  { name: 'referred_by', erasure: 'null', references: [{ field: 'app_db.accounts.id', direction: 'to' }] },
                ],
              },
              {
                name: 'profiles',
                erasure: 'delete_row',
                fields: [
                  { name: 'id', primaryKey: true },
                  { name: 'account_id', references: [{ field: 'app_db.accounts.id', direction: 'to' }] },
                ],
              },
              { name: 'sessions', erasure: 'delete_row', fields: [{ name: 'id', primaryKey: true }, { name: 'profile_id', references: [{ field: 'app_db.profiles.id', direction: 'from' }] }] },
            ],
          },
        ],
      },
    ]);
    const plan = planRequest(m, { user_id: ['1'] }, 'erasure');
    expect(plan.steps.map((s) => [s.collection, s.cyclic])).toEqual([
      ['app_db.accounts', true],
      ['app_db.profiles', true],
      ['app_db.sessions', false],
    ]);
    expect(stepOf(plan, 'app_db.accounts')!.group).toBe(stepOf(plan, 'app_db.profiles')!.group);
    expect(stepOf(plan, 'app_db.accounts')!.lookups.map((l) => l.sourceKey).sort()).toEqual(['app_db.accounts.referred_by', 'app_db.profiles.account_id', 'identity:user_id']);
    expect(plan.cuts).toEqual([{ collection: 'app_db.accounts', field: 'main_profile_id', address: 'app_db.accounts.main_profile_id' }]);
    expect(plan.erasureSequence).toEqual(['app_db.sessions', 'app_db.profiles', 'app_db.accounts']);
    expect(plan.problems).toEqual([]);
  });

  it('reports a foreign-key cycle that no nullable reference cuts', () => {
    const m = mapOf([
      {
        key: 'app',
        name: 'App',
        owner: 'Team',
        datasets: [
          {
            key: 'app_db',
            collections: [
              { name: 'a', erasure: 'delete_row', fields: [{ name: 'id', primaryKey: true, identity: 'user_id', indexed: true }, { name: 'b_id', references: [{ field: 'app_db.b.id' }] }] },
              { name: 'b', erasure: 'delete_row', fields: [{ name: 'id', primaryKey: true }, { name: 'a_id', references: [{ field: 'app_db.a.id' }] }] },
            ],
          },
        ],
      },
    ]);
    const plan = planRequest(m, { user_id: ['1'] }, 'erasure');
    expect(plan.problems).toMatchObject([{ code: 'erasure_cycle', message: expect.stringMatching(/app_db\.a, app_db\.b/) as string }]);
    expect([...plan.erasureSequence].sort()).toEqual(['app_db.a', 'app_db.b']);
  });

  it('property: every step comes after its inputs; erasure puts referencing collections before referenced ones within a system', () => {
    const graph = fc.integer({ min: 1, max: 14 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        systems: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: n, maxLength: n }),
        refs: fc.array(
          fc.record({ from: fc.integer({ min: 0, max: n - 1 }), to: fc.integer({ min: 0, max: n - 1 }), direction: fc.constantFrom('from', 'to', undefined), ownership: fc.constantFrom('owner', 'owner', 'shared', 'mention') }),
          { maxLength: 3 * n },
        ),
        identities: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      }),
    );
    fc.assert(
      fc.property(graph, ({ n, systems, refs, identities }) => {
        // References point from a later collection to an earlier one: the foreign-key graph is a DAG.
        const fieldsOf = (i: number) => [
          { name: 'id', primaryKey: true, ...(identities[i] === true ? { identity: 'email', indexed: true } : {}) },
          ...refs.flatMap((r, k) =>
            Math.max(r.from, r.to) === i && r.from !== r.to
              ? [{ name: `ref${k}`, erasure: 'null' as const, references: [{ field: `ds${systems[Math.min(r.from, r.to)]}.c${Math.min(r.from, r.to)}.id`, ...(r.direction === undefined ? {} : { direction: r.direction }), ownership: r.ownership }] }]
              : [],
          ),
        ];
        const m = mapOf(
          [0, 1, 2].map((s) => ({
            key: `s${s}`,
            name: `System ${s}`,
            owner: 'Team',
            datasets: [{ key: `ds${s}`, collections: Array.from({ length: n }, (_, i) => i).filter((i) => systems[i] === s).map((i) => ({ name: `c${i}`, erasure: 'delete_row' as const, fields: fieldsOf(i) })) }].filter((d) => d.collections.length > 0),
          })),
        );
        const plan = planRequest(m, { email: ['x@example.com'] }, 'erasure');
        const at = new Map(plan.steps.map((s, i) => [s.collection, i]));
        for (const s of plan.steps) {
          for (const a of s.after) {
            const other = plan.steps[at.get(a)!]!;
            if (other.group !== s.group) expect(at.get(a)!).toBeLessThan(at.get(s.collection)!);
          }
          if (!s.cyclic) expect(s.after.every((a) => at.get(a)! < at.get(s.collection)!)).toBe(true);
        }
        // Partition: every collection is planned or reported unreachable, never both.
        expect(plan.steps.length + plan.unreachable.length).toBe(n);
        const seq = new Map(plan.erasureSequence.map((c, i) => [c, i]));
        expect(plan.erasureSequence).toHaveLength(plan.steps.length);
        for (const f of m.fields()) {
          const holder = `${f.dataset.key}.${f.collection.name}`;
          for (const r of f.field.references) {
            const target = m.field(r.field)!;
            const referenced = `${target.dataset.key}.${target.collection.name}`;
            if (seq.has(holder) && seq.has(referenced) && target.system.key === f.system.key) expect(seq.get(holder)!).toBeLessThan(seq.get(referenced)!);
          }
        }
        expect(plan.problems.filter((p) => p.code === 'erasure_cycle')).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('plans a large map in linear time', () => {
    const n = 2000;
    const m = mapOf([
      {
        key: 'big',
        name: 'Big',
        owner: 'Team',
        datasets: [
          {
            key: 'big_db',
            collections: Array.from({ length: n }, (_, i) => ({
              name: `c${i}`,
              erasure: 'delete_row' as const,
              fields: [
                { name: 'id', primaryKey: true, ...(i === 0 ? { identity: 'email', indexed: true } : {}) },
                ...(i === 0 ? [] : [{ name: 'parent_id', references: [{ field: `big_db.c${Math.floor((i - 1) / 2)}.id`, direction: 'from' as const }] }]),
              ],
            })),
          },
        ],
      },
    ]);
    const started = performance.now();
    const plan = planRequest(m, { email: ['x@example.com'] }, 'erasure');
    expect(plan.steps).toHaveLength(n);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
