import { Command, Option } from 'commander';
import { createCustodian, loadConfig } from '../../app/index.js';
import { redactStoreUrl } from '../../store/index.js';
import { buildServer } from '../../server/index.js';
import { startRetentionScheduler } from '../../retention/index.js';
import { BreachDetector, startBreachMonitoring } from '../../breach/index.js';
import { VERSION } from '../../version.js';
import { withStoreOptions, type StoreOptions } from '../context.js';
import type { CliIo } from '../io.js';

interface ServeOptions extends StoreOptions {
  readonly port?: string;
  readonly host?: string;
}

/** Handles for a running server, so tests and embedders can stop it. */
export interface RunningServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the HTTP service: migrates, seeds the first admin key, listens, and prints how to use it. */
export async function serve(io: CliIo, opts: ServeOptions): Promise<RunningServer> {
  const config = loadConfig(io.env, {
    ...(opts.db ? { dbUrl: opts.db } : {}),
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    ...(opts.port !== undefined ? { port: Number(opts.port) } : {}),
    ...(opts.host ? { host: opts.host } : {}),
  });
  const custodian = await createCustodian(config);
  try {
    const admin = await custodian.apiKeys.ensureAdmin(config.adminKey);
    const app = await buildServer(custodian);
    const address = await app.listen({ host: config.host, port: config.port });
    // The sequencer integrates queued audit and consent leaves every second and signs heads as configured.
    const sequencer = custodian.audit.startSequencer({ onError: (err) => app.log.error({ errCode: (err as { code?: string }).code }, 'audit sequencer failed; retrying') });
    // Events go out to subscriptions from here (and from workers); consent expiries are announced every minute.
    await custodian.dispatcher.start({ onError: (err) => app.log.error({ errCode: (err as { code?: string }).code ?? (err as Error).name }, 'event dispatch failed; retrying') });
    // Deadline alerts for data subject requests, every minute (raised once each; see docs/requests.md).
    const sweep = setInterval(() => {
      custodian.requests.sweepDeadlines().then(
        (raised) => raised.length > 0 && app.log.warn({ overdue: raised.filter((r) => r.alert === 'overdue').map((r) => r.id), dueSoon: raised.filter((r) => r.alert === 'due_soon').map((r) => r.id) }, 'request deadline alerts'),
        (err: unknown) => app.log.error({ errCode: (err as { code?: string }).code }, 'deadline sweep failed; retrying'),
      );
      // Expired privacy-center sessions and sign-in codes, in bounded batches.
      custodian.privacyCenter.sweepSessions().catch((err: unknown) => app.log.error({ errCode: (err as { code?: string }).code }, 'privacy center session sweep failed; retrying'));
    }, 60_000);
    sweep.unref();
    // Verification codes leave through SMTP when it is configured (otherwise they stay in the dev sink).
    const mailer = custodian.mailer;
    const dispatch =
      mailer === undefined
        ? undefined
        : setInterval(() => {
            custodian.requests.dispatchOutbox(mailer).then(
              (r) => r.failed > 0 && app.log.warn({ sent: r.sent, failed: r.failed }, 'mail outbox: some messages were not accepted; retrying'),
              (err: unknown) => app.log.error({ errCode: (err as { code?: string }).code }, 'mail dispatch failed; retrying'),
            );
          }, 5_000);
    dispatch?.unref();
    // Retention rules on a cron schedule (CUSTODIAN_RETENTION_CRON, default 03:00 UTC daily); one run at a time across replicas.
    const retention = startRetentionScheduler(custodian, {
      onRun: (run) => app.log.info({ runId: run.id, status: run.status, ...run.totals }, 'retention run finished'),
      onError: (err) => app.log.error({ errCode: (err as { code?: string }).code }, 'retention run failed; it resumes on the next run'),
    });
    // Breach deadlines (escalations raised once each) and detection rules over the audit log, every minute.
    const breach = startBreachMonitoring(
      { incidents: custodian.incidents, detector: new BreachDetector({ store: custodian.store, clock: custodian.clock, incidents: custodian.incidents, apiKeys: custodian.apiKeys, dataMap: () => custodian.datamap.currentView() }) },
      { onError: (err) => app.log.error({ errCode: (err as { code?: string }).code }, 'breach monitoring failed; retrying') },
    );
    const url = address.replace('://[::1]', '://localhost');
    const lines = [
      `Custodian ${VERSION} listening on ${url}`,
      `  API docs:     ${url}/docs   (OpenAPI: ${url}/openapi.json)`,
      `  Store:        ${redactStoreUrl(config.dbUrl)} (${custodian.migrations.applied.length} migration(s) applied)`,
    ];
    if (admin !== null) {
      lines.push(
        admin.secret === config.adminKey
          ? `  Admin API key: the value of CUSTODIAN_ADMIN_KEY`
          : `  Admin API key (shown once, store it now): ${admin.secret}`,
        `  Try:          curl -H "Authorization: Bearer <admin key>" ${url}/v1/purposes`,
      );
    } else {
      lines.push('  Admin API key: already created; mint more with `custodian keys create --scopes admin`', `  Authenticate: -H "Authorization: Bearer <api key>"`);
    }
    const master = custodian.masterKey;
    if (master === undefined) {
      lines.push(`  Master keys:  external KMS (${custodian.config.kms.url ?? 'configured'})`);
    } else if (master.source === 'generated') {
      lines.push(
        '',
        '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
        `!! WARNING: generated a DEVELOPMENT master key at ${master.path}`,
        '!! Anyone with this file can decrypt protected data. For production set',
        '!! CUSTODIAN_MASTER_KEY (32 bytes, base64) or CUSTODIAN_MASTER_KEY_FILE.',
        '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
      );
    } else if (master.source === 'file' && io.env.CUSTODIAN_MASTER_KEY_FILE === undefined) {
      lines.push(`  Master key:   development key file ${master.path} (not for production)`);
    }
    io.stdout(lines.join('\n') + '\n');
    let closing: Promise<void> | undefined;
    return {
      url,
      close: () => {
        closing ??= app
          .close()
          .then(() => {
            clearInterval(sweep);
            if (dispatch !== undefined) clearInterval(dispatch);
          })
          .then(() => retention?.stop())
          .then(() => breach.stop())
          .then(() => sequencer.stop())
          .then(() => custodian.close());
        return closing;
      },
    };
  } catch (err) {
    await custodian.close();
    throw err;
  }
}

/** `custodian serve`. */
export function serveCommand(io: CliIo): Command {
  return withStoreOptions(new Command('serve').description('run the HTTP API'))
    .addOption(new Option('--port <n>', 'port to listen on (env CUSTODIAN_PORT; default 8080; 0 = any free port)'))
    .addOption(new Option('--host <host>', 'address to bind (env CUSTODIAN_HOST; default 127.0.0.1)'))
    .action(async (opts: ServeOptions) => {
      const server = await serve(io, opts);
      const stop = () => {
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
