import { Command, InvalidArgumentError, Option } from 'commander';
import { ConsentFilter, DROP_REASONS, httpLookup, ledgerLookup, type ConsentLookup, type FilterSummary } from '../../client/index.js';
import { LEDGER_LIMITS } from '../../ledger/index.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { EXIT, type CliIo } from '../io.js';
import { BadLineError, keptBytes, readJsonlWindows, writeWithBackpressure, type BadLinePolicy } from '../jsonl.js';

/** The byte streams `filter` reads and writes (the process's own by default; tests may pass others). */
export interface FilterStreams {
  readonly stdin: AsyncIterable<Buffer | Uint8Array | string>;
  readonly stdout: NodeJS.WritableStream;
  /** Whether stderr is a terminal: then progress is one line redrawn in place. */
  readonly stderrIsTTY: boolean;
}

const processStreams = (): FilterStreams => ({ stdin: process.stdin, stdout: process.stdout, stderrIsTTY: process.stderr.isTTY === true });

interface FilterOptions extends StoreOptions {
  readonly purpose: string;
  readonly subjectField: string;
  readonly url?: string;
  readonly apiKey?: string;
  readonly onBadLine: BadLinePolicy;
  readonly recheckMs: number;
  readonly batch: number;
  readonly window: number;
  readonly cacheSubjects?: number;
  readonly progress: boolean;
  readonly json?: boolean;
}

function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`a whole number from ${min} to ${max}`);
    return n;
  };
}

/** At most this many bad lines are reported one by one on stderr; the summary counts them all. */
const MAX_BAD_LINE_REPORTS = 100;
/** Progress: redrawn at most every 200 ms on a terminal, one line every 5 s otherwise. */
const TTY_PROGRESS_MS = 200;
const LOG_PROGRESS_MS = 5000;

