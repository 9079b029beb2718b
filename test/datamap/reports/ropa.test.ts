import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataMap } from '../../../src/datamap/model.js';
import { manifestSchema } from '../../../src/datamap/manifest.js';
import { buildRopa, csvField, ROPA_CSV_COLUMNS, ropaToCsv, ropaToHtml, ropaToJson, toCsv } from '../../../src/datamap/reports/index.js';
import { webShopInput, webShopManifest, webShopMap } from '../../fixtures/datamap/web-shop.js';
import { parseCsv, resolveManifestPath } from './support.js';

const generatedAt = '2026-03-01T12:00:00.000Z';

describe('records of processing (GDPR Art. 30(1))', () => {
  const manifest = webShopManifest();
  const ropa = buildRopa(new DataMap(manifest), { generatedAt });
  const activity = (key: string) => ropa.activities.find((a) => a.purpose === key)!;

  it('has the controller details and one activity per purpose, in manifest order', () => {
    expect(ropa.controller).toMatchObject({ name: 'Example Shop GmbH', contact: 'privacy@example.com', dpo: 'DPO Team, dpo@example.com', sources: ['organization'] });
    expect(ropa.activities.map((a) => a.purpose)).toEqual(manifest.purposes.map((p) => p.key));
    expect(ropa.generatedAt).toBe(generatedAt);
  });

  it('traces every source path to a declaration in the manifest', () => {
    const paths = new Set<string>(ropa.controller.sources);
    for (const a of ropa.activities) {
      expect(a.sources.length).toBeGreaterThan(0);
      for (const s of a.sources) paths.add(s);
      const itemSources = [
        ...a.dataSubjects.flatMap((t) => t.sources),
        ...a.dataCategories.flatMap((t) => t.sources),
        ...a.recipients.flatMap((r) => r.sources),
        ...a.transfers.flatMap((t) => t.sources),
        ...a.retention.sources,
        ...a.securityMeasures.flatMap((t) => t.sources),
      ];
      // Every item's source is also in the activity's list.
      for (const s of itemSources) expect(a.sources).toContain(s);
    }
    for (const p of paths) expect(resolveManifestPath(manifest, p), p).toBeDefined();
  });

  it('derives categories from the collections serving the purpose, inheriting the system purposes', () => {
    const shop = activity('essential.service');
    // customers has no purposes and inherits crm's essential.service; newsletter_subscribers lists another purpose.
    expect(shop.dataCategories.map((t) => t.value)).toContain('user.contact.phone_number');
    expect(shop.dataCategories.find((t) => t.value === 'user.contact.phone_number')!.sources).toEqual(['systems[crm].datasets[crm_db].collections[customers].fields[phone]']);
    expect(shop.dataCategories.find((t) => t.value === 'user.contact.address.city')!.sources).toEqual(['systems[crm].datasets[crm_db].collections[customers].fields[address].fields[city]']);
    expect(activity('finance.bookkeeping').dataCategories.map((t) => t.value)).toEqual(['user.behavior.purchase_history', 'user.financial.credit_card', 'user.unique_id']);
    expect(activity('marketing.communications.email').dataSubjects.map((t) => t.value)).toEqual(['customer', 'prospect']);
    const hr = activity('employment');
    expect(hr.dataSubjects).toEqual([
      { value: 'employee', sources: ['purposes[employment].dataSubjects', 'systems[hr].datasets[hr_db].collections[employees]', 'systems[hr].datasets[hr_db].collections[sick_leave]'] },
    ]);
    expect(hr.specialCategoryCondition).toEqual({ key: 'employment_social_security', article: 'GDPR Art. 9(2)(b)' });
    expect(hr.legalBasis).toEqual({ key: 'contract', article: 'GDPR Art. 6(1)(b)' });
  });

  it('lists recipients, transfers with safeguards, retention and security measures per activity', () => {
    const newsletter = activity('marketing.communications.email');
    expect(newsletter.recipients.map((r) => r.name)).toEqual(['SendFast Inc.']);
    expect(newsletter.transfers).toEqual([
      expect.objectContaining({ country: 'US', recipient: 'SendFast Inc.', mechanism: 'scc', verdict: 'ok', safeguards: [expect.stringContaining('GDPR Art. 46(2)(c)')] }),
    ]);
    // The shop's recipient is in the EEA: no transfer; SendFast receives for the newsletter only.
    const shop = activity('essential.service');
    expect(shop.recipients.map((r) => r.name)).toEqual(['Parcel Logistics GmbH']);
    expect(shop.transfers).toEqual([]);
    expect(shop.retention.period).toBe('P3Y');
    expect(shop.retention.rules.map((r) => `${r.collection}.${r.field} ${r.period} ${r.action}`)).toEqual(['crm_db.customers.last_order_at P3Y anonymise', 'crm_db.orders.created_at P10Y delete']);
    expect(shop.securityMeasures.map((t) => t.value)).toEqual([
      'Encryption at rest (AES-256) on every database',
      'Single sign-on with multi-factor authentication for staff',
      'Quarterly access reviews',
      'Row-level security',
      'Point-in-time backups encrypted with a separate key',
    ]);
    const hr = activity('employment');
    expect(hr.transfers.map((t) => `${t.country} ${t.mechanism ?? '-'} ${t.verdict}`)).toEqual(['GB adequacy ok', 'IN - missing_mechanism']);
    expect(activity('analytics.reporting').transfers).toEqual([expect.objectContaining({ country: 'US', mechanism: 'dpf', verdict: 'ok' })]);
  });

  it('renders JSON that parses back to the same record', () => {
    expect(JSON.parse(ropaToJson(ropa))).toEqual(JSON.parse(JSON.stringify(ropa)));
  });

  it('renders CSV with one row per activity that parses back (RFC 4180)', () => {
    const rows = parseCsv(ropaToCsv(ropa));
    expect(rows[0]).toEqual([...ROPA_CSV_COLUMNS]);
    expect(rows).toHaveLength(ropa.activities.length + 1);
    for (const r of rows) expect(r).toHaveLength(ROPA_CSV_COLUMNS.length);
    const col = (name: (typeof ROPA_CSV_COLUMNS)[number]) => ROPA_CSV_COLUMNS.indexOf(name);
    const hr = rows.find((r) => r[col('purpose')] === 'employment')!;
    expect(hr[col('dpo')]).toBe('DPO Team, dpo@example.com');
    expect(hr[col('data_subjects')]).toBe('employee');
    expect(hr[col('recipients')]).toBe('PayRight Ltd (processor, GB, contract DPA-2022-002); Benefits Partner Pvt Ltd (processor, IN)');
    expect(hr[col('sources')]!.split('; ')).toEqual(ropa.activities.find((a) => a.purpose === 'employment')!.sources);
  });

  it('CSV: arbitrary cells survive a round trip through an RFC 4180 parser', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.string({ unit: 'grapheme-composite' }), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 6 }), (rows) => {
        expect(parseCsv(toCsv(rows))).toEqual(rows);
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        const f = csvField(s);
        expect(f === s || (f.startsWith('"') && f.endsWith('"'))).toBe(true);
      }),
    );
  });

  it('CSV: arbitrary manifest text survives buildRopa → ropaToCsv → parse', () => {
    const text = fc.string({ minLength: 1, maxLength: 60, unit: fc.constantFrom('a', 'Z', ' ', ',', '"', ';', '\r', '\n', '\r\n', 'é', '😀', '=', '<', '&') }).filter((s) => s.trim().length > 0);
    fc.assert(
      fc.property(text, text, (title, orgName) => {
        const input = webShopInput();
        input.organization.name = orgName;
        input.purposes![0]!.title = title;
        const ropa = buildRopa(new DataMap(manifestSchema.parse(input)), { generatedAt });
        const rows = parseCsv(ropaToCsv(ropa));
        expect(rows[1]![ROPA_CSV_COLUMNS.indexOf('title')]).toBe(title);
        expect(rows[1]![ROPA_CSV_COLUMNS.indexOf('controller')]).toBe(orgName);
      }),
      { numRuns: 60 },
    );
  });

  it('HTML escapes manifest text and loads nothing from outside', () => {
    const evil = '<script>alert("x")</script>';
    const map = webShopMap((m) => {
      m.organization.name = `Shop ${evil}`;
      m.purposes![0]!.title = `Run ${evil} & more`;
      m.organization.securityMeasures = [`<img src=x onerror=alert(1)>`];
      m.systems![0]!.recipients![0]!.name = `"><svg onload=alert(1)>`;
    });
    const html = ropaToHtml(buildRopa(map, { generatedAt }));
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img/i);
    expect(html).not.toMatch(/<svg/i);
    expect(html).toContain('Shop &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('Run &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more');
    expect(html).toContain('&quot;&gt;&lt;svg onload=alert(1)&gt;');
    expect(html).not.toMatch(/<[a-z][^>]*\s(?:src|href)=/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
  });

  it('HTML is an accessible document with one section per activity', () => {
    const html = ropaToHtml(ropa);
    expect(html.startsWith('<!DOCTYPE html>\n<html lang="en">')).toBe(true);
    expect(html.match(/<section aria-labelledby="activity-\d+">/g)).toHaveLength(ropa.activities.length);
    expect(html).toContain('<th scope="row">Transfers to third countries and safeguards');
    expect(html).toContain('@media print');
    expect(html).toContain('systems[crm].datasets[crm_db].collections[customers].fields[phone]');
    // Flagged transfers stand out.
    expect(html).toMatch(/<span class="flag">IN \(Benefits Partner Pvt Ltd\): no mechanism/);
  });

  it('is deterministic for the same map and time', () => {
    expect(ropaToHtml(buildRopa(webShopMap(), { generatedAt }))).toBe(ropaToHtml(buildRopa(webShopMap(), { generatedAt })));
  });
});
