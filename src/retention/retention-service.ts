import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { CustodianError, isCustodianError, parseRetentionPeriod, storedToIso, subtractPeriod, toIso, uuidv7, type AuditSink, type Clock } from '../core/index.js';
import { MAX_SCAN_PAGE, type CollectionTarget, type DataConnector, type KeyValue, type Row, type RowChange, type ScanPage } from '../connectors/data/index.js';
import type { CollectionEntry, DataMap, Erasure, RetentionRule } from '../datamap/index.js';
import { FINAL_STATUSES, hashValue } from '../rights/index.js';
import type { Executor, Store } from '../store/index.js';
import { identityDigestText, identityFieldsOf, normaliseIdentityValue, type IdentityField } from './holds.js';
import { LegalHolds, type ActiveHolds, type CreateLegalHoldInput, type LegalHoldView } from './legal-holds.js';

/** Rows per batch by default: one page read, one delete statement, one progress save. */
export const RETENTION_BATCH_SIZE = 1_000;
/** How long the run lease lasts without renewal (renewed after every batch). */
export const RETENTION_LEASE_MS = 60_000;
/** Rows past due the retention report reads per rule by default to tell them apart; past it the split is estimated. */
export const RETENTION_REPORT_SCAN_ROWS = 100_000;
const LEASE_NAME = 'retention';
/** How long the set of held subjects is reused before it is read again (open requests come and go). */
const HOLDS_TTL_MS = 2_000;
/** Values of the `hash` strategy (as rights/executor.ts writes them): already anonymised. */
const HASHED = /^[0-9a-f]{64}$/;

/** Why rows past due were left in place. */
export type SkipReason = 'subject_hold' | 'legal_hold' | 'changed_meanwhile' | 'already_anonymised';

/** What one rule of one collection did in a run (a dry run: what it would do). */
export interface RetentionCollectionReport {
  /** `<dataset>.<collection>` */
  readonly collection: string;
  readonly system: string;
  /** Index of the rule in the collection's `retention` list. */
  readonly rule: number;
  readonly action: 'delete' | 'anonymise';
  /** Rows whose age field is before this are past due. */
  readonly cutoff: string;
  /** pending | running | done | skipped | failed */
  readonly state: string;
  /** Rows past due that were examined. */
  readonly matched: number;
  readonly deleted: number;
  readonly anonymised: number;
  /** Rows past due left in place, by reason. */
  readonly skipped: Readonly<Partial<Record<SkipReason, number>>>;
  /** Why the rule was skipped or failed (an error code and message without values). */
  readonly error: string | null;
}

/** A retention run as stored and shown. */
export interface RetentionRunView {
  readonly id: string;
  readonly status: 'running' | 'completed' | 'failed';
  readonly dryRun: boolean;
  readonly system: string | null;
  readonly datamapVersion: number;
  /** The instant cutoffs are computed from (cutoff = asOf − period). */
  readonly asOf: string;
  readonly actor: string;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  /** How many times the run was resumed after an interruption. */
  readonly resumed: number;
  readonly error: string | null;
  readonly totals: { readonly matched: number; readonly deleted: number; readonly anonymised: number; readonly skipped: number };
  readonly collections: readonly RetentionCollectionReport[];
}

/** Input of {@link RetentionService.run} and {@link RetentionService.start}. */
export interface RetentionRunInput {
  /** Count only: nothing is changed, no lease is taken. */
  readonly dryRun?: boolean | undefined;
  /** Only the collections of this system. */
  readonly system?: string | undefined;
  readonly actor: string;
  readonly signal?: AbortSignal | undefined;
  /** Told after every batch. */
  readonly onProgress?: ((progress: RetentionProgress) => void) | undefined;
}

/** Progress of a run, after a batch. */
export interface RetentionProgress {
  readonly runId: string;
  readonly collection: string;
  readonly rule: number;
  /** Rules finished (done, skipped or failed) and their total. */
  readonly rulesDone: number;
  readonly rulesTotal: number;
  readonly matched: number;
  readonly changed: number;
}

/**
 * Why a row past due is kept (retention report): a legal hold on its collection or system, a legal hold on
 * its subject, or an open data subject request of its subject. A row is counted once, under the first reason
 * that applies in this order.
 */
export type HoldReason = 'legal_hold' | 'subject_legal_hold' | 'open_request';

/** One rule in the retention report. */
export interface RetentionReportRule {
  readonly collection: string;
  readonly system: string;
  readonly rule: number;
  readonly field: string;
  readonly period: string;
  readonly action: 'delete' | 'anonymise';
  readonly cutoff: string;
  /**
   * Rows past due now that a run would delete or anonymise (actionable: not held), or null when not measurable.
   * When held rows cannot be told apart (`pastDueHeld` null without an error), every row past due.
   */
  readonly pastDue: number | null;
  /**
   * Rows past due now that a run keeps because they are held (GDPR Art. 17(3)(e); open requests), or null when
   * not measurable — or unknown: a collection without a primaryKey cannot be read page by page to tell them apart.
   */
  readonly pastDueHeld: number | null;
  /** {@link RetentionReportRule.pastDueHeld} by reason (they add up to it), or null when it is null. */
  readonly heldReasons: Readonly<Record<HoldReason, number>> | null;
  /**
   * Anonymise rules: rows past due whose named fields are already anonymised — their rule is met, they stay past
   * due by age only (0 for delete rules; null when not measurable or unknown, as `pastDueHeld`).
   */
  readonly anonymised: number | null;
  /** Every row past due (`pastDue + pastDueHeld + anonymised` when those are known), counted: exact even when they are estimated. */
  readonly pastDueAll: number | null;
  /** Rows past due read to tell them apart (0 when counts sufficed); null when not measurable. */
  readonly scanned: number | null;
  /**
   * Whether `pastDue`, `pastDueHeld`, `heldReasons` and `anonymised` are estimated: the rule has more rows past
   * due than the report reads ({@link RetentionServiceOptions.reportScanRows}), so the split of the first
   * `scanned` is scaled to `pastDueAll` (largest remainder: they still add up to it).
   */
  readonly estimated: boolean;
  /** Rows that will come due in the next {@link RetentionReport.horizonDays} days. */
  readonly dueSoon: number | null;
  /**
   * No actionable row past due (held rows never make a rule non-compliant); null when not measurable, or when
   * estimated and no actionable row was among those read (the rows not read may hold some).
   */
  readonly compliant: boolean | null;
  readonly heldBy: 'legal_hold' | null;
  readonly error: string | null;
}

