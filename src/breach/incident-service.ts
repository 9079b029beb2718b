import {
  BREACH_OUTCOMES,
  CustodianError,
  DEFAULT_ESCALATION_POINTS_MS,
  JURISDICTION_CODE_PATTERN,
  SENSITIVE_CATEGORY_PREFIXES,
  SPECIAL_CATEGORY_PREFIXES,
  breachDeadlines,
  closestTaxonomyKeys,
  isDataCategory,
  isIsoInstant,
  isStorableText,
  purposeDetails,
  storedToIso,
  toIso,
  uuidv7,
  type AuditSink,
  type BreachAudience,
  type BreachDeadline,
  type BreachOutcome,
  type BreachStage,
  type Clock,
  type EventInput,
  type EventSink,
} from '../core/index.js';
import type { CollectionEntry, DataMap } from '../datamap/index.js';
import { MAX_SCAN_PAGE, type DataConnector, type ScanPage } from '../connectors/data/index.js';
import type { Executor, Store } from '../store/index.js';
import type { Selectable } from 'kysely';
import { assessRisk, type RiskAssessment } from './assess.js';
import { authorityDraft, individualsDraft, type DraftFacts, type RenderedMessage } from './render.js';
import { breachDb, type IncidentsTable } from './tables.js';

/** Lifecycle of an incident. `suspected` ones come from detection rules and wait to be confirmed (`open`) or dismissed. */
export const INCIDENT_STATUSES = ['suspected', 'open', 'contained', 'closed', 'dismissed'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

const TRANSITIONS: Readonly<Record<IncidentStatus, readonly IncidentStatus[]>> = {
  suspected: ['open', 'dismissed'],
  open: ['contained', 'closed'],
  contained: ['open', 'closed'],
  closed: [],
  dismissed: [],
};
/** Statuses whose notification deadlines run (awareness is established). */
const RUNNING: readonly IncidentStatus[] = ['open', 'contained'];

/** What the keyring does for the breach module: seal free text under a key of the incident, keyed digests. */
export interface IncidentCipher {
  encryptField(subjectId: string, plaintext: string, context: string): Promise<string>;
  decryptFieldText(ciphertext: string, context: string): Promise<string>;
  keyedDigest(text: string): string;
}

/**
 * Rows asked of a connector per page while scoping (keyset pages; see {@link IncidentService.affectedSubjects}).
 * The largest page connectors allow: JSONL and Redis read the whole file or key space once per page.
 */
export const SCOPE_PAGE_ROWS = MAX_SCAN_PAGE;
/** Largest batch {@link IncidentService.affectedSubjects} yields. */
export const SCOPE_BATCH_ROWS = 1_000;

export interface IncidentServiceDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly cipher: IncidentCipher;
  readonly audit?: AuditSink;
  readonly events?: EventSink;
  /** The current data map (validation of systems/collections, scoping, DPO contact). */
  readonly dataMap: () => Promise<{ map: DataMap; version: number } | undefined>;
  /**
   * Opens a data connector for a system of the data map (connection `${VAR}`s resolved), the same path the
   * request runner and retention use. Without it scoping reports every collection as skipped.
   */
  readonly connect?: (map: DataMap, systemKey: string) => Promise<DataConnector>;
}

export interface IncidentServiceOptions {
  /** Escalate when this much time (ms) is left before a due time; default 24 h and 6 h. */
  readonly escalateAt?: readonly number[];
  /** Tolerated clock skew for "not in the future" checks (default 60 s). */
  readonly skewMs?: number;
  /** Public holidays (ISO dates) for business-day deadlines. */
  readonly holidays?: readonly string[];
}

/** Fields an operator gives when recording an incident. */
export interface IncidentInput {
  readonly title: string;
  readonly description?: string;
  /** When the controller became aware (GDPR Art. 33(1): the 72 h run from it). Default: now. */
  readonly detectedAt?: string;
  readonly occurredAt?: string | null;
  readonly systems?: readonly string[];
  /** `<dataset>.<collection>` addresses of the data map. */
  readonly collections?: readonly string[];
  /** fideslang data category keys; default: the categories of the fields of `collections`. */
  readonly dataCategories?: readonly string[];
  readonly affectedCount?: number | null;
  readonly recordsCount?: number | null;
  readonly encrypted?: boolean;
  readonly keysCompromised?: boolean;
  /** A significant incident under NIS2 (Art. 23): adds the CSIRT early warning and notification windows. */
  readonly nis2?: boolean;
  readonly cause?: string;
  readonly containmentActions?: readonly string[];
  readonly jurisdictions?: readonly string[];
  readonly status?: 'open' | 'suspected';
}

/** A change of an incident; absent fields stay. */
export type IncidentPatch = Partial<Omit<IncidentInput, 'status'>> & { readonly status?: IncidentStatus; readonly note?: string };

/** Who acts, for the audit log. */
export interface ActorContext {
  readonly actor: string;
  readonly requestId?: string | null;
}

/** A deadline with its state. */
export interface IncidentDeadline extends BreachDeadline {
  readonly met: boolean;
  readonly metAt: string | null;
  readonly overdue: boolean;
  /** Milliseconds left (negative when overdue), or null without a fixed period. */
  readonly leftMs: number | null;
}

/** An incident as services and interfaces see it. */
export interface IncidentView {
  readonly id: string;
  readonly status: IncidentStatus;
  readonly title: string;
  readonly description: string;
  readonly cause: string;
  readonly containmentActions: readonly string[];
  readonly detectedAt: string;
  readonly occurredAt: string | null;
  readonly systems: readonly string[];
  readonly collections: readonly string[];
  readonly dataCategories: readonly string[];
  readonly jurisdictions: readonly string[];
  readonly affectedCount: number | null;
  readonly recordsCount: number | null;
  readonly encrypted: boolean;
  readonly keysCompromised: boolean;
  readonly nis2: boolean;
  /** People found by scoping, or null before scoping ran. */
  readonly subjectsCount: number | null;
  readonly source: string;
  readonly assessment: {
    readonly computed: RiskAssessment;
    readonly override: { readonly outcome: BreachOutcome; readonly justification: string } | null;
    readonly outcome: BreachOutcome;
  };
  readonly deadlines: readonly IncidentDeadline[];
  readonly createdBy: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly revision: number;
}

