import { describe, expect, it } from 'vitest';
import type { ColumnInfo, ColumnKind } from '../../src/connectors/index.js';
import { isDataCategory } from '../../src/core/index.js';
import { DETECTOR_CATEGORIES, classifyColumn, containsPersonalData, nameSignal, nameTokens, DETECTORS } from '../../src/scanner/index.js';
import * as gen from './generators.js';

const column = (name: string, kind: ColumnKind = 'text', extra: Partial<ColumnInfo> = {}): ColumnInfo => ({ name, dataType: kind, kind, nullable: true, primaryKey: false, indexed: false, unique: false, ...extra });
const values = (n: number, f: (r: gen.Rand, i: number) => string): string[] => {
  const r = gen.rng(42);
  return Array.from({ length: n }, (_, i) => f(r, i));
};
const NOW = new Date('2025-06-01T00:00:00Z');

describe('detector categories', () => {
  it('are real fideslang data categories', () => {
    for (const c of Object.values(DETECTOR_CATEGORIES)) expect(isDataCategory(c), c).toBe(true);
  });
});

describe('name tokens and signals', () => {
  it('splits snake, camel and kebab case', () => {
    expect(nameTokens('customerEmailAddress')).toEqual(['customer', 'email', 'address']);
    expect(nameTokens('E-Mail')).toEqual(['e', 'mail']);
    expect(nameTokens('IPAddress')).toEqual(['ip', 'address']);
  });

  it('marks look-alike names as negative', () => {
    const email = DETECTORS.find((d) => d.kind === 'email')!;
    const phone = DETECTORS.find((d) => d.kind === 'phone_number')!;
    const ip = DETECTORS.find((d) => d.kind === 'ip_address')!;
    expect(nameSignal(email, nameTokens('email_template'), [])).toBe('negative');
    expect(nameSignal(email, nameTokens('contactEmail'), [])).toBe('strong');
    expect(nameSignal(phone, nameTokens('phone_model'), [])).toBe('negative');
    expect(nameSignal(ip, nameTokens('ip_allowlist_comment'), [])).toBe('negative');
    const name = DETECTORS.find((d) => d.kind === 'name')!;
    expect(nameSignal(name, ['name'], ['customers'])).toBe('strong');
    expect(nameSignal(name, ['name'], ['products'])).toBe('none');
  });
});

describe('classifyColumn', () => {
  it('finds e-mail columns by values even under an unhelpful name', () => {
    const f = classifyColumn('accounts', column('login'), values(50, (r, i) => gen.email(r, i)));
    expect(f).toMatchObject({ kind: 'email', category: 'user.contact.email', basis: 'values', matched: 50, sampled: 50 });
    expect(f!.confidence).toBeGreaterThan(0.9);
  });

  it('does not flag email_template, phone_model or ip_allowlist_comment', () => {
    expect(classifyColumn('t', column('email_template'), values(50, () => 'Hi {{first_name}}, welcome!'))).toBeNull();
    expect(classifyColumn('t', column('phone_model'), values(50, (r) => gen.pick(r, ['Pixel 8', 'iPhone 15'])))).toBeNull();
    expect(classifyColumn('t', column('ip_allowlist_comment'), values(50, () => 'office VPN 10.0.0.0/8'))).toBeNull();
  });

  it('does not flag 16-digit order numbers that fail Luhn, as text or as integers', () => {
    expect(classifyColumn('orders', column('order_number'), values(100, (r) => gen.nonLuhn16(r)))).toBeNull();
    expect(classifyColumn('orders', column('reference', 'integer'), values(100, (r) => gen.nonLuhn16(r)))).toBeNull();
  });

  it('finds card numbers, IBANs and national ids by their checksums alone', () => {
    expect(classifyColumn('t', column('c1'), values(40, (r) => gen.cardNumber(r)))?.category).toBe('user.financial.credit_card');
    expect(classifyColumn('t', column('c2'), values(40, (r) => gen.iban(r)))?.category).toBe('user.financial.bank_account');
    const cpf = classifyColumn('t', column('c3'), values(40, (r) => gen.cpf(r)));
    expect(cpf).toMatchObject({ category: 'user.government_id.national_identification_number', scheme: 'br_cpf' });
  });

  it('needs nearly all values to pass a weak nine-digit checksum without a name', () => {
    // Random 9-digit numbers pass the 11-proof about one time in eleven.
    expect(classifyColumn('t', column('code'), values(200, (r) => String(gen.int(r, 100_000_000, 999_999_999))))).toBeNull();
    expect(classifyColumn('t', column('code'), values(200, (r) => gen.bsn(r)))?.scheme).toBe('nl_bsn');
  });

  it('accepts bare digits as phone numbers only when the name says phone', () => {
    const bare = values(50, (r) => `06${gen.digits(r, 8)}`);
    expect(classifyColumn('t', column('mobile'), bare)?.category).toBe('user.contact.phone_number');
    expect(classifyColumn('t', column('reference'), bare)).toBeNull();
    expect(classifyColumn('t', column('reach_me'), values(50, (r) => gen.phone(r)))?.category).toBe('user.contact.phone_number');
  });

  it('needs a name for names, addresses and birth dates', () => {
    const names = values(50, (r) => gen.fullName(r));
    expect(classifyColumn('t', column('full_name'), names)?.category).toBe('user.name');
    expect(classifyColumn('t', column('label'), names)).toBeNull();
    expect(classifyColumn('products', column('product_name'), names)).toBeNull();
    const dates = values(50, (r) => gen.birthDate(r));
    expect(classifyColumn('t', column('dob', 'date'), dates, { now: NOW })?.category).toBe('user.demographic.date_of_birth');
    expect(classifyColumn('t', column('created_on', 'date'), dates, { now: NOW })).toBeNull();
    expect(classifyColumn('t', column('birth_place'), values(50, (r) => gen.city(r)))).toBeNull();
  });

  it('flags free text that carries contact details, not free text in general', () => {
    expect(classifyColumn('t', column('notes'), values(60, (r, i) => (i % 5 === 0 ? `call ${gen.phone(r)}` : 'ring twice')))?.category).toBe('user.content.private');
    expect(classifyColumn('t', column('notes'), values(60, () => 'Leave at the door'))).toBeNull();
    expect(containsPersonalData('write to ada.1@example.com today.')).toBe(true);
    expect(containsPersonalData('order 4111111111111112 shipped')).toBe(false);
  });

  it('skips storage kinds no detector reads and judges empty columns by name alone', () => {
    expect(classifyColumn('t', column('email_verified', 'boolean'), ['true', 'false'])).toBeNull();
    expect(classifyColumn('t', column('ssn'), [])).toMatchObject({ basis: 'name', confidence: 0.5 });
    expect(classifyColumn('t', column('something'), [])).toBeNull();
  });

  it('never returns sampled values', () => {
    const f = classifyColumn('t', column('email'), ['ada@example.com']);
    expect(JSON.stringify(f)).not.toContain('example.com');
  });
});
