import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { SqlEngine } from '../../src/connectors/index.js';
import { createPgDatabase } from '../support/stores.js';
import * as gen from './generators.js';

/*
 * A labelled test database: tables with columns of each kind of personal data the scanner should find, and
 * look-alikes it should not (email_template, phone_model, 16-digit order numbers failing Luhn,
 * ip_allowlist_comment…). Every value is synthetic (example.com / .test addresses, generated identifiers).
 */

type ColumnType = 'text' | 'int' | 'bigint' | 'date' | 'bool' | 'timestamp';
type Value = string | number | boolean | null;

export interface LabelledColumn {
  readonly name: string;
  readonly type: ColumnType;
  readonly gen: (r: gen.Rand, i: number) => Value;
  /** The fideslang category the scanner should propose, or null for a column that is not personal data. */
  readonly expected: string | null;
  readonly unique?: boolean;
}

export interface LabelledTable {
  readonly name: string;
  readonly columns: readonly LabelledColumn[];
}

const C = {
  email: 'user.contact.email',
  phone: 'user.contact.phone_number',
  ip: 'user.device.ip_address',
  card: 'user.financial.credit_card',
  bank: 'user.financial.bank_account',
  natId: 'user.government_id.national_identification_number',
  dob: 'user.demographic.date_of_birth',
  first: 'user.name.first',
  last: 'user.name.last',
  name: 'user.name',
  address: 'user.contact.address',
  street: 'user.contact.address.street',
  postal: 'user.contact.address.postal_code',
  city: 'user.contact.address.city',
  text: 'user.content.private',
} as const;

const col = (name: string, type: ColumnType, g: LabelledColumn['gen'], expected: string | null, unique = false): LabelledColumn => ({ name, type, gen: g, expected, unique });
const sometimes = (r: gen.Rand, p: number, f: () => Value): Value => (r() < p ? f() : null);

