import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assessRisk, type RiskInput } from '../../src/breach/index.js';
import { DATA_CATEGORIES, outcomeRank, SPECIAL_CATEGORIES, type BreachOutcome } from '../../src/core/index.js';

const base: RiskInput = { dataCategories: [], affectedCount: 10, encrypted: false, keysCompromised: false };

describe('assessRisk', () => {
  const cases: Array<[string, Partial<RiskInput>, BreachOutcome, string[]]> = [
    ['no categories', {}, 'none', ['no_personal_data']],
    ['only system data', { dataCategories: ['system.operations'] }, 'none', ['no_personal_data']],
    ['nobody affected', { dataCategories: ['user.contact.email'], affectedCount: 0 }, 'none', ['no_personal_data']],
    ['e-mail addresses only (identifiable, small)', { dataCategories: ['user.contact.email'] }, 'authority', ['identifiable', 'risk']],
    ['device ids only', { dataCategories: ['user.device.ip_address'] }, 'authority', ['risk']],
    ['e-mail addresses of 150,000 people', { dataCategories: ['user.contact.email'], affectedCount: 150_000 }, 'authority_and_individuals', ['volume', 'identifiable', 'high_risk']],
    ['health data with names', { dataCategories: ['user.health_and_medical', 'user.name'] }, 'authority_and_individuals', ['special_category', 'high_risk']],
    ['health data, pseudonymous', { dataCategories: ['user.health_and_medical'] }, 'authority_and_individuals', ['special_category']],
    ['criminal records (Art. 10)', { dataCategories: ['user.criminal_history'] }, 'authority_and_individuals', ['special_category']],
    ['card numbers with names', { dataCategories: ['user.financial', 'user.name'] }, 'authority_and_individuals', ['sensitive_category']],
    ['passwords, no identifiers', { dataCategories: ['user.authorization.credentials'] }, 'authority_and_individuals', ['sensitive_category', 'identifiable']],
    ['precise location alone', { dataCategories: ['user.location.precise'] }, 'authority', ['sensitive_category']],
    ['health data encrypted, key safe (Art. 34(3)(a))', { dataCategories: ['user.health_and_medical', 'user.name'], encrypted: true }, 'none', ['encrypted']],
    ['health data encrypted, key stolen', { dataCategories: ['user.health_and_medical', 'user.name'], encrypted: true, keysCompromised: true }, 'authority_and_individuals', ['keys_compromised']],
    ['unknown count', { dataCategories: ['user.contact.email'], affectedCount: null }, 'authority', ['risk']],
  ];
  it.each(cases)('%s', (_name, input, outcome, codes) => {
    const a = assessRisk({ ...base, ...input });
    expect(a.outcome).toBe(outcome);
    for (const c of codes) expect(a.reasons.map((r) => r.code)).toContain(c);
    for (const r of a.reasons) expect(r.citation).toMatch(/GDPR Art\.|EDPB Guidelines/);
  });

  it('cites Art. 33(1) for the authority and Art. 34(1) for individuals', () => {
    const a = assessRisk({ ...base, dataCategories: ['user.health_and_medical', 'user.name'] });
    expect(a.reasons.find((r) => r.code === 'risk')?.citation).toContain('GDPR Art. 33(1)');
    expect(a.reasons.find((r) => r.code === 'high_risk')?.citation).toContain('GDPR Art. 34(1)');
    expect(a.reasons.find((r) => r.code === 'high_risk')?.citation).toContain('EDPB Guidelines 9/2022');
  });

  const category = fc.constantFrom(...DATA_CATEGORIES.map((c) => c.key));
  const input = fc.record({
    dataCategories: fc.array(category, { maxLength: 6 }),
    affectedCount: fc.option(fc.nat({ max: 5_000_000 }), { nil: null }),
    encrypted: fc.boolean(),
    keysCompromised: fc.boolean(),
  });

  it('never lowers the outcome when a special category is added or the volume rises (property)', () => {
    fc.assert(
      fc.property(input, fc.constantFrom(...SPECIAL_CATEGORIES.filter((s) => s.fideslangVersion === undefined).map((s) => s.key)), fc.nat({ max: 5_000_000 }), (i, special, more) => {
        const before = outcomeRank(assessRisk(i).outcome);
        expect(outcomeRank(assessRisk({ ...i, dataCategories: [...i.dataCategories, special] }).outcome)).toBeGreaterThanOrEqual(before);
        // From an unknown count, a rise is to at least one person (0 people is the "nobody affected" case, compared with 1 below).
        const raised = i.affectedCount === null ? more + 1 : i.affectedCount + more;
        expect(outcomeRank(assessRisk({ ...i, affectedCount: raised }).outcome)).toBeGreaterThanOrEqual(i.affectedCount === null ? outcomeRank(assessRisk({ ...i, affectedCount: 1 }).outcome) : before);
      }),
      { numRuns: 500 },
    );
  });

  it('never lowers the outcome when any category is added (property)', () => {
    fc.assert(
      fc.property(input, category, (i, extra) => {
        expect(outcomeRank(assessRisk({ ...i, dataCategories: [...i.dataCategories, extra] }).outcome)).toBeGreaterThanOrEqual(outcomeRank(assessRisk(i).outcome));
      }),
      { numRuns: 500 },
    );
  });

  it('never requires notifying individuals when the data was encrypted and the key is safe (property)', () => {
    fc.assert(
      fc.property(input, (i) => {
        expect(assessRisk({ ...i, encrypted: true, keysCompromised: false }).outcome).not.toBe('authority_and_individuals');
      }),
      { numRuns: 500 },
    );
  });
});
