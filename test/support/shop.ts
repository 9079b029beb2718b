import Database from 'better-sqlite3';
import type { ManifestInput } from '../../src/datamap/index.js';

/*
 * The sample "Test Shop" many tests run requests against: a SQLite application database (`shopDatabase`) and
 * the data map that describes it (`shopManifest`). Both read the same `ShopTables`, so the tables a test creates
 * and the collections its data map declares always agree:
 *
 *   customers (id, email, …)            found by e-mail address (identity `email`) or user id (`user_id`)
 *   orders    (id, customer_id, …)      each of one customer (customer_id references customers.id)
 *   logins    (id, customer_id, ip)     sign-ins of a customer
 *   visits    (id, ip, city)            not linked to anyone: no way to find the person there
 *
 * all in system `shop`, dataset `shop_db`, connection `sqlite:<path>`. Addresses are on example.com, IP
 * addresses in 203.0.113.0/24 (TEST-NET-3).
 *
 * @example
 * const SHOP = { customers: ['name', 'phone'], orders: ['total'], logins: true } satisfies ShopTables;
 * shopDatabase(path, { ...SHOP, rows: { orders: 6, logins: 8 } });
 * await custodian.datamap.put(shopManifest(path, SHOP), { actor: 'test' });
 */

/** A system of the data map, as written in a manifest (for {@link ShopManifestOptions.systems}). */
export type ShopSystem = NonNullable<ManifestInput['systems']>[number];
type CollectionInput = NonNullable<ShopSystem['datasets']>[number]['collections'][number];
/** A purpose of the data map, as written in a manifest. */
export type ShopPurpose = NonNullable<ManifestInput['purposes']>[number];
/** An erasure strategy, as written in a manifest (`'delete_row'`, `{ strategy: 'mask', value }`, …). */
export type ShopErasure = NonNullable<CollectionInput['erasure']>;
/** The data map {@link shopManifest} returns: a manifest value (not validated: `datamap.put` does that). */
export type ShopManifest = Required<ManifestInput>;

/** Columns `customers` may have besides `id` and `email`. */
export type CustomerColumn = 'name' | 'phone' | 'city' | 'password_hash' | 'segment';
/** Columns `orders` may have besides `id` and `customer_id`. */
export type OrderColumn = 'total' | 'created_at' | 'delivery_phone';
/** The shop's collections (tables). */
export type ShopCollection = 'customers' | 'orders' | 'logins' | 'visits';

/** Which tables the shop has, and which optional columns; read alike by {@link shopDatabase} and {@link shopManifest}. */
export interface ShopTables {
  /** The columns of `customers` after `id` and `email`, in this order (default `['name']`). */
  readonly customers?: readonly CustomerColumn[];
  /** The columns of `orders` after `id` and `customer_id`, in this order; without it, no `orders` table. */
  readonly orders?: readonly OrderColumn[];
  /** Whether there is a `logins (id, customer_id, ip)` table (default false). */
  readonly logins?: boolean;
  /** Whether there is a `visits (id, ip, city)` table, which refers to no customer (default false). */
  readonly visits?: boolean;
}

/** A row of `customers`; columns the table does not have are left out, those it has but the row lacks are NULL. */
export interface ShopCustomer {
  readonly id: string;
  readonly email: string;
  readonly name?: string;
  readonly phone?: string;
  readonly city?: string;
  readonly password_hash?: string;
  readonly segment?: string;
}

/** The first default customer: c-1, ada@example.com. */
export const ADA: ShopCustomer = { id: 'c-1', email: 'ada@example.com', name: 'Ada', phone: '+441' };
/** The second default customer: c-2, bob@example.com. */
export const BOB: ShopCustomer = { id: 'c-2', email: 'bob@example.com', name: 'Bob', phone: '+442' };

/** Options of {@link shopDatabase}. */
export interface ShopDatabaseOptions extends ShopTables {
  readonly rows?: {
    /** The customers (default {@link ADA} and {@link BOB}). */
    readonly customers?: readonly ShopCustomer[];
    /**
     * How many orders (default 0), handed out to the customers in turn (the first, the second, …, the first
     * again); order i has total 100 + i, created_at 2025-01-(i + 1), no delivery_phone.
     */
    readonly orders?: number;
    /** How many logins (default 0), handed out like the orders; login i comes from 203.0.113.i. */
    readonly logins?: number;
  };
}

