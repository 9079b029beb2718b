import { createHash, timingSafeEqual } from 'node:crypto';
import { CustodianError, isCustodianError, storedToIso, toIso, uuidv7, type AuditSink, type Clock } from '../../core/index.js';
import type { DataConnector } from '../../connectors/data/data-connector.js';
import type { DataMap } from '../../datamap/index.js';
import type { Store } from '../../store/index.js';
import { PlanExecutor, type ExecutionContext, type LookupOutcome, type StepOutcome } from '../executor.js';
import { planRequest, type Plan, type RequestKind } from '../planner.js';
import { FINAL_STATUSES, type RequestStatus } from './lifecycle.js';
import { packageFiles } from './package-files.js';
import { requestSubject, type RequestCipher, type RequestEngine } from './request-engine.js';
import { writeZip } from './zip.js';

/** Version of the access package format. */
export const PACKAGE_SCHEMA_VERSION = 1;
/** How long a worker holds a request before another may take it over (renewed after every step). */
const LEASE_MS = 60_000;

export interface RequestRunnerDeps {
  readonly store: Store;
  readonly engine: RequestEngine;
  readonly cipher: RequestCipher & { systemSecret(name: string): Promise<Buffer> };
  readonly clock: Clock;
  readonly audit?: AuditSink;
  /** The data map in force (the current stored version) and its version number. */
  readonly dataMap: () => Promise<{ map: DataMap; version: number } | undefined>;
  /** Opens a connector for a system of the data map (connection `${VAR}`s resolved). */
  readonly connect: (map: DataMap, systemKey: string) => Promise<DataConnector>;
  /** Signs a statement (the erasure certificate) and names the key that verifies it. */
  readonly sign: (bytes: Uint8Array) => { signature: string; publicKey: string };
  /**
   * Records withdrawals in the consent ledger for a subject (opt-out and objection requests), idempotently
   * (keyed by request): consent checks and propagation honour them from then on.
   */
  readonly withdraw?: (input: { subjectId: string; purposes: readonly string[]; jurisdiction: string; requestId: string; actor: string }) => Promise<number>;
  /**
   * Restricts processing of a subject in the consent ledger (restriction requests, GDPR Art. 18), idempotently:
   * `changed` is false when the subject was restricted already. Consent checks and propagation honour it.
   */
  readonly restrict?: (input: { subjectId: string; requestId: string; actor: string }) => Promise<{ changed: boolean }>;
}

/** Options of {@link RequestRunner.run}. */
export interface RunOptions {
  readonly signal?: AbortSignal;
  /**
   * Called after every step with the steps done in this run, the step's label, and the steps this run expects in
   * all (from the plan; lookups repeated for reference cycles can make `done` pass it, so it is at least `done`).
   */
  readonly onStep?: (done: number, step: string, total: number) => void;
}

/** What one run did. */
export interface RunReport {
  readonly id: string;
  readonly status: RequestStatus | 'busy';
  readonly steps: number;
}

/**
 * Executes verified requests against the systems of the data map, resumably: the executor's context is
 * sealed and saved after every step with the step's outcome, under a lease on the request, so a worker killed
 * at any point leaves a request another worker resumes at the first step not recorded as done (every change
 * step is idempotent, so re-running the step that was cut short is safe). Access and portability produce a
 * package (sealed under the request's key); erasure changes the data, crypto-shreds the subject's keys, runs
 * the access plan again and issues a signed certificate of what remains and why.
 */
export class RequestRunner {
  readonly #d: RequestRunnerDeps;

  constructor(deps: RequestRunnerDeps) {
    this.#d = deps;
  }

