import { createHmac } from 'node:crypto';
import { CustodianError } from '../core/index.js';
import { MAX_BATCH, type DataConnector, type KeyValue, type Row, type RowChange } from '../connectors/data/data-connector.js';
import type { FieldErasure, FieldShape, IdentityValues, Ownership, Plan, PlanProblem, PlanStep, RequestKind, UnreachableCollection } from './planner.js';

/**
 * Request execution over the {@link DataConnector} port (docs/requests.md (Planning)). A request runs as a
 * sequence of steps; each step takes a serializable {@link ExecutionContext} and returns the next one, so a
 * caller can persist the context after every step and resume after a crash without repeating a completed
 * step. {@link executeAccess} and {@link executeErasure} run all steps in one go.
 *
 * Memory: the context holds the distinct lookup values and the primary keys of the rows found, both bounded by
 * the subject's own data; rows are read in the connector's batches and only the answer is kept (the projected
 * rows of an access package, counts for erasure). Changes are written in batches of at most {@link MAX_BATCH}.
 */

/** Opens (or returns a pooled) connector for a system key; the caller owns and closes connectors. */
export type ConnectorFactory = (systemKey: string) => Promise<DataConnector>;

/** Primary keys of the rows a collection's lookups found, by whose rows they are. */
export interface FoundKeys {
  readonly owner: readonly KeyValue[];
  readonly shared: readonly KeyValue[];
  /** Per mention field: keys of rows found through it. */
  readonly mention: Readonly<Record<string, readonly KeyValue[]>>;
  /** Rows found without a usable primary key (counted, never changed). */
  readonly unkeyed: number;
}

/**
 * Everything a request has learnt so far: JSON-serializable, to be persisted after each step. It holds
 * personal data (identity values, key values), so store it encrypted under the subject's key.
 */
export interface ExecutionContext {
  readonly version: 1;
  readonly kind: RequestKind;
  /** Distinct values per lookup source (`identity:<kind>` or a field address), append-only. */
  readonly values: Readonly<Record<string, readonly KeyValue[]>>;
  /** Per collection and lookup (`<field><-<sourceKey>`): how many values of the source were already looked up. */
  readonly consumed: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly found: Readonly<Record<string, FoundKeys>>;
  /** Ids of steps that ran ({@link stepId}). */
  readonly done: readonly string[];
}

/** A unit of execution: a lookup (access and erasure), a cycle cut or a collection's changes (erasure). */
export type ExecutionStep =
  | { readonly kind: 'lookup'; readonly collection: string }
  | { readonly kind: 'cut'; readonly collection: string; readonly field: string }
  | { readonly kind: 'erase'; readonly collection: string };

/** A step failure, without personal data: a CST_ERR_ code and its message, or a generic message. */
export interface StepError {
  readonly code: string;
  readonly message: string;
}

/** A row as access shows it: only declared fields; of a `mention` row only the field that mentions the subject. */
export interface AccessRow {
  readonly ownership: Ownership;
  readonly data: Row;
}

export interface LookupOutcome {
  readonly kind: 'lookup';
  readonly collection: string;
  /** Rows found by this run (access only; erasure reads keys). A row may come again from a later run of a cyclic step. */
  readonly rows: readonly (AccessRow & { readonly key?: KeyValue })[];
  readonly found: number;
  readonly error?: StepError;
}

export interface RetainedField {
  readonly field: string;
  readonly legalBasis: string;
  readonly reason: string;
  readonly retention: string;
  readonly rows: number;
}

export interface ChangeOutcome {
  readonly kind: 'cut' | 'erase';
  readonly collection: string;
  readonly rowsDeleted: number;
  /** Per field: rows whose value changed. */
  readonly fieldsChanged: Readonly<Record<string, number>>;
  readonly retained: readonly RetainedField[];
  /** Shared rows kept because another subject still refers to them. */
  readonly skippedShared: number;
  /** Fields of the subject's rows left as they are, and why. */
  readonly unhandled: readonly { readonly field: string; readonly reason: string; readonly rows: number }[];
  readonly error?: StepError;
}

export type StepOutcome = LookupOutcome | ChangeOutcome;

