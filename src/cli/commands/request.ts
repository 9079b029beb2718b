import { Command, Option } from 'commander';
import { CustodianError, REQUEST_TYPES, type RequestType } from '../../core/index.js';
import { REQUEST_STATUSES, type RequestStatus } from '../../rights/engine/lifecycle.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';

const ACTOR = 'cli:operator';

/** `custodian request …`: data subject requests from the shell. */
export function requestCommand(io: CliIo): Command {
  const request = new Command('request').description('data subject requests: intake, verification, approval, deadlines (docs/requests.md)');

  withStoreOptions(
    request
      .command('create')
      .description('receive a request; prints it (a verification code goes to the mail outbox unless --authenticated)')
      .addOption(new Option('--type <type>', 'request type').choices([...REQUEST_TYPES]).makeOptionMandatory())
      .requiredOption('--jurisdiction <code>', 'EU, UK, US-CA, BR, CA, …')
      .option('--email <address>', 'e-mail address of the person')
      .option('--phone <number>', 'phone number of the person')
      .option('--user-id <id>', "the person's account id in your application")
      .option('--identity <kind=value...>', 'further identities of kinds the data map declares, e.g. employee_id=E-17')
      .option('--authenticated', 'the person is logged in to your application: no verification'),
  ).action(async (opts: StoreOptions & { type: RequestType; jurisdiction: string; email?: string; phone?: string; userId?: string; identity?: string[]; authenticated?: boolean }) => {
    const identities: Record<string, string[]> = {};
    const add = (kind: string, value: string) => (identities[kind] = [...(identities[kind] ?? []), value]);
    if (opts.email !== undefined) add('email', opts.email);
    if (opts.phone !== undefined) add('phone_number', opts.phone);
    if (opts.userId !== undefined) add('user_id', opts.userId);
    for (const pair of opts.identity ?? []) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new CustodianError('CST_ERR_VALIDATION', '--identity takes kind=value', { details: { issues: [{ path: 'identity', message: 'kind=value expected' }] } });
      add(pair.slice(0, at), pair.slice(at + 1));
    }
    printJson(io, await withCustodian(io, opts, (c) => c.requests.create({ type: opts.type, jurisdiction: opts.jurisdiction, identities, authenticated: opts.authenticated === true, actor: ACTOR })));
  });

  withStoreOptions(
    request
      .command('list')
      .description('requests, soonest deadline first')
      .addOption(new Option('--status <status>', 'only this status').choices([...REQUEST_STATUSES]))
      .addOption(new Option('--type <type>', 'only this type').choices([...REQUEST_TYPES]))
      .option('--overdue', 'only open requests past their deadline')
      .option('--due-within-days <n>', 'only open requests due within n days', (v) => Number.parseInt(v, 10)),
  ).action(async (opts: StoreOptions & { status?: RequestStatus; type?: RequestType; overdue?: boolean; dueWithinDays?: number }) => {
    if (opts.dueWithinDays !== undefined && !(Number.isInteger(opts.dueWithinDays) && opts.dueWithinDays >= 0)) {
      throw new CustodianError('CST_ERR_VALIDATION', '--due-within-days takes a whole number', { details: { issues: [{ path: 'dueWithinDays', message: 'invalid' }] } });
    }
    const list = await withCustodian(io, opts, (c) =>
      c.requests.list({
        ...(opts.status !== undefined ? { status: opts.status } : {}),
        ...(opts.type !== undefined ? { type: opts.type } : {}),
        ...(opts.overdue === true ? { overdue: true } : {}),
        ...(opts.dueWithinDays !== undefined ? { dueWithinMs: opts.dueWithinDays * 86_400_000 } : {}),
      }),
    );
    printJson(io, { requests: list });
  });

  withStoreOptions(request.command('status').description('a request with its lifecycle history').argument('<id>', 'request id')).action(async (id: string, opts: StoreOptions) => {
    printJson(io, await withCustodian(io, opts, async (c) => ({ ...(await c.requests.get(id)), history: await c.requests.history(id) })));
  });

  withStoreOptions(request.command('verify').description('verify the identity with the one-time code').argument('<id>', 'request id').argument('<code>', 'six digits')).action(
    async (id: string, code: string, opts: StoreOptions) => {
      printJson(io, await withCustodian(io, opts, (c) => c.requests.verify(id, code, ACTOR)));
    },
  );

  withStoreOptions(request.command('approve').description('approve a request waiting for approval').argument('<id>', 'request id').option('--reason <text>', 'why')).action(
    async (id: string, opts: StoreOptions & { reason?: string }) => {
      printJson(io, await withCustodian(io, opts, (c) => c.requests.approve(id, ACTOR, opts.reason)));
    },
  );

  withStoreOptions(request.command('reject').description('reject a request, with the reason given to the person').argument('<id>', 'request id').requiredOption('--reason <text>', 'why')).action(
    async (id: string, opts: StoreOptions & { reason: string }) => {
      printJson(io, await withCustodian(io, opts, (c) => c.requests.reject(id, ACTOR, opts.reason)));
    },
  );

  withStoreOptions(request.command('extend').description('extend the deadline once, as the regime allows').argument('<id>', 'request id').requiredOption('--reason <text>', 'why (told to the person)')).action(
    async (id: string, opts: StoreOptions & { reason: string }) => {
      printJson(io, await withCustodian(io, opts, (c) => c.requests.extend(id, ACTOR, opts.reason)));
    },
  );

  withStoreOptions(request.command('mail').description('the dev mail sink: messages in the outbox (codes included) — development only').option('--request <id>', 'only for this request')).action(
    async (opts: StoreOptions & { request?: string }) => {
      printJson(io, { messages: await withCustodian(io, opts, (c) => c.requests.outbox(opts.request)) });
    },
  );

  return request;
}
