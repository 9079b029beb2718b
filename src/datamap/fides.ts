import { Document, isScalar, visit } from 'yaml';
import { closestTaxonomyKeys, isDataCategory, isDataSubject } from '../core/index.js';
import { sortIssues, type ManifestIssue, type RawIssue } from './issues.js';
import { readYaml } from './load.js';
import { KEY_PATTERN, NAME_PATTERN, manifestSchema, type Collection, type Dataset, type Erasure, type Field, type Reference, type RetentionRule } from './manifest.js';

/**
 * Fides compatibility: reads fideslang dataset YAML (`dataset:` list, as written by Fides and `fides pull`) into
 * manifest {@link Dataset}s, and writes them back. docs/datamap.md (Fides compatibility) has the mapping table.
 *
 * What Custodian's model cannot express becomes a warning naming the key, never a silent drop. What fideslang
 * cannot express (field-level delete, `retain` with its legal basis, index hints, purposes and retention rules of a
 * collection) is written under a `custodian:` key on the collection or field; fideslang's models ignore keys they
 * do not know, so Fides still loads the file, and Custodian reads them back: `importFides(exportFides(x))` is `x`.
 */

/** The result of {@link importFides}: the datasets without errors, and every issue (errors and warnings). */
export interface FidesImportResult {
  readonly datasets: Dataset[];
  readonly issues: ManifestIssue[];
}

/** Options of {@link importFides}. */
export interface FidesImportOptions {
  /** The file name put on issues. */
  readonly file?: string;
}

type Path = ReadonlyArray<string | number>;
type Obj = Record<string, unknown>;

/** Largest Fides file accepted, as for manifests. */
const MAX_FIDES_BYTES = 32 * 1024 * 1024;
const IDENTITY_PATTERN = /^[a-z][a-z0-9_]*$/;
const TAXONOMY_KEY_PATTERN = /^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$/;

/** fideslang keys that Custodian does not keep, with why; anything not listed and not mapped is "unknown". */
const DROPPED_DATASET_KEYS: Readonly<Record<string, string>> = {
  tags: 'tags are not kept',
  meta: 'free-form meta is not kept',
  data_categories: 'dataset-level data categories are not kept: declare them on the fields',
  data_uses: 'dataset-level data uses are not kept: declare purposes (with their data uses) on the system',
  data_purposes: 'dataset-level data purposes are not kept: declare purposes on the system',
  retention: 'free-text retention is not kept: declare retention rules (ISO 8601 periods) on the collections',
  data_qualifier: 'data qualifiers were removed in fideslang 3.0 and are not kept',
  third_country_transfers: 'third-country transfers are not kept here: declare transfers on the system',
  joint_controller: 'joint controllers are not kept here: declare recipients on the system',
};
const DROPPED_DATASET_META: Readonly<Record<string, string>> = {
  after: 'fides_meta.after is not kept: Custodian orders datasets by their references',
  resource_id: 'fides_meta.resource_id is not kept',
  namespace: 'fides_meta.namespace is not kept: put the database/schema in the system connection',
  redact: 'fides_meta.redact is not kept',
};
const DROPPED_COLLECTION_KEYS: Readonly<Record<string, string>> = {
  data_categories: 'collection-level data categories are not kept: declare them on the fields',
  data_uses: 'collection-level data uses are not kept: list purposes under custodian.purposes',
  data_purposes: 'collection-level data purposes are not kept: list purposes under custodian.purposes',
  tags: 'tags are not kept',
  retention: 'free-text retention is not kept: declare retention rules under custodian.retention',
  data_qualifier: 'data qualifiers were removed in fideslang 3.0 and are not kept',
};
const DROPPED_COLLECTION_META: Readonly<Record<string, string>> = {
  after: 'fides_meta.after is not kept: Custodian orders collections by their references',
  erase_after: 'fides_meta.erase_after is not kept: Custodian erases in reverse reference order',
  partitioning: 'fides_meta.partitioning is not kept: Custodian reads in batches by key',
  redact: 'fides_meta.redact is not kept',
  where_clauses: 'fides_meta.where_clauses is not kept',
};
const DROPPED_FIELD_KEYS: Readonly<Record<string, string>> = {
  data_uses: 'field-level data uses are not kept: declare purposes on the collection or system',
  data_purposes: 'field-level data purposes are not kept: declare purposes on the collection or system',
  data_subjects: 'field-level data subjects are not kept: declare them on the collection',
  tags: 'tags are not kept',
  retention: 'free-text retention is not kept: declare retention rules on the collection',
  data_qualifier: 'data qualifiers were removed in fideslang 3.0 and are not kept',
};
const DROPPED_FIELD_META: Readonly<Record<string, string>> = {
  return_all_elements: 'fides_meta.return_all_elements is not kept: Custodian returns matching array elements only',
  read_only: 'fides_meta.read_only is not kept: declare erasure strategy retain (with its legal basis) under custodian.erasure instead',
  custom_request_field: 'fides_meta.custom_request_field is not kept',
  redact: 'fides_meta.redact is not kept',
};

