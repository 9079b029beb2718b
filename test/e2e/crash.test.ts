import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { cleanEnv, killAllChildren, startServer, stopProcess, type ServerProcess } from '../support/server-process.js';
import { PG_ADMIN_URL, STORE_KINDS, custodianFixture, storeFixture, type StoreFixture, type StoreKindUnderTest } from '../support/stores.js';
import { mulberry32 } from '../support/random.js';

/*
 * Durability proof: the real server, as a child process, takes concurrent consent batches and is SIGKILLed
 * mid-stream, with requests in flight, at several moments. After each kill the store must hold every
 * acknowledged (201) event, no batch in part, and a projection equal to the fold of the history; a restarted
 * server must serve that state and answer replays of acknowledged batches with the stored events.
 */

const ADMIN_KEY = 'crash-test-admin-key-0123456789abcdef';
const PURPOSES = ['analytics.reporting', 'personalize', 'marketing.communications.email', 'train_ai_system'] as const;
const DECISIONS = ['granted', 'denied', 'withdrawn'] as const;
const SUBJECTS = 120;
const CLIENTS = 4;

interface EventBody {
  readonly subjectId: string;
  readonly purpose: string;
  readonly decision: string;
  readonly idempotencyKey: string;
}

/** A batch as sent: `tag` is in every event's idempotency key, so rows in the store name their batch. */
interface SentBatch {
  readonly tag: string;
  readonly events: readonly EventBody[];
}

/** A batch the server acknowledged with 201. */
interface AckedBatch {
  readonly tag: string;
  readonly batchId: string;
  readonly eventIds: readonly string[];
}

interface RecordResponse {
  readonly batchId: string;
  readonly events: ReadonlyArray<{ id: string; idempotencyKey: string | null; replayed: boolean; batchId: string }>;
}

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with CRASH_SEED. */
const prng = mulberry32;

function tagOf(idempotencyKey: string | null): string | undefined {
  return idempotencyKey?.split(':')[1];
}

