import { describe, expect, it } from 'vitest';
import { BREACH_DEADLINE_RULES, BREACH_RULES_CHECKED_ON, breachDeadlines, type BreachDeadlineInput } from '../../src/core/index.js';

// Monday 2 March 2026, 09:00 UTC.
const detectedAt = '2026-03-02T09:00:00.000Z';
const base: BreachDeadlineInput = { jurisdictions: [], detectedAt, outcome: 'authority', nis2: false, encrypted: false, keysCompromised: false, affectedCount: 1000 };

describe('breach deadlines', () => {
  const table: Array<[string, Partial<BreachDeadlineInput>, string, string | null, string]> = [
    ['GDPR authority: 72 h from awareness', { jurisdictions: ['EU'] }, 'EU.gdpr.authority', '2026-03-05T09:00:00.000Z', 'GDPR Art. 33(1)'],
    ['GDPR individuals: without undue delay', { jurisdictions: ['EU'], outcome: 'authority_and_individuals' }, 'EU.gdpr.individuals', null, 'GDPR Art. 34(1)'],
    ['UK GDPR authority: 72 h', { jurisdictions: ['UK'] }, 'UK.ukgdpr.authority', '2026-03-05T09:00:00.000Z', 'UK GDPR Art. 33(1)'],
    ['NIS2 early warning: 24 h', { jurisdictions: ['EU'], nis2: true }, 'EU.nis2.early_warning', '2026-03-03T09:00:00.000Z', 'NIS2) Art. 23(4)(a)'],
    ['NIS2 incident notification: 72 h', { jurisdictions: ['EU'], nis2: true }, 'EU.nis2.notification', '2026-03-05T09:00:00.000Z', 'Art. 23(4)(b)'],
    ['LGPD: 3 business days (Mon → Thu)', { jurisdictions: ['BR'] }, 'BR.lgpd.authority', '2026-03-05T09:00:00.000Z', 'Resolution CD/ANPD No. 15/2024'],
    ['Texas individuals: 60 days', { jurisdictions: ['US-TX'] }, 'US-TX.individuals', '2026-05-01T09:00:00.000Z', '§521.053(b)'],
    ['Texas Attorney General: 30 days (≥ 250)', { jurisdictions: ['US-TX'] }, 'US-TX.authority', '2026-04-01T09:00:00.000Z', '§521.053(i)'],
    ['Colorado individuals: 30 days', { jurisdictions: ['US-CO'] }, 'US-CO.individuals', '2026-04-01T09:00:00.000Z', '§6-1-716(2)(a)'],
    ['Florida individuals: 30 days', { jurisdictions: ['US-FL'] }, 'US-FL.individuals', '2026-04-01T09:00:00.000Z', '§501.171(4)(a)'],
    ['California individuals: 30 days', { jurisdictions: ['US-CA'] }, 'US-CA.individuals', '2026-04-01T09:00:00.000Z', '§1798.82(a)'],
    ['California Attorney General: 15 days after the residents, at most 30 + 15 days (> 500)', { jurisdictions: ['US-CA'], affectedCount: 501 }, 'US-CA.authority', '2026-04-16T09:00:00.000Z', '§1798.82(f)'],
    ['New York authorities: with the notice to residents', { jurisdictions: ['US-NY'] }, 'US-NY.authority', null, '§899-aa(8)(a)'],
    ['New York individuals: 30 days', { jurisdictions: ['US-NY'] }, 'US-NY.individuals', '2026-04-01T09:00:00.000Z', '§899-aa(2)'],
  ];
  it.each(table)('%s', (_name, input, ruleId, dueAt, citation) => {
    const d = breachDeadlines({ ...base, ...input }).find((x) => x.ruleId === ruleId);
    expect(d).toBeDefined();
    expect(d!.dueAt).toBe(dueAt);
    expect(d!.citation).toContain(citation);
  });

  it('counts duties that follow an earlier notice from the recorded notice, and from its deadline until one is recorded', () => {
    const due = (input: Partial<BreachDeadlineInput>, ruleId: string) => breachDeadlines({ ...base, ...input }).find((x) => x.ruleId === ruleId)!;
    // California: the Attorney General's copy is due 15 days after the residents were told (Cal. Civ. Code §1798.82(f)).
    expect(due({ jurisdictions: ['US-CA'], affectedCount: 501 }, 'US-CA.authority')).toMatchObject({ dueAt: '2026-04-16T09:00:00.000Z', countedFrom: 'notification_due' });
    const told = { audience: 'individuals', stage: 'notification', jurisdiction: 'US-CA', notifiedAt: '2026-03-04T15:30:00.000Z' };
    expect(due({ jurisdictions: ['US-CA'], affectedCount: 501, notifications: [told] }, 'US-CA.authority')).toMatchObject({ dueAt: '2026-03-19T15:30:00.000Z', countedFrom: 'notification' });
    // A notice to the residents of another state, or to the authority, does not start it; one to every jurisdiction (null) does.
    expect(due({ jurisdictions: ['US-CA'], affectedCount: 501, notifications: [{ ...told, jurisdiction: 'US-TX' }, { ...told, audience: 'authority' }] }, 'US-CA.authority').countedFrom).toBe('notification_due');
    expect(due({ jurisdictions: ['US-CA'], affectedCount: 501, notifications: [{ ...told, jurisdiction: null }] }, 'US-CA.authority').dueAt).toBe('2026-03-19T15:30:00.000Z');
    // NIS2: the final report is due one month after the incident notification was submitted (Art. 23(4)(d)).
    expect(due({ jurisdictions: ['EU'], nis2: true }, 'EU.nis2.final_report')).toMatchObject({ dueAt: '2026-04-05T09:00:00.000Z', countedFrom: 'notification_due' });
    const submitted = { audience: 'csirt', stage: 'notification', jurisdiction: 'EU', notifiedAt: '2026-03-03T12:00:00.000Z' };
    expect(due({ jurisdictions: ['EU'], nis2: true, notifications: [submitted, { ...submitted, notifiedAt: '2026-03-04T12:00:00.000Z' }] }, 'EU.nis2.final_report')).toMatchObject({ dueAt: '2026-04-03T12:00:00.000Z', countedFrom: 'notification' });
    // Duties counted from awareness say so.
    expect(due({ jurisdictions: ['EU'] }, 'EU.gdpr.authority').countedFrom).toBe('awareness');
  });

  it('counts LGPD business days over a weekend', () => {
    // Thursday 5 March → Tuesday 10 March.
    const d = breachDeadlines({ ...base, jurisdictions: ['BR'], detectedAt: '2026-03-05T09:00:00.000Z' }).find((x) => x.ruleId === 'BR.lgpd.authority');
    expect(d!.dueAt).toBe('2026-03-10T09:00:00.000Z');
  });

  it('applies no GDPR duty when the assessment says none, and no individuals duty without high risk', () => {
    expect(breachDeadlines({ ...base, jurisdictions: ['EU'], outcome: 'none' })).toEqual([]);
    expect(breachDeadlines({ ...base, jurisdictions: ['EU'] }).map((d) => d.ruleId)).toEqual(['EU.gdpr.authority']);
  });

  it('applies NIS2 windows only to incidents flagged NIS2', () => {
    expect(breachDeadlines({ ...base, jurisdictions: ['EU'], outcome: 'none', nis2: true }).map((d) => d.ruleId)).toEqual(['EU.nis2.early_warning', 'EU.nis2.notification', 'EU.nis2.final_report']);
  });

  it('keeps the US encryption safe harbour and the resident thresholds', () => {
    expect(breachDeadlines({ ...base, jurisdictions: ['US-TX'], encrypted: true })).toEqual([]);
    expect(breachDeadlines({ ...base, jurisdictions: ['US-TX'], encrypted: true, keysCompromised: true })).toHaveLength(2);
    expect(breachDeadlines({ ...base, jurisdictions: ['US-TX'], affectedCount: 249 }).map((d) => d.ruleId)).toEqual(['US-TX.individuals']);
    expect(breachDeadlines({ ...base, jurisdictions: ['US-CA'], affectedCount: 500 }).map((d) => d.ruleId)).toEqual(['US-CA.individuals']);
  });

  it('orders by due time, open-ended duties last', () => {
    const all = breachDeadlines({ ...base, jurisdictions: ['EU', 'US-TX'], outcome: 'authority_and_individuals', nis2: true });
    const due = all.map((d) => d.dueAt);
    expect(due.at(-1)).toBeNull();
    const fixed = due.filter((d): d is string => d !== null);
    expect([...fixed].sort()).toEqual(fixed);
  });

  it('cites a provision for every rule', () => {
    for (const r of BREACH_DEADLINE_RULES) expect(r.citation.length).toBeGreaterThan(5);
  });

  it('says how each rule was checked, with its sources', () => {
    expect(BREACH_RULES_CHECKED_ON).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(new Set(BREACH_DEADLINE_RULES.map((r) => r.id)).size).toBe(BREACH_DEADLINE_RULES.length);
    for (const r of BREACH_DEADLINE_RULES) {
      expect(['law_text', 'secondary', 'unverified']).toContain(r.verification);
      // A checked rule names where; an unverified one names nothing it could be mistaken for.
      if (r.verification === 'unverified') expect(r.sources).toEqual([]);
      else expect(r.sources.length).toBeGreaterThan(0);
      for (const url of r.sources) expect(url).toMatch(/^https?:\/\/[^\s]+$/);
      // A citation with a part no source confirmed is never labelled as checked against the law's text.
      if (/unverified/.test(r.citation)) expect(r.verification).not.toBe('law_text');
    }
  });

  it('keeps the verified wording of the time limits', () => {
    const rule = (id: string) => BREACH_DEADLINE_RULES.find((r) => r.id === id)!;
    expect(rule('EU.gdpr.authority').standard).toContain('not later than 72 hours after having become aware');
    expect(rule('EU.nis2.final_report').standard).toContain('one month after the submission of the incident notification');
    expect(rule('US-TX.individuals').standard).toContain('60th day after the date on which the person determines that the breach occurred');
    expect(rule('US-TX.authority').citation).toContain('SB 768');
    expect(rule('US-NY.individuals').standard).toContain('within thirty days after the breach has been discovered');
    expect(rule('US-NY.authority').standard).toContain('Department of Financial Services');
    expect(rule('US-CA.individuals').citation).toContain('SB 446');
  });
});
