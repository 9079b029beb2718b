import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** The store engines a benchmark runs on. */
export type BenchStoreKind = 'sqlite' | 'postgres';

/** Admin connection used to create and drop the benchmark's databases (trust auth on this machine). */
export const PG_ADMIN_URL = process.env.CUSTODIAN_BENCH_PG ?? process.env.CUSTODIAN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh, empty store and the function that removes it (idempotent). */
export interface TempStore {
  readonly kind: BenchStoreKind;
  /** Store URL for Custodian: `sqlite:<file>` or `postgres://…/<fresh db>`. */
  readonly url: string;
  /** A private temp folder (master key, SQLite files). */
  readonly dir: string;
  cleanup(): Promise<void>;
}

const pending = new Set<() => Promise<void>>();

/** What the run tells its janitor (see janitor.ts). */
export type JanitorMessage =
  | { readonly op: 'add'; readonly id: string; readonly dir: string; readonly dbName: string | null; readonly adminUrl: string }
  | { readonly op: 'remove'; readonly id: string };

let janitor: Promise<ChildProcess | null> | undefined;

function startJanitor(): Promise<ChildProcess | null> {
  return new Promise((resolve) => {
    const child = fork(fileURLToPath(new URL('./janitor.ts', import.meta.url)), [], {
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      execArgv: process.execArgv.filter((a) => !a.startsWith('--cpu-prof')),
    });
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      console.warn(`warning: no cleanup janitor (${why}); an interrupted run may leave cst_bench_* databases or custodian-bench-* folders`);
      resolve(null);
    };
    const timer = setTimeout(() => fail('it did not start'), 15_000);
    child.once('error', (err) => fail(err.message));
    child.once('message', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // The run must be able to exit while the janitor lives on.
      child.unref();
      child.channel?.unref();
      resolve(child);
    });
  });
}

/** Tells the janitor, started on first use, about a temp store; it removes what is left if this process dies. */
async function tellJanitor(msg: JanitorMessage): Promise<void> {
  janitor ??= startJanitor();
  const child = await janitor;
  if (child?.connected) child.send(msg);
}

/** Removes every temp store not cleaned up yet; run on signals and fatal errors. */
export async function cleanupAll(): Promise<void> {
  await Promise.allSettled([...pending].map((c) => c()));
}

/**
 * Creates an empty store of `kind` in a temp folder (SQLite) or as a new PostgreSQL database, registered
 * so that {@link cleanupAll} removes it if the run is interrupted.
 */
export async function createTempStore(kind: BenchStoreKind): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'custodian-bench-'));
  const id = dir;
  let dbName: string | null = null;
  let done = false;
  const cleanup = async (): Promise<void> => {
    if (done) return;
    done = true;
    pending.delete(cleanup);
    try {
      if (dbName !== null) await adminQuery(`drop database if exists ${dbName} with (force)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await tellJanitor({ op: 'remove', id });
  };
  pending.add(cleanup);
  const name = kind === 'postgres' ? `cst_bench_${process.pid}_${Math.random().toString(36).slice(2, 10)}` : null;
  // Registered before the database exists: a janitor's `drop database if exists` is harmless.
  await tellJanitor({ op: 'add', id, dir, dbName: name, adminUrl: PG_ADMIN_URL });
  if (name === null) return { kind, url: `sqlite:${join(dir, 'custodian.db')}`, dir, cleanup };
  try {
    await adminQuery(`create database ${name}`);
    dbName = name;
  } catch (err) {
    await cleanup();
    throw err;
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${dbName}`;
  return { kind, url: url.toString(), dir, cleanup };
}

async function adminQuery(text: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(text);
  } finally {
    await admin.end();
  }
}
