import { Command, InvalidArgumentError } from 'commander';
import { SCOPES, type Scope } from '../../auth/index.js';
import { CustodianError, isPurposeKey } from '../../core/index.js';
import { NORMALISER_NAMES, type Normaliser, type RewrapProgress } from '../../crypto/index.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';

function parseScopes(value: string): Scope[] {
  const scopes = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || bad.length > 0) throw new InvalidArgumentError(`scopes are a comma-separated list of ${SCOPES.join(', ')}`);
  return scopes as Scope[];
}

function parsePurposes(value: string): string[] {
  const purposes = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (purposes.length === 0 || purposes.some((p) => !isPurposeKey(p))) throw new InvalidArgumentError('purposes are a comma-separated list of purpose keys, e.g. essential.service,analytics.reporting');
  return purposes;
}

/** `custodian keys …`: API keys. */
export function keysCommand(io: CliIo): Command {
  const keys = new Command('keys').description('API keys (create, list, revoke) and encryption keys (status, shred, shreddings, indexes, define-index, rotate, rewrap, retire)');
  withStoreOptions(keys.command('create').description('mint an API key; the secret is printed once'))
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, parseScopes)
    .option('--name <name>', 'what the key is for', 'cli')
    .option('--purposes <list>', 'comma-separated purpose keys the key is declared for (configured purposes); its personal-data reads are judged against them', parsePurposes)
    .action(async (opts: StoreOptions & { scopes: Scope[]; name: string; purposes?: string[] }) => {
      printJson(io, await withCustodian(io, opts, (c) => c.apiKeys.create({ name: opts.name, scopes: opts.scopes, purposes: opts.purposes ?? [], createdBy: 'cli:operator' })));
    });
  withStoreOptions(keys.command('list').description('list API keys (never secrets)')).action(async (opts: StoreOptions) => {
    printJson(io, { apiKeys: await withCustodian(io, opts, (c) => c.apiKeys.list()) });
  });
  withStoreOptions(keys.command('revoke').description('revoke an API key'))
    .argument('<id>', 'key id')
    .action(async (id: string, opts: StoreOptions) => {
      const done = await withCustodian(io, opts, (c) => c.apiKeys.revoke(id));
      if (!done) throw new CustodianError('CST_ERR_NOT_FOUND', 'no such active API key');
      printJson(io, { id, revoked: true });
    });
  withStoreOptions(keys.command('status').description('master-key versions, data keys, shreddings, re-wrap progress')).action(async (opts: StoreOptions) => {
    printJson(io, await withCustodian(io, opts, (c) => c.keyring.status()));
  });
  withStoreOptions(keys.command('shred').description("crypto-shred a subject: destroy its data keys so its ciphertexts can never be read (backups too, if key-store backups expire per docs/security.md)"))
    .argument('<subjectId>', "the application's opaque user id")
    .requiredOption('--reason <text>', 'why (recorded in the tombstone), e.g. the erasure request id')
    .option('--actor <name>', 'who shreds, for the tombstone', 'operator')
    .action(async (subjectId: string, opts: StoreOptions & { reason: string; actor: string }) => {
      printJson(io, await withCustodian(io, opts, (c) => c.keyring.shredSubject(subjectId, { reason: opts.reason, actor: `cli:${opts.actor}` })));
    });
  withStoreOptions(keys.command('shreddings').description("a subject's crypto-shreddings (tombstones, oldest first) and the subject reference they are filed under"))
    .argument('<subjectId>', "the application's opaque user id")
    .action(async (subjectId: string, opts: StoreOptions) => {
      printJson(io, await withCustodian(io, opts, (c) => c.keyring.shredHistory(subjectId)));
    });
  withStoreOptions(keys.command('indexes').description('blind index definitions: the defined ones and the built-in ones (defined on first use)')).action(async (opts: StoreOptions) => {
    printJson(io, { indexes: await withCustodian(io, opts, (c) => c.keyring.listBlindIndexes()) });
  });
  withStoreOptions(keys.command('define-index').description('define a blind index (normaliser and output bits); an existing one cannot be changed'))
    .argument('<name>', 'lower-case name, e.g. customer_no')
    .requiredOption('--normaliser <name>', `one of ${NORMALISER_NAMES.join(', ')}`, parseNormaliser)
    .option('--bits <n>', 'output size: a multiple of 8 from 32 to 256 (see docs/security.md for sizing)', parseBits, 64)
    .action(async (name: string, opts: StoreOptions & { normaliser: Normaliser; bits: number }) => {
      printJson(io, await withCustodian(io, opts, (c) => c.keyring.defineBlindIndex({ name, normaliser: opts.normaliser, bits: opts.bits })));
    });
  withStoreOptions(keys.command('rotate').description('make a new master-key version primary, then re-wrap every data key under it'))
    .option('--no-rewrap', 'only register the new version; run `keys rewrap` later')
    .option('--batch-size <n>', 'keys per re-wrap transaction', parseBatch, 1000)
    .action(async (opts: StoreOptions & { rewrap: boolean; batchSize: number }) => {
      printJson(io, await withCustodian(io, opts, async (c) => {
        const rotated = await c.keyring.rotate();
        return { ...rotated, rewrap: opts.rewrap ? await runRewrap(io, c.keyring.rewrap({ batchSize: opts.batchSize })) : null };
      }));
    });
  withStoreOptions(keys.command('rewrap').description('re-wrap data keys under the primary master key; resumes an interrupted job'))
    .option('--batch-size <n>', 'keys per re-wrap transaction', parseBatch, 1000)
    .action(async (opts: StoreOptions & { batchSize: number }) => {
      printJson(io, await withCustodian(io, opts, (c) => runRewrap(io, c.keyring.rewrap({ batchSize: opts.batchSize }))));
    });
  withStoreOptions(keys.command('retire').description('retire a master-key version (refused while primary or still used)'))
    .argument('<version>', 'master-key version', parseVersion)
    .action(async (version: number, opts: StoreOptions) => {
      await withCustodian(io, opts, (c) => c.keyring.retire(version));
      printJson(io, { version, retired: true });
    });
  return keys;
}

function parseNormaliser(value: string): Normaliser {
  if (!(NORMALISER_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`one of ${NORMALISER_NAMES.join(', ')}`);
  return value as Normaliser;
}

function parseBits(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 32 || n > 256 || n % 8 !== 0) throw new InvalidArgumentError('a multiple of 8 from 32 to 256');
  return n;
}

function parseBatch(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new InvalidArgumentError('a whole number from 1 to 10000');
  return n;
}

function parseVersion(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a master-key version number');
  return n;
}

/** Drives a re-wrap job, reporting progress on stderr, and returns its last progress. */
async function runRewrap(io: CliIo, job: AsyncIterable<RewrapProgress>): Promise<RewrapProgress | null> {
  let last: RewrapProgress | null = null;
  for await (const p of job) {
    last = p;
    io.stderr(`re-wrap: ${p.processed}/${p.total}${p.done ? ' done' : ''}\n`);
  }
  return last;
}
