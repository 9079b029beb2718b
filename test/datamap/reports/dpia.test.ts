import { describe, expect, it } from 'vitest';
import { manifestSchema, type ManifestInput } from '../../../src/datamap/manifest.js';
import { DataMap } from '../../../src/datamap/model.js';
import { DPIA_CRITERIA, dpiaToText, screenDpia, type DpiaCriterion } from '../../../src/datamap/reports/index.js';
import { webShopMap } from '../../fixtures/datamap/web-shop.js';

type PurposeIn = NonNullable<ManifestInput['purposes']>[number];
type SystemIn = NonNullable<ManifestInput['systems']>[number];

/** A manifest with one purpose `p` and one system per entry of `systems`, each with one collection serving `p`. */
function onePurpose(purpose: Partial<PurposeIn>, systems: Array<{ categories: string[]; subjects?: string[] }> = []) {
  const sys: SystemIn[] = systems.map((s, i) => ({
    key: `sys${i}`,
    name: `System ${i}`,
    owner: 'Team',
    residency: { country: 'DE' },
    datasets: [{ key: `ds${i}`, collections: [{ name: 'rows', purposes: ['p'], dataSubjects: s.subjects ?? ['customer'], fields: s.categories.map((c, j) => ({ name: `f${j}`, dataCategories: [c] })) }] }],
  }));
  return new DataMap(manifestSchema.parse({ version: 1, organization: { name: 'Org' }, purposes: [{ key: 'p', title: 'P', ...purpose }], systems: sys }));
}

function met(map: DataMap): DpiaCriterion[] {
  return screenDpia(map).screenings[0]!.criteria.filter((c) => c.met).map((c) => c.key);
}