/** The retention report: every rule of the data map measured against the real systems. */
export interface RetentionReport {
  readonly generatedAt: string;
  readonly datamapVersion: number | null;
  readonly horizonDays: number;
  readonly rules: readonly RetentionReportRule[];
  /**
   * 100 × (measured rules with no actionable row past due) / (measured rules), one decimal; null when no rule
   * was measured. Measured: `compliant` is not null. Held rows do not count against a rule.
   */
  readonly compliancePercent: number | null;
  /** Actionable rows past due, all rules. */
  readonly pastDueTotal: number;
  /** Held rows past due, all rules. */
  readonly pastDueHeldTotal: number;
  readonly dueSoonTotal: number;
  /** Whether some rule's split is estimated ({@link RetentionReportRule.estimated}): the totals above are then too. */
  readonly estimated: boolean;
  readonly lastRun: { readonly id: string; readonly status: string; readonly finishedAt: string | null; readonly dryRun: boolean } | null;
  readonly activeLegalHolds: number;
}

export interface RetentionServiceDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly audit?: AuditSink | undefined;
  /** The data map in force and its version. */
  readonly dataMap: () => Promise<{ map: DataMap; version: number } | undefined>;
  /** Opens a connector for a system of the data map (connection `${VAR}`s resolved). */
  readonly connect: (map: DataMap, systemKey: string) => Promise<DataConnector>;
  /** The keyed digest requests store for identities (keyring.keyedDigest); legal holds keep subjects this way. */
  readonly digest: (text: string) => string;
  /**
   * The identities of an open request, unsealed (RequestEngine.identitiesOf), so rows are matched by a set
   * look-up instead of a keyed digest per row. Without it (or when it fails) the request's digests are used.
   */
  readonly identitiesOf?: ((requestId: string) => Promise<Readonly<Record<string, readonly string[]>>>) | undefined;
  /** Key of the `hash` strategy (the one erasure uses, so hashed values stay joinable). */
  readonly hashKey: () => Promise<Buffer>;
}

export interface RetentionServiceOptions {
  /** Rows per batch (1–10,000; default {@link RETENTION_BATCH_SIZE}). */
  readonly batchSize?: number;
  /** Lease duration (default {@link RETENTION_LEASE_MS}); a run killed mid-way is resumed once it expires. */
  readonly leaseMs?: number;
  /** Pause between batches, leaving room to the application on a busy system (default 0). */
  readonly pauseMs?: number;
  /** Who holds the lease (default `<host>:<pid>:<random>`). */
  readonly owner?: string;
  /**
   * Rows past due the retention report reads at most per rule to tell held, anonymised and actionable rows apart
   * (at least 1; default {@link RETENTION_REPORT_SCAN_ROWS}); past it the split is estimated from those read.
   */
  readonly reportScanRows?: number;
}

/**
 * Who is held now: identities of open requests in clear (`<kind>\u0000<value>`) or, when they cannot be
 * unsealed, as keyed digests; subjects under a legal hold as keyed digests; and the legal holds themselves.
 */
interface HeldSubjects {
  readonly at: number;
  readonly requestValues: ReadonlySet<string>;
  readonly requestDigests: ReadonlySet<string>;
  readonly legalDigests: ReadonlySet<string>;
  readonly holds: ActiveHolds;
}

interface ProgressRow {
  run_id: string;
  collection: string;
  rule: number;
  system_key: string;
  action: string;
  cutoff: string | Date;
  cursor: string | null;
  state: string;
  matched: number;
  deleted: number;
  anonymised: number;
  skipped: string;
  error: string | null;
}

type RunRow = {
  id: string;
  status: string;
  dry_run: number;
  system_key: string | null;
  datamap_version: number;
  as_of: string | Date;
  actor: string;
  started_at: string | Date;
  finished_at: string | Date | null;
  resumed: number;
  error: string | null;
};

/** The rules of the map to apply, in declaration order, for `system` (all when undefined). */
function rulesOf(map: DataMap, system: string | undefined): { entry: CollectionEntry; rule: RetentionRule; index: number }[] {
  return map.collections().flatMap((entry) => (system !== undefined && entry.system.key !== system ? [] : entry.collection.retention.map((rule, index) => ({ entry, rule, index }))));
}

function cutoffOf(asOf: number, period: string): string {
  const p = parseRetentionPeriod(period);
  if (p === undefined) throw new CustodianError('CST_ERR_DATAMAP_INVALID', 'a retention period is not an ISO 8601 duration', { details: { period } });
  return toIso(subtractPeriod(new Date(asOf), p).getTime());
}

const DAY_MS = 86_400_000;

