import type { System } from '../datamap/manifest.js';
import type { ScanReport } from './scan.js';

/** A personal-data column the manifest does not declare. */
export interface UndeclaredColumn {
  readonly collection: string;
  readonly field: string;
  readonly category: string;
  readonly confidence: number;
  /** `missing`: no such field in the manifest; `no_categories`: declared with no data category at all. */
  readonly reason: 'missing' | 'no_categories';
  /** The dataset the field should be declared in: the one declaring the collection, if any. */
  readonly dataset: string | null;
}

/** A declared field (or whole collection) that the database no longer has. */
export interface VanishedField {
  /** `<dataset>.<collection>.<field>`, or `<dataset>.<collection>` when the table is gone. */
  readonly address: string;
  readonly dataset: string;
  readonly collection: string;
  readonly field: string | null;
}

/** A declared field whose categories do not cover what the scanner found: a warning, not drift. */
export interface CategoryMismatch {
  readonly address: string;
  readonly declared: readonly string[];
  readonly found: string;
  readonly confidence: number;
}

/** The comparison of a fresh scan with a system's declaration. */
export interface DriftReport {
  readonly system: string;
  readonly url: string;
  readonly undeclared: readonly UndeclaredColumn[];
  readonly vanished: readonly VanishedField[];
  readonly mismatched: readonly CategoryMismatch[];
  /** No undeclared personal column and nothing vanished. */
  readonly ok: boolean;
}

/** Options of {@link compareWithManifest}. */
export interface DriftOptions {
  /** Findings below this confidence are ignored (default 0.5: every finding). */
  readonly minConfidence?: number | undefined;
}

/** `a` equals `b`, or one is an ancestor of the other in the taxonomy (`user.contact` ~ `user.contact.email`). */
function related(a: string, b: string): boolean {
  return a === b || a.startsWith(b + '.') || b.startsWith(a + '.');
}

/**
 * Compares a fresh scan of a system's database with the system's datasets in the manifest — the privacy
 * gate of a team's CI. A table matches a collection of the same name in any of the system's datasets (exact
 * name first, then ignoring case, as PostgreSQL folds unquoted names); a column matches a top-level field.
 *
 * - undeclared: a column the scanner judges personal that no dataset declares, or declares with no data
 *   category (declaring any category — even `system.operations` — records that a person looked at it);
 * - vanished: a declared top-level field whose column, or a declared collection whose table, is gone;
 * - mismatched (warning only): declared categories unrelated to the one found.
 *
 * O(columns + declared fields).
 */
export function compareWithManifest(report: ScanReport, system: System, options: DriftOptions = {}): DriftReport {
  const minConfidence = options.minConfidence ?? 0.5;
  interface Declared {
    dataset: string;
    collection: string;
    fields: Map<string, readonly string[]>;
  }
  const declared: Declared[] = system.datasets.flatMap((d) =>
    d.collections.map((c) => ({ dataset: d.key, collection: c.name, fields: new Map(c.fields.map((f) => [f.name, f.dataCategories])) })),
  );
  const findCollections = (table: string): Declared[] => {
    const exact = declared.filter((d) => d.collection === table);
    return exact.length > 0 ? exact : declared.filter((d) => d.collection.toLowerCase() === table.toLowerCase());
  };
  const undeclared: UndeclaredColumn[] = [];
  const mismatched: CategoryMismatch[] = [];
  for (const table of report.tables) {
    const colls = findCollections(table.name);
    for (const column of table.columns) {
      const f = column.finding;
      if (f === null || f.confidence < minConfidence) continue;
      let categories: readonly string[] | undefined;
      let where: Declared | undefined;
      for (const c of colls) {
        const cats = c.fields.get(column.name) ?? [...c.fields.entries()].find(([n]) => n.toLowerCase() === column.name.toLowerCase())?.[1];
        if (cats !== undefined && (categories === undefined || cats.length > categories.length)) {
          categories = cats;
          where = c;
        }
      }
      if (categories === undefined || categories.length === 0) {
        undeclared.push({
          collection: table.name,
          field: column.name,
          category: f.category,
          confidence: f.confidence,
          reason: categories === undefined ? 'missing' : 'no_categories',
          dataset: where?.dataset ?? colls[0]?.dataset ?? null,
        });
      } else if (!categories.some((c) => related(c, f.category))) {
        mismatched.push({ address: `${where!.dataset}.${where!.collection}.${column.name}`, declared: categories, found: f.category, confidence: f.confidence });
      }
    }
  }
  const tables = new Map(report.tables.map((t) => [t.name, t]));
  const tablesLower = new Map(report.tables.map((t) => [t.name.toLowerCase(), t]));
  const vanished: VanishedField[] = [];
  for (const d of declared) {
    const table = tables.get(d.collection) ?? tablesLower.get(d.collection.toLowerCase());
    if (table === undefined) {
      vanished.push({ address: `${d.dataset}.${d.collection}`, dataset: d.dataset, collection: d.collection, field: null });
      continue;
    }
    const columns = new Set(table.columns.map((c) => c.name));
    const columnsLower = new Set(table.columns.map((c) => c.name.toLowerCase()));
    for (const field of d.fields.keys()) {
      if (columns.has(field) || columnsLower.has(field.toLowerCase())) continue;
      vanished.push({ address: `${d.dataset}.${d.collection}.${field}`, dataset: d.dataset, collection: d.collection, field });
    }
  }
  return { system: system.key, url: report.url, undeclared, vanished, mismatched, ok: undeclared.length === 0 && vanished.length === 0 };
}