export interface StepResult {
  readonly context: ExecutionContext;
  readonly outcome: StepOutcome;
}

export interface PlanExecutorDeps {
  readonly connectors: ConnectorFactory;
  /** Key of the `hash` strategy (HMAC-SHA-256); required when an erasure hashes. */
  readonly hashKey?: Buffer;
}

/** The id under which a step is recorded in {@link ExecutionContext.done}. */
export function stepId(step: ExecutionStep): string {
  return step.kind === 'cut' ? `cut:${step.collection}.${step.field}` : `${step.kind}:${step.collection}`;
}

/** Values that are the output of {@link hashValue}: a value of this form is taken as already hashed. */
const HASHED = /^[0-9a-f]{64}$/;
const CHANGES = new Set(['null', 'mask', 'hash']);
const RANK: Record<Ownership, number> = { mention: 0, shared: 1, owner: 2 };

/** The `hash` strategy: HMAC-SHA-256 of the value's text under `key`, hex. Keyed, so no dictionary reverses it. */
export function hashValue(key: Buffer, value: string | number): string {
  return createHmac('sha256', key).update(String(value)).digest('hex');
}

/**
 * Runs a plan step by step. `next(context)` names the next step; `runStep(step, context)` runs it and returns
 * the new context (the given one is not changed).
 *
 * Order: lookup steps in plan order; a step runs again while its sources hold values it has not looked up yet
 * (only the new ones are looked up: semi-naive evaluation), so cyclic lookups reach a fixed point after at most
 * as many runs as there are distinct values. Erasure then runs the cuts, then one change step per collection in
 * {@link Plan.erasureSequence}. Every change step is idempotent (deleting again deletes 0; a value already
 * nulled, masked or hashed is not written), so re-running a step that crashed midway is safe.
 *
 * @example
 * const executor = new PlanExecutor(plan, { connectors, hashKey });
 * let context = executor.start('erasure', identities);
 * for (let step = executor.next(context); step; step = executor.next(context)) {
 *   ({ context } = await executor.runStep(step, context));
 *   await persist(context); // resume from here after a crash
 * }
 */
export class PlanExecutor {
  readonly plan: Plan;
  readonly #deps: PlanExecutorDeps;
  readonly #steps: ReadonlyMap<string, PlanStep>;
  readonly #connectors = new Map<string, Promise<DataConnector>>();

  constructor(plan: Plan, deps: PlanExecutorDeps) {
    this.plan = plan;
    this.#deps = deps;
    this.#steps = new Map(plan.steps.map((s) => [s.collection, s]));
  }

  /** The first context of a request: the identity values, de-duplicated. */
  start(kind: RequestKind, identities: IdentityValues): ExecutionContext {
    if (kind === 'erasure' && this.plan.kind !== 'erasure') {
      throw new CustodianError('CST_ERR_BAD_REQUEST', 'an erasure runs from an erasure plan (planRequest with kind erasure)');
    }
    const values: Record<string, KeyValue[]> = {};
    for (const identity of this.plan.identities) values[`identity:${identity}`] = [...new Set(identities[identity] ?? [])];
    return { version: 1, kind, values, consumed: {}, found: {}, done: [] };
  }

  /** The next step to run, or undefined when the request is complete. */
  next(context: ExecutionContext): ExecutionStep | undefined {
    const done = new Set(context.done);
    for (const step of this.plan.steps) {
      if (!done.has(`lookup:${step.collection}`) || this.#pending(step, context).length > 0) return { kind: 'lookup', collection: step.collection };
    }
    if (context.kind !== 'erasure') return undefined;
    for (const cut of this.plan.cuts) {
      const step = { kind: 'cut', collection: cut.collection, field: cut.field } as const;
      if (!done.has(stepId(step))) return step;
    }
    for (const collection of this.plan.erasureSequence) {
      if (!done.has(`erase:${collection}`)) return { kind: 'erase', collection };
    }
    return undefined;
  }

  /** Runs one step; a failure is part of the outcome (the step counts as run), except an abort, which throws. */
  async runStep(step: ExecutionStep, context: ExecutionContext, options: { readonly signal?: AbortSignal } = {}): Promise<StepResult> {
    const planStep = this.#steps.get(step.collection);
    if (planStep === undefined) throw new CustodianError('CST_ERR_BAD_REQUEST', `the plan has no step for collection ${step.collection}`);
    const ctx = structuredClone(context) as unknown as Mutable;
    if (!ctx.done.includes(stepId(step))) ctx.done.push(stepId(step));
    const outcome = step.kind === 'lookup' ? await this.#lookup(planStep, ctx, options.signal) : await this.#change(step, planStep, ctx, options.signal);
    return { context: ctx, outcome };
  }

  #connector(system: string): Promise<DataConnector> {
    let c = this.#connectors.get(system);
    if (c === undefined) {
      c = this.#deps.connectors(system);
      this.#connectors.set(system, c);
    }
    return c;
  }

