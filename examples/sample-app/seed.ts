import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { sampleManifestYaml } from './manifest.js';
import { SAMPLE_TABLES, dropSampleSchemaSql, sampleSchemaSql } from './schema.js';

/**
 * Seeds the sample shop (docs/sample-app.md) with synthetic people only: `example.com` addresses, invented
 * names, documentation IP ranges (RFC 5737), card tokens that no provider issued.
 *
 * Structure (deterministic, so tests can rely on it; values come from a seeded generator):
 * - customers 2k-1 and 2k share a home address (a household); every odd customer also has a work address of
 *   their own;
 * - customer i has (i mod 3) + 1 orders of 1–3 items, one payment card (two when i is a multiple of 4),
 *   2 + (i mod 3) logins and 3 visits;
 * - every odd customer opened one support ticket, handled by employee 1 + (i mod employees);
 * - every customer has two training events; odd customers are on the newsletter; customers with i mod 3 ≠ 0
 *   have a loyalty account, dormant (last activity in 2022 or early 2023) when i mod 4 = 0.
 */
export interface SeedSampleAppOptions {
  /** Folder for the SQLite file, the JSONL training set, the loyalty data and the manifest (created). */
  readonly dir: string;
  /** SQLite file of the shop database; default `<dir>/shop.db`. */
  readonly sqlitePath?: string;
  /** When given, the shop database is also created there, and the manifest points at it. */
  readonly postgresUrl?: string;
  /**
   * `mysql://user[:password]@host[:port]/db` (or `mariadb://…`) of an existing MySQL/MariaDB database: the shop
   * tables are (re)created there and the manifest points at it. Not together with `postgresUrl`.
   */
  readonly mysqlUrl?: string;
  /** When given, the newsletter list is written there and declared in the manifest. */
  readonly redisUrl?: string;
  /** Prefix of every newsletter key (isolates parallel runs). */
  readonly redisPrefix?: string;
  /** Base URL of a running loyalty service's privacy endpoints; when given, declared in the manifest. */
  readonly loyaltyUrl?: string;
  /** Number of customers (default 50, at least 2). */
  readonly customers?: number;
  /** Seed of the value generator (default 1). */
  readonly seed?: number;
}

/** A seeded customer, for tests and demos. */
export interface SamplePerson {
  readonly email: string;
  readonly userId: string;
}

/** What {@link seedSampleApp} made. */
export interface SeedSampleAppResult {
  /** The data map (YAML text), connections pointing at what was created; also written to `<dir>/custodian.yaml`. */
  readonly manifest: string;
  readonly manifestPath: string;
  readonly people: SamplePerson[];
  readonly employees: Array<{ readonly email: string; readonly employeeId: string }>;
  /** Loyalty accounts, also written to `<dir>/loyalty/accounts.json` for {@link startLoyaltyService}. */
  readonly loyaltyAccounts: LoyaltyAccount[];
}

/** One account of the loyalty service. */
export interface LoyaltyAccount {
  email: string;
  points: number;
  tier: string;
  /** When the member last earned or redeemed points (ISO-8601 UTC): the age field of the retention rule. */
  last_activity_at: string;
}

const FIRST = ['ada', 'grace', 'alan', 'marie', 'noor', 'sven', 'chiara', 'kenji', 'amara', 'lucas', 'ines', 'tomasz'];
const LAST = ['lovelace', 'hopper', 'turing', 'curie', 'okafor', 'lindqvist', 'rossi', 'tanaka', 'mensah', 'moreau', 'silva', 'nowak'];
const STREETS = ['Lindenallee', 'Hafenweg', 'Gartenstraße', 'Am Markt', 'Bergstraße', 'Uferweg'];
const CITIES = [['10115', 'Berlin'], ['20095', 'Hamburg'], ['50667', 'Köln'], ['80331', 'München']] as const;
const PRODUCTS = ['Rain jacket', 'Wool socks', 'Hiking boots', 'Water bottle', 'Trail map', 'Head torch', 'Backpack 30 l', 'Sun hat', 'Gaiters', 'First-aid kit', 'Fleece', 'Compass'];
const PAGES = ['/', '/products/1', '/products/7', '/cart', '/checkout', '/help'];
const EMPLOYEES = 5;
const BASE_MS = Date.parse('2025-01-06T09:00:00.000Z');

