/**
 * The sample shop's relational schema, for SQLite and PostgreSQL (docs/sample-app.md). Every link between
 * tables is a declared FOREIGN KEY, so an erasure that deleted rows in the wrong order would fail instead of
 * silently leaving orphans; every column a request looks up by has an index.
 */

/** The SQL engines the shop database runs on. */
export type SampleDialect = 'sqlite' | 'postgres';

/** Tables in dependency order: a table comes after every table it references. */
export const SAMPLE_TABLES = [
  'employees',
  'customers',
  'addresses',
  'customer_addresses',
  'products',
  'orders',
  'order_items',
  'payment_cards',
  'logins',
  'visits',
  'support_tickets',
] as const;

/**
 * The DDL of the shop database: CREATE TABLE and CREATE INDEX statements, one per array element, in
 * dependency order. Timestamps are `timestamptz` on PostgreSQL and ISO-8601 text on SQLite.
 */
export function sampleSchemaSql(dialect: SampleDialect): string[] {
  const ts = dialect === 'postgres' ? 'timestamptz' : 'text';
  return [
    `create table employees (id integer primary key, full_name text not null, work_email text not null unique, team text not null)`,
    `create table customers (id integer primary key, email text not null unique, full_name text not null, phone text, created_at ${ts} not null, last_login_at ${ts})`,
    `create table addresses (id integer primary key, street text not null, postal_code text not null, city text not null, country text not null)`,
    `create table customer_addresses (id integer primary key, customer_id integer not null references customers (id), address_id integer not null references addresses (id), kind text not null)`,
    `create table products (id integer primary key, name text not null, price_cents integer not null)`,
    // customer_id is nullable: erasure unlinks a retained order from the customer row it deletes.
    `create table orders (id integer primary key, customer_id integer references customers (id), billing_name text not null, billing_email text not null, total_cents integer not null, created_at ${ts} not null)`,
    `create table order_items (id integer primary key, order_id integer not null references orders (id), product_id integer not null references products (id), quantity integer not null, unit_price_cents integer not null)`,
    `create table payment_cards (id integer primary key, customer_id integer not null references customers (id), token text not null, last4 text not null, expires text not null)`,
    `create table logins (id integer primary key, customer_id integer not null references customers (id), ip text not null, at ${ts} not null)`,
    `create table visits (id integer primary key, customer_id integer not null references customers (id), page text not null, ip text, at ${ts} not null)`,
    `create table support_tickets (id integer primary key, customer_id integer references customers (id), handled_by integer references employees (id), requester_email text, subject text, body text, opened_at ${ts} not null, closed_at ${ts})`,
    `create index customer_addresses_customer on customer_addresses (customer_id)`,
    `create index customer_addresses_address on customer_addresses (address_id)`,
    `create index orders_customer on orders (customer_id)`,
    `create index orders_billing_email on orders (billing_email)`,
    `create index order_items_order on order_items (order_id)`,
    `create index payment_cards_customer on payment_cards (customer_id)`,
    `create index logins_customer on logins (customer_id)`,
    `create index visits_customer on visits (customer_id)`,
    `create index support_tickets_customer on support_tickets (customer_id)`,
    `create index support_tickets_handled_by on support_tickets (handled_by)`,
    `create index support_tickets_requester on support_tickets (requester_email)`,
  ];
}

/** DROP statements for a re-seed, children first. */
export function dropSampleSchemaSql(): string[] {
  return [...SAMPLE_TABLES].reverse().map((t) => `drop table if exists ${t}`);
}
