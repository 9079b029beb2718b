import { Command, InvalidArgumentError, Option } from 'commander';
import { CustodianError, isCustodianError } from '../../core/index.js';
import { sqlEngineOf } from '../../connectors/index.js';
import { formatIssue, invalidManifest, loadManifestFile, resolveConnection, type System } from '../../datamap/index.js';
import { DEFAULT_SAMPLE_ROWS, compareWithManifest, proposalToYaml, proposeSystem, scanUrl, type DriftReport } from '../../scanner/index.js';
import { EXIT, printJson, type CliIo } from '../io.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError('an integer from 1 to 100000');
  return n;
}

function confidence(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('a number from 0 to 1');
  return n;
}

function manifestKey(value: string): string {
  if (!/^[a-z][a-z0-9_-]*$/.test(value) || value.length > 128) throw new InvalidArgumentError('a lower-case identifier: letters, digits, _ and -, starting with a letter');
  return value;
}

/**
 * The connection to record in a proposal: as given when its password (if any) is a `${VAR}` reference;
 * a literal password is replaced by `${DB_PASSWORD}`, so no secret ever lands in a manifest.
 */
export function connectionForManifest(given: string): string {
  return given.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:)([^@/?#]*)@/i, (m, head: string, password: string) => (/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(password) ? m : `${head}\${DB_PASSWORD}@`));
}

interface ScanOpts {
  sample: number;
  format: 'yaml' | 'json';
  system?: string;
  dataset?: string;
  schema?: string;
  minConfidence: number;
}

/**
 * `custodian scan <url>`: introspects a PostgreSQL, MySQL/MariaDB or SQLite database, samples each table
 * (bounded), classifies the columns and prints a proposed manifest fragment. Never prints a sampled value.
 */
export function scanCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return new Command('scan')
    .description('propose data-map entries for a database: introspect, sample a bounded number of rows per table, classify columns')
    .argument('<url>', 'postgres://…, mysql://… (mariadb://…) or sqlite:<path>; secrets as ${ENV} references')
    .option('--sample <n>', 'rows sampled per table', positiveInt, DEFAULT_SAMPLE_ROWS)
    .addOption(new Option('--format <format>', 'yaml: a manifest fragment with confidences as comments; json: the full report').choices(['yaml', 'json']).default('yaml'))
    .option('--system <key>', 'key of the proposed system (default: from the database name)', manifestKey)
    .option('--dataset <key>', 'key of the proposed dataset (default: from the database name)', manifestKey)
    .option('--schema <name>', 'PostgreSQL schema to scan (default public); MySQL: database (default the URL’s)')
    .option('--min-confidence <x>', 'leave out findings below this confidence (0–1)', confidence, 0)
    .action(async (url: string, opts: ScanOpts) => {
      const resolved = resolveConnection(url, io.env);
      const report = await scanUrl(resolved, { sample: opts.sample, schema: opts.schema });
      const { system, proposal } = proposeSystem(report, {
        systemKey: opts.system,
        datasetKey: opts.dataset,
        connection: connectionForManifest(url),
        minConfidence: opts.minConfidence,
      });
      if (opts.format === 'json') {
        printJson(io, { report, proposal: { system, fields: proposal.fields, unrepresentable: proposal.unrepresentable } });
      } else {
        io.stdout(proposalToYaml(system, proposal, report));
        if (proposal.unrepresentable.length > 0) io.stderr(`warning: ${proposal.unrepresentable.length} table(s) or column(s) with personal data have names a manifest cannot spell: ${proposal.unrepresentable.join(', ')}\n`);
      }
      setExitCode(EXIT.ok);
    });
}

interface CheckOpts {
  manifest: string;
  system?: string;
  format: 'text' | 'json';
  sample: number;
  schema?: string;
  minConfidence: number;
}

interface SystemOutcome {
  readonly system: string;
  readonly drift?: DriftReport;
  readonly error?: { readonly code: string; readonly message: string; readonly details?: unknown };
}

/**
 * `custodian check`: scans every system of the manifest that has a SQL connection and compares the result
 * with what the manifest declares. Exit 0 when nothing drifted; exit 1 listing personal-data columns the
 * manifest does not declare and declared columns that vanished (or when a database cannot be scanned);
 * exit 2 for an invalid manifest or bad options. Meant as the privacy gate of a team's CI.
 */
