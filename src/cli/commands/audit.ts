import { readFile, writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { TREES, type Tree } from '../../audit/index.js';
import { CustodianError, isIsoInstant } from '../../core/index.js';
import { verifyBundle } from '../../verify/index.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { EXIT, printJson, type CliIo } from '../io.js';

const treeOption = () => new Option('--tree <tree>', 'audit entries or consent events').choices([...TREES, 'all']).default('all');

function instantArg(value: string): string {
  if (!isIsoInstant(value)) throw new InvalidArgumentError('an ISO-8601 instant with a time zone');
  return value;
}

/** `custodian audit …`: verify the logs, export heads and entries, check proof bundles offline. */
export function auditCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  const audit = new Command('audit').description('tamper-evident audit log and consent tree');
  withStoreOptions(audit.command('verify').description(`recompute the logs from the store; exit ${EXIT.verifyFailed} and the first bad position if anything was changed`))
    .addOption(treeOption())
    .option('--checkpoint <file>', 'an exported older checkpoint: prove the log only grew since')
    .action(async (opts: StoreOptions & { tree: Tree | 'all'; checkpoint?: string }) => {
      const checkpoint = opts.checkpoint === undefined ? undefined : await readText(opts.checkpoint);
      const trees: Tree[] = opts.tree === 'all' ? [...TREES] : [opts.tree];
      const reports = await withCustodian(io, opts, async (c) => {
        const out = [];
        for (const tree of trees) {
          // An exported checkpoint names its tree in its origin line.
          const cp = checkpoint !== undefined && checkpoint.split('\n')[0]?.endsWith(`/${tree}`) ? checkpoint : undefined;
          await c.audit.integrate(tree);
          out.push(await c.audit.verify(tree, cp === undefined ? {} : { checkpoint: cp }));
        }
        return out;
      });
      printJson(io, { ok: reports.every((r) => r.ok), reports });
      if (!reports.every((r) => r.ok)) setExitCode(EXIT.verifyFailed);
    });
  withStoreOptions(audit.command('checkpoint').description('sign and print (or export) the latest tree head'))
    .addOption(new Option('--tree <tree>', 'which tree').choices([...TREES]).default('audit'))
    .option('--out <file|url>', 'write the checkpoint to a file, or POST it (text/plain) to an http(s) URL for anchoring')
    .action(async (opts: StoreOptions & { tree: Tree; out?: string }) => {
      const head = await withCustodian(io, opts, async (c) => ({ ...(await c.audit.checkpoint(opts.tree)), verifierKey: c.audit.verifierKey(opts.tree) }));
      if (opts.out === undefined) {
        io.stdout(head.checkpoint);
        return;
      }
      if (/^https?:\/\//.test(opts.out)) {
        const res = await fetch(opts.out, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: head.checkpoint, signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new CustodianError('CST_ERR_UNAVAILABLE', 'the anchoring endpoint refused the checkpoint', { details: { status: res.status } });
      } else {
        await writeFile(opts.out, head.checkpoint, { mode: 0o644 });
      }
      printJson(io, { tree: head.tree, size: head.size, rootHash: head.rootHash, verifierKey: head.verifierKey, out: opts.out });
    });
  audit
    .command('verify-bundle')
    .description(`check a proof bundle offline with the log's verifier key; no store needed (exit ${EXIT.verifyFailed} if it does not verify)`)
    .argument('<file>', 'bundle JSON (the `bundle` of GET /v1/consent/events/{id}/proof, or the whole answer)')
    .requiredOption('--public-key <key>', 'the verifier key, as printed by `custodian audit checkpoint --out` or GET /v1/audit/checkpoint')
    .action(async (file: string, opts: { publicKey: string }) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readText(file));
      } catch (err) {
        if (err instanceof CustodianError) throw err;
        throw new CustodianError('CST_ERR_VALIDATION', 'the bundle file is not JSON', { details: { file } });
      }
      const bundle = (parsed as { bundle?: unknown }).bundle ?? parsed;
      const result = verifyBundle(bundle as never, opts.publicKey);
      if (result.ok) {
        printJson(io, { ok: true, index: result.index, treeSize: result.checkpoint.size, origin: result.checkpoint.origin, leaf: JSON.parse(result.leaf.toString('utf8')) as unknown });
      } else {
        printJson(io, { ok: false, reason: result.reason });
        setExitCode(EXIT.verifyFailed);
      }
    });
  withStoreOptions(audit.command('export').description('audit entries as JSON lines, oldest first'))
    .option('--from <instant>', 'from this time', instantArg)
    .option('--to <instant>', 'up to this time', instantArg)
    .action(async (opts: StoreOptions & { from?: string; to?: string }) => {
      await withCustodian(io, opts, async (c) => {
        const lines: string[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await c.audit.list({ ...(opts.from ? { from: opts.from } : {}), ...(opts.to ? { to: opts.to } : {}), ...(cursor ? { cursor } : {}), limit: 1000 });
          lines.push(...page.entries.map((e) => JSON.stringify(e)));
          if (page.nextCursor === null) break;
          cursor = page.nextCursor;
        }
        // Pages come newest first; an export reads oldest first.
        for (const line of lines.reverse()) io.stdout(line + '\n');
      });
    });
  return audit;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CustodianError('CST_ERR_VALIDATION', 'cannot read the file', { details: { file, reason: (err as NodeJS.ErrnoException).code } });
  }
}
