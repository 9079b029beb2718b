import { CustodianError } from '../core/index.js';
import { MAX_SAMPLE_ROWS, connectionError, openSchemaConnector, type ColumnInfo, type SchemaConnector, type SqlEngine, type TableInfo } from '../connectors/index.js';
import { ColumnClassifier, type ColumnFinding } from './column-classifier.js';

/** The default number of rows sampled per table. */
export const DEFAULT_SAMPLE_ROWS = 1000;

/** Options of {@link scanDatabase}. */
export interface ScanOptions {
  /** Rows sampled per table, 1–100,000 (default {@link DEFAULT_SAMPLE_ROWS}). */
  readonly sample?: number | undefined;
  /** PostgreSQL schema (default `public`); MySQL database (default the URL's); SQLite attached schema (default `main`). */
  readonly schema?: string | undefined;
  /** Only tables for which this returns true are sampled. */
  readonly tableFilter?: ((name: string) => boolean) | undefined;
  /** "Today", for plausible birth dates. */
  readonly now?: Date | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** A column with what the scan concluded. No sampled value is kept. */
export interface ScannedColumn extends ColumnInfo {
  /** Non-empty values sampled from the column (0 when its storage kind is not sampled). */
  readonly sampled: number;
  readonly finding: ColumnFinding | null;
}

/** A table with its scanned columns. */
export interface ScannedTable {
  readonly schema: string;
  readonly name: string;
  readonly estimatedRows: number | null;
  readonly rowsSampled: number;
  readonly columns: readonly ScannedColumn[];
}

/** The result of a scan: structure, counts and findings; never a value. */
export interface ScanReport {
  readonly engine: SqlEngine;
  /** The connection URL with its password hidden. */
  readonly url: string;
  readonly schema: string | null;
  /** Rows sampled per table at most. */
  readonly sampleLimit: number;
  readonly tables: readonly ScannedTable[];
  /** Rows read over all tables. */
  readonly rowsSampled: number;
  /** Columns judged to hold personal data. */
  readonly findings: number;
  readonly durationMs: number;
}

/** Checks and normalises a sample size. */
export function sampleLimit(sample: number | undefined): number {
  const n = sample ?? DEFAULT_SAMPLE_ROWS;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SAMPLE_ROWS) {
    throw new CustodianError('CST_ERR_VALIDATION', `the sample size must be an integer from 1 to ${MAX_SAMPLE_ROWS}`, { details: { issues: [{ path: 'sample', message: 'out of range' }] } });
  }
  return n;
}

/**
 * Scans the tables reachable through `connector`: lists them, streams a bounded sample of each (at most
 * `sample` rows, see the connector for how they are spread), and classifies every column.
 *
 * Cost: O(tables × sample) rows read — never a whole table — and memory O(columns × detectors) plus one
 * batch: values are tested as they arrive and dropped.
 *
 * @example
 * const connector = await openSchemaConnector('sqlite:app.db');
 * try {
 *   const report = await scanDatabase(connector, { sample: 500 });
 *   for (const t of report.tables) for (const c of t.columns) if (c.finding) console.log(t.name, c.name, c.finding.category);
 * } finally { await connector.close(); }
 */
export async function scanDatabase(connector: SchemaConnector, options: ScanOptions = {}): Promise<ScanReport> {
  const started = performance.now();
  const limit = sampleLimit(options.sample);
  const tables = await connector.listTables({ schema: options.schema, signal: options.signal });
  const scanned: ScannedTable[] = [];
  let rowsSampled = 0;
  let findings = 0;
  for (const table of tables) {
    options.signal?.throwIfAborted();
    const result = options.tableFilter === undefined || options.tableFilter(table.name) ? await scanTable(connector, table, limit, options) : unscanned(table);
    rowsSampled += result.rowsSampled;
    findings += result.columns.filter((c) => c.finding !== null).length;
    scanned.push(result);
  }
  return {
    engine: connector.engine,
    url: connector.displayUrl,
    schema: tables[0]?.schema ?? options.schema ?? null,
    sampleLimit: limit,
    tables: scanned,
    rowsSampled,
    findings,
    durationMs: Math.round(performance.now() - started),
  };
}

function unscanned(table: TableInfo): ScannedTable {
  return { schema: table.schema, name: table.name, estimatedRows: table.estimatedRows, rowsSampled: 0, columns: table.columns.map((c) => ({ ...c, sampled: 0, finding: null })) };
}

async function scanTable(connector: SchemaConnector, table: TableInfo, limit: number, options: ScanOptions): Promise<ScannedTable> {
  const classifiers = table.columns.map((c) => new ColumnClassifier(table.name, c, { now: options.now }));
  const sampled = classifiers.filter((c) => !c.skipped);
  const sampledCount = new Map<ColumnClassifier, number>();
  let rows = 0;
  if (sampled.length > 0) {
    const names = sampled.map((c) => c.column.name);
    const counts = sampled.map(() => 0);
    for await (const batch of connector.sample(table, names, { limit, signal: options.signal })) {
      for (const row of batch) {
        if (rows >= limit) break;
        rows++;
        for (let i = 0; i < sampled.length; i++) {
          const v = row[i];
          if (v !== null && v !== undefined && v.trim() !== '') counts[i]!++;
          sampled[i]!.add(v);
        }
      }
    }
    sampled.forEach((c, i) => sampledCount.set(c, counts[i]!));
  }
  return {
    schema: table.schema,
    name: table.name,
    estimatedRows: table.estimatedRows,
    rowsSampled: rows,
    columns: classifiers.map((c) => ({ ...c.column, sampled: sampledCount.get(c) ?? 0, finding: c.skipped ? null : c.result() })),
  };
}

/**
 * Opens `url`, scans it and closes it. Driver failures become CST_ERR_SCAN_CONNECTION with the driver's
 * error code and the redacted URL, never the driver's message.
 */
export async function scanUrl(url: string, options: ScanOptions = {}): Promise<ScanReport> {
  const connector = await openSchemaConnector(url);
  try {
    return await scanDatabase(connector, options);
  } catch (err) {
    if (err instanceof CustodianError || (err as Error).name === 'AbortError') throw err;
    throw connectionError(url, err);
  } finally {
    await connector.close();
  }
}