/** A short, value-free description of a failure, for reports. */
function describe(err: unknown): string {
  if (isCustodianError(err)) return `${err.code}: ${err.message}`.slice(0, 1000);
  return `CST_ERR_INTERNAL: ${err instanceof Error ? err.name : 'unknown error'}`;
}

/**
 * Applies the retention rules of the data map to the systems it describes (docs/retention.md).
 *
 * Per rule of each collection, rows past due (`age field < asOf − period`) are read in pages of `batchSize`
 * rows resumed by the connector's cursor (keyset pagination on the primary key for SQL, a byte offset for JSONL,
 * the service's cursor for HTTP); rows of subjects under hold (open data subject requests,
 * legal holds) are skipped; the rest are deleted (or their named fields anonymised with their erasure
 * strategy) by one statement per batch that re-checks the due condition, so a row that stopped being due
 * meanwhile is kept. Each batch is its own short transaction in the system: no lock outlives a batch.
 *
 * After every batch the rule's cursor (where the next page starts) and counts are saved in the store, and the lease
 * renewed: a run killed at any point is resumed by the next {@link RetentionService.run} once its lease has
 * expired, from the saved cursor with the same cutoffs. Deleting again what was already deleted deletes
 * nothing, so the batch that was cut short is simply done again. One run at a time across processes: the lease
 * row in the store (claimed under the store's lock: a PostgreSQL advisory lock, SQLite's exclusive writes).
 *
 * Cost: O(rows past due) reads and changes in batches; O(batch) memory.
 */
export class RetentionService {
  readonly #d: RetentionServiceDeps;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #pauseMs: number;
  readonly #owner: string;
  readonly #reportScanRows: number;
  readonly #holds: LegalHolds;
  #held: HeldSubjects | undefined;
  readonly #running = new Set<Promise<unknown>>();

  constructor(deps: RetentionServiceDeps, options: RetentionServiceOptions = {}) {
    this.#d = deps;
    this.#batchSize = Math.max(1, Math.min(10_000, Math.floor(options.batchSize ?? RETENTION_BATCH_SIZE)));
    this.#leaseMs = Math.max(1_000, options.leaseMs ?? RETENTION_LEASE_MS);
    this.#pauseMs = Math.max(0, options.pauseMs ?? 0);
    this.#owner = (options.owner ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`).slice(0, 128);
    this.#reportScanRows = Math.max(1, Math.floor(options.reportScanRows ?? RETENTION_REPORT_SCAN_ROWS));
    this.#holds = new LegalHolds({ store: deps.store, clock: deps.clock, audit: deps.audit, digest: deps.digest, dataMap: deps.dataMap });
  }

  /**
   * Runs retention to its end and resolves to the run's report. A run interrupted earlier (its process died)
   * is resumed first, with its own options. CST_ERR_RETENTION_BUSY when another process is running one.
   */
  async run(input: RetentionRunInput): Promise<RetentionRunView> {
    const { run, done } = await this.#begin(input);
    await done;
    return this.get(run.id);
  }

