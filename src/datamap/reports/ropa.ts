import { ADEQUACY_LIST_AS_OF, LEGAL_BASES, SPECIAL_CATEGORY_CONDITIONS, type AdequacyRegime } from '../../core/index.js';
import type { Purpose } from '../manifest.js';
import type { DataMap } from '../model.js';
import { CSV_MULTI_VALUE_SEPARATOR, toCsv } from './csv.js';
import { escapeXml } from './escape-xml.js';
import { collectionEntryPath, fieldPath, ORGANIZATION_PATH, purposePath, purposeScope, recipientPath, systemPath, unique } from './manifest-paths.js';
import { assessTransfers, type TransferAssessmentRow, type TransferVerdict } from './transfers.js';

/** A value with the manifest paths it was read from. */
export interface Traced<T = string> {
  readonly value: T;
  readonly sources: readonly string[];
}

/** The controller, GDPR Art. 30(1)(a). */
export interface RopaController {
  readonly name: string;
  readonly address?: string;
  readonly contact?: string;
  readonly representative?: string;
  readonly dpo?: string;
  readonly sources: readonly string[];
}

export interface RopaRecipient {
  readonly name: string;
  readonly type: string;
  readonly country?: string;
  readonly contract?: string;
  readonly system: string;
  readonly sources: readonly string[];
}

export interface RopaTransfer {
  readonly country: string;
  readonly recipient?: string;
  readonly mechanism?: string;
  /** The provisions the transfer rests on (adequacy decision, Art. 46 safeguard, …). */
  readonly safeguards: readonly string[];
  readonly reference?: string;
  readonly verdict: TransferVerdict;
  readonly sources: readonly string[];
}

export interface RopaRetentionRule {
  /** `<dataset>.<collection>` */
  readonly collection: string;
  /** The age field. */
  readonly field: string;
  readonly period: string;
  readonly action: 'delete' | 'anonymise';
  readonly description?: string;
  readonly sources: readonly string[];
}

/** One processing activity, i.e. one purpose of the manifest: the items of GDPR Art. 30(1)(b)–(g). */
export interface RopaActivity {
  readonly purpose: string;
  readonly title: string;
  /** (b) the purposes of the processing. */
  readonly description: string;
  readonly legalBasis?: { readonly key: string; readonly article: string };
  readonly legitimateInterest?: string;
  readonly specialCategoryCondition?: { readonly key: string; readonly article: string };
  /** (c) categories of data subjects. */
  readonly dataSubjects: readonly Traced[];
  /** (c) categories of personal data. */
  readonly dataCategories: readonly Traced[];
  /** (d) recipients. */
  readonly recipients: readonly RopaRecipient[];
  /** (e) transfers to third countries with their safeguards. */
  readonly transfers: readonly RopaTransfer[];
  /** (f) time limits for erasure: the purpose's retention and the rules of its collections. */
  readonly retention: { readonly period?: string; readonly rules: readonly RopaRetentionRule[]; readonly sources: readonly string[] };
  /** (g) technical and organisational security measures (organisation-wide and of the systems involved). */
  readonly securityMeasures: readonly Traced[];
  /** Keys of the systems involved. */
  readonly systems: readonly string[];
  /** Every manifest path this activity was built from. */
  readonly sources: readonly string[];
}

/** Records of processing activities of a controller, GDPR Art. 30(1). */
export interface Ropa {
  readonly generatedAt: string;
  readonly citation: string;
  readonly regime: AdequacyRegime;
  readonly adequacyListAsOf: string;
  readonly controller: RopaController;
  readonly activities: readonly RopaActivity[];
}

/** Options of {@link buildRopa}. */
export interface RopaOptions {
  /** When the record was generated (UTC ISO-8601); injected so output is reproducible. */
  readonly generatedAt: string;
  /** Whose transfer rules assess (e): the EEA's (default) or the UK's. */
  readonly regime?: AdequacyRegime;
}

/**
 * Builds the records of processing (GDPR Art. 30(1)) from the data map: one activity per purpose, every item
 * carrying the manifest paths it was read from. Collections serve a purpose when they list it, or list none
 * and their system does; recipients when they list it, or list none on a system in scope.
 *
 * @example
 * const ropa = buildRopa(map, { generatedAt: clock.now().toISOString() });
 * await writeFile('ropa.html', ropaToHtml(ropa));
 */
