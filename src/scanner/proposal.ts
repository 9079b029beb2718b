import { Document, isMap, isSeq } from 'yaml';
import type { ColumnKind } from '../connectors/index.js';
import { KEY_PATTERN, NAME_PATTERN, type Collection, type Dataset, type Field, type System } from '../datamap/manifest.js';
import { DETECTOR_IDENTITIES } from './detectors.js';
import type { ScanReport, ScannedColumn, ScannedTable } from './scan.js';

/** Options of {@link proposeDataset}. */
export interface ProposalOptions {
  /** The dataset key (a lower-case identifier); derived from the database name when omitted. */
  readonly datasetKey?: string | undefined;
  /** Findings below this confidence are left out (default 0). */
  readonly minConfidence?: number | undefined;
}

/** A proposed field with the finding behind it, for the side report and the YAML comments. */
export interface ProposedField {
  readonly collection: string;
  readonly field: string;
  readonly category: string | null;
  readonly confidence: number | null;
  readonly basis: string | null;
  readonly matched: number;
  readonly sampled: number;
  readonly scheme?: string | undefined;
}

/** A proposed dataset and what could not be represented in a manifest. */
export interface DatasetProposal {
  readonly dataset: Dataset;
  readonly fields: readonly ProposedField[];
  /** Tables or columns with personal data whose names the manifest cannot spell (spaces, dots…). */
  readonly unrepresentable: readonly string[];
}

/** fideslang `data_type` of a storage kind. */
export function fideslangDataType(kind: ColumnKind): string | undefined {
  switch (kind) {
    case 'text':
    case 'uuid':
    case 'network':
    case 'date':
    case 'timestamp':
    case 'time':
      return 'string';
    case 'integer':
      return 'integer';
    case 'decimal':
    case 'float':
      return 'float';
    case 'boolean':
      return 'boolean';
    case 'json':
      return 'object';
    default:
      return undefined;
  }
}

/** A manifest key from a database or file name: `CRM-Prod` → `crm-prod`, `2024 db` → `db_2024_db`. */
export function toManifestKey(name: string, fallback = 'scanned'): string {
  const base = name.split(/[\\/]/).pop()?.replace(/\.(sqlite3?|db)$/i, '') ?? '';
  let key = base.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '');
  if (key === '') key = fallback;
  if (!/^[a-z]/.test(key)) key = `db_${key}`;
  return KEY_PATTERN.test(key) ? key.slice(0, 128) : fallback;
}