/**
 * Reads fideslang dataset YAML into manifest datasets. Every problem is reported with its path and the line and
 * column in the file; a dataset with an error is left out, the others are returned. Never throws on bad input.
 *
 * @example
 * const { datasets, issues } = importFides(await readFile('postgres.yml', 'utf8'), { file: 'postgres.yml' });
 */
export function importFides(yamlText: string, options: FidesImportOptions = {}): FidesImportResult {
  const file = options.file;
  const withFile = (i: ManifestIssue): ManifestIssue => (file === undefined ? i : { ...i, file });
  if (yamlText.length > MAX_FIDES_BYTES) return { datasets: [], issues: [withFile({ severity: 'error', path: '(file)', message: `the file is larger than ${MAX_FIDES_BYTES} bytes` })] };
  const source = readYaml(yamlText, file);
  if ('issues' in source) return { datasets: [], issues: source.issues };
  const { input } = source;
  const { datasets, raw } = convert(input);
  const issues = raw.map((r) => withFile({ severity: r.severity, path: fidesPath(input, r.at), message: r.message, ...source.position(r.at) }));
  return { datasets, issues: sortIssues(issues) };
}

/** `dataset[postgres_db].collections[customer].fields[email]`: list items named by fides_key or name, else index. */
function fidesPath(root: unknown, at: Path): string {
  let out = '';
  let node: unknown = root;
  for (const step of at) {
    const next: unknown = isObj(node) || Array.isArray(node) ? (node as Record<string | number, unknown>)[step] : undefined;
    if (typeof step === 'number') {
      const label = isObj(next) ? (next['fides_key'] ?? next['name']) : undefined;
      out += typeof label === 'string' && label.length > 0 && label.length <= 128 ? `[${label}]` : `[${step}]`;
    } else out += out === '' ? step : `.${step}`;
    node = next;
  }
  return out === '' ? '(file)' : out;
}

function convert(input: unknown): { datasets: Dataset[]; raw: RawIssue[] } {
  const raw: RawIssue[] = [];
  const datasets: Dataset[] = [];
  if (!isObj(input)) {
    raw.push({ severity: 'error', at: [], message: 'expected a fideslang file with a top-level dataset: list' });
    return { datasets, raw };
  }
  for (const k of Object.keys(input)) {
    if (k !== 'dataset') raw.push({ severity: 'warning', at: [k], message: `${k} resources are not imported: only datasets are` });
  }
  const list = input['dataset'];
  if (!Array.isArray(list)) {
    raw.push({ severity: 'error', at: list === undefined ? [] : ['dataset'], message: 'expected a top-level dataset: list' });
    return { datasets, raw };
  }
  const seen = new Set<string>();
  list.forEach((d, i) => {
    const issues: RawIssue[] = [];
    const dataset = readDataset(d, ['dataset', i], new Reporter(issues));
    if (dataset !== undefined && seen.has(dataset.key)) issues.push({ severity: 'error', at: ['dataset', i, 'fides_key'], message: `dataset ${dataset.key} is declared twice` });
    if (dataset !== undefined) seen.add(dataset.key);
    if (dataset !== undefined && !issues.some((x) => x.severity === 'error')) issues.push(...schemaCheck(dataset, ['dataset', i]));
    raw.push(...issues);
    if (dataset !== undefined && !issues.some((x) => x.severity === 'error')) datasets.push(dataset);
  });
  return { datasets, raw };
}

