import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATA_CATEGORIES, DATA_SUBJECTS, LEGAL_BASIS_KEYS, isStorableText } from '../../src/core/index.js';
import { exportFides, importFides } from '../../src/datamap/fides.js';
import type { Collection, Dataset, Erasure, Field, Reference, RetentionRule } from '../../src/datamap/manifest.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'fides', name), 'utf8');
const FIXTURES = ['postgres_example_test_dataset.yml', 'mongo_example_test_dataset.yml', 'example_field_masking_override_test_dataset.yml'];

describe('importFides on real Fides datasets', () => {
  it.each(FIXTURES)('%s loads without errors, and import → export → import is stable', (name) => {
    const first = importFides(fixture(name), { file: name });
    expect(first.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(first.datasets).toHaveLength(1);
    const again = importFides(exportFides(first.datasets));
    expect(again.issues).toEqual([]);
    expect(again.datasets).toEqual(first.datasets);
    expect(exportFides(again.datasets)).toBe(exportFides(first.datasets));
  });

  it('maps the Postgres example: identities, types, lengths, references with direction, string_rewrite', () => {
    const { datasets, issues } = importFides(fixture('postgres_example_test_dataset.yml'), { file: 'pg.yml' });
    const ds = datasets[0]!;
    expect(ds.key).toBe('postgres_example_test_dataset');
    expect(ds.name).toBe('Postgres Example Test Dataset');
    expect(ds.collections.map((c) => c.name)).toEqual(['address', 'customer', 'employee', 'login', 'orders', 'order_item', 'payment_card', 'product', 'report', 'service_request', 'visit']);
    const customer = ds.collections.find((c) => c.name === 'customer')!;
    expect(customer.fields.find((f) => f.name === 'email')).toEqual({
      name: 'email',
      dataCategories: ['user.contact.email'],
      identity: 'email',
      dataType: 'string',
      references: [],
      fields: [],
    });
    expect(customer.fields.find((f) => f.name === 'name')).toMatchObject({ dataType: 'string', length: 40 });
    expect(customer.fields.find((f) => f.name === 'address_id')!.references).toEqual([{ field: 'postgres_example_test_dataset.address.id', direction: 'to' }]);
    const login = ds.collections.find((c) => c.name === 'login')!;
    expect(login.fields.find((f) => f.name === 'customer_id')!.references).toEqual([{ field: 'postgres_example_test_dataset.customer.id', direction: 'from' }]);
    const employeeName = ds.collections.find((c) => c.name === 'employee')!.fields.find((f) => f.name === 'name')!;
    expect(employeeName.erasure).toEqual({ strategy: 'mask', value: 'testing' });
    // The suffix of the rewrite is something Custodian cannot express: a warning with its position, not a silent drop.
    expect(issues).toEqual([
      {
        severity: 'warning',
        file: 'pg.yml',
        path: 'dataset[postgres_example_test_dataset].collections[employee].fields[name].fides_meta.masking_strategy_override.configuration.format_preservation',
        message: 'masking configuration format_preservation of string_rewrite is not kept',
        line: 82,
        column: 21,
      },
    ]);
  });

  it('maps the Mongo example: nested fields and arrays of objects, nested references, and warns about what Fides ignores', () => {
    const { datasets, issues } = importFides(fixture('mongo_example_test_dataset.yml'));
    const ds = datasets[0]!;
    const details = ds.collections.find((c) => c.name === 'customer_details')!;
    const contacts = details.fields.find((f) => f.name === 'emergency_contacts')!;
    expect(contacts.dataType).toBe('object[]');
    expect(contacts.fields.map((f) => f.name)).toEqual(['name', 'relationship', 'phone']);
    expect(contacts.fields[2]).toMatchObject({ dataCategories: ['user.contact.phone_number'], dataType: 'string' });
    expect(details.fields.find((f) => f.name === 'comments')!.fields[0]!.references).toEqual([{ field: 'mongo_test.conversations.thread.comment', direction: 'to' }]);
    const profile = ds.collections.find((c) => c.name === 'internal_customer_profile')!;
    const ids = profile.fields.find((f) => f.name === 'customer_identifiers')!;
    expect(ids.fields.find((f) => f.name === 'derived_phone')).toMatchObject({ identity: 'phone_number', dataType: 'string[]' });
    expect(ids.fields.find((f) => f.name === 'internal_id')!.references).toEqual([
      { field: 'mongo_test.customer_feedback.customer_information.internal_customer_id', direction: 'from' },
    ]);
    expect(issues.map((i) => [i.severity, i.path, i.line])).toEqual([
      ['warning', 'dataset[mongo_test].collections[customer_details].fields[travel_identifiers].fides_meta.data_categories', 66],
      ['warning', 'dataset[mongo_test].collections[internal_customer_profile].fields[customer_identifiers].fields[derived_phone].fides_meta.return_all_elements', 102],
      ['warning', 'dataset[mongo_test].collections[employee].fields[id].references', 207],
      ['warning', 'dataset[mongo_test].collections[rewards].fields[owner].fides_meta.return_all_elements', 265],
    ]);
  });

  it('maps field masking overrides: string_rewrite → mask, null_rewrite outside fides_meta is ignored like Fides does, others warn', () => {
    const { datasets, issues } = importFides(fixture('example_field_masking_override_test_dataset.yml'));
    const customer = datasets[0]!.collections.find((c) => c.name === 'customer')!;
    expect(customer.fields.find((f) => f.name === 'name')!.erasure).toBeUndefined();
    const address = customer.fields.find((f) => f.name === 'address')!;
    expect(address.fields.find((f) => f.name === 'house')!.erasure).toEqual({ strategy: 'mask', value: '1234' });
    expect(address.fields.find((f) => f.name === 'state')!.erasure).toBeUndefined();
    expect(datasets[0]!.collections.find((c) => c.name === 'address')!.fields.find((f) => f.name === 'id')!.primaryKey).toBe(true);
    expect(issues.map((i) => i.message)).toEqual([
      "masking strategy random_string_rewrite has no Custodian equivalent and is not kept: the collection's erasure strategy applies",
      'masking configuration format_preservation of string_rewrite is not kept',
      'masking_strategy_override is not a fideslang field key (Fides ignores it) and is not kept',
    ]);
  });
});

describe('importFides mapping details', () => {
  const one = (body: string) => importFides(`dataset:\n  - fides_key: shop\n${body}`);

  it('maps collection-level delete to delete_row, null_rewrite and hmac, and the legacy fidesops_meta', () => {
    const { datasets, issues } = one(
      [
        '    collections:',
        '      - name: orders',
        '        fides_meta:',
        '          masking_strategy_override:',
        '            strategy: delete',
        '        fields:',
        '          - name: note',
        '            fidesops_meta:',
        '              masking_strategy_override:',
        '                strategy: null_rewrite',
        '          - name: email',
        '            fides_meta:',
        '              primary_key: True',
        '              masking_strategy_override:',
        '                strategy: hmac',
        '',
      ].join('\n'),
    );
    expect(issues).toEqual([]);
    const orders = datasets[0]!.collections[0]!;
    expect(orders.erasure).toEqual({ strategy: 'delete_row' });
    expect(orders.fields[0]!.erasure).toEqual({ strategy: 'null' });
    expect(orders.fields[1]).toMatchObject({ primaryKey: true, erasure: { strategy: 'hash' } });
  });

  it('applies dataset-level data subjects to every collection and keeps collection ones', () => {
    const { datasets } = one('    data_subjects: [customer]\n    collections:\n      - name: a\n        data_subjects: [employee, customer]\n        fields:\n          - name: x\n');
    expect(datasets[0]!.collections[0]!.dataSubjects).toEqual(['customer', 'employee']);
  });

  it('warns about every fideslang key it cannot keep, naming it', () => {
    const { datasets, issues } = one(
      [
        '    organization_fides_key: acme',
        '    tags: [pii]',
        '    data_categories: [user]',
        '    retention: 30 days',
        '    fides_meta:',
        '      after: [other]',
        '      namespace: { schema: public }',
        '    collections:',
        '      - name: a',
        '        data_uses: [marketing]',
        '        fides_meta:',
        '          skip_processing: true',
        '          erase_after: [shop.b]',
        '        fields:',
        '          - name: x',
        '            data_subjects: [customer]',
        '            fides_meta:',
        '              read_only: true',
        '              custom_request_field: tenant',
        '',
      ].join('\n'),
    );
    expect(datasets).toHaveLength(1);
    expect(issues.every((i) => i.severity === 'warning')).toBe(true);
    expect(issues.map((i) => i.path.replace('dataset[shop].', ''))).toEqual([
      'organization_fides_key',
      'tags',
      'data_categories',
      'retention',
      'fides_meta.after',
      'fides_meta.namespace',
      'collections[a].data_uses',
      'collections[a].fides_meta.skip_processing',
      'collections[a].fides_meta.erase_after',
      'collections[a].fields[x].data_subjects',
      'collections[a].fields[x].fides_meta.read_only',
      'collections[a].fields[x].fides_meta.custom_request_field',
    ]);
  });

  it('warns about unknown taxonomy keys with suggestions', () => {
    const { datasets, issues } = one('    collections:\n      - name: a\n        data_subjects: [custmer]\n        fields:\n          - name: x\n            data_categories: [user.contact.emial]\n');
    expect(datasets).toHaveLength(1);
    expect(issues.map((i) => i.message)).toEqual([
      'unknown data subject custmer in the fideslang taxonomy; did you mean customer?',
      expect.stringContaining('unknown data category user.contact.emial in the fideslang taxonomy; did you mean user.contact.email'),
    ]);
  });

  it.each([
    ['YAML syntax', 'dataset:\n  - fides_key: [\n', '(yaml)'],
    ['no dataset list', 'system:\n  - fides_key: x\n', '(file)'],
    ['upper-case fides_key', 'dataset:\n  - fides_key: Shop.DB\n    collections:\n      - name: a\n        fields:\n          - name: x\n', 'dataset[Shop.DB].fides_key'],
    ['no collections', 'dataset:\n  - fides_key: shop\n', 'dataset[shop]'],
    ['empty fields', 'dataset:\n  - fides_key: shop\n    collections:\n      - name: a\n        fields: []\n', 'dataset[shop].collections[a].fields'],
    ['bad field name', 'dataset:\n  - fides_key: shop\n    collections:\n      - name: a\n        fields:\n          - name: "first name"\n', 'dataset[shop].collections[a].fields[first name].name'],
    ['duplicate field', 'dataset:\n  - fides_key: shop\n    collections:\n      - name: a\n        fields:\n          - name: x\n          - name: x\n', 'dataset[shop].collections[a].fields[x].name'],
    [
      'bad reference',
      'dataset:\n  - fides_key: shop\n    collections:\n      - name: a\n        fields:\n          - name: x\n            fides_meta:\n              references:\n                - dataset: shop\n                  field: b\n',
      'dataset[shop].collections[a].fields[x].fides_meta.references[0].field',
    ],
    ['bad length', 'dataset:\n  - fides_key: shop\n    collections:\n      - name: a\n        fields:\n          - name: x\n            fides_meta:\n              length: -1\n', 'dataset[shop].collections[a].fields[x].fides_meta.length'],
    [
      'bad collection override',
      'dataset:\n  - fides_key: shop\n    collections:\n      - name: a\n        fides_meta:\n          masking_strategy_override:\n            strategy: null_rewrite\n        fields:\n          - name: x\n',
      'dataset[shop].collections[a].fides_meta.masking_strategy_override',
    ],
    [
      'bad custodian extension',
      'dataset:\n  - fides_key: shop\n    collections:\n      - name: a\n        fields:\n          - name: x\n            custodian:\n              erasure: { strategy: retain, legal_basis: whim, reason: r, retention: P1Y }\n',
      'dataset[shop].collections[a].fields[x]',
    ],
  ])('rejects %s with an error at its place, and returns no dataset', (_name, text, path) => {
    const { datasets, issues } = importFides(text, { file: 'in.yml' });
    expect(datasets).toEqual([]);
    const errors = issues.filter((i) => i.severity === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.path).toBe(path);
    expect(errors[0]!.file).toBe('in.yml');
    expect(errors[0]!.line).toBeGreaterThan(0);
  });

  it('keeps the valid datasets of a file when another one has an error', () => {
    const { datasets, issues } = importFides('dataset:\n  - fides_key: Bad\n    collections: []\n  - fides_key: good\n    collections:\n      - name: a\n        fields:\n          - name: x\n');
    expect(datasets.map((d) => d.key)).toEqual(['good']);
    expect(issues.filter((i) => i.severity === 'error').length).toBeGreaterThan(0);
  });
});

// ---- Round trip: importFides(exportFides(x)) deep-equals x for any dataset of our model. ----

const text = (max: number) => fc.string({ unit: 'binary', maxLength: Math.min(max, 40) }).filter(isStorableText);
const name1 = (max: number) => text(max).filter((s) => s.length > 0);
const key = fc.stringMatching(/^[a-z][a-z0-9_-]{0,12}$/);
const ident = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_$-]{0,10}$/);
const period = fc.constantFrom('P30D', 'P13M', 'P2Y', 'P1Y6M', 'P4W');
const erasure: fc.Arbitrary<Erasure> = fc.oneof(
  fc.constantFrom<Erasure>({ strategy: 'delete_row' }, { strategy: 'null' }, { strategy: 'hash' }),
  text(500).map((value): Erasure => ({ strategy: 'mask', value })),
  fc.record({ legalBasis: fc.constantFrom(...LEGAL_BASIS_KEYS), reason: name1(1000), retention: period }).map((r): Erasure => ({ strategy: 'retain', ...r })),
);
const reference: fc.Arbitrary<Reference> = fc.record(
  { field: fc.tuple(key, ident, ident, fc.array(ident, { maxLength: 1 })).map(([d, c, f, rest]) => [d, c, f, ...rest].join('.')), direction: fc.constantFrom('to' as const, 'from' as const) },
  { requiredKeys: ['field'] },
);
const categories = fc.uniqueArray(fc.constantFrom(...DATA_CATEGORIES.map((c) => c.key)), { maxLength: 3 });