/** One entry of an incident's timeline. */
export interface TimelineEntry {
  readonly id: string;
  readonly at: string;
  readonly actor: string;
  readonly kind: string;
  readonly changes: Readonly<Record<string, unknown>>;
  readonly note: string | null;
}

/** One affected person as scoping finds them: the collection and their identity values. Personal data. */
export interface AffectedSubject {
  readonly collection: string;
  readonly identities: Readonly<Record<string, string>>;
}

/** Progress of scoping, per collection. */
export interface ScopeProgress {
  readonly collection: string;
  readonly rows: number;
  readonly done: boolean;
  /** Why the collection could not be scanned (no connection, unsupported system), when it could not. */
  readonly skipped?: string;
}

/** What {@link IncidentService.notify} queued. */
export interface NotificationResult {
  readonly audience: BreachAudience;
  readonly stage: BreachStage;
  readonly jurisdiction: string | null;
  readonly queued: number;
  readonly notifiedAt: string;
}

/** A notification recorded (recipients never in clear). */
export interface NotificationRecord {
  readonly id: string;
  readonly audience: BreachAudience;
  readonly stage: BreachStage;
  readonly jurisdiction: string | null;
  readonly recipientDigest: string;
  readonly mailId: string;
  readonly actor: string;
  readonly notifiedAt: string;
}

interface Narrative {
  description: string;
  cause: string;
  containmentActions: string[];
  overrideJustification?: string;
}

type IncidentRow = Selectable<IncidentsTable>;

const MAX_TEXT = 10_000;
const MAX_LIST = 500;

/**
 * Personal data breach response: incidents with their append-only timeline, risk assessment (GDPR Art. 33/34),
 * per-jurisdiction notification deadlines with escalations, scoping of the people affected, and notification
 * drafts and sending through the mail outbox. Free text from staff (description, cause, measures, notes) may
 * hold personal data: it is sealed under a key of the incident and never logged or audited.
 */
export class IncidentService {
  readonly #deps: IncidentServiceDeps;
  readonly #escalateAt: readonly number[];
  readonly #skewMs: number;
  readonly #holidays: readonly string[];

  constructor(deps: IncidentServiceDeps, options: IncidentServiceOptions = {}) {
    this.#deps = deps;
    this.#escalateAt = [...(options.escalateAt ?? DEFAULT_ESCALATION_POINTS_MS)].sort((a, b) => b - a);
    this.#skewMs = options.skewMs ?? 60_000;
    this.#holidays = options.holidays ?? [];
  }

