/**
 * Parts (b) and (c) of `npm run bench -- propagation`; runnable alone: `npx tsx bench/propagation-bus.ts`.
 *
 * (b) end to end: `POST /v1/consent/events` over real HTTP (Fastify listening on loopback) → commit → the event
 *     dispatcher (EventDispatcher, woken by the commit) → NATS JetStream target → (1) a plain NATS subscriber
 *     (`subscribeEvents`) and (2) a ConsentClient's memory (its `onChange`). Load: BENCH_BUS_RATE events/s
 *     (default 1,000) as one POST of rate/100 events every 10 ms, each event a new subject, for
 *     BENCH_BUS_SECONDS (default 10) after a 1 s warm-up. Latency per event: from just before its POST is sent
 *     to its arrival. Goal p99 < 50 ms.
 * (c) `ConsentClient.isAllowed` from memory with BENCH_CLIENT_SUBJECTS subjects (default 500,000, and a second
 *     run with BENCH_CLIENT_SUBJECTS_SMALL, default 100,000, a working set closer to the CPU caches; loaded through
 *     the client's real snapshot path, served from memory by a fake fetch) vs the same lookups on a plain
 *     Map<subject, Map<purpose, boolean>>, in interleaved 0.5 s rounds. Goal ≥ 5,000,000 lookups/s.
 *
 * Env: BENCH_BUS_STORE (sqlite|postgres, default sqlite), CUSTODIAN_BENCH_NATS (default nats://127.0.0.1:4222).
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createCustodian, loadConfig, type Custodian } from '../src/app/index.js';
import { ConsentClient, subscribeEvents } from '../src/client/index.js';
import { DEFAULT_PURPOSES, toIso, uuidv7 } from '../src/core/index.js';
import { natsTarget } from '../src/events/targets/nats.js';
import type { DeliveryTarget } from '../src/events/targets/target.js';
import { buildServer } from '../src/server/index.js';
import { retainedBytes } from '../test/support/memory.js';
import { envNumber, fixed, int, median, table } from './support/format.js';
import { createTempStore, type BenchStoreKind } from './support/temp-store.js';

const RATE = envNumber('BENCH_BUS_RATE', 1000);
const SECONDS = envNumber('BENCH_BUS_SECONDS', 10);
const WARMUP_SECONDS = 1;
const CLIENT_SUBJECTS = envNumber('BENCH_CLIENT_SUBJECTS', 500_000);
const CLIENT_SUBJECTS_SMALL = envNumber('BENCH_CLIENT_SUBJECTS_SMALL', 100_000);
const STORE = (process.env.BENCH_BUS_STORE ?? 'sqlite') as BenchStoreKind;
const NATS_URL = process.env.CUSTODIAN_BENCH_NATS ?? 'nats://127.0.0.1:4222';
const GOALS = { p99Ms: 50, lookupsPerS: 5_000_000 } as const;
/** Dispatcher settings for the run (its defaults: 32 and 8). */
const DISPATCH_BATCH = envNumber('BENCH_DISPATCH_BATCH', 256);
const DISPATCH_CONCURRENCY = envNumber('BENCH_DISPATCH_CONCURRENCY', 32);
/** Requests waiting for an answer at most; beyond it, ticks are skipped. */
const MAX_INFLIGHT = 32;
const PATHS = (process.env.BENCH_BUS_PATHS ?? 'dispatcher,direct').split(',').map((p) => p.trim()).filter((p): p is Path => p === 'dispatcher' || p === 'direct');

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ---------------------------------------------------------------------------------------------------------
// (b) end-to-end latency

interface Latencies {
  readonly bus: number[];
  readonly client: number[];
  readonly sent: number;
  /** Events not sent because MAX_INFLIGHT requests were already waiting (the server fell behind). */
  readonly skipped: number;
  readonly lost: { bus: number; client: number };
}

/** `dispatcher`: the EventDispatcher with a NATS subscription; `direct`: a minimal loop, outbox.onCommitted → outbox.read → natsTarget.deliver (the bus path alone). */
type Path = 'dispatcher' | 'direct';

