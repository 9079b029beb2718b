import type { CollectionTarget } from '../connectors/data/data-connector.js';
import type { CollectionEntry, DataMap, Erasure, Field, FieldEntry, ReferenceEdge } from '../datamap/index.js';

/**
 * Request planning: from the identities a person gives to every collection of the data map that holds their
 * rows, in an order where each lookup runs after the lookups it takes values from (docs/requests.md (Planning)).
 *
 * The planner is pure: it reads the {@link DataMap} and never touches a system. A plan holds no personal data
 * (identity kinds only, never values), so it can be stored and logged as it is.
 */

/** The two requests a plan serves: GDPR Art. 15 (access) and Art. 17 (erasure). */
export type RequestKind = 'access' | 'erasure';

/**
 * Whose rows a reference reaches (docs/datamap.md, References). `owner`: the subject's own rows. `shared`: rows
 * other subjects may refer to as well (an address two customers share). `mention`: someone else's rows that
 * only mention the subject (a ticket an employee handled).
 */
export type Ownership = 'owner' | 'shared' | 'mention';

/** Identity values by identity kind, e.g. `{ email: ['ada@example.com'] }`. */
export type IdentityValues = Readonly<Record<string, readonly string[]>>;

/** Where the values of a lookup come from. */
export type LookupSource =
  | { readonly kind: 'identity'; readonly identity: string }
  | {
      readonly kind: 'field';
      /** Address of the collection whose rows provide the values (an earlier step). */
      readonly collection: string;
      /** Top-level field name read from those rows. */
      readonly field: string;
      /** `<dataset>.<collection>.<field>` */
      readonly address: string;
    };

/** One way a step finds rows: the field it matches and where the matched values come from. */
export interface Lookup {
  /** Top-level field of the step's collection that is matched (exactly) against the values. */
  readonly field: string;
  /** Address of that field. */
  readonly address: string;
  readonly source: LookupSource;
  /** Key of the source's values in an execution context: `identity:<kind>` or the source field's address. */
  readonly sourceKey: string;
  /** Whose rows this lookup finds: identities always find the subject's own rows. */
  readonly ownership: Ownership;
  /** Address of the field that declares the reference (field lookups only). */
  readonly declaredBy?: string;
  /**
   * Where the declaring field lives (field lookups only): for `shared` rows, the executor counts the rows that
   * still refer to a shared row through this field before erasing it.
   */
  readonly referrer?: { readonly collection: string; readonly system: string; readonly field: string; readonly target: CollectionTarget };
}

/** A declared field and its nested fields: what access shows of a row. */
export interface FieldShape {
  readonly name: string;
  readonly fields: readonly FieldShape[];
}

/** What erasure does to one field; `none` says why nothing can be done (see {@link Plan.problems}). */
export type FieldAction =
  | { readonly action: 'delete_row' }
  | { readonly action: 'null' }
  | { readonly action: 'mask'; readonly value: string }
  | { readonly action: 'hash' }
  | { readonly action: 'retain'; readonly legalBasis: string; readonly reason: string; readonly retention: string }
  | { readonly action: 'none'; readonly reason: string };

/** A {@link FieldAction} with the field it applies to (`field` is the path from the collection, joined by `.`). */
export type FieldErasure = FieldAction & { readonly field: string; readonly address: string };

/** How erasure treats the rows of one step. */
export interface StepErasure {
  /**
   * The subject's own rows (and shared rows nobody else refers to any more): `delete` when a field says
   * `delete_row` (and none says `retain`), `update` when fields are nulled, masked or hashed, `keep` otherwise.
   */
  readonly row: 'delete' | 'update' | 'keep';
  /** Every declared field with its action, nested fields included. */
  readonly fields: readonly FieldErasure[];
  /** Per field matched by a `mention` lookup: the only change rows found through it get. */
  readonly mention: readonly FieldErasure[];
}

