import { InvalidArgumentError, Option, type Command } from 'commander';
import { createCustodian, loadConfig, type Custodian, type ConfigOverrides } from '../app/index.js';
import { isPurposeKey } from '../core/index.js';
import type { CliIo } from './io.js';

/** Options every store-touching command takes. */
export interface StoreOptions {
  readonly db?: string;
  readonly dataDir?: string;
}

/** Adds `--db` and `--data-dir` to a command. */
export function withStoreOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--db <url>', 'store URL: sqlite:<path> or postgres://… (env CUSTODIAN_DB; default sqlite:.custodian/custodian.db)'))
    .addOption(new Option('--data-dir <dir>', 'folder of local state: dev master key, default SQLite file (env CUSTODIAN_DATA_DIR)'));
}

/** Opens Custodian for one command and closes it afterwards. */
export async function withCustodian<T>(io: CliIo, opts: StoreOptions, fn: (c: Custodian) => Promise<T>, extra: ConfigOverrides = {}): Promise<T> {
  const overrides: ConfigOverrides = { ...extra, ...(opts.db ? { dbUrl: opts.db } : {}), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) };
  const custodian = await createCustodian(loadConfig(io.env, { logLevel: 'warn', ...overrides }), { watch: false });
  try {
    return await fn(custodian);
  } finally {
    await custodian.close();
  }
}

/** The longest `--actor` name: `cli:<name>` stays well within the audit log's 128-character actor. */
const ACTOR_NAME_MAX = 64;
const ACTOR_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses `--access-purpose`: one purpose key, by the rules of the `Custodian-Purpose` header
 * (docs/api.md#purpose-of-access; `statedPurpose` in server/auth.ts). A well-formed key that is not a configured
 * purpose is recorded as given, as over HTTP; an empty value is refused rather than read as "none stated".
 */
export function parseAccessPurpose(value: string): string {
  if (!isPurposeKey(value)) throw new InvalidArgumentError('It must be one purpose key such as essential.service (dotted lower-case words, at most 128 characters)');
  return value;
}

/** Parses `--actor`: a short name of the person or role reading, recorded as `cli:<name>`. */
export function parseActorName(value: string): string {
  if (value.length > ACTOR_NAME_MAX || !ACTOR_NAME_PATTERN.test(value)) throw new InvalidArgumentError(`It must be a name of letters, digits, '.', '_' and '-', at most ${ACTOR_NAME_MAX} characters, e.g. privacy-team`);
  return value;
}

/** Options of a command that hands out personal data: who reads it and why, for the audit entry of the read. */
export interface ReaderOptions {
  readonly actor: string;
  readonly accessPurpose?: string;
}

/**
 * Adds `--actor` and `--access-purpose` to a command that hands out personal data; {@link readerOf} turns them
 * into the context its service audits the read with. Both are checked while parsing, before anything is read.
 */
export function withReaderOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--actor <name>', 'who reads, recorded in the audit entry as cli:<name>').argParser(parseActorName).default('operator'))
    .addOption(new Option('--access-purpose <key>', 'why you read this personal data: a purpose key, recorded in the audit entry (as the Custodian-Purpose header over HTTP)').argParser(parseAccessPurpose));
}

/**
 * The actor and stated purpose of a read from the shell, shaped like the HTTP `readerOf` (without a request id).
 *
 * @example
 * await c.ledger.history(subjectId, {}, readerOf(opts)); // audits consent.history.read as cli:operator
 */
export function readerOf(opts: ReaderOptions): { readonly actor: string; readonly purpose?: string } {
  return { actor: `cli:${opts.actor}`, ...(opts.accessPurpose === undefined ? {} : { purpose: opts.accessPurpose }) };
}