function dropText(s: FilterSummary): string {
  const parts = DROP_REASONS.filter((r) => s.dropped[r] > 0).map((r) => `${r} ${s.dropped[r]}`);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

function droppedTotal(s: FilterSummary): number {
  let n = 0;
  for (const r of DROP_REASONS) n += s.dropped[r];
  return n;
}

/**
 * `custodian filter`: keeps the JSONL records of stdin whose subject allows processing for a purpose, and
 * writes their lines to stdout unchanged. Decisions come from the store (`--db`) or a server (`--url`).
 */
export function filterCommand(io: CliIo, setExitCode: (code: number) => void, streams: () => FilterStreams = processStreams): Command {
  return withStoreOptions(
    new Command('filter')
      .description('keep the JSONL records (stdin → stdout) whose subject allows processing for a purpose')
      .requiredOption('--purpose <key>', 'purpose key the records will be processed for, e.g. train_ai_system')
      .requiredOption('--subject-field <field>', 'field holding the subject id; a dotted path reaches nested fields (user.id)'),
  )
    .addOption(new Option('--url <server>', 'ask a Custodian server instead of the store, e.g. https://custodian.example.com').conflicts(['db', 'dataDir', 'cacheSubjects']))
    .addOption(new Option('--api-key <key>', 'API key with consent:read, with --url (env CUSTODIAN_API_KEY)'))
    .addOption(new Option('--on-bad-line <policy>', 'a line that is not JSON: fail (stop, exit 1) or skip (count it)').choices(['fail', 'skip']).default('fail'))
    .addOption(new Option('--recheck-ms <n>', 'decisions that allow processing are looked up again after this long').argParser(wholeNumber(0, 86_400_000)).default(1000))
    .addOption(new Option('--batch <n>', 'distinct subjects per lookup').argParser(wholeNumber(1, LEDGER_LIMITS.maxCheckBatch)).default(5000))
    .addOption(new Option('--window <n>', 'records read ahead and decided together').argParser(wholeNumber(1, 1_000_000)).default(10_000))
    .addOption(new Option('--cache-subjects <n>', "subjects the ledger keeps in its in-process cache (about 600 bytes each; default the ledger's, 100,000); with --db").argParser(wholeNumber(1, 100_000_000)))
    .option('--no-progress', 'no progress display on stderr')
    .option('--json', 'print the summary as JSON on stderr')
    .action(async (opts: FilterOptions) => {
      const apiKey = opts.apiKey ?? io.env.CUSTODIAN_API_KEY;
      if (opts.url !== undefined && (apiKey === undefined || apiKey === '')) {
        io.stderr('error: --url needs --api-key (or CUSTODIAN_API_KEY)\n');
        setExitCode(EXIT.badInput);
        return;
      }
      if (opts.url !== undefined && !/^https?:\/\/[^/]/.test(opts.url)) {
        io.stderr('error: --url must be an http:// or https:// URL\n');
        setExitCode(EXIT.badInput);
        return;
      }
      const run = (lookup: ConsentLookup): Promise<number> => runFilter(io, streams, lookup, opts);
      const code =
        opts.url !== undefined
          ? await run(httpLookup({ baseUrl: opts.url, apiKey: apiKey! }))
          : await withCustodian(io, opts, async (c) => {
              // A filter runs long: follow other processes' consent changes (SQLite data_version, PostgreSQL
              // NOTIFY) so the ledger's cache is dropped on a change instead of trusted for its TTL.
              await c.ledger.watch();
              return run(ledgerLookup(c.ledger, { purposes: c.purposes }));
            }, opts.cacheSubjects === undefined ? {} : { ledger: { cacheMaxSubjects: opts.cacheSubjects } });
      setExitCode(code);
    });
}

async function runFilter(io: CliIo, openStreams: () => FilterStreams, lookup: ConsentLookup, opts: FilterOptions): Promise<number> {
  const filter = new ConsentFilter<unknown>({
    purpose: opts.purpose,
    subjectField: opts.subjectField,
    lookup,
    recheckMs: opts.recheckMs,
    batchSize: opts.batch,
    windowSize: opts.window,
  });
  // An unknown purpose fails before a byte is read (CST_ERR_CONSENT_UNKNOWN_PURPOSE, exit 2).
  await filter.assertPurpose();
  const streams = openStreams();
  const verdicts = new Uint8Array(opts.window);
  const tty = streams.stderrIsTTY;
  const every = tty ? TTY_PROGRESS_MS : LOG_PROGRESS_MS;
  let lastProgress = performance.now();
  let drawn = false;
  let badReported = 0;
  const progress = (): void => {
    const s = filter.summary();
    const rate = s.durationMs > 0 ? Math.round((s.read / s.durationMs) * 1000) : 0;
    const line = `filter: ${s.read.toLocaleString('en-US')} read, ${s.kept.toLocaleString('en-US')} kept, ${droppedTotal(s).toLocaleString('en-US')} dropped, ${rate.toLocaleString('en-US')} records/s`;
    if (tty) {
      io.stderr(`\r${line}\x1b[K`);
      drawn = true;
    } else io.stderr(`${line}\n`);
  };
  const clearProgress = (): void => {
    if (drawn) io.stderr('\r\x1b[K');
    drawn = false;
  };
  let code: number = EXIT.ok;
  // A write error (EPIPE when the reader of stdout went away) arrives as an event, maybe after write() returned.
  let outError: Error | undefined;
  const onOutError = (err: Error): void => {
    outError ??= err;
  };
  streams.stdout.on('error', onOutError);
  try {
    for await (const w of readJsonlWindows(streams.stdin, { windowSize: opts.window, onBadLine: opts.onBadLine })) {
      if (w.badLines.length > 0) {
        filter.countBadLines(w.badLines.length);
        if (opts.onBadLine === 'skip') {
          for (const n of w.badLines) {
            if (badReported < MAX_BAD_LINE_REPORTS) {
              clearProgress();
              io.stderr(`warning: line ${n} is not valid JSON; skipped\n`);
            } else if (badReported === MAX_BAD_LINE_REPORTS) {
              io.stderr(`warning: more bad lines; only their count is reported below\n`);
            }
            badReported++;
          }
        }
      }
      if (w.count > 0) {
        await filter.decide(w.values, w.count, verdicts);
        const out = keptBytes(w, verdicts);
        if (out !== null) await writeWithBackpressure(streams.stdout, out);
        if (outError !== undefined) throw outError;
      }
      if (opts.progress) {
        const now = performance.now();
        if (now - lastProgress >= every) {
          lastProgress = now;
          progress();
        }
      }
    }
  } catch (err) {
    clearProgress();
    if (err instanceof BadLineError) {
      io.stderr(`error: line ${err.lineNumber} is not valid JSON; stopped (use --on-bad-line skip to count and skip such lines)\n`);
      code = EXIT.failure;
    } else if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
      io.stderr('error: stdout was closed before the end of the input\n');
      code = EXIT.failure;
    } else {
      printSummary(io, filter.finish(), opts, 'incomplete');
      throw err;
    }
  }
  clearProgress();
  printSummary(io, filter.finish(), opts, code === EXIT.ok ? 'complete' : 'incomplete');
  // The listener stays: a late EPIPE while the process drains stdout must not crash it.
  return code;
}

function printSummary(io: CliIo, s: FilterSummary, opts: FilterOptions, status: 'complete' | 'incomplete'): void {
  if (opts.json === true) {
    io.stderr(JSON.stringify({ status, purpose: opts.purpose, ...s }) + '\n');
    return;
  }
  const rate = s.durationMs > 0 ? Math.round((s.read / s.durationMs) * 1000) : 0;
  io.stderr(
    `filter ${status}: ${s.read} read, ${s.kept} kept, ${droppedTotal(s)} dropped${dropText(s)}; ${s.lookups} lookups of ${s.subjectsLookedUp} subjects (${s.lookupMs} ms); ${s.durationMs} ms, ${rate} records/s\n`,
  );
}
