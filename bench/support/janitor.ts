/**
 * Watchdog child process of a benchmark run: it holds the list of temp stores still alive and removes
 * them when the run's process goes away without doing so itself (SIGKILL, crash, a Ctrl-C that tsx
 * escalates to SIGKILL while the run is busy in synchronous SQLite work). It runs detached, in its own
 * process group, so the Ctrl-C that stops the run does not stop it.
 */
import { rm } from 'node:fs/promises';
import pg from 'pg';
import type { JanitorMessage } from './temp-store.js';

const alive = new Map<string, { dir: string; dbName: string | null; adminUrl: string }>();

process.on('message', (msg: JanitorMessage) => {
  if (msg.op === 'add') alive.set(msg.id, { dir: msg.dir, dbName: msg.dbName, adminUrl: msg.adminUrl });
  else alive.delete(msg.id);
});

process.send!({ ready: true });

process.once('disconnect', () => {
  void (async () => {
    for (const { dir, dbName, adminUrl } of alive.values()) {
      if (dbName !== null) {
        const admin = new pg.Client({ connectionString: adminUrl });
        try {
          await admin.connect();
          await admin.query(`drop database if exists ${dbName} with (force)`);
        } catch {
          // Nothing more a janitor can do; the name starts with cst_bench_ for a manual sweep.
        } finally {
          await admin.end().catch(() => undefined);
        }
      }
      await rm(dir, { recursive: true, force: true });
    }
    process.exit(0);
  })();
});
