import { sql, type Kysely, type Migration } from 'kysely';
import type { StoreKind } from '../store.js';

/** Engine-specific column types; everything else in the schema is shared. */
function types(kind: StoreKind) {
  return kind === 'postgres'
    ? ({ id: 'uuid', instant: 'timestamptz(3)', flag: 'smallint' } as const)
    : ({ id: 'text', instant: 'text', flag: 'integer' } as const);
}

/** Makes `table` refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL) in the database itself. */
async function appendOnly(db: Kysely<unknown>, kind: StoreKind, table: string): Promise<void> {
  if (kind === 'sqlite') {
    for (const op of ['update', 'delete']) {
      await sql`create trigger ${sql.raw(`${table}_no_${op}`)} before ${sql.raw(op)} on ${sql.table(table)}
        begin select raise(abort, ${sql.lit(`${table} is append-only`)}); end`.execute(db);
    }
    return;
  }
  await sql`create trigger ${sql.raw(`${table}_append_only`)} before update or delete on ${sql.table(table)}
    for each row execute function custodian_refuse_change()`.execute(db);
  await sql`create trigger ${sql.raw(`${table}_no_truncate`)} before truncate on ${sql.table(table)}
    for each statement execute function custodian_refuse_change()`.execute(db);
}

const m0001 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    if (kind === 'postgres') {
      await sql`create or replace function custodian_refuse_change() returns trigger language plpgsql as $$
        begin
          raise exception '% is append-only', tg_table_name using errcode = 'P0403';
        end $$`.execute(db);
    }
    await db.schema
      .createTable('consent_events')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('subject_id', 'varchar(256)', (c) => c.notNull())
      .addColumn('purpose', 'varchar(128)', (c) => c.notNull())
      .addColumn('decision', 'varchar(16)', (c) => c.notNull().check(sql`decision in ('granted', 'denied', 'withdrawn')`))
      .addColumn('legal_basis', 'varchar(32)', (c) => c.notNull())
      .addColumn('jurisdiction', 'varchar(16)')
      .addColumn('notice_version', 'varchar(128)')
      .addColumn('method', 'varchar(32)', (c) => c.notNull())
      .addColumn('recorded_at', t.instant, (c) => c.notNull())
      .addColumn('client_time', t.instant)
      .addColumn('expires_at', t.instant)
      .addColumn('gpc', t.flag, (c) => c.notNull().defaultTo(0))
      .addColumn('evidence', 'text')
      .addColumn('evidence_format', 'varchar(16)', (c) => c.notNull().defaultTo('json'))
      .addColumn('idempotency_key', 'varchar(256)')
      .addColumn('request_hash', 'varchar(64)')
      .addColumn('batch_id', t.id, (c) => c.notNull())
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('consent_events_subject_purpose').on('consent_events').columns(['subject_id', 'purpose', 'id']).execute();
    await db.schema
      .createIndex('consent_events_idempotency_key')
      .unique()
      .on('consent_events')
      .column('idempotency_key')
      .where(sql.ref('idempotency_key'), 'is not', null)
      .execute();
    await appendOnly(db, kind, 'consent_events');

    await db.schema
      .createTable('consent_state')
      .addColumn('subject_id', 'varchar(256)', (c) => c.notNull())
      .addColumn('purpose', 'varchar(128)', (c) => c.notNull())
      .addColumn('event_id', t.id, (c) => c.notNull())
      .addColumn('decision', 'varchar(16)', (c) => c.notNull())
      .addColumn('legal_basis', 'varchar(32)', (c) => c.notNull())
      .addColumn('method', 'varchar(32)', (c) => c.notNull())
      .addColumn('jurisdiction', 'varchar(16)')
      .addColumn('gpc', t.flag, (c) => c.notNull().defaultTo(0))
      .addColumn('recorded_at', t.instant, (c) => c.notNull())
      .addColumn('expires_at', t.instant)
      .addPrimaryKeyConstraint('consent_state_pk', ['subject_id', 'purpose'])
      .execute();

    await db.schema
      .createTable('purposes')
      .addColumn('key', 'varchar(128)', (c) => c.primaryKey())
      .addColumn('title', 'varchar(200)', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('legal_basis', 'varchar(32)', (c) => c.notNull())
      .addColumn('consent_required', t.flag, (c) => c.notNull())
      .addColumn('default_expiry_months', 'integer')
      .addColumn('jurisdictions', 'text', (c) => c.notNull())
      .addColumn('gpc_opt_out', t.flag, (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('updated_at', t.instant, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('api_keys')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('name', 'varchar(200)', (c) => c.notNull())
      .addColumn('key_hash', 'varchar(64)', (c) => c.notNull().unique())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
      .addColumn('revoked_at', t.instant)
      .execute();
  },
});

/**
 * The projection may only follow the history: each consent_state row must describe an existing consent event
 * of the same subject and purpose, may only move to a later event, and may not be deleted. An operator can no
 * longer make a check answer differently from what the append-only history says.
 */
const m0002 = (kind: StoreKind): Migration => ({
  async up(db) {
    const matches = (row: string) => `exists (select 1 from consent_events e where e.id = ${row}.event_id
      and e.subject_id = ${row}.subject_id and e.purpose = ${row}.purpose and e.decision = ${row}.decision
      and e.method = ${row}.method and e.gpc = ${row}.gpc and e.recorded_at = ${row}.recorded_at
      and e.expires_at is not distinct from ${row}.expires_at)`;
    if (kind === 'sqlite') {
      const guard = `select raise(abort, 'consent_state only follows consent_events')`;
      await sql.raw(`create trigger consent_state_follows_insert before insert on consent_state
        when not ${matches('new').replace(/is not distinct from/g, 'is')} begin ${guard}; end`).execute(db);
      await sql.raw(`create trigger consent_state_follows_update before update on consent_state
        when new.event_id <= old.event_id or new.subject_id <> old.subject_id or new.purpose <> old.purpose
          or not ${matches('new').replace(/is not distinct from/g, 'is')} begin ${guard}; end`).execute(db);
      await sql.raw(`create trigger consent_state_no_delete before delete on consent_state begin ${guard}; end`).execute(db);
      return;
    }
    await sql.raw(`create or replace function custodian_state_follows_events() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          raise exception 'consent_state only follows consent_events' using errcode = 'P0403';
        end if;
        if tg_op = 'UPDATE' and (new.event_id <= old.event_id or new.subject_id <> old.subject_id or new.purpose <> old.purpose) then
          raise exception 'consent_state only follows consent_events' using errcode = 'P0403';
        end if;
        if not ${matches('new')} then
          raise exception 'consent_state only follows consent_events' using errcode = 'P0403';
        end if;
        return new;
      end $$`).execute(db);
    await sql`create trigger consent_state_follows before insert or update or delete on consent_state
      for each row execute function custodian_state_follows_events()`.execute(db);
    await sql`create trigger consent_state_no_truncate before truncate on consent_state
      for each statement execute function custodian_refuse_change()`.execute(db);
  },
});

/**
 * The keyring: master-key versions (with a wrapped canary as key check value, never the key), wrapped data keys,
 * blind index definitions, resumable re-wrap jobs, and the append-only record of shredding.
 */
const m0003 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    await db.schema
      .createTable('kek_versions')
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('provider', 'varchar(16)', (c) => c.notNull())
      .addColumn('key_ref', 'varchar(256)', (c) => c.notNull())
      .addColumn('canary_wrapped', 'text', (c) => c.notNull())
      .addColumn('canary_hash', 'varchar(64)', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull().check(sql`status in ('primary', 'active', 'retired')`))
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('retired_at', t.instant)
      .execute();
    await db.schema
      .createTable('data_keys')
      .addColumn('id', 'varchar(16)', (c) => c.primaryKey())
      .addColumn('kind', 'varchar(16)', (c) => c.notNull().check(sql`kind in ('subject', 'index', 'system')`))
      .addColumn('owner', 'varchar(128)', (c) => c.notNull())
      .addColumn('kek_version', 'integer', (c) => c.notNull().references('kek_versions.version'))
      .addColumn('wrapped', 'text', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      // SQLite: clustered by key id, so a re-wrap batch in id order touches contiguous pages (2.5× faster).
      .$call((b) => (kind === 'sqlite' ? b.modifyEnd(sql`without rowid`) : b))
      .execute();
    await db.schema.createIndex('data_keys_owner').unique().on('data_keys').columns(['kind', 'owner']).execute();
    await db.schema.createIndex('data_keys_kek_version').on('data_keys').columns(['kek_version', 'id']).execute();
    await db.schema
      .createTable('blind_indexes')
      .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('normaliser', 'varchar(16)', (c) => c.notNull())
      .addColumn('bits', 'integer', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('shred_tombstones')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('subject_ref', 'varchar(64)', (c) => c.notNull())
      .addColumn('reason', 'varchar(500)', (c) => c.notNull())
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .addColumn('keys_destroyed', 'integer', (c) => c.notNull())
      .addColumn('shredded_at', t.instant, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('shred_tombstones_subject').on('shred_tombstones').column('subject_ref').execute();
    await db.schema
      .createTable('shredded_keys')
      .addColumn('key_id', 'varchar(16)', (c) => c.primaryKey())
      .addColumn('tombstone_id', t.id, (c) => c.notNull())
      .execute();
    await appendOnly(db, kind, 'shred_tombstones');
    await appendOnly(db, kind, 'shredded_keys');
    await db.schema
      .createTable('rewrap_jobs')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('target_version', 'integer', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('cursor', 'varchar(16)', (c) => c.notNull().defaultTo(''))
      .addColumn('processed', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('total', 'integer', (c) => c.notNull())
      .addColumn('started_at', t.instant, (c) => c.notNull())
      .addColumn('updated_at', t.instant, (c) => c.notNull())
      .addColumn('finished_at', t.instant)
      .execute();
  },
});

/**
 * The tamper-evident logs: audit entries (append-only), and for each tree (`audit`, `consent`) a queue of leaves
 * waiting for the sequencer, the sequenced leaves, the hashes of every complete subtree, and signed tree heads —
 * all append-only except the queue, which the sequencer drains.
 */
const m0004 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    const big = kind === 'postgres' ? 'bigint' : 'integer';
    await db.schema
      .createTable('audit_entries')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('recorded_at', t.instant, (c) => c.notNull())
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .addColumn('action', 'varchar(64)', (c) => c.notNull())
      .addColumn('target_type', 'varchar(32)', (c) => c.notNull())
      .addColumn('target_ref', 'varchar(128)')
      .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
      .addColumn('request_id', 'varchar(64)')
      .addColumn('details', 'text', (c) => c.notNull())
      .addColumn('payload', 'text')
      .addColumn('leaf_hash', 'varchar(64)', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('audit_entries_target').on('audit_entries').columns(['target_ref', 'id']).execute();
    await db.schema.createIndex('audit_entries_action').on('audit_entries').columns(['action', 'id']).execute();
    await appendOnly(db, kind, 'audit_entries');
    await db.schema
      .createTable('log_queue')
      .addColumn('tree', 'varchar(16)', (c) => c.notNull())
      .addColumn('ref_id', t.id, (c) => c.notNull())
      .addColumn('leaf_hash', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('log_queue_pk', ['tree', 'ref_id'])
      .execute();
    await db.schema
      .createTable('log_leaves')
      .addColumn('tree', 'varchar(16)', (c) => c.notNull())
      .addColumn('seq', big, (c) => c.notNull())
      .addColumn('ref_id', t.id, (c) => c.notNull())
      .addColumn('leaf_hash', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('log_leaves_pk', ['tree', 'seq'])
      .execute();
    await db.schema.createIndex('log_leaves_ref').unique().on('log_leaves').columns(['tree', 'ref_id']).execute();
    await appendOnly(db, kind, 'log_leaves');
    await db.schema
      .createTable('log_nodes')
      .addColumn('tree', 'varchar(16)', (c) => c.notNull())
      .addColumn('level', 'integer', (c) => c.notNull())
      .addColumn('idx', big, (c) => c.notNull())
      .addColumn('hash', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('log_nodes_pk', ['tree', 'level', 'idx'])
      .execute();
    await appendOnly(db, kind, 'log_nodes');
    await db.schema
      .createTable('log_heads')
      .addColumn('tree', 'varchar(16)', (c) => c.notNull())
      .addColumn('size', big, (c) => c.notNull())
      .addColumn('root_hash', 'varchar(64)', (c) => c.notNull())
      .addColumn('checkpoint', 'text', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addPrimaryKeyConstraint('log_heads_pk', ['tree', 'size'])
      .execute();
    await appendOnly(db, kind, 'log_heads');
  },
});

const m0005 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    // Every stored data map version, whole: the history is the record of what was declared when.
    await db.schema
      .createTable('datamap_versions')
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('manifest', 'text', (c) => c.notNull())
      .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .addColumn('comment', 'varchar(500)')
      .execute();
    await appendOnly(db, kind, 'datamap_versions');
  },
});

/**
 * Data subject requests: the request (identities sealed under a key of the request, never in clear), its
 * append-only lifecycle, its tasks (one per plan step, claimed by workers with a lease), one-time verification
 * codes (digests only) and the mail outbox (sealed recipients and bodies; the dev mail sink reads it).
 */
const m0006 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    const big = kind === 'postgres' ? 'bigint' : 'integer';
    await db.schema
      .createTable('requests')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('type', 'varchar(32)', (c) => c.notNull())
      .addColumn('status', 'varchar(32)', (c) => c.notNull())
      .addColumn('jurisdiction', 'varchar(16)', (c) => c.notNull())
      .addColumn('regime', 'varchar(16)', (c) => c.notNull())
      .addColumn('channel', 'varchar(32)', (c) => c.notNull())
      .addColumn('identity_kinds', 'varchar(500)', (c) => c.notNull())
      .addColumn('identities_sealed', 'text', (c) => c.notNull())
      .addColumn('corrections_sealed', 'text')
      .addColumn('identity_digests', 'text', (c) => c.notNull())
      .addColumn('received_at', t.instant, (c) => c.notNull())
      .addColumn('due_at', t.instant, (c) => c.notNull())
      .addColumn('acknowledge_by', t.instant)
      .addColumn('extended', t.flag, (c) => c.notNull().defaultTo(0))
      .addColumn('paused_ms', big, (c) => c.notNull().defaultTo(0))
      .addColumn('paused_since', t.instant)
      .addColumn('verified_at', t.instant)
      .addColumn('completed_at', t.instant)
      .addColumn('outcome', 'text')
      .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
      .addColumn('updated_at', t.instant, (c) => c.notNull())
      .addColumn('revision', 'integer', (c) => c.notNull().defaultTo(0))
      // Execution: the worker holding the request, until when; the executor's context (sealed); the data map version planned from.
      .addColumn('lease_owner', 'varchar(128)')
      .addColumn('lease_until', t.instant)
      .addColumn('context_sealed', 'text')
      .addColumn('datamap_version', 'integer')
      .execute();
    await db.schema.createIndex('requests_status_due').on('requests').columns(['status', 'due_at']).execute();
    await db.schema
      .createTable('request_events')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('request_id', t.id, (c) => c.notNull())
      .addColumn('at', t.instant, (c) => c.notNull())
      .addColumn('from_status', 'varchar(32)')
      .addColumn('to_status', 'varchar(32)', (c) => c.notNull())
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .addColumn('reason', 'varchar(1000)')
      .execute();
    await db.schema.createIndex('request_events_request').on('request_events').columns(['request_id', 'id']).execute();
    await appendOnly(db, kind, 'request_events');
    await db.schema
      .createTable('request_tasks')
      .addColumn('request_id', t.id, (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('phase', 'varchar(16)', (c) => c.notNull())
      .addColumn('target', 'varchar(600)', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('lease_owner', 'varchar(128)')
      .addColumn('lease_until', t.instant)
      .addColumn('result', 'text')
      .addColumn('error', 'varchar(1000)')
      .addColumn('updated_at', t.instant, (c) => c.notNull())
      .addPrimaryKeyConstraint('request_tasks_pk', ['request_id', 'seq'])
      .execute();
    // Outputs: the access package (sealed under the request's key) and the erasure certificate (signed, no personal data).
    await db.schema
      .createTable('request_artifacts')
      .addColumn('request_id', t.id, (c) => c.notNull())
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      .addColumn('content', 'text', (c) => c.notNull())
      .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addPrimaryKeyConstraint('request_artifacts_pk', ['request_id', 'kind'])
      .execute();
    await db.schema
      .createTable('verification_codes')
      .addColumn('request_id', t.id, (c) => c.primaryKey())
      .addColumn('code_digest', 'varchar(64)', (c) => c.notNull())
      .addColumn('expires_at', t.instant, (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('sent_at', t.instant, (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('mail_outbox')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('request_id', t.id)
      .addColumn('template', 'varchar(64)', (c) => c.notNull())
      .addColumn('to_sealed', 'text', (c) => c.notNull())
      .addColumn('body_sealed', 'text', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('claimed_until', t.instant)
      .addColumn('sent_at', t.instant)
      .execute();
  },
});

/**
 * The transactional outbox of events (written in the transaction of the change they announce) and the record of
 * which consent expiries were announced. Outbox rows are immutable (UPDATE refused by the database); old,
 * delivered rows may be pruned (DELETE), because they carry subject ids and must not be kept forever.
 */
const m0007 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    await db.schema
      .createTable('event_outbox')
      .addColumn('seq', kind === 'postgres' ? 'bigserial' : 'integer', (c) => (kind === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('id', t.id, (c) => c.notNull().unique())
      .addColumn('type', 'varchar(64)', (c) => c.notNull())
      .addColumn('subject_id', 'varchar(256)')
      .addColumn('purposes', 'text', (c) => c.notNull())
      .addColumn('time', t.instant, (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('event_outbox_subject').on('event_outbox').columns(['subject_id', 'seq']).execute();
    await db.schema.createIndex('event_outbox_time').on('event_outbox').columns(['time']).execute();
    if (kind === 'sqlite') {
      await sql`create trigger event_outbox_no_update before update on event_outbox
        begin select raise(abort, 'event_outbox rows are immutable'); end`.execute(db);
    } else {
      await sql`create trigger event_outbox_no_update before update on event_outbox
        for each row execute function custodian_refuse_change()`.execute(db);
    }
    // One row per grant whose expiry was announced (consent.expired), keyed by the granting event.
    await db.schema
      .createTable('consent_expiry_notices')
      .addColumn('event_id', t.id, (c) => c.primaryKey())
      .addColumn('announced_at', t.instant, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('consent_state_expires').on('consent_state').columns(['expires_at']).execute();
  },
});

/**
 * Delivery of outbox events to subscriptions: the subscriptions (target secrets and credentials only ever
 * sealed), one delivery row per (subscription, outbox position) claimed by dispatchers with a lease, and the
 * append-only log of every attempt.
 */
const m0008 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    const big = kind === 'postgres' ? 'bigint' : 'integer';
    await db.schema
      .createTable('event_subscriptions')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('name', 'varchar(200)', (c) => c.notNull())
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      // JSON: the target without secrets (URL without credentials, stream, prefixes), for display.
      .addColumn('target', 'text', (c) => c.notNull())
      // The whole target configuration (URL with credentials, webhook secret), sealed under the subscription's key.
      .addColumn('target_sealed', 'text', (c) => c.notNull())
      .addColumn('filter_types', 'text', (c) => c.notNull())
      .addColumn('filter_purposes', 'text', (c) => c.notNull())
      .addColumn('max_attempts', 'integer', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
      .addColumn('deleted_at', t.instant)
      .addColumn('disabled_at', t.instant)
      .addColumn('disabled_reason', 'varchar(500)')
      .addColumn('materialised_through', big, (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable('event_deliveries')
      .addColumn('subscription_id', t.id, (c) => c.notNull())
      .addColumn('seq', big, (c) => c.notNull())
      .addColumn('event_id', t.id, (c) => c.notNull())
      .addColumn('subject_id', 'varchar(256)')
      .addColumn('status', 'varchar(16)', (c) => c.notNull().check(sql`status in ('pending', 'delivered', 'dead')`))
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_at', t.instant, (c) => c.notNull())
      .addColumn('claimed_until', t.instant)
      .addColumn('claimed_by', 'varchar(64)')
      .addColumn('last_error', 'varchar(500)')
      .addColumn('updated_at', t.instant, (c) => c.notNull())
      .addColumn('delivered_at', t.instant)
      .addPrimaryKeyConstraint('event_deliveries_pk', ['subscription_id', 'seq'])
      .execute();
    // Claiming: due pending rows in outbox order; ordering: the earliest pending row of a subject.
    await db.schema.createIndex('event_deliveries_due').on('event_deliveries').columns(['status', 'next_attempt_at', 'seq']).execute();
    await db.schema.createIndex('event_deliveries_subject').on('event_deliveries').columns(['subscription_id', 'subject_id', 'status', 'seq']).execute();
    await db.schema
      .createTable('event_delivery_attempts')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('subscription_id', t.id, (c) => c.notNull())
      .addColumn('seq', big, (c) => c.notNull())
      .addColumn('event_id', t.id, (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('at', t.instant, (c) => c.notNull())
      .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
      .addColumn('http_status', 'integer')
      .addColumn('error', 'varchar(500)')
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('event_delivery_attempts_subscription').on('event_delivery_attempts').columns(['subscription_id', 'id']).execute();
    await appendOnly(db, kind, 'event_delivery_attempts');
  },
});

/**
 * Restriction of processing (GDPR Art. 18; LGPD Art. 18, IV): the append-only history of restrictions and
 * liftings per subject, and its projection (the current restriction per subject), kept in the same transaction.
 * As for consent_state, the projection may only follow the history: each row must name an event of the same
 * subject whose action and reason it repeats, may only move to a later event, and may not be deleted.
 */
const m0009 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    await db.schema
      .createTable('subject_restrictions_events')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('subject_id', 'varchar(256)', (c) => c.notNull())
      .addColumn('action', 'varchar(16)', (c) => c.notNull().check(sql`action in ('restricted', 'lifted')`))
      .addColumn('reason', 'varchar(64)', (c) => c.notNull())
      .addColumn('request_id', t.id)
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .addColumn('at', t.instant, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('subject_restrictions_events_subject').on('subject_restrictions_events').columns(['subject_id', 'id']).execute();
    await appendOnly(db, kind, 'subject_restrictions_events');
    await db.schema
      .createTable('subject_restrictions')
      .addColumn('subject_id', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('restricted', t.flag, (c) => c.notNull())
      .addColumn('reason', 'varchar(64)', (c) => c.notNull())
      .addColumn('request_id', t.id)
      // When the restriction in force began; null once lifted.
      .addColumn('since', t.instant)
      .addColumn('event_id', t.id, (c) => c.notNull())
      .addColumn('updated_at', t.instant, (c) => c.notNull())
      .execute();
    const matches = `exists (select 1 from subject_restrictions_events e where e.id = new.event_id and e.subject_id = new.subject_id
      and e.action = (case when new.restricted = 1 then 'restricted' else 'lifted' end) and e.reason = new.reason)`;
    const message = 'subject_restrictions only follows subject_restrictions_events';
    if (kind === 'sqlite') {
      const guard = `select raise(abort, '${message}')`;
      await sql.raw(`create trigger subject_restrictions_follows_insert before insert on subject_restrictions
        when not ${matches} begin ${guard}; end`).execute(db);
      await sql.raw(`create trigger subject_restrictions_follows_update before update on subject_restrictions
        when new.event_id <= old.event_id or new.subject_id <> old.subject_id or not ${matches} begin ${guard}; end`).execute(db);
      await sql.raw(`create trigger subject_restrictions_no_delete before delete on subject_restrictions begin ${guard}; end`).execute(db);
      return;
    }
    await sql.raw(`create or replace function custodian_restrictions_follow_events() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' then
          raise exception '${message}' using errcode = 'P0403';
        end if;
        if tg_op = 'UPDATE' and (new.event_id <= old.event_id or new.subject_id <> old.subject_id) then
          raise exception '${message}' using errcode = 'P0403';
        end if;
        if not ${matches} then
          raise exception '${message}' using errcode = 'P0403';
        end if;
        return new;
      end $$`).execute(db);
    await sql`create trigger subject_restrictions_follows before insert or update or delete on subject_restrictions
      for each row execute function custodian_restrictions_follow_events()`.execute(db);
    await sql`create trigger subject_restrictions_no_truncate before truncate on subject_restrictions
      for each statement execute function custodian_refuse_change()`.execute(db);
  },
});

/**
 * Breach response: incidents (free text sealed under a key of the incident), their append-only timeline, the
 * escalations raised (one row per incident, rule and point: raised once), and who was notified when (recipients
 * only as keyed digests; the messages themselves go through the sealed mail outbox).
 */
const m0011 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    await db.schema
      .createTable('incidents')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('title', 'varchar(200)', (c) => c.notNull())
      .addColumn('narrative_sealed', 'text', (c) => c.notNull())
      .addColumn('detected_at', t.instant, (c) => c.notNull())
      .addColumn('occurred_at', t.instant)
      .addColumn('systems', 'text', (c) => c.notNull())
      .addColumn('collections', 'text', (c) => c.notNull())
      .addColumn('data_categories', 'text', (c) => c.notNull())
      .addColumn('jurisdictions', 'text', (c) => c.notNull())
      .addColumn('affected_count', 'integer')
      .addColumn('records_count', 'integer')
      .addColumn('encrypted', t.flag, (c) => c.notNull().defaultTo(0))
      .addColumn('keys_compromised', t.flag, (c) => c.notNull().defaultTo(0))
      .addColumn('nis2', t.flag, (c) => c.notNull().defaultTo(0))
      .addColumn('override_outcome', 'varchar(32)')
      .addColumn('subjects_count', 'integer')
      .addColumn('source', 'varchar(64)', (c) => c.notNull())
      .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('updated_at', t.instant, (c) => c.notNull())
      .addColumn('revision', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.createIndex('incidents_status').on('incidents').columns(['status', 'detected_at']).execute();
    await db.schema
      .createTable('incident_timeline')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('incident_id', t.id, (c) => c.notNull())
      .addColumn('at', t.instant, (c) => c.notNull())
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .addColumn('kind', 'varchar(32)', (c) => c.notNull())
      .addColumn('changes', 'text', (c) => c.notNull())
      .addColumn('note_sealed', 'text')
      .execute();
    await db.schema.createIndex('incident_timeline_incident').on('incident_timeline').columns(['incident_id', 'id']).execute();
    await appendOnly(db, kind, 'incident_timeline');
    await db.schema
      .createTable('incident_escalations')
      .addColumn('incident_id', t.id, (c) => c.notNull())
      .addColumn('rule_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('point', 'varchar(16)', (c) => c.notNull())
      .addColumn('due_at', t.instant, (c) => c.notNull())
      .addColumn('raised_at', t.instant, (c) => c.notNull())
      .addPrimaryKeyConstraint('incident_escalations_pk', ['incident_id', 'rule_id', 'point', 'due_at'])
      .execute();
    await db.schema
      .createTable('incident_notifications')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('incident_id', t.id, (c) => c.notNull())
      .addColumn('audience', 'varchar(16)', (c) => c.notNull())
      .addColumn('stage', 'varchar(16)', (c) => c.notNull())
      .addColumn('jurisdiction', 'varchar(16)')
      .addColumn('recipient_digest', 'varchar(64)', (c) => c.notNull())
      .addColumn('mail_id', t.id, (c) => c.notNull())
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .addColumn('notified_at', t.instant, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('incident_notifications_incident').on('incident_notifications').columns(['incident_id', 'audience']).execute();
    await appendOnly(db, kind, 'incident_notifications');
  },
});

/**
 * Retention (docs/retention.md): legal holds (a subject only as a keyed digest of its identity, or a whole
 * system or collection), retention runs with their report, per-rule progress (the keyset cursor saved after
 * every batch, so a run killed at any point resumes where it stopped), and the lease that keeps one run at a
 * time across processes.
 */
const m0010 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    await db.schema
      .createTable('legal_holds')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('scope', 'varchar(16)', (c) => c.notNull().check(sql`scope in ('subject', 'system', 'collection')`))
      .addColumn('system_key', 'varchar(128)')
      .addColumn('collection', 'varchar(300)')
      .addColumn('identity_kind', 'varchar(64)')
      .addColumn('subject_digest', 'varchar(64)')
      .addColumn('reason', 'varchar(1000)', (c) => c.notNull())
      .addColumn('until', t.instant)
      .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('released_by', 'varchar(128)')
      .addColumn('released_at', t.instant)
      .execute();
    await db.schema.createIndex('legal_holds_active').on('legal_holds').columns(['released_at', 'scope']).execute();
    await db.schema
      .createTable('retention_runs')
      .addColumn('id', t.id, (c) => c.primaryKey())
      .addColumn('status', 'varchar(16)', (c) => c.notNull().check(sql`status in ('running', 'completed', 'failed')`))
      .addColumn('dry_run', t.flag, (c) => c.notNull().defaultTo(0))
      .addColumn('system_key', 'varchar(128)')
      .addColumn('datamap_version', 'integer', (c) => c.notNull())
      .addColumn('as_of', t.instant, (c) => c.notNull())
      .addColumn('actor', 'varchar(128)', (c) => c.notNull())
      .addColumn('started_at', t.instant, (c) => c.notNull())
      .addColumn('finished_at', t.instant)
      .addColumn('resumed', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('error', 'varchar(1000)')
      .execute();
    await db.schema.createIndex('retention_runs_status').on('retention_runs').columns(['status', 'started_at']).execute();
    await db.schema
      .createTable('retention_progress')
      .addColumn('run_id', t.id, (c) => c.notNull())
      .addColumn('collection', 'varchar(300)', (c) => c.notNull())
      .addColumn('rule', 'integer', (c) => c.notNull())
      .addColumn('system_key', 'varchar(128)', (c) => c.notNull())
      .addColumn('action', 'varchar(16)', (c) => c.notNull())
      .addColumn('cutoff', t.instant, (c) => c.notNull())
      .addColumn('cursor', 'text')
      .addColumn('state', 'varchar(16)', (c) => c.notNull())
      .addColumn('matched', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('anonymised', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('skipped', 'text', (c) => c.notNull())
      .addColumn('error', 'varchar(1000)')
      .addColumn('updated_at', t.instant, (c) => c.notNull())
      .addPrimaryKeyConstraint('retention_progress_pk', ['run_id', 'collection', 'rule'])
      .execute();
    await db.schema
      .createTable('retention_lease')
      .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('owner', 'varchar(128)', (c) => c.notNull())
      .addColumn('run_id', t.id)
      .addColumn('until', t.instant, (c) => c.notNull())
      .execute();
  },
});

/**
 * Declared purposes of API keys (docs/api.md#api-keys): a JSON array of purpose keys, `[]` for keys minted
 * before (not judged by the `purpose_mismatch` detection rule). The source of a detected incident grows to 128
 * characters so that `detection:purpose_mismatch:key:<uuid>` fits whole (PostgreSQL only: SQLite does not
 * enforce varchar lengths).
 */
const m0012 = (kind: StoreKind): Migration => ({
  async up(db) {
    await db.schema
      .alterTable('api_keys')
      .addColumn('purposes', 'text', (c) => c.notNull().defaultTo('[]'))
      .execute();
    if (kind === 'postgres') await sql`alter table incidents alter column source type varchar(128)`.execute(db);
  },
});

/**
 * Privacy center sign-ins and sessions in the store (docs/privacy-center.md#sessions-and-security), so that every
 * `serve` replica on one store sees them. A session row is keyed by the SHA-256 of its cookie token — the token
 * itself is never stored — and holds the subject's ids, its times and the verified address sealed under a key
 * of the keyring. A challenge keeps only keyed digests of its address and code (and the address sealed while the
 * code is open). Both are short-lived working state, deleted when they expire.
 */
const m0013 = (kind: StoreKind): Migration => ({
  async up(db) {
    const t = types(kind);
    await db.schema
      .createTable('privacy_sessions')
      .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('subject_id', 'varchar(256)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(256)')
      .addColumn('email_sealed', 'text', (c) => c.notNull())
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('expires_at', t.instant, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('privacy_sessions_expires').on('privacy_sessions').column('expires_at').execute();
    await db.schema
      .createTable('privacy_sign_in_challenges')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('email_digest', 'varchar(64)', (c) => c.notNull())
      .addColumn('email_sealed', 'text')
      .addColumn('code_digest', 'varchar(64)', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('consumed', t.flag, (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', t.instant, (c) => c.notNull())
      .addColumn('expires_at', t.instant, (c) => c.notNull())
      .execute();
    await db.schema.createIndex('privacy_sign_in_challenges_sent').on('privacy_sign_in_challenges').columns(['email_digest', 'created_at']).execute();
    await db.schema.createIndex('privacy_sign_in_challenges_created').on('privacy_sign_in_challenges').column('created_at').execute();
  },
});

/** Forward-only migrations for `kind`, in the order they apply (names sort lexically). */
export function migrationsFor(kind: StoreKind): Record<string, Migration> {
  return {
    '0001_consent_ledger': m0001(kind),
    '0002_consent_state_guard': m0002(kind),
    '0003_keyring': m0003(kind),
    '0004_audit_log': m0004(kind),
    '0005_datamap': m0005(kind),
    '0006_requests': m0006(kind),
    '0007_event_outbox': m0007(kind),
    '0008_event_delivery': m0008(kind),
    '0009_restrictions': m0009(kind),
    '0010_retention': m0010(kind),
    '0011_incidents': m0011(kind),
    '0012_key_purposes': m0012(kind),
    '0013_privacy_sessions': m0013(kind),
  };
}
