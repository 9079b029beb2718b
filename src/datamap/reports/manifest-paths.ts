import type { Collection, Dataset, Party, Purpose, System } from '../manifest.js';
import type { CollectionEntry, DataMap, FieldEntry } from '../model.js';

/*
 * Manifest paths, the form every report row carries in `sources` so a reader can find the declaration it came
 * from: elements with a key or name are named by it (`systems[crm].datasets[crm_db].collections[contacts]`),
 * the others by index (`systems[crm].recipients[0]`). The same convention as validation issues.
 */

export const ORGANIZATION_PATH = 'organization';

export function purposePath(p: Purpose): string {
  return `purposes[${p.key}]`;
}

export function systemPath(s: System): string {
  return `systems[${s.key}]`;
}

export function datasetPath(s: System, d: Dataset): string {
  return `${systemPath(s)}.datasets[${d.key}]`;
}

export function collectionPath(s: System, d: Dataset, c: Collection): string {
  return `${datasetPath(s, d)}.collections[${c.name}]`;
}

export function collectionEntryPath(e: CollectionEntry): string {
  return collectionPath(e.system, e.dataset, e.collection);
}

export function fieldPath(f: FieldEntry): string {
  return `${collectionPath(f.system, f.dataset, f.collection)}${f.path.map((n) => `.fields[${n}]`).join('')}`;
}

export function recipientPath(s: System, index: number): string {
  return `${systemPath(s)}.recipients[${index}]`;
}

export function transferPath(s: System, index: number): string {
  return `${systemPath(s)}.transfers[${index}]`;
}

/** The collections, systems and recipients that serve one purpose. */
export interface PurposeScope {
  /**
   * Collections serving the purpose: those listing it in `purposes`, and those listing no purpose in a system
   * that lists it (a collection inherits its system's purposes unless it declares its own).
   */
  readonly collections: readonly CollectionEntry[];
  /** Systems listing the purpose, or holding a collection that serves it; declaration order. */
  readonly systems: readonly System[];
  /**
   * Recipients receiving data for the purpose: those listing it, and those listing no purpose on a system in
   * scope (a recipient without purposes receives for every purpose of its system).
   */
  readonly recipients: readonly { readonly system: System; readonly index: number; readonly party: Party }[];
}

/** Whether a collection serves `purpose` under the inheritance rule of {@link PurposeScope}. */
export function collectionServes(e: CollectionEntry, purpose: string): boolean {
  return e.collection.purposes.includes(purpose) || (e.collection.purposes.length === 0 && e.system.purposes.includes(purpose));
}

/** What serves `purpose`, in declaration order. O(systems + collections + recipients). */
export function purposeScope(map: DataMap, purpose: string): PurposeScope {
  const collections = map.collections().filter((e) => collectionServes(e, purpose));
  const systemKeys = new Set<string>([...map.systems.filter((s) => s.purposes.includes(purpose)).map((s) => s.key), ...collections.map((e) => e.system.key)]);
  const systems = map.systems.filter((s) => systemKeys.has(s.key));
  const recipients = map.systems.flatMap((system) =>
    system.recipients.flatMap((party, index) => (party.purposes.includes(purpose) || (party.purposes.length === 0 && systemKeys.has(system.key)) ? [{ system, index, party }] : [])),
  );
  return { collections, systems, recipients };
}

/** Values in first-seen order without repeats. */
export function unique<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}
