import { randomInt, timingSafeEqual } from 'node:crypto';
import {
  CustodianError,
  isStorableText,
  computeDeadline,
  mayRequest,
  needsVerification,
  pausesWhileAwaitingVerification,
  regimeOf,
  storedToIso,
  toIso,
  uuidv7,
  type AuditSink,
  type EventInput,
  type EventSink,
  type Clock,
  type RequestType,
} from '../../core/index.js';
import type { Selectable } from 'kysely';
import type { Executor, RequestsTable, Store } from '../../store/index.js';
import { normaliseIdentities, type Identities } from './identities.js';
import { FINAL_STATUSES, assertTransition, type RequestStatus } from './lifecycle.js';

/** What the engine needs from the keyring: sealing under a key of the request, keyed digests, blind indexes. */
export interface RequestCipher {
  encryptField(subjectId: string, plaintext: string, context: string): Promise<string>;
  decryptFieldText(ciphertext: string, context: string): Promise<string>;
  keyedDigest(text: string): string;
  shredSubject(subjectId: string, input: { reason: string; actor: string }): Promise<unknown>;
}

/** A request as the API shows it: identities never appear, only their kinds. */
export interface RequestView {
  readonly id: string;
  readonly type: RequestType;
  readonly status: RequestStatus;
  readonly jurisdiction: string;
  readonly regime: string;
  readonly channel: 'api' | 'authenticated' | 'privacy_center';
  readonly identityKinds: readonly string[];
  readonly receivedAt: string;
  readonly dueAt: string;
  readonly acknowledgeBy: string | null;
  readonly extended: boolean;
  readonly verifiedAt: string | null;
  readonly completedAt: string | null;
  readonly overdue: boolean;
  readonly outcome: Readonly<Record<string, unknown>> | null;
}

export interface CreateRequestInput {
  readonly type: RequestType;
  readonly jurisdiction: string;
  readonly identities: Readonly<Record<string, unknown>>;
  /** The application vouches for a logged-in user: no identity verification. */
  readonly authenticated?: boolean;
  /** Rectification only: the corrected values by field address (`<dataset>.<collection>.<field>`), null to clear. */
  readonly corrections?: Readonly<Record<string, string | null>>;
  readonly channel?: 'api' | 'privacy_center';
  readonly actor: string;
  readonly requestId?: string;
}

export interface RequestEngineOptions {
  /** Types that wait for a privacy officer's approval after verification (default: erasure, rectification). */
  readonly approvalFor?: readonly RequestType[];
  /** Lifetime of a verification code (default 15 minutes). */
  readonly codeTtlMs?: number;
  /** Wrong codes accepted before the request is locked (default 5). */
  readonly maxCodeAttempts?: number;
  /** Identity kinds the data map declares; others are refused. Undefined: email, phone_number, user_id. */
  readonly identityKinds?: () => Promise<readonly string[] | undefined>;
  /** Checks a correction's field address against the data map: undefined when fine, else why not. */
  readonly correctable?: (address: string) => Promise<string | undefined>;
}

const DEFAULT_KINDS = ['email', 'phone_number', 'user_id'] as const;

/**
 * Data subject requests: intake with identity verification, legal deadlines, the lifecycle (every transition
 * persisted, append-only, and audited with actor and reason), and the queries privacy teams need (overdue,
 * due soon). Identities are sealed under a key of the request and found again by blind index; erasing the
 * request's key (after completion and retention) makes them unreadable everywhere.
 */
/** What a status change announces besides itself (see {@link RequestEngine.setStatus}). */
export interface Announce {
  /** The subject ids (ledger subject ids, i.e. user_id identities) the request concerns. */
  readonly subjectIds?: readonly string[];
  /** Events to emit in the same transaction, before `request.completed`. */
  readonly events?: readonly EventInput[];
}

export class RequestEngine {
  readonly #store: Store;
  readonly #cipher: RequestCipher;
  readonly #clock: Clock;
  readonly #audit: AuditSink | undefined;
  readonly #events: EventSink | undefined;
  readonly #options: Required<Omit<RequestEngineOptions, 'identityKinds' | 'correctable'>> & Pick<RequestEngineOptions, 'identityKinds' | 'correctable'>;

