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

    it('keeps a challenge, counts wrong codes, and lets exactly one caller use it up', async () => {
      const t = await make();
      try {
        const c = challenge(t);
        await t.store.putChallenge(c);
        expect(await t.store.getChallenge(c.id)).toStrictEqual(c);
        expect((await t.store.countAttempt(c.id))?.attempts).toBe(1);
        expect((await t.store.countAttempt(c.id))?.attempts).toBe(2);
        expect(await t.store.countAttempt('no-such-challenge')).toBeUndefined();
        expect(await t.store.getChallenge('no-such-challenge')).toBeUndefined();
        // Two replicas checking the same right code at once: one opens the session.
        const used = await Promise.all(Array.from({ length: 5 }, () => t.store.deleteChallenge(c.id)));
        expect(used.filter(Boolean)).toHaveLength(1);
        expect(await t.store.getChallenge(c.id)).toBeUndefined();
        expect(await t.store.countAttempt(c.id)).toBeUndefined();
        expect(await t.store.deleteChallenge(c.id)).toBe(false);
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