export const LABELLED_TABLES: readonly LabelledTable[] = [
  {
    name: 'customers',
    columns: [
      col('email', 'text', (r, i) => gen.email(r, i), C.email, true),
      col('first_name', 'text', (r) => gen.firstName(r), C.first),
      col('last_name', 'text', (r) => gen.lastName(r), C.last),
      col('phone', 'text', (r) => sometimes(r, 0.9, () => gen.phone(r)), C.phone),
      col('date_of_birth', 'date', (r) => gen.birthDate(r), C.dob),
      col('street_address', 'text', (r) => gen.street(r), C.street),
      col('city', 'text', (r) => gen.city(r), C.city),
      col('postal_code', 'text', (r) => gen.postcode(r), C.postal),
      col('email_verified', 'bool', (r) => r() < 0.5, null),
      col('created_at', 'timestamp', (r) => `2024-0${gen.int(r, 1, 9)}-1${gen.int(r, 0, 9)} 1${gen.int(r, 0, 9)}:2${gen.int(r, 0, 9)}:00`, null),
      col('status', 'text', (r) => gen.pick(r, ['active', 'inactive', 'pending']), null),
      col('loyalty_points', 'int', (r) => gen.int(r, 0, 50_000), null),
      col('country_code', 'text', (r) => gen.pick(r, ['NL', 'DE', 'GB', 'FR', 'US']), null),
    ],
  },
  {
    name: 'users',
    columns: [
      col('name', 'text', (r) => gen.fullName(r), C.name),
      col('login', 'text', (r, i) => gen.email(r, i + 10_000), C.email),
      col('last_login_ip', 'text', (r) => (r() < 0.8 ? gen.ipv4(r) : gen.ipv6(r)), C.ip),
      col('mobile', 'text', (r) => `06${gen.digits(r, 8)}`, C.phone),
      col('username', 'text', (r, i) => `${gen.pick(r, ['ada', 'grace', 'kenji'])}_${i}`, null),
      col('password_hash', 'text', (r) => gen.digits(r, 20) + 'abcdef' + gen.digits(r, 38), null),
      col('signup_source', 'text', (r) => gen.pick(r, ['web', 'ios', 'android', 'referral']), null),
      col('phone_country_code', 'text', (r) => gen.pick(r, ['+31', '+44', '+1', '+49']), null),
    ],
  },
  {
    name: 'payments',
    columns: [
      col('card_number', 'text', (r) => gen.cardNumber(r).replace(/(\d{4})(?=\d)/g, '$1 '), C.card),
      col('card_last4', 'text', (r) => gen.digits(r, 4), null),
      col('card_brand', 'text', (r) => gen.pick(r, ['visa', 'mastercard']), null),
      col('iban', 'text', (r) => gen.iban(r), C.bank),
      col('order_number', 'bigint', (r) => gen.nonLuhn16(r), null),
      col('amount_cents', 'int', (r) => gen.int(r, 100, 99_999), null),
      col('currency', 'text', (r) => gen.pick(r, ['EUR', 'USD', 'GBP']), null),
      col('cardholder_name', 'text', (r) => gen.fullName(r).toUpperCase(), C.name),
    ],
  },
  {
    name: 'identities',
    columns: [
      col('ssn', 'text', (r) => gen.ssn(r), C.natId),
      col('nino', 'text', (r) => gen.nino(r), C.natId),
      col('bsn', 'text', (r) => gen.bsn(r), C.natId),
      col('cpf', 'text', (r) => gen.cpf(r), C.natId),
      col('sin', 'text', (r) => gen.sin(r), C.natId),
      col('nir', 'text', (r) => gen.nir(r), C.natId),
      col('dni', 'text', (r) => gen.dni(r), C.natId),
      col('tax_reference', 'text', (r) => gen.bsn(r), C.natId),
      col('passport_country', 'text', (r) => gen.pick(r, ['NL', 'BR', 'FR', 'ES']), null),
      col('document_type', 'text', (r) => gen.pick(r, ['passport', 'id_card', 'residence_permit']), null),
      col('verified_at', 'timestamp', () => '2024-03-01 10:00:00', null),
    ],
  },
  {
    name: 'support_tickets',
    columns: [
      col(
        'body',
        'text',
        (r, i) =>
          r() < 0.4
            ? `Hello, please call me back on ${gen.phone(r)} or write to ${gen.email(r, i)} about my order.`
            : gen.pick(r, ['The parcel arrived damaged, can you send a new one?', 'How do I change my delivery slot?', 'The app crashes when I open the basket.']),
        C.text,
      ),
      col('subject', 'text', (r) => gen.pick(r, ['Order question', 'Delivery', 'Refund request']), null),
      col('priority', 'int', (r) => gen.int(r, 1, 4), null),
      col('opened_at', 'timestamp', () => '2024-05-01 09:00:00', null),
    ],
  },
  {
    name: 'devices',
    columns: [
      col('phone_model', 'text', (r) => gen.pick(r, ['Pixel 8', 'iPhone 15 Pro', 'Galaxy S24', 'Fairphone 5']), null),
      col('os_version', 'text', (r) => `${gen.int(r, 10, 17)}.${gen.int(r, 0, 9)}.${gen.int(r, 0, 9)}`, null),
      col('ip_address', 'text', (r) => gen.ipv4(r), C.ip),
      col('device_name', 'text', (r) => gen.pick(r, ['Kitchen Tablet', 'Work Laptop', 'Living Room TV']), null),
      col('serial_number', 'text', (r) => `SN-${gen.digits(r, 4)}${gen.pick(r, ['K', 'X', 'Q'])}${gen.digits(r, 3)}`, null),
    ],
  },
  {
    name: 'notification_templates',
    columns: [
      col('email_template', 'text', (r) => gen.pick(r, ['Hi {{first_name}}, your order {{order_id}} has shipped.', 'Dear {{name}}, reset your password here: {{link}}', 'Welcome aboard, {{first_name}}!']), null),
      col('email_subject', 'text', (r) => gen.pick(r, ['Your order has shipped', 'Reset your password', 'Welcome']), null),
      col('sms_template', 'text', (r) => gen.pick(r, ['Your code is {{code}}', 'Your parcel arrives today']), null),
      col('template_name', 'text', (r) => gen.pick(r, ['Shipping Notice', 'Password Reset', 'Welcome']), null),
    ],
  },
  {
    name: 'network_rules',
    columns: [
      col('ip_allowlist_comment', 'text', (r) => gen.pick(r, ['office network, approved by security', 'VPN egress range 10.20.0.0/16', 'temporary vendor access until Q3']), null),
      col('cidr', 'text', (r) => `10.${gen.int(r, 0, 255)}.0.0/16`, null),
      col('description', 'text', (r) => gen.pick(r, ['Office', 'Data centre', 'Backup link']), null),
      col('enabled', 'bool', () => true, null),
    ],
  },
  {
    name: 'orders',
    columns: [
      col('order_number', 'text', (r) => gen.nonLuhn16(r), null),
      col('product_name', 'text', (r) => gen.pick(r, ['Blue Widget', 'Garden Hose', 'Desk Lamp']), null),
      col('company_name', 'text', (r) => gen.pick(r, ['Acme Corporation', 'Globex', 'Initech']), null),
      col('shipping_address', 'text', (r) => `${gen.street(r)}, ${gen.postcode(r)} ${gen.city(r)}`, C.address),
      col('contact_email', 'text', (r, i) => gen.email(r, i + 20_000), C.email),
      col('tracking_code', 'text', (r) => `3S${gen.pick(r, ['PQR', 'XYZ'])}${gen.digits(r, 10)}`, null),
      col('isbn', 'text', (r) => `978${gen.digits(r, 10)}`, null),
      col('quantity', 'int', (r) => gen.int(r, 1, 10), null),
      col('notes', 'text', (r) => gen.pick(r, ['Leave at the door', 'Gift wrap please', 'Ring twice', 'Fragile']), null),
      col('placed_on', 'date', (r) => `2024-0${gen.int(r, 1, 9)}-1${gen.int(r, 0, 9)}`, null),
    ],
  },
];