  constructor(deps: { store: Store; cipher: RequestCipher; clock: Clock; audit?: AuditSink; events?: EventSink }, options: RequestEngineOptions = {}) {
    this.#store = deps.store;
    this.#cipher = deps.cipher;
    this.#clock = deps.clock;
    this.#audit = deps.audit;
    this.#events = deps.events;
    this.#options = { approvalFor: options.approvalFor ?? ['erasure', 'rectification'], codeTtlMs: options.codeTtlMs ?? 15 * 60_000, maxCodeAttempts: options.maxCodeAttempts ?? 5, identityKinds: options.identityKinds, correctable: options.correctable };
  }

  /**
   * Takes a request: checks the right exists in the jurisdiction, validates the identities, computes the
   * deadline, and either sends a verification code (through the mail outbox) or, for authenticated requests
   * and rights that need none (CCPA opt-out), marks it verified at once.
   */
  async create(input: CreateRequestInput): Promise<RequestView> {
    const regime = regimeOf(input.jurisdiction);
    if (regime === undefined) {
      throw new CustodianError('CST_ERR_REQUEST_RIGHT_NOT_AVAILABLE', `no data protection regime is known for jurisdiction ${input.jurisdiction}`, { details: { jurisdiction: input.jurisdiction } });
    }
    const right = mayRequest(input.jurisdiction, input.type);
    if (!right.allowed) {
      throw new CustodianError('CST_ERR_REQUEST_RIGHT_NOT_AVAILABLE', `${input.type} is not a right under ${regime}`, { details: { jurisdiction: input.jurisdiction, type: input.type, ...(right.reason ? { reason: right.reason } : {}) } });
    }
    const corrections = await this.#checkCorrections(input.type, input.corrections);
    const allowedKinds = (await this.#options.identityKinds?.()) ?? DEFAULT_KINDS;
    const identities = normaliseIdentities(input.identities, allowedKinds);
    const now = this.#clock.now();
    const id = uuidv7(now);
    const receivedAt = toIso(now);
    const deadline = computeDeadline({ regime, type: input.type, receivedAt });
    const verified = input.authenticated === true || !needsVerification(regime, input.type);
    // The privacy center verifies the person itself (sign-in code), so its requests keep their channel.
    const channel = input.channel === 'privacy_center' ? 'privacy_center' : input.authenticated === true ? 'authenticated' : (input.channel ?? 'api');
    const subject = requestSubject(id);
    const sealed = await this.#cipher.encryptField(subject, JSON.stringify(identities), identitiesContext(id));
    const sealedCorrections = corrections === undefined ? null : await this.#cipher.encryptField(subject, JSON.stringify(corrections), correctionsContext(id));
    const digests = Object.entries(identities).flatMap(([kind, values]) => values.map((v) => this.#cipher.keyedDigest(`identity:${kind}:${v}`)));
    const status: RequestStatus = verified ? this.#afterVerification(input.type) : 'awaiting_verification';
    const code = verified ? undefined : String(randomInt(0, 1_000_000)).padStart(6, '0');
    const mail = code === undefined ? undefined : await this.#verificationMail(id, identities, code);
    await this.#store.transaction(async (trx) => {
      await trx
        .insertInto('requests')
        .values({
          id,
          type: input.type,
          status,
          jurisdiction: input.jurisdiction,
          regime,
          channel,
          identity_kinds: Object.keys(identities).sort().join(','),
          identities_sealed: sealed,
          corrections_sealed: sealedCorrections,
          identity_digests: JSON.stringify(digests),
          received_at: receivedAt,
          due_at: deadline.dueAt,
          acknowledge_by: deadline.acknowledgeBy ?? null,
          extended: 0,
          paused_ms: 0,
          paused_since: !verified && pausesWhileAwaitingVerification(regime) ? receivedAt : null,
          verified_at: verified ? receivedAt : null,
          completed_at: null,
          outcome: null,
          created_by: input.actor.slice(0, 128),
          updated_at: receivedAt,
          revision: 0,
          lease_owner: null,
          lease_until: null,
          context_sealed: null,
          datamap_version: null,
        })
        .execute();
      await this.#event(trx, id, null, 'received', input.actor, `${input.type} request under ${regime} (${deadline.citation})`);
      await this.#event(trx, id, 'received', status, input.actor, verified ? (channel === 'privacy_center' ? 'identity verified by the privacy center sign-in' : input.authenticated === true ? 'authenticated by the application' : 'no verification needed for this right') : 'verification code sent');
      if (code !== undefined && mail !== undefined) {
        await trx.insertInto('verification_codes').values({ request_id: id, code_digest: this.#codeDigest(id, code), expires_at: toIso(now + this.#options.codeTtlMs), attempts: 0, sent_at: receivedAt }).execute();
        await trx.insertInto('mail_outbox').values({ id: uuidv7(now), request_id: id, template: 'verification_code', to_sealed: mail.to, body_sealed: mail.body, created_at: receivedAt, claimed_until: null, sent_at: null }).execute();
      }
      await this.#audit?.record(trx, [
        { actor: input.actor, action: 'request.created', targetType: 'request', targetId: id, requestId: input.requestId ?? null, details: { type: input.type, regime, status, identityKinds: Object.keys(identities).sort() } },
      ]);
    });
    return this.get(id);
  }

  /** The request; CST_ERR_REQUEST_NOT_FOUND when there is none. */
  async get(id: string): Promise<RequestView> {
    const row = await this.#store.db.selectFrom('requests').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new CustodianError('CST_ERR_REQUEST_NOT_FOUND', 'no such request', { details: { id } });
    return this.#view(row);
  }

  /**
   * Requests naming the identity `kind`/`value` (found by its keyed digest, never by the value), newest first.
   * For the privacy center: a verified person sees only the requests made for their own identity.
   * Scans `identity_digests` with LIKE: O(requests) per call, bounded by `limit`.
   */
  async listByIdentity(kind: string, value: string, options: { limit?: number } = {}): Promise<RequestView[]> {
    const digest = this.#cipher.keyedDigest(`identity:${kind}:${value}`);
    const rows = await this.#store.db
      .selectFrom('requests')
      .selectAll()
      .where('identity_digests', 'like', `%"${digest}"%`)
      .orderBy('id', 'desc')
      .limit(Math.min(options.limit ?? 100, 1000))
      .execute();
    return rows.map((r) => this.#view(r));
  }

  /** The request if it names the identity `kind`/`value`; CST_ERR_REQUEST_NOT_FOUND otherwise (as if it did not exist). */
  async getForIdentity(id: string, kind: string, value: string): Promise<RequestView> {
    const row = await this.#store.db.selectFrom('requests').selectAll().where('id', '=', id).executeTakeFirst();
    const digest = this.#cipher.keyedDigest(`identity:${kind}:${value}`);
    const digests = row === undefined ? [] : (JSON.parse(row.identity_digests) as string[]);
    if (row === undefined || !digests.some((d) => equalDigests(d, digest))) throw new CustodianError('CST_ERR_REQUEST_NOT_FOUND', 'no such request', { details: { id } });
    return this.#view(row);
  }

  /**
   * Queues a message that belongs to no request (e.g. a privacy center sign-in code) in the mail outbox,
   * sealed under `keySubject`'s key; {@link dispatchOutbox} sends it, {@link outbox} shows it (dev sink).
   */
  async queueMail(input: { to: string; template: string; body: string; keySubject: string }): Promise<void> {
    const now = this.#clock.now();
    const to = await this.#cipher.encryptField(input.keySubject, input.to, mailContext(null, 'to'));
    const body = await this.#cipher.encryptField(input.keySubject, input.body, mailContext(null, 'body'));
    await this.#store.db.insertInto('mail_outbox').values({ id: uuidv7(now), request_id: null, template: input.template.slice(0, 64), to_sealed: to, body_sealed: body, created_at: toIso(now), claimed_until: null, sent_at: null }).execute();
  }

  /** The lifecycle of a request, oldest first (status changes with actor and reason). */
  async history(id: string): Promise<Array<{ at: string; from: string | null; to: string; actor: string; reason: string | null }>> {
    await this.get(id);
    const rows = await this.#store.db.selectFrom('request_events').selectAll().where('request_id', '=', id).orderBy('id').execute();
    return rows.map((r) => ({ at: storedToIso(r.at), from: r.from_status, to: r.to_status, actor: r.actor, reason: r.reason }));
  }

  /** Requests, soonest deadline first, filtered by status, type, jurisdiction, due before, overdue or due soon. */
  async list(filter: { status?: RequestStatus; type?: RequestType; jurisdiction?: string; dueBefore?: string; overdue?: boolean; dueWithinMs?: number; limit?: number } = {}): Promise<RequestView[]> {
    const now = this.#clock.now();
    let q = this.#store.db.selectFrom('requests').selectAll();
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    if (filter.type !== undefined) q = q.where('type', '=', filter.type);
    if (filter.jurisdiction !== undefined) q = q.where('jurisdiction', '=', filter.jurisdiction);
    if (filter.dueBefore !== undefined) q = q.where('due_at', '<', this.#instant(filter.dueBefore));
    if (filter.overdue === true || filter.dueWithinMs !== undefined) {
      q = q.where('status', 'not in', [...FINAL_STATUSES]).where('due_at', '<', this.#instant(toIso(filter.overdue === true ? now : now + filter.dueWithinMs!)));
    }
    const rows = await q.orderBy('due_at').orderBy('id').limit(Math.min(filter.limit ?? 100, 1000)).execute();
    return rows.map((r) => this.#view(r));
  }

  /**
   * Checks a verification code. Wrong codes count; after the limit the request is rejected (a new request
   * starts over). Expired codes are refused. Success moves the request on and, where the regime pauses the
   * clock while waiting for identity (UK GDPR), moves the deadline by the time spent waiting.
   */
  async verify(id: string, code: string, actor: string): Promise<RequestView> {
    const now = this.#clock.now();
    const outcome = await this.#store.transaction(async (trx) => {
      await this.#store.lock(trx, `request:${id}`);
      const row = await this.#row(trx, id);
      if (row.status !== 'awaiting_verification') throw transitionError(row.status, 'verified');
      const stored = await trx.selectFrom('verification_codes').selectAll().where('request_id', '=', id).executeTakeFirst();
      if (stored === undefined) throw new CustodianError('CST_ERR_REQUEST_VERIFICATION_FAILED', 'no verification code was sent for this request');
      if (Date.parse(storedToIso(stored.expires_at)) <= now) {
        return { ok: false as const, error: new CustodianError('CST_ERR_REQUEST_VERIFICATION_EXPIRED', 'the verification code has expired: ask for a new one') };
      }
      const good = /^\d{6}$/.test(code) && equalDigests(this.#codeDigest(id, code), stored.code_digest);
      if (!good) {
        const attempts = stored.attempts + 1;
        await trx.updateTable('verification_codes').set({ attempts }).where('request_id', '=', id).execute();
        await this.#audit?.record(trx, [{ actor, action: 'request.verification_failed', targetType: 'request', targetId: id, outcome: 'denied', details: { attempts } }]);
        if (attempts >= this.#options.maxCodeAttempts) {
          await this.#transition(trx, row, 'rejected', actor, `identity not verified: ${attempts} wrong codes`);
          await trx.deleteFrom('verification_codes').where('request_id', '=', id).execute();
          return { ok: false as const, error: new CustodianError('CST_ERR_REQUEST_VERIFICATION_LOCKED', 'too many wrong codes: the request was closed; make a new request') };
        }
        return { ok: false as const, error: new CustodianError('CST_ERR_REQUEST_VERIFICATION_FAILED', 'the code is not right', { details: { attemptsLeft: this.#options.maxCodeAttempts - attempts } }) };
      }
      await trx.deleteFrom('verification_codes').where('request_id', '=', id).execute();
      const pausedMs = Number(row.paused_ms) + (row.paused_since === null ? 0 : Math.max(0, now - Date.parse(storedToIso(row.paused_since))));
      const deadline = computeDeadline({ regime: row.regime as never, type: row.type as RequestType, receivedAt: storedToIso(row.received_at), pausedMs, extended: row.extended === 1 });
      await trx.updateTable('requests').set({ verified_at: toIso(now), paused_ms: pausedMs, paused_since: null, due_at: deadline.dueAt }).where('id', '=', id).execute();
      await this.#transition(trx, { ...row, paused_since: null }, this.#afterVerification(row.type as RequestType), actor, 'identity verified by one-time code');
      return { ok: true as const };
    });
    if (!outcome.ok) throw outcome.error;
    return this.get(id);
  }

  /** A privacy officer approves a request waiting for approval: it goes to the workers. */
  async approve(id: string, actor: string, reason?: string): Promise<RequestView> {
    return this.#move(id, (row) => (row.status === 'awaiting_approval' ? 'in_progress' : undefined), actor, reason ?? 'approved');
  }

  /** Rejects a request that is not finished, with the reason (kept, audited, shown to the person). */
  async reject(id: string, actor: string, reason: string): Promise<RequestView> {
    checkReason(reason);
    return this.#move(id, (row) => (FINAL_STATUSES.has(row.status as RequestStatus) ? undefined : 'rejected'), actor, reason);
  }

  /**
   * Extends the deadline once, as the regime allows (GDPR Art. 12(3): two more months; CCPA: 45 more days),
   * with the reason to tell the person. Refused after the deadline or a second time.
   */
  async extend(id: string, actor: string, reason: string): Promise<RequestView> {
    checkReason(reason);
    const now = this.#clock.now();
    await this.#store.transaction(async (trx) => {
      await this.#store.lock(trx, `request:${id}`);
      const row = await this.#row(trx, id);
      if (FINAL_STATUSES.has(row.status as RequestStatus)) throw transitionError(row.status, 'extended');
      if (row.extended === 1) throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', 'the deadline was already extended once');
      if (Date.parse(storedToIso(row.due_at)) <= now) throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', 'the deadline has passed: it can no longer be extended');
      const deadline = computeDeadline({ regime: row.regime as never, type: row.type as RequestType, receivedAt: storedToIso(row.received_at), pausedMs: Number(row.paused_ms), extended: true });
      if (deadline.dueAt === storedToIso(row.due_at)) throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', `${row.regime} allows no extension for ${row.type} requests`);
      await trx.updateTable('requests').set({ extended: 1, due_at: deadline.dueAt, updated_at: toIso(now), revision: row.revision + 1 }).where('id', '=', id).execute();
      await this.#event(trx, id, row.status, row.status, actor, `deadline extended to ${deadline.dueAt}: ${reason}`);
      await this.#audit?.record(trx, [{ actor, action: 'request.extended', targetType: 'request', targetId: id, details: { dueAt: deadline.dueAt } }]);
    });
    return this.get(id);
  }

  /**
   * Moves a request to `to` (used by the execution side: in_progress → completed, partially_completed, failed…).
   * `announce` names the subject ids the outcome concerns (the `request.completed` event is emitted per subject)
   * and further events to emit in the same transaction (e.g. `subject.erased`).
   */
  async setStatus(id: string, to: RequestStatus, actor: string, reason: string, outcome?: Readonly<Record<string, unknown>>, announce?: Announce): Promise<RequestView> {
    return this.#move(id, () => to, actor, reason, outcome, announce);
  }

  /** The identities of a request, decrypted (for the execution side only; never returned over the API). */
  async identitiesOf(id: string): Promise<Identities> {
    const row = await this.#row(this.#store.db, id);
    return JSON.parse(await this.#cipher.decryptFieldText(row.identities_sealed, identitiesContext(id))) as Identities;
  }

  /**
   * Raises deadline alerts: each open request past its deadline gets one `request.overdue` audit entry, and
   * each one due within `dueSoonMs` (default 7 days) one `request.due_soon`, recorded in its history too so
   * an alert is raised once. Returns the alerts raised. `serve` and `worker` run it every minute.
   */
  async sweepDeadlines(options: { dueSoonMs?: number } = {}): Promise<Array<{ id: string; alert: 'overdue' | 'due_soon'; dueAt: string }>> {
    const now = this.#clock.now();
    const soon = options.dueSoonMs ?? 7 * 86_400_000;
    const open = await this.#store.db
      .selectFrom('requests')
      .select(['id', 'status', 'due_at'])
      .where('status', 'not in', [...FINAL_STATUSES])
      .where('due_at', '<', this.#instant(toIso(now + soon)))
      .orderBy('due_at')
      .limit(1000)
      .execute();
    const raised: Array<{ id: string; alert: 'overdue' | 'due_soon'; dueAt: string }> = [];
    for (const r of open) {
      const dueAt = storedToIso(r.due_at);
      const alert = Date.parse(dueAt) <= now ? 'overdue' : 'due_soon';
      const reason = `alert:${alert}:${dueAt}`;
      await this.#store.transaction(async (trx) => {
        const seen = await trx.selectFrom('request_events').select('id').where('request_id', '=', r.id).where('reason', '=', reason).executeTakeFirst();
        if (seen !== undefined) return;
        await this.#event(trx, r.id, r.status, r.status, 'system:deadlines', reason);
        await this.#audit?.record(trx, [{ actor: 'system:deadlines', action: alert === 'overdue' ? 'request.overdue' : 'request.due_soon', targetType: 'request', targetId: r.id, details: { dueAt, status: r.status } }]);
        raised.push({ id: r.id, alert, dueAt });
      });
    }
    return raised;
  }

  /** Audits a download of a request's package (who, when, and the purpose the downloader stated, if any). */
  async recordDownload(id: string, actor: string, requestId?: string, purpose?: string): Promise<void> {
    await this.#store.transaction(async (trx) => {
      await this.#audit?.record(trx, [{ actor, action: 'request.package_downloaded', targetType: 'request', targetId: id, requestId: requestId ?? null, ...(purpose === undefined ? {} : { details: { purpose } }) }]);
    });
  }

  /**
   * Sends unsent outbox messages through `mailer`, oldest first. Each is claimed for a minute before it is
   * sent and marked sent after, so several dispatchers (serve, workers) never send the same message at once,
   * and a dispatcher that dies mid-send leaves it to be sent again (at least once). Failures stay unsent and
   * are retried at the next pass.
   */
  async dispatchOutbox(mailer: { send(m: { to: string; subject: string; text: string }): Promise<void> }, options: { limit?: number } = {}): Promise<{ sent: number; failed: number }> {
    const now = this.#clock.now();
    const due = await this.#store.db
      .selectFrom('mail_outbox')
      .selectAll()
      .where('sent_at', 'is', null)
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', this.#instant(toIso(now)))]))
      .orderBy('id')
      .limit(options.limit ?? 100)
      .execute();
    let sent = 0;
    let failed = 0;
    for (const row of due) {
      const claimed = await this.#store.db
        .updateTable('mail_outbox')
        .set({ claimed_until: toIso(now + 60_000) })
        .where('id', '=', row.id)
        .where('sent_at', 'is', null)
        .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', this.#instant(toIso(now)))]))
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) continue;
      try {
        const to = await this.#cipher.decryptFieldText(row.to_sealed, mailContext(row.request_id, 'to'));
        const text = await this.#cipher.decryptFieldText(row.body_sealed, mailContext(row.request_id, 'body'));
        await mailer.send({ to, subject: MAIL_SUBJECTS[row.template] ?? 'Your privacy request', text });
        await this.#store.db.updateTable('mail_outbox').set({ sent_at: toIso(this.#clock.now()) }).where('id', '=', row.id).execute();
        sent++;
      } catch {
        await this.#store.db.updateTable('mail_outbox').set({ claimed_until: null }).where('id', '=', row.id).execute();
        failed++;
      }
    }
    return { sent, failed };
  }

  /** The corrections of a rectification request, decrypted (execution side only). */
  async correctionsOf(id: string): Promise<Readonly<Record<string, string | null>>> {
    const row = await this.#row(this.#store.db, id);
    return row.corrections_sealed === null ? {} : (JSON.parse(await this.#cipher.decryptFieldText(row.corrections_sealed, correctionsContext(id))) as Record<string, string | null>);
  }

  async #checkCorrections(type: RequestType, corrections: Readonly<Record<string, unknown>> | undefined): Promise<Record<string, string | null> | undefined> {
    if (type !== 'rectification') {
      if (corrections !== undefined) throw new CustodianError('CST_ERR_VALIDATION', 'corrections belong to rectification requests only', { details: { issues: [{ path: 'corrections', message: 'not allowed' }] } });
      return undefined;
    }
    const entries = Object.entries(corrections ?? {});
    if (entries.length === 0 || entries.length > 50) throw new CustodianError('CST_ERR_VALIDATION', 'a rectification names 1 to 50 corrections', { details: { issues: [{ path: 'corrections', message: 'required' }] } });
    const out: Record<string, string | null> = {};
    for (const [address, value] of entries) {
      const path = `corrections.${address.slice(0, 200)}`;
      if (value !== null && (typeof value !== 'string' || value.length > 2000 || !isStorableText(value))) {
        throw new CustodianError('CST_ERR_VALIDATION', 'a corrected value is text of at most 2,000 characters, or null', { details: { issues: [{ path, message: 'invalid value' }] } });
      }
      const why = await this.#options.correctable?.(address);
      if (why !== undefined) throw new CustodianError('CST_ERR_VALIDATION', `cannot correct ${address.slice(0, 200)}: ${why}`, { details: { issues: [{ path, message: why }] } });
      out[address] = value;
    }
    return out;
  }

  /** The dev mail sink: messages in the outbox, decrypted (codes included). Development and tests only. */
  async outbox(requestId?: string): Promise<Array<{ id: string; requestId: string | null; template: string; to: string; body: string; createdAt: string }>> {
    let q = this.#store.db.selectFrom('mail_outbox').selectAll().orderBy('id');
    if (requestId !== undefined) q = q.where('request_id', '=', requestId);
    const rows = await q.limit(1000).execute();
    return Promise.all(
      rows.map(async (r) => ({
        id: r.id,
        requestId: r.request_id,
        template: r.template,
        to: await this.#cipher.decryptFieldText(r.to_sealed, mailContext(r.request_id, 'to')),
        body: await this.#cipher.decryptFieldText(r.body_sealed, mailContext(r.request_id, 'body')),
        createdAt: storedToIso(r.created_at),
      })),
    );
  }

  #afterVerification(type: RequestType): RequestStatus {
    return this.#options.approvalFor.includes(type) ? 'awaiting_approval' : 'in_progress';
  }

  async #verificationMail(id: string, identities: Identities, code: string): Promise<{ to: string; body: string }> {
    const to = identities.email?.[0] ?? identities.phone_number?.[0];
    if (to === undefined) {
      throw new CustodianError('CST_ERR_REQUEST_BAD_IDENTITY', 'an e-mail address or phone number is needed to verify the request', { details: { issues: [{ path: 'identities', message: 'email or phone required' }] } });
    }
    const body = `Your verification code is ${code}. It expires in ${Math.round(this.#options.codeTtlMs / 60_000)} minutes. If you did not ask for this, ignore this message.`;
    return {
      to: await this.#cipher.encryptField(requestSubject(id), to, mailContext(id, 'to')),
      body: await this.#cipher.encryptField(requestSubject(id), body, mailContext(id, 'body')),
    };
  }

  #codeDigest(id: string, code: string): string {
    return this.#cipher.keyedDigest(`verification:${id}:${code}`);
  }

  async #move(id: string, to: (row: RequestRow) => RequestStatus | undefined, actor: string, reason: string, outcome?: Readonly<Record<string, unknown>>, announce?: Announce): Promise<RequestView> {
    await this.#store.transaction(async (trx) => {
      await this.#store.lock(trx, `request:${id}`);
      const row = await this.#row(trx, id);
      const next = to(row);
      if (next === undefined) throw transitionError(row.status, 'changed');
      await this.#transition(trx, row, next, actor, reason, outcome, announce);
    });
    this.#events?.committed();
    return this.get(id);
  }

  async #transition(trx: Executor, row: RequestRow, to: RequestStatus, actor: string, reason: string, outcome?: Readonly<Record<string, unknown>>, announce?: Announce): Promise<void> {
    assertTransition(row.status as RequestStatus, to);
    const now = toIso(this.#clock.now());
    const final = FINAL_STATUSES.has(to);
    const updated = await trx
      .updateTable('requests')
      .set({ status: to, updated_at: now, revision: row.revision + 1, ...(final ? { completed_at: now } : {}), ...(outcome !== undefined ? { outcome: JSON.stringify(outcome) } : {}) })
      .where('id', '=', row.id)
      .where('revision', '=', row.revision)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', 'the request changed meanwhile: read it again');
    await this.#event(trx, row.id, row.status, to, actor, reason);
    await this.#audit?.record(trx, [{ actor, action: 'request.status_changed', targetType: 'request', targetId: row.id, details: { from: row.status, to } }]);
    if (this.#events !== undefined && (final || announce?.events !== undefined)) {
      const subjects: Array<string | null> = announce?.subjectIds !== undefined && announce.subjectIds.length > 0 ? [...announce.subjectIds] : [null];
      const data = { requestId: row.id, requestType: row.type, status: to, jurisdiction: row.jurisdiction };
      const completed: EventInput[] = final ? subjects.map((subjectId) => ({ type: 'request.completed', subjectId, purposes: [], data })) : [];
      await this.#events.emit(trx, [...(announce?.events ?? []), ...completed]);
    }
  }

  async #event(trx: Executor, id: string, from: string | null, to: string, actor: string, reason: string | null): Promise<void> {
    await trx
      .insertInto('request_events')
      .values({ id: uuidv7(this.#clock.now()), request_id: id, at: toIso(this.#clock.now()), from_status: from, to_status: to, actor: actor.slice(0, 128), reason: reason?.slice(0, 1000) ?? null })
      .execute();
  }

  async #row(db: Executor, id: string): Promise<RequestRow> {
    const row = await db.selectFrom('requests').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new CustodianError('CST_ERR_REQUEST_NOT_FOUND', 'no such request', { details: { id } });
    return row;
  }

  #instant(iso: string): string {
    return this.#store.kind === 'postgres' ? iso : new Date(iso).toISOString();
  }

  #view(r: RequestRow): RequestView {
    const dueAt = storedToIso(r.due_at);
    return {
      id: r.id,
      type: r.type as RequestType,
      status: r.status as RequestStatus,
      jurisdiction: r.jurisdiction,
      regime: r.regime,
      channel: r.channel as RequestView['channel'],
      identityKinds: r.identity_kinds === '' ? [] : r.identity_kinds.split(','),
      receivedAt: storedToIso(r.received_at),
      dueAt,
      acknowledgeBy: r.acknowledge_by === null ? null : storedToIso(r.acknowledge_by),
      extended: r.extended === 1,
      verifiedAt: r.verified_at === null ? null : storedToIso(r.verified_at),
      completedAt: r.completed_at === null ? null : storedToIso(r.completed_at),
      overdue: !FINAL_STATUSES.has(r.status as RequestStatus) && Date.parse(dueAt) < this.#clock.now(),
      outcome: r.outcome === null ? null : (JSON.parse(r.outcome) as Record<string, unknown>),
    };
  }
}

type RequestRow = Selectable<RequestsTable>;

/** The keyring subject that owns a request's sealed identities and mail: shredded when the request is purged. */
export function requestSubject(id: string): string {
  return `request:${id}`;
}

const MAIL_SUBJECTS: Readonly<Record<string, string>> = { verification_code: 'Your verification code', privacy_center_code: 'Your privacy center sign-in code', breach_individual: 'Important: a security incident involving your personal data', breach_authority: 'Personal data breach notification' };

const correctionsContext = (id: string) => `custodian.requests.corrections:${id}`;
const identitiesContext = (id: string) => `custodian.requests.identities:${id}`;
const mailContext = (id: string | null, part: 'to' | 'body') => `custodian.mail_outbox.${part}:${id ?? 'none'}`;

function equalDigests(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

function checkReason(reason: unknown): asserts reason is string {
  if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > 1000) {
    throw new CustodianError('CST_ERR_VALIDATION', 'a reason of 1 to 1,000 characters is required', { details: { issues: [{ path: 'reason', message: 'required' }] } });
  }
}

function transitionError(from: string, to: string): CustodianError {
  return new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', `a request that is ${from} cannot be ${to}`, { details: { status: from } });
}