  /** Records an incident (status `open`, or `suspected`), audited, with its first timeline entry and `incident.opened`. */
  async create(input: IncidentInput, ctx: ActorContext & { source?: string }): Promise<IncidentView> {
    const now = this.#deps.clock.now();
    const checked = await this.#check(input, now, undefined);
    const id = uuidv7(now);
    const status: IncidentStatus = input.status ?? 'open';
    const narrative: Narrative = { description: input.description ?? '', cause: input.cause ?? '', containmentActions: [...(input.containmentActions ?? [])] };
    const sealed = await this.#seal(id, narrative);
    const at = toIso(now);
    await this.#deps.store.transaction(async (trx) => {
      const db = breachDb(trx);
      await db
        .insertInto('incidents')
        .values({
          id,
          status,
          title: checked.title,
          narrative_sealed: sealed,
          detected_at: checked.detectedAt,
          occurred_at: checked.occurredAt,
          systems: JSON.stringify(checked.systems),
          collections: JSON.stringify(checked.collections),
          data_categories: JSON.stringify(checked.dataCategories),
          jurisdictions: JSON.stringify(checked.jurisdictions),
          affected_count: checked.affectedCount,
          records_count: checked.recordsCount,
          encrypted: input.encrypted === true ? 1 : 0,
          keys_compromised: input.keysCompromised === true ? 1 : 0,
          nis2: input.nis2 === true ? 1 : 0,
          override_outcome: null,
          subjects_count: null,
          source: ctx.source ?? 'manual',
          created_by: ctx.actor.slice(0, 128),
          created_at: at,
          updated_at: at,
          revision: 0,
        })
        .execute();
      await this.#timeline(trx, id, ctx.actor, 'created', { status, source: ctx.source ?? 'manual' }, null, now);
      await this.#deps.audit?.record(trx, [
        {
          actor: ctx.actor,
          action: 'incident.opened',
          targetType: 'incident',
          targetId: id,
          requestId: ctx.requestId ?? null,
          details: { status, source: ctx.source ?? 'manual', systems: checked.systems.length, collections: checked.collections.length, categories: checked.dataCategories.length },
        },
      ]);
      await this.#deps.events?.emit(trx, [{ type: 'incident.opened', subjectId: null, purposes: [], data: { incidentId: id, status, source: ctx.source ?? 'manual' } }]);
    });
    this.#deps.events?.committed();
    return this.get(id);
  }

  /** Incidents, most recently detected first. */
  async list(query: { status?: IncidentStatus; limit?: number } = {}): Promise<IncidentView[]> {
    let q = breachDb(this.#deps.store.db).selectFrom('incidents').selectAll().orderBy('detected_at', 'desc').orderBy('id', 'desc');
    if (query.status !== undefined) q = q.where('status', '=', query.status);
    const rows = await q.limit(Math.min(Math.max(query.limit ?? 100, 1), 1000)).execute();
    return Promise.all(rows.map((r) => this.#view(r)));
  }

  /** One incident with its assessment and deadlines, or CST_ERR_INCIDENT_NOT_FOUND. */
  async get(id: string): Promise<IncidentView> {
    return this.#view(await this.#row(this.#deps.store.db, id));
  }

  /** The incident's timeline, oldest first. */
  async timeline(id: string): Promise<TimelineEntry[]> {
    await this.#row(this.#deps.store.db, id);
    const rows = await breachDb(this.#deps.store.db).selectFrom('incident_timeline').selectAll().where('incident_id', '=', id).orderBy('id').execute();
    return Promise.all(
      rows.map(async (r) => ({
        id: r.id,
        at: storedToIso(r.at),
        actor: r.actor,
        kind: r.kind,
        changes: JSON.parse(r.changes) as Record<string, unknown>,
        note: r.note_sealed === null ? null : await this.#deps.cipher.decryptFieldText(r.note_sealed, noteContext(id, r.id)),
      })),
    );
  }

  /** Changes an incident: every change is a timeline entry (field names, never free text) and audited. */
  async update(id: string, patch: IncidentPatch, ctx: ActorContext): Promise<IncidentView> {
    const now = this.#deps.clock.now();
    const before = await this.#row(this.#deps.store.db, id);
    const current = await this.#view(before);
    const merged: IncidentInput = {
      title: patch.title ?? current.title,
      detectedAt: patch.detectedAt ?? current.detectedAt,
      occurredAt: patch.occurredAt === undefined ? current.occurredAt : patch.occurredAt,
      systems: patch.systems ?? current.systems,
      collections: patch.collections ?? current.collections,
      dataCategories: patch.dataCategories ?? current.dataCategories,
      affectedCount: patch.affectedCount === undefined ? current.affectedCount : patch.affectedCount,
      recordsCount: patch.recordsCount === undefined ? current.recordsCount : patch.recordsCount,
      jurisdictions: patch.jurisdictions ?? current.jurisdictions,
    };
    if (patch.note !== undefined) checkText(patch.note, 'note', MAX_TEXT);
    const checked = await this.#check(merged, now, current);
    if (patch.status !== undefined && patch.status !== current.status && !TRANSITIONS[current.status].includes(patch.status)) {
      throw new CustodianError('CST_ERR_INCIDENT_INVALID_TRANSITION', `an incident that is ${current.status} cannot become ${patch.status}`, { details: { status: current.status } });
    }
    const changed: Record<string, unknown> = {};
    const set: Partial<Record<keyof IncidentsTable, unknown>> = {};
    const plain = (field: string, column: keyof IncidentsTable, next: unknown, prev: unknown, show: boolean) => {
      if (JSON.stringify(next) === JSON.stringify(prev)) return;
      set[column] = Array.isArray(next) ? JSON.stringify(next) : next;
      changed[field] = show ? next : 'changed';
    };
    plain('title', 'title', checked.title, current.title, false);
    plain('detectedAt', 'detected_at', checked.detectedAt, current.detectedAt, true);
    plain('occurredAt', 'occurred_at', checked.occurredAt, current.occurredAt, true);
    plain('systems', 'systems', checked.systems, current.systems, true);
    plain('collections', 'collections', checked.collections, current.collections, true);
    plain('dataCategories', 'data_categories', checked.dataCategories, current.dataCategories, true);
    plain('jurisdictions', 'jurisdictions', checked.jurisdictions, current.jurisdictions, true);
    plain('affectedCount', 'affected_count', checked.affectedCount, current.affectedCount, true);
    plain('recordsCount', 'records_count', checked.recordsCount, current.recordsCount, true);
    if (patch.status !== undefined) plain('status', 'status', patch.status, current.status, true);
    for (const [field, column] of [['encrypted', 'encrypted'], ['keysCompromised', 'keys_compromised'], ['nis2', 'nis2']] as const) {
      const v = patch[field];
      if (v !== undefined && v !== current[field]) {
        set[column] = v ? 1 : 0;
        changed[field] = v;
      }
    }
    const narrative: Narrative = { description: current.description, cause: current.cause, containmentActions: [...current.containmentActions], ...(current.assessment.override ? { overrideJustification: current.assessment.override.justification } : {}) };
    let narrativeChanged = false;
    if (patch.description !== undefined && patch.description !== narrative.description) {
      narrative.description = checkText(patch.description, 'description', MAX_TEXT);
      changed.description = 'changed';
      narrativeChanged = true;
    }
    if (patch.cause !== undefined && patch.cause !== narrative.cause) {
      narrative.cause = checkText(patch.cause, 'cause', MAX_TEXT);
      changed.cause = 'changed';
      narrativeChanged = true;
    }
    if (patch.containmentActions !== undefined && JSON.stringify(patch.containmentActions) !== JSON.stringify(narrative.containmentActions)) {
      narrative.containmentActions = checkList(patch.containmentActions, 'containmentActions');
      changed.containmentActions = narrative.containmentActions.length;
      narrativeChanged = true;
    }
    if (narrativeChanged) set.narrative_sealed = await this.#seal(id, narrative);
    if (Object.keys(changed).length === 0 && patch.note === undefined) return current;
    await this.#deps.store.transaction(async (trx) => {
      const r = await breachDb(trx)
        .updateTable('incidents')
        .set({ ...(set as Record<string, never>), updated_at: toIso(now), revision: before.revision + 1 })
        .where('id', '=', id)
        .where('revision', '=', before.revision)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new CustodianError('CST_ERR_INCIDENT_INVALID_TRANSITION', 'the incident changed meanwhile; read it again and retry', { details: { status: current.status } });
      await this.#timeline(trx, id, ctx.actor, patch.status !== undefined && patch.status !== current.status ? 'status_changed' : 'updated', changed, patch.note ?? null, now);
      await this.#deps.audit?.record(trx, [{ actor: ctx.actor, action: 'incident.updated', targetType: 'incident', targetId: id, requestId: ctx.requestId ?? null, details: { fields: Object.keys(changed).sort(), status: (set.status) ?? current.status } }]);
    });
    return this.get(id);
  }

  /** Overrides the computed assessment with a recorded justification (sealed; audited with both outcomes). */
  async overrideAssessment(id: string, input: { outcome: BreachOutcome; justification: string }, ctx: ActorContext): Promise<IncidentView> {
    if (!BREACH_OUTCOMES.includes(input.outcome)) invalid([{ path: 'outcome', message: `one of ${BREACH_OUTCOMES.join(', ')}` }]);
    const justification = checkText(input.justification, 'justification', MAX_TEXT);
    if (justification.trim().length === 0) invalid([{ path: 'justification', message: 'required' }]);
    const now = this.#deps.clock.now();
    const row = await this.#row(this.#deps.store.db, id);
    const current = await this.#view(row);
    const narrative: Narrative = { description: current.description, cause: current.cause, containmentActions: [...current.containmentActions], overrideJustification: justification };
    const sealed = await this.#seal(id, narrative);
    await this.#deps.store.transaction(async (trx) => {
      await breachDb(trx).updateTable('incidents').set({ override_outcome: input.outcome, narrative_sealed: sealed, updated_at: toIso(now), revision: row.revision + 1 }).where('id', '=', id).execute();
      await this.#timeline(trx, id, ctx.actor, 'assessment_overridden', { computed: current.assessment.computed.outcome, outcome: input.outcome }, justification, now);
      await this.#deps.audit?.record(trx, [{ actor: ctx.actor, action: 'incident.assessment_overridden', targetType: 'incident', targetId: id, requestId: ctx.requestId ?? null, details: { computed: current.assessment.computed.outcome, outcome: input.outcome } }]);
    });
    return this.get(id);
  }

  /**
   * Raises escalations of open incidents' notification deadlines: once per incident, rule, point and due time,
   * when the time left falls under a configured point (24 h, 6 h by default) and once when it is overdue. Each
   * raise is audited (`incident.escalated`) and emitted (`incident.deadline_approaching` / `incident.deadline_missed`)
   * in one transaction with its row, so concurrent sweepers (serve and workers) raise it once. Run every minute.
   */
  async sweep(): Promise<{ raised: number }> {
    const now = this.#deps.clock.now();
    const rows = await breachDb(this.#deps.store.db).selectFrom('incidents').selectAll().where('status', 'in', [...RUNNING]).orderBy('id').limit(10_000).execute();
    let raised = 0;
    for (const row of rows) {
      const view = await this.#view(row, now);
      for (const d of view.deadlines) {
        if (d.met || d.dueAt === null) continue;
        const left = Date.parse(d.dueAt) - now;
        const point = left <= 0 ? 'overdue' : this.#pointFor(left);
        if (point === undefined) continue;
        const inserted = await this.#deps.store.transaction(async (trx) => {
          const r = await breachDb(trx)
            .insertInto('incident_escalations')
            .values({ incident_id: row.id, rule_id: d.ruleId, point, due_at: d.dueAt!, raised_at: toIso(now) })
            .onConflict((oc) => oc.doNothing())
            .executeTakeFirst();
          if (Number(r.numInsertedOrUpdatedRows ?? 0n) !== 1) return false;
          await this.#timeline(trx, row.id, 'system:breach-sweep', 'escalation', { ruleId: d.ruleId, point, dueAt: d.dueAt }, null, now);
          await this.#deps.audit?.record(trx, [{ actor: 'system:breach-sweep', action: 'incident.escalated', targetType: 'incident', targetId: row.id, details: { ruleId: d.ruleId, point, dueAt: d.dueAt, audience: d.audience } }]);
          const event: EventInput = {
            type: point === 'overdue' ? 'incident.deadline_missed' : 'incident.deadline_approaching',
            subjectId: null,
            purposes: [],
            data: { incidentId: row.id, ruleId: d.ruleId, audience: d.audience, stage: d.stage, jurisdiction: d.jurisdiction, dueAt: d.dueAt, leftMs: left, point },
          };
          await this.#deps.events?.emit(trx, [event]);
          return true;
        });
        if (inserted) raised++;
      }
    }
    if (raised > 0) this.#deps.events?.committed();
    return { raised };
  }

  /** The escalation point (e.g. `T-6h`) the time left falls under, the smallest that applies; undefined if none. */
  #pointFor(leftMs: number): string | undefined {
    let point: number | undefined;
    for (const p of this.#escalateAt) if (leftMs <= p) point = p;
    return point === undefined ? undefined : `T-${Math.round(point / 60_000)}m`;
  }

  /** Escalations raised for an incident. */
  async escalations(id: string): Promise<Array<{ ruleId: string; point: string; dueAt: string; raisedAt: string }>> {
    const rows = await breachDb(this.#deps.store.db).selectFrom('incident_escalations').selectAll().where('incident_id', '=', id).orderBy('raised_at').execute();
    return rows.map((r) => ({ ruleId: r.rule_id, point: r.point, dueAt: storedToIso(r.due_at), raisedAt: storedToIso(r.raised_at) }));
  }

  /**
   * The people with rows in the affected collections, found through the data map's identity fields and the
   * data connectors (`DataConnector.scan`: keyset pages of {@link SCOPE_PAGE_ROWS} rows by the collection's
   * primary key), optionally only rows whose timestamp field ({@link windowField}) lies in [from, to). Each
   * system is opened once through `deps.connect` and closed however the stream ends. Streamed in batches of
   * at most {@link SCOPE_BATCH_ROWS}; identities go only to the caller (never to logs or the audit log).
   *
   * De-duplication is per identity kind: a row is streamed only when at least one of its identity values was
   * not streamed before under that kind (across collections and systems), and it counts as a new person only
   * when none of them was (a row sharing an e-mail address with an earlier one is the same person). When the
   * stream is read to its end, that count is stored on the incident and audited. Memory: one 16-byte digest
   * per distinct identity value; time: one bounded page read per page (a statement, a stretch of a file, SCAN calls).
   *
   * Collections that cannot be scoped are reported through `onProgress` with `skipped` and in the timeline,
   * not fatal: no identity field, no connection, no primary key to page by (unless the only identity field
   * can serve), or a connector that answers CST_ERR_CONNECTOR_UNSUPPORTED (HTTP services without the scan operation;
   * Redis with a window).
   */
  async *affectedSubjects(id: string, options: { from?: string; to?: string; signal?: AbortSignal; onProgress?: (p: ScopeProgress) => void; actor?: string } = {}): AsyncGenerator<readonly AffectedSubject[]> {
    for (const [path, v] of [['from', options.from], ['to', options.to]] as const) if (v !== undefined && !isIsoInstant(v)) invalid([{ path, message: 'must be an ISO-8601 instant' }]);
    const row = await this.#row(this.#deps.store.db, id);
    const current = await this.#deps.dataMap();
    if (current === undefined) throw new CustodianError('CST_ERR_DATAMAP_NOT_FOUND', 'no data map is stored: scoping needs one');
    const { map } = current;
    const collections = scopeCollections(map, JSON.parse(row.collections) as string[], JSON.parse(row.systems) as string[]);
    const tally = new IdentityTally((text) => this.#deps.cipher.keyedDigest(text));
    let subjects = 0;
    const scanned: string[] = [];
    const skipped: string[] = [];
    const skip = (address: string, reason: string): void => {
      skipped.push(address);
      options.onProgress?.({ collection: address, rows: 0, done: true, skipped: reason });
    };
    const connect = this.#deps.connect;
    // One connector per system, shared by its collections, closed however the stream ends.
    const connectors = new Map<string, Promise<DataConnector>>();
    const connectorOf = (system: string): Promise<DataConnector> => {
      let c = connectors.get(system);
      if (c === undefined) {
        c = connect!(map, system);
        connectors.set(system, c);
      }
      return c;
    };
    try {
      for (const entry of collections) {
        const idFields = entry.collection.fields.filter((f) => f.identity !== undefined);
        if (idFields.length === 0) {
          skip(entry.address, 'no identity field');
          continue;
        }
        if (connect === undefined || entry.system.connection === undefined) {
          skip(entry.address, 'no connection');
          continue;
        }
        // Keyset pages need a unique key; a lone identity field can serve, as rows sharing its value are one person.
        const keyField = entry.collection.fields.find((f) => f.primaryKey === true)?.name ?? (idFields.length === 1 ? idFields[0]!.name : undefined);
        if (keyField === undefined) {
          skip(entry.address, 'no primary key to page by');
          continue;
        }
        const timeField = windowField(entry);
        const window = timeField !== undefined && (options.from !== undefined || options.to !== undefined) ? { timeField, from: options.from, to: options.to } : {};
        const target = { name: entry.collection.name, options: entry.collection.connector ?? {} };
        let connector: DataConnector;
        try {
          connector = await connectorOf(entry.system.key);
        } catch (err) {
          // No connector for this kind of system (URL scheme): reported like a kind that cannot scan.
          if (err instanceof CustodianError && err.code === 'CST_ERR_CONNECTOR_UNSUPPORTED') {
            skip(entry.address, err.message);
            continue;
          }
          throw err;
        }
        let rows = 0;
        let cursor: string | undefined;
        let unsupported: string | undefined;
        for (;;) {
          options.signal?.throwIfAborted();
          let scanned: ScanPage;
          try {
            scanned = await connector.scan(target, { keyField, fields: idFields.map((f) => f.name), cursor, limit: SCOPE_PAGE_ROWS, ...window }, options.signal ? { signal: options.signal } : {});
          } catch (err) {
            // A system kind that cannot be read whole is reported, not fatal: the other collections are still scoped.
            if (rows === 0 && err instanceof CustodianError && err.code === 'CST_ERR_CONNECTOR_UNSUPPORTED') {
              unsupported = err.message;
              break;
            }
            throw err;
          }
          // Only a page without `next` ends the collection: a page may come back short, or empty, while rows remain.
          const page = scanned.rows;
          for (let at = 0; at < page.length; at += SCOPE_BATCH_ROWS) {
            const batch = page.slice(at, at + SCOPE_BATCH_ROWS);
            const out: AffectedSubject[] = [];
            for (const r of batch) {
              const identities: Record<string, string> = {};
              for (const f of idFields) {
                const v = r[f.name];
                if (typeof v === 'string' ? v !== '' : typeof v === 'number' || typeof v === 'bigint') identities[f.identity!] = String(v);
              }
              if (Object.keys(identities).length === 0) continue;
              const seen = tally.add(identities);
              if (seen === 'all') continue;
              if (seen === 'none') subjects++;
              out.push({ collection: entry.address, identities });
            }
            rows += batch.length;
            options.onProgress?.({ collection: entry.address, rows, done: false });
            if (out.length > 0) yield out;
          }
          if (scanned.next === null) break;
          // A page that does not move on would loop forever.
          if (scanned.next === cursor) {
            throw new CustodianError('CST_ERR_CONNECTOR_FAILED', `the pages of collection ${entry.address} do not move on`, { details: { collection: entry.address, field: keyField, reason: 'pagination loop' } });
          }
          cursor = scanned.next;
        }
        if (unsupported !== undefined) {
          skip(entry.address, unsupported);
          continue;
        }
        scanned.push(entry.address);
        options.onProgress?.({ collection: entry.address, rows, done: true });
      }
    } finally {
      await Promise.all([...connectors.values()].map(async (c) => (await c.catch(() => undefined))?.close().catch(() => undefined)));
    }
    const now = this.#deps.clock.now();
    await this.#deps.store.transaction(async (trx) => {
      await breachDb(trx).updateTable('incidents').set({ subjects_count: subjects, updated_at: toIso(now) }).where('id', '=', id).execute();
      await this.#timeline(trx, id, options.actor ?? 'system', 'scoped', { subjects, collections: scanned, ...(skipped.length > 0 ? { skipped } : {}), ...(options.from ? { from: options.from } : {}), ...(options.to ? { to: options.to } : {}) }, null, now);
      await this.#deps.audit?.record(trx, [{ actor: options.actor ?? 'system', action: 'incident.scoped', targetType: 'incident', targetId: id, details: { subjects, collections: scanned, ...(skipped.length > 0 ? { skipped } : {}) } }]);
    });
  }

  /** The drafts of the notifications: to the supervisory authority (Art. 33(3)) and to the people (Art. 34(2)). */
  async drafts(id: string): Promise<{ authority: RenderedMessage; individuals: RenderedMessage }> {
    const facts = await this.#facts(await this.get(id));
    return { authority: authorityDraft(facts), individuals: individualsDraft(facts) };
  }

  /** Who was notified when (recipients as keyed digests). */
  async notifications(id: string): Promise<NotificationRecord[]> {
    const rows = await breachDb(this.#deps.store.db).selectFrom('incident_notifications').selectAll().where('incident_id', '=', id).orderBy('id').execute();
    return rows.map((r) => ({ id: r.id, audience: r.audience as BreachAudience, stage: r.stage as BreachStage, jurisdiction: r.jurisdiction, recipientDigest: r.recipient_digest, mailId: r.mail_id, actor: r.actor, notifiedAt: storedToIso(r.notified_at) }));
  }

  /**
   * Queues notifications in the mail outbox (sealed recipients and bodies; sent by the outbox dispatcher):
   * to the authority or CSIRT at the addresses the operator gives, or to every e-mail address scoping finds.
   * Records each recipient (as a keyed digest) with the time, a timeline entry and an audit entry.
   */
  async notify(
    id: string,
    input: { audience: BreachAudience; to?: readonly string[]; jurisdiction?: string | null; stage?: BreachStage; from?: string; toTime?: string },
    ctx: ActorContext & { onProgress?: (p: ScopeProgress) => void },
  ): Promise<NotificationResult> {
    const incident = await this.get(id);
    if (incident.status === 'dismissed' || incident.status === 'suspected') {
      throw new CustodianError('CST_ERR_INCIDENT_INVALID_TRANSITION', `an incident that is ${incident.status} cannot be notified`, { details: { status: incident.status } });
    }
    if (input.jurisdiction != null && !JURISDICTION_CODE_PATTERN.test(input.jurisdiction)) invalid([{ path: 'jurisdiction', message: 'must be a jurisdiction code such as EU' }]);
    const stage: BreachStage = input.stage ?? 'notification';
    const drafts = await this.drafts(id);
    const message = input.audience === 'individuals' ? drafts.individuals : drafts.authority;
    const template = input.audience === 'individuals' ? 'breach_individual' : 'breach_authority';
    let recipients: string[];
    if (input.audience === 'individuals') {
      const found = new Set<string>();
      for await (const batch of this.affectedSubjects(id, { ...(input.from ? { from: input.from } : {}), ...(input.toTime ? { to: input.toTime } : {}), actor: ctx.actor, ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}) })) {
        for (const s of batch) if (s.identities.email !== undefined) found.add(s.identities.email.trim().toLowerCase());
      }
      recipients = [...found];
    } else {
      recipients = [...new Set((input.to ?? []).map((t) => t.trim()).filter((t) => t.length > 0))];
      recipients.forEach((t, i) => {
        if (t.length > 320 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(t)) invalid([{ path: `to.${i}`, message: 'must be an e-mail address' }]);
      });
    }
    if (recipients.length === 0) throw new CustodianError('CST_ERR_INCIDENT_NO_RECIPIENTS', input.audience === 'individuals' ? 'scoping found no e-mail address of an affected person' : 'give the address of the authority (to)');
    const now = this.#deps.clock.now();
    const at = toIso(now);
    const body = `${message.subject}\n\n${message.text}`;
    for (let i = 0; i < recipients.length; i += 200) {
      const chunk = recipients.slice(i, i + 200);
      const rows = await Promise.all(
        chunk.map(async (to) => {
          const mailId = uuidv7(now);
          return {
            mail: { id: mailId, request_id: null, template, to_sealed: await this.#deps.cipher.encryptField(incidentSubject(id), to, MAIL_TO_CONTEXT), body_sealed: await this.#deps.cipher.encryptField(incidentSubject(id), body, MAIL_BODY_CONTEXT), created_at: at, claimed_until: null, sent_at: null },
            record: { id: uuidv7(now), incident_id: id, audience: input.audience, stage, jurisdiction: input.jurisdiction ?? null, recipient_digest: this.#deps.cipher.keyedDigest(`breach-recipient:${to.toLowerCase()}`), mail_id: mailId, actor: ctx.actor.slice(0, 128), notified_at: at },
          };
        }),
      );
      await this.#deps.store.transaction(async (trx) => {
        const db = breachDb(trx);
        await db.insertInto('mail_outbox').values(rows.map((r) => r.mail)).execute();
        await db.insertInto('incident_notifications').values(rows.map((r) => r.record)).execute();
      });
    }
    await this.#deps.store.transaction(async (trx) => {
      await this.#timeline(trx, id, ctx.actor, 'notified', { audience: input.audience, stage, jurisdiction: input.jurisdiction ?? null, recipients: recipients.length }, null, now);
      await this.#deps.audit?.record(trx, [{ actor: ctx.actor, action: 'incident.notified', targetType: 'incident', targetId: id, requestId: ctx.requestId ?? null, details: { audience: input.audience, stage, jurisdiction: input.jurisdiction ?? null, recipients: recipients.length } }]);
    });
    return { audience: input.audience, stage, jurisdiction: input.jurisdiction ?? null, queued: recipients.length, notifiedAt: at };
  }

  /** Audits that identities of affected people were handed to a caller (HTTP, CLI), with the purpose it stated. */
  /**
   * Audits a read of incidents' free text (description, cause, containment actions, timeline notes: sealed,
   * and possibly holding personal data) as one `incident.narrative_read` entry with the number of incidents
   * read and the stated purpose. `id` names the incident when one was read (null for a list).
   */
  async recordNarrativesRead(id: string | null, count: number, ctx: ActorContext & { readonly purpose?: string }): Promise<void> {
    if (count > 0) await this.#recordRead('incident.narrative_read', id, count, ctx);
  }

  async recordSubjectsRead(id: string, count: number, ctx: ActorContext & { readonly purpose?: string }): Promise<void> {
    await this.#recordRead('incident.subjects_read', id, count, ctx);
  }

  /** One incident with its timeline and notification records (what `GET /v1/incidents/{id}` and `incident show` answer). */
  async detail(id: string): Promise<IncidentView & { timeline: TimelineEntry[]; notifications: Awaited<ReturnType<IncidentService['notifications']>> }> {
    return { ...(await this.get(id)), timeline: await this.timeline(id), notifications: await this.notifications(id) };
  }

  async #recordRead(action: 'incident.narrative_read' | 'incident.subjects_read', id: string | null, count: number, ctx: ActorContext & { readonly purpose?: string }): Promise<void> {
    await this.#deps.store.transaction(async (trx) => {
      await this.#deps.audit?.record(trx, [{ actor: ctx.actor, action, targetType: 'incident', targetId: id, requestId: ctx.requestId ?? null, details: { count, ...purposeDetails(ctx) } }]);
    });
  }

  // --- internals -----------------------------------------------------------------------------------------

  async #facts(v: IncidentView): Promise<DraftFacts> {
    const org = (await this.#deps.dataMap())?.map.manifest.organization;
    const notifiedAuthority = v.deadlines.find((d) => d.audience === 'authority' && d.dueAt !== null);
    return {
      incidentId: v.id,
      title: v.title,
      description: v.description,
      cause: v.cause,
      containmentActions: v.containmentActions,
      detectedAt: v.detectedAt,
      occurredAt: v.occurredAt,
      dataCategories: v.dataCategories,
      affectedCount: v.affectedCount,
      subjectsCount: v.subjectsCount,
      recordsCount: v.recordsCount,
      organization: org?.name ?? 'The controller',
      dpoContact: org?.dpo ?? org?.contact ?? 'not declared in the data map (organization.dpo)',
      encrypted: v.encrypted,
      keysCompromised: v.keysCompromised,
      late: notifiedAuthority !== undefined && !notifiedAuthority.met && notifiedAuthority.overdue,
    };
  }

  async #seal(id: string, narrative: Narrative): Promise<string> {
    return this.#deps.cipher.encryptField(incidentSubject(id), JSON.stringify(narrative), narrativeContext(id));
  }

  async #timeline(trx: Executor, incidentId: string, actor: string, kind: string, changes: Record<string, unknown>, note: string | null, now: number): Promise<void> {
    const entryId = uuidv7(now);
    const noteSealed = note === null ? null : await this.#deps.cipher.encryptField(incidentSubject(incidentId), note, noteContext(incidentId, entryId));
    await breachDb(trx).insertInto('incident_timeline').values({ id: entryId, incident_id: incidentId, at: toIso(now), actor: actor.slice(0, 128), kind, changes: JSON.stringify(changes), note_sealed: noteSealed }).execute();
  }

  async #row(db: Executor, id: string): Promise<IncidentRow> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new CustodianError('CST_ERR_INCIDENT_NOT_FOUND', 'no such incident', { details: { id: id.slice(0, 64) } });
    const row = await breachDb(db).selectFrom('incidents').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new CustodianError('CST_ERR_INCIDENT_NOT_FOUND', 'no such incident', { details: { id } });
    return row;
  }

  async #view(r: IncidentRow, now = this.#deps.clock.now()): Promise<IncidentView> {
    const narrative = JSON.parse(await this.#deps.cipher.decryptFieldText(r.narrative_sealed, narrativeContext(r.id))) as Narrative;
    const dataCategories = JSON.parse(r.data_categories) as string[];
    const computed = assessRisk({ dataCategories, affectedCount: r.affected_count, encrypted: r.encrypted === 1, keysCompromised: r.keys_compromised === 1 });
    const override = r.override_outcome === null ? null : { outcome: r.override_outcome as BreachOutcome, justification: narrative.overrideJustification ?? '' };
    const outcome = override?.outcome ?? computed.outcome;
    const detectedAt = storedToIso(r.detected_at);
    const jurisdictions = JSON.parse(r.jurisdictions) as string[];
    const notified = await breachDb(this.#deps.store.db)
      .selectFrom('incident_notifications')
      .select(['audience', 'stage', 'jurisdiction'])
      .select((eb) => eb.fn.min('notified_at').as('first'))
      .where('incident_id', '=', r.id)
      .groupBy(['audience', 'stage', 'jurisdiction'])
      .execute();
    const notifications = notified.map((n) => ({ audience: n.audience, stage: n.stage, jurisdiction: n.jurisdiction, notifiedAt: storedToIso(n.first) }));
    const deadlines = breachDeadlines({ jurisdictions, detectedAt, outcome, nis2: r.nis2 === 1, encrypted: r.encrypted === 1, keysCompromised: r.keys_compromised === 1, affectedCount: r.affected_count, holidays: this.#holidays, notifications }).map((d): IncidentDeadline => {
      const hits = notified.filter((n) => n.audience === d.audience && n.stage === d.stage && (n.jurisdiction === null || n.jurisdiction === d.jurisdiction)).map((n) => storedToIso(n.first));
      const metAt = hits.length === 0 ? null : hits.sort()[0]!;
      const leftMs = d.dueAt === null ? null : Date.parse(d.dueAt) - now;
      return { ...d, met: metAt !== null, metAt, overdue: metAt === null && leftMs !== null && leftMs < 0, leftMs };
    });
    return {
      id: r.id,
      status: r.status as IncidentStatus,
      title: r.title,
      description: narrative.description,
      cause: narrative.cause,
      containmentActions: narrative.containmentActions,
      detectedAt,
      occurredAt: r.occurred_at === null ? null : storedToIso(r.occurred_at),
      systems: JSON.parse(r.systems) as string[],
      collections: JSON.parse(r.collections) as string[],
      dataCategories,
      jurisdictions,
      affectedCount: r.affected_count,
      recordsCount: r.records_count,
      encrypted: r.encrypted === 1,
      keysCompromised: r.keys_compromised === 1,
      nis2: r.nis2 === 1,
      subjectsCount: r.subjects_count,
      source: r.source,
      assessment: { computed, override, outcome },
      deadlines,
      createdBy: r.created_by,
      createdAt: storedToIso(r.created_at),
      updatedAt: storedToIso(r.updated_at),
      revision: r.revision,
    };
  }

  /** Validates an incident against the clock, the data map and the taxonomy; every problem is reported at once. */
  async #check(input: IncidentInput, now: number, current: IncidentView | undefined) {
    const issues: Array<{ path: string; message: string; suggestions?: string[] }> = [];
    const title = typeof input.title === 'string' ? input.title.trim() : '';
    if (title.length === 0 || title.length > 200 || !isStorableText(title)) issues.push({ path: 'title', message: 'a title of 1 to 200 characters is required' });
    for (const [path, v] of [['description', input.description], ['cause', input.cause]] as const) {
      if (v !== undefined && (typeof v !== 'string' || v.length > MAX_TEXT || !isStorableText(v))) issues.push({ path, message: `text of at most ${MAX_TEXT} characters` });
    }
    (input.containmentActions ?? []).forEach((a, i) => {
      if (typeof a !== 'string' || a.length === 0 || a.length > 2000 || !isStorableText(a)) issues.push({ path: `containmentActions.${i}`, message: 'text of 1 to 2,000 characters' });
    });
    const instantOf = (path: string, v: string | null | undefined): number | undefined => {
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string' || !isIsoInstant(v)) {
        issues.push({ path, message: 'must be an ISO-8601 instant with offset' });
        return undefined;
      }
      const ms = Date.parse(v);
      if (ms > now + this.#skewMs) issues.push({ path, message: 'must not be in the future' });
      return ms;
    };
    const detected = instantOf('detectedAt', input.detectedAt) ?? (input.detectedAt === undefined ? (current ? Date.parse(current.detectedAt) : now) : undefined);
    const occurred = instantOf('occurredAt', input.occurredAt);
    if (detected !== undefined && occurred !== undefined && occurred > detected) issues.push({ path: 'detectedAt', message: 'awareness (detectedAt) cannot come before the breach occurred (occurredAt)' });
    for (const path of ['affectedCount', 'recordsCount'] as const) {
      const v = input[path];
      if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) issues.push({ path, message: 'must be a non-negative whole number' });
    }
    const jurisdictions = [...new Set(input.jurisdictions ?? ['EU'])];
    jurisdictions.forEach((j, i) => {
      if (typeof j !== 'string' || !JURISDICTION_CODE_PATTERN.test(j)) issues.push({ path: `jurisdictions.${i}`, message: 'must be a jurisdiction code such as EU, UK, BR, US-CA' });
    });
    if (jurisdictions.length > 50) issues.push({ path: 'jurisdictions', message: 'at most 50' });
    const systems = [...new Set(input.systems ?? [])];
    const collections = [...new Set(input.collections ?? [])];
    if (systems.length > MAX_LIST || collections.length > MAX_LIST) issues.push({ path: systems.length > MAX_LIST ? 'systems' : 'collections', message: `at most ${MAX_LIST}` });
    const given = input.dataCategories !== undefined;
    let categories = [...new Set(input.dataCategories ?? [])];
    if (systems.length > 0 || collections.length > 0) {
      const map = (await this.#deps.dataMap())?.map;
      if (map === undefined) issues.push({ path: systems.length > 0 ? 'systems' : 'collections', message: 'no data map is stored: store one before naming systems or collections' });
      else {
        systems.forEach((s, i) => {
          if (map.system(s) === undefined) issues.push({ path: `systems.${i}`, message: 'not a system of the data map' });
        });
        collections.forEach((c, i) => {
          const entry = typeof c === 'string' ? map.collection(c) : undefined;
          if (entry === undefined) issues.push({ path: `collections.${i}`, message: 'not a collection (<dataset>.<collection>) of the data map' });
          else if (!systems.includes(entry.system.key)) systems.push(entry.system.key);
        });
        if (!given) {
          const found = new Set<string>();
          for (const c of collections) for (const f of map.fields()) if (`${f.dataset.key}.${f.collection.name}` === c) f.field.dataCategories.forEach((k) => found.add(k));
          categories = [...found].sort();
        }
      }
    }
    categories.forEach((k, i) => {
      if (typeof k !== 'string' || !(isDataCategory(k) || SPECIAL_CATEGORY_PREFIXES.includes(k) || SENSITIVE_CATEGORY_PREFIXES.includes(k))) {
        const suggestions = typeof k === 'string' ? closestTaxonomyKeys(k.slice(0, 200), 'data_category') : [];
        issues.push({ path: `dataCategories.${i}`, message: 'not a fideslang data category', ...(suggestions.length > 0 ? { suggestions } : {}) });
      }
    });
    if (categories.length > 200) issues.push({ path: 'dataCategories', message: 'at most 200' });
    if (issues.length > 0) invalid(issues);
    return {
      title,
      detectedAt: toIso(detected!),
      occurredAt: occurred === undefined ? null : toIso(occurred),
      systems: systems.sort(),
      collections: collections.sort(),
      dataCategories: categories.sort(),
      jurisdictions: jurisdictions.sort(),
      affectedCount: input.affectedCount ?? null,
      recordsCount: input.recordsCount ?? null,
    };
  }
}