/** One collection of the plan with its lookups. */
export interface PlanStep {
  /** `<dataset>.<collection>` */
  readonly collection: string;
  readonly system: string;
  readonly dataset: string;
  /** What a connector needs to reach the collection. */
  readonly target: CollectionTarget;
  /** The single primary key field, when the collection declares exactly one. */
  readonly primaryKey: string | undefined;
  /** Declared top-level fields: the only ones read (and shown to the subject). */
  readonly fields: readonly string[];
  /** Declared fields with their nested fields: rows are projected on this shape. */
  readonly shape: readonly FieldShape[];
  readonly lookups: readonly Lookup[];
  /** Top-level fields whose values later lookups need (read from the subject's own rows only). */
  readonly provides: readonly string[];
  /** Collections this step takes values from (itself excluded). */
  readonly after: readonly string[];
  /** Index of the step's strongly connected component in the lookup graph; steps of a group are adjacent. */
  readonly group: number;
  /** The step sits on a cycle of lookups: it may run again when new values arrive, until a fixed point. */
  readonly cyclic: boolean;
  /** Erasure plans only. */
  readonly erasure?: StepErasure;
}

/** A declared collection no lookup reaches, and why. */
export interface UnreachableCollection {
  readonly collection: string;
  readonly system: string;
  readonly reason: string;
}

export type PlanProblemCode =
  | 'unknown_identity'
  | 'unknown_reference'
  | 'nested_lookup'
  | 'no_primary_key'
  | 'composite_primary_key'
  | 'strategy_on_primary_key'
  | 'strategy_on_nested_field'
  | 'nested_field_change'
  | 'retain_conflict'
  | 'retained_reference'
  | 'mention_delete_row'
  | 'shared_without_referrer'
  | 'erasure_cycle';

/** Something the plan cannot do as the data map says; found at planning time, never personal data. */
export interface PlanProblem {
  readonly code: PlanProblemCode;
  readonly collection?: string;
  readonly field?: string;
  readonly message: string;
}

/** A reference field nulled before its system's rows are deleted, to cut a cycle of foreign keys. */
export interface ErasureCut {
  readonly collection: string;
  readonly field: string;
  readonly address: string;
}

/** A plan: steps in execution order and, for erasure, the order in which rows change. */
export interface Plan {
  readonly kind: RequestKind;
  /** Identity kinds the plan starts from (values are given to the executor, never stored in the plan). */
  readonly identities: readonly string[];
  /** In execution order: every step after the steps it takes values from (cycles: see {@link PlanStep.cyclic}). */
  readonly steps: readonly PlanStep[];
  /** Erasure: collections in the order rows change; holders of a reference before the collection they reference. */
  readonly erasureSequence: readonly string[];
  /** {@link erasureSequence} per system. */
  readonly erasureOrder: readonly { readonly system: string; readonly collections: readonly string[] }[];
  /** Erasure: reference fields nulled first to cut foreign-key cycles (validation requires such a field). */
  readonly cuts: readonly ErasureCut[];
  readonly unreachable: readonly UnreachableCollection[];
  readonly problems: readonly PlanProblem[];
}

/**
 * Plans an access or erasure request from the identity kinds in `identities` (their values are not read).
 *
 * Traversal: every field whose `identity` is one of the kinds starts a lookup; every reference edge `from → to`
 * (values of `from` find rows of `to`) leads on, across systems, from collections whose own rows were found
 * (an identity or an `owner` reference). Rows found through `shared` or `mention` references belong to others
 * too, so nothing is followed from them: that would reach other subjects.
 *
 * Order: strongly connected components of the lookup graph (Tarjan), then a topological order of their
 * condensation (Kahn, deterministic: seeded in declaration order); a component of more than one step, or with a self reference,
 * is cyclic and iterates to a fixed point at execution. Erasure order: for every reference between planned
 * collections, the declaring collection (holding the foreign key) before the referenced one; cycles are cut at
 * a reference field whose strategy is `null` (nulled first), otherwise reported.
 *
 * Complexity: O(V + E + F) time and space for V collections, E references and F fields.
 *
 * @example
 * const plan = planRequest(map, { email: ['ada@example.com'] }, 'erasure');
 * plan.steps.map((s) => s.collection); // ['shop_db.customers', 'shop_db.addresses', …]
 */
