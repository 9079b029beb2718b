import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { CustodianError, RESTRICTION_LIFT_REASON_KEYS, REQUEST_TYPES, type RequestType, type RestrictionLiftReason } from '../../core/index.js';
import { REQUEST_STATUSES, type RequestStatus } from '../../rights/engine/lifecycle.js';
import { workerId } from '../../rights/engine/request-runner.js';
import { readerOf, withCustodian, withReaderOptions, withStoreOptions, type ReaderOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';
import { stepProgress } from '../progress.js';
import { startRetentionScheduler } from '../../retention/index.js';
import { BreachDetector, startBreachMonitoring } from '../../breach/index.js';

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
      .option('--correct <field=value...>', 'rectification: the corrected value of a field, e.g. shop_db.customers.phone=+442079460001')
      .option('--authenticated', 'the person is logged in to your application: no verification'),
  ).action(async (opts: StoreOptions & { type: RequestType; jurisdiction: string; email?: string; phone?: string; userId?: string; identity?: string[]; correct?: string[]; authenticated?: boolean }) => {
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
    let corrections: Record<string, string> | undefined;
    for (const pair of opts.correct ?? []) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new CustodianError('CST_ERR_VALIDATION', '--correct takes field=value', { details: { issues: [{ path: 'correct', message: 'field=value expected' }] } });
      corrections = { ...corrections, [pair.slice(0, at)]: pair.slice(at + 1) };
    }
    printJson(
      io,
      await withCustodian(io, opts, (c) =>
        c.requests.create({ type: opts.type, jurisdiction: opts.jurisdiction, identities, authenticated: opts.authenticated === true, actor: ACTOR, ...(corrections ? { corrections } : {}) }),
      ),
    );
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

  withStoreOptions(request.command('run').description('execute a request in progress now, in this process (resumes where a stopped run left off)').argument('<id>', 'request id')).action(
    async (id: string, opts: StoreOptions) => {
      const progress = stepProgress(io);
      const report = await withCustodian(io, opts, (c) => c.runner.run(id, workerId(), { onStep: progress.onStep })).finally(() => progress.stop());
      if (report.status === 'busy') throw new CustodianError('CST_ERR_REQUEST_INVALID_TRANSITION', 'another worker is running this request now');
      printJson(io, await withCustodian(io, opts, (c) => c.requests.get(id)));
    },
  );

  // The package is personal data: every read is audited as request.package_downloaded, like GET /v1/requests/{id}/package.
  withReaderOptions(
    withStoreOptions(request.command('package').description('the access package of a completed access or portability request (JSON; audited)').argument('<id>', 'request id').option('--out <file>', 'write to this file (mode 0600) instead of stdout')),
  ).action(
    async (id: string, opts: StoreOptions & ReaderOptions & { out?: string }) => {
      const reader = readerOf(opts);
      const text = await withCustodian(io, opts, async (c) => {
        const t = await c.runner.package(id);
        await c.requests.recordDownload(id, reader.actor, undefined, reader.purpose);
        return t;
      });
      if (opts.out === undefined) io.stdout(text + '\n');
      else {
        await writeFile(opts.out, text + '\n', { mode: 0o600 });
        io.stderr(`wrote ${opts.out}\n`);
      }
    },
  );

  withStoreOptions(request.command('restriction').description('whether processing of a subject is restricted (GDPR Art. 18), since when and why').argument('<subjectId>', "the subject's user id")).action(
    async (subjectId: string, opts: StoreOptions) => {
      printJson(io, await withCustodian(io, opts, (c) => c.ledger.restriction(subjectId)));
    },
  );

  withStoreOptions(
    request
      .command('lift-restriction')
      .description('lift the restriction of processing of a subject (GDPR Art. 18(3): tell the subject first); idempotent')
      .argument('<subjectId>', "the subject's user id")
      .addOption(new Option('--reason <code>', 'why it ends (docs/requests.md)').choices([...RESTRICTION_LIFT_REASON_KEYS]).makeOptionMandatory()),
  ).action(async (subjectId: string, opts: StoreOptions & { reason: RestrictionLiftReason }) => {
    printJson(io, await withCustodian(io, opts, (c) => c.ledger.liftRestriction(subjectId, { reason: opts.reason, actor: ACTOR })));
  });

  withStoreOptions(request.command('certificate').description('the signed erasure certificate of an erasure request').argument('<id>', 'request id')).action(async (id: string, opts: StoreOptions) => {
    io.stdout((await withCustodian(io, opts, (c) => c.runner.certificate(id))) + '\n');
  });

  withStoreOptions(request.command('mail').description('the dev mail sink: messages in the outbox (codes included) — development only').option('--request <id>', 'only for this request')).action(
    async (opts: StoreOptions & { request?: string }) => {
      printJson(io, { messages: await withCustodian(io, opts, (c) => c.requests.outbox(opts.request)) });
    },
  );

  withStoreOptions(request.command('send-mail').description('send the unsent outbox messages through SMTP now (CUSTODIAN_SMTP_URL, CUSTODIAN_MAIL_FROM)')).action(async (opts: StoreOptions) => {
    printJson(
      io,
      await withCustodian(io, opts, (c) => {
        if (c.mailer === undefined) throw new CustodianError('CST_ERR_CONFIG', 'set CUSTODIAN_SMTP_URL to send mail', { details: { setting: 'CUSTODIAN_SMTP_URL' } });
        return c.requests.dispatchOutbox(c.mailer);
      }),
    );
  });

  return request;
}

