import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Command, Option } from 'commander';
import { INCIDENT_STATUSES, type IncidentInput, type IncidentPatch, type IncidentStatus, type ScopeProgress } from '../../breach/index.js';
import { BREACH_AUDIENCES, BREACH_OUTCOMES, BREACH_STAGES, CustodianError, type BreachAudience, type BreachOutcome, type BreachStage } from '../../core/index.js';
import { readerOf, withCustodian, withReaderOptions, withStoreOptions, type ReaderOptions, type StoreOptions } from '../context.js';
import { printJson, type CliIo } from '../io.js';

const ACTOR = 'cli:operator';

interface IncidentFlags {
  title?: string;
  description?: string;
  detectedAt?: string;
  occurredAt?: string;
  system?: string[];
  collection?: string[];
  category?: string[];
  affected?: string;
  records?: string;
  encrypted?: boolean;
  keysCompromised?: boolean;
  nis2?: boolean;
  cause?: string;
  containment?: string[];
  jurisdiction?: string[];
}

/** A whole number from a flag; anything else goes to the service as is, which refuses it with the path. */
function count(value: string | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new CustodianError('CST_ERR_INCIDENT_INVALID', `--${path} takes a whole number`, { details: { issues: [{ path, message: 'must be a non-negative whole number' }] } });
  return n;
}

function incidentFields(o: IncidentFlags): Omit<IncidentPatch, 'status' | 'note'> {
  const affectedCount = count(o.affected, 'affectedCount');
  const recordsCount = count(o.records, 'recordsCount');
  return {
    ...(o.title !== undefined ? { title: o.title } : {}),
    ...(o.description !== undefined ? { description: o.description } : {}),
    ...(o.detectedAt !== undefined ? { detectedAt: o.detectedAt } : {}),
    ...(o.occurredAt !== undefined ? { occurredAt: o.occurredAt } : {}),
    ...(o.system !== undefined ? { systems: o.system } : {}),
    ...(o.collection !== undefined ? { collections: o.collection } : {}),
    ...(o.category !== undefined ? { dataCategories: o.category } : {}),
    ...(affectedCount !== undefined ? { affectedCount } : {}),
    ...(recordsCount !== undefined ? { recordsCount } : {}),
    ...(o.encrypted !== undefined ? { encrypted: o.encrypted } : {}),
    ...(o.keysCompromised !== undefined ? { keysCompromised: o.keysCompromised } : {}),
    ...(o.nis2 !== undefined ? { nis2: o.nis2 } : {}),
    ...(o.cause !== undefined ? { cause: o.cause } : {}),
    ...(o.containment !== undefined ? { containmentActions: o.containment } : {}),
    ...(o.jurisdiction !== undefined ? { jurisdictions: o.jurisdiction } : {}),
  };
}

function withIncidentOptions(cmd: Command): Command {
  return cmd
    .option('--description <text>', 'what happened (may hold personal data: stored sealed, never logged)')
    .option('--detected-at <instant>', 'when you became aware (GDPR Art. 33(1): the 72 h run from it); default now')
    .option('--occurred-at <instant>', 'when the breach happened, if known')
    .option('--system <key...>', 'affected systems of the data map')
    .option('--collection <dataset.collection...>', 'affected collections of the data map')
    .option('--category <key...>', 'fideslang data categories (default: those of the collections)')
    .option('--affected <n>', 'estimated number of people affected')
    .option('--records <n>', 'approximate number of records')
    .option('--encrypted', 'the data was encrypted')
    .option('--keys-compromised', 'the key was compromised too')
    .option('--nis2', 'a significant incident under NIS2 (Art. 23)')
    .option('--cause <text>', 'the cause, as far as known')
    .option('--containment <action...>', 'containment measures taken or proposed')
    .option('--jurisdiction <code...>', 'jurisdictions of the people affected (default EU)');
}