export function planRequest(map: DataMap, identities: IdentityValues, kind: RequestKind): Plan {
  const problems: PlanProblem[] = [];
  const collections = map.collections();
  const index = new Map<string, number>(collections.map((c, i) => [c.address, i]));
  const collectionOf = (f: FieldEntry) => `${f.dataset.key}.${f.collection.name}`;
  const kinds = Object.keys(identities).sort();

  // Lookups per reached collection; a collection whose own rows are found provides values to its out-edges.
  const lookups = new Map<string, Lookup[]>();
  const ownerReached = new Set<string>();
  const queue: string[] = [];
  const addLookup = (collection: string, lookup: Lookup) => {
    const list = lookups.get(collection) ?? [];
    if (list.some((l) => l.field === lookup.field && l.sourceKey === lookup.sourceKey)) return;
    list.push(lookup);
    lookups.set(collection, list);
    if (lookup.ownership === 'owner' && !ownerReached.has(collection)) {
      ownerReached.add(collection);
      queue.push(collection);
    }
  };

  for (const identity of kinds) {
    const fields = map.identityFields(identity);
    if (fields.length === 0) {
      problems.push({ code: 'unknown_identity', message: `no field of the data map has identity ${identity}: it finds nothing` });
      continue;
    }
    for (const f of fields) {
      if (f.path.length > 1) {
        problems.push({ code: 'nested_lookup', collection: collectionOf(f), field: f.address, message: `identity field ${f.address} is nested: lookups match top-level fields only` });
        continue;
      }
      addLookup(collectionOf(f), { field: f.field.name, address: f.address, source: { kind: 'identity', identity }, sourceKey: `identity:${identity}`, ownership: 'owner' });
    }
  }

  // Out-edges by source collection, resolved once: O(E).
  const outEdges = new Map<string, { edge: ReferenceEdge; from: FieldEntry; to: FieldEntry; ownership: Ownership }[]>();
  const inEdgeSources = new Map<string, Set<string>>();
  for (const edge of map.referenceEdges()) {
    const from = map.field(edge.from);
    const to = map.field(edge.to);
    const declarer = map.field(edge.declaredBy);
    if (from === undefined || to === undefined || declarer === undefined) {
      problems.push({ code: 'unknown_reference', field: edge.declaredBy, message: `reference ${edge.declaredBy} names a field that is not declared; it is not followed` });
      continue;
    }
    const other = edge.declaredBy === edge.from ? edge.to : edge.from;
    const ownership = declarer.field.references.find((r) => r.field === other)?.ownership ?? 'owner';
    const source = collectionOf(from);
    const list = outEdges.get(source) ?? [];
    list.push({ edge, from, to, ownership });
    outEdges.set(source, list);
    const sources = inEdgeSources.get(collectionOf(to)) ?? new Set<string>();
    sources.add(source);
    inEdgeSources.set(collectionOf(to), sources);
  }

  const referrerOf = (address: string) => {
    const d = map.field(address)!;
    return { collection: collectionOf(d), system: d.system.key, field: d.path.join('.'), target: targetOf(d) };
  };

  // Breadth-first traversal from the identity collections: each collection enqueued once, each edge seen once.
  const nestedReported = new Set<string>();
  for (let i = 0; i < queue.length; i++) {
    const source = queue[i]!;
    for (const { edge, from, to, ownership } of outEdges.get(source) ?? []) {
      if (from.path.length > 1 || to.path.length > 1) {
        if (!nestedReported.has(edge.declaredBy)) {
          nestedReported.add(edge.declaredBy);
          problems.push({ code: 'nested_lookup', collection: collectionOf(to), field: edge.declaredBy, message: `reference ${edge.from} → ${edge.to} involves a nested field: lookups match top-level fields only, so it is not followed` });
        }
        continue;
      }
      addLookup(collectionOf(to), {
        field: to.field.name,
        address: to.address,
        source: { kind: 'field', collection: source, field: from.field.name, address: from.address },
        sourceKey: from.address,
        ownership,
        declaredBy: edge.declaredBy,
        referrer: referrerOf(edge.declaredBy),
      });
    }
  }

  // Lookup graph over planned collections: source → target.
  const planned = collections.filter((c) => lookups.has(c.address)).map((c) => c.address);
  const succ = new Map<string, Set<string>>(planned.map((c) => [c, new Set<string>()]));
  for (const [target, ls] of lookups) {
    for (const l of ls) if (l.source.kind === 'field') succ.get(l.source.collection)!.add(target);
  }
  const { order: lookupOrder, componentOf, cyclic } = orderGraph(planned, succ, index);

  const steps: PlanStep[] = lookupOrder.map((address) => {
    const entry = map.collection(address)!;
    const ls = lookups.get(address)!;
    const provides = new Set<string>();
    for (const { from, to } of ownerReached.has(address) ? (outEdges.get(address) ?? []) : []) {
      if (from.path.length === 1 && to.path.length === 1) provides.add(from.field.name);
    }
    const step: PlanStep = {
      collection: address,
      system: entry.system.key,
      dataset: entry.dataset.key,
      target: targetOf(entry),
      primaryKey: primaryKeyOf(entry),
      fields: entry.collection.fields.map((f) => f.name),
      shape: shapeOf(entry.collection.fields),
      lookups: ls,
      provides: [...provides],
      after: [...new Set(ls.flatMap((l) => (l.source.kind === 'field' && l.source.collection !== address ? [l.source.collection] : [])))],
      group: componentOf.get(address)!,
      cyclic: cyclic.has(componentOf.get(address)!),
    };
    return kind === 'erasure' ? { ...step, erasure: erasureOf(map, entry, step, problems) } : step;
  });

  const identitiesOf = new Map<string, Set<string>>();
  for (const f of map.identityFields()) {
    const set = identitiesOf.get(collectionOf(f)) ?? new Set<string>();
    set.add(f.field.identity!);
    identitiesOf.set(collectionOf(f), set);
  }
  const unreachable: UnreachableCollection[] = collections
    .filter((c) => !lookups.has(c.address))
    .map((c) => ({ collection: c.address, system: c.system.key, reason: unreachableReason([...(identitiesOf.get(c.address) ?? [])], kinds, inEdgeSources.get(c.address), lookups, ownerReached) }));

  if (kind === 'erasure') keepReferencedRows(map, steps, problems);
  const erasure = kind === 'erasure' ? erasureOrderOf(map, steps, index, problems) : { sequence: [], cuts: [] };
  const bySystem = new Map<string, string[]>();
  for (const c of erasure.sequence) {
    const system = map.collection(c)!.system.key;
    const list = bySystem.get(system) ?? [];
    list.push(c);
    bySystem.set(system, list);
  }

  return deepFreeze({
    kind,
    identities: kinds,
    steps,
    erasureSequence: erasure.sequence,
    erasureOrder: [...bySystem].map(([system, cs]) => ({ system, collections: cs })),
    cuts: erasure.cuts,
    unreachable,
    problems,
  });
}

