import { Migrator, type Kysely } from 'kysely';
import { CustodianError } from '../../core/index.js';
import type { MigrationReport, StoreKind } from '../store.js';
import { migrationsFor } from './migrations.js';

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

/** The error code when `err` means the store could not be reached (network, or PostgreSQL SQLSTATE class 08 / 57P03). */
function connectionFailure(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  return NETWORK_ERRORS.has(code) || code.startsWith('08') || code === '57P03' ? code : undefined;
}

/** Applies every pending migration of `kind` to `db`; a failed migration rolls back and throws. */
export async function runMigrations(db: Kysely<unknown>, kind: StoreKind): Promise<MigrationReport> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrationsFor(kind)) },
    migrationTableName: 'custodian_migrations',
    migrationLockTableName: 'custodian_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  const reason = connectionFailure(error);
  if (reason !== undefined) {
    // Not a migration fault: the store could not be reached, and saying "migration failed" misleads the operator.
    throw new CustodianError('CST_ERR_UNAVAILABLE', 'store unreachable', { cause: error, details: { reason } });
  }
  if (error) {
    throw new CustodianError('CST_ERR_STORE_MIGRATION', 'store migration failed', {
      cause: error,
      details: { failed: results?.filter((r) => r.status === 'Error').map((r) => r.migrationName) ?? [] },
    });
  }
  const current = (await migrator.getMigrations()).filter((m) => m.executedAt !== undefined).map((m) => m.name);
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName), current };
}