/** The database name a scan report's URL names. */
export function databaseNameOf(report: Pick<ScanReport, 'engine' | 'url' | 'schema'>): string {
  if (report.engine === 'sqlite') return report.url.replace(/^sqlite:(\/\/)?/, '');
  try {
    const name = decodeURIComponent(new URL(report.url).pathname.replace(/^\//, ''));
    return report.engine === 'postgres' && report.schema !== null && report.schema !== 'public' ? `${name}_${report.schema}` : name;
  } catch {
    return 'scanned';
  }
}

function proposeField(column: ScannedColumn, minConfidence: number): Field {
  const f = column.finding !== null && column.finding.confidence >= minConfidence ? column.finding : null;
  const identity = f !== null && column.unique ? DETECTOR_IDENTITIES[f.kind] : undefined;
  const dataType = fideslangDataType(column.kind);
  return {
    name: column.name,
    dataCategories: f === null ? [] : [f.category],
    ...(identity !== undefined ? { identity } : {}),
    ...(column.indexed || column.primaryKey ? { indexed: true } : identity !== undefined ? { indexed: column.indexed } : {}),
    ...(column.primaryKey ? { primaryKey: true } : {}),
    ...(dataType !== undefined ? { dataType } : {}),
    references: [],
    fields: [],
  };
}

/**
 * Turns a scan into a proposed manifest dataset: one collection per table with personal data, holding
 * its personal columns (with the proposed category, and `identity` on unique e-mail and phone columns) and
 * its primary key (so that references and erasure can be declared). Tables without findings are left out.
 * A proposal for review, not a verdict: confidences travel in {@link DatasetProposal.fields}.
 */
export function proposeDataset(report: ScanReport, options: ProposalOptions = {}): DatasetProposal {
  const minConfidence = options.minConfidence ?? 0;
  const collections: Collection[] = [];
  const fields: ProposedField[] = [];
  const unrepresentable: string[] = [];
  const personal = (c: ScannedColumn) => c.finding !== null && c.finding.confidence >= minConfidence;
  for (const table of report.tables) {
    if (!table.columns.some(personal)) continue;
    if (!NAME_PATTERN.test(table.name)) {
      unrepresentable.push(table.name);
      continue;
    }
    const chosen = table.columns.filter((c) => personal(c) || c.primaryKey);
    const ok = chosen.filter((c) => NAME_PATTERN.test(c.name));
    for (const c of chosen) if (!NAME_PATTERN.test(c.name) && personal(c)) unrepresentable.push(`${table.name}.${c.name}`);
    if (!ok.some(personal)) continue;
    collections.push(collectionOf(table, ok, minConfidence));
    for (const c of ok) {
      const f = personal(c) ? c.finding : null;
      fields.push({ collection: table.name, field: c.name, category: f?.category ?? null, confidence: f?.confidence ?? null, basis: f?.basis ?? null, matched: f?.matched ?? 0, sampled: c.sampled, ...(f?.scheme ? { scheme: f.scheme } : {}) });
    }
  }
  const key = options.datasetKey ?? toManifestKey(databaseNameOf(report));
  return {
    dataset: { key, name: databaseNameOf(report).split(/[\\/]/).pop() || key, collections },
    fields,
    unrepresentable,
  };
}

function collectionOf(table: ScannedTable, columns: readonly ScannedColumn[], minConfidence: number): Collection {
  return { name: table.name, dataSubjects: [], purposes: [], retention: [], fields: columns.map((c) => proposeField(c, minConfidence)) };
}

/** Options of {@link proposeSystem}. */
export interface SystemProposalOptions extends ProposalOptions {
  readonly systemKey?: string | undefined;
  /** The connection to record, as given (with its `${ENV}` references, never a resolved secret). */
  readonly connection?: string | undefined;
}

/** A proposed system holding the proposed dataset; `owner` is left for the team to fill in. */
export function proposeSystem(report: ScanReport, options: SystemProposalOptions = {}): { system: System; proposal: DatasetProposal } {
  const proposal = proposeDataset(report, options);
  const key = options.systemKey ?? proposal.dataset.key;
  const system: System = {
    key,
    name: key,
    owner: 'unassigned: name the accountable team',
    ...(options.connection !== undefined ? { connection: options.connection } : {}),
    purposes: [],
    recipients: [],
    transfers: [],
    securityMeasures: [],
    datasets: [proposal.dataset],
  };
  return { system, proposal };
}

/** Keys with default empty values are left out of the YAML, so the fragment reads like a hand-written manifest. */
function compact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(compact);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (Array.isArray(v) && v.length === 0 && k !== 'dataCategories') continue;
      out[k] = compact(v);
    }
    return out;
  }
  return value;
}

/**
 * The proposal as a YAML manifest fragment (`systems: [ … ]`) with each field's confidence, basis and
 * counts as a comment, e.g. `# confidence 0.97 (name+values: 998/1000 sampled values)`.
 */
export function proposalToYaml(system: System, proposal: DatasetProposal, report: Pick<ScanReport, 'url' | 'rowsSampled' | 'sampleLimit' | 'tables'>): string {
  const doc = new Document({ systems: [compact(system)] });
  doc.commentBefore = [
    ` Proposed by \`custodian scan\` from ${report.url}`,
    ` ${report.tables.length} tables, ${report.rowsSampled} rows sampled (at most ${report.sampleLimit} per table).`,
    ' Review every entry: confidences are heuristics; fill in owner, purposes, erasure and references.',
  ].join('\n');
  const byAddress = new Map(proposal.fields.map((f) => [`${f.collection}\u0000${f.field}`, f]));
  const systems = doc.get('systems', true);
  const sys = isSeq(systems) ? systems.items[0] : undefined;
  const datasets = isMap(sys) ? sys.get('datasets', true) : undefined;
  const ds = isSeq(datasets) ? datasets.items[0] : undefined;
  const collections = isMap(ds) ? ds.get('collections', true) : undefined;
  if (isSeq(collections)) {
    for (const coll of collections.items) {
      if (!isMap(coll)) continue;
      const name = String(coll.get('name'));
      const fields = coll.get('fields', true);
      if (!isSeq(fields)) continue;
      for (const field of fields.items) {
        if (!isMap(field)) continue;
        const f = byAddress.get(`${name}\u0000${String(field.get('name'))}`);
        if (f === undefined) continue;
        field.commentBefore =
          f.confidence === null
            ? ' primary key'
            : ` confidence ${f.confidence.toFixed(2)} (${f.basis}: ${f.matched}/${f.sampled} sampled values${f.scheme ? `, ${f.scheme}` : ''})`;
      }
    }
  }
  return doc.toString({ lineWidth: 0 });
}