class Reporter {
  constructor(readonly issues: RawIssue[]) {}
  error(at: Path, message: string): void {
    this.issues.push({ severity: 'error', at, message });
  }
  warning(at: Path, message: string): void {
    this.issues.push({ severity: 'warning', at, message });
  }
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function optString(o: Obj, key: string, at: Path, r: Reporter): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  r.error([...at, key], `${key} must be a string`);
  return undefined;
}

function optBool(o: Obj, key: string, at: Path, r: Reporter): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  r.error([...at, key], `${key} must be true or false`);
  return undefined;
}

function stringList(o: Obj, key: string, at: Path, r: Reporter): string[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    r.error([...at, key], `${key} must be a list of strings`);
    return [];
  }
  return v as string[];
}

/** The fides_meta object (or the pre-2.0 fidesops_meta alias, as fideslang reads it). */
function metaOf(o: Obj, at: Path, r: Reporter): { meta: Obj; at: Path } {
  const key = o['fides_meta'] !== undefined && o['fides_meta'] !== null ? 'fides_meta' : 'fidesops_meta';
  const v = o[key];
  if (v === undefined || v === null) return { meta: {}, at: [...at, key] };
  if (!isObj(v)) {
    r.error([...at, key], `${key} must be a mapping`);
    return { meta: {}, at: [...at, key] };
  }
  return { meta: v, at: [...at, key] };
}

function dropped(o: Obj, at: Path, handled: ReadonlySet<string>, known: Readonly<Record<string, string>>, r: Reporter, where: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (handled.has(k) || v === null || v === undefined) continue;
    const why = known[k];
    r.warning([...at, k], why ?? `${k} is not a fideslang ${where} key (Fides ignores it) and is not kept`);
  }
}

function readDataset(d: unknown, at: Path, r: Reporter): Dataset | undefined {
  if (!isObj(d)) {
    r.error(at, 'a dataset must be a mapping');
    return undefined;
  }
  const key = optString(d, 'fides_key', at, r);
  if (key === undefined) r.error(at, 'a dataset needs a fides_key');
  else if (!KEY_PATTERN.test(key) || key.length > 128) {
    r.error([...at, 'fides_key'], `fides_key ${key} is not a Custodian dataset key: use lower-case letters, digits, _ and -, starting with a letter`);
  }
  const name = optString(d, 'name', at, r);
  const description = optString(d, 'description', at, r);
  const subjects = stringList(d, 'data_subjects', at, r);
  subjects.forEach((s, j) => checkSubject(s, [...at, 'data_subjects', j], r));
  const org = d['organization_fides_key'];
  if (org !== undefined && org !== null && org !== 'default_organization') r.warning([...at, 'organization_fides_key'], 'organization_fides_key is not kept: a manifest describes one organization');

  const { meta, at: metaAt } = metaOf(d, at, r);
  dropped(meta, metaAt, new Set(), DROPPED_DATASET_META, r, 'dataset fides_meta');
  dropped(d, at, new Set(['fides_key', 'name', 'description', 'collections', 'data_subjects', 'organization_fides_key', 'fides_meta', 'fidesops_meta']), DROPPED_DATASET_KEYS, r, 'dataset');

  const raw = d['collections'];
  const collections: Collection[] = [];
  if (!Array.isArray(raw) || raw.length === 0) r.error(raw === undefined ? at : [...at, 'collections'], 'a dataset needs a non-empty collections list');
  else {
    const names = new Set<string>();
    raw.forEach((c, i) => {
      const collection = readCollection(c, [...at, 'collections', i], subjects, r);
      if (collection === undefined) return;
      if (names.has(collection.name)) r.error([...at, 'collections', i, 'name'], `collection ${collection.name} is declared twice`);
      names.add(collection.name);
      collections.push(collection);
    });
  }
  if (key === undefined) return undefined;
  return { key, ...(name !== undefined ? { name } : {}), ...(description !== undefined ? { description } : {}), collections };
}

