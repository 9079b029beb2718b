import type { Selectable } from 'kysely';
import { isCustodianError, storedToIso, toIso } from '../../core/index.js';
import type { Database, Store } from '../../store/index.js';
import type { PrivacySession, PutSessionOptions, SessionStore, SignInChallenge } from '../session-store.js';

/** What the adapter needs from the keyring to keep addresses sealed at rest (the keyring satisfies it). */
export interface SessionCipher {
  encryptField(subjectId: string, plaintext: string, context: string): Promise<string>;
  decryptFieldText(ciphertext: string, context: string): Promise<string>;
}

/** Dependencies of {@link StoreSessionStore}. */
export interface StoreSessionStoreDeps {
  readonly store: Store;
  readonly now: () => number;
  readonly cipher: SessionCipher;
}

/** Options of {@link StoreSessionStore}. */
export interface StoreSessionStoreOptions {
  /**
   * How long a challenge row is kept after it was created (default one hour), used or not: the per-address send
   * limit counts codes sent in its window (15 minutes), so this must be at least that window.
   */
  readonly keepChallengesMs?: number;
  /** Least time between two sweeps of expired rows by one process (default one minute). */
  readonly sweepEveryMs?: number;
  /** Rows deleted per table and sweep (default 500): a sweep never holds locks for long. */
  readonly sweepBatch?: number;
}

/** The keyring "subject" whose key seals the addresses of challenges and sessions (one key; rotated like any other). */
const KEY_SUBJECT = 'privacy-center:sessions';
const sessionContext = (tokenHash: string) => `privacy_sessions.email:${tokenHash}`;
const challengeContext = (id: string) => `privacy_sign_in_challenges.email:${id}`;
const ms = (value: string | Date) => Date.parse(storedToIso(value));

/**
 * A {@link SessionStore} in Custodian's own store (SQLite or PostgreSQL), so every `serve` replica on one store
 * accepts the sessions and codes of the others. What is kept (docs/privacy-center.md#sessions-and-security):
 *
 * - a session: the SHA-256 of its cookie token (never the token), the subject id and user id, created and expiry
 *   times, and the verified address sealed under a keyring key bound to the row (AES-256-GCM);
 * - a challenge: keyed digests of the address and of the code (never the code), attempts, times, and the address
 *   sealed until the code is used or used up; the row itself stays (without the address) for the send limit.
 *
 * A new session's row commits in one transaction with its audit entry (see {@link putSession}).
 * Expired rows are deleted in bounded batches on writes, at most once per `sweepEveryMs` per process; an expired
 * session is refused whether or not it has been swept (the privacy center compares `expiresAt`).
 * Every operation is one or two indexed statements: O(1) in the number of sessions. An attempt at a code is claimed
 * by one conditional update before the code is compared (see {@link claimAttempt}), so the limit holds under
 * concurrency.
 */
export class StoreSessionStore implements SessionStore {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #cipher: SessionCipher;
  readonly #keepChallengesMs: number;
  readonly #sweepEveryMs: number;
  readonly #sweepBatch: number;
  #lastSweep = Number.NEGATIVE_INFINITY;

  constructor(deps: StoreSessionStoreDeps, options: StoreSessionStoreOptions = {}) {
    this.#store = deps.store;
    this.#now = deps.now;
    this.#cipher = deps.cipher;
    this.#keepChallengesMs = Math.max(options.keepChallengesMs ?? 60 * 60_000, 15 * 60_000);
    this.#sweepEveryMs = options.sweepEveryMs ?? 60_000;
    this.#sweepBatch = options.sweepBatch ?? 500;
  }

  async putChallenge(challenge: SignInChallenge): Promise<void> {
    await this.#maybeSweep();
    const sealed = await this.#cipher.encryptField(KEY_SUBJECT, challenge.email, challengeContext(challenge.id));
    await this.#store.db
      .insertInto('privacy_sign_in_challenges')
      .values({
        id: challenge.id,
        email_digest: challenge.emailDigest,
        email_sealed: sealed,
        code_digest: challenge.codeDigest,
        attempts: challenge.attempts,
        consumed: 0,
        created_at: toIso(challenge.createdAt),
        expires_at: toIso(challenge.expiresAt),
      })
      .execute();
  }

  async getChallenge(id: string): Promise<SignInChallenge | undefined> {
    const row = await this.#store.db.selectFrom('privacy_sign_in_challenges').selectAll().where('id', '=', id).where('consumed', '=', 0).executeTakeFirst();
    return row === undefined ? undefined : this.#challenge(row);
  }

  async claimAttempt(id: string, maxAttempts: number, now: number): Promise<SignInChallenge | undefined> {
    // One conditional statement, so the check and the count cannot come apart: concurrent claims on any replica
    // queue on the row lock (PostgreSQL re-checks the condition on the updated row; SQLite has one writer), and at
    // most `maxAttempts` of them ever match.
    const row = await this.#store.db
      .updateTable('privacy_sign_in_challenges')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id', '=', id)
      .where('consumed', '=', 0)
      .where('attempts', '<', maxAttempts)
      .where('expires_at', '>', toIso(now))
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : this.#challenge(row);
  }