/** Every labelled column, with its table, as `table.column`. */
export function labels(): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const t of LABELLED_TABLES) {
    out.set(`${t.name}.id`, null);
    for (const c of t.columns) out.set(`${t.name}.${c.name}`, c.expected);
  }
  return out;
}

const TYPES: Record<SqlEngine, Record<ColumnType, string>> = {
  postgres: { text: 'text', int: 'integer', bigint: 'bigint', date: 'date', bool: 'boolean', timestamp: 'timestamp' },
  mysql: { text: 'varchar(255)', int: 'int', bigint: 'bigint', date: 'date', bool: 'tinyint(1)', timestamp: 'datetime' },
  sqlite: { text: 'TEXT', int: 'INTEGER', bigint: 'INTEGER', date: 'DATE', bool: 'BOOLEAN', timestamp: 'TIMESTAMP' },
};

const q = (engine: SqlEngine, name: string): string => (engine === 'mysql' ? `\`${name}\`` : `"${name}"`);

/** DDL of the labelled tables for `engine`: an integer primary key `id` and the labelled columns. */
export function labelledDdl(engine: SqlEngine, tables: readonly LabelledTable[] = LABELLED_TABLES): string[] {
  const out: string[] = [];
  for (const t of tables) {
    const cols = t.columns.map((c) => `${q(engine, c.name)} ${TYPES[engine][c.type]}`);
    out.push(`create table ${q(engine, t.name)} (${q(engine, 'id')} integer primary key, ${cols.join(', ')})`);
    for (const c of t.columns) if (c.unique) out.push(`create unique index ${q(engine, `${t.name}_${c.name}_key`)} on ${q(engine, t.name)} (${q(engine, c.name)})`);
  }
  return out;
}

/** Rows of `table`: deterministic per table name and row number. */
export function labelledRows(table: LabelledTable, count: number): Value[][] {
  const r = gen.rng([...table.name].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 7));
  return Array.from({ length: count }, (_, i) => [i + 1, ...table.columns.map((c) => c.gen(r, i))]);
}

