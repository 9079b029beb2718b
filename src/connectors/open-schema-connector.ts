import { isAbsolute, resolve } from 'node:path';
import { CustodianError } from '../core/index.js';
import { MysqlSchemaConnector } from './mysql/mysql-schema-connector.js';
import { PostgresSchemaConnector } from './postgres/postgres-schema-connector.js';
import type { SchemaConnector, SqlEngine } from './schema.js';
import { SqliteSchemaConnector } from './sqlite/sqlite-schema-connector.js';

/** A connection URL with any password replaced by `***`, safe to print and to put in errors. */
export function redactConnectionUrl(url: string): string {
  if (url.startsWith('sqlite:')) return url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    // Query parameters may carry secrets too (e.g. `?password=`, `?sslkey=`).
    for (const key of [...u.searchParams.keys()]) if (/pass|secret|key|token/i.test(key)) u.searchParams.set(key, '***');
    return u.toString();
  } catch {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? '';
    return `${scheme}<unparsable url>`;
  }
}

/** The SQL engine a connection URL names, or undefined when its scheme is not one the scanner reads. */
export function sqlEngineOf(url: string): SqlEngine | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  if (scheme === 'sqlite') return 'sqlite';
  return undefined;
}

/** The error a connector's failure becomes: the driver's code only, never its message (it may quote the URL). */
export function connectionError(url: string, err: unknown): CustodianError {
  if (err instanceof CustodianError) return err;
  const e = err as { code?: unknown; name?: unknown };
  const reason = typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : typeof e.name === 'string' ? e.name : 'unknown';
  return new CustodianError('CST_ERR_SCAN_CONNECTION', 'the database to scan could not be opened or queried', { details: { url: redactConnectionUrl(url), reason } });
}

/**
 * Opens a {@link SchemaConnector} for `url` and checks that it answers: `postgres://` / `postgresql://`,
 * `mysql://` / `mariadb://`, or `sqlite:<path>` (relative to the working directory or absolute; the file
 * must exist). Throws CST_ERR_SCAN_URL, CST_ERR_SCAN_UNSUPPORTED or CST_ERR_SCAN_CONNECTION.
 *
 * @example
 * const connector = await openSchemaConnector('postgres://scanner@db.internal:5432/crm');
 * try { console.log(await connector.listTables()); } finally { await connector.close(); }
 */
export async function openSchemaConnector(url: string): Promise<SchemaConnector> {
  const engine = sqlEngineOf(url);
  const displayUrl = redactConnectionUrl(url);
  if (engine === undefined) {
    throw new CustodianError('CST_ERR_SCAN_UNSUPPORTED', 'this connection cannot be scanned: use postgres://, mysql://, mariadb:// or sqlite:', {
      details: { scheme: (/^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1] ?? '').slice(0, 20) },
    });
  }
  if (engine === 'sqlite') {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '' || path === ':memory:') throw new CustodianError('CST_ERR_SCAN_URL', 'a sqlite: URL needs the path of a database file', { details: { url: displayUrl } });
    const connector = new SqliteSchemaConnector({ path: isAbsolute(path) ? path : resolve(path), displayUrl });
    try {
      connector.connect();
    } catch (err) {
      throw connectionError(url, err);
    }
    return connector;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CustodianError('CST_ERR_SCAN_URL', 'the connection URL is malformed', { details: { url: displayUrl } });
  }
  if (parsed.hostname === '' || parsed.pathname.replace(/^\//, '') === '') {
    throw new CustodianError('CST_ERR_SCAN_URL', 'the connection URL must name a host and a database', { details: { url: displayUrl } });
  }
  if (engine === 'postgres') {
    const connector = new PostgresSchemaConnector({ connectionString: url, displayUrl });
    try {
      await connector.connect();
    } catch (err) {
      await connector.close();
      throw connectionError(url, err);
    }
    return connector;
  }
  parsed.protocol = 'mysql:';
  const connector = new MysqlSchemaConnector({ uri: parsed.toString(), displayUrl });
  try {
    await connector.connect();
  } catch (err) {
    await connector.close();
    throw connectionError(url, err);
  }
  return connector;
}