export function buildRopa(map: DataMap, options: RopaOptions): Ropa {
  const regime = options.regime ?? 'EU';
  const org = map.manifest.organization;
  const transfers = assessTransfers(map, { regime });
  const controller: RopaController = {
    name: org.name,
    ...(org.address === undefined ? {} : { address: org.address }),
    ...(org.contact === undefined ? {} : { contact: org.contact }),
    ...(org.representative === undefined ? {} : { representative: org.representative }),
    ...(org.dpo === undefined ? {} : { dpo: org.dpo }),
    sources: [ORGANIZATION_PATH],
  };
  return {
    generatedAt: options.generatedAt,
    citation: 'GDPR Art. 30(1)',
    regime,
    adequacyListAsOf: ADEQUACY_LIST_AS_OF,
    controller,
    activities: map.purposes.map((p) => activity(map, p, transfers.rows)),
  };
}

function traced(entries: Iterable<readonly [string, string]>): Traced[] {
  const by = new Map<string, string[]>();
  for (const [value, source] of entries) by.set(value, unique([...(by.get(value) ?? []), source]));
  return [...by.entries()].map(([value, sources]) => ({ value, sources }));
}

function activity(map: DataMap, p: Purpose, transferRows: readonly TransferAssessmentRow[]): RopaActivity {
  const scope = purposeScope(map, p.key);
  const pPath = purposePath(p);
  const systemKeys = new Set(scope.systems.map((s) => s.key));
  const fields = map.fields().filter((f) => scope.collections.some((c) => c.collection === f.collection && c.dataset === f.dataset));

  const dataSubjects = traced([
    ...p.dataSubjects.map((s) => [s, `${pPath}.dataSubjects`] as const),
    ...scope.collections.flatMap((c) => c.collection.dataSubjects.map((s) => [s, collectionEntryPath(c)] as const)),
  ]);
  const dataCategories = traced(fields.flatMap((f) => f.field.dataCategories.map((c) => [c, fieldPath(f)] as const))).sort((a, b) => a.value.localeCompare(b.value));

  const recipients: RopaRecipient[] = scope.recipients.map(({ system, index, party }) => ({
    name: party.name,
    type: party.type,
    ...(party.country === undefined ? {} : { country: party.country }),
    ...(party.contract === undefined ? {} : { contract: party.contract }),
    system: system.key,
    sources: [recipientPath(system, index)],
  }));
  const recipientSources = new Set(recipients.flatMap((r) => r.sources));
  // Names of recipients on systems in scope that receive for other purposes only: their transfers are not this activity's.
  const otherRecipients = new Set(
    scope.systems.flatMap((s) => s.recipients.flatMap((r, i) => (recipientSources.has(recipientPath(s, i)) ? [] : [`${s.key}\u0000${r.name.trim().toLowerCase()}`]))),
  );
  const transfers: RopaTransfer[] = transferRows
    .filter((r) => r.verdict !== 'not_a_transfer')
    .filter((r) => (r.kind === 'recipient' ? r.sources.some((s) => recipientSources.has(s)) : systemKeys.has(r.system)))
    .filter((r) => r.kind !== 'transfer' || r.recipient === undefined || !otherRecipients.has(`${r.system}\u0000${r.recipient.trim().toLowerCase()}`))
    .map((r) => ({
      country: r.country,
      ...(r.recipient === undefined ? {} : { recipient: r.recipient }),
      ...(r.mechanism === undefined ? {} : { mechanism: r.mechanism }),
      safeguards: r.citations,
      ...(r.reference === undefined ? {} : { reference: r.reference }),
      verdict: r.verdict,
      sources: r.sources,
    }));

  const rules: RopaRetentionRule[] = scope.collections.flatMap((c) =>
    c.collection.retention.map((rule, i) => ({
      collection: c.address,
      field: rule.field,
      period: rule.period,
      action: rule.action,
      ...(rule.description === undefined ? {} : { description: rule.description }),
      sources: [`${collectionEntryPath(c)}.retention[${i}]`],
    })),
  );
  const retention = {
    ...(p.retention === undefined ? {} : { period: p.retention }),
    rules,
    sources: [...(p.retention === undefined ? [] : [`${pPath}.retention`]), ...rules.flatMap((r) => r.sources)],
  };

  const securityMeasures = traced([
    ...map.manifest.organization.securityMeasures.map((m, i) => [m, `${ORGANIZATION_PATH}.securityMeasures[${i}]`] as const),
    ...scope.systems.flatMap((s) => s.securityMeasures.map((m, i) => [m, `${systemPath(s)}.securityMeasures[${i}]`] as const)),
  ]);

  const sources = unique([
    pPath,
    ...scope.systems.filter((s) => s.purposes.includes(p.key)).map(systemPath),
    ...scope.collections.map(collectionEntryPath),
    ...dataSubjects.flatMap((t) => t.sources),
    ...dataCategories.flatMap((t) => t.sources),
    ...recipients.flatMap((r) => r.sources),
    ...transfers.flatMap((t) => t.sources),
    ...retention.sources,
    ...securityMeasures.flatMap((t) => t.sources),
  ]);

  return {
    purpose: p.key,
    title: p.title,
    description: p.description,
    ...(p.legalBasis === undefined ? {} : { legalBasis: { key: p.legalBasis, article: LEGAL_BASES[p.legalBasis].article } }),
    ...(p.legitimateInterest === undefined ? {} : { legitimateInterest: p.legitimateInterest }),
    ...(p.specialCategoryCondition === undefined ? {} : { specialCategoryCondition: { key: p.specialCategoryCondition, article: SPECIAL_CATEGORY_CONDITIONS[p.specialCategoryCondition].article } }),
    dataSubjects,
    dataCategories,
    recipients,
    transfers,
    retention,
    securityMeasures,
    systems: scope.systems.map((s) => s.key),
    sources,
  };
}