  /** Runs request `id` to its end (or until `signal` aborts); `busy` when another worker holds it. */
  async run(id: string, worker: string, options: RunOptions = {}): Promise<RunReport> {
    const request = await this.#d.engine.get(id);
    if (request.status !== 'in_progress') {
      throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', `only requests in progress run; this one is ${request.status}`, { details: { status: request.status } });
    }
    if (!(await this.#claim(id, worker))) return { id, status: 'busy', steps: 0 };
    let steps = 0;
    try {
      return await this.#execute(id, worker, request.type, options, (n) => (steps = n));
    } catch (err) {
      // A fault of the request itself (no data map, a planning impossibility) ends it as failed, with the
      // reason; transient faults (store or system unreachable: 5xx) leave it in progress for a retry.
      if (isCustodianError(err) && err.status < 500 && options.signal?.aborted !== true) {
        const done = await this.#d.engine.setStatus(id, 'failed', worker, `${err.code}: ${err.message}`.slice(0, 1000), { error: err.code });
        return { id, status: done.status, steps };
      }
      throw err;
    } finally {
      await this.#release(id, worker);
    }
  }

  async #execute(id: string, worker: string, type: string, options: RunOptions, counted: (n: number) => void): Promise<RunReport> {
    let steps = 0;
    const kind = kindOf(type);
    if (type === 'restriction') return this.#restrict(id, worker);
    const current = await this.#d.dataMap();
    if (current === undefined) throw new CustodianError('CST_ERR_DATAMAP_NOT_FOUND', 'no data map is stored: requests are planned from it');
    if (type === 'opt_out' || type === 'objection') return this.#withdraw(id, worker, type, current.map);
    if (kind === undefined) {
      // No other type is left; kept so a new request type fails safe into the team's hands (docs/requests.md).
      const done = await this.#d.engine.setStatus(id, 'awaiting_input', worker, `${type} requests are carried out by the privacy team; Custodian tracks the deadline`);
      return { id, status: done.status, steps };
    }
    const identities = await this.#d.engine.identitiesOf(id);
    const plan = planRequest(current.map, identities, kind);
    const connectors = new Map<string, Promise<DataConnector>>();
    const connect = (system: string) => {
      let c = connectors.get(system);
      if (c === undefined) {
        c = this.#d.connect(current.map, system);
        connectors.set(system, c);
      }
      return c;
    };
    try {
      const hashKey = await this.#d.cipher.systemSecret('erasure-hash');
      const executor = new PlanExecutor(plan, { connectors: connect, hashKey });
      let context = (await this.#context(id)) ?? executor.start(kind, identities);
      const expected = Math.max(plannedSteps(plan, kind) - context.done.length, 0);
      for (let step = executor.next(context); step !== undefined; step = executor.next(context)) {
        if (options.signal?.aborted === true) throw options.signal.reason;
        const result = await executor.runStep(step, context, options.signal ? { signal: options.signal } : {});
        context = result.context;
        steps++;
        counted(steps);
        await this.#save(id, worker, current.version, step.kind, stepLabel(step), context, result.outcome);
        options.onStep?.(steps, stepLabel(step), Math.max(expected, steps));
      }
      const outcomes = await this.#outcomes(id);
      const errors = outcomes.filter((o) => o.error !== undefined).map((o) => ({ collection: o.collection, code: o.error!.code }));
      let summary: Record<string, unknown>;
      if (type === 'rectification') {
        summary = await this.#rectify(id, worker, plan, context, connect);
      } else if (kind === 'access') {
        summary = await this.#package(id, type, current, plan, outcomes);
      } else {
        summary = await this.#certify(id, worker, current, identities, plan, outcomes, connect);
      }
      const problems = plan.problems.map((p) => ({ code: p.code, collection: p.collection ?? null, message: p.message }));
      const unreachable = plan.unreachable.map((u) => ({ collection: u.collection, reason: u.reason }));
      const unapplied = type === 'rectification' ? ((summary.notApplied as unknown[] | undefined)?.length ?? 0) : 0;
      const status: RequestStatus = errors.length > 0 || unapplied > 0 || (kind === 'erasure' && problems.length > 0) ? 'partially_completed' : 'completed';
      const reason = status === 'completed' ? 'every planned step ran' : `${errors.length} step(s) failed, ${problems.length} planning problem(s)`;
      const subjectIds = identities.user_id ?? [];
      const erased = type === 'erasure' ? subjectIds.map((subjectId) => ({ type: 'subject.erased' as const, subjectId, purposes: [], data: { requestId: id, status } })) : [];
      const done = await this.#d.engine.setStatus(id, status, worker, reason, { ...summary, errors, problems, unreachable, dataMapVersion: current.version }, { subjectIds, events: erased });
      return { id, status: done.status, steps };
    } finally {
      await Promise.all([...connectors.values()].map(async (c) => (await c.catch(() => undefined))?.close().catch(() => undefined)));
    }
  }

  /**
   * Opt-out (sale, sharing, targeted advertising: purposes marked gpcOptOut) and objection (GDPR Art. 21:
   * purposes on legitimate interests or public task, and direct marketing) become withdrawals in the consent
   * ledger for the subject's user ids, so every consent check and the propagation to other services honour them.
   */
  async #withdraw(id: string, worker: string, type: 'opt_out' | 'objection', map: DataMap): Promise<RunReport> {
    const request = await this.#d.engine.get(id);
    const identities = await this.#d.engine.identitiesOf(id);
    const subjects = identities.user_id ?? [];
    const purposes = map.purposes
      .filter((p) => (type === 'opt_out' ? p.gpcOptOut : p.legalBasis === 'legitimate_interests' || p.legalBasis === 'public_task' || p.dataUses.some((u) => u.startsWith('marketing.'))))
      .map((p) => p.key);
    if (subjects.length === 0 || this.#d.withdraw === undefined) {
      const done = await this.#d.engine.setStatus(id, 'awaiting_input', worker, 'the consent ledger is keyed by the application’s user id: give a user_id identity, or act on the request by hand');
      return { id, status: done.status, steps: 0 };
    }
    let recorded = 0;
    for (const subjectId of subjects) recorded += await this.#d.withdraw({ subjectId, purposes, jurisdiction: request.jurisdiction, requestId: id, actor: worker });
    const objected = subjects.map((subjectId) => ({ type: 'subject.objected' as const, subjectId, purposes, data: { requestId: id, requestType: type } }));
    const done = await this.#d.engine.setStatus(id, 'completed', worker, `${recorded} withdrawal(s) recorded in the consent ledger`, { withdrawn: purposes, subjects: subjects.length, eventsRecorded: recorded }, { subjectIds: subjects, events: objected });
    return { id, status: done.status, steps: subjects.length };
  }

  /**
   * Restriction (GDPR Art. 18; LGPD Art. 18, IV) restricts processing of the subject's user ids in the consent
   * ledger: from then on consent checks refuse every purpose not based on a legal obligation, and connected
   * services hear `subject.restricted` (emitted by the ledger in its own transaction). Idempotent, so a run cut
   * short and resumed restricts nothing twice. Without a user id it waits for the privacy team, as before.
   */
  async #restrict(id: string, worker: string): Promise<RunReport> {
    const identities = await this.#d.engine.identitiesOf(id);
    const subjects = identities.user_id ?? [];
    if (subjects.length === 0 || this.#d.restrict === undefined) {
      const done = await this.#d.engine.setStatus(id, 'awaiting_input', worker, 'the consent ledger is keyed by the application’s user id: give a user_id identity, or carry the restriction out by hand');
      return { id, status: done.status, steps: 0 };
    }
    let changed = 0;
    for (const subjectId of subjects) if ((await this.#d.restrict({ subjectId, requestId: id, actor: worker })).changed) changed++;
    const done = await this.#d.engine.setStatus(
      id,
      'completed',
      worker,
      `processing of ${subjects.length} subject(s) restricted in the consent ledger (GDPR Art. 18)`,
      { restricted: subjects.length, alreadyRestricted: subjects.length - changed, reason: 'subject_request' },
      { subjectIds: subjects },
    );
    return { id, status: done.status, steps: subjects.length };
  }

  /**
   * Writes the corrections of a rectification request to the subject's own rows (found by the access plan,
   * by primary key). A correction whose collection holds no row of the subject, or has no single primary
   * key, is reported as not applied. Idempotent: applying again changes nothing.
   */
  async #rectify(id: string, worker: string, plan: Plan, context: ExecutionContext, connect: (system: string) => Promise<DataConnector>): Promise<Record<string, unknown>> {
    const corrections = await this.#d.engine.correctionsOf(id);
    const byCollection = new Map<string, Record<string, string | null>>();
    for (const [address, value] of Object.entries(corrections)) {
      const collection = address.split('.').slice(0, 2).join('.');
      const field = address.split('.').slice(2).join('.');
      byCollection.set(collection, { ...(byCollection.get(collection) ?? {}), [field]: value });
    }
    const corrected: Array<{ collection: string; fields: string[]; rows: number }> = [];
    const notApplied: Array<{ collection: string; reason: string }> = [];
    for (const [collection, set] of byCollection) {
      const step = plan.steps.find((s) => s.collection === collection);
      const keys = context.found[collection]?.owner ?? [];
      if (step === undefined) notApplied.push({ collection, reason: 'no identity of the request reaches this collection' });
      else if (step.primaryKey === undefined) notApplied.push({ collection, reason: 'the collection declares no single primary key' });
      else if (keys.length === 0) notApplied.push({ collection, reason: 'the subject has no row here' });
      else {
        const connector = await connect(step.system);
        const rows = await connector.updateRows(step.target, step.primaryKey, keys.map((key) => ({ key, set })));
        corrected.push({ collection, fields: Object.keys(set), rows });
      }
    }
    await this.#d.store.transaction(async (trx) => {
      await this.#d.audit?.record(trx, [{ actor: worker, action: 'request.rectified', targetType: 'request', targetId: id, details: { corrected, notApplied: notApplied.length } }]);
    });
    return { corrected, notApplied };
  }

  /**
   * The steps executed so far for a request, in order: phase (`lookup`, `erase`, `cut`, …), target
   * (`<kind>:<dataset>.<collection>`), status (`done`/`failed`) and the error code and message of a failed step.
   * Outcomes (which can hold personal data) stay sealed: this is the progress view for the admin console.
   */
  async tasks(id: string, options: { limit?: number } = {}): Promise<Array<{ seq: number; phase: string; target: string; status: string; attempts: number; error: string | null; updatedAt: string }>> {
    const rows = await this.#d.store.db
      .selectFrom('request_tasks')
      .select(['seq', 'phase', 'target', 'status', 'attempts', 'error', 'updated_at'])
      .where('request_id', '=', id)
      .orderBy('seq')
      .limit(options.limit ?? 1000)
      .execute();
    return rows.map((r) => ({ seq: Number(r.seq), phase: r.phase, target: r.target, status: r.status, attempts: Number(r.attempts), error: r.error, updatedAt: storedToIso(r.updated_at) }));
  }

  /** The access package of a request (JSON text), decrypted; CST_ERR_REQUEST_NOT_FOUND when there is none. */
  async package(id: string): Promise<string> {
    const row = await this.#d.store.db.selectFrom('request_artifacts').selectAll().where('request_id', '=', id).where('kind', '=', 'package').executeTakeFirst();
    if (row === undefined) throw new CustodianError('CST_ERR_REQUEST_NOT_FOUND', 'this request has no package (yet)', { details: { id } });
    return this.#d.cipher.decryptFieldText(row.content, packageContext(id));
  }

  /** The access package as a ZIP archive (package.json, csv/*.csv, report.html); CST_ERR_REQUEST_NOT_FOUND when there is none. */
  async packageZip(id: string): Promise<Buffer> {
    const row = await this.#d.store.db.selectFrom('request_artifacts').selectAll().where('request_id', '=', id).where('kind', '=', 'package_zip').executeTakeFirst();
    if (row === undefined) throw new CustodianError('CST_ERR_REQUEST_NOT_FOUND', 'this request has no package (yet)', { details: { id } });
    return Buffer.from(await this.#d.cipher.decryptFieldText(row.content, zipContext(id)), 'base64');
  }

  /**
   * A download link token for the package ZIP, valid until `expiresAt`: `<request id>.<expiry ms>.<HMAC>`
   * under a key of the store (keyed digest), so it cannot be forged or extended; checked by {@link openLink}.
   */
  async packageLink(id: string, ttlMs: number): Promise<{ token: string; expiresAt: string }> {
    await this.packageZip(id); // exists
    const expires = this.#d.clock.now() + ttlMs;
    return { token: `${id}.${expires}.${this.#d.cipher.keyedDigest(`package-link:${id}:${expires}`)}`, expiresAt: toIso(expires) };
  }

  /** The request id of a valid, unexpired link token; CST_ERR_REQUEST_LINK_INVALID otherwise (never saying why). */
  openLink(token: string): string {
    const [id, expires, mac] = token.split('.');
    const ok =
      id !== undefined && expires !== undefined && mac !== undefined && /^\d{1,15}$/.test(expires) && Number(expires) > this.#d.clock.now() &&
      equalText(mac, this.#d.cipher.keyedDigest(`package-link:${id}:${expires}`));
    if (!ok) throw new CustodianError('CST_ERR_REQUEST_LINK_INVALID', 'the download link is invalid or has expired');
    return id;
  }

  /** The signed erasure certificate of a request (JSON text); CST_ERR_REQUEST_NOT_FOUND when there is none. */
  async certificate(id: string): Promise<string> {
    const row = await this.#d.store.db.selectFrom('request_artifacts').selectAll().where('request_id', '=', id).where('kind', '=', 'certificate').executeTakeFirst();
    if (row === undefined) throw new CustodianError('CST_ERR_REQUEST_NOT_FOUND', 'this request has no certificate (yet)', { details: { id } });
    return row.content;
  }

  /** Requests in progress that no live lease holds: what a worker should pick up next, oldest deadline first. */
  async runnable(limit = 10): Promise<string[]> {
    const now = toIso(this.#d.clock.now());
    const rows = await this.#d.store.db
      .selectFrom('requests')
      .select('id')
      .where('status', '=', 'in_progress')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .orderBy('due_at')
      .limit(limit)
      .execute();
    return rows.map((r) => r.id);
  }

  async #claim(id: string, worker: string): Promise<boolean> {
    const now = this.#d.clock.now();
    return this.#d.store.transaction(async (trx) => {
      // PostgreSQL: FOR UPDATE SKIP LOCKED — a row another worker is claiming right now is skipped, not waited
      // for. SQLite: write transactions are already exclusive (BEGIN IMMEDIATE).
      let q = trx.selectFrom('requests').select(['lease_owner', 'lease_until', 'status']).where('id', '=', id);
      if (this.#d.store.kind === 'postgres') q = q.forUpdate().skipLocked();
      const row = await q.executeTakeFirst();
      if (row === undefined) return false;
      const held = row.lease_owner !== null && row.lease_owner !== worker && row.lease_until !== null && Date.parse(storedToIso(row.lease_until)) > now;
      if (held || row.status !== 'in_progress') return false;
      await trx.updateTable('requests').set({ lease_owner: worker.slice(0, 128), lease_until: toIso(now + LEASE_MS) }).where('id', '=', id).execute();
      return true;
    });
  }

  async #release(id: string, worker: string): Promise<void> {
    await this.#d.store.db.updateTable('requests').set({ lease_owner: null, lease_until: null }).where('id', '=', id).where('lease_owner', '=', worker).execute();
  }

  async #context(id: string): Promise<ExecutionContext | undefined> {
    const row = await this.#d.store.db.selectFrom('requests').select('context_sealed').where('id', '=', id).executeTakeFirstOrThrow();
    return row.context_sealed === null ? undefined : (JSON.parse(await this.#d.cipher.decryptFieldText(row.context_sealed, contextContext(id))) as ExecutionContext);
  }

  /** Saves a step's outcome and the new context in one transaction, and renews the lease (lost lease: stop). */
  async #save(id: string, worker: string, version: number, phase: string, label: string, context: ExecutionContext, outcome: StepOutcome): Promise<void> {
    const now = this.#d.clock.now();
    const sealedContext = await this.#d.cipher.encryptField(requestSubject(id), JSON.stringify(context), contextContext(id));
    // The lease makes this worker the request's only writer: the next number cannot be taken meanwhile.
    const last = await this.#d.store.db.selectFrom('request_tasks').select((eb) => eb.fn.max('seq').as('m')).where('request_id', '=', id).executeTakeFirst();
    const seq = Number(last?.m ?? 0) + 1;
    const sealedOutcome = await this.#d.cipher.encryptField(requestSubject(id), JSON.stringify(outcome), outcomeContext(id, seq));
    await this.#d.store.transaction(async (trx) => {
      const lease = await trx.updateTable('requests').set({ context_sealed: sealedContext, datamap_version: version, lease_until: toIso(now + LEASE_MS) }).where('id', '=', id).where('lease_owner', '=', worker).executeTakeFirst();
      if (Number(lease.numUpdatedRows) !== 1) throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', 'the lease on the request was lost to another worker');
      await trx
        .insertInto('request_tasks')
        .values({ request_id: id, seq, phase, target: label.slice(0, 600), status: outcome.error === undefined ? 'done' : 'failed', attempts: 1, lease_owner: worker.slice(0, 128), lease_until: null, result: sealedOutcome, error: outcome.error === undefined ? null : `${outcome.error.code}: ${outcome.error.message}`.slice(0, 1000), updated_at: toIso(now) })
        .execute();
    });
  }

  async #outcomes(id: string): Promise<StepOutcome[]> {
    const rows = await this.#d.store.db.selectFrom('request_tasks').select(['seq', 'result']).where('request_id', '=', id).orderBy('seq').execute();
    return Promise.all(rows.map(async (r) => JSON.parse(await this.#d.cipher.decryptFieldText(r.result!, outcomeContext(id, Number(r.seq)))) as StepOutcome));
  }

  /** Builds the access package with the Art. 15(1) information from the data map, and stores it sealed. */
  async #package(id: string, type: string, current: { map: DataMap; version: number }, plan: Plan, outcomes: readonly StepOutcome[]): Promise<Record<string, unknown>> {
    const lookups = outcomes.filter((o): o is LookupOutcome => o.kind === 'lookup');
    const byCollection = new Map<string, { rows: unknown[]; seen: Set<string> }>();
    for (const o of lookups) {
      const entry = byCollection.get(o.collection) ?? { rows: [], seen: new Set<string>() };
      for (const r of o.rows) {
        const key = JSON.stringify(r.key ?? r.data);
        if (entry.seen.has(key)) continue;
        entry.seen.add(key);
        entry.rows.push(r.ownership === 'owner' ? r.data : { ...r.data, _ownership: r.ownership });
      }
      byCollection.set(o.collection, entry);
    }
    const map = current.map;
    const collections = plan.steps.map((s) => {
      const entry = map.collection(s.collection)!;
      const purposes = [...new Set([...entry.collection.purposes, ...entry.system.purposes])];
      return {
        collection: s.collection,
        system: { key: entry.system.key, name: entry.system.name, country: entry.system.residency?.country ?? null },
        purposes: purposes.map((p) => ({ key: p, title: map.purpose(p)?.title ?? p, legalBasis: map.purpose(p)?.legalBasis ?? null })),
        categories: [...new Set(entry.collection.fields.flatMap((f) => f.dataCategories))],
        retention: entry.collection.retention.map((r) => ({ field: r.field, period: r.period, action: r.action })),
        recipients: entry.system.recipients.map((r) => ({ name: r.name, type: r.type, country: r.country ?? null })),
        transfers: entry.system.transfers.map((t) => ({ country: t.country, mechanism: t.mechanism ?? null })),
        rows: byCollection.get(s.collection)?.rows ?? [],
      };
    });
    const pkg = {
      schemaVersion: PACKAGE_SCHEMA_VERSION,
      requestId: id,
      type,
      generatedAt: toIso(this.#d.clock.now()),
      controller: { name: map.manifest.organization.name, contact: map.manifest.organization.contact ?? null, dpo: map.manifest.organization.dpo ?? null },
      rights: 'You may ask for rectification or erasure, restriction or objection, and lodge a complaint with a supervisory authority (GDPR Art. 15(1)(e)–(f)).',
      dataMapVersion: current.version,
      collections,
    };
    const text = JSON.stringify(pkg, null, 2);
    const sealed = await this.#d.cipher.encryptField(requestSubject(id), text, packageContext(id));
    await this.#artifact(id, 'package', sealed, sha256(text));
    // The download: package.json, CSV per collection and a readable HTML report, zipped, sealed likewise.
    const zip = writeZip(packageFiles(pkg));
    await this.#artifact(id, 'package_zip', await this.#d.cipher.encryptField(requestSubject(id), zip.toString('base64'), zipContext(id)), createHash('sha256').update(zip).digest('hex'));
    const rows = collections.reduce((n, c) => n + c.rows.length, 0);
    return { rows, collections: collections.filter((c) => c.rows.length > 0).length, packageSha256: sha256(text) };
  }

  /**
   * After erasure: crypto-shred the keys of the subject's user ids, run the access plan again, and sign a
   * certificate of what was done and what remains (retained under a legal basis, or left by a failure).
   */
  async #certify(
    id: string,
    worker: string,
    current: { map: DataMap; version: number },
    identities: Readonly<Record<string, readonly string[]>>,
    plan: Plan,
    outcomes: readonly StepOutcome[],
    connect: (system: string) => Promise<DataConnector>,
  ): Promise<Record<string, unknown>> {
    const changes = outcomes.filter((o): o is Exclude<StepOutcome, LookupOutcome> => o.kind !== 'lookup');
    const shredded: string[] = [];
    for (const subject of identities.user_id ?? []) {
      try {
        const receipt = (await this.#d.cipher.shredSubject(subject, { reason: `erasure request ${id}`, actor: worker })) as { tombstoneId: string };
        shredded.push(receipt.tombstoneId);
      } catch (err) {
        if (!isCustodianError(err)) throw err;
      }
    }
    // Proof: the access plan again, after the changes.
    const verifyPlan = planRequest(current.map, identities, 'access');
    const verify = new PlanExecutor(verifyPlan, { connectors: connect });
    let ctx = verify.start('access', identities);
    const remaining = new Map<string, number>();
    for (let step = verify.next(ctx); step !== undefined; step = verify.next(ctx)) {
      const r = await verify.runStep(step, ctx);
      ctx = r.context;
      if (r.outcome.kind === 'lookup' && r.outcome.rows.some((x) => x.ownership === 'owner')) remaining.set(r.outcome.collection, (remaining.get(r.outcome.collection) ?? 0) + r.outcome.rows.filter((x) => x.ownership === 'owner').length);
    }
    const retainedBy = new Map<string, Array<{ field: string; legalBasis: string; reason: string; retention: string }>>();
    for (const o of changes) for (const r of o.retained) retainedBy.set(o.collection, [...(retainedBy.get(o.collection) ?? []), { field: r.field, legalBasis: r.legalBasis, reason: r.reason, retention: r.retention }]);
    const statement = {
      kind: 'custodian.erasure-certificate',
      version: 1,
      requestId: id,
      issuedAt: toIso(this.#d.clock.now()),
      dataMapVersion: current.version,
      collections: changes.map((o) => ({ collection: o.collection, step: o.kind, rowsDeleted: o.rowsDeleted, fieldsChanged: o.fieldsChanged, skippedShared: o.skippedShared, error: o.error?.code ?? null })),
      remaining: [...remaining].map(([collection, rows]) => ({ collection, rows, retained: retainedBy.get(collection) ?? [], why: retainedBy.has(collection) ? 'retained under a legal basis' : 'not erased: see errors' })),
      unreachable: plan.unreachable.map((u) => u.collection),
      keysShredded: shredded,
    };
    const bytes = Buffer.from(JSON.stringify(statement), 'utf8');
    const { signature, publicKey } = this.#d.sign(bytes);
    const certificate = JSON.stringify({ statement, signature: { algorithm: 'Ed25519', publicKey, value: signature, signed: 'the UTF-8 bytes of JSON.stringify(statement)' } }, null, 2);
    await this.#artifact(id, 'certificate', certificate, sha256(certificate));
    return { rowsDeleted: changes.reduce((n, o) => n + o.rowsDeleted, 0), remaining: statement.remaining.length, certificateSha256: sha256(certificate), keysShredded: shredded.length };
  }

  async #artifact(id: string, kind: 'package' | 'package_zip' | 'certificate', content: string, digest: string): Promise<void> {
    const now = toIso(this.#d.clock.now());
    await this.#d.store.transaction(async (trx) => {
      await trx.deleteFrom('request_artifacts').where('request_id', '=', id).where('kind', '=', kind).execute();
      await trx.insertInto('request_artifacts').values({ request_id: id, kind, content, sha256: digest, created_at: now }).execute();
      if (kind !== 'package_zip') await this.#d.audit?.record(trx, [{ actor: 'system:requests', action: kind === 'package' ? 'request.package_created' : 'request.certificate_issued', targetType: 'request', targetId: id, details: { sha256: digest } }]);
    });
  }

}

