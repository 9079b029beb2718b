export { MAX_BATCH, MAX_SCAN_PAGE, type CollectionTarget, type ConnectorCapabilities, type DataConnector, type KeyValue, type Row, type RowChange, type ScanPage, type ScanQuery } from './data-connector.js';
export { openDataConnector, DATA_CONNECTOR_OPENERS, type DataConnectorOpener } from './open-data-connector.js';
export { PostgresDataConnector, POSTGRES_FETCH_ROWS, type PostgresDataConnectorOptions } from './postgres.js';
export { MysqlDataConnector, MYSQL_FETCH_ROWS, type MysqlDataConnectorOptions } from './mysql.js';
export { SqliteDataConnector, SQLITE_FETCH_ROWS, type SqliteDataConnectorOptions } from './sqlite.js';
export { RedisDataConnector, openRedisDataConnector } from './redis.js';
export { JsonlDataConnector, openJsonlDataConnector } from './jsonl.js';
export { HttpDataConnector, openHttpDataConnector } from './http.js';
export { verifyCustodianSignature, signCustodianRequest } from './http-signature.js';
