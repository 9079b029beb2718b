import { describe, expect, it } from 'vitest';
import type { System } from '../../src/datamap/index.js';
import { compareWithManifest, type ScanReport } from '../../src/scanner/index.js';

const column = (name: string, category: string | null) => ({
  name,
  dataType: 'text',
  kind: 'text' as const,
  nullable: true,
  primaryKey: name === 'id',
  indexed: name === 'id',
  unique: name === 'id',
  sampled: 10,
  finding: category === null ? null : { kind: 'email' as const, category, confidence: 0.9, basis: 'values' as const, matched: 10, sampled: 10 },
});

const report: ScanReport = {
  engine: 'postgres',
  url: 'postgres://app:***@db/crm',
  schema: 'public',
  sampleLimit: 10,
  rowsSampled: 10,
  findings: 3,
  durationMs: 1,
  tables: [{ schema: 'public', name: 'contacts', estimatedRows: 10, rowsSampled: 10, columns: [column('id', null), column('email', 'user.contact.email'), column('notes', 'user.content.private'), column('phone', 'user.contact.phone_number')] }],
};

const system = (fields: { name: string; dataCategories: string[] }[], collection = 'Contacts'): System => ({
  key: 'crm',
  name: 'CRM',
  owner: 'Team',
  purposes: [],
  recipients: [],
  transfers: [],
  securityMeasures: [],
  datasets: [{ key: 'crm_db', collections: [{ name: collection, dataSubjects: [], purposes: [], retention: [], fields: fields.map((f) => ({ ...f, references: [], fields: [] })) }] }],
});

describe('compareWithManifest', () => {
  it('matches collections ignoring case, and accepts ancestor categories', () => {
    const d = compareWithManifest(report, system([{ name: 'email', dataCategories: ['user.contact'] }, { name: 'notes', dataCategories: ['user.content.private'] }, { name: 'phone', dataCategories: ['user.contact.phone_number'] }]));
    expect(d).toMatchObject({ ok: true, undeclared: [], vanished: [], mismatched: [] });
  });

  it('warns, without failing, on unrelated declared categories', () => {
    const d = compareWithManifest(report, system([{ name: 'email', dataCategories: ['user.name'] }, { name: 'notes', dataCategories: ['system.operations'] }, { name: 'phone', dataCategories: ['user.contact.phone_number'] }]));
    expect(d.ok).toBe(true);
    expect(d.mismatched.map((m) => m.address)).toEqual(['crm_db.Contacts.email', 'crm_db.Contacts.notes']);
  });

  it('reports undeclared and vanished fields, and ignores findings under the threshold', () => {
    const d = compareWithManifest(report, system([{ name: 'email', dataCategories: ['user.contact.email'] }, { name: 'fax', dataCategories: ['user.contact.fax_number'] }]));
    expect(d.ok).toBe(false);
    expect(d.undeclared.map((u) => [u.field, u.reason, u.dataset])).toEqual([
      ['notes', 'missing', 'crm_db'],
      ['phone', 'missing', 'crm_db'],
    ]);
    expect(d.vanished.map((v) => v.address)).toEqual(['crm_db.Contacts.fax']);
    expect(compareWithManifest(report, system([{ name: 'email', dataCategories: ['user.contact.email'] }]), { minConfidence: 0.95 }).undeclared).toEqual([]);
  });

  it('reports a whole collection whose table is gone', () => {
    const d = compareWithManifest(report, system([{ name: 'email', dataCategories: ['user.contact.email'] }], 'leads'));
    expect(d.vanished).toEqual([{ address: 'crm_db.leads', dataset: 'crm_db', collection: 'leads', field: null }]);
    expect(d.undeclared.map((u) => u.dataset)).toEqual([null, null, null]);
  });
});
