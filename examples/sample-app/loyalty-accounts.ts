import type { LoyaltyAccount } from './seed.js';

/**
 * The loyalty service's accounts and the rules of the Custodian callback protocol applied to them, without
 * HTTP: loyalty-service.ts checks signatures, validates requests and calls this. The accounts live in memory, as
 * a small service would hold them in its database; a database-backed service runs the same rules as
 * statements (`where key > $after order by key limit $limit`, `delete … where key = any($keys) and age < $cutoff`).
 */

/** The fields of an account: the only names the service accepts in requests. */
export const LOYALTY_FIELDS: ReadonlySet<string> = new Set<keyof LoyaltyAccount>(['email', 'points', 'tier', 'last_activity_at']);

/** A value a change writes: `null` clears the field. */
export type AccountValue = string | number | null;

/** A row as answered: the asked fields of one account, missing ones as null. */
export type AccountRow = Readonly<Record<string, unknown>>;

/** One change of `update` or of retention's `anonymise`: the rows whose key field equals `key` get `set`. */
export interface AccountChange {
  readonly key: string | number;
  readonly set: Readonly<Record<string, AccountValue>>;
}

/** Where a scan resumes: strictly after this key text, ties broken by the (unique) e-mail address. */
export interface ScanPosition {
  readonly key: string;
  readonly email: string;
}

/** A scan as the protocol asks it, already validated (instants in ms since the epoch). */
export interface AccountScan {
  readonly keyField: string;
  readonly fields: readonly string[];
  readonly limit: number;
  readonly after?: ScanPosition | undefined;
  /** Only accounts whose `field` holds an instant in [from, to); absent: every account. */
  readonly window?: { readonly field: string; readonly from?: number | undefined; readonly to?: number | undefined } | undefined;
}

/** One page of a scan; `last` is set when more accounts follow (resume after it). */
export interface AccountPage {
  readonly rows: readonly AccountRow[];
  readonly last: ScanPosition | undefined;
}

/** When an account is past due: its `ageField` holds an instant strictly before `cutoff` (ms). */
export interface AccountDue {
  readonly ageField: string;
  readonly cutoff: number;
}

/** The text a key or looked-up value matches by: strings as they are, finite numbers in decimal. */
export function matchText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * A stored time value in ms since the epoch: ISO-8601 text (no zone = UTC) or epoch seconds, as the protocol
 * allows; undefined for anything else, which lies outside every window and is never past due.
 */