/** The record as JSON (two-space indented, trailing newline). */
export function ropaToJson(ropa: Ropa): string {
  return JSON.stringify(ropa, null, 2) + '\n';
}

const recipientText = (r: RopaRecipient) => `${r.name} (${r.type}${r.country === undefined ? '' : `, ${r.country}`}${r.contract === undefined ? '' : `, contract ${r.contract}`})`;
const transferText = (t: RopaTransfer) =>
  `${t.country}${t.recipient === undefined ? '' : ` (${t.recipient})`}: ${t.mechanism ?? 'no mechanism'} — ${t.safeguards.join(' | ')}${t.reference === undefined ? '' : ` — ref. ${t.reference}`} [${t.verdict}]`;
const ruleText = (r: RopaRetentionRule) => `${r.collection}.${r.field}: ${r.period} ${r.action}`;
const retentionText = (a: RopaActivity) => [...(a.retention.period === undefined ? [] : [`purpose: ${a.retention.period}`]), ...a.retention.rules.map(ruleText)];
const basisText = (a: RopaActivity) => (a.legalBasis === undefined ? '' : `${a.legalBasis.key} (${a.legalBasis.article})`);

export const ROPA_CSV_COLUMNS = [
  'controller',
  'controller_contact',
  'representative',
  'dpo',
  'purpose',
  'title',
  'description',
  'legal_basis',
  'legitimate_interest',
  'special_category_condition',
  'data_subjects',
  'data_categories',
  'recipients',
  'transfers',
  'retention',
  'security_measures',
  'systems',
  'sources',
] as const;

/**
 * The record as RFC 4180 CSV: a header, then one row per activity; multi-valued cells joined with `"; "`.
 * Opening it in a spreadsheet evaluates cells starting with `=`, `+`, `-` or `@` as formulas there: the
 * manifest is trusted input, but prefer the HTML or JSON form for untrusted manifests.
 */
export function ropaToCsv(ropa: Ropa): string {
  const c = ropa.controller;
  const j = (values: readonly string[]) => values.join(CSV_MULTI_VALUE_SEPARATOR);
  const rows = ropa.activities.map((a) => [
    c.name,
    c.contact ?? '',
    c.representative ?? '',
    c.dpo ?? '',
    a.purpose,
    a.title,
    a.description,
    basisText(a),
    a.legitimateInterest ?? '',
    a.specialCategoryCondition === undefined ? '' : `${a.specialCategoryCondition.key} (${a.specialCategoryCondition.article})`,
    j(a.dataSubjects.map((t) => t.value)),
    j(a.dataCategories.map((t) => t.value)),
    j(a.recipients.map(recipientText)),
    j(a.transfers.map(transferText)),
    j(retentionText(a)),
    j(a.securityMeasures.map((t) => t.value)),
    j(a.systems),
    j(a.sources),
  ]);
  return toCsv([[...ROPA_CSV_COLUMNS], ...rows]);
}

const STYLE = `
:root { color: #111; background: #fff; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
body { max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.5rem; border-bottom: 2px solid #333; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #888; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th[scope=row] { width: 14rem; background: #f0f0f0; }
ul { margin: 0; padding-left: 1.2rem; }
code, .src { font-family: ui-monospace, "SFMono-Regular", Consolas, monospace; font-size: .85em; overflow-wrap: anywhere; }
.src { color: #444; }
.flag { font-weight: bold; color: #8a1c00; }
.meta { color: #333; }
@media print { body { margin: 0; max-width: none; } section { break-inside: avoid-page; } a { color: inherit; } }
`;