function targetOf(entry: CollectionEntry | FieldEntry): CollectionTarget {
  return { name: entry.collection.name, options: { ...(entry.collection.connector ?? {}) } };
}

function shapeOf(fields: readonly Field[]): FieldShape[] {
  return fields.map((f) => ({ name: f.name, fields: shapeOf(f.fields) }));
}

function primaryKeyOf(entry: CollectionEntry): string | undefined {
  const keys = entry.collection.fields.filter((f) => f.primaryKey === true);
  return keys.length === 1 ? keys[0]!.name : undefined;
}

function actionOf(erasure: Erasure | undefined): FieldAction {
  if (erasure === undefined) return { action: 'none', reason: 'no erasure strategy declared' };
  switch (erasure.strategy) {
    case 'mask':
      return { action: 'mask', value: erasure.value };
    case 'retain':
      return { action: 'retain', legalBasis: erasure.legalBasis, reason: erasure.reason, retention: erasure.retention };
    default:
      return { action: erasure.strategy };
  }
}

const CHANGES = new Set(['null', 'mask', 'hash']);

/** Per-field actions of one step, with every strategy that cannot apply reported. */
function erasureOf(map: DataMap, entry: CollectionEntry, step: PlanStep, problems: PlanProblem[]): StepErasure {
  let fields: FieldErasure[] = [];
  const problem = (code: PlanProblemCode, field: string | undefined, message: string) => problems.push({ code, collection: step.collection, ...(field === undefined ? {} : { field }), message });
  const walk = (list: readonly Field[], prefix: readonly string[]) => {
    for (const f of list) {
      const path = [...prefix, f.name];
      const address = `${step.collection}.${path.join('.')}`;
      const fe = map.field(address)!;
      // A nested field without a strategy of its own follows its parent, not the collection default.
      // Without a strategy, only personal fields (`user.…`) are worth reporting as unhandled.
      const personal = f.dataCategories.some((c) => c.startsWith('user.'));
      let action = (prefix.length > 0 && f.erasure === undefined) || (fe.erasure === undefined && !personal) ? undefined : actionOf(fe.erasure);
      if (action !== undefined && CHANGES.has(action.action)) {
        if (f.primaryKey === true) {
          problem('strategy_on_primary_key', address, `erasure strategy ${action.action} cannot apply to primary key ${address}: rows would lose their identity; use delete_row or retain`);
          action = { action: 'none', reason: `${action.action} cannot apply to a primary key` };
        } else if (f.fields.length > 0) {
          problem('strategy_on_nested_field', address, `erasure strategy ${action.action} needs a scalar field; ${address} has nested fields: put strategies on them`);
          action = { action: 'none', reason: `${action.action} cannot apply to a field with nested fields` };
        } else if (prefix.length > 0) {
          problem('nested_field_change', address, `erasure strategy ${action.action} on nested field ${address} cannot apply: connectors change top-level fields only`);
          action = { action: 'none', reason: 'connectors change top-level fields only' };
        }
      }
      if (action !== undefined) fields.push({ field: path.join('.'), address, ...action });
      walk(f.fields, path);
    }
  };
  walk(entry.collection.fields, []);

  const deletes = fields.filter((f) => f.action === 'delete_row');
  const retains = fields.filter((f) => f.action === 'retain');
  let row: StepErasure['row'] = 'keep';
  if (deletes.length > 0 && retains.length > 0) {
    problem('retain_conflict', deletes[0]!.address, `${deletes.map((f) => f.address).join(', ')} say delete_row but ${retains.map((f) => f.address).join(', ')} must be retained: the row is kept and only its other fields change`);
    fields = fields.map((f) => (f.action === 'delete_row' ? { field: f.field, address: f.address, action: 'none', reason: 'the row is kept for a retained field' } : f));
  } else if (deletes.length > 0) row = 'delete';
  if (row !== 'delete' && fields.some((f) => CHANGES.has(f.action))) row = 'update';

  const mention: FieldErasure[] = [];
  for (const l of step.lookups) {
    if (l.ownership !== 'mention' || mention.some((m) => m.field === l.field)) continue;
    const own = fields.find((f) => f.field === l.field) ?? { field: l.field, address: l.address, action: 'none' as const, reason: 'no erasure strategy declared' };
    if (l.declaredBy !== l.address) {
      mention.push({ field: l.field, address: l.address, action: 'none', reason: `the referencing field ${l.declaredBy ?? ''} is erased with its own collection` });
    } else if (own.action === 'delete_row') {
      problem('mention_delete_row', l.address, `${l.address} mentions the subject in someone else's row: delete_row would delete that row; give the field strategy null, mask, hash or retain`);
      mention.push({ field: l.field, address: l.address, action: 'none', reason: 'delete_row would delete another subject’s row' });
    } else mention.push(own);
  }

  for (const l of step.lookups) {
    if (l.ownership === 'shared' && l.declaredBy === l.address) {
      problem('shared_without_referrer', l.address, `shared reference ${l.address} is declared on the shared collection itself, so other subjects' references cannot be counted: declare it on the referencing collection (e.g. a join table); these rows are never erased`);
    }
  }

  const needsKey = row !== 'keep' || mention.some((m) => CHANGES.has(m.action));
  if (needsKey && step.primaryKey === undefined) {
    const composite = entry.collection.fields.filter((f) => f.primaryKey === true).length > 1;
    problem(
      composite ? 'composite_primary_key' : 'no_primary_key',
      undefined,
      composite
        ? `${step.collection} has a composite primary key: rows are changed by one key field, so erasure cannot change them; add a single key`
        : `${step.collection} declares no primary key: erasure cannot change its rows; mark the key field primaryKey: true`,
    );
  }
  return { row, fields, mention };
}

