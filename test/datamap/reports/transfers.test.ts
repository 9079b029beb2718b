import { describe, expect, it } from 'vitest';
import { manifestSchema } from '../../../src/datamap/manifest.js';
import { DataMap } from '../../../src/datamap/model.js';
import { assessTransfers, transfersToText, type TransferVerdict } from '../../../src/datamap/reports/index.js';
import type { TransferMechanism } from '../../../src/core/index.js';
import { webShopMap } from '../../fixtures/datamap/web-shop.js';

/** One system in DE with one declared transfer (or a recipient without a transfer when `mechanism` is null). */
function mapWith(country: string, mechanism: TransferMechanism | undefined | null, residency = 'DE') {
  return new DataMap(
    manifestSchema.parse({
      version: 1,
      organization: { name: 'Org' },
      systems: [
        {
          key: 's',
          name: 'S',
          owner: 'T',
          residency: { country: residency },
          recipients: [{ name: 'Vendor', country }],
          transfers: mechanism === null ? [] : [{ country, recipient: 'Vendor', ...(mechanism === undefined ? {} : { mechanism }) }],
        },
      ],
    }),
  );
}

describe('transfer assessment', () => {
  const table: Array<[string, TransferMechanism | undefined | null, TransferVerdict, 'EU' | 'UK']> = [
    ['US', 'dpf', 'ok', 'EU'],
    ['US', 'dpf', 'ok', 'UK'],
    ['CA', 'dpf', 'mechanism_inconsistent', 'EU'],
    ['IN', 'dpf', 'mechanism_inconsistent', 'EU'],
    ['GB', 'dpf', 'mechanism_inconsistent', 'EU'],
    ['IN', 'adequacy', 'mechanism_inconsistent', 'EU'],
    ['US', 'adequacy', 'mechanism_inconsistent', 'EU'],
    ['JP', 'adequacy', 'ok', 'EU'],
    ['BR', 'adequacy', 'ok', 'EU'],
    ['BR', 'adequacy', 'mechanism_inconsistent', 'UK'],
    ['KR', 'adequacy', 'ok', 'UK'],
    ['IN', 'scc', 'ok', 'EU'],
    ['IN', 'derogation_consent', 'ok', 'EU'],
    ['IN', undefined, 'missing_mechanism', 'EU'],
    ['IN', null, 'missing_mechanism', 'EU'],
    ['US', undefined, 'missing_mechanism', 'EU'],
    ['US', null, 'missing_mechanism', 'EU'],
    ['CH', null, 'ok', 'EU'],
    ['FR', 'scc', 'not_a_transfer', 'EU'],
    ['FR', 'scc', 'ok', 'UK'],
    ['GB', undefined, 'not_a_transfer', 'UK'],
  ];

  it.each(table)('to %s with %s → %s (%s regime)', (country, mechanism, verdict, regime) => {
    // The system sits at the exporter's home, so only the flow to `country` is assessed.
    const a = assessTransfers(mapWith(country, mechanism, regime === 'EU' ? 'DE' : 'GB'), { regime });
    expect(a.rows).toHaveLength(1);
    const row = a.rows[0]!;
    expect(row.verdict).toBe(verdict);
    expect(row.kind).toBe(mechanism === null ? 'recipient' : 'transfer');
    expect(row.citations.length).toBeGreaterThan(0);
    expect(row.reasons.length).toBeGreaterThan(0);
  });

  it('does not list recipients or residencies inside the EEA', () => {
    const a = assessTransfers(mapWith('DE', null));
    expect(a.rows).toEqual([]);
    expect(a.summary).toEqual({ ok: 0, missing_mechanism: 0, mechanism_inconsistent: 0, not_a_transfer: 0 });
  });

  it('flags a system stored outside the EEA without a transfer, and covers it with one', () => {
    const bare = assessTransfers(mapWith('DE', null, 'IN'));
    expect(bare.rows.map((r) => [r.kind, r.country, r.verdict])).toEqual([['residency', 'IN', 'missing_mechanism']]);
    expect(bare.rows[0]!.sources).toEqual(['systems[s].residency']);
  });

  it('assesses the web shop: missing mechanism and DPF outside the US flagged, EEA not', () => {
    const a = assessTransfers(webShopMap());
    const flagged = a.rows.filter((r) => r.verdict === 'missing_mechanism' || r.verdict === 'mechanism_inconsistent');
    expect(flagged.map((r) => `${r.system}→${r.country} ${r.verdict}`)).toEqual(['hr→IN missing_mechanism', 'support→CA mechanism_inconsistent']);
    expect(a.rows.some((r) => ['DE', 'IE'].includes(r.country))).toBe(false);
    const dpf = a.rows.find((r) => r.system === 'analytics')!;
    expect(dpf).toMatchObject({ kind: 'transfer', country: 'US', mechanism: 'dpf', verdict: 'ok', recipient: 'Insightly Analytics Inc.' });
    // The declared transfer covers the recipient and the system's own residency in the US.
    expect(dpf.covers).toEqual(['systems[analytics].residency', 'systems[analytics].recipients[0]']);
    expect(dpf.citations.join(' ')).toContain('2023/1795');
    expect(a.summary).toEqual({ ok: 3, missing_mechanism: 1, mechanism_inconsistent: 1, not_a_transfer: 0 });
    expect(a.adequacyListAsOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('under the UK regime cites the UK instruments', () => {
    const a = assessTransfers(webShopMap(), { regime: 'UK' });
    const dpf = a.rows.find((r) => r.system === 'analytics')!;
    expect(dpf.citations.join(' ')).toContain('The Data Protection (Adequacy) (United States of America) Regulations 2023');
    expect(dpf.reasons.join(' ')).toContain('UK Extension');
    // Seen from the UK, systems in Germany are a transfer, covered by the UK's recognition of the EEA (DPA 2018 Sch. 21).
    const de = a.rows.filter((r) => r.country === 'DE');
    expect(de.map((r) => [r.system, r.kind, r.verdict])).toEqual([
      ['crm', 'residency', 'ok'],
      ['crm', 'recipient', 'ok'],
      ['hr', 'residency', 'ok'],
    ]);
    expect(de[0]!.citations.join(' ')).toContain('Data Protection Act 2018, Schedule 21');
  });

  it('renders text marking flagged rows', () => {
    const text = transfersToText(assessTransfers(webShopMap()));
    expect(text).toMatch(/^!! missing_mechanism\s+hr -> IN \(Benefits Partner Pvt Ltd\): no mechanism/m);
    expect(text).toMatch(/^ {3}ok\s+analytics -> US/m);
    expect(text).toContain('ok 3, missing mechanism 1, inconsistent 1, not a transfer 0');
  });
});
