import { taxonomyEntry } from '../core/index.js';
import type { DataMap, FieldEntry } from '../datamap/index.js';

/** A field of the data map that a signed-in person may ask to have corrected (GDPR Art. 16), as the page offers it. */
export interface RectifiableField {
  /** The field's address, `<dataset>.<collection>.<field>`: the key of a correction. */
  readonly field: string;
  /** The data category the label comes from, e.g. `user.contact.email`. */
  readonly category: string;
  /** An English label derived from the category (fideslang's name, e.g. `Email`). */
  readonly categoryLabel: string;
  /** The field's description in the data map, when it has one (shown instead of the category label). */
  readonly description: string | null;
  /** The name of the system that holds the field, to tell apart fields with the same label. */
  readonly system: string;
}

/**
 * Data categories a person can correct themselves: what they told the controller about themselves. Not offered:
 * identifiers the system assigns (`user.unique_id`), credentials (`user.authorization`), observed or inferred data
 * (behaviour, device, location, telemetry) and special categories — those are corrected by the controller after
 * a conversation, not through a form.
 */
export const RECTIFIABLE_CATEGORY_ROOTS: readonly string[] = ['user.name', 'user.contact', 'user.demographic', 'user.workplace', 'user.job_title'];

const under = (category: string, root: string) => category === root || category.startsWith(`${root}.`);

/**
 * The fields the data map lets the signed-in person correct, in declaration order: top-level fields (what the
 * request engine can correct) that are not primary keys nor references to other fields (join keys), carry a
 * data category under {@link RECTIFIABLE_CATEGORY_ROOTS}, and sit in a collection where the person can be found —
 * one holding a field of one of `identityKinds` (the session's: `email`, and `user_id` when the application's
 * lookup found the person), or one reached from such a collection along references.
 * O(F + E) for F fields and E references.
 */
export function rectifiableFields(map: DataMap, identityKinds: readonly string[]): RectifiableField[] {
  const collectionOf = (f: FieldEntry) => `${f.dataset.key}.${f.collection.name}`;
  const reached = new Set(map.identityFields().filter((f) => identityKinds.includes(f.field.identity!)).map(collectionOf));
  // Breadth-first along references: rows of `to` are found from values of `from` (the request planner's direction).
  const edges = new Map<string, string[]>();
  for (const e of map.referenceEdges()) {
    const from = map.field(e.from);
    const to = map.field(e.to);
    if (from === undefined || to === undefined) continue;
    const list = edges.get(collectionOf(from)) ?? [];
    list.push(collectionOf(to));
    edges.set(collectionOf(from), list);
  }
  const queue = [...reached];
  for (let i = 0; i < queue.length; i++) {
    for (const next of edges.get(queue[i]!) ?? []) {
      if (!reached.has(next)) {
        reached.add(next);
        queue.push(next);
      }
    }
  }
  const out: RectifiableField[] = [];
  for (const f of map.fields()) {
    if (f.path.length !== 1 || f.field.primaryKey === true || f.field.references.length > 0 || !reached.has(collectionOf(f))) continue;
    const category = f.field.dataCategories.find((c) => RECTIFIABLE_CATEGORY_ROOTS.some((root) => under(c, root)));
    if (category === undefined) continue;
    out.push({ field: f.address, category, categoryLabel: categoryLabel(category), description: f.field.description ?? null, system: f.system.name });
  }
  return out;
}

/** fideslang's name of a category without its "User Contact" / "User" prefix (`User Contact Email` → `Email`); the last segment for unknown keys. */
export function categoryLabel(category: string): string {
  const name = taxonomyEntry('data_category', category)?.name;
  if (name !== undefined) return name.replace(/^User (?:Contact )?/, '');
  const last = category.slice(category.lastIndexOf('.') + 1).replace(/_/g, ' ');
  return last.charAt(0).toUpperCase() + last.slice(1);
}