/** Options of {@link shopManifest}. */
export interface ShopManifestOptions extends ShopTables {
  /** The organisation's name (default `Test Shop`). */
  readonly organization?: string;
  /** The data map's purposes (default {@link ORDERS}); the shop system serves the first. */
  readonly purposes?: readonly ShopPurpose[];
  /** Per collection: purposes of its own (besides the system's), an erasure strategy other than `delete_row`. */
  readonly collections?: { readonly [C in ShopCollection]?: { readonly purposes?: readonly string[]; readonly erasure?: ShopErasure } };
  /**
   * Per field, as `collection.field` (`customers.name`): a description shown to the person, an erasure strategy
   * of its own. A field the shop does not have is an error.
   */
  readonly fields?: { readonly [address: `${ShopCollection}.${string}`]: { readonly description?: string; readonly erasure?: ShopErasure } };
  /** Further systems of the same data map, after the shop (an HTTP service, say). */
  readonly systems?: readonly ShopSystem[];
}

/** The default purpose: orders, under contract. */
export const ORDERS: ShopPurpose = { key: 'orders', title: 'Orders', legalBasis: 'contract' };

interface Column {
  /** The column's SQL type and constraints. */
  readonly sql: string;
  /** The field's declaration in the data map, without its name. */
  readonly field: Readonly<Record<string, unknown>>;
}

const operations: Column = { sql: 'integer primary key', field: { primaryKey: true, dataCategories: ['system.operations'] } };
const customerId: Column = {
  sql: 'text not null references customers(id)',
  field: { dataCategories: ['user.unique_id'], references: [{ field: 'shop_db.customers.id', direction: 'from' }] },
};

/** Every column a table may have, in its default place: the SQL type and the data map's declaration. */
const COLUMNS: { readonly [C in ShopCollection]: Readonly<Record<string, Column>> } = {
  customers: {
    id: { sql: 'text primary key', field: { primaryKey: true, dataCategories: ['user.unique_id'], identity: 'user_id', indexed: true } },
    email: { sql: 'text not null unique', field: { dataCategories: ['user.contact.email'], identity: 'email', indexed: true } },
    name: { sql: 'text', field: { dataCategories: ['user.name'] } },
    phone: { sql: 'text', field: { dataCategories: ['user.contact.phone_number'] } },
    city: { sql: 'text', field: { dataCategories: ['user.contact.address.city'] } },
    password_hash: { sql: 'text', field: { dataCategories: ['user.authorization.credentials'] } },
    segment: { sql: 'text', field: { dataCategories: ['user.behavior'] } },
  },
  orders: {
    id: operations,
    customer_id: customerId,
    total: { sql: 'integer', field: { dataCategories: ['user.behavior.purchase_history'] } },
    created_at: { sql: 'text', field: { dataCategories: ['system.operations'] } },
    delivery_phone: { sql: 'text', field: { dataCategories: ['user.contact.phone_number'] } },
  },
  logins: { id: operations, customer_id: customerId, ip: { sql: 'text', field: { dataCategories: ['user.device.ip_address'] } } },
  visits: {
    id: operations,
    ip: { sql: 'text', field: { dataCategories: ['user.device.ip_address'] } },
    city: { sql: 'text', field: { dataCategories: ['user.contact.address.city'] } },
  },
};

/** The tables of `shape` with their columns, in order. */
function tablesOf(shape: ShopTables): Array<[ShopCollection, string[]]> {
  const tables: Array<[ShopCollection, string[]]> = [['customers', ['id', 'email', ...(shape.customers ?? ['name'])]]];
  if (shape.orders !== undefined) tables.push(['orders', ['id', 'customer_id', ...shape.orders]]);
  if (shape.logins === true) tables.push(['logins', ['id', 'customer_id', 'ip']]);
  if (shape.visits === true) tables.push(['visits', ['id', 'ip', 'city']]);
  return tables;
}

