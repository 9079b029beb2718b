import { GVL, TCModel, TCString } from '@iabtcf/core';

/**
 * Encodes a TCF v2 string for tests with a minimal local vendor list. Only registered CMPs may issue TC
 * strings in production; tests only need a well-formed one to decode.
 */
export function makeTcString(options: { cmpId?: number; purposes?: number[] } = {}): string {
  const ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const gvl = new GVL({
    gvlSpecificationVersion: 3,
    vendorListVersion: 100,
    tcfPolicyVersion: 5,
    lastUpdated: '2026-01-01T00:00:00Z',
    purposes: Object.fromEntries(ids.map((i) => [i, { id: i, name: `p${i}`, description: '' }])),
    specialPurposes: {},
    features: {},
    specialFeatures: {},
    stacks: {},
    dataCategories: {},
    vendors: {
      1: { id: 1, name: 'v1', purposes: [1, 2], legIntPurposes: [], flexiblePurposes: [], specialPurposes: [], features: [], specialFeatures: [], policyUrl: 'https://example.com' },
    },
  } as never);
  const model = new TCModel(gvl);
  model.cmpId = options.cmpId ?? 10;
  model.cmpVersion = 1;
  model.consentScreen = 1;
  model.consentLanguage = 'EN';
  model.publisherCountryCode = 'DE';
  model.purposeConsents.set(options.purposes ?? [1, 2, 3]);
  model.vendorConsents.set([1]);
  return TCString.encode(model);
}
