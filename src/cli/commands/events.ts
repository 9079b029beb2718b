import { Command, InvalidArgumentError, Option } from 'commander';
import { CustodianError, EVENT_TYPE_KEYS, isIsoInstant } from '../../core/index.js';
import { DELIVERY_STATUSES, type DeliveryStatus, type ReplayFrom, type SubscriptionInput } from '../../events/index.js';
import { withCustodian, withStoreOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);

function positive(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`a whole number from 1 to ${max}`);
    return n;
  };
}

/** `--from`: an outbox position (whole number ≥ 1) or a UTC ISO-8601 instant. */
function parseFrom(value: string): ReplayFrom {
  if (/^\d{1,15}$/.test(value) && Number(value) >= 1) return { fromSeq: Number(value) };
  if (isIsoInstant(value)) return { fromTime: new Date(Date.parse(value)).toISOString() };
  throw new InvalidArgumentError('an outbox position (e.g. 1200) or an ISO-8601 instant (e.g. 2026-11-22T10:00:00.000Z)');
}

/** The target kind of a URL: http(s) → webhook, nats → NATS JetStream, redis(s) → Redis Streams. */
function kindOf(url: string): 'webhook' | 'nats' | 'redis' {
  const scheme = /^([a-z]+):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') return 'webhook';
  if (scheme === 'nats') return 'nats';
  if (scheme === 'redis' || scheme === 'rediss') return 'redis';
  throw new CustodianError('CST_ERR_VALIDATION', '--url must be an http(s)://, nats:// or redis:// URL', { details: { issues: [{ path: 'url', message: 'unsupported scheme' }] } });
}

interface CreateOptions extends StoreOptions {
  readonly name: string;
  readonly url: string;
  readonly secret?: string;
  readonly types?: string[];
  readonly purposes?: string[];
  readonly maxAttempts?: number;
  readonly timeoutMs?: number;
  readonly stream?: string;
  readonly subjectPrefix?: string;
  readonly maxLen?: number;
}

