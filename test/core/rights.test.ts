import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  JURISDICTIONS,
  JURISDICTION_CODE_PATTERN,
  REGIMES,
  REQUEST_TYPES,
  RIGHTS,
  VIRGINIA_MODEL_STATES,
  EEA_COUNTRIES,
  honoursGpc,
  isRequestType,
  mayRequest,
  needsVerification,
  regimeOf,
  rightsOf,
  type Regime,
  type RequestType,
} from '../../src/core/index.js';

describe('RIGHTS', () => {
  it('answers every request type for every regime, each available right citing its provision', () => {
    for (const regime of REGIMES) {
      const { entitlements } = RIGHTS[regime];
      expect(Object.keys(entitlements).sort()).toEqual([...REQUEST_TYPES].sort());
      for (const type of REQUEST_TYPES) {
        const e = entitlements[type];
        expect(e.type).toBe(type);
        if (e.available) {
          expect(e.citation.length).toBeGreaterThan(5);
          expect(e.verificationCitation.length).toBeGreaterThan(5);
        } else {
          expect(e.reason.length).toBeGreaterThan(10);
        }
      }
    }
  });

  it.each<[Regime, RequestType, string]>([
    ['GDPR', 'access', 'GDPR Art. 15'],
    ['GDPR', 'portability', 'GDPR Art. 20'],
    ['GDPR', 'erasure', 'GDPR Art. 17'],
    ['GDPR', 'rectification', 'GDPR Art. 16'],
    ['GDPR', 'restriction', 'GDPR Art. 18'],
    ['GDPR', 'objection', 'GDPR Art. 21'],
    ['UK_GDPR', 'access', 'UK GDPR Art. 15'],
    ['UK_GDPR', 'objection', 'UK GDPR Art. 21'],
    ['CCPA', 'access', 'Cal. Civ. Code §1798.110; §1798.115'],
    ['CCPA', 'erasure', 'Cal. Civ. Code §1798.105'],
    ['CCPA', 'rectification', 'Cal. Civ. Code §1798.106'],
    ['VCDPA', 'access', 'Va. Code Ann. §59.1-577(A)(1)'],
    ['VCDPA', 'opt_out', 'Va. Code Ann. §59.1-577(A)(5)'],
    ['LGPD', 'portability', 'LGPD Art. 18, V'],
    ['LGPD', 'rectification', 'LGPD Art. 18, III'],
    ['LGPD', 'objection', 'LGPD Art. 18 §2'],
    ['PIPEDA', 'access', 'PIPEDA Sch. 1, Principle 4.9; s. 8'],
    ['PIPEDA', 'rectification', 'PIPEDA Sch. 1, Principle 4.9.5'],
  ])('%s %s cites %s', (regime, type, citation) => {
    const e = RIGHTS[regime].entitlements[type];
    expect(e.available).toBe(true);
    expect(e.citation).toBe(citation);
  });

  it('CCPA opt-out cites §1798.120 and §1798.121 and says that GPC counts as an opt-out', () => {
    const e = RIGHTS.CCPA.entitlements.opt_out;
    expect(e.available && e.citation).toContain('§1798.120');
    expect(e.available && e.citation).toContain('§1798.121');
    expect(e.available && e.note).toContain('Global Privacy Control');
    expect(honoursGpc('US-CA')).toBe(true);
  });

  it('rightsOf lists exactly the available rights, in REQUEST_TYPES order', () => {
    expect(rightsOf('GDPR').map((r) => r.type)).toEqual(['access', 'portability', 'erasure', 'rectification', 'restriction', 'objection']);
    expect(rightsOf('CCPA').map((r) => r.type)).toEqual(['access', 'portability', 'erasure', 'rectification', 'opt_out']);
    expect(rightsOf('VCDPA').map((r) => r.type)).toEqual(['access', 'portability', 'erasure', 'rectification', 'opt_out']);
    expect(rightsOf('LGPD').map((r) => r.type)).toEqual(['access', 'portability', 'erasure', 'rectification', 'restriction', 'objection']);
    expect(rightsOf('PIPEDA').map((r) => r.type)).toEqual(['access', 'rectification', 'opt_out']);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(RIGHTS)).toBe(true);
    expect(Object.isFrozen(RIGHTS.GDPR.entitlements.access)).toBe(true);
    expect(Object.isFrozen(VIRGINIA_MODEL_STATES)).toBe(true);
  });
});

describe('regimeOf', () => {
  it.each<[string, Regime | undefined]>([
    ['EU', 'GDPR'],
    ['DE', 'GDPR'],
    ['FR', 'GDPR'],
    ['NO', 'GDPR'],
    ['IS', 'GDPR'],
    ['LI', 'GDPR'],
    ['GF', 'GDPR'],
    ['FR-75', 'GDPR'],
    ['de', 'GDPR'],
    ['UK', 'UK_GDPR'],
    ['GB', 'UK_GDPR'],
    ['GB-SCT', 'UK_GDPR'],
    ['US-CA', 'CCPA'],
    ['US-VA', 'VCDPA'],
    ['US-CO', 'VCDPA'],
    ['US-UT', 'VCDPA'],
    ['US-TX', 'VCDPA'],
    ['BR', 'LGPD'],
    ['BR-SP', 'LGPD'],
    ['CA', 'PIPEDA'],
    ['CA-ON', 'PIPEDA'],
    ['CA-QC', undefined],
    ['US', undefined],
    ['US-IA', undefined],
    ['CH', undefined],
    ['JP', undefined],
    ['', undefined],
  ])('%s → %s', (code, regime) => {
    expect(regimeOf(code)).toBe(regime);
  });

  it('maps every EEA country to GDPR', () => {
    for (const code of Object.keys(EEA_COUNTRIES)) expect(regimeOf(code)).toBe('GDPR');
  });

  it('maps every US state of the jurisdiction table to a regime, California to CCPA', () => {
    for (const code of JURISDICTIONS.keys()) {
      if (!code.startsWith('US-')) continue;
      expect(regimeOf(code)).toBe(code === 'US-CA' ? 'CCPA' : 'VCDPA');
    }
  });

  it('lists Virginia-model states with well-formed codes and only exclusions of rights Virginia grants', () => {
    const codes = VIRGINIA_MODEL_STATES.map((s) => s.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const s of VIRGINIA_MODEL_STATES) {
      expect(s.code).toMatch(JURISDICTION_CODE_PATTERN);
      for (const t of s.excludes) expect(RIGHTS.VCDPA.entitlements[t].available).toBe(true);
    }
    expect(codes).toEqual(expect.arrayContaining(['US-VA', 'US-CO', 'US-CT', 'US-UT', 'US-TX', 'US-OR']));
  });

  it('never throws and answers a regime or undefined for any string', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const r = regimeOf(s);
        expect(r === undefined || (REGIMES as readonly string[]).includes(r)).toBe(true);
      }),
    );
  });
});

