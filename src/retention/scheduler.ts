import { Cron } from 'croner';
import { CustodianError, isCustodianError } from '../core/index.js';
import type { RetentionRunView, RetentionService } from './retention-service.js';

/** Daily at 03:00 UTC. */
export const DEFAULT_RETENTION_CRON = '0 3 * * *';

/** A running retention schedule. */
export interface RetentionScheduler {
  /** The cron expression in force (UTC). */
  readonly cron: string;
  /** When the next run starts. */
  nextRun(): Date | null;
  /** Stops scheduling and aborts a run in progress (it stays open and is resumed by the next run). */
  stop(): Promise<void>;
}

export interface RetentionSchedulerOptions {
  /** Cron expression (5 or 6 fields, UTC); default CUSTODIAN_RETENTION_CRON or {@link DEFAULT_RETENTION_CRON}. */
  readonly cron?: string;
  /** Told of each run's end (for logs: ids and counts only). */
  readonly onRun?: (run: RetentionRunView) => void;
  /** Told of a failed run (not of CST_ERR_RETENTION_BUSY: another process is running it, which is normal). */
  readonly onError?: (err: unknown) => void;
}

/**
 * Runs retention on a cron schedule inside a long-lived process (`custodian serve`, `custodian worker`).
 * Every replica may schedule it: the run lease lets one process run at a time and the others skip that tick
 * (CST_ERR_RETENTION_BUSY). `CUSTODIAN_RETENTION_CRON=off` disables it (returns undefined).
 *
 * @example
 * ```ts
 * const schedule = startRetentionScheduler(custodian, { onError: (e) => log.warn({ err: e }, 'retention failed') });
 * // … on shutdown:
 * await schedule?.stop();
 * ```
 */
export function startRetentionScheduler(
  custodian: { readonly retention: RetentionService; readonly config: { readonly env: Readonly<Record<string, string | undefined>> } },
  options: RetentionSchedulerOptions = {},
): RetentionScheduler | undefined {
  const cron = (options.cron ?? custodian.config.env.CUSTODIAN_RETENTION_CRON ?? DEFAULT_RETENTION_CRON).trim();
  if (cron === '' || cron.toLowerCase() === 'off') return undefined;
  let controller: AbortController | undefined;
  let running: Promise<void> | undefined;
  let job: Cron;
  try {
    job = new Cron(cron, { timezone: 'UTC', protect: true, paused: true, unref: true }, () => {
      controller = new AbortController();
      running = custodian.retention
        .run({ actor: 'system:retention-scheduler', signal: controller.signal })
        .then(
          (run) => options.onRun?.(run),
          (err: unknown) => {
            if (!isCustodianError(err, 'CST_ERR_RETENTION_BUSY') && controller?.signal.aborted !== true) options.onError?.(err);
          },
        )
        .finally(() => {
          running = undefined;
        });
      return running;
    });
  } catch {
    throw new CustodianError('CST_ERR_CONFIG', 'CUSTODIAN_RETENTION_CRON is not a cron expression (e.g. "0 3 * * *" for 03:00 UTC daily, or "off")', { details: { setting: 'CUSTODIAN_RETENTION_CRON' } });
  }
  job.resume();
  return {
    cron,
    nextRun: () => job.nextRun(),
    stop: async () => {
      job.stop();
      controller?.abort();
      await running?.catch(() => undefined);
    },
  };
}