async function postBatch(url: string, events: readonly EventBody[]): Promise<Response> {
  return fetch(`${url}/v1/consent/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
    signal: AbortSignal.timeout(15_000),
  });
}

/** Waits until no session of the crashed server is left on the test database, so its last commits have settled. */
async function waitForPostgresQuiet(fixture: StoreFixture): Promise<void> {
  const dbName = new URL(fixture.url).pathname.slice(1);
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    for (let i = 0; i < 200; i++) {
      const r = await c.query<{ n: string }>('select count(*) as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName]);
      if (r.rows[0]!.n === '0') return;
      await sleep(50);
    }
    throw new Error('sessions of the killed server are still open after 10 s');
  } finally {
    await c.end();
  }
}

interface StoreSnapshot {
  readonly events: ReadonlyArray<{ id: string; subject_id: string; purpose: string; decision: string; batch_id: string; idempotency_key: string | null }>;
  readonly states: ReadonlyArray<{ subject_id: string; purpose: string; event_id: string; decision: string }>;
}

async function readStore(url: string): Promise<StoreSnapshot> {
  const store = openStore(url);
  try {
    const events = await store.db.selectFrom('consent_events').select(['id', 'subject_id', 'purpose', 'decision', 'batch_id', 'idempotency_key']).orderBy('id').execute();
    const states = await store.db.selectFrom('consent_state').select(['subject_id', 'purpose', 'event_id', 'decision']).execute();
    return { events, states };
  } finally {
    await store.close();
  }
}

/** The state the history implies: the event with the highest id per (subject, purpose). */
function fold(events: StoreSnapshot['events']): Map<string, { eventId: string; decision: string }> {
  const out = new Map<string, { eventId: string; decision: string }>();
  for (const e of events) {
    const key = `${e.subject_id}\u0000${e.purpose}`;
    const prev = out.get(key);
    if (prev === undefined || prev.eventId < e.id) out.set(key, { eventId: e.id, decision: e.decision });
  }
  return out;
}

/** Asserts the store invariants after a crash and returns the snapshot. */
async function verifyStore(fixture: StoreFixture, sent: ReadonlyMap<string, SentBatch>, acked: readonly AckedBatch[], context: string): Promise<StoreSnapshot> {
  if (fixture.kind === 'postgres') await waitForPostgresQuiet(fixture);
  const snap = await readStore(fixture.url);

  // Every acknowledged event is there, in the batch the server named.
  const byId = new Map(snap.events.map((e) => [e.id, e]));
  const lost = acked.flatMap((b) => b.eventIds.filter((id) => byId.get(id)?.batch_id !== b.batchId).map((id) => `${b.tag}/${id}`));
  expect(lost, `${context}: acknowledged events missing from the store`).toEqual([]);

  // No batch in part: rows of one batch_id all come from one sent batch, and all of it.
  const groups = new Map<string, { tags: Set<string | undefined>; count: number }>();
  for (const e of snap.events) {
    const g = groups.get(e.batch_id) ?? { tags: new Set(), count: 0 };
    g.tags.add(tagOf(e.idempotency_key));
    g.count++;
    groups.set(e.batch_id, g);
  }
  const partial: string[] = [];
  const tagsInStore = new Map<string, string>();
  for (const [batchId, g] of groups) {
    const [tag] = [...g.tags];
    const batch = tag === undefined ? undefined : sent.get(tag);
    if (g.tags.size !== 1 || batch === undefined) partial.push(`${batchId}: rows of unknown or mixed batches ${[...g.tags].join(',')}`);
    else if (g.count !== batch.events.length) partial.push(`${batchId} (${tag}): ${g.count} of ${batch.events.length} rows`);
    else if (tagsInStore.has(tag!)) partial.push(`${tag}: written twice, as ${tagsInStore.get(tag!)} and ${batchId}`);
    else tagsInStore.set(tag!, batchId);
  }
  expect(partial, `${context}: half-written batches`).toEqual([]);
  for (const b of acked) expect(tagsInStore.get(b.tag), `${context}: acknowledged ${b.tag}`).toBe(b.batchId);

  // The projection equals the fold of the history.
  const expected = fold(snap.events);
  const actual = new Map(snap.states.map((s) => [`${s.subject_id}\u0000${s.purpose}`, { eventId: s.event_id, decision: s.decision }]));
  expect(actual.size, `${context}: projection rows`).toBe(expected.size);
  const drift = [...expected].filter(([k, v]) => actual.get(k)?.eventId !== v.eventId || actual.get(k)?.decision !== v.decision).map(([k]) => k.replace('\u0000', ' '));
  expect(drift, `${context}: projection differs from the fold of consent_events`).toEqual([]);
  return snap;
}

/** Asserts a freshly started server answers checks with the fold of the store and replays acknowledged batches. */
async function verifyServed(server: ServerProcess, snap: StoreSnapshot, sent: ReadonlyMap<string, SentBatch>, acked: readonly AckedBatch[], subjects: readonly string[], context: string): Promise<void> {
  const expected = fold(snap.events);
  const checks = subjects.flatMap((subjectId) => PURPOSES.map((purpose) => ({ subjectId, purpose })));
  const res = await fetch(`${server.url}/v1/consent/check`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ checks }),
  });
  expect(res.status, context).toBe(200);
  const { results } = (await res.json()) as { results: Array<{ subjectId: string; purpose: string; status: string; eventId: string | null; allowed: boolean }> };
  const wrong = results.filter((r) => {
    const e = expected.get(`${r.subjectId}\u0000${r.purpose}`);
    return r.eventId !== (e?.eventId ?? null) || r.status !== (e?.decision ?? 'none') || r.allowed !== (e?.decision === 'granted');
  });
  expect(wrong, `${context}: served state differs from the store`).toEqual([]);

  // Replaying acknowledged batches returns the stored events and writes nothing.
  for (const b of [acked[0], acked[acked.length - 1]]) {
    if (b === undefined) continue;
    const r = await postBatch(server.url, sent.get(b.tag)!.events);
    expect(r.status, `${context}: replay of ${b.tag}`).toBe(201);
    const body = (await r.json()) as RecordResponse;
    expect(body.events.every((e) => e.replayed), `${context}: replay of ${b.tag} flagged replayed`).toBe(true);
    expect(body.events.map((e) => e.id)).toEqual(b.eventIds);
  }
}

interface KillMoment {
  /** Batches acknowledged in this round before the kill may fire. */
  readonly minAcks: number;
  /** Upper bound of a random extra wait after that, in ms. */
  readonly jitterMs: number;
}

interface RoundResult {
  readonly acked: number;
  readonly inFlightAtKill: number;
  readonly unexpected: readonly string[];
}

/**
 * Streams batches from {@link CLIENTS} concurrent clients and SIGKILLs the server at `moment`, while at
 * least one request is in flight. Acknowledged batches go into `acked`, every attempted batch into `sent`.
 */
async function streamAndKill(
  server: ServerProcess,
  round: number,
  moment: KillMoment,
  random: () => number,
  runId: string,
  subjects: readonly string[],
  sent: Map<string, SentBatch>,
  acked: AckedBatch[],
): Promise<RoundResult> {
  let killed = false;
  let inFlight = 0;
  let ackedThisRound = 0;
  let seq = 0;
  const unexpected: string[] = [];

  const makeBatch = (): SentBatch => {
    const tag = `r${round}b${seq++}`;
    // Mostly 50..200 events, now and then a large one, so transactions of very different lengths overlap.
    const size = random() < 0.15 ? 400 + Math.floor(random() * 600) : 50 + Math.floor(random() * 151);
    const events = Array.from({ length: size }, (_, i) => ({
      subjectId: subjects[Math.floor(random() * subjects.length)]!,
      purpose: PURPOSES[Math.floor(random() * PURPOSES.length)]!,
      decision: DECISIONS[Math.floor(random() * DECISIONS.length)]!,
      idempotencyKey: `${runId}:${tag}:${i}`,
    }));
    return { tag, events };
  };

  const client = async (): Promise<void> => {
    while (!killed) {
      const batch = makeBatch();
      sent.set(batch.tag, batch);
      inFlight++;
      try {
        const res = await postBatch(server.url, batch.events);
        const text = await res.text();
        if (res.status === 201) {
          // A 201 that arrives after the kill signal was sent still acknowledges a committed batch.
          const body = JSON.parse(text) as RecordResponse;
          expect(body.events.map((e) => e.idempotencyKey)).toEqual(batch.events.map((e) => e.idempotencyKey));
          acked.push({ tag: batch.tag, batchId: body.batchId, eventIds: body.events.map((e) => e.id) });
          ackedThisRound++;
        } else {
          unexpected.push(`${batch.tag}: HTTP ${res.status} ${text.slice(0, 300)}\nserver log: ${server.stdout().slice(-1500)}`);
          return;
        }
      } catch (err) {
        if (!killed) unexpected.push(`${batch.tag}: ${String(err)} ${inspect((err as { cause?: unknown }).cause)}`);
        return;
      } finally {
        inFlight--;
      }
    }
  };

  const clients = Array.from({ length: CLIENTS }, () => client());
  const deadline = Date.now() + 20_000;
  while (ackedThisRound < moment.minAcks && unexpected.length === 0 && Date.now() < deadline) await sleep(2);
  await sleep(Math.floor(random() * moment.jitterMs));
  while (inFlight === 0 && unexpected.length === 0 && Date.now() < deadline) await sleep(1);
  const inFlightAtKill = inFlight;
  killed = true;
  const exit = await stopProcess(server, 'SIGKILL');
  expect(exit.signal).toBe('SIGKILL');
  await Promise.all(clients);
  return { acked: ackedThisRound, inFlightAtKill, unexpected };
}

describe.each(STORE_KINDS)('crash durability on %s', (kind: StoreKindUnderTest) => {
  let fixture: StoreFixture | undefined;

  afterEach(async () => {
    await killAllChildren();
    await fixture?.cleanup();
    fixture = undefined;
  });

  it('keeps every acknowledged batch, never half a batch, and a projection equal to the history across SIGKILLs', { timeout: 50_000 }, async () => {
    const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const random = prng(seed);
    const runId = `crash-${kind}-${seed}`;
    fixture = await storeFixture(kind);
    const subjects = Array.from({ length: SUBJECTS }, (_, i) => `crash-subject-${i}`);
    const sent = new Map<string, SentBatch>();
    const acked: AckedBatch[] = [];
    const args = ['--db', fixture.url, '--port', '0', '--data-dir', fixture.dir];
    const env = cleanEnv({ CUSTODIAN_ADMIN_KEY: ADMIN_KEY, CUSTODIAN_LOG_LEVEL: 'warn' });
    // Early (right after the first acknowledgements), mid-stream, and later with a random delay.
    const moments: KillMoment[] = [
      { minAcks: 3, jitterMs: 0 },
      { minAcks: 6, jitterMs: 60 },
      { minAcks: 12, jitterMs: 150 },
    ];
    const log: string[] = [];
    let snap: StoreSnapshot | undefined;

    for (const [round, moment] of moments.entries()) {
      const context = `${kind} seed=${seed} round ${round}`;
      const server = await startServer(args, { env });
      // From the second round on, this is also the restart check after the previous kill.
      if (snap !== undefined) await verifyServed(server, snap, sent, acked, subjects, `${context} after restart`);
      const result = await streamAndKill(server, round, moment, random, runId, subjects, sent, acked);
      expect(result.unexpected, `${context}: failures before the kill`).toEqual([]);
      expect(result.acked, context).toBeGreaterThanOrEqual(moment.minAcks);
      expect(result.inFlightAtKill, `${context}: requests in flight at the kill`).toBeGreaterThan(0);
      snap = await verifyStore(fixture, sent, acked, context);
      // In-flight batches end either fully committed (the kill beat the response) or absent; both are fine.
      const stored = new Set(snap.events.map((e) => tagOf(e.idempotency_key)));
      const ackedTags = new Set(acked.map((b) => b.tag));
      const unacked = [...sent.keys()].filter((t) => t.startsWith(`r${round}b`) && !ackedTags.has(t));
      const committedUnacked = unacked.filter((t) => stored.has(t)).length;
      log.push(
        `round ${round}: ${result.acked} acked, ${result.inFlightAtKill} in flight at kill ` +
          `(${committedUnacked} committed unacknowledged, ${unacked.length - committedUnacked} absent), ${snap.events.length} events stored`,
      );
    }

    // A final restart serves exactly the surviving state, and stops cleanly.
    const server = await startServer(args, { env });
    await verifyServed(server, snap!, sent, acked, subjects, `${kind} seed=${seed} final restart`);
    expect(server.stdout()).not.toContain(ADMIN_KEY);
    expect((await stopProcess(server, 'SIGTERM')).code).toBe(0);
    expect(acked.length).toBeGreaterThanOrEqual(moments.reduce((n, m) => n + m.minAcks, 0));
    // The store is unchanged by the replays and the clean stop.
    const after = await verifyStore(fixture, sent, acked, `${kind} seed=${seed} after final stop`);
    expect(after.events.length).toBe(snap!.events.length);
    process.stdout.write(`[crash ${kind} seed=${seed}] ${log.join('; ')}\n`);
  });
});

describe('concurrent batches on postgres', () => {
  let cleanup: (() => Promise<void>) | undefined;

  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  // Regression: projection upserts locked (subject, purpose) rows in batch order, so two batches over the
  // same subjects could lock in opposite orders and one failed with 40P01 "deadlock detected" (an HTTP 500).
  it('do not deadlock on the projection when they touch the same subjects', { timeout: 30_000 }, async () => {
    const fx = await custodianFixture('postgres');
    cleanup = fx.cleanup;
    let seq = 0;
    const batch = () =>
      Array.from({ length: 150 }, () => ({
        subjectId: `dl-subject-${Math.floor(Math.random() * 60)}`,
        purpose: PURPOSES[Math.floor(Math.random() * PURPOSES.length)]!,
        decision: DECISIONS[Math.floor(Math.random() * DECISIONS.length)]!,
        idempotencyKey: `dl-${seq++}`,
      }));
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 10; i++) await fx.custodian.ledger.record(batch(), { actor: 'test' });
      }),
    );
    const snap = await readStore(fx.fixture.url);
    expect(snap.events.length).toBe(4 * 10 * 150);
    const expected = fold(snap.events);
    expect(new Map(snap.states.map((s) => [`${s.subject_id}\u0000${s.purpose}`, { eventId: s.event_id, decision: s.decision }]))).toEqual(expected);
  });
});