/** `custodian events …`: subscriptions, the delivery log, replays, and the outbox. */
export function eventsCommand(io: CliIo): Command {
  const events = new Command('events').description('event subscriptions (webhooks, NATS JetStream, Redis Streams), deliveries, replays and the outbox (docs/propagation.md)');
  const subs = events.command('subscriptions').description('create, list and delete event subscriptions');

  withStoreOptions(subs.command('list').description('list live subscriptions (never secrets)'))
    .option('--json', 'print JSON')
    .action(async (opts: StoreOptions & { json?: boolean }) => {
      const all = await withCustodian(io, opts, (c) => c.subscriptions.list());
      if (opts.json === true) return printJson(io, { subscriptions: all });
      if (all.length === 0) return io.stdout('no subscriptions\n');
      for (const s of all) {
        const filter = [s.types.length > 0 ? `types=${s.types.join(',')}` : '', s.purposes.length > 0 ? `purposes=${s.purposes.join(',')}` : ''].filter(Boolean).join(' ');
        io.stdout(`${s.id}  ${s.kind.padEnd(7)} ${s.name}  ${s.target.url}${filter ? `  ${filter}` : ''}${s.disabledAt === null ? '' : `  DISABLED (${s.disabledReason ?? ''})`}\n`);
      }
    });

  withStoreOptions(subs.command('create').description('subscribe a URL to events; a webhook secret is generated when not given and printed once'))
    .requiredOption('--name <name>', 'what the subscription is for')
    .requiredOption('--url <url>', 'https://… (signed webhook), nats://… (JetStream) or redis://… (stream)')
    .option('--secret <secret>', 'webhook HMAC secret (16+ characters); generated when absent')
    .option('--types <list>', `comma-separated event types (default all): ${EVENT_TYPE_KEYS.join(', ')}`, list)
    .option('--purposes <list>', 'comma-separated purpose keys (default all)', list)
    .option('--max-attempts <n>', 'attempts before dead-lettering (default 12)', positive(100))
    .option('--timeout-ms <n>', 'webhook request timeout in ms, at most 30000 (default 10000)', positive(30_000))
    .option('--stream <name>', 'NATS or Redis stream name')
    .option('--subject-prefix <prefix>', 'NATS subject prefix')
    .option('--max-len <n>', 'Redis stream approximate MAXLEN', positive(Number.MAX_SAFE_INTEGER))
    .action(async (opts: CreateOptions) => {
      const kind = kindOf(opts.url);
      const target =
        kind === 'webhook'
          ? { kind, url: opts.url, ...(opts.secret === undefined ? {} : { secret: opts.secret }), ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }) }
          : kind === 'nats'
            ? { kind, url: opts.url, ...(opts.stream === undefined ? {} : { stream: opts.stream }), ...(opts.subjectPrefix === undefined ? {} : { subjectPrefix: opts.subjectPrefix }) }
            : { kind, url: opts.url, ...(opts.stream === undefined ? {} : { stream: opts.stream }), ...(opts.maxLen === undefined ? {} : { maxLen: opts.maxLen }) };
      const input = {
        name: opts.name,
        target,
        ...(opts.types === undefined ? {} : { types: opts.types }),
        ...(opts.purposes === undefined ? {} : { purposes: opts.purposes }),
        ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
      } as SubscriptionInput;
      printJson(io, await withCustodian(io, opts, (c) => c.subscriptions.create(input, 'cli:operator')));
    });

  withStoreOptions(subs.command('delete').description('delete a subscription (nothing more is delivered; its delivery log stays)'))
    .argument('<id>', 'subscription id')
    .action(async (id: string, opts: StoreOptions) => {
      await withCustodian(io, opts, (c) => c.subscriptions.delete(id, 'cli:operator'));
      printJson(io, { id, deleted: true });
    });

  withStoreOptions(events.command('deliveries').description("a subscription's deliveries, newest first"))
    .argument('<subscriptionId>', 'subscription id')
    .addOption(new Option('--status <status>', 'only this status').choices(DELIVERY_STATUSES))
    .option('--limit <n>', 'at most this many (default 100)', positive(1000), 100)
    .option('--attempts', 'print the attempt log instead (every try, with HTTP status and error)')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: StoreOptions & { status?: DeliveryStatus; limit: number; attempts?: boolean; json?: boolean }) => {
      if (opts.attempts === true) {
        const attempts = await withCustodian(io, opts, (c) => c.subscriptions.attempts(id, { limit: opts.limit }));
        if (opts.json === true) return printJson(io, { attempts });
        for (const a of attempts) io.stdout(`${a.at}  #${a.seq} ${a.eventId}  attempt ${a.attempt}  ${a.outcome}${a.httpStatus === null ? '' : ` HTTP ${a.httpStatus}`}${a.error === null ? '' : `  ${a.error}`}  ${a.durationMs} ms\n`);
        return;
      }
      const deliveries = await withCustodian(io, opts, (c) => c.subscriptions.deliveries(id, { limit: opts.limit, ...(opts.status === undefined ? {} : { status: opts.status }) }));
      if (opts.json === true) return printJson(io, { deliveries });
      if (deliveries.length === 0) return io.stdout('no deliveries\n');
      for (const d of deliveries) {
        const when = d.status === 'delivered' ? `delivered ${d.deliveredAt}` : d.status === 'pending' ? `next ${d.nextAttemptAt}` : `dead ${d.updatedAt}`;
        io.stdout(`#${d.seq} ${d.eventId}  ${d.status.padEnd(9)} attempts ${d.attempts}  ${when}${d.lastError === null ? '' : `  ${d.lastError}`}\n`);
      }
    });

  withStoreOptions(events.command('replay').description('deliver past events again to a subscription (dead letters included; same event ids)'))
    .requiredOption('--subscription <id>', 'subscription id')
    .requiredOption('--from <position|instant>', 'first outbox position (e.g. 1200) or instant (ISO-8601), inclusive', parseFrom)
    .action(async (opts: StoreOptions & { subscription: string; from: ReplayFrom }) => {
      const queued = await withCustodian(io, opts, (c) => c.dispatcher.replay(opts.subscription, opts.from, 'cli:operator'));
      printJson(io, { subscription: opts.subscription, ...opts.from, queued });
    });

  withStoreOptions(events.command('tail').description('print outbox events as JSON lines, in order'))
    .option('--after <position>', 'start after this outbox position (default: the last 20 events)', (v) => {
      if (!/^\d{1,15}$/.test(v)) throw new InvalidArgumentError('an outbox position (whole number ≥ 0)');
      return Number(v);
    })
    .option('--limit <n>', 'at most this many (default 1000)', positive(100_000), 1000)
    .action(async (opts: StoreOptions & { after?: number; limit: number }) => {
      await withCustodian(io, opts, async (c) => {
        let after = opts.after ?? Math.max(0, (await c.outbox.head()) - 20);
        let left = opts.limit;
        while (left > 0) {
          const page = await c.outbox.read(after, Math.min(left, 1000));
          for (const e of page) io.stdout(JSON.stringify(e) + '\n');
          if (page.length === 0) break;
          left -= page.length;
          after = Number(page.at(-1)!.sequence);
        }
      });
    });
  return events;
}