/**
 * A row cannot go while rows that stay still refer to it: within a system, if a collection keeps its rows
 * (retained, or only fields changed) and its reference field to another planned collection is not nulled, the
 * referenced collection's `delete_row` would break the foreign key at run time. Found here, at planning time:
 * the referenced rows are kept, their other field strategies still apply, and the problem says what to declare.
 */
function keepReferencedRows(map: DataMap, steps: PlanStep[], problems: PlanProblem[]): void {
  const byCollection = new Map(steps.map((s, i) => [s.collection, i]));
  let changed = true;
  while (changed) {
    changed = false;
    for (const holder of steps) {
      if (holder.erasure === undefined || holder.erasure.row === 'delete') continue;
      for (const f of map.fields()) {
        if (`${f.dataset.key}.${f.collection.name}` !== holder.collection || f.path.length !== 1) continue;
        for (const r of f.field.references) {
          const target = map.field(r.field);
          if (target === undefined || target.system.key !== holder.system) continue;
          const targetAddress = `${target.dataset.key}.${target.collection.name}`;
          const i = byCollection.get(targetAddress);
          const referenced = i === undefined ? undefined : steps[i]!;
          if (referenced === undefined || referenced.erasure?.row !== 'delete' || targetAddress === holder.collection) continue;
          const action = holder.erasure.fields.find((x) => x.field === f.field.name)?.action ?? holder.erasure.mention.find((x) => x.field === f.field.name)?.action;
          if (action === 'null') continue;
          problems.push({
            code: 'retained_reference',
            collection: targetAddress,
            field: f.address,
            message: `rows of ${targetAddress} are still referenced by ${f.address}, whose rows ${holder.erasure.row === 'keep' ? 'are kept' : 'stay (only fields change)'}: they cannot be deleted; declare null, mask or hash strategies on the personal fields of ${targetAddress} so its rows stay anonymised, or strategy null on ${f.address}`,
          });
          const fields = referenced.erasure.fields.map((x) => (x.action === 'delete_row' ? { field: x.field, address: x.address, action: 'none' as const, reason: `the row is kept: ${f.address} still refers to it` } : x));
          const row: StepErasure['row'] = fields.some((x) => CHANGES.has(x.action)) ? 'update' : 'keep';
          steps[i!] = { ...referenced, erasure: { ...referenced.erasure, row, fields } };
          changed = true;
        }
      }
    }
  }
}