function checkSubject(s: string, at: Path, r: Reporter): void {
  if (!TAXONOMY_KEY_PATTERN.test(s)) r.error(at, `data subject ${s} is not a taxonomy key`);
  else if (!isDataSubject(s)) r.warning(at, unknownMessage('data subject', s, closestTaxonomyKeys(s, 'data_subject')));
}

function unknownMessage(kind: string, key: string, near: readonly string[]): string {
  return `unknown ${kind} ${key} in the fideslang taxonomy${near.length > 0 ? `; did you mean ${near.join(', ')}?` : ''}`;
}

function readCollection(c: unknown, at: Path, datasetSubjects: readonly string[], r: Reporter): Collection | undefined {
  if (!isObj(c)) {
    r.error(at, 'a collection must be a mapping');
    return undefined;
  }
  const name = readName(c, at, r, 'collection');
  const description = optString(c, 'description', at, r);
  const own = stringList(c, 'data_subjects', at, r);
  own.forEach((s, j) => checkSubject(s, [...at, 'data_subjects', j], r));
  const dataSubjects = [...new Set([...datasetSubjects, ...own])];

  const { meta, at: metaAt } = metaOf(c, at, r);
  let erasure: Erasure | undefined;
  const override = meta['masking_strategy_override'];
  if (override !== undefined && override !== null) {
    if (isObj(override) && override['strategy'] === 'delete') erasure = { strategy: 'delete_row' };
    else r.error([...metaAt, 'masking_strategy_override'], 'a collection masking_strategy_override must be { strategy: delete }');
  }
  if (meta['skip_processing'] === true) r.warning([...metaAt, 'skip_processing'], 'fides_meta.skip_processing is not kept: leave the collection out of the data map, or give its fields erasure strategy retain');
  dropped(meta, metaAt, new Set(['masking_strategy_override', 'skip_processing']), DROPPED_COLLECTION_META, r, 'collection fides_meta');
  const ext = readCollectionExtension(c, [...at, 'custodian'], r);
  if (ext.erasure !== undefined) erasure = ext.erasure;
  dropped(c, at, new Set(['name', 'description', 'data_subjects', 'fields', 'fides_meta', 'fidesops_meta', 'custodian']), DROPPED_COLLECTION_KEYS, r, 'collection');

  const fields = readFields(c, at, r, 'collection');
  if (name === undefined) return undefined;
  return {
    name,
    ...(description !== undefined ? { description } : {}),
    dataSubjects,
    purposes: ext.purposes,
    ...(erasure !== undefined ? { erasure } : {}),
    retention: ext.retention,
    fields,
  };
}

function readName(o: Obj, at: Path, r: Reporter, what: string): string | undefined {
  const name = optString(o, 'name', at, r);
  if (name === undefined) {
    r.error(at, `a ${what} needs a name`);
    return undefined;
  }
  if (!NAME_PATTERN.test(name) || name.length > 128) r.error([...at, 'name'], `${what} name ${JSON.stringify(name)} is not supported: use letters, digits, _, $ and -`);
  return name;
}

