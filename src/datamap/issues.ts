import { CustodianError } from '../core/index.js';

/** One problem found in a manifest. `path` names the place readably; `line`/`column` (1-based) come from YAML. */
export interface ManifestIssue {
  readonly severity: 'error' | 'warning';
  /** Readable path, e.g. `systems[crm].datasets[crm_db].collections[contacts].fields[email].erasure`. */
  readonly path: string;
  readonly message: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
}

/** A raw issue: the path as keys and indexes into the manifest document, resolved to text and position later. */
export interface RawIssue {
  readonly severity: 'error' | 'warning';
  readonly at: ReadonlyArray<string | number>;
  readonly message: string;
}

/**
 * Renders a raw path readably: array elements that carry a `key` or `name` are named by it
 * (`systems[crm]`), others by index (`references[0]`).
 */
export function readablePath(root: unknown, at: ReadonlyArray<string | number>): string {
  let out = '';
  let node: unknown = root;
  for (const step of at) {
    const next = node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[step] : undefined;
    if (typeof step === 'number') {
      const label = next !== null && typeof next === 'object' ? ((next as { key?: unknown }).key ?? (next as { name?: unknown }).name) : undefined;
      out += typeof label === 'string' && label.length > 0 && label.length <= 128 ? `[${label}]` : `[${step}]`;
    } else {
      out += out === '' ? step : `.${step}`;
    }
    node = next;
  }
  return out === '' ? '(manifest)' : out;
}

/** Errors first, then by position, then by path: stable output for people and tests. */
export function sortIssues(issues: readonly ManifestIssue[]): ManifestIssue[] {
  return [...issues].sort(
    (a, b) =>
      (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1) ||
      (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      a.path.localeCompare(b.path),
  );
}

/** The error for an invalid manifest, carrying every issue (errors and warnings). */
export function invalidManifest(issues: readonly ManifestIssue[]): CustodianError {
  const errors = issues.filter((i) => i.severity === 'error').length;
  return new CustodianError('CST_ERR_DATAMAP_INVALID', `the data map has ${errors} error${errors === 1 ? '' : 's'}`, { details: { issues: sortIssues(issues) } });
}

/** One line per issue: `file:line:column: error: path: message`. */
export function formatIssue(i: ManifestIssue): string {
  const where = i.file !== undefined ? `${i.file}${i.line !== undefined ? `:${i.line}:${i.column ?? 1}` : ''}: ` : i.line !== undefined ? `${i.line}:${i.column ?? 1}: ` : '';
  return `${where}${i.severity}: ${i.path}: ${i.message}`;
}