/**
 * The order rows change: for each reference between planned collections, the declaring collection before the
 * referenced one (a foreign key never blocks a delete; shared rows are counted after the subject's own
 * references went). Within a cycle, cross-system references are dropped (no constraint holds across systems)
 * and same-system references whose field has strategy `null` become cuts; a cycle left is reported.
 */
function erasureOrderOf(map: DataMap, steps: readonly PlanStep[], index: ReadonlyMap<string, number>, problems: PlanProblem[]): { sequence: string[]; cuts: ErasureCut[] } {
  const nodes = steps.map((s) => s.collection).sort((a, b) => index.get(a)! - index.get(b)!);
  const inPlan = new Set(nodes);
  const edges: { from: string; to: string; field: FieldEntry; crossSystem: boolean }[] = [];
  for (const f of map.fields()) {
    const holder = `${f.dataset.key}.${f.collection.name}`;
    if (!inPlan.has(holder)) continue;
    for (const r of f.field.references) {
      const target = map.field(r.field);
      if (target === undefined) continue;
      const referenced = `${target.dataset.key}.${target.collection.name}`;
      if (referenced === holder || !inPlan.has(referenced)) continue;
      edges.push({ from: holder, to: referenced, field: f, crossSystem: target.system.key !== f.system.key });
    }
  }
  const build = (list: typeof edges) => {
    const succ = new Map<string, Set<string>>(nodes.map((n) => [n, new Set<string>()]));
    for (const e of list) succ.get(e.from)!.add(e.to);
    return succ;
  };
  const first = orderGraph(nodes, build(edges), index);
  const cuts: ErasureCut[] = [];
  const kept = edges.filter((e) => {
    const inCycle = first.componentOf.get(e.from) === first.componentOf.get(e.to);
    if (!inCycle) return true;
    if (e.crossSystem) return false;
    if (e.field.erasure?.strategy === 'null' && e.field.path.length === 1) {
      if (!cuts.some((c) => c.address === e.field.address)) cuts.push({ collection: e.from, field: e.field.field.name, address: e.field.address });
      return false;
    }
    return true;
  });
  const second = orderGraph(nodes, build(kept), index);
  const reported = new Set<number>();
  for (const c of nodes) {
    const g = second.componentOf.get(c)!;
    if (!second.cyclic.has(g) || reported.has(g)) continue;
    reported.add(g);
    const members = nodes.filter((n) => second.componentOf.get(n) === g);
    problems.push({ code: 'erasure_cycle', collection: c, message: `foreign keys among ${members.join(', ')} form a cycle: no erasure order exists; give one of their reference fields erasure strategy null` });
  }
  return { sequence: second.order, cuts };
}

