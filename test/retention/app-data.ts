/*
 * The retention application: its data map, and the data a benchmark fills it with. Pure data (no drivers,
 * no test runner), so that the retention tests (fixtures.ts) and `npm run bench -- retention` describe the same
 * application from one place.
 */

/** Options of {@link retentionManifest}. */
export interface RetentionManifestOptions {
  /** Retention period of `events` (default P30D). */
  readonly eventsPeriod?: string;
  /** Whether the map has `profiles` (anonymised after a year) besides `events` (default true). */
  readonly profiles?: boolean;
  /** The organisation's name (default `Retention Test`). */
  readonly organization?: string;
}

/**
 * The data map of the retention application at `url`: `events (id, email, at, note)` deleted `eventsPeriod`
 * after `at`, with `email` an identity; `profiles (id, email, name, phone, last_seen)` anonymised a year after
 * `last_seen` (email hashed, name masked, phone cleared).
 *
 * @example
 * await custodian.datamap.put(retentionManifest(app.url, { eventsPeriod: 'P1Y', profiles: false }), { actor: 'bench' });
 */
export function retentionManifest(url: string, options: RetentionManifestOptions = {}) {
  const events = {
    name: 'events',
    erasure: 'delete_row',
    retention: [{ field: 'at', period: options.eventsPeriod ?? 'P30D', action: 'delete' }],
    fields: [
      { name: 'id', primaryKey: true, dataCategories: ['system.operations'] },
      { name: 'email', dataCategories: ['user.contact.email'], identity: 'email', indexed: false },
      { name: 'at', dataCategories: ['system.operations'] },
      { name: 'note', dataCategories: ['system.operations'] },
    ],
  };
  const profiles = {
    name: 'profiles',
    erasure: 'delete_row',
    retention: [{ field: 'last_seen', period: 'P1Y', action: 'anonymise', fields: ['email', 'name', 'phone'] }],
    fields: [
      { name: 'id', primaryKey: true, dataCategories: ['user.unique_id'] },
      { name: 'email', dataCategories: ['user.contact.email'], identity: 'email', indexed: false, erasure: 'hash' },
      { name: 'name', dataCategories: ['user.name'], erasure: { strategy: 'mask', value: 'REDACTED' } },
      { name: 'phone', dataCategories: ['user.contact.phone_number'], erasure: 'null' },
      { name: 'last_seen', dataCategories: ['system.operations'] },
    ],
  };
  return {
    version: 1,
    organization: { name: options.organization ?? 'Retention Test' },
    purposes: [{ key: 'analytics', title: 'Analytics', legalBasis: 'legitimate_interests', legitimateInterest: 'Product statistics' }],
    systems: [
      {
        key: 'app',
        name: 'App',
        owner: 'Platform',
        connection: url,
        purposes: ['analytics'],
        datasets: [{ key: 'app_db', collections: options.profiles === false ? [events] : [events, profiles] }],
      },
    ],
  };
}

/**
 * PostgreSQL statements that create `events` at scale for the benchmark: `id bigint primary key, email, at
 * timestamptz(3), note`, `rows` rows generated in the database (`generate_series`), every third one past due
 * (400 days old, interleaved over the key range; the rest 10 days old), e-mail addresses of 100,000 subjects.
 */
export function eventsAtScale(table: string, rows: number): { readonly create: string; readonly fill: string } {
  if (!/^[a-z_]+$/.test(table) || !Number.isSafeInteger(rows) || rows < 0) throw new Error('eventsAtScale: a lower-case table name and a row count');
  return {
    create: `create table ${table} (id bigint primary key, email text not null, at timestamptz(3) not null, note text)`,
    fill: `insert into ${table} select g, 'user' || (g % 100000) || '@example.com', case when g % 3 = 0 then now() - interval '400 days' else now() - interval '10 days' end, repeat('x', 100) from generate_series(1, ${rows}) g`,
  };
}
