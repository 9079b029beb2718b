import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SessionStore, SignInChallenge } from '../../src/privacy-center/index.js';

/** What a conformance run needs: a fresh adapter whose clock the suite moves, and a way to drop it. */
export interface SessionStoreUnderTest {
  readonly store: SessionStore;
  /** Moves the adapter's clock forward by `ms`. */
  readonly advance: (ms: number) => void;
  readonly now: () => number;
  readonly cleanup: () => Promise<void>;
}

let n = 0;
const unique = (prefix: string) => `${prefix}${process.pid}x${++n}${Math.random().toString(36).slice(2, 8)}`;
const hex = (seed: string) => seed.padEnd(64, '0').slice(0, 64);

/**
 * The shared conformance suite of the {@link SessionStore} port: every adapter (memory, store-backed on SQLite
 * and PostgreSQL) runs it, so the privacy center behaves the same whichever is configured.
 */
export function sessionStoreConformance(name: string, make: () => Promise<SessionStoreUnderTest>): void {
  describe(`SessionStore conformance: ${name}`, () => {
    const challenge = (t: SessionStoreUnderTest, over: Partial<SignInChallenge> = {}): SignInChallenge => ({
      id: unique('c'),
      email: 'ada@example.com',
      emailDigest: hex(unique('d')),
      codeDigest: hex('c0de'),
      expiresAt: t.now() + 10 * 60_000,
      attempts: 0,
      createdAt: t.now(),
      ...over,
    });

    it('keeps a challenge, claims attempts up to the limit, and lets exactly one caller use it up', async () => {
      const t = await make();
      try {
        const c = challenge(t);
        await t.store.putChallenge(c);
        expect(await t.store.getChallenge(c.id)).toStrictEqual(c);
        expect(await t.store.claimAttempt(c.id, 3, t.now())).toStrictEqual({ ...c, attempts: 1 });
        expect((await t.store.claimAttempt(c.id, 3, t.now()))?.attempts).toBe(2);
        expect((await t.store.getChallenge(c.id))?.attempts).toBe(2);
        expect(await t.store.claimAttempt('no-such-challenge', 3, t.now())).toBeUndefined();
        expect(await t.store.getChallenge('no-such-challenge')).toBeUndefined();
        // Two replicas checking the same right code at once: one opens the session.
        const used = await Promise.all(Array.from({ length: 5 }, () => t.store.deleteChallenge(c.id)));
        expect(used.filter(Boolean)).toHaveLength(1);
        expect(await t.store.getChallenge(c.id)).toBeUndefined();
        expect(await t.store.claimAttempt(c.id, 3, t.now())).toBeUndefined();
        expect(await t.store.deleteChallenge(c.id)).toBe(false);
      } finally {
        await t.cleanup();
      }
    });

    it('claims no attempt at a challenge that has had its attempts or has expired, and counts nothing then', async () => {
      const t = await make();
      try {
        const c = challenge(t);
        await t.store.putChallenge(c);
        for (let i = 1; i <= 3; i++) expect((await t.store.claimAttempt(c.id, 3, t.now()))?.attempts).toBe(i);
        expect(await t.store.claimAttempt(c.id, 3, t.now())).toBeUndefined();
        expect((await t.store.getChallenge(c.id))?.attempts).toBe(3);
        // A higher limit passed later is the caller's business: the store compares with what it is given.
        expect((await t.store.claimAttempt(c.id, 4, t.now()))?.attempts).toBe(4);

        const late = challenge(t);
        await t.store.putChallenge(late);
        expect(await t.store.claimAttempt(late.id, 5, late.expiresAt)).toBeUndefined();
        expect((await t.store.claimAttempt(late.id, 5, late.expiresAt - 1))?.attempts).toBe(1);
        t.advance(late.expiresAt - t.now());
        expect(await t.store.claimAttempt(late.id, 5, t.now())).toBeUndefined();
        expect((await t.store.getChallenge(late.id))?.attempts).toBe(1);
      } finally {
        await t.cleanup();
      }
    });

    it('grants exactly min(calls, limit) of any number of concurrent claims, numbered 1 to that', async () => {
      const t = await make();
      try {
        await fc.assert(
          fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 40 }), async (max, before, calls) => {
            const c = challenge(t, { attempts: before });
            await t.store.putChallenge(c);
            const claimed = await Promise.all(Array.from({ length: calls }, () => t.store.claimAttempt(c.id, max, t.now())));
            const granted = claimed.flatMap((x) => (x === undefined ? [] : [x.attempts])).sort((a, b) => a - b);
            const expected = Math.max(0, Math.min(calls, max - before));
            expect(granted).toStrictEqual(Array.from({ length: expected }, (_, i) => before + i + 1));
            expect((await t.store.getChallenge(c.id))?.attempts).toBe(before + expected);
          }),
          { numRuns: 25 },
        );
      } finally {
        await t.cleanup();
      }
    });

    it('counts the codes sent to an address in the window, used ones too', async () => {
      const t = await make();
      try {
        const digest = hex(unique('e'));
        const first = challenge(t, { emailDigest: digest });
        await t.store.putChallenge(first);
        t.advance(60_000);
        const since = t.now();
        await t.store.putChallenge(challenge(t, { emailDigest: digest }));
        await t.store.putChallenge(challenge(t, { emailDigest: digest }));
        await t.store.deleteChallenge(first.id);
        expect(await t.store.recentChallenges(digest, first.createdAt)).toBe(3);
        expect(await t.store.recentChallenges(digest, since)).toBe(2);
        expect(await t.store.recentChallenges(hex(unique('other')), first.createdAt)).toBe(0);
      } finally {
        await t.cleanup();
      }
    });

    it('keeps a session by its token hash, ends it once, and never answers for another hash', async () => {
      const t = await make();
      try {
        const session = { tokenHash: hex(unique('a')), email: 'ada@example.com', subjectId: 'pc_subject', userId: 'u-1', createdAt: t.now(), expiresAt: t.now() + 30 * 60_000 };
        const other = { ...session, tokenHash: hex(unique('b')), email: 'bob@example.com', subjectId: 'pc_other', userId: null };
        await t.store.putSession(session);
        await t.store.putSession(other);
        expect(await t.store.getSession(session.tokenHash)).toStrictEqual(session);
        expect(await t.store.getSession(other.tokenHash)).toStrictEqual(other);
        expect(await t.store.getSession(hex('f'))).toBeUndefined();
        expect(await t.store.deleteSession(session.tokenHash)).toBe(true);
        expect(await t.store.deleteSession(session.tokenHash)).toBe(false);
        expect(await t.store.getSession(session.tokenHash)).toBeUndefined();
        expect(await t.store.getSession(other.tokenHash)).toStrictEqual(other);
      } finally {
        await t.cleanup();
      }
    });

    it('keeps a session together with what is written alongside it, or neither when that write fails', async () => {
      const t = await make();
      try {
        const session = { tokenHash: hex(unique('w')), email: 'ada@example.com', subjectId: 'pc_subject', userId: null, createdAt: t.now(), expiresAt: t.now() + 30 * 60_000 };
        let calls = 0;
        await t.store.putSession(session, { alongside: async () => void calls++ });
        expect(calls).toBe(1);
        expect(await t.store.getSession(session.tokenHash)).toStrictEqual(session);
        const refused = { ...session, tokenHash: hex(unique('x')) };
        await expect(t.store.putSession(refused, { alongside: () => Promise.reject(new Error('audit write failed')) })).rejects.toThrow('audit write failed');
        expect(await t.store.getSession(refused.tokenHash)).toBeUndefined();
        expect(await t.store.getSession(session.tokenHash)).toStrictEqual(session);
      } finally {
        await t.cleanup();
      }
    });
  });
}
