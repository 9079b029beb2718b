/** Options of {@link TokenBucketLimiter}. */
export interface TokenBucketLimiterOptions {
  /** Tokens added per minute (the sustained rate). */
  readonly perMinute: number;
  /** Bucket capacity (the burst a fresh client may spend at once). */
  readonly burst: number;
  /** Most keys tracked at once; the least recently seen is forgotten first (it refills to full anyway). */
  readonly maxKeys?: number;
  /** Milliseconds since the epoch; injected for tests. */
  readonly now?: () => number;
}

/** The answer to {@link TokenBucketLimiter.take}: allowed, or how long to wait. */
export type TakeResult = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

/**
 * An in-memory token bucket per key (a client address): each request takes one token; tokens refill
 * continuously at `perMinute`; at most `burst` are held. Memory is bounded by `maxKeys` (LRU by Map insertion
 * order). O(1) per call. Per process: with N replicas a client gets up to N times the rate.
 */
export class TokenBucketLimiter {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(options: TokenBucketLimiterOptions) {
    this.#ratePerMs = options.perMinute / 60_000;
    this.#burst = options.burst;
    this.#maxKeys = options.maxKeys ?? 50_000;
    this.#now = options.now ?? Date.now;
  }

  /** Takes one token for `key`. */
  take(key: string): TakeResult {
    const now = this.#now();
    const b = this.#buckets.get(key);
    let tokens = this.#burst;
    if (b !== undefined) {
      tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#ratePerMs);
      this.#buckets.delete(key); // re-inserted below: most recently seen last
    } else if (this.#buckets.size >= this.#maxKeys) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done !== true) this.#buckets.delete(oldest.value);
    }
    if (tokens < 1) {
      this.#buckets.set(key, { tokens, at: now });
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.#ratePerMs / 1000)) };
    }
    this.#buckets.set(key, { tokens: tokens - 1, at: now });
    return { allowed: true };
  }
}