export function storedInstant(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?(Z|[+-]\d{2}:?\d{2})?$/i.exec(value.trim());
  if (m === null) return undefined;
  const zone = m[3] === undefined || m[3].toUpperCase() === 'Z' ? 'Z' : m[3].includes(':') ? m[3] : `${m[3].slice(0, 3)}:${m[3].slice(3)}`;
  const ms = Date.parse(`${m[1]}T${(m[2] ?? '00:00:00').replace(/(\.\d{3})\d+$/, '$1')}${zone}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Orders scan positions: by key text (UTF-16 code units), then by e-mail address. */
function compare(a: ScanPosition, b: ScanPosition): number {
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  return a.email < b.email ? -1 : a.email > b.email ? 1 : 0;
}

/**
 * The accounts of the loyalty service, keyed by their e-mail address (unique).
 *
 * @example
 * ```ts
 * const accounts = new LoyaltyAccounts([{ email: 'ada@example.com', points: 10, tier: 'gold', last_activity_at: '2025-03-01T00:00:00.000Z' }]);
 * accounts.scan({ keyField: 'email', fields: ['points'], limit: 100 }); // { rows: [{ email: 'ada@example.com', points: 10 }], last: undefined }
 * ```
 */
export class LoyaltyAccounts {
  #accounts: Record<string, unknown>[];

  /** Takes a copy of `accounts`, which must be objects with distinct string e-mail addresses (a data file is not trusted). */
  constructor(accounts: readonly unknown[]) {
    const seen = new Set<string>();
    for (const account of accounts) {
      const email = typeof account === 'object' && account !== null && !Array.isArray(account) ? (account as { email?: unknown }).email : undefined;
      // The message names no address: it may end up in a log.
      if (typeof email !== 'string' || seen.has(email)) throw new Error('loyalty accounts must be objects with distinct e-mail addresses');
      seen.add(email);
    }
    this.#accounts = accounts.map((a) => ({ ...(a as Record<string, unknown>) }));
  }

  /** Puts back accounts taken with {@link list} (a change whose write failed is undone). */
  restore(accounts: readonly LoyaltyAccount[]): void {
    this.#accounts = accounts.map((a) => ({ ...(a as unknown as Record<string, unknown>) }));
  }

  /** A copy of every account, in insertion order. */
  list(): LoyaltyAccount[] {
    return this.#accounts.map((a) => ({ ...a }) as unknown as LoyaltyAccount);
  }

  /** `find`: accounts whose `field` equals one of `values` exactly, from position `offset`, at most `pageSize`. */
  find(field: string, values: readonly (string | number)[], fields: readonly string[], offset: number, pageSize: number): { rows: AccountRow[]; more: boolean } {
    const wanted = new Set(values.map(matchText));
    const matches = this.#accounts.filter((a) => {
      const text = matchText(a[field]);
      return text !== undefined && wanted.has(text);
    });
    return { rows: matches.slice(offset, offset + pageSize).map((a) => project(a, fields)), more: offset + pageSize < matches.length };
  }

  /**
   * `scan`: the next `limit` accounts after `after` in (key text, e-mail) order, within the window. Paging by
   * position in that order (never by offset) keeps a walk right while accounts are deleted between pages, as
   * retention does, and the e-mail tie-break keeps it right for a key field whose values repeat (`points`).
   * Accounts whose key is not a string or a number are left out: they could not be changed by key.
   * O(n log n) per page over n accounts.
   */
  scan(query: AccountScan): AccountPage {
    const { window } = query;
    const candidates: Array<{ readonly position: ScanPosition; readonly account: Record<string, unknown> }> = [];
    for (const account of this.#accounts) {
      const key = matchText(account[query.keyField]);
      if (key === undefined) continue;
      // The e-mail address is unique; a rectification could in theory have made it something else.
      const position = { key, email: typeof account.email === 'string' ? account.email : '' };
      if (query.after !== undefined && compare(position, query.after) <= 0) continue;
      if (window !== undefined && (window.from !== undefined || window.to !== undefined)) {
        const at = storedInstant(account[window.field]);
        if (at === undefined || (window.from !== undefined && at < window.from) || (window.to !== undefined && at >= window.to)) continue;
      }
      candidates.push({ position, account });
    }
    candidates.sort((a, b) => compare(a.position, b.position));
    const page = candidates.slice(0, query.limit);
    const fields = [...new Set([query.keyField, ...query.fields])];
    return { rows: page.map((c) => project(c.account, fields)), last: candidates.length > page.length ? page.at(-1)!.position : undefined };
  }

  /** Retention `count`: accounts past due, and with `from` (ms) only those whose age is at or after it. */
  countDue(due: AccountDue, from?: number): number {
    return this.#accounts.filter((a) => {
      const at = storedInstant(a[due.ageField]);
      return at !== undefined && at < due.cutoff && (from === undefined || at >= from);
    }).length;
  }

  /** `delete`, or with `due` retention's `delete`: only accounts still past due go (the age is checked here, now). */
  delete(keyField: string, keys: readonly (string | number)[], due?: AccountDue): number {
    const wanted = new Set(keys.map(matchText));
    const before = this.#accounts.length;
    this.#accounts = this.#accounts.filter((a) => {
      const key = matchText(a[keyField]);
      return key === undefined || !wanted.has(key) || !isDue(a, due);
    });
    return before - this.#accounts.length;
  }

  /**
   * `update`, or with `due` retention's `anonymise` (only accounts still past due). Counts accounts whose
   * values actually changed, so the same changes applied again count 0.
   */
  update(keyField: string, changes: readonly AccountChange[], due?: AccountDue): number {
    const byKey = new Map<string, AccountChange[]>();
    for (const change of changes) {
      const key = matchText(change.key);
      if (key !== undefined) byKey.set(key, [...(byKey.get(key) ?? []), change]);
    }
    let count = 0;
    for (const account of this.#accounts) {
      const key = matchText(account[keyField]);
      const mine = key === undefined ? undefined : byKey.get(key);
      if (mine === undefined || !isDue(account, due)) continue;
      let changed = false;
      for (const change of mine) {
        for (const [field, value] of Object.entries(change.set)) {
          if (value === null ? account[field] === undefined || account[field] === null : account[field] === value) continue;
          account[field] = value;
          changed = true;
        }
      }
      if (changed) count++;
    }
    return count;
  }
}

function isDue(account: Record<string, unknown>, due: AccountDue | undefined): boolean {
  if (due === undefined) return true;
  const at = storedInstant(account[due.ageField]);
  return at !== undefined && at < due.cutoff;
}

function project(account: Record<string, unknown>, fields: readonly string[]): AccountRow {
  return Object.fromEntries(fields.map((f) => [f, account[f] ?? null]));
}