/** The keyring subject owning an incident's sealed text and breach mail. */
export function incidentSubject(id: string): string {
  return `incident:${id}`;
}

// The mail outbox's dispatcher opens rows without a request id under these contexts (request-engine.ts mailContext).
const MAIL_TO_CONTEXT = 'custodian.mail_outbox.to:none';
const MAIL_BODY_CONTEXT = 'custodian.mail_outbox.body:none';
const narrativeContext = (id: string) => `custodian.incidents.narrative:${id}`;
const noteContext = (id: string, entryId: string) => `custodian.incident_timeline.note:${id}:${entryId}`;

function invalid(issues: ReadonlyArray<{ path: string; message: string }>): never {
  throw new CustodianError('CST_ERR_INCIDENT_INVALID', `the incident is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`.slice(0, 2000), { details: { issues } });
}

function checkText(v: unknown, path: string, max: number): string {
  if (typeof v !== 'string' || v.length > max || !isStorableText(v)) invalid([{ path, message: `text of at most ${max} characters` }]);
  return v;
}

function checkList(v: readonly unknown[], path: string): string[] {
  if (!Array.isArray(v) || v.length > 100) invalid([{ path, message: 'at most 100 entries' }]);
  return v.map((x, i) => checkText(x, `${path}.${i}`, 2000));
}