  /** Lookups of `step` whose source holds values not looked up yet: [lookup, new values]. */
  #pending(step: PlanStep, context: ExecutionContext): [PlanStep['lookups'][number], readonly KeyValue[]][] {
    const pending: [PlanStep['lookups'][number], readonly KeyValue[]][] = [];
    for (const l of step.lookups) {
      const source = context.values[l.sourceKey] ?? [];
      const from = context.consumed[step.collection]?.[consumedKey(l)] ?? 0;
      if (source.length > from) pending.push([l, source.slice(from)]);
    }
    return pending;
  }

  async #lookup(step: PlanStep, ctx: Mutable, signal: AbortSignal | undefined): Promise<LookupOutcome> {
    const pending = this.#pending(step, ctx);
    const consumed = (ctx.consumed[step.collection] ??= {});
    for (const l of step.lookups) consumed[consumedKey(l)] = (ctx.values[l.sourceKey] ?? []).length;
    const found = (ctx.found[step.collection] ??= { owner: [], shared: [], mention: {}, unkeyed: 0 });
    const keys = { owner: keySet(found.owner), shared: keySet(found.shared) };
    const valueSets = new Map<string, Set<string>>();
    const addValue = (sourceKey: string, v: KeyValue) => {
      let set = valueSets.get(sourceKey);
      const list = (ctx.values[sourceKey] ??= []);
      if (set === undefined) valueSets.set(sourceKey, (set = keySet(list)));
      if (set.has(tag(v))) return;
      set.add(tag(v));
      list.push(v);
    };
    const rows: (AccessRow & { key?: KeyValue })[] = [];
    let count = 0;
    const pk = step.primaryKey;
    try {
      if (pending.length === 0) return { kind: 'lookup', collection: step.collection, rows, found: 0 };
      const connector = await this.#connector(step.system);
      for (const [l, values] of pending) {
        const fields =
          ctx.kind === 'access' && l.ownership !== 'mention'
            ? step.fields
            : unique([l.field, ...(pk === undefined ? [] : [pk]), ...(l.ownership === 'owner' ? step.provides : [])]);
        for await (const batch of connector.find(step.target, l.field, values, fields, signal === undefined ? {} : { signal })) {
          signal?.throwIfAborted();
          for (const row of batch) {
            count++;
            const key = pk === undefined ? undefined : asKey(row[pk]);
            if (key === undefined) found.unkeyed++;
            else if (l.ownership === 'owner') {
              if (!keys.owner.has(tag(key))) {
                keys.owner.add(tag(key));
                found.owner.push(key);
              }
            } else if (l.ownership === 'shared') {
              if (!keys.owner.has(tag(key)) && !keys.shared.has(tag(key))) {
                keys.shared.add(tag(key));
                found.shared.push(key);
              }
            } else {
              const list = (found.mention[l.field] ??= []);
              if (!list.some((k) => tag(k) === tag(key))) list.push(key);
            }
            // Only the subject's own rows lead on: values of shared or mention rows would reach other subjects.
            if (l.ownership === 'owner') {
              for (const p of step.provides) {
                const v = asKey(row[p]);
                if (v !== undefined) addValue(`${step.collection}.${p}`, v);
              }
            }
            if (ctx.kind === 'access') {
              // GDPR Art. 15(4): of a row that belongs to someone else, only the field that mentions the subject.
              const data = l.ownership === 'mention' ? { [l.field]: row[l.field] } : project(row, step.shape);
              rows.push(key === undefined ? { ownership: l.ownership, data } : { ownership: l.ownership, data, key });
            }
          }
        }
      }
      found.shared = found.shared.filter((k) => !keys.owner.has(tag(k)));
      return { kind: 'lookup', collection: step.collection, rows, found: count };
    } catch (err) {
      if (signal?.aborted === true) throw err;
      return { kind: 'lookup', collection: step.collection, rows, found: count, error: stepError(err) };
    }
  }

  async #change(step: ExecutionStep, planStep: PlanStep, ctx: Mutable, signal: AbortSignal | undefined): Promise<ChangeOutcome> {
    const out = { rowsDeleted: 0, fieldsChanged: {} as Record<string, number>, retained: [] as RetainedField[], skippedShared: 0, unhandled: [] as { field: string; reason: string; rows: number }[] };
    const result = (error?: StepError): ChangeOutcome => ({ kind: step.kind === 'cut' ? 'cut' : 'erase', collection: planStep.collection, ...out, ...(error === undefined ? {} : { error }) });
    const erasure = planStep.erasure;
    const found = ctx.found[planStep.collection];
    if (erasure === undefined || found === undefined) return result();
    const pk = planStep.primaryKey;
    const ownerTags = keySet(found.owner);
    const hashKey = this.#deps.hashKey;
    try {
      const connector = await this.#connector(planStep.system);
      const target = planStep.target;
      const read = async function* (keys: readonly KeyValue[], fields: readonly string[]): AsyncGenerator<Row[]> {
        for (let i = 0; i < keys.length; i += MAX_BATCH) {
          const rows: Row[] = [];
          for await (const batch of connector.find(target, pk!, keys.slice(i, i + MAX_BATCH), unique([pk!, ...fields]), signal === undefined ? {} : { signal })) rows.push(...batch);
          signal?.throwIfAborted();
          yield rows;
        }
      };
      // Writes only values that differ from the target: a second run finds nothing to change.
      const change = async (keys: readonly KeyValue[], actions: readonly FieldErasure[]) => {
        if (keys.length === 0 || actions.length === 0) return;
        if (actions.some((a) => a.action === 'hash') && hashKey === undefined) throw new CustodianError('CST_ERR_CONFIG', 'the hash erasure strategy needs a hash key');
        for await (const rows of read(keys, actions.map((a) => a.field))) {
          const changes: RowChange[] = [];
          for (const row of rows) {
            const set: Record<string, string | number | null> = {};
            for (const a of actions) {
              const next = targetValue(a, row[a.field], hashKey);
              if (next !== undefined) set[a.field] = next;
            }
            const key = asKey(row[pk!]);
            if (key !== undefined && Object.keys(set).length > 0) changes.push({ key, set });
          }
          if (changes.length === 0) continue;
          await connector.updateRows(target, pk!, changes);
          for (const c of changes) for (const f of Object.keys(c.set)) out.fieldsChanged[f] = (out.fieldsChanged[f] ?? 0) + 1;
        }
      };
      const report = (rows: number, fields: readonly FieldErasure[]) => {
        if (rows === 0) return;
        for (const f of fields) {
          if (f.action === 'retain') {
            const r = out.retained.find((x) => x.field === f.field);
            if (r === undefined) out.retained.push({ field: f.field, legalBasis: f.legalBasis, reason: f.reason, retention: f.retention, rows });
            else out.retained[out.retained.indexOf(r)] = { ...r, rows: r.rows + rows };
          } else if (f.action === 'none') {
            const u = out.unhandled.find((x) => x.field === f.field);
            if (u === undefined) out.unhandled.push({ field: f.field, reason: f.reason, rows });
            else u.rows += rows;
          }
        }
      };
      // The subject's own rows, or shared rows nobody else refers to any more.
      const eraseRows = async (keys: readonly KeyValue[], unkeyed: number) => {
        if (erasure.row !== 'delete') report(keys.length + unkeyed, erasure.fields);
        if (unkeyed > 0 && erasure.row !== 'keep') out.unhandled.push({ field: '*', reason: 'rows without a primary key cannot be changed', rows: unkeyed });
        if (keys.length === 0 || pk === undefined) return;
        if (erasure.row === 'delete') {
          for (let i = 0; i < keys.length; i += MAX_BATCH) out.rowsDeleted += await connector.deleteRows(target, pk, keys.slice(i, i + MAX_BATCH));
        } else if (erasure.row === 'update') await change(keys, erasure.fields.filter((f) => CHANGES.has(f.action)));
      };

      if (step.kind === 'cut') {
        const cut = { field: step.field, address: `${planStep.collection}.${step.field}`, action: 'null' } as const;
        if (pk !== undefined) await change(found.owner, [cut]);
        return result();
      }

      for (const m of erasure.mention) {
        const keys = (found.mention[m.field] ?? []).filter((k) => !ownerTags.has(tag(k)));
        if (CHANGES.has(m.action) && pk !== undefined) await change(keys, [m]);
        else report(keys.length, [m]);
      }
      await eraseRows(found.owner, found.unkeyed);

      const shared = found.shared.filter((k) => !ownerTags.has(tag(k)));
      if (shared.length > 0 && pk !== undefined) {
        const lookups = planStep.lookups.filter((l) => l.ownership === 'shared');
        const free: KeyValue[] = [];
        for await (const rows of read(shared, lookups.map((l) => l.field))) {
          const referenced = new Set<string>();
          for (const l of lookups) {
            const ref = l.referrer;
            if (ref === undefined || l.declaredBy === l.address) {
              // Declared on the shared collection itself: other references cannot be counted, so keep the rows.
              for (const row of rows) referenced.add(tag(asKey(row[pk]) ?? ''));
              continue;
            }
            const values = unique(rows.map((r) => asKey(r[l.field])).filter((v) => v !== undefined));
            if (values.length === 0) continue;
            const referrer = await this.#connector(ref.system);
            const still = new Set<string>();
            for await (const batch of referrer.find(ref.target, ref.field, values, [ref.field], signal === undefined ? {} : { signal })) {
              for (const r of batch) {
                const v = asKey(r[ref.field]);
                if (v !== undefined) still.add(tag(v));
              }
            }
            for (const row of rows) {
              const v = asKey(row[l.field]);
              if (v !== undefined && still.has(tag(v))) referenced.add(tag(asKey(row[pk]) ?? ''));
            }
          }
          for (const row of rows) {
            const key = asKey(row[pk]);
            if (key === undefined) continue;
            if (referenced.has(tag(key))) out.skippedShared++;
            else free.push(key);
          }
        }
        await eraseRows(free, 0);
      }
      return result();
    } catch (err) {
      if (signal?.aborted === true) throw err;
      return result(stepError(err));
    }
  }
}

