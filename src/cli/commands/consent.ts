import { Command, InvalidArgumentError, Option } from 'commander';
import { INPUT_METHODS, type Decision, type InputMethod } from '../../ledger/index.js';
import { readerOf, withCustodian, withReaderOptions, withStoreOptions, type ReaderOptions, type StoreOptions } from '../context.js';
import { EXIT, printJson, type CliIo } from '../io.js';

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('a whole number from 1 to 1000');
  return n;
}

interface DecisionOptions extends StoreOptions {
  readonly jurisdiction?: string;
  readonly noticeVersion?: string;
  readonly expiresAt?: string;
  readonly method: InputMethod;
  readonly idempotencyKey?: string;
  readonly actor: string;
}

/** `custodian consent …`: record and inspect decisions from the shell. */
export function consentCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  const consent = new Command('consent').description('record and inspect consent');
  const decisions: Array<[string, Decision, string]> = [
    ['grant', 'granted', 'record that the subject granted consent for a purpose'],
    ['deny', 'denied', 'record that the subject refused consent for a purpose'],
    ['withdraw', 'withdrawn', 'record that the subject withdrew consent for a purpose'],
  ];
  for (const [name, decision, description] of decisions) {
    withStoreOptions(consent.command(name).description(description))
      .argument('<subjectId>', "the application's opaque user id")
      .argument('<purpose>', 'purpose key, e.g. analytics.reporting')
      .option('--jurisdiction <code>', 'jurisdiction code, e.g. EU, UK, US-CA')
      .option('--notice-version <version>', 'version of the notice shown')
      .option('--expires-at <instant>', 'ISO-8601 expiry (grants default to the purpose’s expiry)')
      .addOption(new Option('--method <method>', 'collection method').choices(INPUT_METHODS).default('cli'))
      .option('--idempotency-key <key>', 'records once however often repeated')
      .option('--actor <name>', 'who records, for the ledger', 'cli')
      .action(async (subjectId: string, purpose: string, opts: DecisionOptions) => {
        const result = await withCustodian(io, opts, (c) =>
          c.ledger.record(
            [
              {
                subjectId,
                purpose,
                decision,
                method: opts.method,
                jurisdiction: opts.jurisdiction ?? null,
                noticeVersion: opts.noticeVersion ?? null,
                expiresAt: opts.expiresAt ?? null,
                idempotencyKey: opts.idempotencyKey ?? null,
              },
            ],
            { actor: `cli:${opts.actor}` },
          ),
        );
        printJson(io, result);
      });
  }
  withStoreOptions(consent.command('status').description('current state of every purpose for a subject'))
    .argument('<subjectId>')
    .action(async (subjectId: string, opts: StoreOptions) => {
      printJson(io, { subjectId, purposes: await withCustodian(io, opts, (c) => c.ledger.state(subjectId)) });
    });
  // Evidence is personal data: audited as consent.history.read, like GET /v1/subjects/{subjectId}/consent/history.
  withReaderOptions(withStoreOptions(consent.command('history').description('events of a subject, and the state as of an instant (audited)')))
    .argument('<subjectId>')
    .option('--purpose <key>', 'only this purpose')
    .option('--as-of <instant>', 'ISO-8601 instant: events up to it and the state then')
    .option('--limit <n>', 'events per page (1..1000)', parseLimit, 100)
    .option('--after <cursor>', 'nextCursor of the previous page')
    .action(async (subjectId: string, opts: StoreOptions & ReaderOptions & { purpose?: string; asOf?: string; limit: number; after?: string }) => {
      const limit = opts.limit;
      const result = await withCustodian(io, opts, (c) =>
        c.ledger.history(subjectId, {
          ...(opts.purpose ? { purpose: opts.purpose } : {}),
          ...(opts.asOf ? { asOf: opts.asOf } : {}),
          ...(opts.after ? { after: opts.after } : {}),
          limit,
        }, readerOf(opts)),
      );
      printJson(io, result);
    });
  withStoreOptions(consent.command('check').description(`may the subject's data be processed for the purpose? exit ${EXIT.ok} = allowed, ${EXIT.notAllowed} = not allowed`))
    .argument('<subjectId>')
    .argument('<purpose>')
    .action(async (subjectId: string, purpose: string, opts: StoreOptions) => {
      const result = await withCustodian(io, opts, (c) => c.ledger.check(subjectId, purpose));
      printJson(io, result);
      setExitCode(result.allowed ? EXIT.ok : EXIT.notAllowed);
    });
  return consent;
}