/** A minimal in-process relay: on each local commit, read the outbox after the last position and deliver in order. */
function directRelay(custodian: Custodian, target: DeliveryTarget): { stop(): Promise<void> } {
  let after = 0;
  let woken = false;
  let wake: (() => void) | undefined;
  let stopped = false;
  const unsubscribe = custodian.outbox.onCommitted(() => {
    woken = true;
    wake?.();
  });
  const loop = (async () => {
    after = await custodian.outbox.head();
    while (!stopped) {
      if (!woken) await new Promise<void>((resolve) => (wake = resolve));
      woken = false;
      for (;;) {
        const events = await custodian.outbox.read(after, 1000);
        if (events.length === 0) break;
        const outcomes = await target.deliver(events);
        const ok = outcomes.findIndex((o) => !o.ok);
        const done = ok === -1 ? outcomes.length : ok;
        if (done > 0) after = Number(events[done - 1]!.sequence);
        if (ok !== -1) await sleep(50);
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      unsubscribe();
      wake?.();
      await loop;
      await target.close();
    },
  };
}

async function endToEnd(path: Path): Promise<Latencies> {
  const temp = await createTempStore(STORE);
  const stream = `CST_BENCH_${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
  const subjectPrefix = `cst.bench.${Math.random().toString(36).slice(2, 10)}`;
  const custodian = await createCustodian(loadConfig({}, { dbUrl: temp.url, dataDir: temp.dir, logLevel: 'silent' }), {
    dispatcher: { pollMs: 1000, batchSize: DISPATCH_BATCH, concurrency: DISPATCH_CONCURRENCY },
  });
  const app = await buildServer(custodian, { logLevel: false });
  let client: ConsentClient | undefined;
  let sub: Awaited<ReturnType<typeof subscribeEvents>> | undefined;
  let relay: { stop(): Promise<void> } | undefined;
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const writer = await custodian.apiKeys.create({ name: 'bench writer', scopes: ['consent:write'], createdBy: 'bench' });
    const reader = await custodian.apiKeys.create({ name: 'bench reader', scopes: ['consent:read'], createdBy: 'bench' });
    if (path === 'dispatcher') {
      await custodian.subscriptions.create({ name: 'bench', target: { kind: 'nats', url: NATS_URL, stream, subjectPrefix }, types: ['consent.granted', 'consent.denied', 'consent.withdrawn'] }, 'bench');
      await custodian.dispatcher.start({ onError: (err) => console.error('dispatcher error:', (err as { code?: string }).code ?? (err as Error).message) });
    } else {
      relay = directRelay(custodian, natsTarget({ url: NATS_URL, stream, subjectPrefix }));
    }

    const bus = { kind: 'nats' as const, url: NATS_URL, stream, subjectPrefix };
    sub = await subscribeEvents(bus, { filter: 'consent' });
    client = new ConsentClient({ baseUrl, apiKey: reader.secret, bus });
    await client.start();

    const sentAt = new Map<string, number>();
    const bucket = { bus: [] as number[], client: [] as number[] };
    let measuring = false;
    const onBus = (async () => {
      for await (const e of sub) {
        const t = sentAt.get(e.subject ?? '');
        if (t !== undefined && measuring) bucket.bus.push(performance.now() - t);
      }
    })();
    client.onChange((c) => {
      const t = sentAt.get(c.subjectId);
      if (t !== undefined && measuring && c.cause.startsWith('consent.')) bucket.client.push(performance.now() - t);
    });

    const perTick = Math.max(1, Math.round(RATE / 100));
    const headers = { authorization: `Bearer ${writer.secret}`, 'content-type': 'application/json' };
    let n = 0;
    let sent = 0;
    let skipped = 0;
    const inflight = new Set<Promise<void>>();
    const post = async (warm: boolean): Promise<void> => {
      const events = Array.from({ length: perTick }, () => ({ subjectId: `b-${++n}`, purpose: 'analytics.reporting', decision: n % 3 === 0 ? 'withdrawn' : 'granted' }));
      const t = performance.now();
      if (!warm) for (const e of events) sentAt.set(e.subjectId, t);
      const res = await fetch(`${baseUrl}/v1/consent/events`, { method: 'POST', headers, body: JSON.stringify({ events }) });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`POST answered ${res.status}`);
      if (!warm) sent += events.length;
    };
    const start = performance.now();
    const end = start + (WARMUP_SECONDS + SECONDS) * 1000;
    for (let tick = 0; ; tick++) {
      const due = start + tick * 10;
      if (due >= end) break;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const warm = due < start + WARMUP_SECONDS * 1000;
      measuring = true;
      // Open loop, but a server that falls behind is not buried: ticks are skipped (and the achieved rate reported).
      if (inflight.size >= MAX_INFLIGHT) {
        if (!warm) skipped += perTick;
        continue;
      }
      const p = post(warm).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
    // Let the tail arrive.
    const deadline = performance.now() + 5000;
    while ((bucket.bus.length < sent || bucket.client.length < sent) && performance.now() < deadline) await sleep(20);
    measuring = false;
    await sub.close();
    await onBus;
    return {
      bus: bucket.bus.sort((a, b) => a - b),
      client: bucket.client.sort((a, b) => a - b),
      sent,
      skipped,
      lost: { bus: sent - bucket.bus.length, client: sent - bucket.client.length },
    };
  } finally {
    await client?.close();
    await sub?.close();
    await relay?.stop();
    await custodian.dispatcher.stop();
    await app.close();
    await custodian.close();
    await temp.cleanup();
    const nc = await connect({ servers: NATS_URL }).catch(() => undefined);
    if (nc !== undefined) {
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
      await nc.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// (c) isAllowed from memory

const BENCH_PURPOSES = ['analytics.reporting', 'personalize', 'marketing.advertising'] as const;

/** A fetch that serves /v1/purposes and /v1/consent/snapshot from memory: the client loads through its real path. */
function fakeServer(subjects: number): typeof fetch {
  const eventId = uuidv7();
  const expiresAt = toIso(Date.now() + 365 * 86_400_000);
  return async (input) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    if (url.pathname === '/v1/purposes') return Response.json({ purposes: DEFAULT_PURPOSES });
    const limit = Number(url.searchParams.get('limit'));
    const from = url.searchParams.has('after') ? Number(url.searchParams.get('after')) : 0;
    const to = Math.min(subjects, from + Math.floor(limit / BENCH_PURPOSES.length));
    const states = [];
    for (let i = from; i < to; i++) {
      const subjectId = `u-${String(i).padStart(7, '0')}`;
      states.push({ subjectId, purpose: BENCH_PURPOSES[0], decision: 'granted', eventId, expiresAt });
      states.push({ subjectId, purpose: BENCH_PURPOSES[1], decision: i % 2 === 0 ? 'granted' : 'denied', eventId, expiresAt: null });
      states.push({ subjectId, purpose: BENCH_PURPOSES[2], decision: 'withdrawn', eventId, expiresAt: null });
    }
    return Response.json({ states, restrictions: [], restrictionsComplete: true, next: to < subjects ? String(to) : null, sequence: '0' });
  };
}

interface LookupFigures {
  readonly clientPerS: number;
  readonly mapPerS: number;
  readonly flatPerS: number;
  readonly loadMs: number;
  readonly heapMb: number;
}

async function lookups(CLIENT_SUBJECTS: number): Promise<LookupFigures> {
  const before = retainedBytes();
  const t0 = performance.now();
  const client = new ConsentClient({ baseUrl: 'http://bench.invalid', apiKey: 'k', fetch: fakeServer(CLIENT_SUBJECTS), snapshotPageSize: 9999, purposesRefreshMs: 0, maxStalenessMs: 3_600_000 });
  await client.start();
  const loadMs = performance.now() - t0;
  const heapMb = (retainedBytes() - before) / 1e6;

  // The same answers in a plain nested Map: the floor any in-memory lookup pays.
  const plain = new Map<string, Map<string, boolean>>();
  for (let i = 0; i < CLIENT_SUBJECTS; i++) {
    const id = `u-${String(i).padStart(7, '0')}`;
    plain.set(id, new Map(BENCH_PURPOSES.map((p) => [p, client.isAllowed(id, p)!])));
  }
  // The floor of any lookup keyed by subject: one Map.get of a small integer, then a bit test.
  const bit = new Map(BENCH_PURPOSES.map((p, i) => [p as string, i]));
  const flat = new Map<string, number>();
  for (const [id, m] of plain) flat.set(id, BENCH_PURPOSES.reduce((v, p, i) => v | (m.get(p) === true ? 1 << i : 0), 0));
  const Q = 1 << 20;
  const qs: string[] = new Array<string>(Q);
  const qp: string[] = new Array<string>(Q);
  for (let i = 0; i < Q; i++) {
    qs[i] = `u-${String(Math.floor(Math.random() * CLIENT_SUBJECTS)).padStart(7, '0')}`;
    qp[i] = BENCH_PURPOSES[i % BENCH_PURPOSES.length]!;
  }
  let sink = 0;
  const round = (fn: (s: string, p: string) => boolean | undefined): number => {
    const t = performance.now();
    let ops = 0;
    while (performance.now() - t < 500) {
      for (let i = 0; i < 65_536; i++) {
        const k = (ops + i) & (Q - 1);
        if (fn(qs[k]!, qp[k]!) === true) sink++;
      }
      ops += 65_536;
    }
    return ops / ((performance.now() - t) / 1000);
  };
  const viaClient = (s: string, p: string) => client.isAllowed(s, p);
  const viaMap = (s: string, p: string) => plain.get(s)?.get(p);
  const viaFlat = (s: string, p: string) => {
    const v = flat.get(s);
    return v === undefined ? undefined : ((v >> bit.get(p)!) & 1) === 1;
  };
  const c: number[] = [];
  const m: number[] = [];
  const f: number[] = [];
  for (let r = 0; r < 6; r++) {
    c.push(round(viaClient));
    m.push(round(viaMap));
    f.push(round(viaFlat));
  }
  await client.close();
  if (sink < 0) console.log(sink);
  return { clientPerS: median(c.slice(1)), mapPerS: median(m.slice(1)), flatPerS: median(f.slice(1)), loadMs, heapMb };
}

// ---------------------------------------------------------------------------------------------------------

/** Runs (b) and (c), prints their tables, and answers the figures for the RESULT line. */
export async function busBench(): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  const rows: string[][] = [];
  const rates: string[] = [];
  for (const path of PATHS) {
    const e2e = await endToEnd(path);
    for (const [name, l, lost] of [
      ['NATS subscriber', e2e.bus, e2e.lost.bus],
      ['ConsentClient cache', e2e.client, e2e.lost.client],
    ] as const) {
      rows.push([`${path}: ${name}`, int(l.length), fixed(percentile(l, 50), 1), fixed(percentile(l, 90), 1), fixed(percentile(l, 99), 1), fixed(l[l.length - 1] ?? NaN, 1), int(lost), percentile(l, 99) < GOALS.p99Ms ? 'met' : 'MISSED']);
    }
    figures[`e2e_${path}_bus_p50_ms`] = percentile(e2e.bus, 50);
    figures[`e2e_${path}_bus_p99_ms`] = percentile(e2e.bus, 99);
    figures[`e2e_${path}_client_p50_ms`] = percentile(e2e.client, 50);
    figures[`e2e_${path}_client_p99_ms`] = percentile(e2e.client, 99);
    figures[`e2e_${path}_missing`] = e2e.lost.bus + e2e.lost.client;
    figures[`e2e_${path}_events_per_s`] = e2e.sent / SECONDS;
    rates.push(`${path} ${int(e2e.sent / SECONDS)}/s (${int(e2e.skipped)} skipped)`);
  }
  if (PATHS.length > 0) console.log(
    `\n(b) end-to-end latency, POST /v1/consent/events → commit → relay → NATS JetStream, ${int(RATE)} events/s for ${SECONDS} s (${STORE} store; ` +
      `dispatcher batch ${DISPATCH_BATCH}, concurrency ${DISPATCH_CONCURRENCY}; direct = outbox.onCommitted → outbox.read → natsTarget.deliver)`,
  );
  if (PATHS.length > 0) console.log(`achieved: ${rates.join(', ')}`);
  if (PATHS.length > 0) console.log(table([['path: receiver', 'events', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'missing', `goal p99 < ${GOALS.p99Ms} ms`], ...rows]));

  const sizes = [...new Set([CLIENT_SUBJECTS_SMALL, CLIENT_SUBJECTS])].filter((n) => n > 0);
  const lookupRows: string[][] = [];
  const lookupFigures: Record<string, number> = {};
  for (const subjects of sizes) {
    const lk = await lookups(subjects);
    const ratio = lk.clientPerS / lk.mapPerS;
    const suffix = subjects === CLIENT_SUBJECTS ? '' : `_${subjects}`;
    lookupRows.push(
      [`${int(subjects)} subjects: ConsentClient.isAllowed`, int(lk.clientPerS), fixed(ratio, 2), fixed(lk.clientPerS / lk.flatPerS, 2), lk.clientPerS >= GOALS.lookupsPerS ? 'met' : 'MISSED'],
      [`${int(subjects)} subjects: Map.get(subject).get(purpose)`, int(lk.mapPerS), '1.00', '', ''],
      [`${int(subjects)} subjects: Map.get(subject) → bits (one lookup)`, int(lk.flatPerS), '', '1.00', ''],
      [`  (snapshot load ${int(lk.loadMs)} ms, ~${int(lk.heapMb)} MB heap + typed arrays after GC)`, '', '', '', ''],
    );
    Object.assign(lookupFigures, {
      [`isallowed_per_s${suffix}`]: Math.round(lk.clientPerS),
      [`map_get_per_s${suffix}`]: Math.round(lk.mapPerS),
      [`isallowed_vs_map${suffix}`]: ratio,
      [`flat_map_per_s${suffix}`]: Math.round(lk.flatPerS),
      [`isallowed_vs_flat_map${suffix}`]: lk.clientPerS / lk.flatPerS,
    });
  }
  console.log(`\n(c) ConsentClient.isAllowed from memory, random subjects × ${BENCH_PURPOSES.length} purposes; the limit is one Map.get per lookup`);
  console.log(table([['lookup', 'per second', 'vs nested Map', 'vs flat Map (limit)', `goal ≥ ${int(GOALS.lookupsPerS)}/s`], ...lookupRows]));
  return {
    ...figures,
    ...lookupFigures,
    load_avg_1m: loadavg()[0]!,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  busBench().then(
    (figures) => {
      console.log(`RESULT propagation-bus ${Object.entries(figures).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`).join(' ')}`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
