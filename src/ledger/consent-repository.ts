import { storedToIso } from '../core/index.js';
import type { ConsentEventsTable, Executor } from '../store/index.js';
import { PostgresAdapter, sql, type Insertable, type Selectable } from 'kysely';
import type { StateRow } from './projection.js';
import type { CollectionMethod, Decision } from './types.js';

export type EventRow = Selectable<ConsentEventsTable>;
export type NewEventRow = Insertable<ConsentEventsTable>;

// SQLite binds at most 32,766 variables per statement; 18 columns × 1,000 rows stays below.
const INSERT_CHUNK = 1000;
const IN_CHUNK = 500;

function toMs(v: string | Date | null): number | null {
  if (v === null) return null;
  return v instanceof Date ? v.getTime() : Date.parse(v);
}

/** Maps a consent_state row to a {@link StateRow}. */
function stateRow(r: {
  purpose: string; event_id: string; decision: string; method: string; jurisdiction: string | null; gpc: number; recorded_at: string | Date; expires_at: string | Date | null;
}): StateRow {
  return {
    purpose: r.purpose,
    eventId: r.event_id,
    decision: r.decision as Decision,
    method: r.method as CollectionMethod,
    jurisdiction: r.jurisdiction,
    gpc: Number(r.gpc) === 1,
    recordedAt: toMs(r.recorded_at)!,
    expiresAt: toMs(r.expires_at),
  };
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SQL of the consent ledger: portable Kysely queries shared by SQLite and PostgreSQL. */
export const consentRepository = {
  async findByIdempotencyKeys(db: Executor, keys: readonly string[]): Promise<EventRow[]> {
    const out: EventRow[] = [];
    for (let i = 0; i < keys.length; i += IN_CHUNK) {
      out.push(...(await db.selectFrom('consent_events').selectAll().where('idempotency_key', 'in', keys.slice(i, i + IN_CHUNK)).execute()));
    }
    return out;
  },

  async insertEvents(db: Executor, rows: readonly NewEventRow[]): Promise<void> {
    if (db.getExecutor().adapter instanceof PostgresAdapter) {
      const col = <K extends keyof NewEventRow>(k: K) => rows.map((r) => r[k] ?? null);
      await sql`insert into consent_events (id, subject_id, purpose, decision, legal_basis, jurisdiction, notice_version, method, recorded_at, client_time, expires_at, gpc, evidence, evidence_format, idempotency_key, request_hash, batch_id, actor)
        select * from unnest(${col('id')}::uuid[], ${col('subject_id')}::varchar[], ${col('purpose')}::varchar[], ${col('decision')}::varchar[], ${col('legal_basis')}::varchar[],
          ${col('jurisdiction')}::varchar[], ${col('notice_version')}::varchar[], ${col('method')}::varchar[], ${col('recorded_at')}::timestamptz[], ${col('client_time')}::timestamptz[],
          ${col('expires_at')}::timestamptz[], ${rows.map((r) => r.gpc ?? 0)}::smallint[], ${col('evidence')}::text[], ${rows.map((r) => r.evidence_format ?? 'json')}::varchar[], ${col('idempotency_key')}::varchar[],
          ${col('request_hash')}::varchar[], ${col('batch_id')}::uuid[], ${col('actor')}::varchar[])`.execute(db);
      return;
    }
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await db.insertInto('consent_events').values(rows.slice(i, i + INSERT_CHUNK)).execute();
    }
  },

  /**
   * Upserts the projection. A row is replaced only by a later event (higher id), so concurrent writers
   * on PostgreSQL converge to the fold of the history whatever order they commit in.
   * `rows` must hold at most one row per (subject, purpose).
   */
  async upsertState(db: Executor, unordered: readonly NewEventRow[]): Promise<void> {
    // Rows are locked in VALUES order: a fixed (subject, purpose) order keeps concurrent PostgreSQL batches
    // touching the same subjects from locking in opposite orders and deadlocking (40P01).
    const rows = [...unordered].sort((a, b) => compareKeys(a.subject_id, b.subject_id) || compareKeys(a.purpose, b.purpose));
    if (db.getExecutor().adapter instanceof PostgresAdapter) {
      const col = <K extends keyof NewEventRow>(k: K) => rows.map((r) => r[k] ?? null);
      await sql`insert into consent_state (subject_id, purpose, event_id, decision, legal_basis, method, jurisdiction, gpc, recorded_at, expires_at)
        select * from unnest(${col('subject_id')}::varchar[], ${col('purpose')}::varchar[], ${col('id')}::uuid[], ${col('decision')}::varchar[], ${col('legal_basis')}::varchar[],
          ${col('method')}::varchar[], ${col('jurisdiction')}::varchar[], ${rows.map((r) => r.gpc ?? 0)}::smallint[], ${col('recorded_at')}::timestamptz[], ${col('expires_at')}::timestamptz[])
        on conflict (subject_id, purpose) do update set event_id = excluded.event_id, decision = excluded.decision, legal_basis = excluded.legal_basis, method = excluded.method,
          jurisdiction = excluded.jurisdiction, gpc = excluded.gpc, recorded_at = excluded.recorded_at, expires_at = excluded.expires_at
        where consent_state.event_id < excluded.event_id`.execute(db);
      return;
    }
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK).map((r) => ({
        subject_id: r.subject_id,
        purpose: r.purpose,
        event_id: r.id,
        decision: r.decision,
        legal_basis: r.legal_basis,
        method: r.method,
        jurisdiction: r.jurisdiction ?? null,
        gpc: r.gpc ?? 0,
        recorded_at: r.recorded_at,
        expires_at: r.expires_at ?? null,
      }));
      await db
        .insertInto('consent_state')
        .values(chunk)
        .onConflict((oc) =>
          oc
            .columns(['subject_id', 'purpose'])
            .doUpdateSet((eb) => ({
              event_id: eb.ref('excluded.event_id'),
              decision: eb.ref('excluded.decision'),
              legal_basis: eb.ref('excluded.legal_basis'),
              method: eb.ref('excluded.method'),
              jurisdiction: eb.ref('excluded.jurisdiction'),
              gpc: eb.ref('excluded.gpc'),
              recorded_at: eb.ref('excluded.recorded_at'),
              expires_at: eb.ref('excluded.expires_at'),
            }))
            .whereRef('consent_state.event_id', '<', 'excluded.event_id'),
        )
        .execute();
    }
  },

  /** Current state rows of many subjects, one query per chunk of ids. */
  async loadStates(db: Executor, subjectIds: readonly string[]): Promise<Map<string, Map<string, StateRow>>> {
    const out = new Map<string, Map<string, StateRow>>();
    for (const id of subjectIds) out.set(id, new Map());
    for (let i = 0; i < subjectIds.length; i += IN_CHUNK) {
      const rows = await db
        .selectFrom('consent_state')
        .select(['subject_id', 'purpose', 'event_id', 'decision', 'method', 'jurisdiction', 'gpc', 'recorded_at', 'expires_at'])
        .where('subject_id', 'in', subjectIds.slice(i, i + IN_CHUNK))
        .execute();
      for (const r of rows) out.get(r.subject_id)!.set(r.purpose, stateRow(r));
    }
    return out;
  },

  /**
   * What a check needs of many subjects, in one query per chunk of ids: their consent_state rows and, in the
   * same round trip, the id of the restriction event in force for those whose processing is restricted.
   */
  async loadSubjects(db: Executor, subjectIds: readonly string[], purposes?: readonly string[]): Promise<Map<string, { states: Map<string, StateRow>; restrictionEventId: string | undefined }>> {
    const onlyPurposes = purposes === undefined ? sql`` : sql` and purpose in (${sql.join(purposes)})`;
    const out = new Map<string, { states: Map<string, StateRow>; restrictionEventId: string | undefined }>();
    for (const id of subjectIds) out.set(id, { states: new Map(), restrictionEventId: undefined });
    for (let i = 0; i < subjectIds.length; i += IN_CHUNK) {
      const ids = sql.join(subjectIds.slice(i, i + IN_CHUNK));
      const { rows } = await sql<{
        kind: string; subject_id: string; purpose: string; event_id: string; decision: string; method: string; jurisdiction: string | null; gpc: number; recorded_at: string | Date; expires_at: string | Date | null;
      }>`select 'c' as kind, subject_id, purpose, event_id, decision, method, jurisdiction, gpc, recorded_at, expires_at from consent_state where subject_id in (${ids})${onlyPurposes}
        union all
        select 'r', subject_id, null, event_id, null, null, null, null, null, null from subject_restrictions where subject_id in (${ids}) and restricted = 1`.execute(db);
      for (const r of rows) {
        const entry = out.get(r.subject_id)!;
        if (r.kind === 'r') entry.restrictionEventId = r.event_id;
        else entry.states.set(r.purpose, stateRow(r));
      }
    }
    return out;
  },

  /**
   * For each of `subjectIds`, the decision and expiry of its state for `purpose` and whether it is restricted,
   * one query per chunk of ids. Calls `each` once per subject found (subjects with neither are not reported).
   * Columns only, no row objects kept: the consent filter's bulk path.
   */
  async decisionsOf(db: Executor, subjectIds: readonly string[], purpose: string, each: (subjectId: string, decision: string | null, expiresAtMs: number | null, restricted: boolean) => void): Promise<void> {
    for (let i = 0; i < subjectIds.length; i += IN_CHUNK) {
      const ids = sql.join(subjectIds.slice(i, i + IN_CHUNK));
      const { rows } = await sql<{ subject_id: string; decision: string | null; expires_at: string | Date | null; restricted: number }>`
        select subject_id, decision, expires_at, 0 as restricted from consent_state where subject_id in (${ids}) and purpose = ${purpose}
        union all
        select subject_id, null, null, 1 from subject_restrictions where subject_id in (${ids}) and restricted = 1`.execute(db);
      for (const r of rows) each(r.subject_id, r.decision, toMs(r.expires_at), Number(r.restricted) === 1);
    }
  },

  /** The projection rows of `subjectIds` whose deciding event is a GPC opt-out (method `gpc`). */
  async gpcStates(db: Executor, subjectIds: readonly string[]): Promise<Array<{ subject_id: string; purpose: string; event_id: string }>> {
    const out: Array<{ subject_id: string; purpose: string; event_id: string }> = [];
    for (let i = 0; i < subjectIds.length; i += IN_CHUNK) {
      const rows = await db.selectFrom('consent_state').select(['subject_id', 'purpose', 'event_id']).where('subject_id', 'in', subjectIds.slice(i, i + IN_CHUNK)).where('method', '=', 'gpc').execute();
      for (const r of rows) out.push({ subject_id: r.subject_id, purpose: r.purpose, event_id: String(r.event_id) });
    }
    return out;
  },

  /** The deciding event per purpose among events recorded at or before `at` (the as-of state). */
  async statesAsOf(db: Executor, subjectId: string, at: string, purpose?: string): Promise<Map<string, StateRow>> {
    let q = db
      .selectFrom('consent_events as e')
      .select(['e.purpose', 'e.id as event_id', 'e.decision', 'e.method', 'e.jurisdiction', 'e.gpc', 'e.recorded_at', 'e.expires_at'])
      .where('e.subject_id', '=', subjectId)
      .where('e.recorded_at', '<=', at)
      // The deciding event is the one no later event (by id) for the same purpose precedes `at`.
      // NOT EXISTS instead of max(id): PostgreSQL has no max(uuid).
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('consent_events as l')
              .select('l.id')
              .whereRef('l.subject_id', '=', 'e.subject_id')
              .whereRef('l.purpose', '=', 'e.purpose')
              .where('l.recorded_at', '<=', at)
              .whereRef('l.id', '>', 'e.id'),
          ),
        ),
      );
    if (purpose !== undefined) q = q.where('e.purpose', '=', purpose);
    const rows = await q.execute();
    return new Map(rows.map((r) => [r.purpose, stateRow(r)]));
  },

  /** One page of a subject's events in recording order. */
  async listEvents(
    db: Executor,
    subjectId: string,
    options: { purpose?: string | undefined; until?: string | undefined; after?: string | undefined; limit: number },
  ): Promise<EventRow[]> {
    let q = db.selectFrom('consent_events').selectAll().where('subject_id', '=', subjectId);
    if (options.purpose !== undefined) q = q.where('purpose', '=', options.purpose);
    if (options.until !== undefined) q = q.where('recorded_at', '<=', options.until);
    if (options.after !== undefined) q = q.where('id', '>', options.after);
    return q.orderBy('id').limit(options.limit).execute();
  },

  /**
   * One page of the projection in (subject_id, purpose) order, after the keyset `after`: the primary key's
   * order, so each page is one index range scan, O(limit), however deep the page.
   */
  async snapshotPage(
    db: Executor,
    options: { purpose?: string | undefined; after?: { subjectId: string; purpose: string } | undefined; limit: number },
  ): Promise<Array<{ subject_id: string; purpose: string; decision: string; event_id: string; expires_at: string | Date | null }>> {
    let q = db.selectFrom('consent_state').select(['subject_id', 'purpose', 'decision', 'event_id', 'expires_at']);
    if (options.purpose !== undefined) q = q.where('purpose', '=', options.purpose);
    const after = options.after;
    if (after !== undefined) {
      q = q.where((eb) => eb.or([eb('subject_id', '>', after.subjectId), eb.and([eb('subject_id', '=', after.subjectId), eb('purpose', '>', after.purpose)])]));
    }
    return q.orderBy('subject_id').orderBy('purpose').limit(options.limit).execute();
  },

  /**
   * Decisions counted per time bucket (UTC day or month), purpose and decision, for `from <= recorded_at < to`:
   * one grouped range scan, so the answer is O(buckets × purposes × decisions) rows whatever the number of events.
   */
  async decisionCounts(
    db: Executor,
    options: { from: string; to: string; bucket: 'day' | 'month' },
  ): Promise<Array<{ bucket: string; purpose: string; decision: Decision; count: number }>> {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    // SQLite stores instants as ISO-8601 text in UTC, so a prefix is the bucket; PostgreSQL formats in UTC.
    const bucket = postgres
      ? sql<string>`to_char(recorded_at at time zone 'UTC', ${sql.lit(options.bucket === 'day' ? 'YYYY-MM-DD' : 'YYYY-MM')})`
      : sql<string>`substr(recorded_at, 1, ${sql.lit(options.bucket === 'day' ? 10 : 7)})`;
    // Literals, not parameters: PostgreSQL matches the grouped expression to the selected one only when both are identical.
    const rows = await db
      .selectFrom('consent_events')
      .select((eb) => [bucket.as('bucket'), 'purpose', 'decision', eb.fn.countAll<number | string | bigint>().as('count')])
      .where('recorded_at', '>=', options.from)
      .where('recorded_at', '<', options.to)
      .groupBy([bucket, 'purpose', 'decision'])
      .orderBy('bucket')
      .orderBy('purpose')
      .orderBy('decision')
      .execute();
    return rows.map((r) => ({ bucket: r.bucket, purpose: r.purpose, decision: r.decision as Decision, count: Number(r.count) }));
  },

  /** Subjects whose processing is restricted now, with the restriction's event id, at most `limit`. */
  async restrictedSubjects(db: Executor, limit: number): Promise<Array<{ subject_id: string; event_id: string }>> {
    return db.selectFrom('subject_restrictions').select(['subject_id', 'event_id']).where('restricted', '=', 1).orderBy('subject_id').limit(limit).execute();
  },
};

/** ISO text of a stored instant, or null. */
export function isoOrNull(v: string | Date | null): string | null {
  return v === null ? null : storedToIso(v);
}