describe('mayRequest', () => {
  it.each<[string, RequestType, boolean, string | undefined]>([
    ['EU', 'access', true, 'GDPR Art. 15'],
    ['DE', 'erasure', true, 'GDPR Art. 17'],
    ['UK', 'restriction', true, 'UK GDPR Art. 18'],
    ['US-CA', 'opt_out', true, 'Cal. Civ. Code §1798.120 (sale/sharing); §1798.121 (limit use of sensitive personal information)'],
    ['US-CA', 'restriction', false, 'Cal. Civ. Code §1798.121'],
    ['US-CA', 'objection', false, 'Cal. Civ. Code §1798.120'],
    ['US-VA', 'rectification', true, 'Va. Code Ann. §59.1-577(A)(2)'],
    ['US-CO', 'rectification', true, 'Colo. Rev. Stat. §6-1-1306'],
    ['US-UT', 'rectification', false, 'Utah Code §13-61-201'],
    ['US-UT', 'erasure', true, 'Utah Code §13-61-201'],
    ['US-MT', 'access', true, 'Montana Consumer Data Privacy Act'],
    ['US-VA', 'objection', false, 'Va. Code Ann. §59.1-577(A)(5)'],
    ['BR', 'restriction', true, 'LGPD Art. 18, IV'],
    ['BR', 'opt_out', false, 'LGPD Art. 18, IX; Art. 8 §5'],
    ['CA', 'access', true, 'PIPEDA Sch. 1, Principle 4.9; s. 8'],
    ['CA', 'portability', false, undefined],
    ['CA', 'erasure', false, 'PIPEDA Sch. 1, Principles 4.5.3 and 4.9.5'],
    ['EU', 'opt_out', false, 'GDPR Art. 21(2); Art. 7(3)'],
    ['JP', 'access', false, undefined],
  ])('%s %s → allowed %s, citation %s', (jurisdiction, type, allowed, citation) => {
    const r = mayRequest(jurisdiction, type);
    expect(r.allowed).toBe(allowed);
    expect(r.citation).toBe(citation);
    if (!allowed) expect(r.reason).toBeTruthy();
    else expect(r.reason).toBeUndefined();
  });

  it('points GDPR opt-outs to objection to direct marketing', () => {
    expect(mayRequest('FR', 'opt_out').reason).toContain('Art. 21(2)');
  });

  it('says why Utah refuses correction', () => {
    expect(mayRequest('US-UT', 'rectification').reason).toContain('Utah');
  });

  it('refuses an unknown request type instead of throwing', () => {
    expect(mayRequest('EU', 'delete' as RequestType)).toEqual({ allowed: false, reason: "Unknown request type 'delete'." });
    expect(isRequestType('opt_out')).toBe(true);
    expect(isRequestType('delete')).toBe(false);
  });

  it('agrees with RIGHTS for every regime and type outside state exceptions', () => {
    const sample: Record<Regime, string> = { GDPR: 'EU', UK_GDPR: 'UK', CCPA: 'US-CA', VCDPA: 'US-VA', LGPD: 'BR', PIPEDA: 'CA' };
    for (const regime of REGIMES) {
      for (const type of REQUEST_TYPES) expect(mayRequest(sample[regime], type).allowed).toBe(RIGHTS[regime].entitlements[type].available);
    }
  });
});

describe('needsVerification', () => {
  it.each<[Regime, RequestType, boolean]>([
    ['GDPR', 'access', true],
    ['GDPR', 'erasure', true],
    ['UK_GDPR', 'portability', true],
    ['CCPA', 'access', true],
    ['CCPA', 'erasure', true],
    ['CCPA', 'rectification', true],
    // Cal. Civ. Code §1798.135; 11 CCR §7026: an opt-out need not be a verifiable consumer request.
    ['CCPA', 'opt_out', false],
    ['VCDPA', 'access', true],
    ['VCDPA', 'opt_out', false],
    ['LGPD', 'access', true],
    ['PIPEDA', 'access', true],
    ['PIPEDA', 'opt_out', false],
    // Not granted: fail safe.
    ['GDPR', 'opt_out', true],
    ['CCPA', 'restriction', true],
  ])('%s %s → %s', (regime, type, expected) => {
    expect(needsVerification(regime, type)).toBe(expected);
  });

  it('cites the opt-out verification rule of the CCPA regulations', () => {
    const e = RIGHTS.CCPA.entitlements.opt_out;
    expect(e.available && e.verificationCitation).toContain('11 CCR §7026');
  });
});