/**
 * Creates the shop's tables in a new SQLite file at `path` (foreign keys enforced while seeding) and fills them
 * with `options.rows`.
 *
 * @example
 * shopDatabase(join(dir, 'shop.db'), { customers: ['name', 'city'], rows: { customers: [{ id: 'c-1', email: 'lin@example.com', name: 'Lin', city: 'Lisbon' }] } });
 */
export function shopDatabase(path: string, options: ShopDatabaseOptions = {}): void {
  const tables = tablesOf(options);
  const columnsOf = new Map(tables);
  const customers = options.rows?.customers ?? [ADA, BOB];
  const db = new Database(path);
  try {
    db.pragma('foreign_keys = on');
    for (const [table, columns] of tables) db.exec(`create table ${table} (${columns.map((c) => `${c} ${COLUMNS[table][c]!.sql}`).join(', ')})`);
    const insert = (table: ShopCollection, values: object) => {
      const row = values as Readonly<Record<string, unknown>>;
      const columns = columnsOf.get(table)!.filter((c) => c !== 'id' || row.id !== undefined);
      db.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`).run(...columns.map((c) => row[c] ?? null));
    };
    for (const customer of customers) insert('customers', customer);
    const owner = (i: number, table: string): string => {
      const customer = customers[i % customers.length];
      if (customer === undefined) throw new Error(`shopDatabase: ${table} need customers`);
      return customer.id;
    };
    for (let i = 0; i < (options.rows?.orders ?? 0); i++) {
      if (!columnsOf.has('orders')) throw new Error('shopDatabase: orders without an orders table');
      insert('orders', { customer_id: owner(i, 'orders'), total: 100 + i, created_at: `2025-01-${String(i + 1).padStart(2, '0')}` });
    }
    for (let i = 0; i < (options.rows?.logins ?? 0); i++) {
      if (!columnsOf.has('logins')) throw new Error('shopDatabase: logins without a logins table');
      insert('logins', { customer_id: owner(i, 'logins'), ip: `203.0.113.${i}` });
    }
  } finally {
    db.close();
  }
}

/**
 * The data map of the shop whose database is at `path` (see {@link shopDatabase}): organisation `Test Shop`,
 * system `shop`, dataset `shop_db`, a collection per table, every one erased by deleting rows unless
 * `options.collections` or `options.fields` say otherwise.
 *
 * @example
 * shopManifest(path, { orders: [], collections: { orders: { erasure: { strategy: 'retain', legalBasis: 'legal_obligation', reason: 'tax records', retention: 'P10Y' } } } });
 */
export function shopManifest(path: string, options: ShopManifestOptions = {}): ShopManifest {
  // Copies throughout: a test may change the manifest it gets without changing the next one.
  const purposes = structuredClone([...(options.purposes ?? [ORDERS])]);
  const tables = tablesOf(options);
  for (const address of Object.keys(options.fields ?? {})) {
    const [table, field] = address.split('.');
    if (!tables.some(([t, columns]) => t === table && columns.includes(field!))) throw new Error(`shopManifest: the shop has no field ${address}`);
  }
  const collections = tables.map(([table, columns]) => {
    const change = options.collections?.[table];
    return {
      name: table,
      ...(change?.purposes === undefined ? {} : { purposes: [...change.purposes] }),
      erasure: change?.erasure ?? 'delete_row',
      fields: columns.map((name) => ({ name, ...structuredClone(COLUMNS[table][name]!.field), ...structuredClone(options.fields?.[`${table}.${name}`]) })),
    };
  });
  return {
    version: 1,
    organization: { name: options.organization ?? 'Test Shop' },
    purposes,
    systems: [
      {
        key: 'shop',
        name: 'Shop',
        owner: 'Platform',
        connection: `sqlite:${path}`,
        purposes: purposes.slice(0, 1).map((p) => p.key),
        datasets: [{ key: 'shop_db', collections }],
      },
      ...structuredClone([...(options.systems ?? [])]),
    ],
  };
}
