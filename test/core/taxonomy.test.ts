import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DATA_CATEGORIES,
  DATA_SUBJECTS,
  DATA_USES,
  FIDESLANG_VERSION,
  SENSITIVE_CATEGORIES,
  SENSITIVE_CATEGORY_PREFIXES,
  SPECIAL_CATEGORIES,
  SPECIAL_CATEGORY_PREFIXES,
  closestTaxonomyKeys,
  editDistance,
  isDataCategory,
  isDataSubject,
  isDataUse,
  isSensitiveCategory,
  isSpecialCategory,
  specialCategoryOf,
  type TaxonomyEntry,
} from '../../src/core/index.js';

const taxonomies: Array<[string, readonly TaxonomyEntry[]]> = [
  ['data_category', DATA_CATEGORIES],
  ['data_use', DATA_USES],
  ['data_subject', DATA_SUBJECTS],
];

describe('fideslang taxonomy data', () => {
  it('is the fideslang 3.1.4 default taxonomy: 85 categories, 56 uses, 15 subjects', () => {
    expect(FIDESLANG_VERSION).toBe('3.1.4');
    expect(DATA_CATEGORIES).toHaveLength(85);
    expect(DATA_USES).toHaveLength(56);
    expect(DATA_SUBJECTS).toHaveLength(15);
  });

  it.each(taxonomies)('%s: keys are unique and well-formed, names and descriptions non-empty', (_kind, entries) => {
    const keys = entries.map((e) => e.key);
    expect(new Set(keys).size).toBe(keys.length);
    for (const e of entries) {
      expect(e.key).toMatch(/^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$/);
      expect(e.name.trim()).not.toBe('');
      expect(e.description.trim()).not.toBe('');
    }
  });

  it.each(taxonomies)('%s: every parent exists and is the key minus its last segment', (_kind, entries) => {
    const keys = new Set(entries.map((e) => e.key));
    for (const e of entries) {
      const dot = e.key.lastIndexOf('.');
      if (dot < 0) expect(e.parent).toBeUndefined();
      else expect(e.parent).toBe(e.key.slice(0, dot));
      if (e.parent !== undefined) expect(keys.has(e.parent)).toBe(true);
    }
  });

  it.each(taxonomies)('%s: the hierarchy is a forest (walking parents always reaches a root)', (_kind, entries) => {
    const byKey = new Map(entries.map((e) => [e.key, e]));
    for (const e of entries) {
      let node: TaxonomyEntry | undefined = e;
      let steps = 0;
      while (node?.parent !== undefined && steps++ < 20) node = byKey.get(node.parent);
      expect(node).toBeDefined();
      expect(node!.parent).toBeUndefined();
    }
  });

  it('deprecated entries point to an existing replacement', () => {
    for (const [, entries] of taxonomies) {
      const keys = new Set(entries.map((e) => e.key));
      for (const e of entries.filter((x) => x.deprecatedIn !== undefined)) expect(keys.has(e.replacedBy!)).toBe(true);
    }
    expect(DATA_USES.find((u) => u.key === 'personalize.profiling')?.replacedBy).toBe('personalize.content.profiling');
  });

  it('contains the keys the rest of Custodian relies on, with the upstream names', () => {
    for (const k of [
      'user',
      'user.contact.email',
      'user.contact.phone_number',
      'user.contact.address.street',
      'user.device.ip_address',
      'user.device.cookie_id',
      'user.financial.bank_account',
      'user.financial.credit_card',
      'user.health_and_medical',
      'user.biometric',
      'user.name.first',
      'user.unique_id',
      'user.criminal_history',
      'system.operations',
    ])
      expect(isDataCategory(k), k).toBe(true);
    for (const k of ['marketing.advertising', 'marketing.communications.email', 'essential.service', 'essential.legal_obligation', 'analytics.reporting', 'functional.storage', 'train_ai_system'])
      expect(isDataUse(k), k).toBe(true);
    for (const k of ['customer', 'employee', 'job_applicant', 'prospect', 'patient', 'anonymous_user']) expect(isDataSubject(k), k).toBe(true);
    expect(DATA_CATEGORIES.find((c) => c.key === 'user.contact.email')).toEqual({
      key: 'user.contact.email',
      name: 'User Contact Email',
      description: "User's contact email address.",
      parent: 'user.contact',
    });
  });

  it('matches keys exactly, in their own taxonomy only', () => {
    expect(isDataCategory('user.contact.email.work')).toBe(false);
    expect(isDataCategory('User.contact.email')).toBe(false);
    expect(isDataCategory('user.contact.')).toBe(false);
    expect(isDataCategory('customer')).toBe(false);
    expect(isDataUse('user.contact.email')).toBe(false);
    expect(isDataSubject('marketing')).toBe(false);
    expect(isDataSubject('')).toBe(false);
  });
});

