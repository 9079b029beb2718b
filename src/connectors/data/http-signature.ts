import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signatures of the HTTP callback protocol (docs/requests.md (Connectors beyond SQL)): every request Custodian sends to a
 * team's service carries
 *
 * ```
 * Custodian-Timestamp: <Unix time in whole seconds>
 * Custodian-Signature: v1=<lower-case hex HMAC-SHA-256(secret, "<timestamp>.<raw body>")>
 * ```
 *
 * The receiver recomputes the HMAC over the exact bytes it received (never over re-serialised JSON),
 * compares in constant time, and refuses timestamps more than {@link SIGNATURE_TOLERANCE_SECONDS} away from
 * its clock, so a captured request cannot be replayed later. This module has no dependency on the rest of
 * Custodian: a receiver written in TypeScript may import it (or copy it) as is.
 *
 * @module
 */

/** Replay window: a timestamp further than this from the receiver's clock (either way) is refused. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;
/** Header carrying the signing time, Unix seconds. */
export const TIMESTAMP_HEADER = 'Custodian-Timestamp';
/** Header carrying `v1=<hex>` (several comma-separated entries while a secret is being rotated). */
export const SIGNATURE_HEADER = 'Custodian-Signature';

const HEX_SHA256 = /^[0-9a-f]{64}$/;
const TIMESTAMP = /^\d{1,15}$/;

/** Hex HMAC-SHA-256 of `"<timestamp>.<body>"` under `secret`. */
function digest(secret: string | Uint8Array, timestamp: string, body: string | Uint8Array): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(`${timestamp}.`, 'utf8');
  hmac.update(body);
  return hmac.digest('hex');
}

/**
 * The `Custodian-Signature` header value for `body` sent at `timestamp` (Unix seconds).
 *
 * @example
 * signCustodianRequest('s3cret', 1767225600, '{"a":1}') // 'v1=…64 hex digits…'
 */
export function signCustodianRequest(secret: string | Uint8Array, timestamp: number | string, body: string | Uint8Array): string {
  return `v1=${digest(secret, String(timestamp), body)}`;
}

/** Why {@link verifyCustodianSignature} refused a request. */
export type SignatureFailure = 'malformed' | 'stale' | 'mismatch';

/** The outcome of {@link verifyCustodianSignature}. */
export type SignatureVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: SignatureFailure };

/**
 * Checks a request of the HTTP callback protocol: `header` must hold a `v1=` signature of
 * `"<timestamp>.<body>"` under `secret` (or under one of several secrets, while rotating), and `timestamp`
 * must lie within {@link SIGNATURE_TOLERANCE_SECONDS} of `now` (milliseconds since the epoch). `body` is the
 * raw request body as received. Comparison is constant-time; refusals say why, for the receiver's logs (answer
 * 401 whatever the reason).
 *
 * @example
 * ```ts
 * const verdict = verifyCustodianSignature(process.env.CUSTODIAN_SECRET!, req.headers['custodian-timestamp'],
 *   rawBody, req.headers['custodian-signature'], Date.now());
 * if (!verdict.ok) return reply.status(401).send();
 * ```
 */
export function verifyCustodianSignature(
  secret: string | Uint8Array | readonly (string | Uint8Array)[],
  timestamp: string | number | readonly string[] | undefined,
  body: string | Uint8Array,
  header: string | readonly string[] | undefined,
  now: number = Date.now(),
): SignatureVerdict {
  if (typeof timestamp === 'number') timestamp = String(timestamp);
  if (typeof timestamp !== 'string' || typeof header !== 'string' || !TIMESTAMP.test(timestamp)) return { ok: false, reason: 'malformed' };
  const secrets = typeof secret === 'string' || secret instanceof Uint8Array ? [secret] : secret;
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) return { ok: false, reason: 'malformed' };
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const entry = part.trim();
    // Unknown schemes (a future v2) are skipped, so a sender may add them without breaking old receivers.
    if (!entry.startsWith('v1=')) continue;
    const hex = entry.slice(3);
    if (!HEX_SHA256.test(hex)) return { ok: false, reason: 'malformed' };
    candidates.push(Buffer.from(hex, 'hex'));
  }
  if (candidates.length === 0 || candidates.length > 8) return { ok: false, reason: 'malformed' };
  if (Math.abs(Math.floor(now / 1000) - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) return { ok: false, reason: 'stale' };
  let match = false;
  // Every pair is compared, so the time taken does not tell which secret or which entry matched.
  for (const s of secrets) {
    const expected = Buffer.from(digest(s, timestamp, body), 'hex');
    for (const candidate of candidates) if (timingSafeEqual(expected, candidate)) match = true;
  }
  return match ? { ok: true } : { ok: false, reason: 'mismatch' };
}