function readFields(o: Obj, at: Path, r: Reporter, parent: 'collection' | 'field'): Field[] {
  const raw = o['fields'];
  if (raw === undefined || raw === null) {
    if (parent === 'collection') r.error(at, 'a collection needs a non-empty fields list');
    return [];
  }
  if (!Array.isArray(raw) || (parent === 'collection' && raw.length === 0)) {
    r.error([...at, 'fields'], parent === 'collection' ? 'a collection needs a non-empty fields list' : 'fields must be a list');
    return [];
  }
  const out: Field[] = [];
  const names = new Set<string>();
  raw.forEach((f, i) => {
    const field = readField(f, [...at, 'fields', i], r);
    if (field === undefined) return;
    if (names.has(field.name)) r.error([...at, 'fields', i, 'name'], `field ${field.name} is declared twice`);
    names.add(field.name);
    out.push(field);
  });
  return out;
}

function readField(f: unknown, at: Path, r: Reporter): Field | undefined {
  if (!isObj(f)) {
    r.error(at, 'a field must be a mapping');
    return undefined;
  }
  const name = readName(f, at, r, 'field');
  const description = optString(f, 'description', at, r);
  const dataCategories = stringList(f, 'data_categories', at, r);
  dataCategories.forEach((c, j) => {
    const cAt = [...at, 'data_categories', j];
    if (!TAXONOMY_KEY_PATTERN.test(c)) r.error(cAt, `data category ${c} is not a taxonomy key`);
    else if (!isDataCategory(c)) r.warning(cAt, unknownMessage('data category', c, closestTaxonomyKeys(c, 'data_category')));
  });

  const { meta, at: metaAt } = metaOf(f, at, r);
  const identity = optString(meta, 'identity', metaAt, r);
  if (identity !== undefined && !IDENTITY_PATTERN.test(identity)) r.error([...metaAt, 'identity'], `identity ${identity} must be email, phone_number, user_id or a custom lower-case identifier`);
  const primaryKey = optBool(meta, 'primary_key', metaAt, r);
  const dataType = optString(meta, 'data_type', metaAt, r);
  let length: number | undefined;
  if (meta['length'] !== undefined && meta['length'] !== null) {
    const v = meta['length'];
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) length = v;
    else r.error([...metaAt, 'length'], 'length must be a positive integer');
  }
  const references = readReferences(meta, metaAt, r);
  let erasure = readFieldOverride(meta, metaAt, r);
  dropped(meta, metaAt, new Set(['identity', 'primary_key', 'data_type', 'length', 'references', 'masking_strategy_override']), DROPPED_FIELD_META, r, 'field fides_meta');

  const ext = readFieldExtension(f, [...at, 'custodian'], r);
  if (ext.erasure !== undefined) erasure = ext.erasure;
  dropped(f, at, new Set(['name', 'description', 'data_categories', 'fides_meta', 'fidesops_meta', 'fields', 'custodian']), DROPPED_FIELD_KEYS, r, 'field');
  const fields = readFields(f, at, r, 'field');
  if (name === undefined) return undefined;
  return {
    name,
    ...(description !== undefined ? { description } : {}),
    dataCategories,
    ...(identity !== undefined ? { identity } : {}),
    ...(ext.indexed !== undefined ? { indexed: ext.indexed } : {}),
    ...(primaryKey !== undefined ? { primaryKey } : {}),
    ...(dataType !== undefined ? { dataType } : {}),
    ...(length !== undefined ? { length } : {}),
    references,
    ...(erasure !== undefined ? { erasure } : {}),
    fields,
  };
}

