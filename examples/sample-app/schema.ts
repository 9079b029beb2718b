/**
 * The sample shop's relational schema, for SQLite, PostgreSQL and MySQL/MariaDB (docs/sample-app.md). Every link between
 * tables is a declared FOREIGN KEY, so an erasure that deleted rows in the wrong order would fail instead of
 * silently leaving orphans; every column a request looks up by has an index.
 */

/** The SQL engines the shop database runs on. */
export type SampleDialect = 'sqlite' | 'postgres' | 'mysql';

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
 * dependency order. Timestamps are `timestamptz` on PostgreSQL, ISO-8601 text on SQLite and UTC
 * `datetime(3)` on MySQL/MariaDB (see {@link mysqlSchemaSql}).
 */
export function sampleSchemaSql(dialect: SampleDialect): string[] {
  if (dialect === 'mysql') return mysqlSchemaSql();
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

/**
 * The MySQL/MariaDB DDL: InnoDB tables in utf8mb4, one CREATE TABLE per table. Foreign keys are table-level
 * `FOREIGN KEY` clauses (MySQL parses and silently ignores a column-level `REFERENCES`), and every index is
 * declared inside its CREATE TABLE, so InnoDB never adds (or later drops) an implicit one for a foreign key.
 * Looked-up text columns are `varchar(255)` (a `text` column cannot be indexed without a prefix); the
 * timestamps hold UTC (`datetime` does no time-zone conversion).
 */
function mysqlSchemaSql(): string[] {
  const ts = 'datetime(3)';
  const str = 'varchar(255)';
  const table = (name: string, body: string[]): string =>
    `create table ${name} (${body.join(', ')}) engine=InnoDB default charset=utf8mb4 collate=utf8mb4_unicode_ci`;
  return [
    table('employees', ['id int primary key', `full_name ${str} not null`, `work_email ${str} not null`, `team ${str} not null`, 'unique key employees_work_email (work_email)']),
    table('customers', ['id int primary key', `email ${str} not null`, `full_name ${str} not null`, `phone ${str}`, `created_at ${ts} not null`, `last_login_at ${ts}`, 'unique key customers_email (email)']),
    table('addresses', ['id int primary key', `street ${str} not null`, `postal_code ${str} not null`, `city ${str} not null`, `country ${str} not null`]),
    table('customer_addresses', [
      'id int primary key',
      'customer_id int not null',
      'address_id int not null',
      `kind ${str} not null`,
      'key customer_addresses_customer (customer_id)',
      'key customer_addresses_address (address_id)',
      'constraint customer_addresses_customer_fk foreign key (customer_id) references customers (id)',
      'constraint customer_addresses_address_fk foreign key (address_id) references addresses (id)',
    ]),
    table('products', ['id int primary key', `name ${str} not null`, 'price_cents int not null']),
    // customer_id is nullable: erasure unlinks a retained order from the customer row it deletes.
    table('orders', [
      'id int primary key',
      'customer_id int',
      `billing_name ${str} not null`,
      `billing_email ${str} not null`,
      'total_cents int not null',
      `created_at ${ts} not null`,
      'key orders_customer (customer_id)',
      'key orders_billing_email (billing_email)',
      'constraint orders_customer_fk foreign key (customer_id) references customers (id)',
    ]),
    table('order_items', [
      'id int primary key',
      'order_id int not null',
      'product_id int not null',
      'quantity int not null',
      'unit_price_cents int not null',
      'key order_items_order (order_id)',
      'key order_items_product (product_id)',
      'constraint order_items_order_fk foreign key (order_id) references orders (id)',
      'constraint order_items_product_fk foreign key (product_id) references products (id)',
    ]),
    table('payment_cards', [
      'id int primary key',
      'customer_id int not null',
      `token ${str} not null`,
      `last4 ${str} not null`,
      `expires ${str} not null`,
      'key payment_cards_customer (customer_id)',
      'constraint payment_cards_customer_fk foreign key (customer_id) references customers (id)',
    ]),
    table('logins', ['id int primary key', 'customer_id int not null', `ip ${str} not null`, `at ${ts} not null`, 'key logins_customer (customer_id)', 'constraint logins_customer_fk foreign key (customer_id) references customers (id)']),
    table('visits', ['id int primary key', 'customer_id int not null', `page ${str} not null`, `ip ${str}`, `at ${ts} not null`, 'key visits_customer (customer_id)', 'constraint visits_customer_fk foreign key (customer_id) references customers (id)']),
    table('support_tickets', [
      'id int primary key',
      'customer_id int',
      'handled_by int',
      `requester_email ${str}`,
      `subject ${str}`,
      'body text',
      `opened_at ${ts} not null`,
      `closed_at ${ts}`,
      'key support_tickets_customer (customer_id)',
      'key support_tickets_handled_by (handled_by)',
      'key support_tickets_requester (requester_email)',
      'constraint support_tickets_customer_fk foreign key (customer_id) references customers (id)',
      'constraint support_tickets_handled_by_fk foreign key (handled_by) references employees (id)',
    ]),
  ];
}

/** DROP statements for a re-seed, children first. */
export function dropSampleSchemaSql(): string[] {
  return [...SAMPLE_TABLES].reverse().map((t) => `drop table if exists ${t}`);
}
