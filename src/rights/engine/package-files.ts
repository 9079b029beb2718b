import { escapeXml, toCsv } from '../../datamap/reports/index.js';
import type { ZipEntry } from './zip.js';

/** The access package as built by the runner (JSON-serialisable). */
export interface AccessPackage {
  readonly schemaVersion: number;
  readonly requestId: string;
  readonly type: string;
  readonly generatedAt: string;
  readonly controller: { readonly name: string; readonly contact: string | null; readonly dpo: string | null };
  readonly rights: string;
  readonly dataMapVersion: number;
  readonly collections: ReadonlyArray<{
    readonly collection: string;
    readonly system: { readonly key: string; readonly name: string; readonly country: string | null };
    readonly purposes: ReadonlyArray<{ readonly key: string; readonly title: string; readonly legalBasis: string | null }>;
    readonly categories: readonly string[];
    readonly retention: ReadonlyArray<{ readonly field: string; readonly period: string; readonly action: string }>;
    readonly recipients: ReadonlyArray<{ readonly name: string; readonly type: string; readonly country: string | null }>;
    readonly transfers: ReadonlyArray<{ readonly country: string; readonly mechanism: string | null }>;
    readonly rows: readonly unknown[];
  }>;
}

const cell = (v: unknown): string =>
  v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : JSON.stringify(v);

/**
 * The files of the downloadable package: `package.json` (machine-readable, with its schema version), one CSV
 * per collection (RFC 4180; nested values as JSON), and `report.html`, a readable report with the Art. 15(1)
 * information. Every text from the data or the data map is escaped.
 */
export function packageFiles(pkg: AccessPackage): ZipEntry[] {
  const files: ZipEntry[] = [{ name: 'package.json', data: Buffer.from(JSON.stringify(pkg, null, 2) + '\n', 'utf8') }];
  for (const c of pkg.collections) {
    if (c.rows.length === 0) continue;
    const columns = [...new Set(c.rows.flatMap((r) => Object.keys(r as object)))];
    const table = [columns, ...c.rows.map((r) => columns.map((k) => cell((r as Record<string, unknown>)[k])))];
    files.push({ name: `csv/${c.collection.replace(/[^A-Za-z0-9_.-]/g, '_')}.csv`, data: Buffer.from(toCsv(table), 'utf8') });
  }
  files.push({ name: 'report.html', data: Buffer.from(reportHtml(pkg), 'utf8') });
  return files;
}

function reportHtml(pkg: AccessPackage): string {
  const e = escapeXml;
  const list = (items: readonly string[]) => (items.length === 0 ? '<p>None declared.</p>' : `<ul>${items.map((i) => `<li>${e(i)}</li>`).join('')}</ul>`);
  const sections = pkg.collections
    .map((c) => {
      const columns = [...new Set(c.rows.flatMap((r) => Object.keys(r as object)))];
      const table =
        c.rows.length === 0
          ? '<p>No data about you is held here.</p>'
          : `<table><thead><tr>${columns.map((k) => `<th scope="col">${e(k)}</th>`).join('')}</tr></thead><tbody>${c.rows
              .map((r) => `<tr>${columns.map((k) => `<td>${e(cell((r as Record<string, unknown>)[k]))}</td>`).join('')}</tr>`)
              .join('')}</tbody></table>`;
      return `<section><h2>${e(c.system.name)}: ${e(c.collection)}</h2>
<p>Stored in ${e(c.system.country ?? 'an undeclared country')}.</p>
<h3>Why we process it</h3>${list(c.purposes.map((p) => `${p.title} (legal basis: ${p.legalBasis ?? 'not declared'})`))}
<h3>Categories of data</h3>${list([...c.categories])}
<h3>How long we keep it</h3>${list(c.retention.map((r) => `${r.field}: ${r.period}, then ${r.action}`))}
<h3>Who receives it</h3>${list(c.recipients.map((r) => `${r.name} (${r.type}${r.country ? `, ${r.country}` : ''})`))}
<h3>Transfers outside your country</h3>${list(c.transfers.map((t) => `${t.country}${t.mechanism ? ` under ${t.mechanism}` : ''}`))}
<h3>The data</h3>${table}</section>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Your data held by ${e(pkg.controller.name)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}table{border-collapse:collapse;width:100%}th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}section{margin-top:2rem}</style></head>
<body><h1>Your data held by ${e(pkg.controller.name)}</h1>
<p>Request ${e(pkg.requestId)} (${e(pkg.type)}), generated ${e(pkg.generatedAt)}. Contact: ${e(pkg.controller.contact ?? 'not declared')}${pkg.controller.dpo ? `; data protection officer: ${e(pkg.controller.dpo)}` : ''}.</p>
<p>${e(pkg.rights)}</p>
${sections}
</body></html>
`;
}