function readReferences(meta: Obj, metaAt: Path, r: Reporter): Reference[] {
  const raw = meta['references'];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    r.error([...metaAt, 'references'], 'references must be a list');
    return [];
  }
  const out: Reference[] = [];
  raw.forEach((ref, i) => {
    const at = [...metaAt, 'references', i];
    if (!isObj(ref) || typeof ref['dataset'] !== 'string' || typeof ref['field'] !== 'string') {
      r.error(at, 'a reference needs dataset and field');
      return;
    }
    const dataset = ref['dataset'];
    const field = ref['field'];
    if (!KEY_PATTERN.test(dataset)) r.error([...at, 'dataset'], `dataset ${dataset} is not a Custodian dataset key`);
    if (!/^[^.\s]+(?:\.[^.\s]+)+$/.test(field)) r.error([...at, 'field'], `field ${field} must be <collection>.<field>[.<subfield>…]`);
    const direction = ref['direction'];
    if (direction !== undefined && direction !== null && direction !== 'to' && direction !== 'from') r.error([...at, 'direction'], 'direction must be to or from');
    for (const k of Object.keys(ref)) if (!['dataset', 'field', 'direction'].includes(k)) r.warning([...at, k], `${k} is not a reference key and is not kept`);
    out.push({ field: `${dataset}.${field}`, ...(direction === 'to' || direction === 'from' ? { direction } : {}) });
  });
  return out;
}

/**
 * Maps a field-level masking_strategy_override to an erasure strategy: null_rewrite → null, string_rewrite →
 * mask with its rewrite_value, hmac and hash → hash (Custodian's hash is keyed). Other strategies have no
 * equivalent and are warned about; configuration Custodian does not use is warned about.
 */
function readFieldOverride(meta: Obj, metaAt: Path, r: Reporter): Erasure | undefined {
  const o = meta['masking_strategy_override'];
  if (o === undefined || o === null) return undefined;
  const at = [...metaAt, 'masking_strategy_override'];
  if (!isObj(o) || typeof o['strategy'] !== 'string') {
    r.error(at, 'masking_strategy_override needs a strategy');
    return undefined;
  }
  const strategy = o['strategy'];
  const config = isObj(o['configuration']) ? o['configuration'] : {};
  const unused = (keep: readonly string[]) => {
    for (const k of Object.keys(config)) {
      if (!keep.includes(k)) r.warning([...at, 'configuration', k], `masking configuration ${k} of ${strategy} is not kept`);
    }
  };
  switch (strategy) {
    case 'null_rewrite':
      unused([]);
      return { strategy: 'null' };
    case 'string_rewrite': {
      const value = config['rewrite_value'];
      if (typeof value !== 'string' && typeof value !== 'number') {
        r.warning(at, 'string_rewrite without a rewrite_value is not kept');
        return undefined;
      }
      unused(['rewrite_value']);
      return { strategy: 'mask', value: String(value) };
    }
    case 'hmac':
    case 'hash':
      unused([]);
      return { strategy: 'hash' };
    default:
      r.warning([...at, 'strategy'], `masking strategy ${strategy} has no Custodian equivalent and is not kept: the collection's erasure strategy applies`);
      return undefined;
  }
}

function readErasureExtension(v: unknown, at: Path, r: Reporter): Erasure | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v) || typeof v['strategy'] !== 'string') {
    r.error(at, 'custodian.erasure needs a strategy');
    return undefined;
  }
  const s = v['strategy'];
  if (s === 'delete_row' || s === 'null' || s === 'hash') return { strategy: s };
  if (s === 'mask') return { strategy: 'mask', value: optString(v, 'value', at, r) ?? '' };
  if (s === 'retain') {
    // The legal basis is checked against the manifest schema afterwards (schemaCheck).
    const legalBasis = optString(v, 'legal_basis', at, r) as Extract<Erasure, { strategy: 'retain' }>['legalBasis'];
    return { strategy: 'retain', legalBasis, reason: optString(v, 'reason', at, r) ?? '', retention: optString(v, 'retention', at, r) ?? '' };
  }
  r.error([...at, 'strategy'], `erasure strategy ${s} must be delete_row, null, mask, hash or retain`);
  return undefined;
}

