import {
  CustodianError,
  EVENT_SCHEMA_VERSION,
  EVENT_SOURCE,
  EVENT_TYPES,
  toIso,
  uuidv7,
  type Clock,
  type CustodianEvent,
  type EventInput,
  type EventSink,
  type EventType,
} from '../core/index.js';
import type { Executor, Store } from '../store/index.js';

/** The lock that makes outbox positions follow commit order (see {@link Outbox.emit}). */
const OUTBOX_LOCK = 'custodian:event_outbox';

/** A stored outbox row, as read back. */
interface OutboxRow {
  seq: number | string;
  id: string;
  type: string;
  subject_id: string | null;
  purposes: string;
  time: string | Date;
  data: string;
}

/** Renders a stored outbox row as the delivered CloudEvents envelope. */
export function toCloudEvent(row: OutboxRow): CustodianEvent {
  const purposes = JSON.parse(row.purposes) as string[];
  const data = JSON.parse(row.data) as Record<string, unknown>;
  return {
    specversion: '1.0',
    id: row.id,
    source: EVENT_SOURCE,
    type: row.type as EventType,
    ...(row.subject_id === null ? {} : { subject: row.subject_id }),
    time: toIso(row.time instanceof Date ? row.time.getTime() : Date.parse(row.time)),
    datacontenttype: 'application/json',
    sequence: String(row.seq),
    schemaversion: EVENT_SCHEMA_VERSION,
    data: { subjectId: row.subject_id, purposes, ...data },
  };
}

/**
 * The transactional outbox: modules {@link emit} events inside the transaction of the change they announce, so an
 * event exists if and only if its change committed; dispatchers read them after commit, in `sequence` order.
 *
 * Positions follow commit order: emitting takes a transaction-scoped lock (PostgreSQL advisory lock; SQLite write
 * transactions are exclusive anyway), so no transaction can commit a lower position after a reader has seen a
 * higher one. A reader that resumes from "the last position I handled" therefore never skips an event.
 */
export class Outbox implements EventSink {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #listeners = new Set<() => void>();

  constructor(deps: { store: Store; clock: Clock }) {
    this.#store = deps.store;
    this.#clock = deps.clock;
  }

  async emit(trx: unknown, events: readonly EventInput[]): Promise<void> {
    if (events.length === 0) return;
    const t = trx as Executor;
    const now = this.#clock.now();
    const time = toIso(now);
    const rows = events.map((e) => {
      if (!(e.type in EVENT_TYPES)) throw new CustodianError('CST_ERR_INTERNAL', 'unknown event type', { details: { type: e.type } });
      const { subjectId: _s, purposes: _p, ...data } = e.data as Record<string, unknown>;
      return { id: uuidv7(now), type: e.type, subject_id: e.subjectId, purposes: JSON.stringify(e.purposes), time, data: JSON.stringify(data) };
    });
    await this.#store.lock(t, OUTBOX_LOCK);
    for (let i = 0; i < rows.length; i += 500) await t.insertInto('event_outbox').values(rows.slice(i, i + 500)).execute();
    await this.#store.announceChange(t, 'events', ['outbox']);
  }

  committed(): void {
    for (const l of this.#listeners) l();
  }

  /** Calls `listener` whenever a local writer committed events; returns the function that stops it. */
  onCommitted(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Events after position `afterSeq`, in order, at most `limit`. */
  async read(afterSeq: number, limit: number, db: Executor = this.#store.db): Promise<CustodianEvent[]> {
    const rows = await db.selectFrom('event_outbox').selectAll().where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
    return rows.map(toCloudEvent);
  }

  /** Events at or after `time` (ISO-8601), in order, at most `limit`; for replays. */
  async readFromTime(time: string, afterSeq: number, limit: number): Promise<CustodianEvent[]> {
    const rows = await this.#store.db
      .selectFrom('event_outbox')
      .selectAll()
      .where('time', '>=', this.#instant(time))
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map(toCloudEvent);
  }

  /** The event with this id, or null. */
  async get(id: string): Promise<CustodianEvent | null> {
    const row = await this.#store.db.selectFrom('event_outbox').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? null : toCloudEvent(row);
  }

  /** The highest position written so far (0 when empty). */
  async head(db: Executor = this.#store.db): Promise<number> {
    const row = await db.selectFrom('event_outbox').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return row?.seq == null ? 0 : Number(row.seq);
  }

  /** Deletes events at or before position `throughSeq` recorded before `before` (ISO); returns how many. */
  async prune(throughSeq: number, before: string): Promise<number> {
    const r = await this.#store.db.deleteFrom('event_outbox').where('seq', '<=', throughSeq).where('time', '<', this.#instant(before)).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  #instant(iso: string): string {
    return new Date(Date.parse(iso)).toISOString();
  }
}
