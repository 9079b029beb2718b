const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE']);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The error code when `err` means the store could not be reached or is overloaded: network errors,
 * PostgreSQL SQLSTATE class 08 (connection), 57P01–57P03 (shutdown, cannot connect now), 53300 (too many
 * connections), SQLite's SQLITE_BUSY after the busy timeout. Such faults are the store's, not the caller's: 503.
 */
export function storeUnavailableReason(err: unknown): string | undefined {
  const code = codeOf(err);
  if (code === undefined) {
    // pg reports a timed-out pool checkout and a dropped connection by message only.
    const message = (err as Error | undefined)?.message ?? '';
    return /timeout exceeded when trying to connect|Connection terminated/i.test(message) ? 'connection' : undefined;
  }
  if (NETWORK_ERRORS.has(code) || code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED') return code;
  return undefined;
}

/** True when a PostgreSQL transaction failed on a deadlock (40P01) or serialization conflict (40001) and may be retried whole. */
export function isRetryableConflict(err: unknown): boolean {
  const code = codeOf(err);
  return code === '40P01' || code === '40001';
}
