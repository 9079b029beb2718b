import { resolve } from 'node:path';
import { CustodianError } from '../core/index.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** The default store URL: an SQLite file under `./.custodian/`. */
export const DEFAULT_STORE_URL = 'sqlite:.custodian/custodian.db';

/**
 * Opens the store named by `url`: `sqlite:<path>` (relative to the working directory, or absolute,
 * or `sqlite::memory:`) or `postgres://user@host:port/db` (`postgresql://` too).
 * It does not migrate; call {@link Store.migrate}.
 */
export function openStore(url: string): Store {
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new CustodianError('CST_ERR_STORE_URL', 'sqlite URL needs a path, e.g. sqlite:.custodian/custodian.db');
    return new SqliteStore({ path: path === ':memory:' ? path : resolve(path) });
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    try {
      new URL(url);
    } catch {
      throw new CustodianError('CST_ERR_STORE_URL', 'malformed postgres URL');
    }
    return new PostgresStore({ connectionString: url });
  }
  throw new CustodianError('CST_ERR_STORE_URL', 'store URL must start with sqlite: or postgres://', {
    details: { scheme: url.split(':')[0]?.slice(0, 20) },
  });
}

/** A store URL with any password replaced, safe to print. */
export function redactStoreUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.startsWith('sqlite:') ? url : '<unparsable url>';
  }
}