export function checkCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return new Command('check')
    .description(`compare a fresh scan of each system's database with the manifest; exit ${EXIT.drift} when personal-data columns are undeclared or declared ones vanished, ${EXIT.failure} when a database could not be scanned`)
    .option('--manifest <file>', 'the data map manifest', 'custodian.yaml')
    .option('--system <key>', 'check only this system (default: every system with a postgres://, mysql://, mariadb:// or sqlite: connection)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--sample <n>', 'rows sampled per table', positiveInt, DEFAULT_SAMPLE_ROWS)
    .option('--schema <name>', 'PostgreSQL schema to scan (default public)')
    .option('--min-confidence <x>', 'ignore findings below this confidence (0–1)', confidence, 0.5)
    .action(async (opts: CheckOpts) => {
      const loaded = await loadManifestFile(opts.manifest);
      if (loaded.manifest === undefined) {
        if (opts.format === 'text') for (const i of loaded.issues) io.stderr(formatIssue(i) + '\n');
        throw invalidManifest(loaded.issues);
      }
      const manifest = loaded.manifest;
      let systems: System[];
      const skipped: { system: string; reason: string }[] = [];
      if (opts.system !== undefined) {
        const s = manifest.systems.find((x) => x.key === opts.system);
        if (s === undefined) throw new CustodianError('CST_ERR_VALIDATION', 'no such system in the manifest', { details: { issues: [{ path: 'system', message: `unknown system ${opts.system}` }] } });
        if (s.connection === undefined || sqlEngineOf(s.connection) === undefined) {
          throw new CustodianError('CST_ERR_SCAN_UNSUPPORTED', 'the system has no connection the scanner can read', { details: { system: s.key, scheme: s.connection?.split(':')[0]?.slice(0, 20) ?? null } });
        }
        systems = [s];
      } else {
        systems = [];
        for (const s of manifest.systems) {
          if (s.connection === undefined) skipped.push({ system: s.key, reason: 'no connection' });
          else if (sqlEngineOf(s.connection) === undefined) skipped.push({ system: s.key, reason: `${s.connection.split(':')[0] ?? ''}: is not scanned` });
          else systems.push(s);
        }
      }
      const outcomes: SystemOutcome[] = [];
      for (const system of systems) {
        try {
          const url = resolveConnection(system.connection!, io.env);
          const report = await scanUrl(url, { sample: opts.sample, schema: opts.schema });
          outcomes.push({ system: system.key, drift: compareWithManifest(report, system, { minConfidence: opts.minConfidence }) });
        } catch (err) {
          if (!isCustodianError(err)) throw err;
          outcomes.push({ system: system.key, error: { code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) } });
        }
      }
      const drifted = outcomes.some((o) => o.drift !== undefined && !o.drift.ok);
      const failed = outcomes.some((o) => o.error !== undefined);
      const ok = !drifted && !failed;
      if (opts.format === 'json') printJson(io, { ok, manifest: opts.manifest, systems: outcomes, skipped });
      else renderText(io, opts.manifest, outcomes, skipped, ok);
      // Drift is the gate's finding (5); a database that could not be scanned is a failure (1) and wins.
      setExitCode(failed ? EXIT.failure : drifted ? EXIT.drift : EXIT.ok);
    });
}

function renderText(io: CliIo, manifest: string, outcomes: readonly SystemOutcome[], skipped: readonly { system: string; reason: string }[], ok: boolean): void {
  const lines: string[] = [];
  for (const o of outcomes) {
    if (o.error !== undefined) {
      const url = (o.error.details as { url?: string } | undefined)?.url;
      lines.push(`${o.system}: error ${o.error.code}: ${o.error.message}${url !== undefined ? ` (${url})` : ''}`);
      continue;
    }
    const d = o.drift!;
    const summary = d.ok ? 'ok' : `${d.undeclared.length} undeclared, ${d.vanished.length} vanished`;
    lines.push(`${o.system} (${d.url}): ${summary}${d.mismatched.length > 0 ? `, ${d.mismatched.length} warning(s)` : ''}`);
    for (const u of d.undeclared) {
      const where = u.dataset !== null ? `${u.dataset}.${u.collection}.${u.field}` : `${u.collection}.${u.field}`;
      lines.push(`  undeclared  ${where}  ${u.category}  confidence ${u.confidence.toFixed(2)}${u.reason === 'no_categories' ? '  (declared without data categories)' : ''}`);
    }
    for (const v of d.vanished) lines.push(`  vanished    ${v.address}${v.field === null ? '  (table gone)' : ''}`);
    for (const m of d.mismatched) lines.push(`  warning     ${m.address}  declared ${m.declared.join(', ')}; the scan suggests ${m.found} (confidence ${m.confidence.toFixed(2)})`);
  }
  for (const s of skipped) lines.push(`${s.system}: skipped (${s.reason})`);
  if (outcomes.length === 0) lines.push(`no system in ${manifest} has a connection the scanner can read`);
  lines.push(ok ? 'check passed: every personal-data column found is declared' : 'check failed: declare the columns above in the manifest (or remove vanished fields), then run again');
  io.stdout(lines.join('\n') + '\n');
}
