import { describe, expect, it } from 'vitest';
import { ADEQUACY_LIST_AS_OF, EEA_COUNTRIES, EU_ADEQUACY_DECISIONS, UK_ADEQUACY_REGULATIONS, adequacyOf, isEeaCountry } from '../../../src/core/index.js';

describe('adequacy list (GDPR Art. 45, UK GDPR Art. 45)', () => {
  it('is dated, and every decision has a reference and an ISO date', () => {
    expect(ADEQUACY_LIST_AS_OF).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    for (const d of [...EU_ADEQUACY_DECISIONS, ...UK_ADEQUACY_REGULATIONS]) {
      expect(d.decision.length, d.code).toBeGreaterThan(10);
      expect(d.date, d.code).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(Number.isNaN(Date.parse(d.date))).toBe(false);
      expect(d.date <= ADEQUACY_LIST_AS_OF).toBe(true);
    }
  });

  it('holds the EEA: 27 member states and Iceland, Liechtenstein, Norway', () => {
    expect(Object.keys(EEA_COUNTRIES)).toHaveLength(30);
    for (const c of ['DE', 'FR', 'IE', 'IS', 'LI', 'NO', 'GR']) expect(adequacyOf(c).status, c).toBe('eea');
    expect(adequacyOf('EL').status).toBe('eea');
    expect(adequacyOf('re').status).toBe('eea');
    expect(isEeaCountry('CH')).toBe(false);
  });

  it.each([
    ['CH', 'adequate', 'Commission Decision 2000/518/EC'],
    ['GB', 'adequate', 'Commission Implementing Decision (EU) 2021/1772'],
    ['UK', 'adequate', 'Commission Implementing Decision (EU) 2021/1772'],
    ['JP', 'partial', 'Commission Implementing Decision (EU) 2019/419'],
    ['KR', 'adequate', 'Commission Implementing Decision (EU) 2022/254'],
    ['CA', 'partial', 'Commission Decision 2002/2/EC'],
    ['US', 'partial', 'Commission Implementing Decision (EU) 2023/1795'],
    ['BR', 'adequate', 'Commission Implementing Decision (EU) 2026/179'],
    ['EPO', 'adequate', 'Commission Implementing Decision (EU) 2025/1382'],
    ['IN', 'none', undefined],
    ['GI', 'none', undefined],
    ['CN', 'none', undefined],
  ] as const)('EU: %s is %s', (country, status, decision) => {
    const r = adequacyOf(country);
    expect(r.status).toBe(status);
    expect(r.decision?.decision.startsWith(decision ?? '\u0000') ?? decision === undefined).toBe(true);
    expect(r.citation).toMatch(/^GDPR Art\. 4[45]/);
  });

  it.each([
    ['GB', 'domestic', 'UK GDPR Art. 3'],
    ['DE', 'adequate', 'Schedule 21'],
    ['GI', 'adequate', 'Schedule 21'],
    ['JP', 'partial', 'Schedule 21'],
    ['KR', 'adequate', 'SI 2022/1213'],
    ['US', 'partial', 'The Data Protection (Adequacy) (United States of America) Regulations 2023'],
    ['BR', 'none', 'UK GDPR Art. 44'],
    ['IN', 'none', 'UK GDPR Art. 44'],
  ] as const)('UK: %s is %s', (country, status, cited) => {
    const r = adequacyOf(country, 'UK');
    expect(r.status).toBe(status);
    expect(r.citation).toContain(cited);
  });

  it('states scope limits of partial findings', () => {
    expect(adequacyOf('US').note).toContain('Data Privacy Framework');
    expect(adequacyOf('CA').note).toContain('PIPEDA');
    expect(adequacyOf('US', 'UK').note).toContain('UK Extension');
    expect(adequacyOf('GB').note).toContain('2031-12-27');
  });
});