/**
 * Strongly connected components (Tarjan, iterative) and a topological order of the condensation (Kahn, FIFO
 * seeded in declaration order), members of a component kept together in declaration order. O(V + E), plus
 * O(k log k) to sort the k members of each cyclic component.
 */
function orderGraph(nodes: readonly string[], succ: ReadonlyMap<string, ReadonlySet<string>>, index: ReadonlyMap<string, number>): { order: string[]; componentOf: Map<string, number>; cyclic: Set<number> } {
  const componentOf = new Map<string, number>();
  const components: string[][] = [];
  const low = new Map<string, number>();
  const num = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  let counter = 0;
  for (const root of nodes) {
    if (num.has(root)) continue;
    const work: { node: string; it: Iterator<string> }[] = [{ node: root, it: (succ.get(root) ?? new Set()).values() }];
    num.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const next = top.it.next();
      if (!next.done) {
        const w = next.value;
        if (!num.has(w)) {
          num.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ node: w, it: (succ.get(w) ?? new Set()).values() });
        } else if (onStack.has(w)) low.set(top.node, Math.min(low.get(top.node)!, num.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.node)!));
      }
      if (low.get(top.node) === num.get(top.node)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          componentOf.set(w, components.length);
          component.push(w);
        } while (w !== top.node);
        components.push(component.length > 1 ? component.sort((a, b) => index.get(a)! - index.get(b)!) : component);
      }
    }
  }
  const cyclic = new Set<number>();
  const indegree = components.map(() => 0);
  const csucc = components.map(() => new Set<number>());
  for (const [from, tos] of succ) {
    for (const to of tos) {
      const a = componentOf.get(from)!;
      const b = componentOf.get(to)!;
      if (a === b) cyclic.add(a);
      else if (!csucc[a]!.has(b)) {
        csucc[a]!.add(b);
        indegree[b]!++;
      }
    }
  }
  // Kahn with a FIFO queue seeded in declaration order: deterministic, linear.
  const queue: number[] = [];
  const seeded = new Set<number>();
  for (const n of nodes) {
    const c = componentOf.get(n)!;
    if (indegree[c] === 0 && !seeded.has(c)) {
      seeded.add(c);
      queue.push(c);
    }
  }
  const order: string[] = [];
  for (let head = 0; head < queue.length; head++) {
    const c = queue[head]!;
    order.push(...components[c]!);
    for (const d of csucc[c]!) if (--indegree[d]! === 0) queue.push(d);
  }
  return { order, componentOf, cyclic };
}

function unreachableReason(
  identities: readonly string[],
  kinds: readonly string[],
  sources: ReadonlySet<string> | undefined,
  lookups: ReadonlyMap<string, readonly Lookup[]>,
  ownerReached: ReadonlySet<string>,
): string {
  const othersOnly = [...(sources ?? [])].filter((s) => lookups.has(s) && !ownerReached.has(s));
  if (othersOnly.length > 0) return `reachable only through shared or mention rows of ${othersOnly.join(', ')}, which belong to other subjects too and are not followed`;
  if (sources !== undefined && [...sources].some((s) => ownerReached.has(s))) return 'its references from reached collections involve nested fields, which lookups cannot match';
  if (identities.length > 0) return `its identity fields (${identities.join(', ')}) are not among the request's identities (${kinds.join(', ') || 'none'}) and no reference leads here from a reached collection`;
  if (sources === undefined) return 'it declares no identity field and no reference leads to it: no lookup can find the subject’s rows (declare a reference or an identity)';
  return 'no reference path leads here from a collection the request’s identities reach';
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