  /** Starts (or resumes) a run and resolves once it is recorded; the run goes on in the background. */
  async start(input: Omit<RetentionRunInput, 'signal'>): Promise<RetentionRunView> {
    const { run, done } = await this.#begin(input);
    const tracked = done.catch(() => undefined).finally(() => this.#running.delete(tracked));
    this.#running.add(tracked);
    return run;
  }

  /** Resolves when the runs started by {@link start} in this process have ended (for shutdown and tests). */
  async idle(): Promise<void> {
    await Promise.all([...this.#running]);
  }

  async get(id: string): Promise<RetentionRunView> {
    const row = await this.#d.store.db.selectFrom('retention_runs').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new CustodianError('CST_ERR_RETENTION_RUN_NOT_FOUND', 'no such retention run', { details: { id } });
    const progress = await this.#d.store.db.selectFrom('retention_progress').selectAll().where('run_id', '=', id).orderBy('collection').orderBy('rule').execute();
    return this.#view(row, progress);
  }

  /** The latest runs, newest first (without their per-collection detail). */
  async list(limit = 20): Promise<RetentionRunView[]> {
    const rows = await this.#d.store.db.selectFrom('retention_runs').selectAll().orderBy('id', 'desc').limit(Math.min(100, limit)).execute();
    return rows.map((r) => this.#view(r, []));
  }

  /** Places a legal hold; runs in this process see it from their next batch, other processes within 2 s. */
  async createHold(input: CreateLegalHoldInput): Promise<LegalHoldView> {
    const hold = await this.#holds.create(input);
    this.#held = undefined;
    return hold;
  }

  listHolds(options: { active?: boolean; limit?: number } = {}): Promise<LegalHoldView[]> {
    return this.#holds.list(options);
  }

  async releaseHold(id: string, actor: string): Promise<LegalHoldView> {
    const hold = await this.#holds.release(id, actor);
    this.#held = undefined;
    return hold;
  }

  /**
   * Every rule of the current data map measured against its system now (docs/retention.md#report): rows past due
   * that a run would change (actionable), rows past due that are held, by reason, and rows coming due in the
   * next `horizonDays` days; and the share of measured rules with no actionable row past due.
   *
   * Cost per rule, all bounded statements: two counts (past due, due soon) when no subject can be held in the
   * collection (no open request, no subject legal hold, or no identity field) and the rule is a delete rule, when
   * a legal hold covers the collection whole, or when the collection has no primaryKey (held rows then unknown).
   * Otherwise the rows past due are read in pages of {@link MAX_SCAN_PAGE} (key, identity and anonymised fields
   * only, O(page) memory) and told apart as a run would, at most `reportScanRows` per rule: O(min(rows past due,
   * reportScanRows)) reads, plus one count when the bound is reached and the split is estimated.
   */
  async report(options: { horizonDays?: number; signal?: AbortSignal } = {}): Promise<RetentionReport> {
    const horizonDays = Math.max(1, Math.min(366, Math.floor(options.horizonDays ?? 30)));
    const now = this.#d.clock.now();
    const current = await this.#d.dataMap();
    const held = await this.#heldSubjects();
    const holds = held.holds;
    const last = await this.#d.store.db.selectFrom('retention_runs').select(['id', 'status', 'finished_at', 'dry_run']).orderBy('id', 'desc').limit(1).executeTakeFirst();
    const lastRun = last === undefined ? null : { id: last.id, status: last.status, finishedAt: last.finished_at === null ? null : storedToIso(last.finished_at), dryRun: last.dry_run === 1 };
    const activeLegalHolds = holds.subjectDigests.size + holds.systems.size + holds.collections.size;
    if (current === undefined) {
      return { generatedAt: toIso(now), datamapVersion: null, horizonDays, rules: [], compliancePercent: null, pastDueTotal: 0, pastDueHeldTotal: 0, dueSoonTotal: 0, estimated: false, lastRun, activeLegalHolds };
    }
    const connectors = new Map<string, Promise<DataConnector>>();
    const rules: RetentionReportRule[] = [];
    const signal = options.signal ? { signal: options.signal } : {};
    try {
      for (const { entry, rule, index } of rulesOf(current.map, undefined)) {
        options.signal?.throwIfAborted();
        const cutoff = cutoffOf(now, rule.period);
        const heldBy = holds.systems.has(entry.system.key) || holds.collections.has(entry.address) ? ('legal_hold' as const) : null;
        const base = { collection: entry.address, system: entry.system.key, rule: index, field: rule.field, period: rule.period, action: rule.action, cutoff, heldBy };
        try {
          const connector = await this.#connector(connectors, current.map, entry.system.key);
          const split = await this.#pastDue(connector, current.map, entry, rule, cutoff, heldBy !== null, held, options.signal);
          const dueSoon = await connector.countExpired(targetOf(entry), { ageField: rule.field, cutoff: cutoffOf(now + horizonDays * DAY_MS, rule.period) }, { from: cutoff, ...signal });
          rules.push({ ...base, ...split, dueSoon, error: null });
        } catch (err) {
          if (options.signal?.aborted === true) throw err;
          rules.push({ ...base, pastDue: null, pastDueHeld: null, heldReasons: null, anonymised: null, pastDueAll: null, scanned: null, estimated: false, dueSoon: null, compliant: null, error: describe(err) });
        }
      }
    } finally {
      await closeAll(connectors);
    }
    const measured = rules.filter((r) => r.compliant !== null);
    return {
      generatedAt: toIso(now),
      datamapVersion: current.version,
      horizonDays,
      rules,
      compliancePercent: measured.length === 0 ? null : Math.round((measured.filter((r) => r.compliant).length / measured.length) * 1000) / 10,
      pastDueTotal: rules.reduce((n, r) => n + (r.pastDue ?? 0), 0),
      pastDueHeldTotal: rules.reduce((n, r) => n + (r.pastDueHeld ?? 0), 0),
      dueSoonTotal: rules.reduce((n, r) => n + (r.dueSoon ?? 0), 0),
      estimated: rules.some((r) => r.estimated),
      lastRun,
      activeLegalHolds,
    };
  }

  /**
   * The rows past due of one rule, told apart for the report (see {@link report} for the cost): counted when
   * nothing needs telling apart (or cannot be: no primaryKey), else read up to `reportScanRows` and, past that,
   * the split of those read scaled to the exact count.
   */
  async #pastDue(
    connector: DataConnector,
    map: DataMap,
    entry: CollectionEntry,
    rule: RetentionRule,
    cutoff: string,
    legalHold: boolean,
    held: HeldSubjects,
    abort: AbortSignal | undefined,
  ): Promise<Pick<RetentionReportRule, 'pastDue' | 'pastDueHeld' | 'heldReasons' | 'anonymised' | 'pastDueAll' | 'scanned' | 'estimated' | 'compliant'>> {
    const target = targetOf(entry);
    const due = { ageField: rule.field, cutoff };
    const signal = abort ? { signal: abort } : {};
    const count = () => connector.countExpired(target, due, signal);
    const reasons = (legal_hold = 0, subject_legal_hold = 0, open_request = 0): Record<HoldReason, number> => ({ legal_hold, subject_legal_hold, open_request });
    if (legalHold) {
      const n = await count();
      return { pastDue: 0, pastDueHeld: n, heldReasons: reasons(n), anonymised: 0, pastDueAll: n, scanned: 0, estimated: false, compliant: true };
    }
    const identities = identityFieldsOf(map, entry);
    const subjectsHeld = identities.length > 0 && held.requestValues.size + held.requestDigests.size + held.legalDigests.size > 0;
    const anonymise = rule.action === 'anonymise' ? anonymisedFields(entry, rule) : [];
    const keyField = entry.collection.fields.find((f) => f.primaryKey === true)?.name;
    if ((!subjectsHeld && anonymise.length === 0) || keyField === undefined) {
      // Without a primaryKey rows cannot be paged (runs fail on the collection): held and anonymised rows are unknown, counted as past due.
      const n = await count();
      const held0 = subjectsHeld ? null : 0;
      return { pastDue: n, pastDueHeld: held0, heldReasons: held0 === null ? null : reasons(), anonymised: anonymise.length > 0 ? null : 0, pastDueAll: n, scanned: 0, estimated: false, compliant: n === 0 };
    }
    // Rows are told apart as a run would: held (skipped), already anonymised (their rule is met), the rest.
    const fields = [...new Set([...(subjectsHeld ? identities.map((i) => i.field) : []), ...anonymise.map((a) => a.field)])];
    // Buckets: legal_hold (never here), subject_legal_hold, open_request, anonymised, actionable.
    const sample = [0, 0, 0, 0, 0];
    let scanned = 0;
    let cursor: string | undefined;
    let more = false;
    for (;;) {
      const page: ScanPage = await connector.findExpired(target, { ...due, keyField, cursor, limit: Math.min(MAX_SCAN_PAGE, this.#reportScanRows - scanned), fields }, signal);
      for (const r of page.rows) {
        const reason = subjectsHeld ? holdOf(r, identities, held, this.#d.digest) : undefined;
        if (reason !== undefined) sample[reason === 'subject_legal_hold' ? 1 : 2]!++;
        else if (anonymise.length > 0 && anonymise.every((a) => isAnonymised(a.erasure, r[a.field]))) sample[3]!++;
        else sample[4]!++;
      }
      scanned += page.rows.length;
      if (page.next !== null && page.next === cursor) throw new CustodianError('CST_ERR_CONNECTOR_FAILED', 'the pages of rows past due do not move on', { details: { collection: entry.address, reason: 'pagination loop' } });
      if (page.next === null) break;
      cursor = page.next;
      if (scanned >= this.#reportScanRows) {
        more = true;
        break;
      }
    }
    // Rows may come or go between the pages and the count: never fewer than were read.
    const all = more ? Math.max(scanned, await count()) : scanned;
    const [, subjectLegal, openRequest, anonymised, actionable] = more ? scaleTo(sample, all) : sample;
    return {
      pastDue: actionable!,
      pastDueHeld: subjectLegal! + openRequest!,
      heldReasons: reasons(0, subjectLegal, openRequest),
      anonymised: anonymised!,
      pastDueAll: all,
      scanned,
      estimated: more,
      // Estimated without an actionable row among those read: the rows not read may hold some.
      compliant: more && sample[4] === 0 ? null : actionable === 0,
    };
  }

  /** Claims the lease (real runs), creates or resumes the run, and returns it with the promise of its end. */
  async #begin(input: Omit<RetentionRunInput, 'signal'> & { signal?: AbortSignal | undefined }): Promise<{ run: RetentionRunView; done: Promise<void> }> {
    const current = await this.#d.dataMap();
    if (current === undefined) throw new CustodianError('CST_ERR_DATAMAP_NOT_FOUND', 'no data map is stored: retention rules come from it');
    if (input.system !== undefined && current.map.system(input.system) === undefined) {
      throw new CustodianError('CST_ERR_VALIDATION', 'the system is not in the data map', { details: { issues: [{ path: 'system', message: 'unknown system' }] } });
    }
    const now = this.#d.clock.now();
    const dryRun = input.dryRun === true;
    let runId: string;
    if (dryRun) {
      runId = uuidv7(now);
      await this.#d.store.transaction(async (trx) => this.#create(trx, runId, current, input, now));
    } else {
      const claimed = await this.#d.store.transaction(async (trx) => {
        await this.#d.store.lock(trx, 'custodian:retention-lease');
        const lease = await trx.selectFrom('retention_lease').selectAll().where('name', '=', LEASE_NAME).executeTakeFirst();
        if (lease !== undefined && lease.owner !== this.#owner && Date.parse(storedToIso(lease.until)) > now) return { busy: lease.run_id };
        // An interrupted run (its holder died: lease expired) is resumed before anything new starts.
        const open = await trx.selectFrom('retention_runs').select(['id']).where('status', '=', 'running').where('dry_run', '=', 0).orderBy('id').executeTakeFirst();
        const id = open?.id ?? uuidv7(now);
        if (open === undefined) await this.#create(trx, id, current, input, now);
        else await trx.updateTable('retention_runs').set((eb) => ({ resumed: eb('resumed', '+', 1) })).where('id', '=', id).execute();
        const until = toIso(now + this.#leaseMs);
        if (lease === undefined) await trx.insertInto('retention_lease').values({ name: LEASE_NAME, owner: this.#owner, run_id: id, until }).execute();
        else await trx.updateTable('retention_lease').set({ owner: this.#owner, run_id: id, until }).where('name', '=', LEASE_NAME).execute();
        if (open !== undefined) {
          await this.#d.audit?.record(trx, [{ actor: input.actor, action: 'retention.run_started', targetType: 'retention_run', targetId: id, details: { runId: id, resumed: true } }]);
        }
        return { id, resumed: open !== undefined };
      });
      if ('busy' in claimed) {
        throw new CustodianError('CST_ERR_RETENTION_BUSY', 'another retention run is in progress', { details: { runId: claimed.busy ?? null } });
      }
      runId = claimed.id;
    }
    const run = await this.get(runId);
    const done = this.#execute(run, current, dryRun, input);
    // The caller may not await `done` at once (start): a rejection is handled there, not left floating.
    done.catch(() => undefined);
    return { run, done };
  }

  async #create(trx: Executor, id: string, current: { map: DataMap; version: number }, input: Omit<RetentionRunInput, 'signal'>, now: number): Promise<void> {
    const at = toIso(now);
    await trx
      .insertInto('retention_runs')
      .values({ id, status: 'running', dry_run: input.dryRun === true ? 1 : 0, system_key: input.system ?? null, datamap_version: current.version, as_of: at, actor: input.actor.slice(0, 128), started_at: at, finished_at: null, resumed: 0, error: null })
      .execute();
    const rules = rulesOf(current.map, input.system);
    for (const { entry, rule, index } of rules) {
      await trx
        .insertInto('retention_progress')
        .values({ run_id: id, collection: entry.address, rule: index, system_key: entry.system.key, action: rule.action, cutoff: cutoffOf(now, rule.period), cursor: null, state: 'pending', matched: 0, deleted: 0, anonymised: 0, skipped: '{}', error: null, updated_at: at })
        .execute();
    }
    await this.#d.audit?.record(trx, [
      { actor: input.actor, action: 'retention.run_started', targetType: 'retention_run', targetId: id, details: { runId: id, dryRun: input.dryRun === true, datamapVersion: current.version, system: input.system ?? null, rules: rules.length } },
    ]);
  }

  async #execute(run: RetentionRunView, current: { map: DataMap; version: number }, dryRun: boolean, input: Omit<RetentionRunInput, 'signal'> & { signal?: AbortSignal | undefined }): Promise<void> {
    const connectors = new Map<string, Promise<DataConnector>>();
    let status: 'completed' | 'failed' = 'completed';
    let error: string | null = null;
    let failure: unknown;
    try {
      const rows = (await this.#d.store.db.selectFrom('retention_progress').selectAll().where('run_id', '=', run.id).orderBy('collection').orderBy('rule').execute()) as ProgressRow[];
      let finished = rows.filter((r) => r.state !== 'pending' && r.state !== 'running').length;
      for (const row of rows) {
        if (row.state !== 'pending' && row.state !== 'running') continue;
        input.signal?.throwIfAborted();
        await this.#rule(run, row, current.map, connectors, dryRun, input, () => finished, rows.length);
        finished++;
      }
    } catch (err) {
      // The lease went to another process (this one stalled past it): that process carries the run on.
      if (isCustodianError(err, 'CST_ERR_RETENTION_BUSY')) throw err;
      if (input.signal?.aborted === true) {
        // Stopped on purpose (shutdown, Ctrl-C): the run stays open and the next run resumes it at once.
        if (!dryRun) await this.#d.store.db.deleteFrom('retention_lease').where('name', '=', LEASE_NAME).where('owner', '=', this.#owner).execute();
        throw err;
      }
      status = 'failed';
      error = describe(err);
      failure = err;
    } finally {
      await closeAll(connectors);
    }
    const report = await this.get(run.id);
    await this.#d.store.transaction(async (trx) => {
      await trx.updateTable('retention_runs').set({ status, finished_at: toIso(this.#d.clock.now()), error }).where('id', '=', run.id).execute();
      if (!dryRun) await trx.deleteFrom('retention_lease').where('name', '=', LEASE_NAME).where('owner', '=', this.#owner).execute();
      await this.#d.audit?.record(trx, [
        {
          actor: input.actor,
          action: 'retention.run_completed',
          targetType: 'retention_run',
          targetId: run.id,
          outcome: status === 'completed' ? 'success' : 'failure',
          details: {
            status,
            dryRun,
            totals: report.totals,
            collections: report.collections.map((c) => ({ collection: c.collection, rule: c.rule, state: c.state, matched: c.matched, deleted: c.deleted, anonymised: c.anonymised, skipped: c.skipped })),
          },
        },
      ]);
    });
    // Recorded as failed (and audited) first; the caller sees the original fault (a store outage, typically).
    if (status === 'failed') throw failure;
  }

  /** Applies one rule of one collection from its saved cursor to the end. */
  async #rule(
    run: RetentionRunView,
    row: ProgressRow,
    map: DataMap,
    connectors: Map<string, Promise<DataConnector>>,
    dryRun: boolean,
    input: Omit<RetentionRunInput, 'signal'> & { signal?: AbortSignal | undefined },
    finished: () => number,
    total: number,
  ): Promise<void> {
    const entry = map.collection(row.collection);
    const rule = entry?.collection.retention[row.rule];
    const cutoff = storedToIso(row.cutoff);
    const counts = { matched: row.matched, deleted: row.deleted, anonymised: row.anonymised, skipped: JSON.parse(row.skipped) as Partial<Record<SkipReason, number>> };
    const save = async (state: string, cursor: string | null, error: string | null = null) => {
      await this.#d.store.transaction(async (trx) => {
        await trx
          .updateTable('retention_progress')
          .set({ state, cursor, matched: counts.matched, deleted: counts.deleted, anonymised: counts.anonymised, skipped: JSON.stringify(counts.skipped), error, updated_at: toIso(this.#d.clock.now()) })
          .where('run_id', '=', run.id)
          .where('collection', '=', row.collection)
          .where('rule', '=', row.rule)
          .execute();
        if (!dryRun) await this.#renew(trx);
      });
    };
    if (entry === undefined || rule === undefined) return save('skipped', row.cursor, 'the collection or rule is no longer in the data map');
    if (entry.system.connection === undefined) return save('skipped', row.cursor, 'the system has no connection in the data map');
    const keyField = entry.collection.fields.find((f) => f.primaryKey === true)?.name;
    if (keyField === undefined) return save('failed', row.cursor, 'the collection declares no primaryKey field: rows past due are paged by it');
    const target = targetOf(entry);
    let connector: DataConnector;
    try {
      connector = await this.#connector(connectors, map, entry.system.key);
      const holds = (await this.#heldSubjects()).holds;
      if (holds.systems.has(entry.system.key) || holds.collections.has(entry.address)) {
        const n = await connector.countExpired(target, { ageField: rule.field, cutoff });
        counts.matched = n;
        counts.skipped = { legal_hold: n };
        return save('skipped', row.cursor, 'a legal hold covers this collection');
      }
    } catch (err) {
      return save('failed', row.cursor, describe(err));
    }
    const identities = identityFieldsOf(map, entry);
    const anonymise = rule.action === 'anonymise' ? anonymisedFields(entry, rule) : [];
    const hashKey = anonymise.some((a) => a.erasure.strategy === 'hash') ? await this.#d.hashKey() : undefined;
    const fields = [...new Set([...identities.map((i) => i.field), ...anonymise.map((a) => a.field)])];
    // The connector's page cursor (for SQL, the last key processed as JSON, as runs before cursors stored it).
    let cursor: string | null = row.cursor;
    await save('running', cursor);
    const due = { ageField: rule.field, cutoff };
    try {
      const fetch = (from: string | null) => {
        const p = connector.findExpired(target, { ...due, keyField, cursor: from ?? undefined, limit: this.#batchSize, fields }, input.signal ? { signal: input.signal } : {});
        p.catch(() => undefined);
        return p;
      };
      let next: Promise<ScanPage> | undefined = fetch(cursor);
      while (next !== undefined) {
        input.signal?.throwIfAborted();
        const page = await next;
        next = undefined;
        if (page.next !== null && page.next === cursor) throw new CustodianError('CST_ERR_CONNECTOR_FAILED', 'the pages of rows past due do not move on', { details: { collection: row.collection, reason: 'pagination loop' } });
        // The next page is read while this one is changed: it starts where this one ends (for SQL, after its last
        // key; for JSONL, after its last line, carried over the rewrite), so it is independent of it.
        if (page.next !== null) next = fetch(page.next);
        const held = await this.#heldSubjects();
        if (held.holds.systems.has(entry.system.key) || held.holds.collections.has(entry.address)) {
          // A legal hold placed during the run stops the rule at once; the rows not reached stay.
          return save('skipped', cursor, 'a legal hold covers this collection (placed during the run)');
        }
        const eligible: Row[] = [];
        const holdable = held.requestValues.size > 0 || held.requestDigests.size > 0 || held.legalDigests.size > 0;
        for (const r of page.rows) {
          if (holdable && holdOf(r, identities, held, this.#d.digest) !== undefined) add(counts.skipped, 'subject_hold', 1);
          else eligible.push(r);
        }
        counts.matched += page.rows.length;
        const keys = eligible.map((r) => r[keyField] as KeyValue);
        if (rule.action === 'delete') {
          const n = dryRun || keys.length === 0 ? keys.length : await connector.deleteExpired(target, keyField, keys, due);
          counts.deleted += n;
          add(counts.skipped, 'changed_meanwhile', keys.length - n);
        } else {
          const changes: RowChange[] = [];
          for (const r of eligible) {
            const set: Record<string, string | number | null> = {};
            for (const a of anonymise) {
              const next = anonymisedValue(a.erasure, r[a.field], hashKey);
              if (next !== undefined) set[a.field] = next;
            }
            if (Object.keys(set).length > 0) changes.push({ key: r[keyField] as KeyValue, set });
          }
          add(counts.skipped, 'already_anonymised', eligible.length - changes.length);
          const n = dryRun || changes.length === 0 ? changes.length : await connector.updateExpired(target, keyField, changes, due);
          counts.anonymised += n;
          add(counts.skipped, 'changed_meanwhile', changes.length - n);
        }
        if (page.next !== null) cursor = page.next;
        await save('running', cursor);
        input.onProgress?.({ runId: run.id, collection: row.collection, rule: row.rule, rulesDone: finished(), rulesTotal: total, matched: counts.matched, changed: counts.deleted + counts.anonymised });
        if (this.#pauseMs > 0 && next !== undefined) await sleep(this.#pauseMs);
      }
    } catch (err) {
      if (isCustodianError(err, 'CST_ERR_RETENTION_BUSY') || input.signal?.aborted === true) throw err;
      return save('failed', cursor, describe(err));
    }
    return save('done', cursor);
  }

  /** Extends the lease; CST_ERR_RETENTION_BUSY when another process took it over (this one stalled too long). */
  async #renew(trx: Executor): Promise<void> {
    const res = await trx
      .updateTable('retention_lease')
      .set({ until: toIso(this.#d.clock.now() + this.#leaseMs) })
      .where('name', '=', LEASE_NAME)
      .where('owner', '=', this.#owner)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new CustodianError('CST_ERR_RETENTION_BUSY', 'the retention lease was taken over by another process');
  }

  /**
   * The subjects under hold now (cached briefly): identities of open requests, unsealed when possible (a set
   * look-up per row; kept in memory only), else their keyed digests; and subject legal holds (digests).
   */
  async #heldSubjects(): Promise<HeldSubjects> {
    const now = this.#d.clock.now();
    if (this.#held !== undefined && now - this.#held.at < HOLDS_TTL_MS && now >= this.#held.at) return this.#held;
    const holds = await this.#holds.active();
    const requestDigests = new Set<string>();
    const requestValues = new Set<string>();
    const open = await this.#d.store.db
      .selectFrom('requests')
      .select(['id', 'identity_digests'])
      .where('status', 'not in', [...FINAL_STATUSES])
      .execute();
    for (const r of open) {
      const identities = this.#d.identitiesOf === undefined ? undefined : await this.#d.identitiesOf(r.id).catch(() => undefined);
      if (identities === undefined) {
        for (const d of JSON.parse(r.identity_digests) as string[]) requestDigests.add(d);
        continue;
      }
      for (const [kind, list] of Object.entries(identities)) {
        for (const v of list) {
          const value = normaliseIdentityValue(kind, v);
          if (value !== undefined) requestValues.add(`${kind}\u0000${value}`);
        }
      }
    }
    this.#held = { at: now, requestValues, requestDigests, legalDigests: holds.subjectDigests, holds };
    return this.#held;
  }

  async #connector(connectors: Map<string, Promise<DataConnector>>, map: DataMap, system: string): Promise<DataConnector> {
    let c = connectors.get(system);
    if (c === undefined) {
      c = this.#d.connect(map, system);
      c.catch(() => undefined);
      connectors.set(system, c);
    }
    return c;
  }

  #view(r: RunRow, progress: readonly ProgressRow[]): RetentionRunView {
    const collections = progress.map(
      (p): RetentionCollectionReport => ({
        collection: p.collection,
        system: p.system_key,
        rule: p.rule,
        action: p.action as 'delete' | 'anonymise',
        cutoff: storedToIso(p.cutoff),
        state: p.state,
        matched: p.matched,
        deleted: p.deleted,
        anonymised: p.anonymised,
        skipped: JSON.parse(p.skipped) as Partial<Record<SkipReason, number>>,
        error: p.error,
      }),
    );
    const sum = (f: (c: RetentionCollectionReport) => number) => collections.reduce((n, c) => n + f(c), 0);
    return {
      id: r.id,
      status: r.status as RetentionRunView['status'],
      dryRun: r.dry_run === 1,
      system: r.system_key,
      datamapVersion: r.datamap_version,
      asOf: storedToIso(r.as_of),
      actor: r.actor,
      startedAt: storedToIso(r.started_at),
      finishedAt: r.finished_at === null ? null : storedToIso(r.finished_at),
      resumed: r.resumed,
      error: r.error,
      totals: {
        matched: sum((c) => c.matched),
        deleted: sum((c) => c.deleted),
        anonymised: sum((c) => c.anonymised),
        skipped: sum((c) => Object.values(c.skipped).reduce((n, v) => n + (v ?? 0), 0)),
      },
      collections,
    };
  }
}

/**
 * `parts`, counts of a sample of `sum(parts)` rows, scaled to `total` rows and rounded so that they add up to it
 * exactly (largest remainder; a part absent from the sample stays 0). O(parts log parts).
 */
function scaleTo(parts: readonly number[], total: number): number[] {
  const sample = parts.reduce((n, p) => n + p, 0);
  if (sample === 0) return parts.map(() => 0);
  const exact = parts.map((p) => (p * total) / sample);
  const out = exact.map((e) => Math.floor(e));
  const order = exact.map((e, i) => ({ i, rest: e - out[i]! })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (let left = total - out.reduce((n, p) => n + p, 0), k = 0; left > 0 && k < order.length; left--, k++) out[order[k]!.i]!++;
  return out;
}

function add(skipped: Partial<Record<SkipReason, number>>, reason: SkipReason, n: number): void {
  if (n > 0) skipped[reason] = (skipped[reason] ?? 0) + n;
}

function targetOf(entry: CollectionEntry): CollectionTarget {
  return { name: entry.collection.name, options: entry.collection.connector ?? {} };
}

async function closeAll(connectors: Map<string, Promise<DataConnector>>): Promise<void> {
  const all = [...connectors.values()];
  connectors.clear();
  await Promise.all(all.map((c) => c.then((x) => x.close()).catch(() => undefined)));
}

/** The fields an anonymise rule names, with their erasure strategy (validation guarantees null, mask or hash). */
function anonymisedFields(entry: CollectionEntry, rule: RetentionRule): { field: string; erasure: Erasure }[] {
  return (rule.fields ?? []).flatMap((name) => {
    const f = entry.collection.fields.find((x) => x.name === name);
    const erasure = f?.erasure ?? entry.collection.erasure;
    return f === undefined || erasure === undefined ? [] : [{ field: name, erasure }];
  });
}

/** The anonymised value of a field, or undefined when it already is anonymised (null, the mask, a hash). */
function anonymisedValue(erasure: Erasure, current: unknown, hashKey: Buffer | undefined): string | null | undefined {
  if (isAnonymised(erasure, current)) return undefined;
  if (erasure.strategy === 'null') return null;
  if (erasure.strategy === 'mask') return erasure.value;
  return hashValue(hashKey!, typeof current === 'string' || typeof current === 'number' ? current : JSON.stringify(current));
}

/** Whether a field already holds what its strategy writes (null, the mask, a 64-hex hash); other strategies never anonymise. */
function isAnonymised(erasure: Erasure, current: unknown): boolean {
  if (current === null || current === undefined) return true;
  if (erasure.strategy === 'mask') return current === erasure.value;
  if (erasure.strategy === 'hash') return typeof current === 'string' && HASHED.test(current);
  return erasure.strategy !== 'null';
}

/**
 * Why a row's subject is held, or undefined when it is not: one of its identity fields holds (or digests to) a
 * subject under a legal hold — `subject_legal_hold`, which wins — or an identity of an open request, in clear
 * (set look-up) or as a digest. Digests are computed only when some are held. O(identity fields) per row.
 */
function holdOf(row: Row, identities: readonly IdentityField[], held: HeldSubjects, digest: (text: string) => string): 'subject_legal_hold' | 'open_request' | undefined {
  const digests = held.legalDigests.size > 0 || held.requestDigests.size > 0;
  let request = false;
  for (const { field, kind } of identities) {
    const value = normaliseIdentityValue(kind, row[field]);
    if (value === undefined) continue;
    if (digests) {
      const d = digest(identityDigestText(kind, value));
      if (held.legalDigests.has(d)) return 'subject_legal_hold';
      if (held.requestDigests.has(d)) request = true;
    }
    if (held.requestValues.has(`${kind}\u0000${value}`)) request = true;
  }
  return request ? 'open_request' : undefined;
}
