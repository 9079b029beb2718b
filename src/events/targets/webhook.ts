import { z } from 'zod';
import { retryAfterMs, type CustodianEvent } from '../../core/index.js';
import { signWebhook } from '../webhook-verify.js';
import type { DeliveryOutcome, DeliveryTarget } from './target.js';

/** Configuration of a webhook target (without `kind`). */
export const webhookTargetConfig = z
  .object({
    url: z.url({ protocol: /^https?$/ }).max(2000).describe('http(s) endpoint receiving POSTs'),
    secret: z.string().min(16).max(200).describe('HMAC secret of the signatures (`whsec_<base64>` or any text of 16+ characters)'),
    timeoutMs: z.number().int().min(100).max(30_000).optional().describe('per request; default 10000'),
  })
  .strict();
export type WebhookTargetConfig = z.infer<typeof webhookTargetConfig>;

/**
 * Delivers events as signed HTTP POSTs (CloudEvents structured mode: the event is the JSON body, content type
 * `application/cloudevents+json`), one request per event, in the order given, stopping at the first failure.
 * Headers follow Standard Webhooks (see webhook-verify.ts): `webhook-id` is the event id (the same on every
 * retry and replay), `webhook-timestamp` the time of this attempt, `webhook-signature` the HMAC.
 *
 * Outcomes: 2xx delivered; 408, 429, 5xx, network errors and timeouts are retryable (a numeric `Retry-After` is a
 * floor for the next try); any other status (3xx — redirects are not followed —, 4xx) is not retryable, and 410
 * Gone marks the target gone (the dispatcher disables the subscription). Answers are never read beyond the status.
 */
export function webhookTarget(config: WebhookTargetConfig, options: { now?: () => number } = {}): DeliveryTarget {
  const { url, secret } = webhookTargetConfig.parse(config);
  const timeoutMs = config.timeoutMs ?? 10_000;
  const now = options.now ?? Date.now;
  const post = async (event: CustodianEvent, signal: AbortSignal | undefined): Promise<DeliveryOutcome> => {
    const body = JSON.stringify(event);
    const timestamp = Math.floor(now() / 1000);
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    const started = performance.now();
    const took = () => Math.round(performance.now() - started);
    try {
      const response = await fetch(url, {
        method: 'POST',
        redirect: 'manual',
        signal: combined,
        body,
        headers: {
          'content-type': 'application/cloudevents+json',
          'user-agent': 'custodian-webhooks',
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(secret, event.id, timestamp, body),
        },
      });
      await response.body?.cancel().catch(() => undefined);
      const status = response.status;
      if (status >= 200 && status <= 299) return { ok: true, retryable: false, status, durationMs: took() };
      const retryable = status === 408 || status === 429 || status >= 500;
      const after = retryable ? retryAfterMs(response.headers.get('retry-after')) : undefined;
      return { ok: false, retryable, status, error: `HTTP ${status}`, durationMs: took(), ...(after === undefined ? {} : { retryAfterMs: after }), ...(status === 410 ? { gone: true } : {}) };
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason;
      // Only the error's class and code are kept: messages may quote URLs or answers.
      const code = (err as { cause?: { code?: unknown } }).cause?.code;
      const error = timeout.aborted ? `timed out after ${timeoutMs} ms` : `network error${typeof code === 'string' ? ` ${code}` : ''}`;
      return { ok: false, retryable: true, error, durationMs: took() };
    }
  };
  return {
    kind: 'webhook',
    async deliver(events, signal) {
      const outcomes: DeliveryOutcome[] = [];
      for (const event of events) {
        const outcome = await post(event, signal);
        outcomes.push(outcome);
        if (!outcome.ok) break;
      }
      return outcomes;
    },
    async close() {},
  };
}
