import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root, whatever the working directory of the test. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The CLI's source entry point, run through tsx so tests exercise the current source without a build. */
export const CLI_ENTRY = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

// tsx's `--import` loader by absolute URL, so a child started in a temp folder (no node_modules) still finds it.
// The loader hooks run inside the child itself: the child's pid is the server's pid, and SIGKILL hits the server.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** How a child process ended. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A `custodian` child process with its captured output. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` on stdout; rejects if the process exits or `timeoutMs` passes first. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** A running `custodian serve`. */
export interface ServerProcess extends CliProcess {
  /** Base URL parsed from the `listening on` line. */
  readonly url: string;
}

const live = new Set<ChildProcess>();

/**
 * The environment of the test runner without any CUSTODIAN_* setting or NODE_ENV (production would forbid
 * the dev master key), plus `extra`.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CUSTODIAN_') && k !== 'NODE_ENV') env[k] = v;
  return { ...env, ...extra };
}

/** Runs `custodian <args>` (from source, through tsx) as a child process. */
export function spawnCli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, CLI_ENTRY, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const l of listeners) l();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('close', (code, signal) => {
      live.delete(child);
      for (const l of listeners) l();
      resolve({ code, signal });
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitForStdout: (pattern, timeoutMs = 20_000) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = (): void => {
          const m = out.match(pattern);
          if (m) return finish(() => resolve(m));
          if (done || child.exitCode !== null || child.signalCode !== null) {
            finish(() => reject(new Error(`process exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`)));
          }
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no ${pattern} on stdout within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`))), timeoutMs);
        const finish = (settle: () => void): void => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      }),
  };
}

/** Starts `custodian serve <args>` and resolves once it prints its listening URL and admin-key line. */
export async function startServer(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ServerProcess> {
  const proc = spawnCli(['serve', ...args], options);
  // serve prints its banner in one write; the admin-key line is in it whichever case applies.
  const m = await proc.waitForStdout(/listening on (http:\/\/\S+)\n[\s\S]*Admin API key[^\n]*\n/);
  return { ...proc, url: m[1]! };
}

/** Waits for the process to end on its own; rejects after `timeoutMs`. */
export async function waitForExit(proc: CliProcess, timeoutMs = 15_000): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`)), timeoutMs);
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal` and waits for the process to end. */
export async function stopProcess(proc: CliProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<ExitStatus> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
  return waitForExit(proc, timeoutMs);
}

/** SIGKILLs every child this module started that is still running; for afterEach/afterAll. */
export async function killAllChildren(): Promise<void> {
  const waits = [...live].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('close', () => resolve());
        child.kill('SIGKILL');
      }),
  );
  await Promise.all(waits);
  live.clear();
}
