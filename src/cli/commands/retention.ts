import { Command, Option } from 'commander';
import { CustodianError } from '../../core/index.js';
import type { RetentionProgress, RetentionReport, RetentionRunView } from '../../retention/index.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';
import { stepProgress } from '../progress.js';

const ACTOR = 'cli:operator';

/** Progress of a run on stderr, at most once a second per rule (a run may have thousands of batches). */
function runProgress(io: CliIo): { onProgress: (p: RetentionProgress) => void; stop: () => void } {
  const progress = stepProgress(io, 'retention ');
  let last = 0;
  let lastRule = '';
  return {
    onProgress: (p) => {
      const rule = `${p.collection}#${p.rule}`;
      const now = Date.now();
      if (rule === lastRule && now - last < 1_000) return;
      last = now;
      lastRule = rule;
      progress.onStep(p.rulesDone, `${rule} matched ${p.matched}, changed ${p.changed}`, p.rulesTotal);
    },
    stop: () => progress.stop(),
  };
}

function runText(run: RetentionRunView): string {
  const lines = [`run ${run.id} ${run.status}${run.dryRun ? ' (dry run: nothing changed)' : ''}${run.resumed > 0 ? ` resumed ${run.resumed}×` : ''}`];
  for (const c of run.collections) {
    const skipped = Object.entries(c.skipped)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `  ${c.collection}#${c.rule} ${c.action} < ${c.cutoff}: ${c.state}, matched ${c.matched}, ${c.action === 'delete' ? `deleted ${c.deleted}` : `anonymised ${c.anonymised}`}${skipped === '' ? '' : `, skipped ${skipped}`}${c.error === null ? '' : ` — ${c.error}`}`,
    );
  }
  lines.push(`  total: matched ${run.totals.matched}, deleted ${run.totals.deleted}, anonymised ${run.totals.anonymised}, skipped ${run.totals.skipped}`);
  return lines.join('\n') + '\n';
}

function reportText(r: RetentionReport): string {
  const lines = [`retention report ${r.generatedAt} (data map v${r.datamapVersion ?? '-'}), compliance ${r.compliancePercent === null ? '-' : `${r.compliancePercent}%`}`];
  for (const rule of r.rules) {
    const reasons = Object.entries(rule.heldReasons ?? {})
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    const held = rule.pastDueHeld === null ? 'held unknown (no primary key)' : `held ${rule.pastDueHeld}${reasons === '' ? '' : ` (${reasons})`}`;
    const estimate = rule.estimated ? ` (estimated from ${rule.scanned} of ${rule.pastDueAll} rows)` : '';
    const measured = rule.error === null ? `past due ${rule.pastDue}, ${held}${estimate}, due within ${r.horizonDays} d ${rule.dueSoon}` : rule.error;
    lines.push(`  ${rule.collection}#${rule.rule} ${rule.action} ${rule.field} after ${rule.period}: ${measured}${rule.heldBy === null ? '' : ' (legal hold)'}`);
  }
  lines.push(`  total past due ${r.pastDueTotal}, held ${r.pastDueHeldTotal}, due soon ${r.dueSoonTotal}; active legal holds ${r.activeLegalHolds}; last run ${r.lastRun === null ? '-' : `${r.lastRun.id} ${r.lastRun.status}`}`);
  return lines.join('\n') + '\n';
}