/** Options of {@link executeAccess}. */
export interface AccessOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: { readonly step: ExecutionStep; readonly outcome: StepOutcome }) => void;
}

/** Options of {@link executeErasure}. */
export interface ErasureOptions extends AccessOptions {
  /** Key of the `hash` strategy (HMAC-SHA-256); keep it secret and stable, so hashed values stay joinable. */
  readonly hashKey: Buffer;
}

export interface AccessCollection {
  readonly collection: string;
  readonly system: string;
  readonly dataset: string;
  readonly name: string;
  readonly rows: readonly AccessRow[];
  readonly count: number;
}

/** What access found, grouped by system, collections in plan order. */
export interface AccessResult {
  readonly status: 'completed' | 'partial';
  readonly systems: readonly { readonly system: string; readonly collections: readonly AccessCollection[] }[];
  readonly totalRows: number;
  /** Planned collections where nothing was found. */
  readonly empty: readonly string[];
  readonly errors: readonly (StepError & { readonly collection: string })[];
  readonly unreachable: readonly UnreachableCollection[];
  readonly problems: readonly PlanProblem[];
}

export interface CollectionErasure {
  readonly collection: string;
  readonly system: string;
  readonly rowsDeleted: number;
  readonly fieldsChanged: Readonly<Record<string, number>>;
  readonly retained: readonly RetainedField[];
  readonly skippedShared: number;
  readonly unhandled: readonly { readonly field: string; readonly reason: string; readonly rows: number }[];
  readonly errors: readonly StepError[];
}