const { field } = fc.letrec<{ field: Field }>((tie) => ({
  field: fc.record(
    {
      name: ident,
      description: text(4000),
      dataCategories: categories,
      identity: fc.constantFrom('email', 'phone_number', 'user_id', 'loyalty_id'),
      indexed: fc.boolean(),
      primaryKey: fc.boolean(),
      dataType: fc.constantFrom('string', 'integer', 'object', 'object[]', 'string[]', 'True', '123'),
      length: fc.integer({ min: 1, max: 100_000 }),
      references: fc.array(reference, { maxLength: 2 }),
      erasure,
      fields: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.constant([]), fc.uniqueArray(tie('field'), { maxLength: 3, selector: (f) => f.name })),
    },
    { requiredKeys: ['name', 'dataCategories', 'references', 'fields'] },
  ),
}));

const retentionRule: fc.Arbitrary<RetentionRule> = fc.record(
  { field: ident, period, action: fc.constantFrom('delete' as const, 'anonymise' as const), fields: fc.array(ident, { maxLength: 3 }), description: text(4000) },
  { requiredKeys: ['field', 'period', 'action'] },
);

const collection: fc.Arbitrary<Collection> = fc.record(
  {
    name: ident,
    description: text(4000),
    dataSubjects: fc.uniqueArray(fc.constantFrom(...DATA_SUBJECTS.map((s) => s.key)), { maxLength: 3 }),
    purposes: fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9_]{0,6}(?:\.[a-z][a-z0-9_]{0,6})?$/), { maxLength: 3 }),
    erasure,
    retention: fc.array(retentionRule, { maxLength: 2 }),
    fields: fc.uniqueArray(field, { minLength: 1, maxLength: 4, selector: (f) => f.name }),
  },
  { requiredKeys: ['name', 'dataSubjects', 'purposes', 'retention', 'fields'] },
);

