import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, following the Standard Webhooks convention (https://www.standardwebhooks.com/):
 *
 * ```
 * webhook-id: <the event id; the same on every retry>
 * webhook-timestamp: <Unix time in whole seconds of this attempt>
 * webhook-signature: v1,<base64 HMAC-SHA-256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")>
 * ```
 *
 * The key is the secret's bytes: for secrets written `whsec_<base64>` (the ones Custodian generates) the
 * base64-decoded bytes, as Standard Webhooks libraries do; for any other secret (or one whose base64 is not
 * canonical) its UTF-8 bytes. This module
 * has no dependency on the rest of Custodian (node:crypto only), so a receiver may import or copy it as is.
 *
 * @module
 */

/** Default replay window: a timestamp further than this from the receiver's clock (either way) is refused. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;
/** Prefix of generated secrets (base64 key bytes follow). */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';

const TIMESTAMP = /^\d{1,15}$/;
const BASE64_SHA256 = /^[A-Za-z0-9+/]{43}=$/;

/** The HMAC key of `secret` (see the module comment). */
export function webhookKey(secret: string): Buffer {
  if (secret.startsWith(WEBHOOK_SECRET_PREFIX)) {
    const encoded = secret.slice(WEBHOOK_SECRET_PREFIX.length);
    const key = Buffer.from(encoded, 'base64');
    // Only canonical base64 counts: otherwise two different secrets could decode to the same key.
    if (key.length > 0 && key.toString('base64') === encoded) return key;
  }
  return Buffer.from(secret, 'utf8');
}

function mac(key: Buffer, id: string, timestamp: string, body: string | Uint8Array): Buffer {
  const hmac = createHmac('sha256', key);
  hmac.update(`${id}.${timestamp}.`, 'utf8');
  hmac.update(body);
  return hmac.digest();
}

/**
 * The `webhook-signature` header value for a message `id` sent at `timestamp` (Unix seconds) with `body`.
 *
 * @example
 * signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_1', 1767225600, '{"a":1}') // 'v1,…base64…'
 */
export function signWebhook(secret: string, id: string, timestamp: number | string, body: string | Uint8Array): string {
  return `v1,${mac(webhookKey(secret), id, String(timestamp), body).toString('base64')}`;
}

/** Why {@link verifyWebhook} refused a message. */
export type WebhookFailure = 'malformed' | 'stale' | 'mismatch';

/** The outcome of {@link verifyWebhook}: on success, the message id (the event id, for de-duplication). */
export type WebhookVerdict = { readonly ok: true; readonly id: string; readonly timestamp: number } | { readonly ok: false; readonly reason: WebhookFailure };

/** Request headers as Node (`IncomingHttpHeaders`) or fetch (`Headers`) give them. */
export type WebhookHeaders = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Checks a webhook from Custodian: `webhook-signature` must hold a `v1,` signature of
 * `"<webhook-id>.<webhook-timestamp>.<body>"` under `secret` (or one of several secrets, while rotating), and
 * the timestamp must lie within `toleranceSeconds` (default {@link WEBHOOK_TOLERANCE_SECONDS}) of `now`
 * (milliseconds since the epoch). `body` is the raw body as received — never re-serialised JSON. Comparison is
 * constant-time. Refusals say why, for the receiver's logs; answer 401 whatever the reason (a 4xx other than
 * 408/429 stops Custodian retrying, see docs/propagation.md).
 *
 * @example
 * ```ts
 * const verdict = verifyWebhook({ secret: process.env.CUSTODIAN_WEBHOOK_SECRET!, headers: req.headers, body: rawBody });
 * if (!verdict.ok) return res.writeHead(401).end();
 * if (await seen(verdict.id)) return res.writeHead(204).end(); // at-least-once: de-duplicate by id
 * ```
 */
export function verifyWebhook(input: {
  readonly secret: string | readonly string[];
  readonly headers: WebhookHeaders;
  readonly body: string | Uint8Array;
  readonly toleranceSeconds?: number;
  readonly now?: number;
}): WebhookVerdict {
  const id = header(input.headers, 'webhook-id');
  const timestamp = header(input.headers, 'webhook-timestamp');
  const signature = header(input.headers, 'webhook-signature');
  if (id === undefined || id.length === 0 || id.length > 256 || timestamp === undefined || signature === undefined || !TIMESTAMP.test(timestamp)) return { ok: false, reason: 'malformed' };
  const secrets = typeof input.secret === 'string' ? [input.secret] : input.secret;
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) return { ok: false, reason: 'malformed' };
  const candidates: Buffer[] = [];
  // Entries are space-separated; unknown versions (a future v2, or v1a asymmetric signatures) are skipped.
  for (const entry of signature.split(' ')) {
    if (!entry.startsWith('v1,')) continue;
    const b64 = entry.slice(3);
    if (!BASE64_SHA256.test(b64)) return { ok: false, reason: 'malformed' };
    candidates.push(Buffer.from(b64, 'base64'));
  }
  if (candidates.length === 0 || candidates.length > 8) return { ok: false, reason: 'malformed' };
  const tolerance = input.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  const now = Math.floor((input.now ?? Date.now()) / 1000);
  if (Math.abs(now - Number(timestamp)) > tolerance) return { ok: false, reason: 'stale' };
  let match = false;
  // Every pair is compared, so the time taken does not tell which secret or which entry matched.
  for (const s of secrets) {
    const expected = mac(webhookKey(s), id, timestamp, input.body);
    for (const candidate of candidates) if (timingSafeEqual(expected, candidate)) match = true;
  }
  return match ? { ok: true, id, timestamp: Number(timestamp) } : { ok: false, reason: 'mismatch' };
}
