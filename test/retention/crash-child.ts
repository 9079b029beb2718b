import { createCustodian, loadConfig } from '../../src/app/index.js';

/*
 * The retention run the crash test kills: a Custodian on the store named by RETENTION_STORE_URL (data map
 * already stored) running retention in small, paced batches with a short lease, printing each batch.
 */
const custodian = await createCustodian(loadConfig({}, { dbUrl: process.env.RETENTION_STORE_URL!, dataDir: process.env.RETENTION_DATA_DIR!, logLevel: 'silent' }), {
  watch: false,
  retention: { batchSize: Number(process.env.RETENTION_BATCH ?? 50), leaseMs: 1_000, pauseMs: Number(process.env.RETENTION_PAUSE_MS ?? 20) },
});
try {
  const run = await custodian.retention.run({ actor: 'cli:crash-child', onProgress: (p) => process.stdout.write(`batch ${p.collection} ${p.matched}\n`) });
  process.stdout.write(`done ${run.id}\n`);
} finally {
  await custodian.close();
}
