import { LEDGER_LIMITS } from '../ledger/index.js';

/** The answer of a consent lookup for one subject: may its data be processed for the purpose, and the status it rests on. */
export interface ConsentDecision {
  readonly allowed: boolean;
  /** `granted`, `denied`, `withdrawn`, `expired` or `none` (the ledger's statuses). */
  readonly status: string;
}

/** Options of one lookup call. */
export interface ConsentLookupCallOptions {
  readonly signal?: AbortSignal;
}

/**
 * Where {@link filterByConsent} gets its decisions: many subjects for one purpose per call. Adapters:
 * {@link ledgerLookup} (in process) and {@link httpLookup} (a Custodian server).
 */
export interface ConsentLookup {
  /**
   * Decides for each of `subjectIds` (distinct, valid ids) whether processing for `purpose` is allowed now.
   * The map must have an entry for every id; a missing one is treated as "no consent recorded".
   */
  checkMany(subjectIds: readonly string[], purpose: string, options?: ConsentLookupCallOptions): Promise<Map<string, ConsentDecision>>;
  /** Fails with `CST_ERR_CONSENT_UNKNOWN_PURPOSE` when `purpose` is not configured (optional: checked before any record is read). */
  assertPurpose?(purpose: string, options?: ConsentLookupCallOptions): Promise<void>;
  /**
   * Optional change feed: calls `listener` with the subjects whose consent may have changed (null: anyone's).
   * While `healthy()` is true, a decision stays valid until a change names its subject, so the filter need not
   * look it up again on a timer.
   */
  watchChanges?(listener: (subjectIds: readonly string[] | null) => void): ChangeFeed;
}

/** A running change feed of a {@link ConsentLookup}. */
export interface ChangeFeed {
  healthy(): boolean;
  stop(): void;
}

/** What {@link ledgerLookup} needs from the consent ledger (its `checkMany`). */
export interface LedgerLike {
  checkMany(pairs: readonly { subjectId: string; purpose: string }[], options?: { bulk?: boolean }): Promise<ReadonlyArray<{ readonly subjectId: string; readonly allowed: boolean; readonly status: string }>>;
  /** The decision of many subjects for one purpose, read in bulk (used instead of `checkMany` when present). */
  decideMany?(subjectIds: readonly string[], purpose: string): Promise<Map<string, ConsentDecision>>;
  /** The ledger's change notices (local writes and, while watching, other processes'). */
  onChange?(listener: (subjectIds: readonly string[] | null) => void): () => void;
  changeFeedHealthy?(): boolean;
}

/** What {@link ledgerLookup} needs to validate a purpose up front (the purpose registry's `require`). */
export interface PurposesLike {
  require(key: string, path?: string): Promise<unknown>;
}

/** Options of {@link ledgerLookup}. */
export interface LedgerLookupOptions {
  /** The purpose registry (`custodian.purposes`): lets the filter reject an unknown purpose before reading input. */
  readonly purposes?: PurposesLike;
  /** Pairs per `ledger.checkMany` call; at most (and default) LEDGER_LIMITS.maxCheckBatch (10,000). */
  readonly chunkSize?: number;
}

/**
 * A {@link ConsentLookup} over an in-process {@link ConsentLedger}: `ledger.checkMany` in chunks of up to
 * 10,000 pairs, so decisions come from the ledger's projection and its cache (which change notices keep current);
 * subjects not cached are read in bulk mode (their purpose only, not added to the ledger's cache).
 *
 * @example
 * const custodian = await createCustodian(loadConfig(process.env));
 * const lookup = ledgerLookup(custodian.ledger, { purposes: custodian.purposes });
 */
export function ledgerLookup(ledger: LedgerLike, options: LedgerLookupOptions = {}): ConsentLookup {
  const chunkSize = Math.max(1, Math.min(options.chunkSize ?? LEDGER_LIMITS.maxCheckBatch, LEDGER_LIMITS.maxCheckBatch));
  const purposes = options.purposes;
  return {
    async checkMany(subjectIds, purpose, callOptions) {
      if (ledger.decideMany !== undefined) {
        if (subjectIds.length <= chunkSize) return ledger.decideMany(subjectIds, purpose);
        const merged = new Map<string, ConsentDecision>();
        for (let i = 0; i < subjectIds.length; i += chunkSize) {
          callOptions?.signal?.throwIfAborted();
          for (const [id, d] of await ledger.decideMany(subjectIds.slice(i, i + chunkSize), purpose)) merged.set(id, d);
        }
        return merged;
      }
      const out = new Map<string, ConsentDecision>();
      for (let i = 0; i < subjectIds.length; i += chunkSize) {
        callOptions?.signal?.throwIfAborted();
        const end = Math.min(i + chunkSize, subjectIds.length);
        const pairs = new Array<{ subjectId: string; purpose: string }>(end - i);
        for (let j = i; j < end; j++) pairs[j - i] = { subjectId: subjectIds[j]!, purpose };
        // bulk: a filter scans many subjects; the ledger must not let it evict what its point checks keep cached.
        const results = await ledger.checkMany(pairs, { bulk: true });
        for (const r of results) out.set(r.subjectId, r);
      }
      return out;
    },
    ...(ledger.onChange === undefined || ledger.changeFeedHealthy === undefined
      ? {}
      : {
          watchChanges(listener: (subjectIds: readonly string[] | null) => void): ChangeFeed {
            const stop = ledger.onChange!(listener);
            return { healthy: () => ledger.changeFeedHealthy!(), stop };
          },
        }),
    ...(purposes === undefined
      ? {}
      : {
          async assertPurpose(purpose: string) {
            await purposes.require(purpose, 'purpose');
          },
        }),
  };
}
