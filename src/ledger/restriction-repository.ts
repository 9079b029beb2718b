import type { Insertable, Selectable } from 'kysely';
import type { Executor, SubjectRestrictionsEventsTable, SubjectRestrictionsTable } from '../store/index.js';

export type RestrictionRow = Selectable<SubjectRestrictionsTable>;
export type NewRestrictionEventRow = Insertable<SubjectRestrictionsEventsTable>;

/** What a check needs of a subject's restriction (loaded with its consent states): that it is in force, and by which event. */
export interface ActiveRestriction {
  readonly eventId: string;
}

/** SQL of restrictions of processing: portable Kysely queries shared by SQLite and PostgreSQL. */
export const restrictionRepository = {
  /** The projection row of one subject, or undefined when it was never restricted. */
  async current(db: Executor, subjectId: string): Promise<RestrictionRow | undefined> {
    return db.selectFrom('subject_restrictions').selectAll().where('subject_id', '=', subjectId).executeTakeFirst();
  },

  /**
   * Appends `event` and moves the subject's projection row to it (insert or update; the database checks that
   * the row follows the event). Run inside the transaction that holds the subject's restriction lock.
   */
  async append(db: Executor, event: NewRestrictionEventRow, since: string | null, exists: boolean): Promise<void> {
    await db.insertInto('subject_restrictions_events').values(event).execute();
    const row = {
      restricted: event.action === 'restricted' ? 1 : 0,
      reason: event.reason,
      request_id: event.request_id ?? null,
      since,
      event_id: event.id,
      updated_at: event.at,
    };
    if (exists) await db.updateTable('subject_restrictions').set(row).where('subject_id', '=', event.subject_id).execute();
    else await db.insertInto('subject_restrictions').values({ subject_id: event.subject_id, ...row }).execute();
  },
};