describe('special and sensitive categories', () => {
  it('covers every Art. 9(1) ground and Art. 10, each citing its article', () => {
    const grounds = new Set(SPECIAL_CATEGORIES.map((c) => c.ground));
    for (const g of [
      'racial or ethnic origin',
      'political opinions',
      'religious or philosophical beliefs',
      'trade union membership',
      'genetic data',
      'biometric data for the purpose of uniquely identifying a natural person',
      'data concerning health',
      "data concerning a natural person's sex life or sexual orientation",
      'personal data relating to criminal convictions and offences',
    ])
      expect(grounds.has(g), g).toBe(true);
    for (const c of SPECIAL_CATEGORIES) expect(c.article).toMatch(/^GDPR Art\. (9\(1\)|10)/);
  });

  it('lists only real keys: shipped ones, or ones marked as from a later fideslang version', () => {
    for (const c of [...SPECIAL_CATEGORIES, ...SENSITIVE_CATEGORIES]) {
      if (c.fideslangVersion === undefined) expect(isDataCategory(c.key), c.key).toBe(true);
      else expect(isDataCategory(c.key), c.key).toBe(false);
    }
    expect(SPECIAL_CATEGORY_PREFIXES).toEqual(SPECIAL_CATEGORIES.map((c) => c.key));
    expect(SENSITIVE_CATEGORY_PREFIXES).toEqual(SENSITIVE_CATEGORIES.map((c) => c.key));
  });

  it('classifies a key equal to or under a prefix, and nothing else', () => {
    expect(isSpecialCategory('user.health_and_medical')).toBe(true);
    expect(isSpecialCategory('user.health_and_medical.record_id')).toBe(true);
    expect(isSpecialCategory('user.biometric.fingerprint')).toBe(true);
    expect(isSpecialCategory('user.demographic.race_ethnicity')).toBe(true);
    expect(isSpecialCategory('user.criminal_history')).toBe(true);
    expect(specialCategoryOf('user.criminal_history')?.article).toBe('GDPR Art. 10');
    expect(isSpecialCategory('user.demographic')).toBe(false);
    expect(isSpecialCategory('user.demographic.gender')).toBe(false);
    expect(isSpecialCategory('user.health_and_medical_x')).toBe(false);
    expect(isSpecialCategory('user.contact.email')).toBe(false);

    expect(isSensitiveCategory('user.financial.bank_account')).toBe(true);
    expect(isSensitiveCategory('user.authorization.password')).toBe(true);
    expect(isSensitiveCategory('user.government_id.passport_number')).toBe(true);
    expect(isSensitiveCategory('user.location.precise')).toBe(true);
    expect(isSensitiveCategory('user.childrens')).toBe(true);
    expect(isSensitiveCategory('user.location.imprecise')).toBe(false);
    expect(isSensitiveCategory('user.contact.email')).toBe(false);
  });

  it('a key is special iff some prefix is an ancestor-or-self (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...DATA_CATEGORIES.map((c) => c.key)), fc.array(fc.constantFrom('a', 'b', 'x_y'), { maxLength: 2 }), (base, extra) => {
        const key = [base, ...extra].join('.');
        const ancestors = key.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'));
        expect(isSpecialCategory(key)).toBe(ancestors.some((a) => SPECIAL_CATEGORY_PREFIXES.includes(a)));
      }),
    );
  });
});

describe('closestTaxonomyKeys', () => {
  it('suggests the intended key for typos', () => {
    expect(closestTaxonomyKeys('user.contact.emial', 'data_category')[0]).toBe('user.contact.email');
    expect(closestTaxonomyKeys('user.contact.phonenumber', 'data_category')[0]).toBe('user.contact.phone_number');
    expect(closestTaxonomyKeys('user.email', 'data_category')).toContain('user.contact.email');
    expect(closestTaxonomyKeys('user.device.ip', 'data_category')[0]).toBe('user.device.ip_address');
    expect(closestTaxonomyKeys('user.health', 'data_category')).toContain('user.health_and_medical');
    expect(closestTaxonomyKeys('marketing.advertisng', 'data_use')[0]).toBe('marketing.advertising');
    expect(closestTaxonomyKeys('custmer', 'data_subject')).toEqual(['customer']);
  });

  it('returns nothing for unrelated input, at most n keys, and never the key itself', () => {
    expect(closestTaxonomyKeys('xyz', 'data_category')).toEqual([]);
    expect(closestTaxonomyKeys('completely.unrelated.thing', 'data_use')).toEqual([]);
    expect(closestTaxonomyKeys('user.contact.emial', 'data_category', 1)).toEqual(['user.contact.email']);
    expect(closestTaxonomyKeys('user.contact.emial', 'data_category', 0)).toEqual([]);
    expect(closestTaxonomyKeys('user.contact.email', 'data_category')).not.toContain('user.contact.email');
  });

  it('finds any key of its kind after one edit (property)', () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz_';
    fc.assert(
      fc.property(fc.constantFrom(...DATA_CATEGORIES.filter((c) => c.key.length >= 8).map((c) => c.key)), fc.nat(), fc.nat(), (key, at, ch) => {
        const i = at % key.length;
        const typo = key.slice(0, i) + alphabet[ch % alphabet.length]! + key.slice(i + 1);
        fc.pre(typo !== key && !isDataCategory(typo));
        expect(closestTaxonomyKeys(typo, 'data_category', 10)).toContain(key);
      }),
    );
  });
});

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and adjacent transpositions', () => {
    expect(editDistance('email', 'email')).toBe(0);
    expect(editDistance('email', 'emial')).toBe(1);
    expect(editDistance('email', 'mail')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('is symmetric and bounded by the longer length (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
        const d = editDistance(a, b);
        expect(editDistance(b, a)).toBe(d);
        expect(d).toBeLessThanOrEqual(Math.max(a.length, b.length));
        expect(d === 0).toBe(a === b);
      }),
    );
  });
});