/** What erasure did, per collection in erasure order. */
export interface ErasureResult {
  readonly status: 'completed' | 'partial';
  readonly collections: readonly CollectionErasure[];
  readonly totals: { readonly rowsDeleted: number; readonly fieldsChanged: number; readonly skippedShared: number };
  readonly unreachable: readonly UnreachableCollection[];
  readonly problems: readonly PlanProblem[];
}

/**
 * Runs an access request (GDPR Art. 15): every row the plan reaches, with the declared fields only; of rows
 * that merely mention the subject, only the mentioning field. Rows found several times appear once.
 */
export async function executeAccess(plan: Plan, connectors: ConnectorFactory, identities: IdentityValues, options: AccessOptions = {}): Promise<AccessResult> {
  const executor = new PlanExecutor(plan, { connectors });
  let context = executor.start('access', identities);
  const collected = new Map<string, { keyed: Map<string, AccessRow>; unkeyed: Map<string, AccessRow> }>();
  const errors: (StepError & { collection: string })[] = [];
  for (let step = executor.next(context); step !== undefined; step = executor.next(context)) {
    const { context: next, outcome } = await executor.runStep(step, context, options.signal === undefined ? {} : { signal: options.signal });
    context = next;
    options.onProgress?.({ step, outcome });
    if (outcome.error !== undefined) errors.push({ collection: outcome.collection, ...outcome.error });
    if (outcome.kind !== 'lookup') continue;
    let c = collected.get(outcome.collection);
    if (c === undefined) collected.set(outcome.collection, (c = { keyed: new Map(), unkeyed: new Map() }));
    for (const { key, ownership, data } of outcome.rows) {
      if (key === undefined) {
        const id = `${ownership}:${JSON.stringify(data)}`;
        if (!c.unkeyed.has(id)) c.unkeyed.set(id, { ownership, data });
        continue;
      }
      const prev = c.keyed.get(tag(key));
      if (prev === undefined || RANK[ownership] > RANK[prev.ownership]) c.keyed.set(tag(key), { ownership, data });
      else if (ownership === 'mention' && prev.ownership === 'mention') c.keyed.set(tag(key), { ownership, data: { ...prev.data, ...data } });
    }
  }
  const systems = new Map<string, AccessCollection[]>();
  let totalRows = 0;
  const empty: string[] = [];
  for (const s of plan.steps) {
    const c = collected.get(s.collection);
    const rows = c === undefined ? [] : [...c.keyed.values(), ...c.unkeyed.values()];
    totalRows += rows.length;
    if (rows.length === 0) empty.push(s.collection);
    const list = systems.get(s.system) ?? [];
    list.push({ collection: s.collection, system: s.system, dataset: s.dataset, name: s.target.name, rows, count: rows.length });
    systems.set(s.system, list);
  }
  return {
    status: errors.length === 0 ? 'completed' : 'partial',
    systems: [...systems].map(([system, collections]) => ({ system, collections })),
    totalRows,
    empty,
    errors,
    unreachable: plan.unreachable,
    problems: plan.problems,
  };
}