/** `custodian retention …`: run the data map's retention rules, the retention report, legal holds. */
export function retentionCommand(io: CliIo): Command {
  const retention = new Command('retention').description('retention rules of the data map: run them (in batches, resumable), report, legal holds');

  withStoreOptions(
    retention
      .command('run')
      .description('apply the retention rules now (resumes an interrupted run first); progress on stderr')
      .option('--dry-run', 'count only: change nothing')
      .option('--system <key>', 'only the collections of this system')
      .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text')),
  ).action(async (opts: StoreOptions & { dryRun?: boolean; system?: string; format: 'text' | 'json' }) => {
    const stop = new AbortController();
    const onSignal = () => stop.abort(new CustodianError('CST_ERR_UNAVAILABLE', 'retention stopping: the run resumes next time'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const progress = runProgress(io);
    try {
      const run = await withCustodian(io, opts, (c) => c.retention.run({ dryRun: opts.dryRun === true, system: opts.system, actor: ACTOR, signal: stop.signal, onProgress: progress.onProgress }));
      progress.stop();
      if (opts.format === 'json') printJson(io, run);
      else io.stdout(runText(run));
    } finally {
      progress.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });

  withStoreOptions(
    retention
      .command('report')
      .description('per rule: rows past due now and coming due soon, counted in the real systems; compliance figure')
      .option('--horizon-days <n>', 'how far ahead "coming due" looks', (v) => Number.parseInt(v, 10), 30)
      .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text')),
  ).action(async (opts: StoreOptions & { horizonDays: number; format: 'text' | 'json' }) => {
    if (!Number.isInteger(opts.horizonDays) || opts.horizonDays < 1 || opts.horizonDays > 366) {
      throw new CustodianError('CST_ERR_VALIDATION', '--horizon-days takes a whole number from 1 to 366', { details: { issues: [{ path: 'horizonDays', message: 'invalid' }] } });
    }
    const report = await withCustodian(io, opts, (c) => c.retention.report({ horizonDays: opts.horizonDays }));
    if (opts.format === 'json') printJson(io, report);
    else io.stdout(reportText(report));
  });

  withStoreOptions(retention.command('show').description('a stored retention run and its report').argument('<id>', 'run id')).action(async (id: string, opts: StoreOptions) => {
    printJson(io, await withCustodian(io, opts, (c) => c.retention.get(id)));
  });

  const holds = new Command('holds').description('legal holds: retention skips what they cover (GDPR Art. 17(3)(e))');
  withStoreOptions(holds.command('list').description('legal holds, newest first').option('--active', 'only holds in force now')).action(async (opts: StoreOptions & { active?: boolean }) => {
    printJson(io, { holds: await withCustodian(io, opts, (c) => c.retention.listHolds({ active: opts.active === true })) });
  });
  withStoreOptions(
    holds
      .command('add')
      .description('place a legal hold on a subject (by one identity, stored only as a keyed digest), a system or a collection')
      .addOption(new Option('--scope <scope>', 'what it covers').choices(['subject', 'system', 'collection']).makeOptionMandatory())
      .option('--identity <kind=value>', 'subject holds: an identity of the data map, e.g. email=ada@example.com')
      .option('--system <key>', 'system holds: the system key')
      .option('--collection <dataset.collection>', 'collection holds: the collection')
      .requiredOption('--reason <text>', 'why (a case reference; no personal data)')
      .option('--until <instant>', 'when it ends by itself (UTC ISO-8601); default: until released'),
  ).action(async (opts: StoreOptions & { scope: 'subject' | 'system' | 'collection'; identity?: string; system?: string; collection?: string; reason: string; until?: string }) => {
    let identity: { kind: string; value: string } | undefined;
    if (opts.identity !== undefined) {
      const at = opts.identity.indexOf('=');
      if (at <= 0) throw new CustodianError('CST_ERR_LEGAL_HOLD_INVALID', 'identity must be <kind>=<value>, e.g. email=ada@example.com', { details: { issues: [{ path: 'identity', message: 'expected kind=value' }] } });
      identity = { kind: opts.identity.slice(0, at), value: opts.identity.slice(at + 1) };
    }
    printJson(io, await withCustodian(io, opts, (c) => c.retention.createHold({ scope: opts.scope, identity, system: opts.system, collection: opts.collection, reason: opts.reason, until: opts.until, actor: ACTOR })));
  });
  withStoreOptions(holds.command('release').description('release a legal hold').argument('<id>', 'hold id')).action(async (id: string, opts: StoreOptions) => {
    printJson(io, await withCustodian(io, opts, (c) => c.retention.releaseHold(id, ACTOR)));
  });
  retention.addCommand(holds);

  return retention;
}
