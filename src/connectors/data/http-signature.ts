import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signatures of the HTTP callback protocol (docs/requests.md (Connectors beyond SQL)): every request Custodian sends to a
 * team's service carries
 *
 * ```
 * Custodian-Timestamp: <Unix time in whole seconds>
 * Custodian-Signature: v1=<hex HMAC-SHA-256(secret, "<timestamp>.<raw body>")>,
 *                      v2=<hex HMAC-SHA-256(secret, "<timestamp>.<METHOD> <path>.<raw body>")>
 * ```
 *
 * (hex in lower case; one header line, entries separated by commas). `v2` also binds the request's method and
 * path (`POST /privacy/accounts/delete`: the URL's path as Custodian addressed it, without query), so a captured
 * body cannot be replayed to another operation or collection within the window. A receiver that passes the
 * request's `{method, path}` to {@link verifyCustodianSignature} requires `v2`; one that does not (written before
 * `v2`) still accepts `v1`. Behind a proxy that rewrites paths, verify with the path Custodian sent.
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

/** The method and path a request was sent to: what a `v2` signature binds besides time and body. */
export interface SignedTarget {
  /** Upper-cased before signing, e.g. `POST`. */
  readonly method: string;
  /** The URL's path, without query or fragment, e.g. `/privacy/accounts/delete`. */
  readonly path: string;
}

/** Hex HMAC-SHA-256 of `"<timestamp>.<body>"` (v1) or `"<timestamp>.<METHOD> <path>.<body>"` (v2) under `secret`. */
function digest(secret: string | Uint8Array, timestamp: string, body: string | Uint8Array, target?: SignedTarget): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(target === undefined ? `${timestamp}.` : `${timestamp}.${target.method.toUpperCase()} ${target.path}.`, 'utf8');
  hmac.update(body);
  return hmac.digest('hex');
}

/**
 * The `Custodian-Signature` header value for `body` sent at `timestamp` (Unix seconds): `v1=…`, and with the
 * request's `target` also `,v2=…` (what Custodian sends).
 *
 * @example
 * signCustodianRequest('s3cret', 1767225600, '{"a":1}') // 'v1=…64 hex digits…'
 * signCustodianRequest('s3cret', 1767225600, '{"a":1}', { method: 'POST', path: '/privacy/accounts/find' }) // 'v1=…,v2=…'
 */
export function signCustodianRequest(secret: string | Uint8Array, timestamp: number | string, body: string | Uint8Array, target?: SignedTarget): string {
  const v1 = `v1=${digest(secret, String(timestamp), body)}`;
  return target === undefined ? v1 : `${v1},v2=${digest(secret, String(timestamp), body, target)}`;
}

/** Why {@link verifyCustodianSignature} refused a request. */
export type SignatureFailure = 'malformed' | 'stale' | 'mismatch';

/** The outcome of {@link verifyCustodianSignature}. */
export type SignatureVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: SignatureFailure };

/**
 * Checks a request of the HTTP callback protocol: `header` must hold a signature of the request under `secret`
 * (or under one of several secrets, while rotating), and `timestamp` must lie within
 * {@link SIGNATURE_TOLERANCE_SECONDS} of `now` (milliseconds since the epoch). `body` is the raw request body as
 * received. With `target` (the request's method and path) only a `v2=` entry counts, so the signature also proves
 * where the request was sent; without it, a `v1=` entry of `"<timestamp>.<body>"`. Comparison is constant-time;
 * refusals say why, for the receiver's logs (answer 401 whatever the reason).
 *
 * @example
 * ```ts
 * const verdict = verifyCustodianSignature(process.env.CUSTODIAN_SECRET!, req.headers['custodian-timestamp'],
 *   rawBody, req.headers['custodian-signature'], Date.now(), { method: req.method, path: new URL(req.url, 'http://x').pathname });
 * if (!verdict.ok) return reply.status(401).send();
 * ```
 */
export function verifyCustodianSignature(
  secret: string | Uint8Array | readonly (string | Uint8Array)[],
  timestamp: string | number | readonly string[] | undefined,
  body: string | Uint8Array,
  header: string | readonly string[] | undefined,
  now: number = Date.now(),
  target?: SignedTarget,
): SignatureVerdict {
  if (typeof timestamp === 'number') timestamp = String(timestamp);
  if (typeof timestamp !== 'string' || typeof header !== 'string' || !TIMESTAMP.test(timestamp)) return { ok: false, reason: 'malformed' };
  const secrets = typeof secret === 'string' || secret instanceof Uint8Array ? [secret] : secret;
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) return { ok: false, reason: 'malformed' };
  const scheme = target === undefined ? 'v1=' : 'v2=';
  if (target !== undefined && (typeof target.method !== 'string' || typeof target.path !== 'string' || target.method.length === 0 || !target.path.startsWith('/'))) return { ok: false, reason: 'malformed' };
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const entry = part.trim();
    // Only the scheme this receiver checks counts; others (v1 beside v2, a future v3) are skipped, so a sender
    // may add schemes without breaking receivers written before them.
    if (!entry.startsWith(scheme)) continue;
    const hex = entry.slice(scheme.length);
    if (!HEX_SHA256.test(hex)) return { ok: false, reason: 'malformed' };
    candidates.push(Buffer.from(hex, 'hex'));
  }
  if (candidates.length === 0 || candidates.length > 8) return { ok: false, reason: 'malformed' };
  if (Math.abs(Math.floor(now / 1000) - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) return { ok: false, reason: 'stale' };
  let match = false;
  // Every pair is compared, so the time taken does not tell which secret or which entry matched.
  for (const s of secrets) {
    const expected = Buffer.from(digest(s, timestamp, body, target), 'hex');
    for (const candidate of candidates) if (timingSafeEqual(expected, candidate)) match = true;
  }
  return match ? { ok: true } : { ok: false, reason: 'mismatch' };
}
