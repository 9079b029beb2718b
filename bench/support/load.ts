import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** One server under load: GET each of `paths` in turn, round-robin across all connections. */
export interface LoadTarget {
  readonly name: string;
  /** Origin of the server, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly paths: readonly string[];
  readonly headers: Record<string, string>;
}

/**
 * A load run over several targets, interleaved: after an unmeasured warm-up of each, `rounds` rounds
 * load each target for `sliceS` seconds in turn (order reversed every other round), so that a change in
 * background load on a shared machine hits every target alike.
 */
export interface LoadJob {
  readonly targets: readonly LoadTarget[];
  readonly connections: number;
  readonly warmupS: number;
  readonly sliceS: number;
  readonly rounds: number;
}

/** What the load on one target measured (2xx responses only in the rate and latencies). */
export interface LoadResult {
  readonly name: string;
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  /** Measured seconds (sum of slices). */
  readonly seconds: number;
  readonly rps: number;
  /** Requests per second of each round, to show the noise. */
  readonly roundRps: readonly number[];
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

/**
 * Runs autocannon in a child process (it inherits tsx through execArgv), so the load generator gets its
 * own event loop and core instead of competing with the server's.
 */
export function runLoad(job: LoadJob): Promise<LoadResult[]> {
  return new Promise((resolve, reject) => {
    const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: process.execArgv.filter((a) => !a.startsWith('--cpu-prof')) });
    let settled = false;
    const kill = (): void => {
      if (child.exitCode === null) child.kill('SIGKILL');
    };
    process.once('exit', kill);
    child.on('message', (msg: { results?: LoadResult[]; error?: string }) => {
      settled = true;
      process.off('exit', kill);
      if (msg.results !== undefined) resolve(msg.results);
      else reject(new Error(`load generator failed: ${msg.error ?? 'unknown error'}`));
    });
    child.on('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
    child.on('exit', (code, signal) => {
      process.off('exit', kill);
      if (!settled) reject(new Error(`load generator exited (code ${code}, signal ${signal}) before answering`));
      settled = true;
    });
    child.send(job);
  });
}