function kindOf(type: string): RequestKind | undefined {
  // Rectification finds the subject's rows with the access plan, then writes the corrections to them.
  return type === 'access' || type === 'portability' || type === 'rectification' ? 'access' : type === 'erasure' ? 'erasure' : undefined;
}

/** The steps a plan runs when nothing repeats: a lookup per step, and for erasure the cuts and the changes. */
function plannedSteps(plan: Plan, kind: RequestKind): number {
  return plan.steps.length + (kind === 'erasure' ? plan.cuts.length + plan.erasureSequence.length : 0);
}

function stepLabel(step: { kind: string; collection: string; field?: string }): string {
  return step.kind === 'cut' ? `cut:${step.collection}.${step.field!}` : `${step.kind}:${step.collection}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const contextContext = (id: string) => `custodian.requests.context:${id}`;
const outcomeContext = (id: string, seq: number) => `custodian.request_tasks.result:${id}:${seq}`;
const packageContext = (id: string) => `custodian.request_artifacts.package:${id}`;
const zipContext = (id: string) => `custodian.request_artifacts.package_zip:${id}`;

function equalText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether a request has ended (for callers polling). */
export function isFinished(status: RequestStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/** A worker id for this process. */
export function workerId(): string {
  return `worker:${process.pid}:${uuidv7().slice(-12)}`;
}
