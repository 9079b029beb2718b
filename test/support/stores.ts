import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createCustodian, loadConfig, type Custodian, type ConfigOverrides } from '../../src/app/index.js';
import type { Clock } from '../../src/core/index.js';

/** The two store engines every ledger test runs against. */
export const STORE_KINDS = ['sqlite', 'postgres'] as const;
export type StoreKindUnderTest = (typeof STORE_KINDS)[number];

/** Admin connection used to create and drop per-test databases (trust auth on this machine). */
export const PG_ADMIN_URL = process.env.CUSTODIAN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A store URL for a fresh, empty database and a function that removes it. */
export interface StoreFixture {
  readonly kind: StoreKindUnderTest;
  readonly url: string;
  readonly dir: string;
  readonly cleanup: () => Promise<void>;
}

/**
 * Creates an empty store of `kind`: a temp SQLite file, or a new PostgreSQL database.
 * PostgreSQL being unreachable is a failure, never a skip.
 */
export async function storeFixture(kind: StoreKindUnderTest): Promise<StoreFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'custodian-test-'));
  if (kind === 'sqlite') {
    return { kind, url: `sqlite:${join(dir, 'custodian.db')}`, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  const db = await createPgDatabase('cst_test');
  return {
    kind,
    url: db.url,
    dir,
    cleanup: async () => {
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A new, empty PostgreSQL database named `<prefix>_<pid>_<random>`, and a function that drops it (with force). */
export async function createPgDatabase(prefix: string): Promise<{ readonly url: string; readonly name: string; readonly drop: () => Promise<void> }> {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A wired Custodian on a fresh store, with a dev master key in a temp folder. */
export async function custodianFixture(
  kind: StoreKindUnderTest,
  options: { clock?: Clock; config?: ConfigOverrides } = {},
): Promise<{ custodian: Custodian; fixture: StoreFixture; cleanup: () => Promise<void> }> {
  const fixture = await storeFixture(kind);
  const config = loadConfig({}, { dbUrl: fixture.url, dataDir: fixture.dir, logLevel: 'silent', ...options.config });
  const custodian = await createCustodian(config, options.clock ? { clock: options.clock } : {});
  return {
    custodian,
    fixture,
    cleanup: async () => {
      await custodian.close();
      await fixture.cleanup();
    },
  };
}