/** The collections to scope: those named, else every collection of the systems named. */
/**
 * The identity values scoping has streamed, per identity kind, as 16-byte keyed digests (never the values):
 * O(1) per value, memory O(distinct values). E-mail addresses compare without case.
 */
class IdentityTally {
  readonly #digest: (text: string) => string;
  readonly #known = new Map<string, Set<string>>();

  constructor(digest: (text: string) => string) {
    this.#digest = digest;
  }

  /** Records the identities of one row: whether `none`, `some` or `all` of its values were recorded before. */
  add(identities: Readonly<Record<string, string>>): 'none' | 'some' | 'all' {
    let fresh = 0;
    let old = 0;
    for (const [kind, value] of Object.entries(identities)) {
      const digest = this.#digest(`${kind}=${kind === 'email' ? value.trim().toLowerCase() : value}`).slice(0, 32);
      let set = this.#known.get(kind);
      if (set === undefined) this.#known.set(kind, (set = new Set()));
      if (set.has(digest)) old++;
      else {
        set.add(digest);
        fresh++;
      }
    }
    return old === 0 ? 'none' : fresh === 0 ? 'all' : 'some';
  }
}

function scopeCollections(map: DataMap, collections: readonly string[], systems: readonly string[]): CollectionEntry[] {
  if (collections.length > 0) return collections.flatMap((c) => map.collection(c) ?? []);
  return map.collections().filter((c) => systems.includes(c.system.key));
}

/** The timestamp field a time window filters on: the collection's first retention field, else a date-typed field, else `created_at`. */
export function windowField(entry: CollectionEntry): string | undefined {
  const retention = entry.collection.retention[0]?.field;
  if (retention !== undefined) return retention;
  const typed = entry.collection.fields.find((f) => f.dataType !== undefined && /date|time/i.test(f.dataType));
  if (typed !== undefined) return typed.name;
  return entry.collection.fields.find((f) => f.name === 'created_at')?.name;
}
