import { Migrator, type Kysely } from 'kysely';
import { CustodianError } from '../../core/index.js';
import type { MigrationReport, StoreKind } from '../store.js';
import { storeUnavailableReason } from '../store-errors.js';
import { migrationsFor } from './migrations.js';

/** Applies every pending migration of `kind` to `db`; a failed migration rolls back and throws. */
export async function runMigrations(db: Kysely<unknown>, kind: StoreKind): Promise<MigrationReport> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrationsFor(kind)) },
    migrationTableName: 'custodian_migrations',
    migrationLockTableName: 'custodian_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  const reason = storeUnavailableReason(error);
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
