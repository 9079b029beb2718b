import { createHash, createHmac, randomBytes } from 'node:crypto';
import { CustodianError, isCustodianError, toIso, uuidv7, type AuditSink, type Clock } from '../core/index.js';
import { PostgresAdapter, sql } from 'kysely';
import type { ChangeWatch, Executor, Store } from '../store/index.js';
import { KEY_ID_BYTES, checkContext, checkContextShape, keyIdPrefixOf, openField, parseField, sameKeyId, sealField, type ParsedField } from './aead.js';
import { BUILTIN_BLIND_INDEXES, NORMALISERS, checkBlindIndexDefinition, type BlindIndexDefinition, type Normaliser } from './blind-index.js';
import type { KekProvider } from './kek-provider.js';

/** Dependencies of {@link Keyring}. */
export interface KeyringDeps {
  readonly store: Store;
  readonly provider: KekProvider;
  readonly clock: Clock;
}

/** The receipt of a crypto-shredding. */
export interface ShredReceipt {
  readonly tombstoneId: string;
  /** HMAC of the subject id under the keyring's reference key: lets an auditor confirm a subject was shredded. */
  readonly subjectRef: string;
  readonly shreddedAt: string;
  readonly keysDestroyed: number;
  readonly keyIds: readonly string[];
}

/** The shreddings recorded for one subject (see {@link Keyring.shredHistory}). */
export interface ShredHistory {
  readonly subjectRef: string;
  readonly shreddings: ReadonlyArray<{ tombstoneId: string; shreddedAt: string; reason: string; actor: string; keysDestroyed: number; keyIds: readonly string[] }>;
}

/** Progress of a re-wrap job. */
export interface RewrapProgress {
  readonly jobId: string;
  readonly targetVersion: number;
  readonly processed: number;
  readonly total: number;
  readonly done: boolean;
}

/** What `custodian keys status` shows. */
export interface KeyringStatus {
  readonly provider: string;
  readonly primaryVersion: number;
  readonly versions: ReadonlyArray<{ version: number; provider: string; keyRef: string; status: string; dataKeys: number; createdAt: string }>;
  readonly dataKeys: { subject: number; index: number; system: number };
  readonly shreddings: number;
  readonly rewrap: RewrapProgress | null;
}

interface LiveKey {
  readonly id: string;
  readonly idBytes: Buffer;
  readonly key: Buffer;
}

const SUBJECT_REF_KEY = 'subject-ref';
/** Unwrapped subject keys kept in memory at most. */
const MAX_CACHED_KEYS = 100_000;
/** How long a read of the store's change token is trusted (SQLite): the bound on seeing a shredding by another process. */
const TOKEN_MAX_AGE_MS = 1;
const CANARY_AAD = (v: number) => Buffer.from(`custodian:kek-canary:v${v}`);
const KEY_AAD = (id: string, kind: string, owner: string) => Buffer.from(`custodian:data-key:${id}:${kind}:${owner}`);

/**
 * Custodian's keyring: envelope encryption with master keys (KEKs) from a {@link KekProvider} and data keys
 * stored only wrapped — one per subject (crypto-shredding), one per blind index, one system key that derives
 * subject references. Each ciphertext names its data key; each data key records the master-key version that
 * wrapped it, so any older version still decrypts until the re-wrap job has moved everything to the primary.
 *
 * Shredding deletes the subject's data keys: every ciphertext of that subject, in the live store or in any
 * backup, then fails with CST_ERR_CRYPTO_SHREDDED. Other processes drop cached keys at once on SQLite (the
 * store's change token is read before every operation) and on the NOTIFY that the shredding commits with on
 * PostgreSQL.
 */
export class Keyring {
  readonly #store: Store;
  readonly #provider: KekProvider;
  readonly #clock: Clock;
  readonly #byId = new Map<string, LiveKey>();
  /** The same keys by the first 6 bytes of their id (a number: no hex string per decryption); checked in full on use. */
  readonly #byIdPrefix = new Map<number, LiveKey>();
  readonly #bySubject = new Map<string, LiveKey>();
  readonly #bySubjectId = new Map<string, LiveKey>();
  readonly #indexes = new Map<string, { def: BlindIndexDefinition; key: Buffer }>();
  #refKey: Buffer | undefined;
  #audit: AuditSink | undefined;
  #token: number | undefined;
  #tokenReadAt = -Infinity;
  #watch: ChangeWatch | undefined;

  constructor(deps: KeyringDeps) {
    this.#store = deps.store;
    this.#provider = deps.provider;
    this.#clock = deps.clock;
  }

