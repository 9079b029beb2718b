import { Command, CommanderError } from 'commander';
import { isCustodianError } from '../core/index.js';
import { storeUnavailableReason } from '../store/index.js';
import { VERSION } from '../version.js';
import { auditCommand } from './commands/audit.js';
import { consentCommand } from './commands/consent.js';
import { datamapCommand, resolveDataMap } from './commands/datamap.js';
import { exportFidesCommand, importFidesCommand } from './commands/datamap-fides.js';
import { graphCommand, reportCommand } from './commands/report.js';
import { checkCommand, scanCommand } from './commands/scan.js';
import { requestCommand, workerCommand } from './commands/request.js';
import { incidentCommand } from './commands/incident.js';
import { retentionCommand } from './commands/retention.js';
import { dbCommand } from './commands/db.js';
import { filterCommand } from './commands/filter.js';
import { keysCommand } from './commands/keys.js';
import { purposesCommand } from './commands/purposes.js';
import { serveCommand } from './commands/serve.js';
import { eventsCommand } from './commands/events.js';
import { EXIT, type CliIo } from './io.js';

/** Builds the `custodian` command tree writing to `io`. */
export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('custodian')
    .description('Custodian: consent ledger and privacy operations')
    .version(VERSION)
    .showHelpAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const resolveMap = (opts: Parameters<typeof resolveDataMap>[1]) => resolveDataMap(io, opts);
  for (const cmd of [serveCommand(io), dbCommand(io), consentCommand(io, setExitCode), keysCommand(io), purposesCommand(io), auditCommand(io, setExitCode), datamapCommand(io, setExitCode, [importFidesCommand(io), exportFidesCommand(io), graphCommand(io, resolveMap)]), reportCommand(io, resolveMap), scanCommand(io, setExitCode), checkCommand(io, setExitCode), filterCommand(io, setExitCode), requestCommand(io), workerCommand(io), eventsCommand(io), incidentCommand(io), retentionCommand(io)]) program.addCommand(cmd);
  const exitOverrideAll = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
    cmd.commands.forEach(exitOverrideAll);
  };
  exitOverrideAll(program);
  return program;
}

/**
 * Runs the CLI with `argv` (without node and script) and resolves to its exit code:
 * 0 ok, 1 failure, 2 bad input, 3 `consent check` not allowed, 4 `audit verify` found tampering, 5 `check` found drift.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    if (isCustodianError(err)) {
      io.stderr(`error ${err.code}: ${err.message}\n`);
      if (err.details !== undefined) io.stderr(JSON.stringify(err.details) + '\n');
      return err.status < 500 ? EXIT.badInput : EXIT.failure;
    }
    const unavailable = storeUnavailableReason(err);
    if (unavailable !== undefined) {
      io.stderr(`error CST_ERR_UNAVAILABLE: the store is unavailable (${unavailable}); retry later\n`);
      return EXIT.failure;
    }
    const e = err as NodeJS.ErrnoException;
    io.stderr(`error: ${e.code === 'ECONNREFUSED' ? 'store unreachable' : 'unexpected failure'} (${e.name}${e.code ? ` ${e.code}` : ''})\n`);
    return EXIT.failure;
  }
}