/** Admin connections of the test services (trust / empty root password on this machine). */
export const MYSQL_ADMIN_URL = process.env.CUSTODIAN_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306/test';

/** A fresh database of `engine` and the function that drops it. */
export interface TempDatabase {
  readonly engine: SqlEngine;
  readonly url: string;
  /** Runs statements on the database (for tests that change the schema). */
  exec(statements: readonly string[]): Promise<void>;
  cleanup(): Promise<void>;
}

const uniqueName = (): string => `cst_test_scan_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

/** Creates an empty database: a temp SQLite file, or a new PostgreSQL / MariaDB database. */
export async function createTempDatabase(engine: SqlEngine): Promise<TempDatabase> {
  if (engine === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'custodian-scan-'));
    const path = join(dir, 'labelled.db');
    new SQLite(path).close();
    return {
      engine,
      url: `sqlite:${path}`,
      exec: async (statements) => {
        const db = new SQLite(path);
        try {
          for (const s of statements) db.exec(s);
        } finally {
          db.close();
        }
      },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  }
  if (engine === 'postgres') {
    const db = await createPgDatabase('cst_test_scan');
    return {
      engine,
      url: db.url,
      exec: async (statements) => {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        try {
          for (const s of statements) await c.query(s);
        } finally {
          await c.end();
        }
      },
      cleanup: db.drop,
    };
  }
  const name = uniqueName();
  const adminUrl = new URL(MYSQL_ADMIN_URL);
  const connect = async (database?: string) =>
    mysql.createConnection({ host: adminUrl.hostname, port: Number(adminUrl.port || 3306), user: decodeURIComponent(adminUrl.username), password: decodeURIComponent(adminUrl.password), ...(database ? { database } : {}) });
  const admin = await connect();
  try {
    await admin.query(`create database \`${name}\``);
  } finally {
    await admin.end();
  }
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    engine,
    url: url.toString(),
    exec: async (statements) => {
      const c = await connect(name);
      try {
        for (const s of statements) await c.query(s);
      } finally {
        await c.end();
      }
    },
    cleanup: async () => {
      const c = await connect();
      try {
        await c.query(`drop database if exists \`${name}\``);
      } finally {
        await c.end();
      }
    },
  };
}

const literal = (engine: SqlEngine, v: Value): string => {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return engine === 'postgres' ? String(v) : v ? '1' : '0';
  if (typeof v === 'number') return String(v);
  return `'${v.replace(/'/g, "''")}'`;
};

/** Fills `db` with the labelled tables, `rows` rows each (ANALYZEd on PostgreSQL, as production databases are). */
export async function fillLabelled(db: TempDatabase, rows: number, tables: readonly LabelledTable[] = LABELLED_TABLES): Promise<void> {
  const statements = [...labelledDdl(db.engine, tables)];
  for (const t of tables) {
    const all = labelledRows(t, rows);
    const cols = ['id', ...t.columns.map((c) => c.name)].map((c) => q(db.engine, c)).join(', ');
    for (let i = 0; i < all.length; i += 200) {
      const values = all.slice(i, i + 200).map((row) => `(${row.map((v) => literal(db.engine, v)).join(', ')})`);
      statements.push(`insert into ${q(db.engine, t.name)} (${cols}) values ${values.join(', ')}`);
    }
  }
  if (db.engine === 'postgres') statements.push('analyze');
  if (db.engine === 'mysql') statements.push(...tables.map((t) => `analyze table ${q('mysql', t.name)}`));
  await db.exec(statements);
}

/** Creates and fills a labelled database. Unreachable services throw (the caller decides whether to skip). */
export async function createLabelledDatabase(engine: SqlEngine, rows = 300): Promise<TempDatabase> {
  const db = await createTempDatabase(engine);
  try {
    await fillLabelled(db, rows);
  } catch (err) {
    await db.cleanup();
    throw err;
  }
  return db;
}
