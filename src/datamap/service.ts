import { createHash } from 'node:crypto';
import { CustodianError, storedToIso, toIso, type AuditSink, type Clock } from '../core/index.js';
import type { Executor, Store } from '../store/index.js';
import { diffManifests, type ManifestDiff } from './diff.js';
import { invalidManifest, type ManifestIssue } from './issues.js';
import { checkManifestValue } from './load.js';
import { manifestSchema, type Manifest } from './manifest.js';
import { DataMap } from './model.js';

/** A stored data map version without its manifest. */
export interface DataMapVersionInfo {
  readonly version: number;
  /** SHA-256 (hex) of the stored manifest JSON: names the content, so two sites can compare what they run. */
  readonly sha256: string;
  readonly createdAt: string;
  readonly actor: string;
  readonly comment: string | null;
}

/** A stored data map version. */
export interface StoredDataMap extends DataMapVersionInfo {
  readonly manifest: Manifest;
}

/** What {@link DatamapService.put} did. */
export interface PutResult {
  readonly version: DataMapVersionInfo;
  /** False when the manifest equals the current version: nothing was stored. */
  readonly created: boolean;
  readonly diff: ManifestDiff;
  readonly warnings: readonly ManifestIssue[];
}

export interface DatamapServiceDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly audit?: AuditSink;
  /** Called inside the transaction that stores a new version (e.g. to bring the ledger's purposes in line). */
  readonly onApply?: (trx: Executor, manifest: Manifest, actor: string) => Promise<void>;
  /** Called after that transaction committed. */
  readonly afterApply?: (manifest: Manifest) => void;
}

/** How long the current version is trusted before the store is asked again (other processes may store one). */
const CURRENT_MAX_AGE_MS = 2000;

/**
 * The data map as stored: versioned (every version kept whole, append-only in the database), validated before
 * it is stored, audited, with the difference between any two versions. {@link dataMap} gives the typed view
 * other modules query.
 */
export class DatamapService {
  readonly #deps: DatamapServiceDeps;
  #cached: { readonly at: number; readonly stored: StoredDataMap | undefined; readonly map: DataMap | undefined } | undefined;

  constructor(deps: DatamapServiceDeps) {
    this.#deps = deps;
  }

  /** The current version, or undefined when none was stored yet. */
  async current(): Promise<StoredDataMap | undefined> {
    const row = await this.#deps.store.db.selectFrom('datamap_versions').selectAll().orderBy('version', 'desc').limit(1).executeTakeFirst();
    return row === undefined ? undefined : toStored(row);
  }

