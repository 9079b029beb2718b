/** Settings of {@link backoffDelay}. */
export interface BackoffOptions {
  /** Delay ceiling before jitter for the first retry; doubles per attempt. */
  readonly baseMs: number;
  /** Largest delay. */
  readonly capMs: number;
}

/**
 * The delay before retry number `attempt` (1 = the first retry): exponential (`baseMs · 2^(attempt−1)`, capped
 * at `capMs`) with full jitter — a uniform draw between 0 and that ceiling — so that many clients failing
 * together spread their retries out instead of retrying in step (AWS Architecture Blog, "Exponential Backoff
 * and Jitter"). A `floorMs` (e.g. a server's `Retry-After`) is honoured up to `capMs`. Randomness is injected.
 *
 * @example
 * backoffDelay(3, { baseMs: 1000, capMs: 3_600_000 }) // somewhere in [0, 4000)
 */
export function backoffDelay(attempt: number, options: BackoffOptions, floorMs = 0, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** exponent);
  return Math.max(Math.floor(random() * ceiling), Math.min(floorMs, options.capMs));
}

/** A `Retry-After` header value in milliseconds when it is a number of seconds; HTTP dates are ignored (clock skew). */
export function retryAfterMs(value: string | null | undefined): number | undefined {
  return typeof value === 'string' && /^\d{1,6}$/.test(value.trim()) ? Number(value.trim()) * 1000 : undefined;
}