describe('DPIA screening (WP248 rev.01)', () => {
  const cases: Array<{ name: string; map: DataMap; criteria: DpiaCriterion[]; conclusion: 'required' | 'recommended' | 'not_required' }> = [
    { name: 'contact data for a contract', map: onePurpose({ dataUses: ['essential.service'] }, [{ categories: ['user.contact.email'] }]), criteria: [], conclusion: 'not_required' },
    { name: 'health data (special category)', map: onePurpose({}, [{ categories: ['user.health_and_medical'] }]), criteria: ['sensitive_data'], conclusion: 'recommended' },
    { name: 'financial data (sensitive)', map: onePurpose({}, [{ categories: ['user.financial.bank_account'] }]), criteria: ['sensitive_data'], conclusion: 'recommended' },
    { name: 'a declared special-category condition alone', map: onePurpose({ specialCategoryCondition: 'explicit_consent' }), criteria: ['sensitive_data'], conclusion: 'recommended' },
    { name: 'employees', map: onePurpose({}, [{ categories: ['user.name'], subjects: ['employee'] }]), criteria: ['vulnerable_subjects'], conclusion: 'recommended' },
    { name: "patients' health data", map: onePurpose({ dataSubjects: ['patient'] }, [{ categories: ['user.health_and_medical.record_id'] }]), criteria: ['sensitive_data', 'vulnerable_subjects'], conclusion: 'required' },
    { name: "children's data", map: onePurpose({}, [{ categories: ['user.childrens'] }]), criteria: ['sensitive_data', 'vulnerable_subjects'], conclusion: 'required' },
    { name: 'profiling for ads with cookies', map: onePurpose({ key: 'p', dataUses: ['marketing.advertising.profiling'] }, [{ categories: ['user.device.cookie_id'] }]), criteria: ['evaluation_scoring', 'systematic_monitoring'], conclusion: 'required' },
    { name: 'contextual ads with cookies', map: onePurpose({ dataUses: ['marketing.advertising.first_party.contextual'] }, [{ categories: ['user.device.cookie_id'] }]), criteria: [], conclusion: 'not_required' },
    { name: 'analytics with device data', map: onePurpose({ dataUses: ['analytics.reporting'] }, [{ categories: ['user.device.ip_address'] }]), criteria: ['systematic_monitoring'], conclusion: 'recommended' },
    { name: 'analytics without tracking data', map: onePurpose({ dataUses: ['analytics.reporting'] }, [{ categories: ['user.contact.email'] }]), criteria: [], conclusion: 'not_required' },
    { name: 'employee location tracking', map: onePurpose({}, [{ categories: ['user.location.imprecise'], subjects: ['employee'] }]), criteria: ['systematic_monitoring', 'vulnerable_subjects'], conclusion: 'required' },
    { name: 'precise location', map: onePurpose({}, [{ categories: ['user.location.precise'] }]), criteria: ['systematic_monitoring', 'sensitive_data'], conclusion: 'required' },
    { name: 'fraud screening', map: onePurpose({ dataUses: ['essential.fraud_detection'] }, [{ categories: ['user.contact.email'] }]), criteria: ['evaluation_scoring'], conclusion: 'recommended' },
    { name: 'two systems combined', map: onePurpose({}, [{ categories: ['user.contact.email'] }, { categories: ['user.name'] }]), criteria: ['matching_combining'], conclusion: 'recommended' },
    { name: 'AI training', map: onePurpose({ dataUses: ['train_ai_system'] }, [{ categories: ['user.content.public'] }]), criteria: ['innovative_technology'], conclusion: 'recommended' },
    { name: 'fingerprint access control', map: onePurpose({}, [{ categories: ['user.biometric.fingerprint'] }]), criteria: ['sensitive_data', 'innovative_technology'], conclusion: 'required' },
    { name: 'declared large scale + automated decisions', map: onePurpose({ dpia: { criteria: ['large_scale', 'automated-decision-making'] } }), criteria: ['automated_decision_making', 'large_scale'], conclusion: 'required' },
    { name: 'declared by number, once with a derived one', map: onePurpose({ dpia: { criteria: ['9', 'sensitive_data'] } }, [{ categories: ['user.health_and_medical'] }]), criteria: ['sensitive_data', 'preventing_rights'], conclusion: 'required' },
    { name: 'the purpose key is the data use', map: onePurpose({ key: 'personalize.profiling' }), criteria: ['evaluation_scoring'], conclusion: 'recommended' },
  ];

  it.each(cases)('$name → $conclusion', ({ map, criteria, conclusion }) => {
    const s = screenDpia(map).screenings[0]!;
    expect(met(map)).toEqual(DPIA_CRITERIA.filter((c) => criteria.includes(c)));
    expect(s.metCount).toBe(criteria.length);
    expect(s.conclusion).toBe(conclusion);
    expect(s.conclusionText).toBe({ required: 'DPIA required', recommended: 'DPIA recommended', not_required: 'DPIA not required' }[conclusion]);
  });

  it('reads the data use from a purpose key that is a fideslang data use', () => {
    // With tracking data in a collection inheriting the purpose from its system, it is also monitoring.
    const map = new DataMap(
      manifestSchema.parse({
        version: 1,
        organization: { name: 'Org' },
        purposes: [{ key: 'personalize.profiling', title: 'Profiles' }],
        systems: [{ key: 's', name: 'S', owner: 'T', purposes: ['personalize.profiling'], datasets: [{ key: 'd', collections: [{ name: 'c', fields: [{ name: 'cookie', dataCategories: ['user.device.cookie_id'] }] }] }] }],
      }),
    );
    expect(met(map)).toEqual(['evaluation_scoring', 'systematic_monitoring']);
  });

  it('gives each criterion its reasons with manifest paths, and notes the DPIA reference', () => {
    const report = screenDpia(webShopMap());
    const hr = report.screenings.find((s) => s.purpose === 'employment')!;
    expect(hr.conclusion).toBe('required');
    expect(hr.dpiaReference).toBe('DPIA-HR-2025-01 (wiki/privacy/dpia-hr)');
    expect(hr.notes).toContain('A DPIA is declared: DPIA-HR-2025-01 (wiki/privacy/dpia-hr).');
    const sensitive = hr.criteria.find((c) => c.key === 'sensitive_data')!;
    expect(sensitive.reasons[0]!.sources).toEqual(['systems[hr].datasets[hr_db].collections[sick_leave].fields[diagnosis_note]']);
    expect(sensitive.reasons[0]!.text).toContain('data concerning health (GDPR Art. 9(1), Art. 4(15))');
    const personalize = report.screenings.find((s) => s.purpose === 'personalize')!;
    expect(personalize.conclusion).toBe('required');
    expect(personalize.notes.join(' ')).toContain('No DPIA reference is declared');
  });

  it('flags unknown declared criteria instead of counting them', () => {
    const s = screenDpia(onePurpose({ dpia: { criteria: ['scary'] } })).screenings[0]!;
    expect(s.metCount).toBe(0);
    expect(s.notes[0]).toMatch(/^Unknown criterion "scary"/);
  });

  it('renders text with the conclusion of every purpose', () => {
    const text = dpiaToText(screenDpia(webShopMap()));
    expect(text).toContain('employment — Human resources: DPIA required (2 of 9 criteria)');
    expect(text).toContain('marketing.communications.email — Newsletter: DPIA not required (0 of 9 criteria)');
  });
});
