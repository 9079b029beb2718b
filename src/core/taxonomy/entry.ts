/** One node of a fideslang taxonomy (data category, data use or data subject). */
export interface TaxonomyEntry {
  /** The dotted fides_key, e.g. `user.contact.email`. */
  readonly key: string;
  readonly name: string;
  readonly description: string;
  /** The parent's key: always the key minus its last segment; absent on roots. */
  readonly parent?: string;
  /** The fideslang version that deprecated this key; it stays valid, like in fideslang. */
  readonly deprecatedIn?: string;
  /** The key fideslang recommends instead of a deprecated one. */
  readonly replacedBy?: string;
}