const dataset: fc.Arbitrary<Dataset> = fc.record(
  { key, name: name1(200), description: text(4000), collections: fc.uniqueArray(collection, { minLength: 1, maxLength: 3, selector: (c) => c.name }) },
  { requiredKeys: ['key', 'collections'] },
);

describe('exportFides', () => {
  it('round-trips any dataset of our model: importFides(exportFides(x)) deep-equals x, with no issue (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(dataset, { maxLength: 3, selector: (d) => d.key }), (datasets) => {
        const back = importFides(exportFides(datasets));
        expect(back.issues).toEqual([]);
        expect(back.datasets).toEqual(datasets);
      }),
      { numRuns: 150 },
    );
  });

  it('writes fideslang: snake_case keys, fides_meta, references split into dataset and field, flow-style category lists', () => {
    const ds: Dataset = {
      key: 'crm',
      name: 'CRM',
      collections: [
        {
          name: 'contacts',
          dataSubjects: ['customer'],
          purposes: ['marketing.email'],
          erasure: { strategy: 'delete_row' },
          retention: [{ field: 'created_at', period: 'P2Y', action: 'delete' }],
          fields: [
            {
              name: 'email',
              dataCategories: ['user.contact.email'],
              identity: 'email',
              indexed: true,
              primaryKey: false,
              dataType: 'string',
              length: 254,
              references: [{ field: 'billing.accounts.email', direction: 'to' }],
              erasure: { strategy: 'retain', legalBasis: 'legal_obligation', reason: 'invoices (HGB §257)', retention: 'P10Y' },
              fields: [],
            },
            { name: 'nickname', dataCategories: [], references: [], erasure: { strategy: 'mask', value: 'redacted' }, fields: [] },
          ],
        },
      ],
    };
    expect(exportFides([ds])).toBe(
      [
        'dataset:',
        '  - fides_key: crm',
        '    name: CRM',
        '    collections:',
        '      - name: contacts',
        '        data_subjects: [ customer ]',
        '        fides_meta:',
        '          masking_strategy_override:',
        '            strategy: delete',
        '        custodian:',
        '          purposes: [ marketing.email ]',
        '          retention:',
        '            - field: created_at',
        '              period: P2Y',
        '              action: delete',
        '        fields:',
        '          - name: email',
        '            data_categories: [ user.contact.email ]',
        '            fides_meta:',
        '              identity: email',
        '              primary_key: false',
        '              data_type: string',
        '              length: 254',
        '              references:',
        '                - dataset: billing',
        '                  field: accounts.email',
        '                  direction: to',
        '            custodian:',
        '              indexed: true',
        '              erasure:',
        '                strategy: retain',
        '                legal_basis: legal_obligation',
        '                reason: invoices (HGB §257)',
        '                retention: P10Y',
        '          - name: nickname',
        '            fides_meta:',
        '              masking_strategy_override:',
        '                strategy: string_rewrite',
        '                configuration:',
        '                  rewrite_value: redacted',
        '',
      ].join('\n'),
    );
  });

  it('writes an empty list for no datasets, which imports as an empty list', () => {
    expect(exportFides([])).toBe('dataset: []\n');
    expect(importFides(exportFides([]))).toEqual({ datasets: [], issues: [] });
  });
});