function readFieldExtension(f: Obj, at: Path, r: Reporter): { indexed?: boolean; erasure?: Erasure } {
  const ext = f['custodian'];
  if (ext === undefined || ext === null) return {};
  if (!isObj(ext)) {
    r.error(at, 'custodian must be a mapping');
    return {};
  }
  for (const k of Object.keys(ext)) if (k !== 'indexed' && k !== 'erasure') r.warning([...at, k], `custodian.${k} is not a field extension key and is not kept`);
  const indexed = optBool(ext, 'indexed', at, r);
  const erasure = readErasureExtension(ext['erasure'], [...at, 'erasure'], r);
  return { ...(indexed !== undefined ? { indexed } : {}), ...(erasure !== undefined ? { erasure } : {}) };
}

function readCollectionExtension(c: Obj, at: Path, r: Reporter): { purposes: string[]; retention: RetentionRule[]; erasure?: Erasure } {
  const ext = c['custodian'];
  if (ext === undefined || ext === null) return { purposes: [], retention: [] };
  if (!isObj(ext)) {
    r.error(at, 'custodian must be a mapping');
    return { purposes: [], retention: [] };
  }
  for (const k of Object.keys(ext)) if (!['purposes', 'retention', 'erasure'].includes(k)) r.warning([...at, k], `custodian.${k} is not a collection extension key and is not kept`);
  const purposes = stringList(ext, 'purposes', at, r);
  const retention: RetentionRule[] = [];
  const rules = ext['retention'];
  if (rules !== undefined && rules !== null) {
    if (!Array.isArray(rules)) r.error([...at, 'retention'], 'custodian.retention must be a list');
    else {
      rules.forEach((rule, i) => {
        const rAt = [...at, 'retention', i];
        if (!isObj(rule)) {
          r.error(rAt, 'a retention rule must be a mapping');
          return;
        }
        const fields = rule['fields'];
        const description = optString(rule, 'description', rAt, r);
        retention.push({
          field: optString(rule, 'field', rAt, r) ?? '',
          period: optString(rule, 'period', rAt, r) ?? '',
          action: rule['action'] === 'anonymise' ? 'anonymise' : (rule['action'] as 'delete' | undefined) ?? 'delete',
          ...(fields !== undefined && fields !== null ? { fields: stringList(rule, 'fields', rAt, r) } : {}),
          ...(description !== undefined ? { description } : {}),
        });
      });
    }
  }
  const erasure = readErasureExtension(ext['erasure'], [...at, 'erasure'], r);
  return { purposes, retention, ...(erasure !== undefined ? { erasure } : {}) };
}

/**
 * Checks a converted dataset against the manifest schema (lengths, legal bases, periods, …), so only datasets a
 * manifest accepts are returned. Issue paths point at the fideslang input: collections and fields are converted
 * one-to-one and in order when no error was found, so indexes carry over.
 */
function schemaCheck(dataset: Dataset, at: Path): RawIssue[] {
  const parsed = manifestSchema.safeParse({ version: 1, organization: { name: 'import' }, systems: [{ key: 'import', name: 'import', owner: 'import', datasets: [dataset] }] });
  if (parsed.success) return [];
  return parsed.error.issues.map((i) => {
    const rest = i.path.slice(4).map((p) => (typeof p === 'symbol' ? String(p) : p));
    const out: Array<string | number> = [...at];
    const suffix: string[] = [];
    for (let k = 0; k < rest.length; k++) {
      const step = rest[k]!;
      const next = rest[k + 1];
      if ((step === 'collections' || step === 'fields') && typeof next === 'number' && suffix.length === 0) {
        out.push(step, next);
        k++;
      } else suffix.push(String(step));
    }
    return { severity: 'error' as const, at: out, message: `${suffix.length > 0 ? `${suffix.join('.')}: ` : ''}${i.message}` };
  });
}

/**
 * Writes manifest datasets as fideslang dataset YAML (`dataset:` list, snake_case keys, `fides_meta`), the format
 * Fides reads. What fideslang cannot express goes under `custodian:` (see the module comment), so that
 * `importFides(exportFides(datasets)).datasets` deep-equals `datasets`.
 */
