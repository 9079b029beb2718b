/**
 * Child process that runs autocannon against servers of the parent, so that the load generator never
 * shares the servers' event loop. Receives one {@link LoadJob} over IPC and answers its results.
 */
import autocannon from 'autocannon';
import type { LoadJob, LoadResult, LoadTarget } from './load.js';

interface Slice {
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly seconds: number;
}

function attack(target: LoadTarget, connections: number, seconds: number, latencies: number[] | null): Promise<Slice> {
  let next = 0;
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const instance = autocannon(
      {
        url: target.url,
        connections,
        pipelining: 1,
        duration: seconds,
        headers: target.headers,
        // One shared cursor across connections: every request asks for the next path of the list.
        requests: [
          {
            method: 'GET',
            setupRequest: (req) => {
              const path = target.paths[next]!;
              next = next + 1 === target.paths.length ? 0 : next + 1;
              return { ...req, path };
            },
          },
        ],
      },
      (err, r) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
        resolve({ ok: r['2xx'], non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, seconds: r.duration > 0 ? r.duration : elapsed });
      },
    );
    // autocannon's own histogram keeps whole milliseconds; keep the exact times for sub-millisecond p99.
    if (latencies !== null) {
      instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
        if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
      });
    }
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function run(job: LoadJob): Promise<LoadResult[]> {
  for (const t of job.targets) if (job.warmupS > 0) await attack(t, job.connections, job.warmupS, null);
  const acc = job.targets.map(() => ({ ok: 0, non2xx: 0, errors: 0, timeouts: 0, seconds: 0, roundRps: [] as number[], latencies: [] as number[] }));
  for (let round = 0; round < job.rounds; round++) {
    const order = job.targets.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const a = acc[i]!;
      const s = await attack(job.targets[i]!, job.connections, job.sliceS, a.latencies);
      a.ok += s.ok;
      a.non2xx += s.non2xx;
      a.errors += s.errors;
      a.timeouts += s.timeouts;
      a.seconds += s.seconds;
      a.roundRps.push(s.ok / s.seconds);
    }
  }
  return job.targets.map((t, i) => {
    const a = acc[i]!;
    const sorted = Float64Array.from(a.latencies).sort();
    return {
      name: t.name,
      ok: a.ok,
      non2xx: a.non2xx,
      errors: a.errors,
      timeouts: a.timeouts,
      seconds: a.seconds,
      rps: a.ok / a.seconds,
      roundRps: a.roundRps,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : NaN,
    };
  });
}

process.once('message', (job: LoadJob) => {
  run(job).then(
    (results) => process.send!({ results }, () => process.exit(0)),
    (err: unknown) => process.send!({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
  );
});
