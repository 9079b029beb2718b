import { ApiKeyService } from '../auth/index.js';
import { AuditLog } from '../audit/index.js';
import { systemClock, type Clock, type Purpose } from '../core/index.js';
import { HttpKmsKekProvider, Keyring, LocalKekProvider, loadMasterKey, type KekProvider, type MasterKey } from '../crypto/index.js';
import { DatamapService, type Manifest } from '../datamap/index.js';
import { ConsentLedger, PurposeRegistry, offeredIn } from '../ledger/index.js';
import { EventDispatcher, EventSubscriptions, Outbox, type EventDispatcherOptions } from '../events/index.js';
import { RequestEngine } from '../rights/engine/request-engine.js';
import { RequestRunner } from '../rights/engine/request-runner.js';
import { RetentionService, type RetentionServiceOptions } from '../retention/index.js';
import { openDataConnector, type DataConnector } from '../connectors/data/index.js';
import { smtpMailer, type Mailer } from '../connectors/mail/smtp-mailer.js';
import { resolveConnection, type DataMap } from '../datamap/index.js';
import { CustodianError } from '../core/index.js';
import { openStore, type MigrationReport, type Store } from '../store/index.js';
import { PrivacyCenter, StoreSessionStore, loadBranding, type SessionStore, type SubjectLookup } from '../privacy-center/index.js';
import { IncidentService } from '../breach/index.js';
import type { CustodianConfig } from './config.js';

/** A wired Custodian: the services every interface calls. */
export interface Custodian {
  readonly config: CustodianConfig;
  readonly clock: Clock;
  readonly store: Store;
  /** The local master key; undefined when master keys live in an external KMS. */
  readonly masterKey: MasterKey | undefined;
  readonly keyring: Keyring;
  readonly audit: AuditLog;
  readonly purposes: PurposeRegistry;
  readonly ledger: ConsentLedger;
  /** The transactional outbox of events (consent changes, expiries, request outcomes). */
  readonly outbox: Outbox;
  /** Event subscriptions (webhooks, NATS, Redis Streams), their delivery log and figures. */
  readonly subscriptions: EventSubscriptions;
  /** Delivers outbox events to subscriptions; not started here (`serve` and `worker` start it). */
  readonly dispatcher: EventDispatcher;
  readonly apiKeys: ApiKeyService;
  /** The data map: versioned manifest, validated and audited; its purposes feed the ledger's. */
  readonly datamap: DatamapService;
  /** Data subject requests: intake, verification, deadlines, lifecycle. */
  readonly requests: RequestEngine;
  /** SMTP delivery of the mail outbox, when CUSTODIAN_SMTP_URL is set. */
  readonly mailer: Mailer | undefined;
  /** Executes requests in progress against the systems of the data map (workers, `request run`). */
  readonly runner: RequestRunner;
  /** Personal data breach response: incidents, risk assessment, deadlines, scoping, notifications (docs/breach.md). */
  readonly incidents: IncidentService;
  /** Retention rules of the data map applied in batches, legal holds, the retention report (docs/retention.md). */
  readonly retention: RetentionService;
  /** The privacy center for data subjects (`/privacy`): sign-in by e-mail code, own consent and requests. */
  readonly privacyCenter: PrivacyCenter;
  /** Migrations applied while starting (empty when none were pending or migrateOnStart is off). */
  readonly migrations: MigrationReport;
  close(): Promise<void>;
}