export function exportFides(datasets: readonly Dataset[]): string {
  const doc = new Document({ dataset: datasets.map(datasetToFides) });
  // Lists of keys in flow style, like the files Fides writes: data_categories: [user.contact.email]
  visit(doc, {
    Seq(_key, node) {
      if (node.items.length > 0 && node.items.every((item) => isScalar(item) && typeof item.value === 'string' && TAXONOMY_KEY_PATTERN.test(item.value))) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0, indentSeq: true });
}

function datasetToFides(d: Dataset): Obj {
  return {
    fides_key: d.key,
    ...(d.name !== undefined ? { name: d.name } : {}),
    ...(d.description !== undefined ? { description: d.description } : {}),
    collections: d.collections.map(collectionToFides),
  };
}

function erasureToExtension(e: Erasure): Obj {
  switch (e.strategy) {
    case 'mask':
      return { strategy: 'mask', value: e.value };
    case 'retain':
      return { strategy: 'retain', legal_basis: e.legalBasis, reason: e.reason, retention: e.retention };
    default:
      return { strategy: e.strategy };
  }
}

function collectionToFides(c: Collection): Obj {
  const ext: Obj = {};
  if (c.purposes.length > 0) ext['purposes'] = [...c.purposes];
  if (c.retention.length > 0) {
    ext['retention'] = c.retention.map((rule) => ({
      field: rule.field,
      period: rule.period,
      action: rule.action,
      ...(rule.fields !== undefined ? { fields: [...rule.fields] } : {}),
      ...(rule.description !== undefined ? { description: rule.description } : {}),
    }));
  }
  const meta: Obj = {};
  if (c.erasure?.strategy === 'delete_row') meta['masking_strategy_override'] = { strategy: 'delete' };
  else if (c.erasure !== undefined) ext['erasure'] = erasureToExtension(c.erasure);
  return {
    name: c.name,
    ...(c.description !== undefined ? { description: c.description } : {}),
    ...(c.dataSubjects.length > 0 ? { data_subjects: [...c.dataSubjects] } : {}),
    ...(Object.keys(meta).length > 0 ? { fides_meta: meta } : {}),
    ...(Object.keys(ext).length > 0 ? { custodian: ext } : {}),
    fields: c.fields.map(fieldToFides),
  };
}

function fieldToFides(f: Field): Obj {
  const meta: Obj = {};
  if (f.identity !== undefined) meta['identity'] = f.identity;
  if (f.primaryKey !== undefined) meta['primary_key'] = f.primaryKey;
  if (f.dataType !== undefined) meta['data_type'] = f.dataType;
  if (f.length !== undefined) meta['length'] = f.length;
  if (f.references.length > 0) {
    meta['references'] = f.references.map((ref) => {
      const dot = ref.field.indexOf('.');
      return { dataset: ref.field.slice(0, dot), field: ref.field.slice(dot + 1), ...(ref.direction !== undefined ? { direction: ref.direction } : {}) };
    });
  }
  const ext: Obj = {};
  if (f.indexed !== undefined) ext['indexed'] = f.indexed;
  const e = f.erasure;
  if (e?.strategy === 'null') meta['masking_strategy_override'] = { strategy: 'null_rewrite' };
  else if (e?.strategy === 'mask') meta['masking_strategy_override'] = { strategy: 'string_rewrite', configuration: { rewrite_value: e.value } };
  else if (e?.strategy === 'hash') meta['masking_strategy_override'] = { strategy: 'hmac' };
  else if (e !== undefined) ext['erasure'] = erasureToExtension(e);
  return {
    name: f.name,
    ...(f.description !== undefined ? { description: f.description } : {}),
    ...(f.dataCategories.length > 0 ? { data_categories: [...f.dataCategories] } : {}),
    ...(Object.keys(meta).length > 0 ? { fides_meta: meta } : {}),
    ...(Object.keys(ext).length > 0 ? { custodian: ext } : {}),
    ...(f.fields.length > 0 ? { fields: f.fields.map(fieldToFides) } : {}),
  };
}