  async deleteChallenge(id: string): Promise<boolean> {
    // Used, not deleted: the row still counts for the per-address limit until it is swept. The conditional
    // update makes exactly one concurrent caller win.
    const updated = await this.#store.db
      .updateTable('privacy_sign_in_challenges')
      .set({ consumed: 1, email_sealed: null })
      .where('id', '=', id)
      .where('consumed', '=', 0)
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) > 0;
  }

  async recentChallenges(emailDigest: string, since: number): Promise<number> {
    const row = await this.#store.db
      .selectFrom('privacy_sign_in_challenges')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('email_digest', '=', emailDigest)
      .where('created_at', '>=', toIso(since))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * Inserts the session row and runs `options.alongside` with the same transaction, so the row and what goes with
   * it (the `verification_succeeded` audit entry) commit together or roll back together. The address is sealed
   * before the transaction begins, so it holds only the inserts.
   */
  async putSession(session: PrivacySession, options: PutSessionOptions = {}): Promise<void> {
    await this.#maybeSweep();
    const sealed = await this.#cipher.encryptField(KEY_SUBJECT, session.email, sessionContext(session.tokenHash));
    await this.#store.transaction(async (trx) => {
      await trx
        .insertInto('privacy_sessions')
        .values({
          token_hash: session.tokenHash,
          subject_id: session.subjectId,
          user_id: session.userId,
          email_sealed: sealed,
          created_at: toIso(session.createdAt),
          expires_at: toIso(session.expiresAt),
        })
        .execute();
      await options.alongside?.(trx);
    });
  }

  async getSession(tokenHash: string): Promise<PrivacySession | undefined> {
    const row = await this.#store.db.selectFrom('privacy_sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    if (row === undefined) return undefined;
    const email = await openOrForget(this.#cipher.decryptFieldText(row.email_sealed, sessionContext(row.token_hash)));
    if (email === undefined) {
      // The sessions' key was shredded: every open session ends, as if signed out.
      await this.deleteSession(row.token_hash);
      return undefined;
    }
    return {
      tokenHash: row.token_hash,
      email,
      subjectId: row.subject_id,
      userId: row.user_id,
      createdAt: ms(row.created_at),
      expiresAt: ms(row.expires_at),
    };
  }

  async deleteSession(tokenHash: string): Promise<boolean> {
    const deleted = await this.#store.db.deleteFrom('privacy_sessions').where('token_hash', '=', tokenHash).executeTakeFirst();
    return Number(deleted.numDeletedRows) > 0;
  }

  /**
   * Deletes expired sessions and challenges past their keeping time, at most `sweepBatch` of each, and answers how
   * many. Runs on its own on writes; call it from a scheduler to bound the tables when nobody signs in.
   */
  async sweep(): Promise<{ sessions: number; challenges: number }> {
    const now = this.#now();
    this.#lastSweep = now;
    const db = this.#store.db;
    const sessions = await db
      .deleteFrom('privacy_sessions')
      .where('token_hash', 'in', (eb) => eb.selectFrom('privacy_sessions').select('token_hash').where('expires_at', '<=', toIso(now)).limit(this.#sweepBatch))
      .executeTakeFirst();
    const challenges = await db
      .deleteFrom('privacy_sign_in_challenges')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('privacy_sign_in_challenges')
          .select('id')
          .where('created_at', '<', toIso(now - this.#keepChallengesMs))
          .where('expires_at', '<=', toIso(now))
          .limit(this.#sweepBatch),
      )
      .executeTakeFirst();
    return { sessions: Number(sessions.numDeletedRows), challenges: Number(challenges.numDeletedRows) };
  }

  async #challenge(row: Selectable<Database['privacy_sign_in_challenges']>): Promise<SignInChallenge | undefined> {
    if (row.email_sealed === null) return undefined;
    // A challenge sealed under a shredded key is gone: the code has expired (the person asks for a new one).
    const email = await openOrForget(this.#cipher.decryptFieldText(row.email_sealed, challengeContext(row.id)));
    if (email === undefined) return undefined;
    return {
      id: row.id,
      email,
      emailDigest: row.email_digest,
      codeDigest: row.code_digest,
      attempts: Number(row.attempts),
      createdAt: ms(row.created_at),
      expiresAt: ms(row.expires_at),
    };
  }

  async #maybeSweep(): Promise<void> {
    if (this.#now() - this.#lastSweep < this.#sweepEveryMs) return;
    await this.sweep();
  }
}

/**
 * The opened value, or undefined when its key was crypto-shredded (an operator shredded the keyring subject
 * `privacy-center:sessions` to end every session at once). Any other failure (tampering, a wrong master key) is
 * an error and is thrown.
 */
async function openOrForget(opening: Promise<string>): Promise<string | undefined> {
  try {
    return await opening;
  } catch (err) {
    if (isCustodianError(err) && err.code === 'CST_ERR_CRYPTO_SHREDDED') return undefined;
    throw err;
  }
}
