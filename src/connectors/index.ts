export * from './schema.js';
export { openSchemaConnector, redactConnectionUrl, sqlEngineOf, connectionError } from './open-schema-connector.js';
export { PostgresSchemaConnector, quotePostgresIdent, postgresColumnKind, type PostgresSchemaConnectorOptions } from './postgres/postgres-schema-connector.js';
export { MysqlSchemaConnector, quoteMysqlIdent, mysqlColumnKind, type MysqlSchemaConnectorOptions } from './mysql/mysql-schema-connector.js';
export { SqliteSchemaConnector, quoteSqliteIdent, sqliteColumnKind, type SqliteSchemaConnectorOptions } from './sqlite/sqlite-schema-connector.js';