/** `custodian worker`: runs requests in progress, oldest deadline first, until stopped (or once with --once). */
export function workerCommand(io: CliIo): Command {
  return withStoreOptions(
    new Command('worker')
      .description('execute data subject requests in progress; several workers may run at once (each request is leased to one)')
      .option('--once', 'run what is runnable now, then exit')
      .option('--poll-ms <ms>', 'pause between polls when idle', (v) => Number.parseInt(v, 10), 1000),
  ).action(async (opts: StoreOptions & { once?: boolean; pollMs: number }) => {
    if (!Number.isInteger(opts.pollMs) || opts.pollMs < 10) throw new CustodianError('CST_ERR_VALIDATION', '--poll-ms takes a whole number ≥ 10', { details: { issues: [{ path: 'pollMs', message: 'invalid' }] } });
    const stop = new AbortController();
    const onSignal = () => stop.abort(new CustodianError('CST_ERR_UNAVAILABLE', 'worker stopping'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const me = workerId();
    try {
      await withCustodian(io, opts, async (c) => {
        io.stderr(`${me} started\n`);
        // Retention on its cron schedule while the worker runs (not with --once); the lease keeps one run at a time.
        const retention = opts.once === true ? undefined : startRetentionScheduler(c, { onError: (err) => io.stderr(`retention: ${(err as { code?: string }).code ?? 'error'}\n`) });
        // Events go out to subscriptions while the worker runs; with --once, what is due is delivered once at the end.
        if (opts.once !== true) await c.dispatcher.start({ onError: (err) => io.stderr(`events: ${(err as { code?: string }).code ?? 'error'}\n`) });
        // Breach deadlines and detection rules every minute while the worker runs (not with --once).
        const breach =
          opts.once === true
            ? undefined
            : startBreachMonitoring({ incidents: c.incidents, detector: new BreachDetector({ store: c.store, clock: c.clock, incidents: c.incidents, apiKeys: c.apiKeys, dataMap: () => c.datamap.currentView() }) }, { onError: (err) => io.stderr(`breach: ${(err as { code?: string }).code ?? 'error'}\n`) });
        const tried = new Set<string>();
        let swept = 0;
        while (!stop.signal.aborted) {
          if (Date.now() - swept >= 60_000) {
            swept = Date.now();
            for (const a of await c.requests.sweepDeadlines()) io.stderr(`${a.id}: ${a.alert} (due ${a.dueAt})\n`);
          }
          if (c.mailer !== undefined) await c.requests.dispatchOutbox(c.mailer);
          // With --once, a request that failed transiently is not retried in the same pass.
          const ids = (await c.runner.runnable(10)).filter((id) => opts.once !== true || !tried.has(id));
          for (const id of ids) {
            tried.add(id);
            if (stop.signal.aborted) break;
            const progress = stepProgress(io, `${id} `);
            try {
              const report = await c.runner.run(id, me, { signal: stop.signal, onStep: progress.onStep });
              progress.stop();
              io.stdout(JSON.stringify({ id, status: report.status, steps: report.steps }) + '\n');
            } catch (err) {
              progress.stop();
              if (stop.signal.aborted) break;
              const code = (err as { code?: string }).code ?? 'error';
              io.stderr(`${id}: ${code}\n`);
            }
          }
          if (opts.once === true && ids.length === 0) break;
          if (ids.length === 0) await new Promise((r) => setTimeout(r, opts.pollMs));
        }
        await retention?.stop();
        await breach?.stop();
        if (opts.once === true) {
          await c.ledger.announceExpiries();
          for (let r = await c.dispatcher.runOnce(); r.fannedOut + r.delivered + r.retried + r.dead > 0 && !stop.signal.aborted; r = await c.dispatcher.runOnce());
        }
        await c.dispatcher.stop();
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}
