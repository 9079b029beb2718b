import { isDeepStrictEqual } from 'node:util';
import type { Field, Manifest } from './manifest.js';

/** One change between two manifest versions, addressed like the manifest's readable paths. */
export interface ManifestChange {
  readonly kind: 'added' | 'removed' | 'changed';
  /** `organization`, `purposes[key]`, `systems[key]`, `datasets[key]`, `collections[ds.coll]`, `fields[ds.coll.field]`. */
  readonly path: string;
  /** For `changed`: the properties that differ (nested fields and collections are reported on their own). */
  readonly properties?: readonly string[];
}

/** The difference between two manifests, as a list of changes and counts per kind. */
export interface ManifestDiff {
  readonly changes: readonly ManifestChange[];
  readonly counts: { readonly added: number; readonly removed: number; readonly changed: number };
}

/**
 * Compares two manifests entity by entity (organization, purposes, systems, datasets, collections, fields),
 * matching by key or name, so that reordering is not a change and a field edit is one line, not a new system.
 */
export function diffManifests(before: Manifest | undefined, after: Manifest): ManifestDiff {
  const changes: ManifestChange[] = [];
  const compare = <T extends object>(path: string, a: T | undefined, b: T | undefined, ignore: readonly string[] = []) => {
    if (a === undefined && b === undefined) return;
    if (a === undefined) return void changes.push({ kind: 'added', path });
    if (b === undefined) return void changes.push({ kind: 'removed', path });
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !ignore.includes(k)).sort();
    const properties = keys.filter((k) => !isDeepStrictEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
    if (properties.length > 0) changes.push({ kind: 'changed', path, properties });
  };
  const byKey = <T>(items: readonly T[], key: (t: T) => string) => new Map(items.map((i) => [key(i), i]));
  const each = <T>(a: ReadonlyMap<string, T>, b: ReadonlyMap<string, T>, fn: (k: string, x: T | undefined, y: T | undefined) => void) => {
    for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) fn(k, a.get(k), b.get(k));
  };

  compare('organization', before?.organization, after.organization);
  compare('version', before === undefined ? undefined : { version: before.version }, { version: after.version });
  each(byKey(before?.purposes ?? [], (p) => p.key), byKey(after.purposes, (p) => p.key), (k, a, b) => compare(`purposes[${k}]`, a, b));
  const datasetsOf = (m: Manifest | undefined) => new Map((m?.systems ?? []).flatMap((s) => s.datasets.map((d) => [d.key, d] as const)));
  each(byKey(before?.systems ?? [], (s) => s.key), byKey(after.systems, (s) => s.key), (k, a, b) => compare(`systems[${k}]`, a, b, ['datasets']));
  each(datasetsOf(before), datasetsOf(after), (dk, a, b) => {
    compare(`datasets[${dk}]`, a, b, ['collections']);
    each(byKey(a?.collections ?? [], (c) => c.name), byKey(b?.collections ?? [], (c) => c.name), (ck, x, y) => {
      compare(`collections[${dk}.${ck}]`, x, y, ['fields']);
      const flat = (fields: readonly Field[] | undefined, prefix: string, out = new Map<string, Field>()) => {
        for (const f of fields ?? []) {
          out.set(`${prefix}${f.name}`, f);
          flat(f.fields, `${prefix}${f.name}.`, out);
        }
        return out;
      };
      each(flat(x?.fields, ''), flat(y?.fields, ''), (fk, f, g) => compare(`fields[${dk}.${ck}.${fk}]`, f, g, ['fields']));
    });
  });
  const counts = { added: 0, removed: 0, changed: 0 };
  for (const c of changes) counts[c.kind]++;
  return { changes, counts };
}