/**
 * The record as a self-contained, printable HTML document: no script, no external resource (a CSP meta tag
 * forbids both), headings and row headers for screen readers, and every manifest value escaped.
 */
export function ropaToHtml(ropa: Ropa): string {
  const e = escapeXml;
  const c = ropa.controller;
  const list = (items: readonly string[]) => (items.length === 0 ? '<span class="meta">none declared</span>' : `<ul>${items.map((i) => `<li>${i}</li>`).join('')}</ul>`);
  const src = (sources: readonly string[]) => (sources.length === 0 ? '' : ` <span class="src">(${sources.map(e).join(', ')})</span>`);
  const tracedList = (items: readonly Traced[]) => list(items.map((t) => `${e(t.value)}${src(t.sources)}`));
  const row = (label: string, article: string, body: string) => `<tr><th scope="row">${label} <span class="meta">(${article})</span></th><td>${body}</td></tr>`;
  const controllerRows = [
    ['Name', c.name],
    ['Address', c.address],
    ['Contact', c.contact],
    ['Representative', c.representative],
    ['Data protection officer', c.dpo],
  ]
    .filter((r): r is [string, string] => r[1] !== undefined)
    .map(([k, v]) => `<tr><th scope="row">${k}</th><td>${e(v)}</td></tr>`)
    .join('\n');
  const activities = ropa.activities.map((a, i) => {
    const id = `activity-${i + 1}`;
    const purposeBody = [
      `<p>${e(a.description === '' ? a.title : a.description)}</p>`,
      `<p>Purpose key <code>${e(a.purpose)}</code>.${a.legalBasis === undefined ? ' <span class="flag">No legal basis declared.</span>' : ` Legal basis: ${e(basisText(a))}.`}</p>`,
      a.legitimateInterest === undefined ? '' : `<p>Legitimate interest: ${e(a.legitimateInterest)}</p>`,
      a.specialCategoryCondition === undefined ? '' : `<p>Special-category condition: ${e(`${a.specialCategoryCondition.key} (${a.specialCategoryCondition.article})`)}</p>`,
    ].join('');
    const transfers = list(
      a.transfers.map((t) => {
        const text = e(transferText(t));
        return `${t.verdict === 'missing_mechanism' || t.verdict === 'mechanism_inconsistent' ? `<span class="flag">${text}</span>` : text}${src(t.sources)}`;
      }),
    );
    const retention = list([
      ...(a.retention.period === undefined ? [] : [`Purpose retention ${e(a.retention.period)}${src([`purposes[${a.purpose}].retention`])}`]),
      ...a.retention.rules.map((r) => `${e(ruleText(r))}${r.description === undefined ? '' : ` — ${e(r.description)}`}${src(r.sources)}`),
    ]);
    return `<section aria-labelledby="${id}">
<h2 id="${id}">${i + 1}. ${e(a.title)}</h2>
<table>
<caption class="meta">Processing activity <code>${e(a.purpose)}</code> — systems: ${e(a.systems.join(', ') || 'none')}</caption>
<tbody>
${row('Purposes of the processing', 'Art. 30(1)(b)', purposeBody)}
${row('Categories of data subjects', 'Art. 30(1)(c)', tracedList(a.dataSubjects))}
${row('Categories of personal data', 'Art. 30(1)(c)', tracedList(a.dataCategories))}
${row('Recipients', 'Art. 30(1)(d)', list(a.recipients.map((r) => `${e(recipientText(r))}${src(r.sources)}`)))}
${row('Transfers to third countries and safeguards', 'Art. 30(1)(e)', transfers)}
${row('Time limits for erasure', 'Art. 30(1)(f)', retention)}
${row('Security measures', 'Art. 30(1)(g), Art. 32(1)', tracedList(a.securityMeasures))}
</tbody>
</table>
</section>`;
  });
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Records of processing activities — ${e(c.name)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>Records of processing activities</h1>
<p class="meta">${e(ropa.citation)}. Generated ${e(ropa.generatedAt)} from the data map; transfers assessed under the ${e(ropa.regime)} regime with the adequacy list as of ${e(ropa.adequacyListAsOf)}. Paths in parentheses name the manifest declaration each entry comes from.</p>
<section aria-labelledby="controller">
<h2 id="controller">Controller <span class="meta">(Art. 30(1)(a))</span></h2>
<table>
<tbody>
${controllerRows}
</tbody>
</table>
</section>
${activities.length === 0 ? '<p>No processing activities declared.</p>' : activities.join('\n')}
</main>
</body>
</html>
`;
}
