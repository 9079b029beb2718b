import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { CustodianError, LEGAL_BASES, honoursGpc, toIso, type AuditEntryInput, type Clock, type LegalBasis, type Purpose, type RequestType } from '../core/index.js';
import type { DataMap } from '../datamap/index.js';
import { offeredIn, type ApplyGpcOptions, type ConsentStatus, type GpcApplication, type PurposeState, type RecordContext, type ConsentEventInput } from '../ledger/index.js';
import { normaliseIdentities } from '../rights/engine/identities.js';
import type { CreateRequestInput, RequestView } from '../rights/engine/request-engine.js';
import { purposeTextIn, type Branding, type PrivacyCenterLanguage } from './branding.js';
import { rectifiableFields, type RectifiableField } from './rectifiable-fields.js';
import type { PrivacySession, SessionStore } from './session-store.js';

/** What the privacy center needs from the rest of Custodian: a small, named set of services. */
export interface PrivacyCenterDeps {
  readonly clock: Clock;
  readonly sessions: SessionStore;
  /** Keyed digest (HMAC under a key of the store): stable, not reversible without the key. */
  readonly digest: (text: string) => string;
  readonly requests: {
    create(input: CreateRequestInput): Promise<RequestView>;
    listByIdentity(kind: string, value: string, options?: { limit?: number }): Promise<RequestView[]>;
    getForIdentity(id: string, kind: string, value: string): Promise<RequestView>;
    queueMail(input: { to: string; template: string; body: string; keySubject: string }): Promise<void>;
  };
  readonly ledger: {
    state(subjectId: string): Promise<PurposeState[]>;
    record(events: readonly ConsentEventInput[], ctx: RecordContext): Promise<unknown>;
    applyGpc(subjectId: string, options: ApplyGpcOptions): Promise<GpcApplication>;
  };
  readonly purposes: { list(): readonly Purpose[] };
  readonly packages: { packageLink(id: string, ttlMs: number): Promise<{ token: string; expiresAt: string }> };
  readonly branding: () => Branding;
  /**
   * The audit log (ids only). A successful sign-in is recorded in the transaction that stores its session
   * (`record`, when the session store has one, see {@link SessionStore.putSession}); codes sent, failed codes and
   * ended sessions each in a transaction of their own (`recordNow`).
   */
  readonly audit: { record(trx: unknown, entries: readonly AuditEntryInput[]): Promise<void>; recordNow(entries: readonly AuditEntryInput[]): Promise<void> };
  /** The current data map, for the fields a person may ask to have corrected; undefined when none is stored. */
  readonly dataMap: () => Promise<DataMap | undefined>;
}

/** Maps a verified e-mail address to the application's user id; undefined when the application has no such user. */
export type SubjectLookup = (email: string) => Promise<string | undefined>;

/** Options of {@link PrivacyCenter}. */
export interface PrivacyCenterOptions {
  /** Lifetime of a sign-in code (default 10 minutes). */
  readonly codeTtlMs?: number;
  /** Wrong codes accepted before a code is used up (default 5). */
  readonly maxCodeAttempts?: number;
  /** Codes sent to one address per 15 minutes (default 5); more are silently not sent. */
  readonly maxCodesPerWindow?: number;
  /** Lifetime of a session (default 30 minutes), counted from sign-in. */
  readonly sessionTtlMs?: number;
  /** The operator's lookup of the application's user id (see docs/privacy-center.md). */
  readonly lookupSubject?: SubjectLookup;
  /** CUSTODIAN_GPC_EVERYWHERE: honour GPC whatever the jurisdiction. */
  readonly gpcEverywhere?: boolean;
}

/** A purpose as the privacy center shows it, with the person's current decision. */
export interface PrivacyPurposeView {
  readonly key: string;
  readonly title: string;
  readonly description: string;
  readonly legalBasis: LegalBasis;
  /** The article the legal basis rests on, e.g. `GDPR Art. 6(1)(a)`. */
  readonly legalBasisArticle: string;
  /** Whether the person can grant or withdraw here (consent-based, GPC opt-out, or objectable purposes). */
  readonly changeable: boolean;
  readonly status: ConsentStatus;
  readonly decidedAt: string | null;
  readonly method: string | null;
  readonly gpcOptOut: boolean;
}