/** Optional injections, for tests and embedding. */
export interface CreateCustodianOptions {
  readonly clock?: Clock;
  /** Retention batch size, lease and pacing (tests, benchmarks). */
  readonly retention?: RetentionServiceOptions;
  /** Use this master-key provider instead of the local master key (e.g. an HTTP KMS). */
  readonly kekProvider?: KekProvider;
  /** Use this store instead of opening `config.dbUrl`; it is closed with the Custodian. */
  readonly store?: Store;
  /**
   * Watch the store for other processes' consent changes so caches stay coherent (default true).
   * Short-lived processes (CLI commands) turn it off.
   */
  readonly watch?: boolean;
  /** Settings of the event dispatcher (tests shorten backoff and polling). */
  readonly dispatcher?: EventDispatcherOptions;
  /** Privacy center: the application's user id of a verified e-mail address (default: none; see docs/privacy-center.md). */
  readonly privacyCenterLookup?: SubjectLookup;
  /** Privacy center: where sign-in codes and sessions live (default: the store, shared by every replica on it). */
  readonly privacyCenterSessions?: SessionStore;
}

/** The only composition root: opens the store, migrates, loads keys and purposes, and wires the services. */
export async function createCustodian(config: CustodianConfig, options: CreateCustodianOptions = {}): Promise<Custodian> {
  const clock = options.clock ?? systemClock;
  const store = options.store ?? openStore(config.dbUrl);
  try {
    const kms = options.kekProvider ?? HttpKmsKekProvider.fromEnv({ CUSTODIAN_KMS_URL: config.kms.url, CUSTODIAN_KMS_TOKEN: config.kms.token, CUSTODIAN_KMS_KEYS: config.kms.keys });
    const masterKey = kms === undefined ? await loadMasterKey({ envValue: config.masterKey, filePath: config.masterKeyFile, generateIfMissing: config.generateDevMasterKey }) : undefined;
    const migrations = config.migrateOnStart ? await store.migrate() : { applied: [], current: [] };
    const keyring = new Keyring({ store, provider: kms ?? new LocalKekProvider(masterKey!), clock });
    await keyring.start({ watch: options.watch !== false });
    const audit = new AuditLog({ store, keyring, clock }, config.audit);
    await audit.start();
    keyring.setAuditSink(audit);
    const purposes = new PurposeRegistry({ store, clock, audit });
    await purposes.load();
    const outbox = new Outbox({ store, clock });
    const ledger = new ConsentLedger({ store, purposes, clock, cipher: keyring, audit, events: outbox }, config.ledger);
    if (options.watch !== false) await ledger.watch();
    const apiKeys = new ApiKeyService({ store, clock, audit, purposes });
    // The data map is the source of truth for purposes: storing a version upserts them in the same transaction.
    const datamap = new DatamapService({
      store,
      clock,
      audit,
      onApply: async (trx, manifest, actor) => {
        if (manifest.purposes.length > 0) await purposes.putManyIn(trx, ledgerPurposes(manifest), actor);
      },
      afterApply: () => void purposes.load().catch(() => undefined),
    });
    const requests = new RequestEngine(
      { store, cipher: keyring, clock, audit, events: outbox },
      {
        // Identity kinds come from the data map when one is stored; otherwise email, phone_number, user_id.
        identityKinds: async () => {
          const kinds = (await datamap.dataMap())?.identityKinds();
          return kinds === undefined || kinds.length === 0 ? undefined : kinds;
        },
        // A correction names a declared top-level field that is not a primary key.
        correctable: async (address) => {
          const field = (await datamap.dataMap())?.field(address);
          if (field === undefined) return 'not a field of the data map';
          if (field.path.length !== 1) return 'only top-level fields can be corrected';
          if (field.field.primaryKey === true) return 'a primary key cannot be corrected';
          return undefined;
        },
      },
    );
    // Requests, retention and breach scoping open the systems of the data map the same way.
    const connectSystem = async (map: DataMap, systemKey: string): Promise<DataConnector> => {
      const connection = map.system(systemKey)?.connection;
      if (connection === undefined) throw new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', `system ${systemKey} has no connection in the data map`, { details: { system: systemKey } });
      return openDataConnector(resolveConnection(connection, config.env));
    };
    const runner = new RequestRunner({
      store,
      engine: requests,
      cipher: keyring,
      clock,
      audit,
      dataMap: () => datamap.currentView(),
      connect: connectSystem,
      sign: (bytes) => ({ signature: audit.signStatement(bytes), publicKey: audit.statementKey() }),
      withdraw: async ({ subjectId, purposes: keys, jurisdiction, requestId, actor }) => {
        // Only purposes the ledger knows and offers in the request's jurisdiction can be withdrawn there.
        const known = new Set(purposes.list().filter((p) => offeredIn(p, jurisdiction)).map((p) => p.key));
        const events = keys.filter((k) => known.has(k)).map((purpose) => ({ subjectId, purpose, decision: 'withdrawn' as const, jurisdiction, method: 'privacy_center' as const, idempotencyKey: `request:${requestId}:${purpose}` }));
        if (events.length === 0) return 0;
        return (await ledger.record(events, { actor })).events.length;
      },
      // Restriction requests: the ground is not known when the request comes in (GDPR Art. 18(1)).
      restrict: ({ subjectId, requestId, actor }) => ledger.restrict(subjectId, { reason: 'subject_request', requestId, actor }),
    });
    const retention = new RetentionService(
      {
        store,
        clock,
        audit,
        dataMap: () => datamap.currentView(),
        connect: connectSystem,
        digest: (text) => keyring.keyedDigest(text),
        identitiesOf: (id) => requests.identitiesOf(id),
        hashKey: () => keyring.systemSecret('erasure-hash'),
      },
      options.retention,
    );
    const subscriptions = new EventSubscriptions({ store, clock, cipher: keyring, audit });
    const dispatcher = new EventDispatcher({ store, outbox, subscriptions, clock, audit, announceExpiries: () => ledger.announceExpiries() }, options.dispatcher);
    const branding = await loadBranding(config.privacyCenter.configFile);
    const privacyCenter = new PrivacyCenter(
      {
        clock,
        // In the store by default, so every replica on it accepts the others' codes and sessions.
        sessions: options.privacyCenterSessions ?? new StoreSessionStore({ store, now: () => clock.now(), cipher: keyring }),
        digest: (text) => keyring.keyedDigest(text),
        requests,
        ledger,
        purposes,
        packages: runner,
        branding: () => branding,
        audit,
        dataMap: () => datamap.dataMap(),
      },
      { sessionTtlMs: config.privacyCenter.sessionMinutes * 60_000, gpcEverywhere: config.ledger.gpcEverywhere === true, ...(options.privacyCenterLookup ? { lookupSubject: options.privacyCenterLookup } : {}) },
    );
    const mailer = config.mail.smtpUrl === undefined ? undefined : smtpMailer(config.mail.smtpUrl, config.mail.from);
    const incidents = new IncidentService({
      store,
      clock,
      cipher: keyring,
      audit,
      events: outbox,
      dataMap: () => datamap.currentView(),
      connect: connectSystem,
    });
    const close = async () => {
      await dispatcher.stop();
      await mailer?.close();
      await ledger.stopWatching();
      await keyring.stop();
      await store.close();
    };
    return Object.freeze({ config, clock, store, masterKey, keyring, audit, purposes, ledger, outbox, subscriptions, dispatcher, apiKeys, datamap, requests, runner, retention, privacyCenter, mailer, incidents, migrations, close });
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
}

/** The ledger's view of the data map's purposes (validation guarantees each has a legal basis). */
export function ledgerPurposes(manifest: Manifest): Purpose[] {
  return manifest.purposes.map((p) => {
    const legalBasis = p.legalBasis!;
    const isConsent = legalBasis === 'consent';
    return {
      key: p.key,
      title: p.title,
      description: p.description,
      legalBasis,
      consentRequired: isConsent,
      // Grants last 13 months by default (CNIL délibération 2020-091), as for purposes defined directly.
      defaultExpiryMonths: p.consentExpiryMonths === undefined ? (isConsent ? 13 : null) : p.consentExpiryMonths,
      jurisdictions: p.jurisdictions,
      gpcOptOut: p.gpcOptOut,
    };
  });
}