  /** The typed view of the current version (cached for 2 s), or undefined when none was stored yet. */
  async dataMap(): Promise<DataMap | undefined> {
    const now = this.#deps.clock.now();
    if (this.#cached !== undefined && now - this.#cached.at >= 0 && now - this.#cached.at < CURRENT_MAX_AGE_MS) return this.#cached.map;
    const latest = await this.#deps.store.db.selectFrom('datamap_versions').select(['version']).orderBy('version', 'desc').limit(1).executeTakeFirst();
    if (latest !== undefined && this.#cached?.stored?.version === Number(latest.version)) {
      this.#cached = { ...this.#cached, at: now };
      return this.#cached.map;
    }
    const stored = await this.current();
    this.#cached = { at: now, stored, map: stored === undefined ? undefined : new DataMap(stored.manifest) };
    return this.#cached.map;
  }

  /** The typed view of the current version with its number (cached like {@link dataMap}). */
  async currentView(): Promise<{ map: DataMap; version: number } | undefined> {
    const map = await this.dataMap();
    const version = this.#cached?.stored?.version;
    return map === undefined || version === undefined ? undefined : { map, version };
  }

  /** Version `n`; CST_ERR_DATAMAP_NOT_FOUND when there is none. */
  async version(n: number): Promise<StoredDataMap> {
    const row = Number.isSafeInteger(n) && n > 0 ? await this.#deps.store.db.selectFrom('datamap_versions').selectAll().where('version', '=', n).executeTakeFirst() : undefined;
    if (row === undefined) throw new CustodianError('CST_ERR_DATAMAP_NOT_FOUND', `no data map version ${n}`, { details: { version: n } });
    return toStored(row);
  }

  /** Every version, newest first, without manifests. */
  async versions(): Promise<DataMapVersionInfo[]> {
    const rows = await this.#deps.store.db.selectFrom('datamap_versions').select(['version', 'sha256', 'created_at', 'actor', 'comment']).orderBy('version', 'desc').execute();
    return rows.map(toInfo);
  }

  /** The changes from version `from` to version `to` (`from` 0 = from nothing). */
  async diff(from: number, to: number): Promise<ManifestDiff> {
    const after = await this.version(to);
    const before = from === 0 ? undefined : await this.version(from);
    return diffManifests(before?.manifest, after.manifest);
  }

  /**
   * Validates `input` (a manifest as a JS value) and stores it as the next version, audited, unless it equals
   * the current one. With `baseVersion`, refuses (CST_ERR_DATAMAP_CONFLICT) when another version was stored
   * since. Invalid input throws CST_ERR_DATAMAP_INVALID listing every issue; nothing is stored.
   */
  async put(input: unknown, options: { actor: string; comment?: string; baseVersion?: number; requestId?: string }): Promise<PutResult> {
    const checked = checkManifestValue(input);
    if (checked.manifest === undefined) throw invalidManifest(checked.issues);
    const manifest = checked.manifest;
    const text = JSON.stringify(manifest);
    const sha256 = createHash('sha256').update(text, 'utf8').digest('hex');
    const { store, clock, audit } = this.#deps;
    const result = await store.transaction(async (trx) => {
      await store.lock(trx, 'datamap');
      const latest = await trx.selectFrom('datamap_versions').selectAll().orderBy('version', 'desc').limit(1).executeTakeFirst();
      const current = latest === undefined ? undefined : toStored(latest);
      if (options.baseVersion !== undefined && options.baseVersion !== (current?.version ?? 0)) {
        throw new CustodianError('CST_ERR_DATAMAP_CONFLICT', `the data map is at version ${current?.version ?? 0}, not ${options.baseVersion}`, { details: { currentVersion: current?.version ?? 0 } });
      }
      const diff = diffManifests(current?.manifest, manifest);
      if (current !== undefined && current.sha256 === sha256) return { version: infoOf(current), created: false, diff };
      const info: DataMapVersionInfo = { version: (current?.version ?? 0) + 1, sha256, createdAt: toIso(clock.now()), actor: options.actor.slice(0, 128), comment: options.comment?.slice(0, 500) ?? null };
      await trx.insertInto('datamap_versions').values({ version: info.version, manifest: text, sha256, created_at: info.createdAt, actor: info.actor, comment: info.comment }).execute();
      await this.#deps.onApply?.(trx, manifest, options.actor);
      await audit?.record(trx, [
        {
          actor: options.actor,
          action: 'datamap.updated',
          targetType: 'datamap',
          targetId: String(info.version),
          requestId: options.requestId ?? null,
          details: { version: info.version, sha256, previous: current?.version ?? null, ...diff.counts },
        },
      ]);
      return { version: info, created: true, diff };
    });
    if (result.created) {
      this.#cached = undefined;
      this.#deps.afterApply?.(manifest);
    }
    return { ...result, warnings: checked.issues.filter((i) => i.severity === 'warning') };
  }
}

function toInfo(row: { version: number | string; sha256: string; created_at: string | Date; actor: string; comment: string | null }): DataMapVersionInfo {
  return { version: Number(row.version), sha256: row.sha256, createdAt: storedToIso(row.created_at), actor: row.actor, comment: row.comment };
}

function infoOf(s: StoredDataMap): DataMapVersionInfo {
  const { manifest: _m, ...info } = s;
  return info;
}

function toStored(row: { version: number | string; manifest: string; sha256: string; created_at: string | Date; actor: string; comment: string | null }): StoredDataMap {
  // Stored versions were valid when stored; parsing again applies defaults added since (forward compatible).
  return { ...toInfo(row), manifest: manifestSchema.parse(JSON.parse(row.manifest)) };
}