  /**
   * Registers the first master-key version on a new store, and on every start proves that each version data
   * keys depend on is configured and correct (a wrapped canary must unwrap to its recorded hash): a wrong or
   * missing master key fails here, not on the first decrypt.
   */
  async start(options: { watch?: boolean } = {}): Promise<void> {
    const available = await this.#provider.versions();
    let rows = await this.#store.db.selectFrom('kek_versions').selectAll().execute();
    if (rows.length === 0) {
      const version = Math.max(...available);
      const canary = await this.#canary(version);
      await this.#store.transaction(async (trx) => {
        await this.#store.lock(trx, 'custodian:keyring');
        if (await trx.selectFrom('kek_versions').select('version').executeTakeFirst()) return;
        await trx.insertInto('kek_versions').values({ version, provider: this.#provider.kind, key_ref: this.#provider.keyRef(version), ...canary, status: 'primary', created_at: this.#now(), retired_at: null }).execute();
      });
      rows = await this.#store.db.selectFrom('kek_versions').selectAll().execute();
    }
    for (const row of rows) {
      if (row.status === 'retired') continue;
      if (!available.includes(row.version)) {
        throw new CustodianError('CST_ERR_CRYPTO_MASTER_KEY_MISSING', `master key version ${row.version} is not configured but data keys may depend on it`, {
          details: { version: row.version, keyRef: row.key_ref },
        });
      }
      const canary = await this.#provider.unwrap(row.version, Buffer.from(row.canary_wrapped, 'base64'), CANARY_AAD(row.version)).catch((err: unknown) => {
        if (isCustodianError(err, 'CST_ERR_CRYPTO_WRONG_MASTER_KEY')) {
          throw new CustodianError('CST_ERR_CRYPTO_WRONG_MASTER_KEY', `the configured master key version ${row.version} is not the one this store was created with`, { details: { version: row.version } });
        }
        throw err;
      });
      if (createHash('sha256').update(canary).digest('hex') !== row.canary_hash) {
        throw new CustodianError('CST_ERR_CRYPTO_WRONG_MASTER_KEY', `master key version ${row.version} fails its key check value`, { details: { version: row.version } });
      }
    }
    this.#refKey = (await this.#ownedKey('system', SUBJECT_REF_KEY)).key;
    this.#token = this.#store.changeToken();
    if (options.watch !== false) {
      this.#watch = await this.#store.watchChanges((topic) => {
        if (topic === 'keys' || topic === null) this.#dropSubjectKeys();
      });
    }
  }

  /** Where shredding, rotation and retirement are audited (set by the composition root: the audit log needs the keyring). */
  setAuditSink(audit: AuditSink): void {
    this.#audit = audit;
  }

  async stop(): Promise<void> {
    const w = this.#watch;
    this.#watch = undefined;
    await w?.stop();
  }

  /** The subject's reference: HMAC-SHA-256 of the subject id under the system key, hex. Not personal data on its own. */
  subjectRef(subjectId: string): string {
    if (this.#refKey === undefined) throw new Error('keyring not started');
    return createHmac('sha256', this.#refKey).update(subjectId, 'utf8').digest('hex');
  }

  /** A 32-byte secret of the system, created on first use and stored wrapped like every data key (e.g. the audit signing seed). */
  async systemSecret(name: string): Promise<Buffer> {
    return Buffer.from((await this.#ownedKey('system', name)).key);
  }

  /** HMAC-SHA-256 (hex) of `text` under the system reference key, for digests that must not be guessable from the store. */
  keyedDigest(text: string): string {
    if (this.#refKey === undefined) throw new Error('keyring not started');
    return createHmac('sha256', this.#refKey).update('digest\u0000' + text, 'utf8').digest('hex');
  }

  /**
   * Encrypts a field of `subjectId`'s data under the subject's key (created on first use), bound to `context`
   * (e.g. `crm.contacts.email:row-42`). Contexts must never contain personal data: they are hashed into the
   * ciphertext header and must be given again to decrypt.
   */
  encryptField(subjectId: string, plaintext: string | Buffer, context: string): Promise<string> {
    // The hot path (key cached) stays synchronous inside: one settled promise per call, no async frames.
    try {
      checkSubject(subjectId);
      checkContextShape(context); // sealField checks the characters as it encodes them
      this.#checkToken();
      const hot = this.#bySubjectId.get(subjectId);
      if (hot !== undefined) return Promise.resolve(sealField(hot.key, hot.idBytes, bytesOf(plaintext), context));
      checkContext(context); // in full before a key may be created
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.#subjectKey(subjectId, true).then((key) => sealField(key!.key, key!.idBytes, bytesOf(plaintext), context));
  }

  /** Decrypts a field; errors say exactly why not (shredded, tampered, wrong context, unknown key, malformed). */
  decryptField(ciphertext: string, context: string): Promise<Buffer> {
    let parsed: ParsedField;
    try {
      checkContextShape(context); // openField checks the characters as it encodes them
      parsed = parseField(ciphertext);
      this.#checkToken();
      const hot = this.#byIdPrefix.get(parsed.keyIdPrefix);
      if (hot !== undefined && sameKeyId(hot.idBytes, parsed)) return Promise.resolve(openField(hot.key, parsed, context));
      checkContext(context); // in full before the key is read
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.#loadKeyById(parsed.keyIdHex).then((key) => openField(key.key, parsed, context));
  }

  /**
   * Encrypts many values at once: the subjects' keys are read in one query and the missing ones created in one
   * transaction, so a batch of new subjects costs two round trips, not one per subject. Not to be called inside
   * a store transaction (it opens its own).
   */
  async encryptMany(items: ReadonlyArray<{ subjectId: string; plaintext: string | Buffer; context: string }>): Promise<string[]> {
    for (const i of items) {
      checkSubject(i.subjectId);
      checkContext(i.context);
    }
    this.#checkToken();
    // Keys in hand are held locally: a cache that starts over while missing ones load cannot lose them.
    // Cached keys are found by subject id (no reference HMAC); only the others need their reference.
    const keys: Array<LiveKey | undefined> = items.map((i) => this.#bySubjectId.get(i.subjectId));
    const refOf = new Map<string, string>();
    items.forEach((item, n) => {
      if (keys[n] === undefined && !refOf.has(item.subjectId)) refOf.set(item.subjectId, this.subjectRef(item.subjectId));
    });
    if (refOf.size > 0) {
      const cached = [...refOf.values()].filter((r) => this.#bySubject.has(r));
      const loaded = new Map<string, LiveKey>(cached.map((r) => [r, this.#bySubject.get(r)!]));
      const missing = [...new Set(refOf.values())].filter((r) => !loaded.has(r));
      if (missing.length > 0) for (const [r, k] of await this.#ensureSubjectKeys(missing)) loaded.set(r, k);
      items.forEach((item, n) => {
        if (keys[n] !== undefined) return;
        const key = loaded.get(refOf.get(item.subjectId)!)!;
        keys[n] = key;
        this.#bySubjectId.set(item.subjectId, key);
      });
    }
    return items.map((item, n) => sealField(keys[n]!.key, keys[n]!.idBytes, bytesOf(item.plaintext), item.context));
  }

  /**
   * Decrypts many values; each result is the UTF-8 text or the error of that item (shredded, tampered, …).
   * Keys are read in one query per batch.
   */
  async decryptManyText(items: ReadonlyArray<{ ciphertext: string; context: string }>): Promise<Array<{ plaintext: string } | { error: CustodianError }>> {
    this.#checkToken();
    const parsed = items.map((i) => {
      try {
        checkContext(i.context);
        return parseField(i.ciphertext);
      } catch (err) {
        return err as CustodianError;
      }
    });
    const wanted = [...new Set(parsed.flatMap((p) => (p instanceof Error || this.#byId.has(p.keyIdHex) ? [] : [p.keyIdHex])))];
    if (wanted.length > 0) {
      const rows = await this.#store.db.selectFrom('data_keys').selectAll().where('id', 'in', wanted).execute();
      for (const row of rows) {
        const live = await this.#unwrapRow(row);
        this.#remember(live, row.kind === 'subject' ? row.owner : undefined);
      }
    }
    const out: Array<{ plaintext: string } | { error: CustodianError }> = [];
    for (let n = 0; n < parsed.length; n++) {
      const p = parsed[n]!;
      if (p instanceof Error) {
        out.push({ error: p });
        continue;
      }
      try {
        // A key still missing after the batch read is unknown or shredded: the single-key path says which.
        const key = this.#byId.get(p.keyIdHex) ?? (await this.#loadKeyById(p.keyIdHex));
        out.push({ plaintext: openField(key.key, p, items[n]!.context).toString('utf8') });
      } catch (err) {
        if (isCustodianError(err) && err.status < 500) out.push({ error: err });
        else throw err;
      }
    }
    return out;
  }

  /** {@link decryptField} as UTF-8 text. */
  async decryptFieldText(ciphertext: string, context: string): Promise<string> {
    return (await this.decryptField(ciphertext, context)).toString('utf8');
  }

  /**
   * The blind index of `value` under index `indexName`: truncated HMAC-SHA-256 with a key of that index, after
   * the index's normalisation, base64url. Index keys are not per subject, so blind indexes survive shredding.
   */
  async blindIndex(value: string, indexName: string): Promise<string> {
    if (typeof value !== 'string' || value.length > 65_536) {
      throw new CustodianError('CST_ERR_VALIDATION', 'value must be text of at most 65,536 characters', { details: { issues: [{ path: 'value', message: 'invalid' }] } });
    }
    const index = this.#indexes.get(indexName) ?? (await this.#loadIndex(indexName));
    const digest = createHmac('sha256', index.key).update(NORMALISERS[index.def.normaliser](value), 'utf8').digest();
    return digest.subarray(0, index.def.bits / 8).toString('base64url');
  }

  /** Defines (or confirms) a blind index. Redefining an existing index differently is refused: old digests would stop matching. */
  async defineBlindIndex(def: BlindIndexDefinition): Promise<BlindIndexDefinition> {
    const d = checkBlindIndexDefinition(def);
    await this.#store.transaction(async (trx) => {
      const existing = await trx.selectFrom('blind_indexes').selectAll().where('name', '=', d.name).executeTakeFirst();
      if (existing) {
        if (existing.normaliser !== d.normaliser || Number(existing.bits) !== d.bits) {
          throw new CustodianError('CST_ERR_VALIDATION', 'a blind index cannot be redefined: its digests would no longer match', { details: { issues: [{ path: 'name', message: 'exists with another definition' }] } });
        }
        return;
      }
      await trx.insertInto('blind_indexes').values({ name: d.name, normaliser: d.normaliser, bits: d.bits, created_at: this.#now() }).execute();
    });
    return d;
  }

  /**
   * Blind index definitions: every defined one, and the built-in ones (usable at once, defined on first use)
   * marked as such.
   */
  async listBlindIndexes(): Promise<Array<BlindIndexDefinition & { builtIn: boolean; defined: boolean }>> {
    const rows = await this.#store.db.selectFrom('blind_indexes').selectAll().orderBy('name').execute();
    const defined = rows.map((r) => ({ name: r.name, normaliser: r.normaliser as Normaliser, bits: Number(r.bits), builtIn: BUILTIN_BLIND_INDEXES.some((b) => b.name === r.name), defined: true }));
    const pending = BUILTIN_BLIND_INDEXES.filter((b) => !rows.some((r) => r.name === b.name)).map((b) => ({ ...b, builtIn: true, defined: false }));
    return [...defined, ...pending].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Crypto-shreds a subject: deletes its data keys, records a tombstone (subject reference, time, reason,
   * actor) and the destroyed key ids, all in one transaction, and tells other processes. Idempotent: shredding
   * again records another tombstone with no keys destroyed.
   */
  async shredSubject(subjectId: string, input: { reason: string; actor: string }): Promise<ShredReceipt> {
    checkSubject(subjectId);
    if (typeof input.reason !== 'string' || input.reason.trim().length === 0 || input.reason.length > 500) {
      throw new CustodianError('CST_ERR_VALIDATION', 'a reason of 1 to 500 characters is required', { details: { issues: [{ path: 'reason', message: 'required' }] } });
    }
    const ref = this.subjectRef(subjectId);
    const now = this.#clock.now();
    const tombstoneId = uuidv7(now);
    const keyIds = await this.#store.transaction(async (trx) => {
      const rows = await trx.selectFrom('data_keys').select('id').where('kind', '=', 'subject').where('owner', '=', ref).execute();
      const ids = rows.map((r) => r.id);
      if (ids.length > 0) await trx.deleteFrom('data_keys').where('id', 'in', ids).execute();
      await trx.insertInto('shred_tombstones').values({ id: tombstoneId, subject_ref: ref, reason: input.reason, actor: input.actor.slice(0, 128), keys_destroyed: ids.length, shredded_at: toIso(now) }).execute();
      if (ids.length > 0) await trx.insertInto('shredded_keys').values(ids.map((key_id) => ({ key_id, tombstone_id: tombstoneId }))).execute();
      await this.#store.announceChange(trx, 'keys', [ref]);
      await this.#audit?.record(trx, [{ actor: input.actor, action: 'subject.shredded', targetType: 'subject', targetId: subjectId, details: { tombstoneId, keysDestroyed: ids.length } }]);
      return ids;
    });
    this.#dropSubjectKeys();
    await this.#store.purgeDeleted();
    return { tombstoneId, subjectRef: ref, shreddedAt: toIso(now), keysDestroyed: keyIds.length, keyIds };
  }

  /**
   * The shreddings of `subjectId`, oldest first (empty when never shredded), with the subject reference the
   * tombstones are filed under: what an auditor checks a shred receipt against.
   */
  async shredHistory(subjectId: string): Promise<ShredHistory> {
    checkSubject(subjectId);
    const subjectRef = this.subjectRef(subjectId);
    const rows = await this.#store.db.selectFrom('shred_tombstones').selectAll().where('subject_ref', '=', subjectRef).orderBy('id').execute();
    const keys = rows.length === 0 ? [] : await this.#store.db.selectFrom('shredded_keys').select(['tombstone_id', 'key_id']).where('tombstone_id', 'in', rows.map((r) => r.id)).orderBy('key_id').execute();
    return {
      subjectRef,
      shreddings: rows.map((r) => ({
        tombstoneId: r.id,
        shreddedAt: new Date(r.shredded_at).toISOString(),
        reason: r.reason,
        actor: r.actor,
        keysDestroyed: Number(r.keys_destroyed),
        keyIds: keys.filter((k) => k.tombstone_id === r.id).map((k) => k.key_id),
      })),
    };
  }

  /**
   * Makes a new master-key version primary: the newest configured version not yet registered, or — for a
   * local key file — a newly generated one. New data keys are wrapped under it at once; run {@link rewrap}
   * to move existing ones.
   */
  async rotate(actor = 'system'): Promise<{ version: number; previous: number }> {
    const registered = new Set((await this.#store.db.selectFrom('kek_versions').select('version').execute()).map((r) => Number(r.version)));
    const fresh = (await this.#provider.versions()).filter((v) => !registered.has(v));
    const version = fresh.length > 0 ? Math.max(...fresh) : await this.#provider.createVersion();
    const canary = await this.#canary(version);
    const previous = await this.#store.transaction(async (trx) => {
      await this.#store.lock(trx, 'custodian:keyring');
      const prev = await trx.selectFrom('kek_versions').select('version').where('status', '=', 'primary').executeTakeFirstOrThrow();
      await trx.updateTable('kek_versions').set({ status: 'active' }).where('status', '=', 'primary').execute();
      await trx.insertInto('kek_versions').values({ version, provider: this.#provider.kind, key_ref: this.#provider.keyRef(version), ...canary, status: 'primary', created_at: this.#now(), retired_at: null }).execute();
      await this.#audit?.record(trx, [{ actor, action: 'keys.rotated', targetType: 'master_key', targetId: String(version), details: { version, previous: Number(prev.version) } }]);
      return Number(prev.version);
    });
    return { version, previous };
  }

  /**
   * Re-wraps every data key not under the primary version, in batches, recording progress in `rewrap_jobs`
   * so a crash or an abort resumes where it stopped. Yields progress after each batch.
   */
  async *rewrap(options: { batchSize?: number; signal?: AbortSignal } = {}): AsyncGenerator<RewrapProgress> {
    const batchSize = Math.min(Math.max(options.batchSize ?? 1000, 1), 10_000);
    const primary = await this.#primaryVersion(this.#store.db);
    let job = await this.#store.db.selectFrom('rewrap_jobs').selectAll().where('status', '=', 'running').where('target_version', '=', primary).executeTakeFirst();
    if (job === undefined) {
      const count = await this.#store.db.selectFrom('data_keys').select((eb) => eb.fn.countAll<string | number>().as('n')).where('kek_version', '<>', primary).executeTakeFirstOrThrow();
      const id = uuidv7(this.#clock.now());
      const row = { id, target_version: primary, status: 'running', cursor: '', processed: 0, total: Number(count.n), started_at: this.#now(), updated_at: this.#now(), finished_at: null };
      await this.#store.db.insertInto('rewrap_jobs').values(row).execute();
      job = row;
    }
    let { cursor } = job;
    let processed = Number(job.processed);
    const total = Number(job.total);
    for (;;) {
      options.signal?.throwIfAborted();
      const rows = await this.#store.db
        .selectFrom('data_keys')
        .select(['id', 'kind', 'owner', 'kek_version', 'wrapped'])
        .where('kek_version', '<>', primary)
        .where('id', '>', cursor)
        .orderBy('id')
        .limit(batchSize)
        .execute();
      if (rows.length === 0) {
        await this.#store.db.updateTable('rewrap_jobs').set({ status: 'done', updated_at: this.#now(), finished_at: this.#now() }).where('id', '=', job.id).execute();
        yield { jobId: job.id, targetVersion: primary, processed, total: Math.max(total, processed), done: true };
        return;
      }
      const updates: RewrapUpdate[] = [];
      for (const r of rows) {
        const aad = KEY_AAD(r.id, r.kind, r.owner);
        const key = await this.#provider.unwrap(Number(r.kek_version), Buffer.from(r.wrapped, 'base64'), aad, options);
        updates.push({ id: r.id, from: Number(r.kek_version), wrapped: (await this.#provider.wrap(primary, key, aad, options)).toString('base64') });
      }
      cursor = rows[rows.length - 1]!.id;
      processed += rows.length;
      await this.#store.transaction(async (trx) => {
        await rewrapRows(trx, primary, updates);
        await trx.updateTable('rewrap_jobs').set({ cursor, processed, updated_at: this.#now() }).where('id', '=', job.id).execute();
      });
      yield { jobId: job.id, targetVersion: primary, processed, total: Math.max(total, processed), done: false };
    }
  }

  /** Retires a master-key version: refused while it is primary or any data key still depends on it. */
  async retire(version: number, actor = 'system'): Promise<void> {
    await this.#store.transaction(async (trx) => {
      await this.#store.lock(trx, 'custodian:keyring');
      const row = await trx.selectFrom('kek_versions').selectAll().where('version', '=', version).executeTakeFirst();
      if (row === undefined) throw new CustodianError('CST_ERR_NOT_FOUND', 'no such master key version', { details: { version } });
      const dependents = await trx.selectFrom('data_keys').select((eb) => eb.fn.countAll<string | number>().as('n')).where('kek_version', '=', version).executeTakeFirstOrThrow();
      if (row.status === 'primary' || Number(dependents.n) > 0) {
        throw new CustodianError('CST_ERR_CRYPTO_RETIRE_REFUSED', row.status === 'primary' ? 'the primary version cannot be retired: rotate first' : 'data keys still depend on this version: run the re-wrap job first', {
          details: { version, status: row.status, dependents: Number(dependents.n) },
        });
      }
      await trx.updateTable('kek_versions').set({ status: 'retired', retired_at: this.#now() }).where('version', '=', version).execute();
      await this.#audit?.record(trx, [{ actor, action: 'keys.retired', targetType: 'master_key', targetId: String(version), details: { version } }]);
    });
  }

  /** Versions, key counts, shreddings and the latest re-wrap job. */
  async status(): Promise<KeyringStatus> {
    const db = this.#store.db;
    const versions = await db.selectFrom('kek_versions').selectAll().orderBy('version').execute();
    const perVersion = await db.selectFrom('data_keys').select(['kek_version', (eb) => eb.fn.countAll<string | number>().as('n')]).groupBy('kek_version').execute();
    const perKind = await db.selectFrom('data_keys').select(['kind', (eb) => eb.fn.countAll<string | number>().as('n')]).groupBy('kind').execute();
    const shreddings = await db.selectFrom('shred_tombstones').select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirstOrThrow();
    const job = await db.selectFrom('rewrap_jobs').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirst();
    const count = (rows: Array<{ n: string | number }>, pick: (r: never) => boolean) => Number((rows as never[]).find(pick)?.['n'] ?? 0);
    return {
      provider: this.#provider.kind,
      primaryVersion: Number(versions.find((v) => v.status === 'primary')?.version ?? 0),
      versions: versions.map((v) => ({
        version: Number(v.version),
        provider: v.provider,
        keyRef: v.key_ref,
        status: v.status,
        dataKeys: count(perVersion, (r: { kek_version: number }) => Number(r.kek_version) === Number(v.version)),
        createdAt: new Date(v.created_at).toISOString(),
      })),
      dataKeys: {
        subject: count(perKind, (r: { kind: string }) => r.kind === 'subject'),
        index: count(perKind, (r: { kind: string }) => r.kind === 'index'),
        system: count(perKind, (r: { kind: string }) => r.kind === 'system'),
      },
      shreddings: Number(shreddings.n),
      rewrap: job === undefined ? null : { jobId: job.id, targetVersion: Number(job.target_version), processed: Number(job.processed), total: Number(job.total), done: job.status === 'done' },
    };
  }

  // --- internals -------------------------------------------------------------------------------------------

  #now(): string {
    return toIso(this.#clock.now());
  }

  async #canary(version: number): Promise<{ canary_wrapped: string; canary_hash: string }> {
    const canary = randomBytes(32);
    const wrapped = await this.#provider.wrap(version, canary, CANARY_AAD(version));
    return { canary_wrapped: wrapped.toString('base64'), canary_hash: createHash('sha256').update(canary).digest('hex') };
  }

  async #primaryVersion(db: Executor): Promise<number> {
    const row = await db.selectFrom('kek_versions').select('version').where('status', '=', 'primary').executeTakeFirstOrThrow();
    return Number(row.version);
  }

  /**
   * On SQLite, another connection's commit (a shredding by the CLI) drops cached subject keys before we use one.
   * The change token (`PRAGMA data_version`, ~3 µs) is read at most once per {@link TOKEN_MAX_AGE_MS}: a
   * shredding committed elsewhere is honoured within that bound, by every operation that starts later.
   */
  #checkToken(): void {
    const now = performance.now();
    if (now - this.#tokenReadAt < TOKEN_MAX_AGE_MS && this.#token !== undefined) return;
    const token = this.#store.changeToken();
    this.#tokenReadAt = now;
    // No cheap token (PostgreSQL) and no healthy change feed: a shredding elsewhere could go unseen, so no
    // subject key is trusted from cache — every operation re-reads it.
    if (token === undefined && this.#watch?.healthy !== true) {
      this.#dropSubjectKeys();
      return;
    }
    if (token !== this.#token) {
      this.#token = token;
      this.#dropSubjectKeys();
    }
  }

  #dropSubjectKeys(): void {
    this.#byId.clear();
    this.#byIdPrefix.clear();
    this.#bySubject.clear();
    this.#bySubjectId.clear();
  }

  async #subjectKey(subjectId: string, create: boolean): Promise<LiveKey | undefined> {
    this.#checkToken();
    // Keyed by subject id too, so the hot path skips the reference HMAC; dropped with every other cached key.
    const hot = this.#bySubjectId.get(subjectId);
    if (hot !== undefined) return hot;
    const ref = this.subjectRef(subjectId);
    const live = this.#bySubject.get(ref) ?? (create ? await this.#ownedKey('subject', ref) : await this.#findOwnedKey('subject', ref));
    if (live !== undefined) {
      this.#remember(live, ref);
      this.#bySubjectId.set(subjectId, live);
    }
    return live;
  }

  /** Caches an unwrapped key (by subject reference too when it is a subject's), bounded: past {@link MAX_CACHED_KEYS} the caches start over. */
  #remember(live: LiveKey, subjectRef?: string): void {
    if (this.#byId.size >= MAX_CACHED_KEYS) this.#dropSubjectKeys();
    if (subjectRef !== undefined) this.#bySubject.set(subjectRef, live);
    this.#byId.set(live.id, live);
    this.#byIdPrefix.set(keyIdPrefixOf(live.idBytes), live);
  }

  /**
   * The keys of `refs`, loaded in one query per 500 and the missing ones created in one transaction. Returned
   * as a map (as well as cached), so a cache that starts over mid-batch cannot lose them.
   */
  async #ensureSubjectKeys(refs: readonly string[]): Promise<Map<string, LiveKey>> {
    const found = new Map<string, LiveKey>();
    const keep = (live: LiveKey, owner: string) => {
      found.set(owner, live);
      this.#remember(live, owner);
    };
    const load = async () => {
      for (let i = 0; i < refs.length; i += 500) {
        const rows = await this.#store.db.selectFrom('data_keys').selectAll().where('kind', '=', 'subject').where('owner', 'in', refs.slice(i, i + 500)).execute();
        for (const row of rows) keep(await this.#unwrapRow(row), row.owner);
      }
    };
    await load();
    const absent = refs.filter((r) => !found.has(r));
    if (absent.length === 0) return found;
    const primary = await this.#primaryVersion(this.#store.db);
    const fresh = await Promise.all(
      absent.map(async (owner) => {
        const id = randomBytes(KEY_ID_BYTES).toString('hex');
        const key = randomBytes(32);
        const wrapped = await this.#provider.wrap(primary, key, KEY_AAD(id, 'subject', owner));
        return { live: { id, idBytes: Buffer.from(id, 'hex'), key }, row: { id, kind: 'subject', owner, kek_version: primary, wrapped: wrapped.toString('base64'), created_at: this.#now() } };
      }),
    );
    try {
      await this.#store.transaction(async (trx) => {
        for (let i = 0; i < fresh.length; i += 500) await trx.insertInto('data_keys').values(fresh.slice(i, i + 500).map((f) => f.row)).execute();
      });
      for (const f of fresh) keep(f.live, f.row.owner);
    } catch (err) {
      // Another process created some of these keys first: use theirs.
      await load();
      if (absent.some((r) => !found.has(r))) throw err;
    }
    return found;
  }

  async #findOwnedKey(kind: string, owner: string): Promise<LiveKey | undefined> {
    const row = await this.#store.db.selectFrom('data_keys').selectAll().where('kind', '=', kind).where('owner', '=', owner).executeTakeFirst();
    return row === undefined ? undefined : this.#unwrapRow(row);
  }

  /** The data key of (kind, owner), created on first use; concurrent creators converge on one key. */
  async #ownedKey(kind: string, owner: string): Promise<LiveKey> {
    const existing = await this.#findOwnedKey(kind, owner);
    if (existing !== undefined) return existing;
    const id = randomBytes(KEY_ID_BYTES).toString('hex');
    const key = randomBytes(32);
    const primary = await this.#primaryVersion(this.#store.db);
    const wrapped = await this.#provider.wrap(primary, key, KEY_AAD(id, kind, owner));
    try {
      await this.#store.db.insertInto('data_keys').values({ id, kind, owner, kek_version: primary, wrapped: wrapped.toString('base64'), created_at: this.#now() }).execute();
    } catch (err) {
      const again = await this.#findOwnedKey(kind, owner);
      if (again !== undefined) return again; // another process created it first
      throw err;
    }
    return { id, idBytes: Buffer.from(id, 'hex'), key };
  }

  async #unwrapRow(row: { id: string; kind: string; owner: string; kek_version: number; wrapped: string }): Promise<LiveKey> {
    const key = await this.#provider.unwrap(Number(row.kek_version), Buffer.from(row.wrapped, 'base64'), KEY_AAD(row.id, row.kind, row.owner));
    return { id: row.id, idBytes: Buffer.from(row.id, 'hex'), key };
  }

  async #loadKeyById(id: string): Promise<LiveKey> {
    const row = await this.#store.db.selectFrom('data_keys').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) {
      const shredded = await this.#store.db.selectFrom('shredded_keys').select('key_id').where('key_id', '=', id).executeTakeFirst();
      if (shredded !== undefined) throw new CustodianError('CST_ERR_CRYPTO_SHREDDED', "the subject's keys were destroyed: this value can never be decrypted", { details: { keyId: id } });
      throw new CustodianError('CST_ERR_CRYPTO_UNKNOWN_KEY', 'the ciphertext names a key this store never had', { details: { keyId: id } });
    }
    const live = await this.#unwrapRow(row);
    this.#remember(live, row.kind === 'subject' ? row.owner : undefined);
    return live;
  }

  async #loadIndex(name: string): Promise<{ def: BlindIndexDefinition; key: Buffer }> {
    let row = await this.#store.db.selectFrom('blind_indexes').selectAll().where('name', '=', name).executeTakeFirst();
    if (row === undefined) {
      const builtin = BUILTIN_BLIND_INDEXES.find((b) => b.name === name);
      if (builtin === undefined) throw new CustodianError('CST_ERR_CRYPTO_UNKNOWN_INDEX', 'no blind index with this name; define it first', { details: { index: name.slice(0, 64) } });
      await this.defineBlindIndex(builtin);
      row = await this.#store.db.selectFrom('blind_indexes').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
    }
    const def: BlindIndexDefinition = { name: row.name, normaliser: row.normaliser as Normaliser, bits: Number(row.bits) };
    const { key } = await this.#ownedKey('index', name);
    const entry = { def, key };
    this.#indexes.set(name, entry);
    return entry;
  }
}

function bytesOf(plaintext: string | Buffer): Buffer {
  return typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
}

function checkSubject(subjectId: unknown): asserts subjectId is string {
  if (typeof subjectId !== 'string' || subjectId.length === 0 || subjectId.length > 256) {
    throw new CustodianError('CST_ERR_VALIDATION', 'subjectId must be 1 to 256 characters', { details: { issues: [{ path: 'subjectId', message: 'invalid' }] } });
  }
}

interface RewrapUpdate {
  readonly id: string;
  readonly from: number;
  readonly wrapped: string;
}

/** Writes re-wrapped keys; a row changed meanwhile (shredded, or re-wrapped by another job) is left alone. */
async function rewrapRows(trx: Executor, version: number, updates: readonly RewrapUpdate[]): Promise<void> {
  if (trx.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`update data_keys d set wrapped = u.wrapped, kek_version = ${version}
      from unnest(${updates.map((u) => u.id)}::varchar[], ${updates.map((u) => u.from)}::int[], ${updates.map((u) => u.wrapped)}::text[]) as u(id, from_version, wrapped)
      where d.id = u.id and d.kek_version = u.from_version`.execute(trx);
    return;
  }
  // SQLite (≥ 3.38): one statement per batch, the batch passed as one JSON parameter (no bound-variable limit).
  await sql`update data_keys set wrapped = u.value ->> 2, kek_version = ${version}
    from json_each(${JSON.stringify(updates.map((u) => [u.id, u.from, u.wrapped]))}) as u
    where data_keys.id = u.value ->> 0 and data_keys.kek_version = u.value ->> 1`.execute(trx);
}
