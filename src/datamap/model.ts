import type { Collection, Dataset, Erasure, Field, Manifest, Purpose, Reference, System } from './manifest.js';

/** A field with where it sits: `<dataset>.<collection>.<path>` is its address. */
export interface FieldEntry {
  readonly system: System;
  readonly dataset: Dataset;
  readonly collection: Collection;
  /** Field names from the collection down, e.g. `['address', 'city']`. */
  readonly path: readonly string[];
  readonly field: Field;
  /** `<dataset>.<collection>.<path joined by .>` */
  readonly address: string;
  /** The field's erasure strategy, or the collection's default, or undefined when neither declares one. */
  readonly erasure: Erasure | undefined;
}

/** A collection with where it sits: `<dataset>.<collection>` is its address. */
export interface CollectionEntry {
  readonly system: System;
  readonly dataset: Dataset;
  readonly collection: Collection;
  readonly address: string;
}

/** A reference between two fields, normalised: rows of `to` are found from values of `from`. */
export interface ReferenceEdge {
  /** Address of the field whose values are known first. */
  readonly from: string;
  /** Address of the field looked up with those values. */
  readonly to: string;
  /** Address of the field that declared the reference. */
  readonly declaredBy: string;
}

/**
 * The typed, queryable view of a validated manifest that other modules use ("fields with identity email",
 * "collections referencing X", "purposes needing consent"). Immutable; build a new one per manifest version.
 */
export class DataMap {
  readonly manifest: Manifest;
  readonly #fields: FieldEntry[] = [];
  readonly #byAddress = new Map<string, FieldEntry>();
  readonly #collections: CollectionEntry[] = [];
  readonly #collectionByAddress = new Map<string, CollectionEntry>();
  readonly #systemOfDataset = new Map<string, System>();

  constructor(manifest: Manifest) {
    this.manifest = manifest;
    for (const system of manifest.systems) {
      for (const dataset of system.datasets) {
        this.#systemOfDataset.set(dataset.key, system);
        for (const collection of dataset.collections) {
          const entry: CollectionEntry = { system, dataset, collection, address: `${dataset.key}.${collection.name}` };
          this.#collections.push(entry);
          this.#collectionByAddress.set(entry.address, entry);
          const walk = (fields: readonly Field[], prefix: readonly string[]) => {
            for (const field of fields) {
              const path = [...prefix, field.name];
              const f: FieldEntry = { system, dataset, collection, path, field, address: `${entry.address}.${path.join('.')}`, erasure: field.erasure ?? collection.erasure };
              this.#fields.push(f);
              this.#byAddress.set(f.address, f);
              walk(field.fields, path);
            }
          };
          walk(collection.fields, []);
        }
      }
    }
  }

  get purposes(): readonly Purpose[] {
    return this.manifest.purposes;
  }

  get systems(): readonly System[] {
    return this.manifest.systems;
  }

  purpose(key: string): Purpose | undefined {
    return this.manifest.purposes.find((p) => p.key === key);
  }

  system(key: string): System | undefined {
    return this.manifest.systems.find((s) => s.key === key);
  }

  /** The system a dataset belongs to. */
  systemOfDataset(datasetKey: string): System | undefined {
    return this.#systemOfDataset.get(datasetKey);
  }

  /** Every field, nested ones included, in declaration order. */
  fields(): readonly FieldEntry[] {
    return this.#fields;
  }

  /** Every collection, in declaration order. */
  collections(): readonly CollectionEntry[] {
    return this.#collections;
  }

  /** The field at `<dataset>.<collection>.<field>[.<sub>…]`. */
  field(address: string): FieldEntry | undefined {
    return this.#byAddress.get(address);
  }

  /** The collection at `<dataset>.<collection>`. */
  collection(address: string): CollectionEntry | undefined {
    return this.#collectionByAddress.get(address);
  }

  /** Fields marked with an identity (`email`, `phone_number`, `user_id`, custom); all of them without an argument. */
  identityFields(identity?: string): readonly FieldEntry[] {
    return this.#fields.filter((f) => f.field.identity !== undefined && (identity === undefined || f.field.identity === identity));
  }

  /** The identity kinds declared anywhere. */
  identityKinds(): readonly string[] {
    return [...new Set(this.#fields.flatMap((f) => (f.field.identity === undefined ? [] : [f.field.identity])))];
  }

  /** Fields carrying a data category equal to `category` or under it (`user.contact` matches `user.contact.email`). */
  fieldsWithCategory(category: string): readonly FieldEntry[] {
    return this.#fields.filter((f) => f.field.dataCategories.some((c) => c === category || c.startsWith(category + '.')));
  }

  /** Purposes whose processing needs a live grant: declared consentRequired, or legal basis consent. */
  purposesNeedingConsent(): readonly Purpose[] {
    return this.manifest.purposes.filter((p) => p.consentRequired ?? p.legalBasis === 'consent');
  }

  /**
   * Every reference as directed edges. A reference declared on field A to field B with direction `to` gives
   * A → B (A's values find rows of B); `from` gives B → A; no direction gives both.
   */
  referenceEdges(): readonly ReferenceEdge[] {
    const edges: ReferenceEdge[] = [];
    for (const f of this.#fields) {
      for (const r of f.field.references) edges.push(...edgesOf(f.address, r));
    }
    return edges;
  }

  /** Collections with a field that references (or is referenced by) a field of the collection at `address`. */
  collectionsReferencing(address: string): readonly CollectionEntry[] {
    const of = (fieldAddress: string) => this.#byAddress.get(fieldAddress);
    const found = new Set<string>();
    for (const e of this.referenceEdges()) {
      const a = of(e.from);
      const b = of(e.to);
      if (a === undefined || b === undefined) continue;
      const aColl = `${a.dataset.key}.${a.collection.name}`;
      const bColl = `${b.dataset.key}.${b.collection.name}`;
      if (bColl === address && aColl !== address) found.add(aColl);
      if (aColl === address && bColl !== address) found.add(bColl);
    }
    return [...found].map((c) => this.#collectionByAddress.get(c)!);
  }

  /** Categories of personal data declared on any field, sorted. */
  dataCategories(): readonly string[] {
    return [...new Set(this.#fields.flatMap((f) => f.field.dataCategories))].sort();
  }
}

function edgesOf(declaredBy: string, r: Reference): ReferenceEdge[] {
  if (r.direction === 'to') return [{ from: declaredBy, to: r.field, declaredBy }];
  if (r.direction === 'from') return [{ from: r.field, to: declaredBy, declaredBy }];
  return [
    { from: declaredBy, to: r.field, declaredBy },
    { from: r.field, to: declaredBy, declaredBy },
  ];
}