/** Prints scoping progress on stderr, one line per collection and every 10,000 rows. */
function progressPrinter(io: CliIo): (p: ScopeProgress) => void {
  let lastRows = 0;
  return (p) => {
    if (p.skipped !== undefined) io.stderr(`scoping ${p.collection}: skipped (${p.skipped})\n`);
    else if (p.done) io.stderr(`scoping ${p.collection}: ${p.rows} rows read\n`);
    else if (p.rows - lastRows >= 10_000) io.stderr(`scoping ${p.collection}: ${p.rows} rows…\n`);
    lastRows = p.done ? 0 : p.rows - lastRows >= 10_000 ? p.rows : lastRows;
  };
}

/** `custodian incident …`: personal data breach response from the shell (docs/breach.md). */
export function incidentCommand(io: CliIo): Command {
  const incident = new Command('incident').description('personal data breach response: incidents, risk assessment, deadlines, scoping, notifications (docs/breach.md)');

  withStoreOptions(withIncidentOptions(incident.command('create').description('record an incident; prints it with its assessment and deadlines').requiredOption('--title <text>', 'a short summary (no personal data)')).addOption(new Option('--suspected', 'record it as suspected (not yet confirmed)'))).action(
    async (opts: StoreOptions & IncidentFlags & { suspected?: boolean }) => {
      const input = { ...incidentFields(opts), title: opts.title!, ...(opts.suspected ? { status: 'suspected' as const } : {}) } as IncidentInput;
      printJson(io, await withCustodian(io, opts, (c) => c.incidents.create(input, { actor: ACTOR })));
    },
  );

  // Incidents' free text (description, cause, containment, notes) may hold personal data: reads are audited as
  // incident.narrative_read, like GET /v1/incidents and GET /v1/incidents/{id}.
  withReaderOptions(withStoreOptions(incident.command('list').description('incidents, most recently detected first (audited)').addOption(new Option('--status <status>', 'only this status').choices([...INCIDENT_STATUSES])))).action(async (opts: StoreOptions & ReaderOptions & { status?: IncidentStatus }) => {
    const found = await withCustodian(io, opts, async (c) => {
      const list = await c.incidents.list(opts.status ? { status: opts.status } : {});
      await c.incidents.recordNarrativesRead(null, list.length, readerOf(opts));
      return list;
    });
    printJson(io, { incidents: found });
  });

  withReaderOptions(withStoreOptions(incident.command('show').description('an incident with its assessment, deadlines, timeline and notifications (audited)').argument('<id>', 'incident id'))).action(async (id: string, opts: StoreOptions & ReaderOptions) => {
    printJson(
      io,
      await withCustodian(io, opts, async (c) => {
        const view = await c.incidents.detail(id);
        await c.incidents.recordNarrativesRead(id, 1, readerOf(opts));
        return view;
      }),
    );
  });

  withStoreOptions(
    withIncidentOptions(incident.command('update').description('change an incident (every change is a timeline entry)').argument('<id>', 'incident id').option('--title <text>', 'a short summary'))
      .addOption(new Option('--status <status>', 'new status').choices([...INCIDENT_STATUSES]))
      .option('--note <text>', 'a note for the timeline (sealed)'),
  ).action(async (id: string, opts: StoreOptions & IncidentFlags & { status?: IncidentStatus; note?: string }) => {
    const patch: IncidentPatch = { ...incidentFields(opts), ...(opts.status ? { status: opts.status } : {}), ...(opts.note !== undefined ? { note: opts.note } : {}) };
    printJson(io, await withCustodian(io, opts, (c) => c.incidents.update(id, patch, { actor: ACTOR })));
  });

  withStoreOptions(
    incident
      .command('assess')
      .description('the risk assessment and deadlines; with --override, replace the outcome (a justification is required and audited)')
      .argument('<id>', 'incident id')
      .addOption(new Option('--override <outcome>', 'the outcome to record instead').choices([...BREACH_OUTCOMES]))
      .option('--justification <text>', 'why the computed outcome is overridden'),
  ).action(async (id: string, opts: StoreOptions & { override?: BreachOutcome; justification?: string }) => {
    if (opts.override !== undefined && (opts.justification === undefined || opts.justification.trim() === '')) {
      throw new CustodianError('CST_ERR_INCIDENT_INVALID', '--override needs --justification', { details: { issues: [{ path: 'justification', message: 'required' }] } });
    }
    const view = await withCustodian(io, opts, (c) => (opts.override === undefined ? c.incidents.get(id) : c.incidents.overrideAssessment(id, { outcome: opts.override, justification: opts.justification! }, { actor: ACTOR })));
    printJson(io, { id: view.id, assessment: view.assessment, deadlines: view.deadlines });
  });

  // Identities of the people affected: audited as incident.subjects_read, like GET /v1/incidents/{id}/affected-subjects.
  withReaderOptions(
    withStoreOptions(
      incident
        .command('affected')
        .description('the people affected, as NDJSON ({collection, identities}); personal data (audited): use --out to write a file (mode 0600); progress on stderr')
        .argument('<id>', 'incident id')
        .option('--from <instant>', 'only rows whose timestamp is at or after this')
        .option('--to <instant>', 'only rows whose timestamp is before this')
        .option('--out <file>', 'write the NDJSON to this file instead of stdout'),
    ),
  ).action(async (id: string, opts: StoreOptions & ReaderOptions & { from?: string; to?: string; out?: string }) => {
    const reader = readerOf(opts);
    await withCustodian(io, opts, async (c) => {
      const file = opts.out === undefined ? undefined : createWriteStream(opts.out, { mode: 0o600 });
      let n = 0;
      try {
        for await (const batch of c.incidents.affectedSubjects(id, { ...(opts.from ? { from: opts.from } : {}), ...(opts.to ? { to: opts.to } : {}), onProgress: progressPrinter(io), actor: reader.actor })) {
          const chunk = batch.map((s) => JSON.stringify(s) + '\n').join('');
          n += batch.length;
          if (file === undefined) io.stdout(chunk);
          else if (!file.write(chunk)) await once(file, 'drain');
        }
      } finally {
        if (file !== undefined) {
          file.end();
          await once(file, 'close');
        }
      }
      await c.incidents.recordSubjectsRead(id, n, reader);
      io.stderr(`${n} people found\n`);
    });
  });

  withStoreOptions(
    incident
      .command('notify')
      .description('queue notifications in the mail outbox: to the authority/CSIRT (--to) or to the people found by scoping; --draft prints the drafts only')
      .argument('<id>', 'incident id')
      .addOption(new Option('--audience <audience>', 'who is notified').choices([...BREACH_AUDIENCES]))
      .option('--to <address...>', 'authority or CSIRT e-mail addresses')
      .option('--jurisdiction <code>', 'the jurisdiction whose duty this meets (default: all)')
      .addOption(new Option('--stage <stage>', 'NIS2 stage').choices([...BREACH_STAGES]))
      .option('--draft', 'print the drafts (text and HTML) without sending'),
  ).action(async (id: string, opts: StoreOptions & { audience?: BreachAudience; to?: string[]; jurisdiction?: string; stage?: BreachStage; draft?: boolean }) => {
    if (opts.draft === true) {
      printJson(io, await withCustodian(io, opts, (c) => c.incidents.drafts(id)));
      return;
    }
    if (opts.audience === undefined) throw new CustodianError('CST_ERR_INCIDENT_INVALID', '--audience is required (or --draft)', { details: { issues: [{ path: 'audience', message: 'required' }] } });
    const audience = opts.audience;
    printJson(
      io,
      await withCustodian(io, opts, (c) =>
        c.incidents.notify(id, { audience, ...(opts.to ? { to: opts.to } : {}), ...(opts.jurisdiction ? { jurisdiction: opts.jurisdiction } : {}), ...(opts.stage ? { stage: opts.stage } : {}) }, { actor: ACTOR, onProgress: progressPrinter(io) }),
      ),
    );
  });

  withStoreOptions(incident.command('sweep').description('raise due escalations of notification deadlines once (serve and workers run this every minute)')).action(async (opts: StoreOptions) => {
    printJson(io, await withCustodian(io, opts, (c) => c.incidents.sweep()));
  });

  return incident;
}
