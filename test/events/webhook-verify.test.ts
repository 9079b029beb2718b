import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhook } from '../../src/events/index.js';

const NOW = 1_767_225_600_000;
const ts = String(NOW / 1000);

function headers(secret: string, id: string, body: string | Uint8Array, timestamp = ts): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signWebhook(secret, id, timestamp, body) };
}

describe('webhook signatures', () => {
  it('follow Standard Webhooks: v1,base64(HMAC-SHA-256(key, "id.timestamp.body")), whsec_ keys base64-decoded', () => {
    const key = Buffer.alloc(32, 7);
    const secret = `whsec_${key.toString('base64')}`;
    const expected = createHmac('sha256', key).update(`msg_1.${ts}.{"a":1}`).digest('base64');
    expect(signWebhook(secret, 'msg_1', ts, '{"a":1}')).toBe(`v1,${expected}`);
    // Any other secret is used as UTF-8 bytes.
    expect(signWebhook('plain-secret-1234', 'msg_1', ts, 'x')).toBe(`v1,${createHmac('sha256', 'plain-secret-1234').update(`msg_1.${ts}.x`).digest('base64')}`);
  });

  it('verifies with Node headers or fetch Headers, and names the event id', () => {
    const secret = 'whsec_' + Buffer.alloc(32, 1).toString('base64');
    const h = headers(secret, 'evt-1', 'body');
    expect(verifyWebhook({ secret, headers: h, body: 'body', now: NOW })).toEqual({ ok: true, id: 'evt-1', timestamp: NOW / 1000 });
    expect(verifyWebhook({ secret, headers: new Headers(h), body: Buffer.from('body'), now: NOW }).ok).toBe(true);
    const upper = Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyWebhook({ secret, headers: upper, body: 'body', now: NOW }).ok).toBe(true);
  });

  it('refuses stale and future timestamps beyond the tolerance, malformed headers, and other secrets', () => {
    const secret = 'a-webhook-secret-of-some-length';
    const h = headers(secret, 'evt-2', 'b');
    expect(verifyWebhook({ secret, headers: h, body: 'b', now: NOW + 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhook({ secret, headers: h, body: 'b', now: NOW - 301_000 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhook({ secret, headers: h, body: 'b', now: NOW + 10_000, toleranceSeconds: 5 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhook({ secret, headers: h, body: 'b', now: NOW + 299_000 }).ok).toBe(true);
    expect(verifyWebhook({ secret: 'another-secret-entirely', headers: h, body: 'b', now: NOW })).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhook({ secret: ['another-secret-entirely', secret], headers: h, body: 'b', now: NOW }).ok).toBe(true);
    expect(verifyWebhook({ secret, headers: { ...h, 'webhook-signature': 'v1,notbase64' }, body: 'b', now: NOW })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyWebhook({ secret, headers: { ...h, 'webhook-timestamp': 'soon' }, body: 'b', now: NOW })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyWebhook({ secret, headers: { 'webhook-id': 'evt-2' }, body: 'b', now: NOW })).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyWebhook({ secret: '', headers: h, body: 'b', now: NOW })).toEqual({ ok: false, reason: 'malformed' });
    // Several signatures (rotation), unknown versions skipped.
    const multi = { ...h, 'webhook-signature': `v1a,xyz ${signWebhook('old-secret-xxxxxxxxxx', 'evt-2', ts, 'b')} ${h['webhook-signature']}` };
    expect(verifyWebhook({ secret, headers: multi, body: 'b', now: NOW }).ok).toBe(true);
  });

  it('property: any body and secret verify; any change of body, id, timestamp or signature fails', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 64 }),
        fc.uint8Array({ maxLength: 512 }),
        fc.string({ minLength: 1, maxLength: 64 }).filter((s) => !s.includes('\n')),
        fc.nat(4),
        fc.nat(),
        (secret, body, id, which, at) => {
          const h = headers(secret, id, body);
          expect(verifyWebhook({ secret, headers: h, body, now: NOW }).ok).toBe(true);
          const changed = Buffer.from(body);
          let verdict;
          if (which === 0) {
            // One bit of the body flipped (or a byte added to an empty body).
            if (changed.length === 0) verdict = verifyWebhook({ secret, headers: h, body: Buffer.from([at % 256]), now: NOW });
            else {
              changed[at % changed.length]! ^= 1 << at % 8;
              verdict = verifyWebhook({ secret, headers: h, body: changed, now: NOW });
            }
          } else if (which === 1) verdict = verifyWebhook({ secret, headers: { ...h, 'webhook-id': id + 'x' }, body, now: NOW });
          else if (which === 2) verdict = verifyWebhook({ secret, headers: { ...h, 'webhook-timestamp': String(Number(ts) + 1 + (at % 100)) }, body, now: NOW });
          else if (which === 3) verdict = verifyWebhook({ secret: secret + 'x', headers: h, body, now: NOW });
          else {
            const sig = Buffer.from(h['webhook-signature']!.slice(3), 'base64');
            sig[at % sig.length]! ^= 1 << at % 8;
            verdict = verifyWebhook({ secret, headers: { ...h, 'webhook-signature': `v1,${sig.toString('base64')}` }, body, now: NOW });
          }
          expect(verdict.ok).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });
});