/** mulberry32: a small seeded generator, so the same seed always gives the same shop. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Row = Record<string, string | number | null>;

/** The generated rows of every table, plus the non-SQL systems' data. */
export interface SampleData {
  readonly tables: Record<(typeof SAMPLE_TABLES)[number], Row[]>;
  readonly trainingEvents: Array<{ event_id: string; user_id: number; features: Record<string, number>; label: string; at: string }>;
  readonly newsletter: Array<{ email: string; name: string; subscribed_at: string }>;
  readonly loyalty: LoyaltyAccount[];
  readonly people: SamplePerson[];
  readonly employees: Array<{ email: string; employeeId: string }>;
}

/** Generates the sample shop's data in memory (pure; {@link seedSampleApp} writes it). */
export function generateSampleData(customers = 50, seed = 1): SampleData {
  if (!Number.isInteger(customers) || customers < 2) throw new Error('customers must be an integer of at least 2');
  const rnd = generator(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const at = (days: number): string => new Date(BASE_MS + Math.floor(days * 86_400_000)).toISOString();
  const ip = (): string => `198.51.100.${1 + Math.floor(rnd() * 254)}`; // RFC 5737 documentation range
  const tables: SampleData['tables'] = { employees: [], customers: [], addresses: [], customer_addresses: [], products: [], orders: [], order_items: [], payment_cards: [], logins: [], visits: [], support_tickets: [] };
  const employees: SampleData['employees'] = [];
  for (let e = 1; e <= EMPLOYEES; e++) {
    const email = `agent${e}@staff.sample-shop.example`;
    tables.employees.push({ id: e, full_name: `${cap(pick(FIRST))} ${cap(pick(LAST))}`, work_email: email, team: e <= 3 ? 'support' : 'returns' });
    employees.push({ email, employeeId: String(e) });
  }
  PRODUCTS.forEach((name, i) => tables.products.push({ id: i + 1, name, price_cents: 500 + ((i * 1337) % 9000) }));
  const people: SamplePerson[] = [];
  const trainingEvents: SampleData['trainingEvents'] = [];
  const newsletter: SampleData['newsletter'] = [];
  const loyalty: LoyaltyAccount[] = [];
  let ids = { address: 0, link: 0, order: 0, item: 0, card: 0, login: 0, visit: 0, ticket: 0, event: 0 };
  const next = (k: keyof typeof ids): number => (ids = { ...ids, [k]: ids[k] + 1 })[k];
  let householdAddress = 0;
  for (let i = 1; i <= customers; i++) {
    const first = pick(FIRST);
    const last = pick(LAST);
    const name = `${cap(first)} ${cap(last)}`;
    const email = `${first}.${last}.${i}@example.com`;
    const created = rnd() * 300;
    tables.customers.push({ id: i, email, full_name: name, phone: `+49 30 5550${String(i).padStart(6, '0')}`, created_at: at(created), last_login_at: at(created + 30 + rnd() * 60) });
    people.push({ email, userId: String(i) });
    // Households of two share their home address.
    if (i % 2 === 1) {
      householdAddress = next('address');
      const [postal, city] = pick(CITIES);
      tables.addresses.push({ id: householdAddress, street: `${pick(STREETS)} ${1 + Math.floor(rnd() * 120)}`, postal_code: postal, city, country: 'DE' });
    }
    tables.customer_addresses.push({ id: next('link'), customer_id: i, address_id: householdAddress, kind: 'home' });
    if (i % 2 === 1) {
      const work = next('address');
      const [postal, city] = pick(CITIES);
      tables.addresses.push({ id: work, street: `${pick(STREETS)} ${1 + Math.floor(rnd() * 120)}`, postal_code: postal, city, country: 'DE' });
      tables.customer_addresses.push({ id: next('link'), customer_id: i, address_id: work, kind: 'work' });
    }
    for (let o = 0; o < (i % 3) + 1; o++) {
      const order = next('order');
      let total = 0;
      const items = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < items; k++) {
        const product = tables.products[Math.floor(rnd() * PRODUCTS.length)]!;
        const quantity = 1 + Math.floor(rnd() * 3);
        total += quantity * Number(product.price_cents);
        tables.order_items.push({ id: next('item'), order_id: order, product_id: Number(product.id), quantity, unit_price_cents: Number(product.price_cents) });
      }
      tables.orders.push({ id: order, customer_id: i, billing_name: name, billing_email: email, total_cents: total, created_at: at(created + 1 + o * 20) });
    }
    for (let c = 0; c < (i % 4 === 0 ? 2 : 1); c++) {
      tables.payment_cards.push({ id: next('card'), customer_id: i, token: `tok_sample_${i}_${c}_${Math.floor(rnd() * 1e9).toString(36)}`, last4: String(Math.floor(rnd() * 10_000)).padStart(4, '0'), expires: `${String(1 + Math.floor(rnd() * 12)).padStart(2, '0')}/2${8 + c}` });
    }
    for (let l = 0; l < 2 + (i % 3); l++) tables.logins.push({ id: next('login'), customer_id: i, ip: ip(), at: at(created + 5 + l * 7) });
    for (let v = 0; v < 3; v++) tables.visits.push({ id: next('visit'), customer_id: i, page: pick(PAGES), ip: ip(), at: at(created + v) });
    if (i % 2 === 1) {
      const opened = created + 10;
      tables.support_tickets.push({
        id: next('ticket'),
        customer_id: i,
        handled_by: 1 + (i % EMPLOYEES),
        requester_email: email,
        subject: 'Where is my parcel?',
        body: `Hello, my order has not arrived yet. Please call me on +49 30 5550${String(i).padStart(6, '0')}. ${name}`,
        opened_at: at(opened),
        closed_at: at(opened + 2),
      });
    }
    for (let t = 0; t < 2; t++) {
      trainingEvents.push({ event_id: `ev-${next('event')}`, user_id: i, features: { views: Math.floor(rnd() * 40), basket: Math.floor(rnd() * 5), recency_days: Math.floor(rnd() * 90) }, label: pick(PRODUCTS), at: at(created + t) });
    }
    if (i % 2 === 1) newsletter.push({ email, name, subscribed_at: at(created) });
    if (i % 3 !== 0) {
      // Every fourth member has not used the programme since 2022 or early 2023: past the two years of the retention rule.
      // Derived from i, not drawn, so that the generator's sequence (and every later value) stays as it was.
      const lastActivity = i % 4 === 0 ? at(-700 - 3 * (i % 100)) : at(created + 60);
      loyalty.push({ email, points: Math.floor(rnd() * 5000), tier: pick(['bronze', 'silver', 'gold']), last_activity_at: lastActivity });
    }
  }
  return { tables, trainingEvents, newsletter, loyalty, people, employees };
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * Creates the sample shop: the shop database (SQLite always, PostgreSQL or MySQL/MariaDB too when `postgresUrl`
 * or `mysqlUrl` is given), the
 * JSONL training set, the newsletter in Redis (when `redisUrl` is given), the loyalty data file, and the data
 * map pointing at all of it (`<dir>/custodian.yaml`). Existing sample tables, files and keys are replaced.
 *
 * @example
 * const { manifest, people } = await seedSampleApp({ dir: '.sample' });
 */
export async function seedSampleApp(options: SeedSampleAppOptions): Promise<SeedSampleAppResult> {
  if (options.postgresUrl !== undefined && options.mysqlUrl !== undefined) throw new Error('give postgresUrl or mysqlUrl, not both: the data map points at one shop database');
  const dir = resolve(options.dir);
  const data = generateSampleData(options.customers ?? 50, options.seed ?? 1);
  await mkdir(join(dir, 'training'), { recursive: true });
  await mkdir(join(dir, 'loyalty'), { recursive: true });

  const sqlitePath = resolve(options.sqlitePath ?? join(dir, 'shop.db'));
  await rm(sqlitePath, { force: true });
  await rm(`${sqlitePath}-wal`, { force: true });
  await rm(`${sqlitePath}-shm`, { force: true });
  writeSqlite(sqlitePath, data);
  if (options.postgresUrl !== undefined) await writePostgres(options.postgresUrl, data);
  if (options.mysqlUrl !== undefined) await writeMysql(options.mysqlUrl, data);

  await writeFile(join(dir, 'training', 'events.jsonl'), data.trainingEvents.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await writeFile(join(dir, 'loyalty', 'accounts.json'), JSON.stringify(data.loyalty, null, 2) + '\n');
  if (options.redisUrl !== undefined) await writeRedis(options.redisUrl, options.redisPrefix ?? '', data);

  const manifest = sampleManifestYaml({
    shop: options.postgresUrl ?? options.mysqlUrl ?? `sqlite:${sqlitePath}`,
    training: `jsonl:${dir}`,
    newsletter: options.redisUrl,
    newsletterPrefix: options.redisPrefix,
    loyalty: options.loyaltyUrl,
  });
  const manifestPath = join(dir, 'custodian.yaml');
  await writeFile(manifestPath, manifest);
  return { manifest, manifestPath, people: data.people, employees: data.employees, loyaltyAccounts: data.loyalty };
}

function writeSqlite(path: string, data: SampleData): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.transaction(() => {
      for (const statement of sampleSchemaSql('sqlite')) db.exec(statement);
      for (const table of SAMPLE_TABLES) {
        const rows = data.tables[table];
        if (rows.length === 0) continue;
        const columns = Object.keys(rows[0]!);
        const insert = db.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map((c) => `@${c}`).join(', ')})`);
        for (const row of rows) insert.run(row);
      }
    })();
  } finally {
    db.close();
  }
}

async function writePostgres(url: string, data: SampleData): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin');
    for (const statement of [...dropSampleSchemaSql().map((s) => `${s} cascade`), ...sampleSchemaSql('postgres')]) await client.query(statement);
    for (const table of SAMPLE_TABLES) {
      const rows = data.tables[table];
      if (rows.length === 0) continue;
      const columns = Object.keys(rows[0]!);
      // One INSERT … SELECT unnest(…) per table: every column as one array parameter.
      const arrays = columns.map((c) => rows.map((r) => (r[c] === null ? null : String(r[c]))));
      const types = columns.map((c) => pgType(c));
      const select = columns.map((c, i) => `t.${c}::${types[i]!}`).join(', ');
      await client.query(`insert into ${table} (${columns.join(', ')}) select ${select} from unnest(${columns.map((_c, i) => `$${i + 1}::text[]`).join(', ')}) as t(${columns.join(', ')})`, arrays);
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

const TIMESTAMP_COLUMNS = ['created_at', 'last_login_at', 'at', 'opened_at', 'closed_at'];

function pgType(column: string): string {
  if (column === 'id' || column.endsWith('_id') || ['handled_by', 'quantity', 'unit_price_cents', 'total_cents', 'price_cents'].includes(column)) return 'integer';
  if (TIMESTAMP_COLUMNS.includes(column)) return 'timestamptz';
  return 'text';
}

/** Rows per multi-row INSERT on MySQL (far below max_allowed_packet and the 65,535 placeholders limit). */
const MYSQL_INSERT_ROWS = 500;

async function writeMysql(url: string, data: SampleData): Promise<void> {
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database === '') throw new Error('the MySQL URL must name an existing database, e.g. mysql://root@127.0.0.1:3306/shop');
  const conn = await mysql.createConnection({
    host: u.hostname,
    port: u.port === '' ? 3306 : Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database,
    charset: 'utf8mb4',
    // The datetime columns hold UTC (see schema.ts): no session time-zone conversion anywhere.
    timezone: 'Z',
  });
  try {
    // DDL commits implicitly on MySQL: only the inserts run in the transaction.
    for (const statement of [...dropSampleSchemaSql(), ...sampleSchemaSql('mysql')]) await conn.query(statement);
    await conn.beginTransaction();
    try {
      for (const table of SAMPLE_TABLES) {
        const rows = data.tables[table];
        if (rows.length === 0) continue;
        const columns = Object.keys(rows[0]!);
        for (let i = 0; i < rows.length; i += MYSQL_INSERT_ROWS) {
          const part = rows.slice(i, i + MYSQL_INSERT_ROWS);
          const values = part.map(() => `(${columns.map(() => '?').join(', ')})`).join(', ');
          await conn.query(`insert into ${table} (${columns.join(', ')}) values ${values}`, part.flatMap((r) => columns.map((c) => mysqlValue(c, r[c] ?? null))));
        }
      }
      await conn.commit();
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    }
  } finally {
    await conn.end();
  }
}

/** `datetime` takes no `T`/`Z`: an ISO-8601 UTC timestamp becomes `YYYY-MM-DD HH:MM:SS.mmm`. */
function mysqlValue(column: string, value: string | number | null): string | number | null {
  if (typeof value === 'string' && TIMESTAMP_COLUMNS.includes(column)) return value.replace('T', ' ').replace(/Z$/, '');
  return value;
}

async function writeRedis(url: string, prefix: string, data: SampleData): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const pipeline = redis.pipeline();
    for (const s of data.newsletter) pipeline.del(`${prefix}newsletter:${s.email}`).hset(`${prefix}newsletter:${s.email}`, { email: s.email, name: s.name, subscribed_at: s.subscribed_at });
    await pipeline.exec();
  } finally {
    redis.disconnect();
  }
}