/**
 * Runs an erasure request (GDPR Art. 17): finds the rows as access does, then changes them per the data map's
 * strategies in {@link Plan.erasureSequence}. Idempotent: a second run changes nothing and reports zeros.
 */
export async function executeErasure(plan: Plan, connectors: ConnectorFactory, identities: IdentityValues, options: ErasureOptions): Promise<ErasureResult> {
  const executor = new PlanExecutor(plan, { connectors, hashKey: options.hashKey });
  let context = executor.start('erasure', identities);
  const byCollection = new Map<string, { rowsDeleted: number; fieldsChanged: Record<string, number>; retained: RetainedField[]; skippedShared: number; unhandled: CollectionErasure['unhandled'][number][]; errors: StepError[] }>();
  const entry = (collection: string) => {
    let e = byCollection.get(collection);
    if (e === undefined) byCollection.set(collection, (e = { rowsDeleted: 0, fieldsChanged: {}, retained: [], skippedShared: 0, unhandled: [], errors: [] }));
    return e;
  };
  for (let step = executor.next(context); step !== undefined; step = executor.next(context)) {
    const { context: next, outcome } = await executor.runStep(step, context, options.signal === undefined ? {} : { signal: options.signal });
    context = next;
    options.onProgress?.({ step, outcome });
    const e = entry(outcome.collection);
    if (outcome.error !== undefined) e.errors.push(outcome.error);
    if (outcome.kind === 'lookup') continue;
    e.rowsDeleted += outcome.rowsDeleted;
    for (const [f, n] of Object.entries(outcome.fieldsChanged)) e.fieldsChanged[f] = (e.fieldsChanged[f] ?? 0) + n;
    e.retained.push(...outcome.retained);
    e.skippedShared += outcome.skippedShared;
    e.unhandled.push(...outcome.unhandled);
  }
  const collections: CollectionErasure[] = plan.erasureSequence.map((collection) => ({ collection, system: plan.steps.find((s) => s.collection === collection)!.system, ...entry(collection) }));
  const sum = (f: (c: CollectionErasure) => number) => collections.reduce((n, c) => n + f(c), 0);
  return {
    status: collections.some((c) => c.errors.length > 0) ? 'partial' : 'completed',
    collections,
    totals: { rowsDeleted: sum((c) => c.rowsDeleted), fieldsChanged: sum((c) => Object.values(c.fieldsChanged).reduce((a, b) => a + b, 0)), skippedShared: sum((c) => c.skippedShared) },
    unreachable: plan.unreachable,
    problems: plan.problems,
  };
}