/** The consent page: purposes offered in the center's jurisdiction and the Global Privacy Control outcome. */
export interface PrivacyConsentView {
  readonly jurisdiction: string;
  /** The language of `title` and `description` (the asked one, or the branding's default). */
  readonly language: PrivacyCenterLanguage;
  readonly purposes: readonly PrivacyPurposeView[];
  readonly gpc: {
    /** The browser sent `Sec-GPC: 1`. */
    readonly signal: boolean;
    /** The jurisdiction (or CUSTODIAN_GPC_EVERYWHERE) makes the signal an opt-out. */
    readonly honoured: boolean;
    /** Purposes the signal opted out on this very call (sorted; empty when they were opted out already). */
    readonly applied: readonly string[];
    /** Offered purposes whose current decision is an opt-out by the signal (method `gpc`). */
    readonly optedOut: readonly string[];
  };
}

/** How a call reached the center: the GPC signal, the page's language, the HTTP request id (for the audit log). */
export interface PrivacyCallContext {
  readonly gpc?: boolean;
  readonly language?: PrivacyCenterLanguage | undefined;
  readonly requestId?: string | undefined;
}

/** A new session: the cookie token (give it to the browser only) and the CSRF token the page sends back. */
export interface OpenedSession {
  readonly token: string;
  readonly csrfToken: string;
  readonly expiresAt: string;
}

const WINDOW_MS = 15 * 60_000;
/** The audit actor of calls made before sign-in: the person is not known yet. */
const ANONYMOUS = 'privacy_center';
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/**
 * The privacy center for data subjects: e-mail sign-in with a one-time code, then a session scoped to that
 * verified address — its consent decisions (on the subject id the address maps to) and its own requests.
 * Every answer before sign-in is the same whether or not the address is known (no enumeration), and a
 * session can only reach its own requests: any other id is "not found".
 */
export class PrivacyCenter {
  readonly #d: PrivacyCenterDeps;
  readonly #codeTtlMs: number;
  readonly #maxAttempts: number;
  readonly #maxPerWindow: number;
  readonly #sessionTtlMs: number;
  readonly #lookup: SubjectLookup | undefined;
  readonly #gpcEverywhere: boolean;

  constructor(deps: PrivacyCenterDeps, options: PrivacyCenterOptions = {}) {
    this.#d = deps;
    this.#codeTtlMs = options.codeTtlMs ?? 10 * 60_000;
    this.#maxAttempts = options.maxCodeAttempts ?? 5;
    this.#maxPerWindow = options.maxCodesPerWindow ?? 5;
    this.#sessionTtlMs = options.sessionTtlMs ?? 30 * 60_000;
    this.#lookup = options.lookupSubject;
    this.#gpcEverywhere = options.gpcEverywhere ?? false;
  }

  /** The branding and offer of the page. */
  branding(): Branding {
    return this.#d.branding();
  }

