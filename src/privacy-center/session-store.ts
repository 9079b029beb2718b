/** A pending sign-in: a one-time code sent to an e-mail address. */
export interface SignInChallenge {
  readonly id: string;
  /** Normalised (trimmed, lower-cased) address; held only until the code is used or expires. */
  readonly email: string;
  /** Keyed digest of the address, for the per-address send limit. */
  readonly emailDigest: string;
  /** Keyed digest of the challenge id and the code; the code itself is never stored. */
  readonly codeDigest: string;
  readonly expiresAt: number;
  readonly attempts: number;
  readonly createdAt: number;
}

/** A signed-in person: the verified address and the ledger subject it maps to. */
export interface PrivacySession {
  /** SHA-256 (hex) of the cookie's random token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly email: string;
  readonly subjectId: string;
  /** The application's user id, when the operator's lookup found one. */
  readonly userId: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/**
 * Writes that commit with a new session (see {@link SessionStore.putSession}): called once, with the store
 * transaction the session row is written in, or with undefined by a store that has none.
 *
 * @example
 * await sessions.putSession(session, { alongside: (trx) => (trx === undefined ? audit.recordNow(entries) : audit.record(trx, entries)) });
 */
export type SessionWrite = (trx: unknown) => Promise<void>;

/** Options of {@link SessionStore.putSession}. */
export interface PutSessionOptions {
  readonly alongside?: SessionWrite;
}

/**
 * Where the privacy center keeps sign-in challenges and sessions. Entries expire on their own; a store may
 * drop expired entries whenever it likes. Adapters: {@link MemorySessionStore} (one process) and
 * `StoreSessionStore` (Custodian's store, shared by replicas; the default of `createCustodian`). Both pass the
 * conformance suite in `test/privacy-center/session-store.case.ts`.
 */
export interface SessionStore {
  putChallenge(challenge: SignInChallenge): Promise<void>;
  getChallenge(id: string): Promise<SignInChallenge | undefined>;
  /**
   * Claims one attempt at the code of a challenge, before the code is compared: counts it and answers the challenge
   * with the count (1 for the first attempt, `maxAttempts` for the last), or undefined — nothing counted — when the
   * challenge is unknown, used, expired at `now`, or has had its `maxAttempts` already. Atomic: of any number of
   * concurrent calls (on any replica), at most `maxAttempts - attempts` get a challenge, so parallel guesses cannot
   * compare more codes than the limit allows.
   *
   * @example
   * const claimed = await sessions.claimAttempt(id, 5, clock.now());
   * if (claimed === undefined) throw expired; // compare the code only now
   */
  claimAttempt(id: string, maxAttempts: number, now: number): Promise<SignInChallenge | undefined>;
  /**
   * Uses the challenge up. True for exactly one caller while it was open, so a code opens one session even when
   * two replicas check it at the same moment.
   */
  deleteChallenge(id: string): Promise<boolean>;
  /** Codes sent for `emailDigest` at or after `since` (used or not). O(1): at most 20 times are kept per address. */
  recentChallenges(emailDigest: string, since: number): Promise<number>;
  /**
   * Keeps a new session. `options.alongside` writes what must commit with it (the privacy center's
   * `verification_succeeded` audit entry): both are kept, or neither — when `alongside` fails, `putSession`
   * rejects with its error and no session is kept. A store in Custodian's store runs it in the transaction that
   * inserts the session row and passes that transaction; a store with no transaction to share passes undefined,
   * runs it first and keeps the session only once it succeeded.
   */
  putSession(session: PrivacySession, options?: PutSessionOptions): Promise<void>;
  getSession(tokenHash: string): Promise<PrivacySession | undefined>;
  /** Ends a session; true when it was there (so exactly one caller reports its end). */
  deleteSession(tokenHash: string): Promise<boolean>;
  /** Deletes a bounded batch of expired entries (optional: stores that expire entries on their own need not). */
  sweep?(): Promise<{ sessions: number; challenges: number }>;
}

/**
 * An in-process {@link SessionStore}: right for one process (tests, embedding). It has no transaction, so what
 * goes with a new session (its audit entry) commits on its own, just before the session is kept (see
 * {@link putSession}). Several replicas behind a load balancer need the store-backed adapter (the default, see
 * docs/privacy-center.md). Bounded: past `maxEntries` the oldest entries are dropped (Map iteration order is
 * insertion order), so a flood of sign-ins cannot exhaust memory. Expired entries are swept on writes: amortised O(1) per operation.
 */
export class MemorySessionStore implements SessionStore {
  readonly #challenges = new Map<string, SignInChallenge>();
  readonly #sessions = new Map<string, PrivacySession>();
  /** Send times per address digest, for the per-address limit (kept apart: a used challenge still counts). */
  readonly #sent = new Map<string, number[]>();
  readonly #now: () => number;
  readonly #maxEntries: number;

  constructor(options: { now: () => number; maxEntries?: number }) {
    this.#now = options.now;
    this.#maxEntries = options.maxEntries ?? 100_000;
  }

  async putChallenge(challenge: SignInChallenge): Promise<void> {
    this.#sweep(this.#challenges);
    this.#challenges.set(challenge.id, challenge);
    const times = this.#sent.get(challenge.emailDigest) ?? [];
    this.#sent.delete(challenge.emailDigest); // re-insert: the Map stays ordered by last send
    this.#sent.set(challenge.emailDigest, [...times.slice(-19), challenge.createdAt]);
    if (this.#sent.size > this.#maxEntries) this.#sent.delete(this.#sent.keys().next().value!);
  }

  async getChallenge(id: string): Promise<SignInChallenge | undefined> {
    return this.#challenges.get(id);
  }

  async claimAttempt(id: string, maxAttempts: number, now: number): Promise<SignInChallenge | undefined> {
    // No await between the check and the write: one turn of the event loop, so concurrent claims cannot interleave.
    const c = this.#challenges.get(id);
    if (c === undefined || c.expiresAt <= now || c.attempts >= maxAttempts) return undefined;
    const next = { ...c, attempts: c.attempts + 1 };
    this.#challenges.set(id, next);
    return next;
  }

  async deleteChallenge(id: string): Promise<boolean> {
    return this.#challenges.delete(id);
  }

  async recentChallenges(emailDigest: string, since: number): Promise<number> {
    return (this.#sent.get(emailDigest) ?? []).filter((t) => t >= since).length;
  }

  /**
   * No transaction to share: `options.alongside` runs first (undefined for its transaction, so it makes its own)
   * and the session is kept only after it succeeded. Atomic as far as one process can see: a crash in between
   * leaves the audit entry of a session that, like every session here, did not outlive the process.
   */
  async putSession(session: PrivacySession, options: PutSessionOptions = {}): Promise<void> {
    await options.alongside?.(undefined);
    this.#sweep(this.#sessions);
    this.#sessions.set(session.tokenHash, session);
  }

  async getSession(tokenHash: string): Promise<PrivacySession | undefined> {
    return this.#sessions.get(tokenHash);
  }

  async deleteSession(tokenHash: string): Promise<boolean> {
    return this.#sessions.delete(tokenHash);
  }

  #sweep<T extends { expiresAt: number }>(map: Map<string, T>): void {
    const now = this.#now();
    // Oldest first: stop at the first live entry, so a sweep costs what it removes (plus one).
    for (const [key, value] of map) {
      if (value.expiresAt > now && map.size < this.#maxEntries) break;
      map.delete(key);
    }
  }
}