type Mutable = {
  version: 1;
  kind: RequestKind;
  values: Record<string, KeyValue[]>;
  consumed: Record<string, Record<string, number>>;
  found: Record<string, { owner: KeyValue[]; shared: KeyValue[]; mention: Record<string, KeyValue[]>; unkeyed: number }>;
  done: string[];
};

function consumedKey(l: { readonly field: string; readonly sourceKey: string }): string {
  return `${l.field}<-${l.sourceKey}`;
}

/** Values are compared with their type: the number 1 and the text '1' are different keys. */
function tag(v: KeyValue): string {
  return `${typeof v === 'number' ? 'n' : 's'}:${v}`;
}

function keySet(values: readonly KeyValue[]): Set<string> {
  return new Set(values.map(tag));
}

function unique<T extends KeyValue>(values: readonly T[]): T[] {
  const seen = new Set<string>();
  return values.filter((v) => !seen.has(tag(v)) && seen.add(tag(v)) !== undefined);
}

function asKey(v: unknown): KeyValue | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return v >= Number.MIN_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER ? Number(v) : v.toString();
  return undefined;
}

/** The declared fields of a row, nested documents projected on their declared fields too. */
function project(row: Readonly<Record<string, unknown>>, shape: readonly FieldShape[]): Row {
  const out: Record<string, unknown> = {};
  for (const f of shape) {
    if (!(f.name in row)) continue;
    out[f.name] = projectValue(row[f.name], f);
  }
  return out;
}

function projectValue(value: unknown, f: FieldShape): unknown {
  if (f.fields.length === 0 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => projectValue(v, f));
  return project(value as Record<string, unknown>, f.fields);
}

/** The value a field gets, or undefined when it already has it (null stays null, a mask stays, a hash stays). */
function targetValue(a: FieldErasure, current: unknown, hashKey: Buffer | undefined): string | null | undefined {
  if (current === null || current === undefined) return undefined;
  switch (a.action) {
    case 'null':
      return null;
    case 'mask':
      return current === a.value ? undefined : a.value;
    case 'hash': {
      if (typeof current === 'string' && HASHED.test(current)) return undefined;
      const text = typeof current === 'string' || typeof current === 'number' || typeof current === 'bigint' || typeof current === 'boolean' ? String(current) : JSON.stringify(current);
      return hashValue(hashKey!, text);
    }
    default:
      return undefined;
  }
}

function stepError(err: unknown): StepError {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('CST_ERR_') && err instanceof Error) return { code, message: err.message };
  // Driver messages may quote values (personal data): say only what kind of fault it was.
  return { code: 'CST_ERR_INTERNAL', message: `the connector failed (${err instanceof Error ? err.name : 'unknown error'})` };
}