  /**
   * Starts a sign-in: sends a six-digit code to `email` through the mail outbox and returns the challenge id.
   * The answer is the same for every well-formed address, known or not; past the per-address limit the code
   * is silently not sent (the answer still looks the same).
   */
  async startSignIn(email: string, language: PrivacyCenterLanguage = 'en', ctx: PrivacyCallContext = {}): Promise<{ challengeId: string; expiresAt: string }> {
    const address = normaliseIdentities({ email }, ['email']).email![0]!;
    const now = this.#d.clock.now();
    const id = randomBytes(16).toString('base64url');
    const expiresAt = now + this.#codeTtlMs;
    const emailDigest = this.#d.digest(`privacy-center:email:${address}`);
    const recent = await this.#d.sessions.recentChallenges(emailDigest, now - WINDOW_MS);
    const sent = recent < this.#maxPerWindow;
    if (sent) {
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      await this.#d.sessions.putChallenge({ id, email: address, emailDigest, codeDigest: this.#codeDigest(id, code), expiresAt, attempts: 0, createdAt: now });
      const minutes = Math.round(this.#codeTtlMs / 60_000);
      await this.#d.requests.queueMail({ to: address, template: 'privacy_center_code', body: MAIL[language](code, minutes, this.#d.branding().name), keySubject: `privacy-center:${emailDigest}` });
    }
    // The challenge id and the outcome only, never a digest or index of the address (GDPR Art. 5(1)(c)): anyone
    // may call this for any address, and audit entries are permanent, so an index would keep the address linkable
    // after its erasure (Art. 17). The send limit uses the challenge row's own keyed digest, swept within the hour.
    await this.#audit(ctx, { actor: ANONYMOUS, action: 'privacy_center.code_sent', targetType: 'privacy_sign_in', targetId: id, outcome: sent ? 'success' : 'denied', details: { sent } });
    return { challengeId: id, expiresAt: toIso(expiresAt) };
  }

  /**
   * Checks the code of a challenge and opens a session for its address. Every code checked counts as an attempt,
   * claimed before the comparison, so that at most `maxCodeAttempts` codes of one challenge are ever compared, even
   * when guesses arrive in parallel on several replicas; at the limit the challenge is used up. An unknown, expired,
   * used or used-up challenge is CST_ERR_PRIVACY_CODE_EXPIRED. With `ctx.gpc`, the GPC signal is applied for the
   * person at once (see {@link consent}).
   */
  async verifySignIn(challengeId: string, code: string, ctx: PrivacyCallContext = {}): Promise<OpenedSession> {
    const now = this.#d.clock.now();
    const failed = (reason: 'expired' | 'used_up' | 'wrong_code' | 'already_used', attemptsLeft: number) =>
      this.#audit(ctx, { actor: ANONYMOUS, action: 'privacy_center.verification_failed', targetType: 'privacy_sign_in', targetId: challengeId, outcome: 'failure', details: { reason, attemptsLeft } });
    const expired = (message = 'the code has expired or was used up: ask for a new one') => new CustodianError('CST_ERR_PRIVACY_CODE_EXPIRED', message);
    // Claimed first, atomically in the store: counting only after a wrong comparison let every request in flight
    // see the same count, and 40 parallel guesses compared 40 codes where 5 are allowed.
    const challenge = await this.#d.sessions.claimAttempt(challengeId, this.#maxAttempts, now);
    if (challenge === undefined) {
      // An unknown or used id is not audited: it names nothing, and anyone could send any number of them. A used-up
      // challenge was recorded by the call that compared its last code. An expired one is recorded once, by
      // whichever call uses it up.
      const open = await this.#d.sessions.getChallenge(challengeId);
      if (open !== undefined && open.expiresAt <= now && (await this.#d.sessions.deleteChallenge(challengeId))) await failed('expired', 0);
      throw expired();
    }
    const attemptsLeft = Math.max(0, this.#maxAttempts - challenge.attempts);
    if (!(/^\d{6}$/.test(code) && equalHex(this.#codeDigest(challengeId, code), challenge.codeDigest))) {
      if (attemptsLeft > 0) {
        await failed('wrong_code', attemptsLeft);
        throw new CustodianError('CST_ERR_PRIVACY_CODE_INVALID', 'the code is not right', { details: { attemptsLeft } });
      }
      await this.#d.sessions.deleteChallenge(challengeId);
      await failed('used_up', 0);
      throw expired('too many wrong codes: ask for a new one');
    }
    // A code opens one session: of two replicas checking it at once, only the one that uses it up goes on.
    if (!(await this.#d.sessions.deleteChallenge(challengeId))) {
      await failed('already_used', 0);
      throw expired();
    }
    const userId = (await this.#lookup?.(challenge.email)) ?? null;
    const subjectId = userId ?? `pc_${this.#d.digest(`privacy-center:subject:email:${challenge.email}`)}`;
    const token = randomBytes(32).toString('base64url');
    const tokenHash = sha256(token);
    const expiresAt = now + this.#sessionTtlMs;
    const session: PrivacySession = { tokenHash, email: challenge.email, subjectId, userId, createdAt: now, expiresAt };
    // The session and its audit entry commit together: a crash between two transactions would leave a session
    // nobody could account for.
    const opened = [this.#entry(ctx, { actor: this.#actor(session), action: 'privacy_center.verification_succeeded', targetType: 'subject', targetId: subjectId, details: { challengeId } })];
    await this.#d.sessions.putSession(session, { alongside: (trx) => (trx === undefined ? this.#d.audit.recordNow(opened) : this.#d.audit.record(trx, opened)) });
    // The signal is applied at sign-in too, so the opt-out does not wait for the consent page.
    if (ctx.gpc === true) await this.#applyGpc(session, ctx);
    return { token, csrfToken: this.#csrfToken(tokenHash), expiresAt: toIso(expiresAt) };
  }

  /** The live session of a cookie token; CST_ERR_PRIVACY_SESSION_REQUIRED when there is none. */
  async session(token: string | undefined, ctx: PrivacyCallContext = {}): Promise<PrivacySession> {
    const session = token !== undefined && TOKEN.test(token) ? await this.#d.sessions.getSession(sha256(token)) : undefined;
    if (session === undefined || session.expiresAt <= this.#d.clock.now()) {
      // Audited once, by whichever call removes it (an expired session nobody comes back with is swept silently).
      if (session !== undefined && (await this.#d.sessions.deleteSession(session.tokenHash))) await this.#ended(session, 'expired', ctx);
      throw new CustodianError('CST_ERR_PRIVACY_SESSION_REQUIRED', 'sign in with your e-mail address');
    }
    return session;
  }

  /** The CSRF token of a session: derived from it (keyed digest), so nothing more is stored. */
  csrfTokenOf(session: PrivacySession): string {
    return this.#csrfToken(session.tokenHash);
  }

  /** Refuses a state-changing call whose CSRF token is not the session's (CST_ERR_PRIVACY_CSRF). */
  checkCsrf(session: PrivacySession, given: string | undefined): void {
    if (given === undefined || !equalHex(given, this.#csrfToken(session.tokenHash))) {
      throw new CustodianError('CST_ERR_PRIVACY_CSRF', 'missing or wrong CSRF token: reload the page');
    }
  }

  /**
   * Deletes a bounded batch of expired sessions and sign-in challenges, for schedulers (`serve` runs it every
   * minute): stores sweep on writes too, but a store nobody signs in to would otherwise keep expired rows.
   */
  async sweepSessions(): Promise<{ sessions: number; challenges: number }> {
    return (await this.#d.sessions.sweep?.()) ?? { sessions: 0, challenges: 0 };
  }

  /** Ends a session (sign-out). */
  async signOut(session: PrivacySession, ctx: PrivacyCallContext = {}): Promise<void> {
    if (await this.#d.sessions.deleteSession(session.tokenHash)) await this.#ended(session, 'signed_out', ctx);
  }

  /**
   * The purposes offered in the center's jurisdiction with the person's current decisions, texts in `ctx.language`
   * (see {@link purposeTextIn}). With the GPC signal, it is applied first — on every visit, not only with a choice
   * (11 CCR §7025(c)(1): the signal is an opt-out request for the known consumer): see {@link ConsentLedger.applyGpc}
   * for the rule, including a grant made while the signal was present, which stands (§7025(c)(3)).
   */
  async consent(session: PrivacySession, ctx: PrivacyCallContext = {}): Promise<PrivacyConsentView> {
    const branding = this.#d.branding();
    const jurisdiction = branding.jurisdiction;
    const language = ctx.language ?? branding.defaultLanguage;
    const gpcSignal = ctx.gpc === true;
    const applied = gpcSignal ? await this.#applyGpc(session, ctx) : [];
    const offered = this.#d.purposes.list().filter((p) => offeredIn(p, jurisdiction));
    const state = new Map((await this.#d.ledger.state(session.subjectId)).map((s) => [s.purpose, s]));
    return {
      jurisdiction,
      language,
      purposes: offered.map((p) => {
        const s = state.get(p.key);
        const text = purposeTextIn(branding, p, language);
        return {
          key: p.key,
          title: text.title,
          description: text.description,
          legalBasis: p.legalBasis,
          legalBasisArticle: LEGAL_BASES[p.legalBasis].article,
          changeable: isChangeable(p),
          status: s?.status ?? 'none',
          decidedAt: s?.decidedAt ?? null,
          method: s?.method ?? null,
          gpcOptOut: p.gpcOptOut,
        };
      }),
      gpc: {
        signal: gpcSignal,
        honoured: gpcSignal && (this.#gpcEverywhere || honoursGpc(jurisdiction)),
        applied,
        optedOut: offered.filter((p) => isGpcOptOut(state.get(p.key))).map((p) => p.key),
      },
    };
  }

  /** Applies the browser's GPC signal for a signed-in person (see {@link consent}); returns the purposes opted out now. */
  async #applyGpc(session: PrivacySession, ctx: PrivacyCallContext): Promise<readonly string[]> {
    const jurisdiction = this.#d.branding().jurisdiction;
    // CUSTODIAN_GPC_EVERYWHERE is the ledger's option too; asking here saves a call where the law does not apply.
    if (!this.#gpcEverywhere && !honoursGpc(jurisdiction)) return [];
    const result = await this.#d.ledger.applyGpc(session.subjectId, { jurisdiction, actor: this.#actor(session), ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}) });
    return result.purposes;
  }

  /**
   * Records the person's grant or withdrawal for one purpose (method `privacy_center`, with the GPC flag, so the
   * ledger's GPC rule applies in the same batch). Unknown or not changeable purposes are CST_ERR_NOT_FOUND.
   */
  async decide(session: PrivacySession, purposeKey: string, decision: 'granted' | 'withdrawn', ctx: PrivacyCallContext & { gpc: boolean }): Promise<PrivacyConsentView> {
    const jurisdiction = this.#d.branding().jurisdiction;
    const purpose = this.#d.purposes.list().find((p) => p.key === purposeKey && offeredIn(p, jurisdiction));
    if (purpose === undefined || !isChangeable(purpose)) throw new CustodianError('CST_ERR_NOT_FOUND', 'no such purpose to decide on here', { details: { purpose: purposeKey } });
    // Withdrawing from a purpose that does not rest on consent is an objection (GDPR Art. 21(1)): recorded as `denied`.
    const recorded = decision === 'withdrawn' && purpose.legalBasis !== 'consent' ? 'denied' : decision;
    await this.#d.ledger.record([{ subjectId: session.subjectId, purpose: purpose.key, decision: recorded, jurisdiction, method: 'privacy_center' }], {
      actor: this.#actor(session),
      gpc: ctx.gpc,
      ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
    });
    return this.consent(session, ctx);
  }

  /** The fields of the data map the person may ask to have corrected (see {@link rectifiableFields}); empty without a data map. */
  async rectifiableFields(session: PrivacySession): Promise<RectifiableField[]> {
    const map = await this.#d.dataMap();
    return map === undefined ? [] : rectifiableFields(map, session.userId === null ? ['email'] : ['email', 'user_id']);
  }

  /** Makes a request for the verified address (and user id): already verified, so no code is sent. */
  async createRequest(session: PrivacySession, input: { type: RequestType; jurisdiction?: string; corrections?: Readonly<Record<string, string | null>>; requestId?: string }): Promise<RequestView> {
    const branding = this.#d.branding();
    const jurisdiction = input.jurisdiction ?? branding.jurisdiction;
    if (!branding.jurisdictions.includes(jurisdiction) || !branding.requestTypes.includes(input.type)) {
      throw new CustodianError('CST_ERR_REQUEST_RIGHT_NOT_AVAILABLE', 'this privacy center does not take that request', { details: { jurisdiction, type: input.type } });
    }
    if (input.type === 'rectification' && input.corrections !== undefined) {
      // Only the fields offered to this person: the data map must declare them, as rectifiable (GDPR Art. 16).
      const offered = new Set((await this.rectifiableFields(session)).map((f) => f.field));
      const issues = Object.keys(input.corrections)
        .filter((field) => !offered.has(field))
        .map((field) => ({ path: `corrections.${field.slice(0, 200)}`, message: 'not a field of the data map that can be corrected here' }));
      if (issues.length > 0) throw new CustodianError('CST_ERR_VALIDATION', 'a correction names a field that cannot be corrected here', { details: { issues } });
    }
    return this.#d.requests.create({
      type: input.type,
      jurisdiction,
      identities: session.userId === null ? { email: session.email } : { email: session.email, user_id: session.userId },
      authenticated: true,
      channel: 'privacy_center',
      ...(input.corrections !== undefined ? { corrections: input.corrections } : {}),
      actor: this.#actor(session),
      ...(input.requestId !== undefined ? { requestId: input.requestId } : {}),
    });
  }

  /** The session's own requests (made for its verified address, from any channel), newest first. */
  async requests(session: PrivacySession): Promise<RequestView[]> {
    return this.#d.requests.listByIdentity('email', session.email, { limit: 100 });
  }

  /** One of the session's own requests; any other id is CST_ERR_REQUEST_NOT_FOUND (never "forbidden"). */
  async request(session: PrivacySession, id: string): Promise<RequestView> {
    return this.#d.requests.getForIdentity(id, 'email', session.email);
  }

  /** A signed, one-hour download link to the package of one of the session's completed access or portability requests. */
  async packageLink(session: PrivacySession, id: string): Promise<{ url: string; expiresAt: string }> {
    const request = await this.request(session, id);
    if ((request.type !== 'access' && request.type !== 'portability') || (request.status !== 'completed' && request.status !== 'partially_completed')) {
      throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', 'the package is not ready', { details: { status: request.status } });
    }
    const link = await this.#d.packages.packageLink(id, 60 * 60_000);
    return { url: `/downloads/packages/${link.token}`, expiresAt: link.expiresAt };
  }

  async #ended(session: PrivacySession, reason: 'signed_out' | 'expired', ctx: PrivacyCallContext): Promise<void> {
    await this.#audit(ctx, { actor: this.#actor(session), action: 'privacy_center.session_ended', targetType: 'subject', targetId: session.subjectId, details: { reason } });
  }

  async #audit(ctx: PrivacyCallContext, entry: AuditEntryInput): Promise<void> {
    await this.#d.audit.recordNow([this.#entry(ctx, entry)]);
  }

  #entry(ctx: PrivacyCallContext, entry: AuditEntryInput): AuditEntryInput {
    return { ...entry, requestId: ctx.requestId ?? null };
  }

  #actor(session: PrivacySession): string {
    // Names the session, not the person: the first 16 hex digits of the token's hash.
    return `privacy_center:${session.tokenHash.slice(0, 16)}`;
  }

  #codeDigest(id: string, code: string): string {
    return this.#d.digest(`privacy-center:code:${id}:${code}`);
  }

  #csrfToken(tokenHash: string): string {
    return this.#d.digest(`privacy-center:csrf:${tokenHash}`);
  }
}

/** Consent-based purposes, GPC opt-out purposes and those the person may object to (GDPR Art. 21(1)). */
function isChangeable(p: Purpose): boolean {
  return p.consentRequired || p.gpcOptOut || LEGAL_BASES[p.legalBasis].objectable;
}

/** Whether the current decision is an opt-out recorded by the GPC signal (method `gpc`). */
function isGpcOptOut(s: PurposeState | undefined): boolean {
  return s?.method === 'gpc' && s.status === 'denied';
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

const MAIL: Readonly<Record<PrivacyCenterLanguage, (code: string, minutes: number, name: string) => string>> = {
  en: (code, minutes, name) => `Your sign-in code for ${name} is ${code}. It expires in ${minutes} minutes. If you did not ask for it, ignore this message.`,
  de: (code, minutes, name) => `Ihr Anmeldecode für ${name} lautet ${code}. Er ist ${minutes} Minuten gültig. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese Nachricht.`,
};
