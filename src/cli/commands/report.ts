import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { ADEQUACY_LIST_AS_OF, type AdequacyRegime } from '../../core/index.js';
import type { DataMap } from '../../datamap/index.js';
import {
  assessTransfers,
  buildDataFlowGraph,
  buildRopa,
  dpiaToText,
  graphToDot,
  graphToSvg,
  ropaToCsv,
  ropaToHtml,
  ropaToJson,
  screenDpia,
  transfersToText,
} from '../../datamap/reports/index.js';
import { withStoreOptions, type StoreOptions } from '../context.js';
import type { CliIo } from '../io.js';

/** Where a report command reads the data map from: `--manifest <file>`, or the store's current map. */
export interface MapSourceOptions extends StoreOptions {
  readonly manifest?: string;
}

/** Loads the data map for a command; the composition root provides it. */
export type ResolveMap = (opts: MapSourceOptions) => Promise<DataMap>;

const regimeOption = () => new Option('--regime <regime>', 'whose transfer rules: the EEA (GDPR) or the United Kingdom (UK GDPR)').choices(['EU', 'UK']).default('EU');

/** Adds `--manifest` and the store options to a command. */
function withMapSource(cmd: Command): Command {
  return withStoreOptions(cmd.option('--manifest <file>', 'data map manifest (YAML or JSON); default: the map in the store'));
}

/** Writes a rendered report to `--out` or stdout; a file write reports where on stderr so stdout stays the report. */
async function emit(io: CliIo, text: string, out: string | undefined): Promise<void> {
  if (out === undefined) {
    io.stdout(text);
    return;
  }
  await writeFile(out, text, { mode: 0o644 });
  io.stderr(`wrote ${out}\n`);
}

/**
 * `custodian report …`: records of processing, DPIA screening and transfer assessment from the data map.
 * Reports are read-only; they never change the store.
 */
export function reportCommand(io: CliIo, resolveMap: ResolveMap): Command {
  const report = new Command('report').description('reports from the data map: records of processing (Art. 30), DPIA screening (Art. 35), transfers (Chapter V)');

  withMapSource(report.command('ropa').description('records of processing activities (GDPR Art. 30(1)), one per purpose, each entry traced to the manifest'))
    .addOption(new Option('--format <format>', 'output format').choices(['html', 'csv', 'json']).default('html'))
    .option('--out <file>', 'write to a file instead of stdout')
    .addOption(regimeOption())
    .action(async (opts: MapSourceOptions & { format: 'html' | 'csv' | 'json'; out?: string; regime: AdequacyRegime }) => {
      const ropa = buildRopa(await resolveMap(opts), { generatedAt: new Date().toISOString(), regime: opts.regime });
      await emit(io, opts.format === 'csv' ? ropaToCsv(ropa) : opts.format === 'json' ? ropaToJson(ropa) : ropaToHtml(ropa), opts.out);
    });

  withMapSource(report.command('dpia').description('DPIA screening per purpose against the nine WP248 criteria: required at two or more'))
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (opts: MapSourceOptions & { format: 'text' | 'json'; out?: string }) => {
      const screening = screenDpia(await resolveMap(opts));
      await emit(io, opts.format === 'json' ? JSON.stringify(screening, null, 2) + '\n' : dpiaToText(screening), opts.out);
    });

  withMapSource(report.command('transfers').description(`transfers outside the EEA/UK against the adequacy list (as of ${ADEQUACY_LIST_AS_OF}) and the declared mechanisms`))
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--out <file>', 'write to a file instead of stdout')
    .addOption(regimeOption())
    .action(async (opts: MapSourceOptions & { format: 'text' | 'json'; out?: string; regime: AdequacyRegime }) => {
      const assessment = assessTransfers(await resolveMap(opts), { regime: opts.regime });
      await emit(io, opts.format === 'json' ? JSON.stringify(assessment, null, 2) + '\n' : transfersToText(assessment), opts.out);
    });

  return report;
}

/** `graph`: the data-flow graph of the map (the lead mounts it as `custodian datamap graph`). */
export function graphCommand(io: CliIo, resolveMap: ResolveMap): Command {
  return withMapSource(new Command('graph').description('data-flow graph: systems, references, recipients and transfers'))
    .addOption(new Option('--format <format>', 'json, Graphviz DOT, or a standalone SVG').choices(['json', 'dot', 'svg']).default('json'))
    .option('--out <file>', 'write to a file instead of stdout')
    .addOption(regimeOption())
    .action(async (opts: MapSourceOptions & { format: 'json' | 'dot' | 'svg'; out?: string; regime: AdequacyRegime }) => {
      const graph = buildDataFlowGraph(await resolveMap(opts), { regime: opts.regime });
      await emit(io, opts.format === 'dot' ? graphToDot(graph) : opts.format === 'svg' ? graphToSvg(graph) : JSON.stringify(graph, null, 2) + '\n', opts.out);
    });
}
