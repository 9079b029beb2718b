import { isAbsolute, resolve } from 'node:path';
import { CustodianError } from '../../core/index.js';
import { redactConnectionUrl } from '../open-schema-connector.js';
import type { DataConnector } from './data-connector.js';
import { MysqlDataConnector } from './mysql.js';
import { PostgresDataConnector } from './postgres.js';
import { SqliteDataConnector } from './sqlite.js';
import { openRedisDataConnector } from './redis.js';
import { openJsonlDataConnector } from './jsonl.js';
import { openHttpDataConnector } from './http.js';

/** Opens a {@link DataConnector} for a connection URL whose scheme has already been checked. */
export type DataConnectorOpener = (url: string) => Promise<DataConnector>;

function malformed(url: string, why: string): CustodianError {
  return new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', `the connection URL ${why}`, { details: { url: redactConnectionUrl(url) } });
}

/** `postgres://` / `mysql://` URLs must parse and name a host and a database. */
function serverUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw malformed(url, 'is malformed');
  }
  if (parsed.hostname === '' || parsed.pathname.replace(/^\//, '') === '') throw malformed(url, 'must name a host and a database');
  return parsed;
}

const openPostgres: DataConnectorOpener = async (url) => {
  serverUrl(url);
  return PostgresDataConnector.open(url);
};

const openMysql: DataConnectorOpener = async (url) => {
  const parsed = serverUrl(url);
  parsed.protocol = 'mysql:';
  return MysqlDataConnector.open(parsed.toString());
};

const openSqlite: DataConnectorOpener = async (url) => {
  let path = url.slice('sqlite:'.length);
  if (path.startsWith('//')) path = path.slice(2);
  if (path === '' || path === ':memory:') throw malformed(url, 'needs the path of a database file');
  return SqliteDataConnector.open(isAbsolute(path) ? path : resolve(path));
};

/**
 * The adapter for each URL scheme (lower case, without `:`). Adding a system kind is one line here, e.g.
 * `redis: (url) => RedisDataConnector.open(url)`.
 */
export const DATA_CONNECTOR_OPENERS: Readonly<Record<string, DataConnectorOpener>> = Object.freeze({
  postgres: openPostgres,
  postgresql: openPostgres,
  mysql: openMysql,
  mariadb: openMysql,
  sqlite: openSqlite,
  redis: (url) => openRedisDataConnector(url),
  rediss: (url) => openRedisDataConnector(url),
  jsonl: (url) => openJsonlDataConnector(url),
  file: (url) => openJsonlDataConnector(url),
  http: (url) => openHttpDataConnector(url),
  https: (url) => openHttpDataConnector(url),
});

/**
 * Opens the {@link DataConnector} for `url`, chosen by its scheme, and checks that the system answers:
 * `postgres://` / `postgresql://`, `mysql://` / `mariadb://`, `sqlite:<path>` (relative to the working
 * directory or absolute; the file must exist). Throws CST_ERR_CONNECTOR_UNSUPPORTED for any other scheme or a
 * malformed URL, CST_ERR_CONNECTOR_UNAVAILABLE / _PERMISSION when the system cannot be reached or refuses.
 *
 * @example
 * const connector = await openDataConnector(process.env.CRM_DB_URL!);
 * try {
 *   for await (const rows of connector.find({ name: 'customers', options: {} }, 'email', ['ada@example.com'], ['id', 'name'])) console.log(rows);
 * } finally {
 *   await connector.close();
 * }
 */
export async function openDataConnector(url: string): Promise<DataConnector> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
  const open = Object.hasOwn(DATA_CONNECTOR_OPENERS, scheme) ? DATA_CONNECTOR_OPENERS[scheme] : undefined;
  if (open === undefined) {
    throw new CustodianError('CST_ERR_CONNECTOR_UNSUPPORTED', `no data connector for this URL scheme: use one of ${Object.keys(DATA_CONNECTOR_OPENERS).join(', ')}`, {
      details: { scheme: scheme.slice(0, 20) },
    });
  }
  return open(url);
}
